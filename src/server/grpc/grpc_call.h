/* One gRPC call, served by a thread of its own that waits on the call's own completion
 * queue (pluck): a generation may wait for its tokens without holding up any other call. */
#ifndef WGLLM_SERVER_GRPC_CALL_H
#define WGLLM_SERVER_GRPC_CALL_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/server_internal.h"

/* grpc_status_code values, named as the metrics and the access log name them */
enum {
    SRV_GRPC_OK = 0,
    SRV_GRPC_CANCELLED = 1,
    SRV_GRPC_INVALID_ARGUMENT = 3,
    SRV_GRPC_DEADLINE_EXCEEDED = 4,
    SRV_GRPC_NOT_FOUND = 5,
    SRV_GRPC_RESOURCE_EXHAUSTED = 8,
    SRV_GRPC_UNIMPLEMENTED = 12,
    SRV_GRPC_INTERNAL = 13,
    SRV_GRPC_UNAVAILABLE = 14,
    SRV_GRPC_UNAUTHENTICATED = 16,
};

typedef struct srv_gcall {
    srv_server *srv;
    grpc_call *call;
    grpc_completion_queue *cq; /* bound to this call only */
    grpc_call_details details;
    grpc_metadata_array md;
    char method[96], remote[64];
    double t_start;
    int close_tag;   /* address: the RECV_CLOSE_ON_SERVER tag */
    int cancelled;   /* set by RECV_CLOSE_ON_SERVER: cancelled, deadline passed, or connection lost */
    bool close_done, sent_initial, finished;
    int code;        /* the status sent */
    size_t request_bytes;
    int prompt_tokens, completion_tokens;
    bool streamed;
} srv_gcall;

/* Receives the request message: malloc'd bytes (free them) or NULL when the client sent none
   or went away (the call is then finished with a status). */
uint8_t *srv_gcall_recv(srv_gcall *g, size_t *len);
/* Sends one message (initial metadata first if not sent yet); false when the client is gone. */
bool srv_gcall_send(srv_gcall *g, const ProtobufCMessage *msg);
/* Sends the status, after msg when it is not NULL (a unary answer). details: ASCII text. */
void srv_gcall_finish(srv_gcall *g, int code, const char *details, const ProtobufCMessage *msg);
/* Finishes with the gRPC code of an srv_error (its HTTP status mapped) and its message. */
void srv_gcall_fail(srv_gcall *g, const srv_error *e);
/* True once the client cancelled, its deadline passed or its connection broke. Does not wait. */
bool srv_gcall_gone(srv_gcall *g);

/* ---- methods ---- */
void srv_grpc_generate(srv_gcall *g, bool stream);
void srv_grpc_tokenize(srv_gcall *g);
void srv_grpc_detokenize(srv_gcall *g);
void srv_grpc_model_info(srv_gcall *g);
void srv_grpc_health_check(srv_gcall *g);

#endif
