/* The HTTP layer: request bodies, authentication, dispatch, replies, and the
 * completion notification that logs the request and frees what it held. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/access_log.h"
#include "server/http.h"
#include "server/server_internal.h"

enum MHD_Result srv_reply(srv_conn *c, int status, const char *content_type, char *body, size_t len) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (status == 429) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (atomic_load(&c->srv->draining) || c->too_big) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c->mhd, (unsigned)status, r);
    MHD_destroy_response(r);
    c->status = status;
    c->responded = true;
    /* counted now, not when the connection closes: a client that reads /metrics right after
       this response must see it */
    if (!c->counted) srv_metrics_request(c->srv->metrics, c->route, status);
    c->counted = true;
    return ret;
}

enum MHD_Result srv_reply_json(srv_conn *c, int status, cJSON *obj) {
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!s) return MHD_NO;
    return srv_reply(c, status, "application/json", s, strlen(s));
}

enum MHD_Result srv_reply_error(srv_conn *c, const srv_error *e) {
    cJSON *root = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "message", e->message);
    cJSON_AddStringToObject(err, "type", e->type ? e->type : "invalid_request_error");
    if (e->param[0])
        cJSON_AddStringToObject(err, "param", e->param);
    else
        cJSON_AddNullToObject(err, "param");
    if (e->code)
        cJSON_AddStringToObject(err, "code", e->code);
    else
        cJSON_AddNullToObject(err, "code");
    snprintf(c->error_code, sizeof c->error_code, "%s", e->code ? e->code : e->type ? e->type : "");
    return srv_reply_json(c, e->status, root);
}

enum MHD_Result srv_reply_errorf(srv_conn *c, int status, const char *type, const char *code, const char *fmt, ...) {
    srv_error e = {.status = status, .type = type, .code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return srv_reply_error(c, &e);
}

bool srv_client_gone(srv_conn *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c->mhd, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return true;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

typedef struct route {
    const char *path, *method;
    enum MHD_Result (*fn)(srv_conn *);
    bool open; /* served without the API key */
} route;

static enum MHD_Result route_completions(srv_conn *c) { return srv_route_generate(c, SRV_REQ_COMPLETION); }
static enum MHD_Result route_chat(srv_conn *c) { return srv_route_generate(c, SRV_REQ_CHAT); }

static const route k_routes[] = {
    {"/v1/completions", "POST", route_completions, false},
    {"/v1/chat/completions", "POST", route_chat, false},
    {"/v1/models", "GET", srv_route_models, false},
    {"/tokenize", "POST", srv_route_tokenize, false},
    {"/detokenize", "POST", srv_route_detokenize, false},
    {"/health", "GET", srv_route_health, true},
    {"/ready", "GET", srv_route_ready, true},
    {"/metrics", "GET", srv_route_metrics, true},
    {"/admin/reload", "POST", srv_route_reload, true}, /* checks the admin key (admin.c) */
};
#define N_ROUTES (sizeof k_routes / sizeof k_routes[0])

/* The admin routes do not exist (404) unless --admin-key is given. */
static const route *find_route(const srv_server *srv, const char *url) {
    if (!srv->opt.admin_key && !strncmp(url, "/admin/", 7)) return NULL;
    for (size_t i = 0; i < N_ROUTES; i++)
        if (!strcmp(url, k_routes[i].path)) return &k_routes[i];
    return NULL;
}

/* Constant-time comparison of the bearer token with the key. */
static bool authorized(srv_conn *c) {
    const char *key = c->srv->opt.api_key;
    if (!key) return true;
    const char *h = MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7)) return false;
    h += 7;
    size_t n = strlen(key), m = strlen(h);
    unsigned diff = (unsigned)(n ^ m);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)key[i] ^ (unsigned char)(i < m ? h[i] : 0);
    return diff == 0;
}

static void remote_address(srv_conn *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c->mhd, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(c->remote, sizeof c->remote, "-");
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->remote, sizeof c->remote);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->remote, sizeof c->remote);
}

static enum MHD_Result too_large(srv_conn *c) {
    c->too_big = true;
    return srv_reply_errorf(c, 413, "invalid_request_error", "request_too_large",
                            "the request body exceeds %zu bytes", c->srv->opt.max_body);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mhd, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    srv_server *srv = cls;
    srv_conn *c = *con_cls;
    if (!c) { /* headers are in; the body (if any) follows */
        if (!(c = calloc(1, sizeof *c))) return MHD_NO;
        *con_cls = c;
        c->srv = srv;
        c->mhd = mhd;
        c->t_start = srv_now();
        snprintf(c->method, sizeof c->method, "%s", method);
        snprintf(c->path, sizeof c->path, "%s", url);
        const route *r = find_route(srv, url);
        c->route = r ? r->path : "other";
        remote_address(c);
        atomic_fetch_add(&srv->open_requests, 1);
        const char *cl = MHD_lookup_connection_value(mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > srv->opt.max_body) return too_large(c);
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (c->responded || c->too_big) return MHD_YES; /* discard */
        if (c->body_len + n > srv->opt.max_body) {
            c->too_big = true;
            return MHD_YES;
        }
        if (c->body_len + n + 1 > c->body_cap) {
            size_t cap = (c->body_len + n + 1) * 2;
            if (cap > srv->opt.max_body + 1) cap = srv->opt.max_body + 1;
            char *p = realloc(c->body, cap);
            if (!p) return MHD_NO;
            c->body = p;
            c->body_cap = cap;
        }
        memcpy(c->body + c->body_len, upload_data, n);
        c->body_len += n;
        c->body[c->body_len] = 0;
        return MHD_YES;
    }
    if (c->responded) return MHD_YES;
    if (c->too_big) return too_large(c);
    const route *r = find_route(srv, url);
    if (!r)
        return srv_reply_errorf(c, 404, "invalid_request_error", "not_found", "no route for %s %.100s", method, url);
    if (strcmp(method, r->method))
        return srv_reply_errorf(c, 405, "invalid_request_error", "method_not_allowed", "%.100s takes %s, not %s", url,
                                r->method, method);
    if (!r->open && !authorized(c))
        return srv_reply_errorf(c, 401, "invalid_request_error", "invalid_api_key",
                                "missing or invalid API key (Authorization: Bearer KEY)");
    if (!c->body) {
        if (!(c->body = malloc(1))) return MHD_NO;
        c->body[0] = 0;
    }
    return r->fn(c);
}

static void on_completed(void *cls, struct MHD_Connection *mhd, void **con_cls, enum MHD_RequestTerminationCode toe) {
    srv_server *srv = cls;
    srv_conn *c = *con_cls;
    if (!c) return;
    *con_cls = NULL;
    bool ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
    if (c->job) {
        if (!ok) srv_sched_cancel(srv->sched, c->job);
        srv_job_release(c->job);
    }
    int status = c->responded ? c->status : 499; /* 499: the client left before an answer */
    if (!c->counted) srv_metrics_request(srv->metrics, c->route, status); /* streams and 499s */
    srv_access_log(c, ok, srv_now() - c->t_start);
    free(c->body);
    free(c);
    atomic_fetch_sub(&srv->open_requests, 1);
}

bool srv_http_start(srv_server *srv, char *err, size_t err_size) {
    const srv_options *o = &srv->opt;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, o->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)o->port);
    } else if (inet_pton(AF_INET6, o->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)o->port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, err_size, "--host '%s' is not an IPv4 or IPv6 address", o->host);
        return false;
    }
    srv->daemon = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, &ss,
                                   MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_CONNECTION_LIMIT,
                                   (unsigned)512, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                                   MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, err_size, "cannot listen on %s port %d", o->host, o->port);
        return false;
    }
    return true;
}

int srv_http_port(srv_server *srv) {
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return di ? (int)di->port : -1;
}

void srv_http_stop_accepting(srv_server *srv) {
    MHD_socket s = MHD_quiesce_daemon(srv->daemon);
    if (s != MHD_INVALID_SOCKET) close(s);
}

void srv_http_stop(srv_server *srv) {
    if (srv->daemon) MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
}
