/* The gRPC server: one acceptor thread asks the core for calls on the server's completion
 * queue and hands each to a thread of its own; the call's operations then complete on a
 * per-call queue that only its thread plucks. */
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/access_log.h"
#include "server/grpc.h"
#include "server/grpc/grpc_call.h"
#include "server/grpc/grpc_codec.h"

#define RECV_TIMEOUT_S 30.0 /* most time a client may take to send its request message */
#define DEADLINE_SLACK_MS 500

typedef struct srv_grpc {
    srv_server *srv;
    grpc_server *server;
    grpc_completion_queue *cq; /* the server's: new calls and the shutdown notice */
    pthread_t acceptor;
    bool started;
    atomic_bool stopping;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int workers; /* call threads running (under mu) */
    int port;
    int shutdown_tag;
} srv_grpc;

/* ---- per-call operations ---- */

static grpc_event pluck(srv_gcall *g, void *tag, gpr_timespec deadline) {
    return grpc_completion_queue_pluck(g->cq, tag, deadline, NULL);
}

static bool run_batch(srv_gcall *g, grpc_op *ops, size_t n) {
    if (grpc_call_start_batch(g->call, ops, n, ops, NULL) != GRPC_CALL_OK) return false;
    grpc_event ev = pluck(g, ops, gpr_inf_future(GPR_CLOCK_MONOTONIC));
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

bool srv_gcall_gone(srv_gcall *g) {
    if (!g->close_done && pluck(g, &g->close_tag, gpr_inf_past(GPR_CLOCK_MONOTONIC)).type == GRPC_OP_COMPLETE)
        g->close_done = true;
    return g->close_done && g->cancelled;
}

uint8_t *srv_gcall_recv(srv_gcall *g, size_t *len) {
    grpc_byte_buffer *bb = NULL;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &bb;
    if (grpc_call_start_batch(g->call, &op, 1, &op, NULL) != GRPC_CALL_OK) {
        srv_gcall_finish(g, SRV_GRPC_INTERNAL, "cannot receive the request", NULL);
        return NULL;
    }
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis((int64_t)(RECV_TIMEOUT_S * 1000), GPR_TIMESPAN));
    grpc_event ev = pluck(g, &op, deadline);
    if (ev.type == GRPC_QUEUE_TIMEOUT) { /* a client that never sends: cut it */
        grpc_call_cancel_with_status(g->call, GRPC_STATUS_DEADLINE_EXCEEDED, "no request message in time", NULL);
        pluck(g, &op, gpr_inf_future(GPR_CLOCK_MONOTONIC));
        if (bb) grpc_byte_buffer_destroy(bb);
        g->finished = true;
        g->code = SRV_GRPC_DEADLINE_EXCEEDED;
        return NULL;
    }
    if (!bb) {
        srv_gcall_finish(g, SRV_GRPC_INVALID_ARGUMENT, "no request message", NULL);
        return NULL;
    }
    grpc_byte_buffer_reader r;
    uint8_t *data = NULL;
    if (grpc_byte_buffer_reader_init(&r, bb)) {
        grpc_slice s = grpc_byte_buffer_reader_readall(&r);
        *len = GRPC_SLICE_LENGTH(s);
        if ((data = malloc(*len ? *len : 1))) memcpy(data, GRPC_SLICE_START_PTR(s), *len);
        grpc_slice_unref(s);
        grpc_byte_buffer_reader_destroy(&r);
    }
    grpc_byte_buffer_destroy(bb);
    if (!data) srv_gcall_finish(g, SRV_GRPC_INTERNAL, "cannot read the request", NULL);
    else g->request_bytes = *len;
    return data;
}

static grpc_byte_buffer *pack(const ProtobufCMessage *msg) {
    size_t n = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(n);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

/* Fills ops with what a response needs before msg: the initial metadata, once. */
static size_t lead_ops(srv_gcall *g, grpc_op *ops) {
    if (g->sent_initial) return 0;
    memset(ops, 0, sizeof *ops);
    ops->op = GRPC_OP_SEND_INITIAL_METADATA;
    g->sent_initial = true;
    return 1;
}

bool srv_gcall_send(srv_gcall *g, const ProtobufCMessage *msg) {
    grpc_op ops[2];
    size_t n = lead_ops(g, ops);
    grpc_byte_buffer *bb = pack(msg);
    memset(&ops[n], 0, sizeof ops[n]);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = bb;
    bool ok = run_batch(g, ops, n);
    grpc_byte_buffer_destroy(bb);
    return ok;
}

void srv_gcall_finish(srv_gcall *g, int code, const char *details, const ProtobufCMessage *msg) {
    if (g->finished) return;
    grpc_op ops[3];
    size_t n = lead_ops(g, ops);
    grpc_byte_buffer *bb = msg ? pack(msg) : NULL;
    if (bb) {
        memset(&ops[n], 0, sizeof ops[n]);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = bb;
    }
    grpc_slice text = grpc_slice_from_copied_string(details ? details : "");
    memset(&ops[n], 0, sizeof ops[n]);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)code;
    ops[n++].data.send_status_from_server.status_details = details ? &text : NULL;
    run_batch(g, ops, n);
    grpc_slice_unref(text);
    if (bb) grpc_byte_buffer_destroy(bb);
    g->finished = true;
    g->code = code;
}

void srv_gcall_fail(srv_gcall *g, const srv_error *e) {
    char msg[sizeof e->message + 80];
    if (e->param[0] && !strstr(e->message, e->param))
        snprintf(msg, sizeof msg, "%s (field '%s')", e->message, e->param);
    else
        snprintf(msg, sizeof msg, "%s", e->message);
    srv_gcall_finish(g, srv_grpc_code_for_http(e->status), msg, NULL);
}

/* ---- one call ---- */

/* Constant-time comparison of the bearer token of the `authorization` metadata with the key. */
static bool authorized(const srv_gcall *g) {
    const char *key = g->srv->opt.api_key;
    if (!key) return true;
    for (size_t i = 0; i < g->md.count; i++) {
        const grpc_metadata *m = &g->md.metadata[i];
        if (!grpc_slice_str_cmp(m->key, "authorization")) {
            const char *h = (const char *)GRPC_SLICE_START_PTR(m->value);
            size_t hl = GRPC_SLICE_LENGTH(m->value);
            if (hl < 7 || strncmp(h, "Bearer ", 7)) return false;
            h += 7;
            hl -= 7;
            size_t n = strlen(key);
            unsigned diff = (unsigned)(n ^ hl);
            for (size_t k = 0; k < n; k++) diff |= (unsigned char)key[k] ^ (unsigned char)(k < hl ? h[k] : 0);
            return diff == 0;
        }
    }
    return false;
}

static const char *const k_code_names[] = {
    "OK",          "CANCELLED",          "UNKNOWN",  "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};

static void log_call(const srv_gcall *g) {
    srv_conn c;
    memset(&c, 0, sizeof c);
    snprintf(c.method, sizeof c.method, "POST");
    snprintf(c.path, sizeof c.path, "%s", g->method);
    snprintf(c.remote, sizeof c.remote, "%s", g->remote);
    c.status = 200; /* gRPC answers ride on HTTP/2 200s; grpc_status says how the call ended */
    c.responded = true;
    c.body_len = g->request_bytes;
    c.prompt_tokens = g->prompt_tokens;
    c.completion_tokens = g->completion_tokens;
    c.streamed = g->streamed;
    c.protocol = "grpc";
    c.grpc_status = g->code;
    if (g->code && g->code < (int)(sizeof k_code_names / sizeof k_code_names[0]))
        snprintf(c.error_code, sizeof c.error_code, "%s", k_code_names[g->code]);
    srv_access_log(&c, !g->cancelled, srv_now() - g->t_start);
}

static void dispatch(srv_gcall *g) {
    srv_server *srv = g->srv;
    const char *m = g->method;
    if (!strcmp(m, "/grpc.health.v1.Health/Check")) { /* open, as GET /health: probes carry no key */
        srv_grpc_health_check(g);
        return;
    }
    if (!authorized(g)) {
        srv_gcall_finish(g, SRV_GRPC_UNAUTHENTICATED,
                         "missing or invalid API key (metadata 'authorization: Bearer KEY')", NULL);
        return;
    }
    if (atomic_load(&srv->draining)) {
        srv_gcall_finish(g, SRV_GRPC_UNAVAILABLE, "the server is shutting down", NULL);
        return;
    }
    if (!strcmp(m, "/wgllm.v1.Generator/GenerateToken"))
        srv_grpc_generate(g, true);
    else if (!strcmp(m, "/wgllm.v1.Generator/Generate"))
        srv_grpc_generate(g, false);
    else if (!strcmp(m, "/wgllm.v1.Generator/Tokenize"))
        srv_grpc_tokenize(g);
    else if (!strcmp(m, "/wgllm.v1.Generator/Detokenize"))
        srv_grpc_detokenize(g);
    else if (!strcmp(m, "/wgllm.v1.Generator/GetModelInfo"))
        srv_grpc_model_info(g);
    else
        srv_gcall_finish(g, SRV_GRPC_UNIMPLEMENTED, "no such method", NULL);
}

static void gcall_free(srv_gcall *g) {
    if (g->call) grpc_call_unref(g->call);
    grpc_metadata_array_destroy(&g->md);
    grpc_call_details_destroy(&g->details);
    grpc_completion_queue_shutdown(g->cq);
    while (pluck(g, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC)).type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(g->cq);
    free(g);
}

static void copy_method(srv_gcall *g) {
    size_t n = GRPC_SLICE_LENGTH(g->details.method);
    if (n >= sizeof g->method) n = sizeof g->method - 1;
    memcpy(g->method, GRPC_SLICE_START_PTR(g->details.method), n);
    g->method[n] = 0;
}

static void serve_call(srv_gcall *g) {
    g->t_start = srv_now();
    copy_method(g);
    char *peer = grpc_call_get_peer(g->call);
    snprintf(g->remote, sizeof g->remote, "%s", peer ? peer : "");
    gpr_free(peer);

    grpc_op close_op;
    memset(&close_op, 0, sizeof close_op);
    close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    close_op.data.recv_close_on_server.cancelled = &g->cancelled;
    if (grpc_call_start_batch(g->call, &close_op, 1, &g->close_tag, NULL) != GRPC_CALL_OK) g->close_done = true;

    dispatch(g);
    if (!g->finished) srv_gcall_finish(g, SRV_GRPC_CANCELLED, "cancelled", NULL);
    if (!g->close_done) pluck(g, &g->close_tag, gpr_inf_future(GPR_CLOCK_MONOTONIC));
    g->close_done = true;
    if (g->cancelled && g->code == SRV_GRPC_OK) g->code = SRV_GRPC_CANCELLED;
    /* a client whose deadline passes usually resets the stream itself, a little before the
       server's own timer (the deadline travels as a relative grpc-timeout): near it counts */
    gpr_timespec slack = gpr_time_from_millis(DEADLINE_SLACK_MS, GPR_TIMESPAN);
    if (g->cancelled &&
        gpr_time_cmp(gpr_time_add(gpr_now(g->details.deadline.clock_type), slack), g->details.deadline) >= 0)
        g->code = SRV_GRPC_DEADLINE_EXCEEDED;
    srv_metrics_grpc(g->srv->metrics, g->method, g->code);
    log_call(g);
}

typedef struct worker_arg {
    srv_grpc *gs;
    srv_gcall *g;
} worker_arg;

static void *worker_main(void *p) {
    worker_arg a = *(worker_arg *)p;
    free(p);
    atomic_fetch_add(&a.gs->srv->open_requests, 1);
    serve_call(a.g);
    gcall_free(a.g);
    atomic_fetch_sub(&a.gs->srv->open_requests, 1);
    pthread_mutex_lock(&a.gs->mu);
    a.gs->workers--;
    pthread_cond_broadcast(&a.gs->cv);
    pthread_mutex_unlock(&a.gs->mu);
    return NULL;
}

/* Starts a thread for the call, or refuses it when too many are open. */
static void hand_over(srv_grpc *gs, srv_gcall *g) {
    pthread_mutex_lock(&gs->mu);
    bool room = gs->workers < gs->srv->opt.max_connections;
    if (room) gs->workers++;
    pthread_mutex_unlock(&gs->mu);
    worker_arg *a = room ? malloc(sizeof *a) : NULL;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    bool ok = a != NULL;
    if (ok) {
        a->gs = gs;
        a->g = g;
        ok = pthread_create(&t, &attr, worker_main, a) == 0;
        if (!ok) free(a);
    }
    pthread_attr_destroy(&attr);
    if (ok) return;
    if (room) {
        pthread_mutex_lock(&gs->mu);
        gs->workers--;
        pthread_cond_broadcast(&gs->cv);
        pthread_mutex_unlock(&gs->mu);
    }
    /* no batch to wait on: this thread must not depend on a client that does not read */
    grpc_call_cancel_with_status(g->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many open calls", NULL);
    g->code = SRV_GRPC_RESOURCE_EXHAUSTED;
    copy_method(g);
    srv_metrics_grpc(g->srv->metrics, g->method, g->code);
    gcall_free(g);
}

static srv_gcall *gcall_new(srv_grpc *gs) {
    srv_gcall *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->srv = gs->srv;
    if (!(g->cq = grpc_completion_queue_create_for_pluck(NULL))) {
        free(g);
        return NULL;
    }
    grpc_call_details_init(&g->details);
    grpc_metadata_array_init(&g->md);
    return g;
}

static void *acceptor_main(void *p) {
    srv_grpc *gs = p;
    bool shut = false, pending = false;
    while (!shut || pending) {
        if (!pending && !atomic_load(&gs->stopping)) {
            srv_gcall *g = gcall_new(gs);
            if (g && grpc_server_request_call(gs->server, &g->call, &g->details, &g->md, g->cq, gs->cq, g) ==
                         GRPC_CALL_OK)
                pending = true;
            else if (g)
                gcall_free(g);
        }
        grpc_event ev = grpc_completion_queue_next(gs->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type != GRPC_OP_COMPLETE) continue;
        if (ev.tag == &gs->shutdown_tag) {
            shut = true;
            continue;
        }
        pending = false;
        srv_gcall *g = ev.tag;
        if (ev.success && !atomic_load(&gs->stopping))
            hand_over(gs, g);
        else
            gcall_free(g);
    }
    return NULL;
}

/* ---- lifecycle ---- */

bool srv_grpc_listen(srv_server *srv, char *err, size_t err_size) {
    srv_grpc *gs = calloc(1, sizeof *gs);
    if (!gs) {
        snprintf(err, err_size, "out of memory");
        return false;
    }
    grpc_init();
    gs->srv = srv;
    pthread_mutex_init(&gs->mu, NULL);
    pthread_cond_init(&gs->cv, NULL);
    atomic_init(&gs->stopping, false);
    srv->grpc = gs;
    /* no SO_REUSEPORT (gRPC's default): a second server on the port must fail, not share it;
       request messages are held to --max-body, as HTTP bodies (larger: RESOURCE_EXHAUSTED) */
    size_t max_body = srv->opt.max_body < INT_MAX ? srv->opt.max_body : INT_MAX;
    grpc_arg arg[2] = {
        {.type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
        {.type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = (int)max_body},
    };
    grpc_channel_args args = {.num_args = 2, .args = arg};
    gs->server = grpc_server_create(&args, NULL);
    gs->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(gs->server, gs->cq, NULL);
    char addr[160];
    const char *host = srv->opt.host;
    snprintf(addr, sizeof addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, srv->opt.grpc_port);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    gs->port = grpc_server_add_http2_port(gs->server, addr, creds);
    grpc_server_credentials_release(creds);
    if (gs->port <= 0) {
        snprintf(err, err_size, "cannot listen for gRPC on %s (in use, or not a local address)", addr);
        return false;
    }
    return true;
}

bool srv_grpc_start(srv_server *srv, char *err, size_t err_size) {
    srv_grpc *gs = srv->grpc;
    grpc_server_start(gs->server);
    if (pthread_create(&gs->acceptor, NULL, acceptor_main, gs) != 0) {
        snprintf(err, err_size, "cannot start the gRPC thread");
        return false;
    }
    gs->started = true;
    return true;
}

int srv_grpc_port(srv_server *srv) { return srv->grpc ? srv->grpc->port : 0; }

void srv_grpc_stop(srv_server *srv) {
    srv_grpc *gs = srv->grpc;
    if (!gs) return;
    atomic_store(&gs->stopping, true);
    grpc_server_shutdown_and_notify(gs->server, gs->cq, &gs->shutdown_tag);
    grpc_server_cancel_all_calls(gs->server);
    if (gs->started) {
        pthread_join(gs->acceptor, NULL);
    } else { /* nobody takes the notice from the queue: take it here */
        for (;;) {
            grpc_event ev = grpc_completion_queue_next(gs->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
            if (ev.type != GRPC_OP_COMPLETE || ev.tag == &gs->shutdown_tag) break;
        }
    }
    pthread_mutex_lock(&gs->mu);
    while (gs->workers > 0) pthread_cond_wait(&gs->cv, &gs->mu);
    pthread_mutex_unlock(&gs->mu);
    grpc_server_destroy(gs->server);
    grpc_completion_queue_shutdown(gs->cq);
    while (grpc_completion_queue_next(gs->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(gs->cq);
    pthread_mutex_destroy(&gs->mu);
    pthread_cond_destroy(&gs->cv);
    free(gs);
    srv->grpc = NULL;
    grpc_shutdown();
}
