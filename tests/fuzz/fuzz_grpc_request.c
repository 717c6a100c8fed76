/* libFuzzer target for the gRPC API's request decoding: arbitrary bytes as a serialized
 * wgllm.v1.GenerateRequest (protobuf-c's unpacker, then the mapping onto the HTTP API's
 * validator). Checks what the server relies on: an accepted request holds a prompt, valid
 * UTF-8 and in-range numbers; a refused one carries a 4xx or 500 and a message. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/grpc/grpc_codec.h"

static void check(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    srv_request r;
    srv_error e;
    memset(&e, 0, sizeof e);
    if (srv_grpc_decode_generate(data, size, &r, &e)) {
        check(!r.model || srv_utf8_valid(r.model, strlen(r.model)), "model is UTF-8");
        check(r.kind == SRV_REQ_CHAT ? r.n_msgs >= 1 : (r.prompt != NULL) != (r.prompt_ids != NULL), "a prompt");
        check(!r.prompt || srv_utf8_valid(r.prompt, r.prompt_len), "prompt is UTF-8");
        for (int i = 0; i < r.n_prompt_ids; i++) check(r.prompt_ids[i] >= 0, "token ids");
        check(r.n_stops >= 0 && r.n_stops <= SRV_MAX_STOPS, "stop count");
        for (int i = 0; i < r.n_stops; i++) check(r.stops[i] && r.stops[i][0], "stop non-empty");
        check(isfinite(r.temperature) && r.temperature >= 0 && r.temperature <= 2, "temperature range");
        check(r.top_p > 0 && r.top_p <= 1, "top_p range");
        check(r.min_p >= 0 && r.min_p <= 1, "min_p range");
        check(r.max_tokens == -1 || r.max_tokens >= 1, "max_tokens");
        check(r.top_logprobs >= 0 && r.top_logprobs <= SRV_MAX_TOP_LOGPROBS, "top_logprobs");
        srv_request_free(&r);
    } else {
        check((e.status >= 400 && e.status < 500) || e.status == 500, "error status");
        check(e.message[0] != 0, "error message");
        check(srv_grpc_code_for_http(e.status) != 0, "an error code");
    }
    return 0;
}
