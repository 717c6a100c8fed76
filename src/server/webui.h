/* The web playground: a chat page embedded in the binary at build time (web/playground,
 * cmake/embed_web.cmake), served at GET / and /webui/NAME unless --no-webui. */
#ifndef WGLLM_SERVER_WEBUI_H
#define WGLLM_SERVER_WEBUI_H

#include <stddef.h>

typedef struct srv_web_asset {
    const char *name;         /* file name in web/playground, e.g. "app.js" */
    const char *content_type; /* from the extension */
    const unsigned char *data;
    size_t size;
} srv_web_asset;

/* The embedded file of that exact name, or NULL (static storage; never a file system lookup). */
const srv_web_asset *srv_web_asset_find(const char *name);

/* The asset a request path names: "/" is index.html, "/webui/NAME" is NAME; else NULL. */
const srv_web_asset *srv_web_asset_for_path(const char *path);

/* The Content-Security-Policy of every playground response: scripts, styles and fetches from
   this origin only, no inline script, no framing. */
#define SRV_WEBUI_CSP                                                                                        \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

#endif
