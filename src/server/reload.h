/* Hot reloads run on a thread of their own: loading a model takes seconds to minutes, and
 * neither the signal thread (which must stay free to drain on SIGTERM) nor an HTTP thread
 * (which the daemon joins at shutdown) may wait on it. Reloads run one at a time, in order. */
#ifndef WGLLM_SERVER_RELOAD_H
#define WGLLM_SERVER_RELOAD_H

#include <stdbool.h>
#include <stddef.h>

struct srv_server;
typedef struct srv_reloader srv_reloader;
typedef struct srv_reload_ticket srv_reload_ticket;

typedef enum srv_reload_result {
    SRV_RELOAD_PENDING = 0, /* queued or loading */
    SRV_RELOAD_OK,
    SRV_RELOAD_NOT_GGUF,  /* the file is not a readable GGUF file */
    SRV_RELOAD_FAILED,    /* a GGUF file that cannot be loaded (memory, unsupported, ...) */
    SRV_RELOAD_CANCELLED, /* the server stopped before the reload began */
} srv_reload_result;

srv_reloader *srv_reloader_create(struct srv_server *srv, char *err, size_t err_size);
/* Stops the thread. A reload still loading cannot be interrupted: then the thread is left
 * to finish on its own (the process is about to exit), false is returned, and the caller
 * must not free what a reload uses (the model registry, the metrics). */
bool srv_reloader_stop(srv_reloader *r);

/* Queues a reload of path (NULL: the current model's file again) and returns a ticket,
 * which the caller releases (NULL: out of memory or stopped). Used by SIGHUP, which does not
 * wait: a SIGHUP that finds another still queued joins it (released at once, NULL returned). */
srv_reload_ticket *srv_reloader_submit(srv_reloader *r, const char *path, bool coalesce);
/* Waits at most timeout_s seconds; returns the result (PENDING: not finished yet) and, once
 * OK, the served model id in id. */
srv_reload_result srv_reload_ticket_wait(srv_reload_ticket *t, double timeout_s, char *id, size_t id_size);
void srv_reload_ticket_release(srv_reload_ticket *t);

#endif
