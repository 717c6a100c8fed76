/* OpenAI request bodies: parsing and validation, independent of any model.
 * Every field is type- and range-checked; the first problem becomes an
 * OpenAI-style error (HTTP status, message, offending parameter). */
#ifndef WGLLM_SERVER_REQUEST_H
#define WGLLM_SERVER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_MAX_STOPS 4
#define SRV_MAX_TOP_LOGPROBS 20

typedef struct srv_error {
    int status;        /* HTTP status, 4xx or 5xx */
    const char *type;  /* "invalid_request_error", ... (static) */
    const char *code;  /* machine-readable code or NULL (static) */
    char param[64];    /* offending field or "" */
    char message[256];
} srv_error;

void srv_error_set(srv_error *e, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

typedef enum srv_req_kind { SRV_REQ_COMPLETION, SRV_REQ_CHAT } srv_req_kind;

typedef struct srv_chat_msg {
    char *role;    /* system, user, assistant, tool, developer */
    char *content; /* text parts joined */
} srv_chat_msg;

typedef struct srv_request {
    srv_req_kind kind;
    char *model; /* NULL when the request names none: the served model */
    /* completion: either text or token ids */
    char *prompt;
    size_t prompt_len;
    int32_t *prompt_ids;
    int n_prompt_ids;
    /* chat */
    srv_chat_msg *msgs;
    int n_msgs;
    /* generation */
    int max_tokens; /* -1: until the context is full */
    float temperature, top_p, min_p, presence_penalty, frequency_penalty, repeat_penalty;
    int top_k;
    bool has_seed;
    uint64_t seed;
    char *stops[SRV_MAX_STOPS];
    int n_stops;
    bool stream, include_usage, echo;
    bool ignore_eos; /* extension: keep generating after the end-of-sequence token */
    bool logprobs;    /* return the chosen token's log-probability */
    int top_logprobs; /* alternatives per position, 0..SRV_MAX_TOP_LOGPROBS */
} srv_request;

/* Parses a JSON body (len bytes, need not be NUL-terminated). Returns true and
 * fills *out (free with srv_request_free), or false with *err set and *out empty. */
bool srv_request_parse(const char *body, size_t len, srv_req_kind kind, srv_request *out, srv_error *err);
void srv_request_free(srv_request *r);
/* The same checks on a parsed object (the gRPC API maps its messages onto the JSON form, so
   both protocols share one validator). root is borrowed. */
struct cJSON;
bool srv_request_from_object(const struct cJSON *root, srv_req_kind kind, srv_request *out, srv_error *err);

/* UTF-8 helpers: strict validation (no overlongs, surrogates or code points
 * above U+10FFFF), and a copy with every invalid sequence replaced by U+FFFD. */
bool srv_utf8_valid(const char *s, size_t len);
char *srv_utf8_sanitize(const char *s, size_t len, size_t *out_len);
/* Length of the longest prefix of s[0..len) that ends on a character boundary. */
size_t srv_utf8_complete_prefix(const char *s, size_t len);

#endif
