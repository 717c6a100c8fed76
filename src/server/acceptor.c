/* The accept loop: admission, the wait for a complete request head (peeked, so the
 * daemon still reads it), the head check, and the hand-over. See acceptor.h. */
#include <cJSON.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/acceptor.h"
#include "server/request_head.h"

#define PEEK_INTERVAL 0.05 /* seconds between looks at one connection: bounds the copying a trickle causes */

typedef struct pending {
    int fd;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    void *track; /* the guard's record */
    double t0, next_peek;
} pending;

struct srv_acceptor {
    int listen_fd;
    struct MHD_Daemon *daemon;
    srv_guard *guard;
    srv_metrics *metrics;
    double timeout;
    size_t max_body;
    pending *p;
    int n, cap;
    struct pollfd *fds;
    int *idx; /* fds[i + 1] watches p[idx[i]] */
    char buf[SRV_HEAD_MAX_BYTES + 1];
    atomic_bool stop;
    pthread_t thread;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void drop(srv_acceptor *a, int i) {
    srv_guard_untrack(a->guard, a->p[i].track); /* before close: the reaper may shut it down until then */
    close(a->p[i].fd);
    a->p[i] = a->p[--a->n];
}

/* Answers a bad head with an OpenAI error and closes. The head is read (not just peeked)
   first: closing with unread data would reset the connection and lose the answer. */
static void refuse(srv_acceptor *a, int i, const srv_head_error *e) {
    int fd = a->p[i].fd;
    char sink[4096];
    for (int k = 0; k < 64 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; k++) {
    }
    cJSON *root = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "message", e->message);
    cJSON_AddStringToObject(err, "type", "invalid_request_error");
    cJSON_AddNullToObject(err, "param");
    cJSON_AddStringToObject(err, "code", e->code);
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (json) {
        char head[256];
        int hn = snprintf(head, sizeof head,
                          "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                          "Connection: close\r\n\r\n",
                          e->status, MHD_get_reason_phrase_for((unsigned)e->status), strlen(json));
        /* small enough for an empty socket buffer: one non-blocking try each */
        if (send(fd, head, (size_t)hn, MSG_NOSIGNAL | MSG_DONTWAIT) == hn)
            send(fd, json, strlen(json), MSG_NOSIGNAL | MSG_DONTWAIT);
        shutdown(fd, SHUT_WR);
        free(json);
    }
    srv_metrics_request(a->metrics, "other", e->status);
    drop(a, i);
}

static void hand_over(srv_acceptor *a, int i) {
    pending q = a->p[i];
    a->p[i] = a->p[--a->n];
    int one = 1;
    setsockopt(q.fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
    srv_guard_hand_over(a->guard, q.track);
    /* MHD closes the socket if it refuses it */
    if (MHD_add_connection(a->daemon, q.fd, (const struct sockaddr *)&q.addr, q.addr_len) != MHD_YES)
        srv_guard_hand_over_failed(a->guard, q.track);
}

static void look(srv_acceptor *a, int i, double t) {
    ssize_t n = recv(a->p[i].fd, a->buf, sizeof a->buf, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        drop(a, i); /* gone, or shut down by the guard's deadline */
        return;
    }
    if (n < 0) return;
    srv_head_error e;
    switch (srv_head_check(a->buf, (size_t)n, a->max_body, &e)) {
    case SRV_HEAD_OK: hand_over(a, i); break;
    case SRV_HEAD_BAD: refuse(a, i, &e); break;
    case SRV_HEAD_INCOMPLETE: {
        /* wake only when more than what was seen has arrived (the peeked bytes stay queued
           and would keep the socket readable), and look again no sooner than PEEK_INTERVAL */
        int lowat = (int)n + 1;
        setsockopt(a->p[i].fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
        a->p[i].next_peek = t + PEEK_INTERVAL;
        break;
    }
    }
}

static void accept_all(srv_acceptor *a, double t) {
    for (;;) {
        pending q = {.addr_len = sizeof q.addr};
        q.fd = accept4(a->listen_fd, (struct sockaddr *)&q.addr, &q.addr_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (q.fd < 0) return; /* EAGAIN, or out of descriptors: the poll timeout retries */
        if (a->n == a->cap || !srv_guard_admit(a->guard, (const struct sockaddr *)&q.addr) ||
            !(q.track = srv_guard_track(a->guard, q.fd, (const struct sockaddr *)&q.addr))) {
            close(q.fd);
            continue;
        }
        q.t0 = q.next_peek = t;
        a->p[a->n++] = q;
    }
}

static void *acceptor_main(void *arg) {
    srv_acceptor *a = arg;
    while (!atomic_load(&a->stop)) {
        double t = now_s();
        int nf = 1;
        a->fds[0] = (struct pollfd){.fd = a->listen_fd, .events = POLLIN};
        for (int i = 0; i < a->n; i++) {
            if (t - a->p[i].t0 > a->timeout) { /* the guard's reaper also ends these; this is the backstop */
                drop(a, i--);
                continue;
            }
            if (a->p[i].next_peek > t) continue;
            a->idx[nf - 1] = i;
            a->fds[nf++] = (struct pollfd){.fd = a->p[i].fd, .events = POLLIN | POLLRDHUP};
        }
        if (poll(a->fds, (nfds_t)nf, a->n ? 25 : 200) <= 0) continue;
        t = now_s();
        /* highest index first: look() may move the last entry into a slot it frees */
        for (int k = nf - 1; k >= 1; k--)
            if (a->fds[k].revents) look(a, a->idx[k - 1], t);
        if (a->fds[0].revents & POLLIN) accept_all(a, t);
    }
    return NULL;
}

srv_acceptor *srv_acceptor_start(int listen_fd, struct MHD_Daemon *daemon, srv_guard *guard, srv_metrics *metrics,
                                 int max_pending, double timeout, size_t max_body) {
    srv_acceptor *a = calloc(1, sizeof *a);
    if (a) {
        a->listen_fd = listen_fd;
        a->daemon = daemon;
        a->guard = guard;
        a->metrics = metrics;
        a->timeout = timeout;
        a->max_body = max_body;
        a->cap = max_pending;
        a->p = calloc((size_t)max_pending, sizeof *a->p);
        a->fds = calloc((size_t)max_pending + 1, sizeof *a->fds);
        a->idx = calloc((size_t)max_pending, sizeof *a->idx);
        atomic_init(&a->stop, false);
    }
    if (!a || !a->p || !a->fds || !a->idx || pthread_create(&a->thread, NULL, acceptor_main, a)) {
        if (a) {
            free(a->p);
            free(a->fds);
            free(a->idx);
        }
        free(a);
        close(listen_fd);
        return NULL;
    }
    return a;
}

void srv_acceptor_stop(srv_acceptor *a) {
    if (!a) return;
    atomic_store(&a->stop, true);
    pthread_join(a->thread, NULL);
    close(a->listen_fd);
    while (a->n) drop(a, a->n - 1);
    free(a->p);
    free(a->fds);
    free(a->idx);
    free(a);
}
