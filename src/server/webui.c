/* GET / and GET|HEAD /webui/NAME: the embedded playground files, with the headers that keep
 * a browser from running anything but them (CSP, nosniff, no framing). */
#include <string.h>

#include "server/server_internal.h"
#include "server/webui.h"

const srv_web_asset *srv_web_asset_for_path(const char *path) {
    if (!strcmp(path, "/")) return srv_web_asset_find("index.html");
    if (strncmp(path, "/webui/", 7)) return NULL;
    const char *name = path + 7;
    /* the table holds plain file names only; this keeps a lookup from ever meaning a path */
    if (!name[0] || strchr(name, '/') || name[0] == '.') return NULL;
    return srv_web_asset_find(name);
}

enum MHD_Result srv_route_webui(srv_conn *c) {
    const srv_web_asset *a = srv_web_asset_for_path(c->path);
    if (!a || strlen(c->path) >= sizeof c->path - 1) /* a cut path names nothing */
        return srv_reply_errorf(c, 404, "invalid_request_error", "not_found",
                                "no such file in the playground (see GET /)");
    /* static storage: MHD sends it without a copy */
    struct MHD_Response *r = MHD_create_response_from_buffer(a->size, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    return srv_reply_page(c, r, a->content_type, SRV_WEBUI_CSP);
}
