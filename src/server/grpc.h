/* The gRPC API of `wgllm serve` (proto/wgllm/v1/generate.proto and grpc.health.v1): the same
 * scheduler, queue, validation, metrics, access log, API key and drain as the HTTP API. Built
 * when WGLLM_HAVE_GRPC is defined (the WGLLM_GRPC CMake option). */
#ifndef WGLLM_SERVER_GRPC_H
#define WGLLM_SERVER_GRPC_H

#include <stdbool.h>
#include <stddef.h>

struct srv_server;

/* Binds opt.grpc_port (a port in use fails here, before the model loads). */
bool srv_grpc_listen(struct srv_server *srv, char *err, size_t err_size);
/* Serves calls (after the scheduler exists). */
bool srv_grpc_start(struct srv_server *srv, char *err, size_t err_size);
int srv_grpc_port(struct srv_server *srv);
/* Cancels the calls still open, waits for their threads and frees everything. Idempotent. */
void srv_grpc_stop(struct srv_server *srv);

#endif
