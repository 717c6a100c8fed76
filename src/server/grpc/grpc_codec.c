/* GenerateRequest -> srv_request: the protobuf message becomes the JSON object the HTTP API
 * would have received, and srv_request_from_object checks it, so both protocols accept and
 * refuse exactly the same values with the same messages. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "server/grpc/grpc_codec.h"
#include "wgllm/v1/generate.pb-c.h"

int srv_grpc_code_for_http(int status) {
    switch (status) {
    case 400: return 3;  /* INVALID_ARGUMENT */
    case 404: return 5;  /* NOT_FOUND */
    case 429: return 8;  /* RESOURCE_EXHAUSTED */
    case 503: return 14; /* UNAVAILABLE */
    default: return 13;  /* INTERNAL */
    }
}

static bool add_prompt(cJSON *o, const Wgllm__V1__GenerateRequest *pb) {
    switch (pb->prompt_case) {
    case WGLLM__V1__GENERATE_REQUEST__PROMPT_TEXT:
        return cJSON_AddStringToObject(o, "prompt", pb->text) != NULL;
    case WGLLM__V1__GENERATE_REQUEST__PROMPT_TOKEN_IDS: {
        cJSON *a = cJSON_AddArrayToObject(o, "prompt");
        if (!a) return false;
        for (size_t i = 0; i < pb->token_ids->n_ids; i++) {
            cJSON *n = cJSON_CreateNumber(pb->token_ids->ids[i]);
            if (!n || !cJSON_AddItemToArray(a, n)) return false;
        }
        return true;
    }
    case WGLLM__V1__GENERATE_REQUEST__PROMPT_CHAT: {
        cJSON *a = cJSON_AddArrayToObject(o, "messages");
        if (!a) return false;
        for (size_t i = 0; i < pb->chat->n_messages; i++) {
            const Wgllm__V1__ChatMessage *m = pb->chat->messages[i];
            cJSON *item = cJSON_CreateObject();
            if (!item || !cJSON_AddItemToArray(a, item)) {
                cJSON_Delete(item);
                return false;
            }
            if (!cJSON_AddStringToObject(item, "role", m->role) || !cJSON_AddStringToObject(item, "content", m->content))
                return false;
        }
        return true;
    }
    default:
        return true; /* no prompt: the validator names the missing field */
    }
}

#define ADD_OPT(field, CASE)                                                                   \
    if (pb->field##_opt_case == WGLLM__V1__GENERATE_REQUEST__##CASE &&                         \
        !cJSON_AddNumberToObject(o, #field, (double)pb->field))                                \
        return false;

static bool to_json(cJSON *o, const Wgllm__V1__GenerateRequest *pb, bool chat) {
    if (pb->model[0] && !cJSON_AddStringToObject(o, "model", pb->model)) return false;
    if (!add_prompt(o, pb)) return false;
    ADD_OPT(max_tokens, MAX_TOKENS_OPT_MAX_TOKENS)
    ADD_OPT(temperature, TEMPERATURE_OPT_TEMPERATURE)
    ADD_OPT(top_p, TOP_P_OPT_TOP_P)
    ADD_OPT(top_k, TOP_K_OPT_TOP_K)
    ADD_OPT(min_p, MIN_P_OPT_MIN_P)
    ADD_OPT(presence_penalty, PRESENCE_PENALTY_OPT_PRESENCE_PENALTY)
    ADD_OPT(frequency_penalty, FREQUENCY_PENALTY_OPT_FREQUENCY_PENALTY)
    ADD_OPT(repeat_penalty, REPEAT_PENALTY_OPT_REPEAT_PENALTY)
    /* the seed's exact 64-bit value is set after validation (a double holds 53 bits) */
    ADD_OPT(seed, SEED_OPT_SEED)
    if (pb->n_stop) {
        cJSON *a = cJSON_AddArrayToObject(o, "stop");
        if (!a) return false;
        for (size_t i = 0; i < pb->n_stop; i++) {
            cJSON *s = cJSON_CreateString(pb->stop[i]);
            if (!s || !cJSON_AddItemToArray(a, s)) {
                cJSON_Delete(s);
                return false;
            }
        }
    }
    if (chat) {
        if (pb->logprobs && !cJSON_AddTrueToObject(o, "logprobs")) return false;
        if (pb->top_logprobs && !cJSON_AddNumberToObject(o, "top_logprobs", pb->top_logprobs)) return false;
    } else if (pb->logprobs) { /* completions: "logprobs" is the number of alternatives */
        if (!cJSON_AddNumberToObject(o, "logprobs", pb->top_logprobs)) return false;
    }
    if (pb->ignore_eos && !cJSON_AddTrueToObject(o, "ignore_eos")) return false;
    return true;
}

bool srv_grpc_decode_generate(const uint8_t *data, size_t len, srv_request *out, srv_error *e) {
    memset(out, 0, sizeof *out);
    Wgllm__V1__GenerateRequest *pb = wgllm__v1__generate_request__unpack(NULL, len, data);
    if (!pb) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_message", "",
                      "the request is not a valid wgllm.v1.GenerateRequest message");
        return false;
    }
    bool chat = pb->prompt_case == WGLLM__V1__GENERATE_REQUEST__PROMPT_CHAT;
    if (!chat && !pb->logprobs && pb->top_logprobs) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", "top_logprobs",
                      "'top_logprobs' needs 'logprobs': true");
        wgllm__v1__generate_request__free_unpacked(pb, NULL);
        return false;
    }
    cJSON *o = cJSON_CreateObject();
    bool ok = false;
    if (!o || !to_json(o, pb, chat))
        srv_error_set(e, 500, "server_error", NULL, "", "out of memory");
    else
        ok = srv_request_from_object(o, chat ? SRV_REQ_CHAT : SRV_REQ_COMPLETION, out, e);
    if (ok && out->has_seed) out->seed = (uint64_t)pb->seed;
    cJSON_Delete(o);
    wgllm__v1__generate_request__free_unpacked(pb, NULL);
    return ok;
}
