/* Connection admission (per-address limits, slots kept for new addresses) and a
 * request deadline enforced by a reaper thread. See conn_guard.h. */
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/conn_guard.h"

typedef struct addr_key {
    int family;
    unsigned char bytes[16];
} addr_key;

/* One open connection, from its accept (or MHD's "started" notification) to its close. */
typedef struct entry {
    srv_guard *g;
    struct entry *prev, *next;
    addr_key key;
    int fd;
    bool receiving; /* waiting for (the rest of) a request */
    bool cut;       /* already shut down by the reaper */
    bool handed;    /* being handed to MHD, which adopts the record (and its deadline) */
    double since;   /* when the current wait for a request began */
} entry;

struct srv_guard {
    srv_guard_params p;
    int reserve; /* slots only addresses without a connection may take */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t reaper;
    bool stop;
    entry *head;
    int n;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool key_of(const struct sockaddr *sa, addr_key *k) {
    memset(k, 0, sizeof *k);
    if (!sa) return false;
    k->family = sa->sa_family;
    if (sa->sa_family == AF_INET) {
        memcpy(k->bytes, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(k->bytes, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

/* Connections of address k that its client has not closed. A client that closes one
   connection and opens the next at once would otherwise find the old one still counted
   (MHD forgets it a little later). Under g->mu, so no descriptor here has been closed.
   A scan is enough: there are at most max_connections entries. */
static int count_addr(const srv_guard *g, const addr_key *k) {
    int n = 0;
    for (const entry *e = g->head; e; e = e->next) {
        if (memcmp(&e->key, k, sizeof *k)) continue;
        struct pollfd p = {.fd = e->fd, .events = POLLRDHUP};
        if (e->fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) continue;
        n++;
    }
    return n;
}

bool srv_guard_admit(srv_guard *g, const struct sockaddr *addr) {
    addr_key k;
    key_of(addr, &k);
    pthread_mutex_lock(&g->mu);
    int mine = count_addr(g, &k);
    bool ok = g->n < g->p.max_connections && (g->p.max_per_ip <= 0 || mine < g->p.max_per_ip) &&
              (mine == 0 || g->n < g->p.max_connections - g->reserve);
    pthread_mutex_unlock(&g->mu);
    return ok;
}

void *srv_guard_track(srv_guard *g, int fd, const struct sockaddr *addr) {
    entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->g = g;
    e->fd = fd;
    key_of(addr, &e->key);
    e->receiving = true;
    e->since = now_s();
    pthread_mutex_lock(&g->mu);
    e->next = g->head;
    if (g->head) g->head->prev = e;
    g->head = e;
    g->n++;
    pthread_mutex_unlock(&g->mu);
    return e;
}

void srv_guard_hand_over(srv_guard *g, void *track) {
    entry *e = track;
    if (!e) return;
    pthread_mutex_lock(&g->mu);
    e->handed = true; /* the reaper leaves it alone: MHD may close the descriptor if it refuses it */
    pthread_mutex_unlock(&g->mu);
}

void srv_guard_hand_over_failed(srv_guard *g, void *track) {
    /* MHD may have notified "started" and then "closed" (which freed the record), so the
       record is only looked for; only the acceptor thread hands over, so no other handed
       record can have taken its address meanwhile */
    entry *e;
    pthread_mutex_lock(&g->mu);
    for (e = g->head; e && !(e == track && e->handed); e = e->next) {
    }
    pthread_mutex_unlock(&g->mu);
    if (e) srv_guard_untrack(g, e);
}

void srv_guard_untrack(srv_guard *g, void *track) {
    entry *e = track;
    if (!e) return;
    pthread_mutex_lock(&g->mu);
    if (e->prev)
        e->prev->next = e->next;
    else
        g->head = e->next;
    if (e->next) e->next->prev = e->prev;
    g->n--;
    pthread_mutex_unlock(&g->mu);
    free(e);
}

void srv_guard_notify(void *cls, struct MHD_Connection *mhd, void **socket_context,
                      enum MHD_ConnectionNotificationCode code) {
    srv_guard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd = MHD_get_connection_info(mhd, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ad = MHD_get_connection_info(mhd, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        int sock = fd ? fd->connect_fd : -1;
        entry *e;
        pthread_mutex_lock(&g->mu);
        for (e = g->head; e && !(e->handed && e->fd == sock); e = e->next) {
        }
        if (e) e->handed = false; /* from srv_guard_hand_over: its deadline runs on */
        pthread_mutex_unlock(&g->mu);
        /* NULL (out of memory): untracked, no deadline, but still within MHD's own limit */
        *socket_context = e ? e : srv_guard_track(g, sock, ad ? ad->client_addr : NULL);
        return;
    }
    /* MHD closes the socket only after this notification returns; forgetting it under the
       lock means the reaper never shuts down a descriptor number that was reused */
    srv_guard_untrack(g, *socket_context);
    *socket_context = NULL;
}

static entry *entry_of(struct MHD_Connection *mhd) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mhd, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void set_receiving(struct MHD_Connection *mhd, bool receiving) {
    entry *e = entry_of(mhd);
    if (!e) return;
    pthread_mutex_lock(&e->g->mu);
    if (receiving && !e->receiving) e->since = now_s();
    e->receiving = receiving;
    pthread_mutex_unlock(&e->g->mu);
}

void srv_guard_request_received(struct MHD_Connection *mhd) { set_receiving(mhd, false); }
void srv_guard_request_done(struct MHD_Connection *mhd) { set_receiving(mhd, true); }

/* Shuts down (not closes: the descriptor stays MHD's) every connection past its
   deadline; MHD's thread then sees the end of the stream and closes it. */
static void *reaper_main(void *arg) {
    srv_guard *g = arg;
    double period = g->p.request_timeout / 4;
    if (period > 0.25) period = 0.25;
    if (period < 0.01) period = 0.01;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        double t = now_s();
        for (entry *e = g->head; e; e = e->next)
            if (e->receiving && !e->cut && !e->handed && e->fd >= 0 && t - e->since > g->p.request_timeout) {
                shutdown(e->fd, SHUT_RDWR);
                e->cut = true;
            }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double end = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 + period;
        ts.tv_sec = (time_t)end;
        ts.tv_nsec = (long)((end - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

srv_guard *srv_guard_create(const srv_guard_params *p) {
    srv_guard *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->p = *p;
    g->reserve = p->max_connections / 8;
    if (g->reserve < 1 && p->max_connections > 1) g->reserve = 1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&g->reaper, NULL, reaper_main, g)) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        free(g);
        return NULL;
    }
    return g;
}

void srv_guard_free(srv_guard *g) {
    if (!g) return;
    pthread_mutex_lock(&g->mu);
    g->stop = true;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->reaper, NULL);
    while (g->head) { /* none once the daemon has stopped; freed anyway */
        entry *e = g->head;
        g->head = e->next;
        free(e);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}
