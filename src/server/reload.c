/* The reload thread: a queue of tickets, each loaded in turn beside the current model. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf/gguf.h"
#include "server/reload.h"
#include "server/server_internal.h"

struct srv_reload_ticket {
    srv_reload_ticket *next; /* in the queue */
    int refs;                /* under the reloader's lock */
    srv_reloader *owner;
    char *path;              /* NULL: the current file again */
    srv_reload_result result;
    char id[128];
};

struct srv_reloader {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* queue or stop (worker), results (waiters) */
    pthread_t thread;
    srv_server *srv;
    srv_reload_ticket *head, *tail;
    bool stopping, busy;
};

static void ticket_unref(srv_reload_ticket *t) { /* under mu */
    if (--t->refs > 0) return;
    free(t->path);
    free(t);
}

/* Why a load failed, in words a client may see: never the loader's message, which can
 * quote bytes of the file. */
static srv_reload_result classify(srv_server *srv, const char *path) {
    char again[sizeof ((srv_model *)0)->path] = "", err[256];
    if (!path) {
        srv_model *m = srv_models_acquire(&srv->models);
        snprintf(again, sizeof again, "%s", m ? m->path : "");
        srv_models_release(&srv->models, m);
        path = again;
    }
    gguf_file *f = gguf_open(path, err, sizeof err);
    gguf_close(f);
    return f ? SRV_RELOAD_FAILED : SRV_RELOAD_NOT_GGUF;
}

static void *reload_main(void *arg) {
    srv_reloader *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->head && !r->stopping) pthread_cond_wait(&r->cv, &r->mu);
        if (r->stopping) break;
        srv_reload_ticket *t = r->head;
        r->head = t->next;
        if (!r->head) r->tail = NULL;
        r->busy = true;
        pthread_mutex_unlock(&r->mu);
        char id[128] = "", err[512] = "";
        srv_reload_result res = srv_reload(r->srv, t->path, id, sizeof id, err, sizeof err)
                                    ? SRV_RELOAD_OK
                                    : classify(r->srv, t->path);
        pthread_mutex_lock(&r->mu);
        r->busy = false;
        t->result = res;
        snprintf(t->id, sizeof t->id, "%s", id);
        ticket_unref(t);
        pthread_cond_broadcast(&r->cv);
    }
    while (r->head) { /* queued, never begun */
        srv_reload_ticket *t = r->head;
        r->head = t->next;
        t->result = SRV_RELOAD_CANCELLED;
        ticket_unref(t);
    }
    r->tail = NULL;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

srv_reloader *srv_reloader_create(srv_server *srv, char *err, size_t err_size) {
    srv_reloader *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    r->srv = srv;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&r->thread, NULL, reload_main, r) != 0) {
        snprintf(err, err_size, "cannot start the reload thread");
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return NULL;
    }
    return r;
}

bool srv_reloader_stop(srv_reloader *r) {
    if (!r) return true;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    bool busy = r->busy;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (busy) {
        pthread_detach(r->thread); /* it ends with the process */
        return false;
    }
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return true;
}

srv_reload_ticket *srv_reloader_submit(srv_reloader *r, const char *path, bool coalesce) {
    srv_reload_ticket *t = calloc(1, sizeof *t);
    if (!t || (path && !(t->path = strdup(path)))) {
        free(t);
        return NULL;
    }
    t->owner = r;
    t->refs = 2; /* the queue's and the caller's */
    pthread_mutex_lock(&r->mu);
    bool joined = false;
    if (coalesce && !path)
        for (srv_reload_ticket *q = r->head; q && !joined; q = q->next) joined = !q->path;
    if (r->stopping || joined) {
        pthread_mutex_unlock(&r->mu);
        free(t->path);
        free(t);
        return NULL;
    }
    if (r->tail)
        r->tail->next = t;
    else
        r->head = t;
    r->tail = t;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return t;
}

srv_reload_result srv_reload_ticket_wait(srv_reload_ticket *t, double timeout_s, char *id, size_t id_size) {
    srv_reloader *r = t->owner;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    long long ns = until.tv_nsec + (long long)(timeout_s * 1e9);
    until.tv_sec += (time_t)(ns / 1000000000LL);
    until.tv_nsec = (long)(ns % 1000000000LL);
    pthread_mutex_lock(&r->mu);
    while (t->result == SRV_RELOAD_PENDING)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT) break;
    srv_reload_result res = t->result;
    if (res == SRV_RELOAD_OK && id) snprintf(id, id_size, "%s", t->id);
    pthread_mutex_unlock(&r->mu);
    return res;
}

void srv_reload_ticket_release(srv_reload_ticket *t) {
    if (!t) return;
    srv_reloader *r = t->owner;
    pthread_mutex_lock(&r->mu);
    ticket_unref(t);
    pthread_mutex_unlock(&r->mu);
}
