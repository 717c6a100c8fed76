/* wgllm.v1 request messages -> the server's requests. Independent of the gRPC transport, so
 * that the fuzz target can call it alone. */
#ifndef WGLLM_SERVER_GRPC_CODEC_H
#define WGLLM_SERVER_GRPC_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/request.h"

/* Decodes a serialized wgllm.v1.GenerateRequest and checks it with the HTTP API's validator
   (the message is mapped onto the JSON form of /v1/completions, or /v1/chat/completions for
   chat messages). Returns true and fills *out (free with srv_request_free), or false with *e
   set: status 400 for malformed bytes or a bad field, 500 when out of memory. */
bool srv_grpc_decode_generate(const uint8_t *data, size_t len, srv_request *out, srv_error *e);

/* The gRPC status code for an srv_error's HTTP status (400 INVALID_ARGUMENT, 404 NOT_FOUND,
   429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE, else INTERNAL). */
int srv_grpc_code_for_http(int status);

#endif
