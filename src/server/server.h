/* `wgllm serve`: an OpenAI-compatible HTTP server with continuous batching. */
#ifndef WGLLM_SERVER_H
#define WGLLM_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "wgllm.h"

typedef struct srv_options {
    const char *model_path;
    const char *host; /* listen address (IPv4 or IPv6 literal) */
    int port;         /* 0: any free port (printed) */
    wgllm_backend_kind backend;
    int device, n_threads;
    int parallel;        /* sequences decoded together */
    int n_ctx;           /* per sequence; 0: the model's training context */
    int max_queue;       /* requests that may wait for a slot */
    double drain_timeout; /* seconds */
    const char *api_key; /* NULL: no authentication */
    const char *alias;   /* model id in the API; NULL: the file name without .gguf */
    const char *model_cache; /* directory (a tmpfs) holding verified copies of models; NULL: none */
    size_t max_body;     /* bytes */
    int prefill_chunk;   /* prompt tokens a sequence feeds per step */
    int step_tokens;     /* most tokens one batched step evaluates */
    int max_connections;        /* open HTTP connections, all clients together */
    int max_connections_per_ip; /* per client address; 0: no limit */
    double request_timeout;     /* seconds to receive a whole request (headers and body) */
    const char *admin_key;  /* NULL: the admin routes are off (404) */
    const char *models_dir; /* reloads may name files only inside it; NULL: the -m file's directory */
    int grpc_port;          /* the gRPC API's port (builds with WGLLM_HAVE_GRPC); -1: off, 0: any free port */
    bool no_webui;          /* GET / and /webui/ answer 404 instead of the playground page */
    const char *local_dir;  /* GET /local/NAME serves the in-browser page from it; NULL: 404 */
} srv_options;

void srv_options_defaults(srv_options *o);

/* Exit code when the drain timed out and requests were cut (each got a 503 or an SSE error). */
#define SRV_EXIT_DRAIN_TIMEOUT 3

/* Runs until SIGTERM/SIGINT and the drain that follows. Returns the process exit code:
 * 0, 1 (could not start) or SRV_EXIT_DRAIN_TIMEOUT. */
int srv_run(const srv_options *o);

#endif
