/* GET|HEAD /local/NAME with --local-dir DIR: the in-browser page (scripts/build-wasm.sh's
 * OUT/local/) served from a flat folder. A name is one plain file name of a known type, opened
 * below the folder's descriptor without following a link, so no request reaches a file
 * outside the folder, a subfolder, a hidden file or a device. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/server_internal.h"

/* The page runs WebAssembly (wasm-unsafe-eval) in a Worker from this origin; a model given
 * by URL may come from elsewhere over https. */
#define LOCAL_CSP                                                                                                \
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; style-src 'self'; "         \
    "connect-src 'self' https:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static const struct {
    const char *ext, *type;
} k_types[] = {
    {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
    {".wasm", "application/wasm"}, {".json", "application/json"},
    {".gguf", "application/octet-stream"},
};

bool srv_local_open(srv_server *srv, char *err, size_t err_size) {
    srv->local_fd = -1;
    if (!srv->opt.local_dir) return true;
    srv->local_fd = open(srv->opt.local_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (srv->local_fd < 0) {
        snprintf(err, err_size, "--local-dir %s: %s", srv->opt.local_dir, strerror(errno));
        return false;
    }
    return true;
}

void srv_local_close(srv_server *srv) {
    if (srv->local_fd >= 0) close(srv->local_fd);
    srv->local_fd = -1;
}

/* The content type of a servable name, or NULL: [A-Za-z0-9_-][A-Za-z0-9._-]* with a known
 * extension; no '/', no leading dot, nothing to decode. */
const char *srv_local_type(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > 100 || name[0] == '.') return NULL;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                  ch == '-' || ch == '.';
        if (!ok) return NULL;
    }
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof k_types / sizeof k_types[0]; i++)
        if (!strcmp(dot, k_types[i].ext)) return k_types[i].type;
    return NULL;
}

static enum MHD_Result not_found(srv_conn *c) {
    return srv_reply_errorf(c, 404, "invalid_request_error", "not_found", "no such file in the local page");
}

enum MHD_Result srv_route_local(srv_conn *c) {
    const char *name = !strcmp(c->path, "/local/") ? "index.html" : c->path + strlen("/local/");
    const char *type = srv_local_type(name);
    if (!type || strlen(c->path) >= sizeof c->path - 1) return not_found(c); /* a cut path names nothing */
    int fd = openat(c->srv->local_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0) close(fd);
        return not_found(c);
    }
    struct MHD_Response *r = MHD_create_response_from_fd64((uint64_t)st.st_size, fd); /* owns fd */
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    return srv_reply_page(c, r, type, LOCAL_CSP);
}
