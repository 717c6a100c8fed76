/* State shared by the server's HTTP layer, routes and operations. */
#ifndef WGLLM_SERVER_INTERNAL_H
#define WGLLM_SERVER_INTERNAL_H

#include <cJSON.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "server/job.h"
#include "server/metrics.h"
#include "server/model_ref.h"
#include "server/request.h"
#include "server/scheduler.h"
#include "server/server.h"

typedef struct srv_server {
    srv_options opt;
    srv_models models;
    srv_sched *sched;
    srv_metrics *metrics;
    struct MHD_Daemon *daemon;
    struct srv_guard *guard;       /* connection limits and request deadlines */
    struct srv_acceptor *acceptor; /* accepts, and hands over connections whose request head is in */
    int port;                      /* bound */
    int listen_fd;                 /* bound and listening, until the acceptor takes it; else -1 */
    atomic_bool draining;
    atomic_int open_requests; /* HTTP requests received and not yet completed */
    atomic_uint_fast64_t next_id;
    struct srv_reloader *reloader;
    struct srv_grpc *grpc; /* the gRPC API (grpc/grpc_server.c), or NULL */
    char models_dir[PATH_MAX]; /* reload paths must resolve inside it (admin.c) */
    int local_fd;              /* --local-dir, open; -1: none (local_dir.c) */
} srv_server;

/* One HTTP request, from its headers to the completion notification. */
typedef struct srv_conn {
    srv_server *srv;
    struct MHD_Connection *mhd;
    char method[16], path[128], remote[64];
    const char *route; /* static route name for metrics */
    double t_start;
    char *body;
    size_t body_len, body_cap;
    bool too_big, responded, streamed;
    bool counted; /* in the request metrics already */
    bool http11;  /* the request said HTTP/1.1 */
    bool probed;  /* a half-closed client was sent an interim 100 to learn whether it is still there */
    int status;
    int prompt_tokens, completion_tokens;
    srv_job *job; /* a generation in progress, cancelled if the client leaves */
    char error_code[48];
    const char *protocol; /* NULL: HTTP; "grpc": a gRPC call logged in the same shape */
    int grpc_status;
} srv_conn;

/* ---- responses (http.c); each queues one response and records the status ---- */
enum MHD_Result srv_reply(srv_conn *c, int status, const char *content_type, char *body, size_t len);
enum MHD_Result srv_reply_json(srv_conn *c, int status, cJSON *obj); /* frees obj */
/* 200 with a page's file (r, taken): its type, the page's CSP and the headers that keep it to itself */
enum MHD_Result srv_reply_page(srv_conn *c, struct MHD_Response *r, const char *content_type, const char *csp);
enum MHD_Result srv_reply_error(srv_conn *c, const srv_error *e);
enum MHD_Result srv_reply_errorf(srv_conn *c, int status, const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* True when the client is gone: the connection was reset or a write failed. A client
   that only shut down its sending side (half-close) still gets its answer. */
bool srv_client_gone(srv_conn *c);
/* True once the client has shut down its sending side (closed, or half-closed and reading). */
bool srv_client_eof(srv_conn *c);

/* ---- routes ---- */
enum MHD_Result srv_route_health(srv_conn *c);
enum MHD_Result srv_route_ready(srv_conn *c);
enum MHD_Result srv_route_models(srv_conn *c);
enum MHD_Result srv_route_metrics(srv_conn *c);
enum MHD_Result srv_route_tokenize(srv_conn *c);
enum MHD_Result srv_route_detokenize(srv_conn *c);
enum MHD_Result srv_route_reload(srv_conn *c); /* admin.c: checks the admin key itself */
enum MHD_Result srv_route_webui(srv_conn *c);  /* webui.c: the embedded playground page */
enum MHD_Result srv_route_local(srv_conn *c);  /* local_dir.c: the in-browser page from --local-dir */
bool srv_local_open(srv_server *srv, char *err, size_t err_size);
void srv_local_close(srv_server *srv);
const char *srv_local_type(const char *name); /* content type of a servable file name, or NULL */
/* The body as a JSON object (valid UTF-8), or NULL with e set. */
cJSON *srv_parse_object(srv_conn *c, srv_error *e);
/* Resolves the models directory (--models-dir, or the -m file's). */
bool srv_admin_init(srv_server *srv, char *err, size_t err_size);
enum MHD_Result srv_route_generate(srv_conn *c, srv_req_kind kind);
/* Checks the model name, tokenizes the prompt and builds the job (not yet submitted); takes
   ownership of req. NULL with e set (400, 404 or 500) on failure. */
srv_job *srv_generate_prepare(srv_server *srv, srv_request *req, srv_error *e);

/* ---- OpenAI response bodies (openai_format.c) ---- */
cJSON *srv_openai_response(const srv_job *j, const char *id, int64_t created, const char *text, size_t len);
cJSON *srv_openai_chunk(const srv_job *j, const char *id, int64_t created, const char *text, size_t len,
                        const srv_token_logprob *lps, int n_lps, bool first, srv_finish finish);
cJSON *srv_openai_usage(int prompt_tokens, int completion_tokens);
const char *srv_finish_name(srv_finish f);

/* ---- operations (server.c) ---- */
bool srv_reload(srv_server *srv, const char *path, char *id, size_t id_size, char *err, size_t err_size);
void srv_new_id(srv_server *srv, const char *prefix, char *out, size_t size);

#endif
