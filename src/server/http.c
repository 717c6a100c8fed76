/* The HTTP layer: request bodies, authentication, dispatch, replies, and the
 * completion notification that logs the request and frees what it held. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/access_log.h"
#include "server/acceptor.h"
#include "server/conn_guard.h"
#include "server/http.h"
#include "server/server_internal.h"

/* Queues r (taken) with status and records the status. */
static enum MHD_Result queue_response(srv_conn *c, int status, struct MHD_Response *r) {
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

enum MHD_Result srv_reply(srv_conn *c, int status, const char *content_type, char *body, size_t len) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (status == 429) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    return queue_response(c, status, r);
}

enum MHD_Result srv_reply_page(srv_conn *c, struct MHD_Response *r, const char *content_type, const char *csp) {
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, "Content-Security-Policy", csp);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    /* a page's files change with the binary or the folder: revalidate rather than keep an old copy */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    return queue_response(c, 200, r);
}

enum MHD_Result srv_reply_json(srv_conn *c, int status, cJSON *obj) {
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!s) return MHD_NO;
    return srv_reply(c, status, "application/json", s, strlen(s));
}

static cJSON *error_object(srv_conn *c, const srv_error *e) {
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
    return root;
}

enum MHD_Result srv_reply_error(srv_conn *c, const srv_error *e) {
    return srv_reply_json(c, e->status, error_object(c, e));
}

enum MHD_Result srv_reply_errorf(srv_conn *c, int status, const char *type, const char *code, const char *fmt, ...) {
    srv_error e = {.status = status, .type = type, .code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return srv_reply_error(c, &e);
}

static int conn_fd(srv_conn *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c->mhd, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

bool srv_client_eof(srv_conn *c) {
    int fd = conn_fd(c);
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return fd < 0 || (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)));
}

bool srv_client_gone(srv_conn *c) {
    int fd = conn_fd(c);
    if (fd < 0) return true;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) return true; /* reset, or shut down by the deadline */
    if (!(p.revents & POLLRDHUP) || c->probed || c->responded || !c->http11) return false;
    /* The client sent FIN: it closed the socket, or only its sending side (and waits for
       the answer). Only a write tells them apart: a closed socket answers it with a
       reset, which the next check sees. HTTP/1.1 clients must accept interim 1xx
       responses before the final one, and MHD writes nothing while a route runs. */
    c->probed = true;
    static const char probe[] = "HTTP/1.1 100 Continue\r\n\r\n";
    ssize_t n = send(fd, probe, sizeof probe - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

/* Writes all of buf to the (non-blocking) socket within a few seconds. */
static bool write_raw(int fd, const char *buf, size_t len) {
    double deadline = srv_now() + 5;
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (srv_now() > deadline || poll(&p, 1, 200) < 0) return false;
    }
    return true;
}

/* Answers a request whose body is still arriving, then ends the connection (the caller
   returns MHD_NO). libmicrohttpd 0.9.75 queues responses only before the body is read
   or after all of it, so the answer is written here, with Connection: close. */
static enum MHD_Result refuse_mid_body(srv_conn *c, const srv_error *e) {
    int fd = conn_fd(c);
    cJSON *obj = error_object(c, e);
    char *json = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (fd < 0 || !json) {
        free(json);
        return MHD_NO;
    }
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      e->status, MHD_get_reason_phrase_for((unsigned)e->status), strlen(json));
    if (write_raw(fd, head, (size_t)hn) && write_raw(fd, json, strlen(json))) {
        shutdown(fd, SHUT_WR);
        /* read a little of what the client is still sending, so that closing with unread
           data (a reset) is less likely to destroy the answer before the client reads it */
        char sink[16384];
        double deadline = srv_now() + 0.5;
        for (size_t total = 0; total < ((size_t)1 << 20) && srv_now() < deadline;) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, 50) < 0) break;
            ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
            if (n > 0) total += (size_t)n;
        }
        c->status = e->status;
        c->responded = true;
        if (!c->counted) srv_metrics_request(c->srv->metrics, c->route, e->status);
        c->counted = true;
    }
    free(json);
    return MHD_NO;
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
    {"/", "GET", srv_route_webui, true}, /* the playground asks for the API key itself */
};
/* /webui/NAME: the playground's other files (webui.c answers 404 for names it does not embed) */
static const route k_webui_files = {"/webui/", "GET", srv_route_webui, true};
/* /local/NAME: the in-browser page, from --local-dir (404 without it) */
static const route k_local_files = {"/local/", "GET", srv_route_local, true};
#define N_ROUTES (sizeof k_routes / sizeof k_routes[0])

/* The admin routes do not exist (404) unless --admin-key is given, the playground's with --no-webui. */
static const route *find_route(const srv_server *srv, const char *url) {
    if (!srv->opt.admin_key && !strncmp(url, "/admin/", 7)) return NULL;
    bool webui = !strcmp(url, "/") || !strncmp(url, "/webui/", 7);
    if (webui && srv->opt.no_webui) return NULL;
    if (!strncmp(url, "/webui/", 7)) return &k_webui_files;
    if (!strncmp(url, "/local/", 7)) return srv->local_fd >= 0 ? &k_local_files : NULL;
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

/* Marks requests whose URL has an escaped NUL: MHD decodes %00 and the path string is
   cut there, so "/health%00x" would reach /health. The returned pointer becomes the
   request's first *con_cls (a marker, nothing allocated). */
static char k_nul_in_url;

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mhd) {
    (void)cls;
    (void)mhd;
    return strstr(uri, "%00") ? &k_nul_in_url : NULL;
}

/* What the framing headers say: MHD reads only the first Content-Length, and ignores it
   beside Transfer-Encoding; a body framed two ways is refused (request smuggling). */
typedef struct framing {
    int n_length, n_encoding;
    const char *length;
    bool length_conflict, length_malformed, encoding_unknown;
} framing;

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    framing *f = cls;
    if (!key || !value) return MHD_YES;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        size_t n = strlen(value);
        if (n == 0 || n > 19 || strspn(value, "0123456789") != n) f->length_malformed = true;
        if (f->n_length++ && strcmp(value, f->length)) f->length_conflict = true;
        f->length = value;
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        f->n_encoding++;
        if (strcasecmp(value, "chunked")) f->encoding_unknown = true;
    }
    return MHD_YES;
}

/* A 400 for a request whose URL or framing is unsafe to act on, else MHD_YES to go on. */
static enum MHD_Result check_request_head(srv_conn *c, bool nul_in_url, bool *refused) {
    *refused = true;
    if (nul_in_url)
        return srv_reply_errorf(c, 400, "invalid_request_error", "invalid_url",
                                "the URL contains an escaped NUL (%%00)");
    framing f = {0};
    MHD_get_connection_values(c->mhd, MHD_HEADER_KIND, framing_header, &f);
    if (f.length_malformed || f.length_conflict)
        return srv_reply_errorf(c, 400, "invalid_request_error", "invalid_content_length",
                                f.length_conflict ? "conflicting Content-Length headers"
                                                  : "Content-Length must be a decimal number of bytes");
    if (f.n_encoding && (f.n_length || f.n_encoding > 1 || f.encoding_unknown))
        return srv_reply_errorf(c, 400, "invalid_request_error", "invalid_transfer_encoding",
                                f.n_length ? "a request may have Content-Length or Transfer-Encoding, not both"
                                           : "the only transfer encoding accepted is a single 'chunked'");
    *refused = false;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mhd, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    srv_server *srv = cls;
    srv_conn *c = *con_cls;
    bool nul_in_url = c == (void *)&k_nul_in_url;
    if (!c || nul_in_url) { /* headers are in; the body (if any) follows */
        if (!(c = calloc(1, sizeof *c))) return MHD_NO;
        *con_cls = c;
        c->srv = srv;
        c->mhd = mhd;
        c->t_start = srv_now();
        c->http11 = version && !strcmp(version, MHD_HTTP_VERSION_1_1);
        snprintf(c->method, sizeof c->method, "%s", method);
        snprintf(c->path, sizeof c->path, "%s", url);
        const route *r = find_route(srv, url);
        c->route = r ? r->path : "other";
        remote_address(c);
        atomic_fetch_add(&srv->open_requests, 1);
        bool refused;
        enum MHD_Result ret = check_request_head(c, nul_in_url, &refused);
        const char *cl = MHD_lookup_connection_value(mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!refused && cl && strtoull(cl, NULL, 10) > srv->opt.max_body) ret = too_large(c);
        if (c->responded) srv_guard_request_received(mhd); /* answered early: MHD reads no body */
        return ret;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (c->responded || c->too_big) return MHD_YES; /* discard */
        if (c->body_len + n > srv->opt.max_body) { /* a chunked body crossing the limit: stop reading now */
            c->too_big = true;
            srv_error e = {.status = 413, .type = "invalid_request_error", .code = "request_too_large"};
            snprintf(e.message, sizeof e.message, "the request body exceeds %zu bytes", srv->opt.max_body);
            return refuse_mid_body(c, &e);
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
    srv_guard_request_received(mhd);
    if (c->responded) return MHD_YES;
    if (c->too_big) return too_large(c);
    const route *r = find_route(srv, url);
    if (!r) {
        /* the URL arrives percent-decoded: any bytes at all, and JSON strings must be UTF-8 */
        char *shown = srv_utf8_sanitize(url, strnlen(url, 100), NULL);
        enum MHD_Result ret = srv_reply_errorf(c, 404, "invalid_request_error", "not_found", "no route for %s %s",
                                               method, shown ? shown : "");
        free(shown);
        return ret;
    }
    /* HEAD as GET for the playground's and the local page's files (MHD then sends the head alone) */
    bool head = (r->fn == srv_route_webui || r->fn == srv_route_local) && !strcmp(method, "HEAD");
    if (strcmp(method, r->method) && !head)
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
    srv_guard_request_done(mhd);
    *con_cls = NULL;
    if (!c || c == (void *)&k_nul_in_url) return;
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

/* Binds and listens without SO_REUSEPORT (which lets a second server share the port and
   split the requests): a port in use fails here. SO_REUSEADDR only allows rebinding while
   old connections linger in TIME_WAIT. */
static int open_listener(const struct sockaddr *sa, socklen_t len, const srv_options *o, char *err,
                         size_t err_size) {
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, err_size, "cannot create a socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sa->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, sa, len) || listen(fd, SOMAXCONN)) {
        int e = errno;
        if (e == EADDRINUSE)
            snprintf(err, err_size, "port in use: %s port %d is taken by another process", o->host, o->port);
        else
            snprintf(err, err_size, "cannot listen on %s port %d: %s", o->host, o->port, strerror(e));
        close(fd);
        return -1;
    }
    return fd;
}

bool srv_http_listen(srv_server *srv, char *err, size_t err_size) {
    const srv_options *o = &srv->opt;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t ss_len;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, o->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)o->port);
        ss_len = sizeof *v4;
    } else if (inet_pton(AF_INET6, o->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)o->port);
        ss_len = sizeof *v6;
    } else {
        snprintf(err, err_size, "--host '%s' is not an IPv4 or IPv6 address", o->host);
        return false;
    }
    int fd = open_listener((const struct sockaddr *)&ss, ss_len, o, err, err_size);
    if (fd < 0) return false;
    if (getsockname(fd, (struct sockaddr *)&ss, &ss_len) == 0)
        srv->port = ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
    srv->listen_fd = fd;
    return true;
}

bool srv_http_start(srv_server *srv, char *err, size_t err_size) {
    const srv_options *o = &srv->opt;
    if (srv->listen_fd < 0 && !srv_http_listen(srv, err, err_size)) return false;
    /* connections come from the acceptor (acceptor.h), which holds each until its request head is in */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_USE_NO_LISTEN_SOCKET;
    struct sockaddr_in6 probe;
    if (inet_pton(AF_INET6, o->host, &probe.sin6_addr) == 1) flags |= MHD_USE_IPv6;
    srv_guard_params gp = {o->max_connections, o->max_connections_per_ip, o->request_timeout};
    if (!(srv->guard = srv_guard_create(&gp))) {
        snprintf(err, err_size, "cannot start the connection guard");
        return false;
    }
    int fd = srv->listen_fd;
    srv->listen_fd = -1; /* the acceptor's from here on */
    /* MHD's timeout is an idle one (each byte resets it): it ends stalled answers and idle
       keep-alive connections; the guard's deadline is what bounds a trickled request */
    srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                                   srv, MHD_OPTION_NOTIFY_CONNECTION, srv_guard_notify, srv->guard,
                                   MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_CONNECTION_LIMIT,
                                   (unsigned)o->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                                   MHD_OPTION_END);
    if (!srv->daemon) {
        close(fd);
        snprintf(err, err_size, "cannot start the HTTP server on %s port %d", o->host, o->port);
        return false;
    }
    if (!(srv->acceptor = srv_acceptor_start(fd, srv->daemon, srv->guard, srv->metrics, o->max_connections,
                                              o->request_timeout, o->max_body))) {
        snprintf(err, err_size, "cannot start the connection acceptor");
        return false;
    }
    return true;
}

int srv_http_port(srv_server *srv) { return srv->port; }

void srv_http_stop_accepting(srv_server *srv) {
    srv_acceptor_stop(srv->acceptor);
    srv->acceptor = NULL;
}

void srv_http_stop(srv_server *srv) {
    if (srv->listen_fd >= 0) close(srv->listen_fd); /* bound, never started */
    srv->listen_fd = -1;
    srv_http_stop_accepting(srv);
    if (srv->daemon) MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
    srv_guard_free(srv->guard); /* after the daemon: every connection has been closed */
    srv->guard = NULL;
}
