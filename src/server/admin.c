/* The admin routes (POST /admin/reload): off unless --admin-key is given, then open only to
 * requests that carry that key, come from no browser page (no Origin, a JSON body, a
 * loopback Host when the server listens on loopback: DNS rebinding), and name a regular
 * file inside --models-dir. Their answers never quote a file's contents. */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "server/reload.h"
#include "server/server_internal.h"

#define RELOAD_POLL_S 0.1 /* how often a waiting reload request checks its client and the drain */

bool srv_admin_init(srv_server *srv, char *err, size_t err_size) {
    const char *dir = srv->opt.models_dir;
    char model_abs[PATH_MAX];
    if (!dir) { /* the directory of the -m file */
        if (!realpath(srv->opt.model_path, model_abs)) {
            snprintf(err, err_size, "cannot resolve the model path '%s'", srv->opt.model_path);
            return false;
        }
        char *slash = strrchr(model_abs, '/');
        if (slash == model_abs) slash++; /* a model in / */
        *slash = 0;
        dir = model_abs;
    }
    struct stat st;
    if (!realpath(dir, srv->models_dir) || stat(srv->models_dir, &st) || !S_ISDIR(st.st_mode)) {
        snprintf(err, err_size, "--models-dir '%s' is not a directory", dir);
        return false;
    }
    return true;
}

static bool loopback_literal(const char *host) {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

/* The Host header's name (without port and IPv6 brackets) names this machine's loopback or
 * the --host address. A page served from a rebound DNS name carries its own name there. */
static bool host_allowed(const srv_server *srv, const char *h) {
    if (!h) return true; /* HTTP/1.0 without Host: no browser sends that */
    char name[256];
    size_t n = strlen(h);
    if (n >= sizeof name) return false;
    if (h[0] == '[') {
        const char *end = strchr(h, ']');
        if (!end) return false;
        n = (size_t)(end - h - 1);
        h++;
    } else {
        const char *colon = strchr(h, ':');
        if (colon && !strchr(colon + 1, ':')) n = (size_t)(colon - h);
    }
    memcpy(name, h, n);
    name[n] = 0;
    return !strcasecmp(name, "localhost") || loopback_literal(name) || !strcasecmp(name, srv->opt.host);
}

/* Constant-time comparison of the bearer token with the admin key. */
static bool admin_key_ok(srv_conn *c) {
    const char *key = c->srv->opt.admin_key;
    const char *h = MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!key || !h || strncmp(h, "Bearer ", 7)) return false;
    h += 7;
    size_t n = strlen(key), m = strlen(h);
    unsigned diff = (unsigned)(n ^ m);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)key[i] ^ (unsigned char)(i < m ? h[i] : 0);
    return diff == 0;
}

static bool json_content_type(const char *ct) {
    const char *want = "application/json";
    size_t n = strlen(want);
    return ct && !strncasecmp(ct, want, n) && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

/* True when the request may use an admin route; else the refusal is queued in *ret. */
static bool admin_allowed(srv_conn *c, enum MHD_Result *ret) {
    srv_server *srv = c->srv;
    const char *origin = MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    const char *ct = MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (origin) {
        *ret = srv_reply_errorf(c, 403, "invalid_request_error", "cross_origin_refused",
                                "admin requests from a web page (with an Origin header) are refused");
    } else if (loopback_literal(srv->opt.host) && !host_allowed(srv, host)) {
        *ret = srv_reply_errorf(c, 403, "invalid_request_error", "host_not_allowed",
                                "admin requests must name this host (localhost or a loopback address)");
    } else if (!admin_key_ok(c)) {
        *ret = srv_reply_errorf(c, 401, "invalid_request_error", "invalid_admin_key",
                                "missing or invalid admin key (Authorization: Bearer ADMIN_KEY)");
    } else if (c->body_len && !json_content_type(ct)) {
        *ret = srv_reply_errorf(c, 415, "invalid_request_error", "unsupported_media_type",
                                "admin request bodies must be application/json");
    } else {
        return true;
    }
    return false;
}

typedef enum path_check { PATH_OK, PATH_NOT_ALLOWED, PATH_NOT_REGULAR } path_check;

/* Resolves path (relative: to the models directory) into out, every symlink followed, and
 * accepts it only inside the models directory. Missing and outside read alike. */
static path_check allowed_model_path(const srv_server *srv, const char *path, char out[PATH_MAX]) {
    char joined[PATH_MAX];
    int n = path[0] == '/' ? snprintf(joined, sizeof joined, "%s", path)
                           : snprintf(joined, sizeof joined, "%s/%s", srv->models_dir, path);
    if (!path[0] || n < 0 || (size_t)n >= sizeof joined || !realpath(joined, out)) return PATH_NOT_ALLOWED;
    const char *dir = srv->models_dir;
    size_t d = strlen(dir);
    bool inside = !strcmp(dir, "/") || (!strncmp(out, dir, d) && out[d] == '/');
    if (!inside) return PATH_NOT_ALLOWED;
    struct stat st;
    if (stat(out, &st) || !S_ISREG(st.st_mode)) return PATH_NOT_REGULAR;
    return PATH_OK;
}

static enum MHD_Result shutting_down(srv_conn *c) {
    return srv_reply_errorf(c, 503, "server_error", "shutting_down",
                            "the server is shutting down; the reload was not done or may not finish");
}

enum MHD_Result srv_route_reload(srv_conn *c) {
    srv_server *srv = c->srv;
    enum MHD_Result ret;
    if (!admin_allowed(c, &ret)) return ret;
    char resolved[PATH_MAX];
    const char *path = NULL;
    if (c->body_len) {
        srv_error e;
        cJSON *root = srv_parse_object(c, &e);
        if (!root) return srv_reply_error(c, &e);
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
        path_check pc = PATH_OK;
        if (model && cJSON_IsString(model)) {
            pc = allowed_model_path(srv, model->valuestring, resolved);
            path = resolved;
        }
        bool bad_type = model && !cJSON_IsString(model);
        cJSON_Delete(root);
        if (bad_type)
            return srv_reply_errorf(c, 400, "invalid_request_error", "invalid_value",
                                    "'model' must be the path of a GGUF file in the models directory");
        if (pc == PATH_NOT_ALLOWED)
            return srv_reply_errorf(c, 404, "invalid_request_error", "model_not_found",
                                    "reload failed: model file not found or not allowed (paths must lie inside "
                                    "the models directory, --models-dir)");
        if (pc == PATH_NOT_REGULAR)
            return srv_reply_errorf(c, 400, "invalid_request_error", "not_regular_file",
                                    "reload failed: not a regular file");
    }
    if (atomic_load(&srv->draining)) return shutting_down(c);
    srv_reload_ticket *t = srv_reloader_submit(srv->reloader, path, false);
    if (!t) return shutting_down(c);
    char id[128];
    srv_reload_result res;
    while ((res = srv_reload_ticket_wait(t, RELOAD_POLL_S, id, sizeof id)) == SRV_RELOAD_PENDING) {
        if (atomic_load(&srv->draining)) break;
        if (srv_client_gone(c)) {
            srv_reload_ticket_release(t); /* the reload itself carries on */
            return MHD_NO;
        }
    }
    srv_reload_ticket_release(t);
    switch (res) {
    case SRV_RELOAD_OK: {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "status", "ok");
        cJSON_AddStringToObject(o, "model", id);
        return srv_reply_json(c, 200, o);
    }
    case SRV_RELOAD_NOT_GGUF:
        return srv_reply_errorf(c, 400, "invalid_request_error", "reload_failed", "reload failed: not a GGUF file");
    case SRV_RELOAD_FAILED:
        return srv_reply_errorf(c, 400, "invalid_request_error", "reload_failed",
                                "reload failed: the model cannot be loaded (the server log says why); "
                                "the current model stays");
    default:
        return shutting_down(c);
    }
}
