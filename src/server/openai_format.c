/* OpenAI response bodies: completions, chat completions and their stream chunks. */
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

const char *srv_finish_name(srv_finish f) {
    return f == SRV_FINISH_LENGTH ? "length" : "stop";
}

cJSON *srv_openai_usage(int prompt_tokens, int completion_tokens) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", prompt_tokens + completion_tokens);
    return u;
}

/* The piece of one token as valid UTF-8 text (a lone byte token becomes U+FFFD), plus its raw bytes. */
static char *token_text(const srv_model *m, wgllm_token id, cJSON **bytes) {
    size_t n = 0;
    const char *raw = wgllm_token_bytes(m->model, id, &n); /* the piece as it appears in running text */
    if (!raw) n = 0;
    if (bytes) {
        *bytes = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(*bytes, cJSON_CreateNumber((unsigned char)raw[i]));
    }
    return srv_utf8_sanitize(raw, n, NULL);
}

static cJSON *logprobs_json(const srv_job *j, const srv_token_logprob *lps, int n) {
    const srv_model *m = j->model;
    if (j->req.kind == SRV_REQ_CHAT) {
        cJSON *o = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(o, "content");
        for (int i = 0; i < n; i++) {
            cJSON *e = cJSON_CreateObject(), *bytes;
            char *t = token_text(m, lps[i].id, &bytes);
            cJSON_AddStringToObject(e, "token", t ? t : "");
            free(t);
            cJSON_AddNumberToObject(e, "logprob", lps[i].logprob);
            cJSON_AddItemToObject(e, "bytes", bytes);
            cJSON *top = cJSON_AddArrayToObject(e, "top_logprobs");
            for (int k = 0; k < lps[i].n_top; k++) {
                cJSON *a = cJSON_CreateObject(), *ab;
                char *at = token_text(m, lps[i].top[k].id, &ab);
                cJSON_AddStringToObject(a, "token", at ? at : "");
                free(at);
                cJSON_AddNumberToObject(a, "logprob", lps[i].top[k].logprob);
                cJSON_AddItemToObject(a, "bytes", ab);
                cJSON_AddItemToArray(top, a);
            }
            cJSON_AddItemToArray(content, e);
        }
        return o;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *tokens = cJSON_AddArrayToObject(o, "tokens"), *tlp = cJSON_AddArrayToObject(o, "token_logprobs");
    cJSON *top = cJSON_AddArrayToObject(o, "top_logprobs");
    for (int i = 0; i < n; i++) {
        char *t = token_text(m, lps[i].id, NULL);
        cJSON_AddItemToArray(tokens, cJSON_CreateString(t ? t : ""));
        free(t);
        cJSON_AddItemToArray(tlp, cJSON_CreateNumber(lps[i].logprob));
        cJSON *alt = cJSON_CreateObject();
        for (int k = 0; k < lps[i].n_top; k++) {
            char *at = token_text(m, lps[i].top[k].id, NULL);
            if (at && !cJSON_GetObjectItemCaseSensitive(alt, at))
                cJSON_AddNumberToObject(alt, at, lps[i].top[k].logprob);
            free(at);
        }
        cJSON_AddItemToArray(top, alt);
    }
    return o;
}

static cJSON *envelope(const srv_job *j, const char *id, int64_t created, bool chunk) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    bool chat = j->req.kind == SRV_REQ_CHAT;
    cJSON_AddStringToObject(o, "object",
                            chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)created);
    cJSON_AddStringToObject(o, "model", j->model->id);
    cJSON_AddStringToObject(o, "system_fingerprint", "wgllm-" WGLLM_VERSION);
    return o;
}

static cJSON *string_n(const char *s, size_t len) {
    char *copy = malloc(len + 1);
    if (!copy) return cJSON_CreateString("");
    memcpy(copy, s, len);
    copy[len] = 0;
    cJSON *v = cJSON_CreateString(copy);
    free(copy);
    return v;
}

cJSON *srv_openai_response(const srv_job *j, const char *id, int64_t created, const char *text, size_t len) {
    cJSON *o = envelope(j, id, created, false);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    if (j->req.kind == SRV_REQ_CHAT) {
        cJSON *msg = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        cJSON_AddItemToObject(msg, "content", string_n(text, len));
    } else {
        cJSON_AddItemToObject(c, "text", string_n(text, len));
    }
    if (j->req.logprobs)
        cJSON_AddItemToObject(c, "logprobs", logprobs_json(j, j->lps, j->n_lps));
    else
        cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", srv_finish_name(j->finish));
    cJSON_AddItemToArray(choices, c);
    cJSON_AddItemToObject(o, "usage", srv_openai_usage(j->n_prompt, j->n_generated));
    return o;
}

cJSON *srv_openai_chunk(const srv_job *j, const char *id, int64_t created, const char *text, size_t len,
                        const srv_token_logprob *lps, int n_lps, bool first, srv_finish finish) {
    cJSON *o = envelope(j, id, created, true);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    if (j->req.kind == SRV_REQ_CHAT) {
        cJSON *delta = cJSON_AddObjectToObject(c, "delta");
        if (first) cJSON_AddStringToObject(delta, "role", "assistant");
        if (len || (first && finish == SRV_FINISH_NONE)) cJSON_AddItemToObject(delta, "content", string_n(text, len));
    } else {
        cJSON_AddItemToObject(c, "text", string_n(text, len));
    }
    if (j->req.logprobs && n_lps)
        cJSON_AddItemToObject(c, "logprobs", logprobs_json(j, lps, n_lps));
    else
        cJSON_AddNullToObject(c, "logprobs");
    if (finish == SRV_FINISH_NONE)
        cJSON_AddNullToObject(c, "finish_reason");
    else
        cJSON_AddStringToObject(c, "finish_reason", srv_finish_name(finish));
    cJSON_AddItemToArray(choices, c);
    if (j->req.include_usage) cJSON_AddNullToObject(o, "usage");
    return o;
}
