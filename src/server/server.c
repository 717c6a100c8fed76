/* Server lifecycle: load, listen, wait for signals, reload on SIGHUP (on the reload
 * thread, so that a slow load never delays SIGTERM), drain on SIGTERM. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/grpc.h"
#include "server/http.h"
#include "server/reload.h"
#include "server/server_internal.h"

void srv_options_defaults(srv_options *o) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->backend = WGLLM_BACKEND_AUTO;
    o->device = -1;
    o->parallel = 4;
    o->max_queue = 64;
    o->drain_timeout = 30.0;
    o->max_body = 1 << 20;
    o->prefill_chunk = 64;
    o->step_tokens = 128;
    o->max_connections = 512;
    o->max_connections_per_ip = 128;
    o->request_timeout = 30.0;
    o->grpc_port = -1;
}

void srv_new_id(srv_server *srv, const char *prefix, char *out, size_t size) {
    uint64_t n = atomic_fetch_add(&srv->next_id, 1);
    uint64_t x = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ULL ^ (n + 1) * 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 31;
    snprintf(out, size, "%s%016llx%06llx", prefix, (unsigned long long)x, (unsigned long long)(n & 0xFFFFFF));
}

static void log_event(const char *event, const char *key, const char *value) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event", event);
    if (key) cJSON_AddStringToObject(o, key, value);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s) fprintf(stderr, "%s\n", s);
    free(s);
}

bool srv_reload(srv_server *srv, const char *path, char *id, size_t id_size, char *err, size_t err_size) {
    bool ok = srv_models_reload(&srv->models, path, id, id_size, err, err_size);
    srv_metrics_reload(srv->metrics, ok);
    log_event(ok ? "reloaded" : "reload_failed", ok ? "model" : "error", ok ? id : err);
    return ok;
}

#define DRAIN_FLUSH_S 5.0 /* after a drain timeout: time for the cut requests to send their errors */

static void sleep_a_little(void) {
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits for the requests in flight; those still running at the deadline are cut: each gets
 * a 503 (or, streaming, an SSE error event) and the exit code says so. */
static int drain(srv_server *srv) {
    atomic_store(&srv->draining, true);
    srv_http_stop_accepting(srv);
    log_event("draining", NULL, NULL);
    double deadline = srv_now() + srv->opt.drain_timeout;
    for (;;) {
        srv_sched_stats st;
        srv_sched_get_stats(srv->sched, &st);
        if (st.queued == 0 && st.active == 0 && atomic_load(&srv->open_requests) == 0) return 0;
        if (srv_now() >= deadline) break;
        sleep_a_little();
    }
    srv_sched_stats st;
    srv_sched_get_stats(srv->sched, &st);
    char cut[64];
    snprintf(cut, sizeof cut, "%d", st.queued + st.active);
    log_event("drain_timeout", "generations_cut", cut);
    srv_sched_stop(srv->sched);
    double flush_until = srv_now() + DRAIN_FLUSH_S;
    while (atomic_load(&srv->open_requests) > 0 && srv_now() < flush_until) sleep_a_little();
    return SRV_EXIT_DRAIN_TIMEOUT;
}

int srv_run(const srv_options *o) {
    srv_server *srv = calloc(1, sizeof *srv);
    if (!srv) return 1;
    srv->opt = *o;
    atomic_init(&srv->draining, false);
    atomic_init(&srv->open_requests, 0);
    atomic_init(&srv->next_id, 0);
    srv->listen_fd = -1;
    srv->local_fd = -1;
    char err[512];
    int rc = 1;
    bool models_ok = false;

    /* Signals go to this thread only (sigwait below): block them before any thread starts. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    wgllm_model_params mp = wgllm_model_default_params();
    mp.backend = o->backend;
    mp.device = o->device;
    mp.n_threads = o->n_threads;
    if (!(srv->metrics = srv_metrics_create())) {
        fprintf(stderr, "wgllm serve: error: out of memory\n");
        goto done;
    }
    if (!srv_local_open(srv, err, sizeof err)) {
        fprintf(stderr, "wgllm serve: error: %s\n", err);
        goto done;
    }
    /* the port first: a port in use fails at once, not after a long model load */
    if (!srv_http_listen(srv, err, sizeof err)) {
        fprintf(stderr, "wgllm serve: error: %s\n", err);
        goto done;
    }
#ifdef WGLLM_HAVE_GRPC
    if (o->grpc_port >= 0 && !srv_grpc_listen(srv, err, sizeof err)) {
        fprintf(stderr, "wgllm serve: error: %s\n", err);
        goto done;
    }
#endif
    if (!srv_models_init(&srv->models, o->model_path, o->alias, o->model_cache, &mp, o->n_ctx, o->parallel, o->step_tokens,
                         o->prefill_chunk, err, sizeof err)) {
        fprintf(stderr, "wgllm serve: error: %s\n", err);
        goto done;
    }
    models_ok = true;
    if (!srv_admin_init(srv, err, sizeof err) || !(srv->reloader = srv_reloader_create(srv, err, sizeof err))) {
        fprintf(stderr, "wgllm serve: error: %s\n", err);
        goto done;
    }
    srv_sched_params sp = {o->parallel, o->max_queue, o->prefill_chunk, o->step_tokens};
    if (!(srv->sched = srv_sched_create(&sp, srv->metrics, err, sizeof err)) || !srv_http_start(srv, err, sizeof err)) {
        fprintf(stderr, "wgllm serve: error: %s\n", err);
        goto done;
    }
#ifdef WGLLM_HAVE_GRPC
    if (srv->grpc && !srv_grpc_start(srv, err, sizeof err)) {
        fprintf(stderr, "wgllm serve: error: %s\n", err);
        goto done;
    }
    if (srv->grpc) fprintf(stderr, "{\"event\":\"listening_grpc\",\"host\":\"%s\",\"port\":%d}\n", o->host, srv_grpc_port(srv));
#endif
    {
        srv_model *m = srv_models_acquire(&srv->models);
        wgllm_model_info info;
        wgllm_model_get_info(m->model, &info);
        fprintf(stderr, "backend: %s\n", info.backend);
        fprintf(stderr,
                "{\"event\":\"listening\",\"host\":\"%s\",\"port\":%d,\"model\":\"%s\",\"parallel\":%d,"
                "\"ctx\":%d,\"chat_template\":\"%s\"}\n",
                o->host, srv_http_port(srv), m->id, o->parallel, m->n_ctx, srv_chat_format_name(m->chat));
        srv_models_release(&srv->models, m);
    }
    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0) continue;
        if (sig == SIGHUP) { /* the operator's reload: no key, the current file again */
            srv_reload_ticket_release(srv_reloader_submit(srv->reloader, NULL, true));
            continue;
        }
        rc = drain(srv);
        break;
    }
    log_event("stopped", NULL, NULL);
done:
#ifdef WGLLM_HAVE_GRPC
    srv_grpc_stop(srv); /* before the scheduler: its calls hold jobs */
#endif
    srv_http_stop(srv);
    srv_sched_free(srv->sched);
    if (!srv_reloader_stop(srv->reloader)) {
        /* a load still running uses the registry and the metrics: they go with the process */
        log_event("reload_abandoned", NULL, NULL);
        return rc;
    }
    if (models_ok) srv_models_destroy(&srv->models);
    srv_metrics_free(srv->metrics);
    srv_local_close(srv);
    free(srv);
    return rc;
}
