/* OpenAI request bodies -> srv_request, with every field checked. */
#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/json_strict.h"
#include "server/request.h"

#define MAX_MESSAGES 1024
#define MAX_PROMPT_IDS (1 << 20)

void srv_error_set(srv_error *e, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

static bool bad(srv_error *e, const char *param, const char *fmt, const char *what) {
    srv_error_set(e, 400, "invalid_request_error", "invalid_value", param, fmt, what);
    return false;
}

static char *dup_str(const char *s, size_t *len) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    if (len) *len = n;
    return d;
}

/* Optional number in [lo, hi]; absent or null keeps *out. */
static bool get_number(const cJSON *root, const char *key, double lo, double hi, bool integer, double *out,
                       srv_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return true;
    if (!cJSON_IsNumber(v)) return bad(e, key, "'%s' must be a number", key);
    double d = v->valuedouble;
    if (!isfinite(d)) return bad(e, key, "'%s' must be a finite number", key);
    if (integer && d != floor(d)) return bad(e, key, "'%s' must be an integer", key);
    if (d < lo || d > hi) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", key, "'%s' must be between %g and %g", key,
                      lo, hi);
        return false;
    }
    *out = d;
    return true;
}

static bool get_float(const cJSON *root, const char *key, double lo, double hi, float *out, srv_error *e) {
    double d = *out;
    if (!get_number(root, key, lo, hi, false, &d, e)) return false;
    *out = (float)d;
    return true;
}

static bool get_bool(const cJSON *root, const char *key, bool *out, srv_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return true;
    if (!cJSON_IsBool(v)) return bad(e, key, "'%s' must be a boolean", key);
    *out = cJSON_IsTrue(v);
    return true;
}

/* Strings must be valid UTF-8; \u0000 was refused by srv_json_check, so C strings are whole. */
static bool text_ok(const cJSON *v, const char *param, srv_error *e) {
    if (!srv_utf8_valid(v->valuestring, strlen(v->valuestring)))
        return bad(e, param, "'%s' is not valid UTF-8", param);
    return true;
}

/* ---- fields that would change the answer but are not implemented ----
 * Refused (400, code unsupported_parameter, param the field) rather than silently
 * ignored; a value that asks for nothing (null, [], {}, the neutral number) passes. */

static bool unsupported(srv_error *e, const char *param, const char *why) {
    srv_error_set(e, 400, "invalid_request_error", "unsupported_parameter", param,
                  "'%s' is not supported by this server: %s", param, why);
    return false;
}

static bool is_nothing(const cJSON *v) {
    return !v || cJSON_IsNull(v) || ((cJSON_IsArray(v) || cJSON_IsObject(v)) && !v->child);
}

static bool is_string(const cJSON *v, const char *s) { return cJSON_IsString(v) && !strcmp(v->valuestring, s); }

static bool refuse_unsupported(const cJSON *root, srv_error *e) {
    static const struct {
        const char *key, *why;
    } nothing_only[] = {
        {"tools", "tool calling is not implemented"},
        {"functions", "function calling is not implemented"},
        {"logit_bias", "logit biases are not implemented"},
        {"audio", "only text is generated"},
        {"web_search_options", "web search is not implemented"},
        {"grammar", "constrained generation is not implemented"},
        {"json_schema", "constrained generation is not implemented"},
        {"n_predict", "use 'max_tokens'"},
    };
    for (size_t i = 0; i < sizeof nothing_only / sizeof nothing_only[0]; i++)
        if (!is_nothing(cJSON_GetObjectItemCaseSensitive(root, nothing_only[i].key)))
            return unsupported(e, nothing_only[i].key, nothing_only[i].why);
    /* with no tools, "none" and "auto" both mean plain text */
    static const char *const choices[] = {"tool_choice", "function_call"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, choices[i]);
        if (!is_nothing(v) && !is_string(v, "none") && !is_string(v, "auto"))
            return unsupported(e, choices[i], "tool and function calling are not implemented");
    }
    /* {"type": "text"} is the default: plain text */
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "response_format");
    if (v && !cJSON_IsNull(v) &&
        !(cJSON_IsObject(v) && v->child && !v->child->next &&
          is_string(cJSON_GetObjectItemCaseSensitive(v, "type"), "text")))
        return unsupported(e, "response_format", "only {\"type\": \"text\"} is implemented (no JSON mode or schema)");
    v = cJSON_GetObjectItemCaseSensitive(root, "suffix");
    if (!is_nothing(v) && !is_string(v, "")) return unsupported(e, "suffix", "insertion is not implemented");
    v = cJSON_GetObjectItemCaseSensitive(root, "modalities");
    if (!is_nothing(v) && !(cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1 && is_string(v->child, "text")))
        return unsupported(e, "modalities", "only text is generated");
    static const struct {
        const char *key;
        double neutral;
        const char *why;
    } neutral_only[] = {
        {"best_of", 1, "only one candidate is generated per request"},
        {"mirostat", 0, "mirostat sampling is not implemented"},
        {"typical_p", 1, "typical sampling is not implemented"},
    };
    for (size_t i = 0; i < sizeof neutral_only / sizeof neutral_only[0]; i++) {
        v = cJSON_GetObjectItemCaseSensitive(root, neutral_only[i].key);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsNumber(v) && v->valuedouble == neutral_only[i].neutral))
            return unsupported(e, neutral_only[i].key, neutral_only[i].why);
    }
    return true;
}

static bool parse_stop(const cJSON *root, srv_request *r, srv_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (!v || cJSON_IsNull(v)) return true;
    if (cJSON_IsString(v)) {
        if (!text_ok(v, "stop", e)) return false;
        if (!v->valuestring[0]) return bad(e, "stop", "'%s' strings must not be empty", "stop");
        return (r->stops[r->n_stops++] = dup_str(v->valuestring, NULL)) != NULL ||
               bad(e, "stop", "out of memory for '%s'", "stop");
    }
    if (!cJSON_IsArray(v)) return bad(e, "stop", "'%s' must be a string or an array of strings", "stop");
    if (cJSON_GetArraySize(v) > SRV_MAX_STOPS) return bad(e, "stop", "'%s' takes at most 4 sequences", "stop");
    const cJSON *s;
    cJSON_ArrayForEach(s, v) {
        if (!cJSON_IsString(s)) return bad(e, "stop", "'%s' must be a string or an array of strings", "stop");
        if (!text_ok(s, "stop", e)) return false;
        if (!s->valuestring[0]) return bad(e, "stop", "'%s' strings must not be empty", "stop");
        if (!(r->stops[r->n_stops++] = dup_str(s->valuestring, NULL)))
            return bad(e, "stop", "out of memory for '%s'", "stop");
    }
    return true;
}

static bool parse_prompt(const cJSON *root, srv_request *r, srv_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (!v) {
        srv_error_set(e, 400, "invalid_request_error", "missing_required_parameter", "prompt",
                      "'prompt' is a required property");
        return false;
    }
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1 && cJSON_IsString(v->child)) v = v->child;
    if (cJSON_IsString(v)) {
        if (!text_ok(v, "prompt", e)) return false;
        return (r->prompt = dup_str(v->valuestring, &r->prompt_len)) != NULL ||
               bad(e, "prompt", "out of memory for '%s'", "prompt");
    }
    if (!cJSON_IsArray(v)) return bad(e, "prompt", "'%s' must be a string or an array of token ids", "prompt");
    int n = cJSON_GetArraySize(v);
    if (n == 0 || n > MAX_PROMPT_IDS) return bad(e, "prompt", "'%s' must hold 1 to 1048576 token ids", "prompt");
    if (!(r->prompt_ids = malloc(sizeof(int32_t) * (size_t)n))) return bad(e, "prompt", "out of memory for '%s'", "prompt");
    const cJSON *t;
    cJSON_ArrayForEach(t, v) {
        if (cJSON_IsString(t) || cJSON_IsArray(t))
            return bad(e, "prompt", "'%s': only one prompt per request is supported", "prompt");
        if (!cJSON_IsNumber(t) || !isfinite(t->valuedouble) || t->valuedouble != floor(t->valuedouble) ||
            t->valuedouble < 0 || t->valuedouble > 2147483647.0)
            return bad(e, "prompt", "'%s' token ids must be non-negative integers", "prompt");
        r->prompt_ids[r->n_prompt_ids++] = (int32_t)t->valuedouble;
    }
    return true;
}

/* Message content: a string, or an array of {"type":"text","text":...} parts joined. */
static bool parse_content(const cJSON *c, srv_chat_msg *m, srv_error *e) {
    if (!c || cJSON_IsNull(c)) return (m->content = dup_str("", NULL)) != NULL;
    if (cJSON_IsString(c)) {
        if (!text_ok(c, "messages", e)) return false;
        return (m->content = dup_str(c->valuestring, NULL)) != NULL || bad(e, "messages", "out of %s", "memory");
    }
    if (!cJSON_IsArray(c)) return bad(e, "messages", "'%s' content must be a string or an array of text parts", "messages");
    size_t total = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, c) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsObject(p) || !cJSON_IsString(type) || strcmp(type->valuestring, "text") || !cJSON_IsString(text))
            return bad(e, "messages", "'%s' content parts must be {\"type\": \"text\", \"text\": ...}", "messages");
        if (!text_ok(text, "messages", e)) return false;
        total += strlen(text->valuestring);
    }
    if (!(m->content = malloc(total + 1))) return bad(e, "messages", "out of %s", "memory");
    size_t o = 0;
    cJSON_ArrayForEach(p, c) {
        const char *s = cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring;
        size_t n = strlen(s);
        memcpy(m->content + o, s, n);
        o += n;
    }
    m->content[o] = 0;
    return true;
}

static bool parse_messages(const cJSON *root, srv_request *r, srv_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!v) {
        srv_error_set(e, 400, "invalid_request_error", "missing_required_parameter", "messages",
                      "'messages' is a required property");
        return false;
    }
    if (!cJSON_IsArray(v)) return bad(e, "messages", "'%s' must be an array", "messages");
    int n = cJSON_GetArraySize(v);
    if (n < 1 || n > MAX_MESSAGES) return bad(e, "messages", "'%s' must hold 1 to 1024 messages", "messages");
    if (!(r->msgs = calloc((size_t)n, sizeof *r->msgs))) return bad(e, "messages", "out of %s", "memory");
    static const char *const roles[] = {"system", "user", "assistant", "tool", "developer"};
    const cJSON *m;
    cJSON_ArrayForEach(m, v) {
        if (!cJSON_IsObject(m)) return bad(e, "messages", "'%s' items must be objects", "messages");
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role)) return bad(e, "messages", "'%s' items need a string 'role'", "messages");
        bool known = false;
        for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++) known |= !strcmp(role->valuestring, roles[k]);
        if (!known) return bad(e, "messages", "'%s': role must be system, user, assistant, tool or developer", "messages");
        srv_chat_msg *out = &r->msgs[r->n_msgs++];
        if (!(out->role = dup_str(role->valuestring, NULL))) return bad(e, "messages", "out of %s", "memory");
        if (!is_nothing(cJSON_GetObjectItemCaseSensitive(m, "tool_calls")) ||
            !is_nothing(cJSON_GetObjectItemCaseSensitive(m, "function_call")))
            return unsupported(e, "messages", "tool and function calls in messages are not implemented");
        if (!parse_content(cJSON_GetObjectItemCaseSensitive(m, "content"), out, e)) return false;
    }
    return true;
}

static bool parse_logprobs(const cJSON *root, srv_request *r, srv_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "logprobs");
    if (r->kind == SRV_REQ_CHAT) {
        if (!get_bool(root, "logprobs", &r->logprobs, e)) return false;
        double k = 0;
        if (!get_number(root, "top_logprobs", 0, SRV_MAX_TOP_LOGPROBS, true, &k, e)) return false;
        r->top_logprobs = (int)k;
        if (k > 0 && !r->logprobs) return bad(e, "top_logprobs", "'%s' needs 'logprobs': true", "top_logprobs");
        return true;
    }
    /* completions: logprobs is the number of alternatives (0..5) */
    if (!v || cJSON_IsNull(v)) return true;
    double k = 0;
    if (!get_number(root, "logprobs", 0, 5, true, &k, e)) return false;
    r->logprobs = true;
    r->top_logprobs = (int)k;
    return true;
}

static bool parse_fields(const cJSON *root, srv_request *r, srv_error *e) {
    /* optional, as in llama.cpp: without it the request goes to the served model */
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (model && !cJSON_IsNull(model)) {
        if (!cJSON_IsString(model)) return bad(e, "model", "'%s' must be a string", "model");
        if (!text_ok(model, "model", e)) return false;
        if (!(r->model = dup_str(model->valuestring, NULL))) return bad(e, "model", "out of %s", "memory");
    }
    if (!refuse_unsupported(root, e)) return false;
    if (r->kind == SRV_REQ_CHAT ? !parse_messages(root, r, e) : !parse_prompt(root, r, e)) return false;

    double d = r->max_tokens;
    if (!get_number(root, "max_tokens", 1, 1 << 30, true, &d, e)) return false;
    if (!get_number(root, "max_completion_tokens", 1, 1 << 30, true, &d, e)) return false;
    r->max_tokens = (int)d;
    double n = 1;
    if (!get_number(root, "n", 1, 1, true, &n, e)) {
        snprintf(e->message, sizeof e->message, "'n' must be 1 (one choice per request)");
        return false;
    }
    if (!get_float(root, "temperature", 0, 2, &r->temperature, e) || !get_float(root, "top_p", 0, 1, &r->top_p, e) ||
        !get_float(root, "min_p", 0, 1, &r->min_p, e) ||
        !get_float(root, "presence_penalty", -2, 2, &r->presence_penalty, e) ||
        !get_float(root, "frequency_penalty", -2, 2, &r->frequency_penalty, e) ||
        !get_float(root, "repeat_penalty", 0.01, 100, &r->repeat_penalty, e))
        return false;
    if (r->top_p <= 0) return bad(e, "top_p", "'%s' must be greater than 0", "top_p");
    d = r->top_k;
    if (!get_number(root, "top_k", 0, 1 << 30, true, &d, e)) return false;
    r->top_k = (int)d;
    d = 0;
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(root, "seed");
    if (!get_number(root, "seed", -9223372036854775807.0, 9223372036854775807.0, true, &d, e)) return false;
    if (seed && !cJSON_IsNull(seed)) {
        r->has_seed = true;
        r->seed = d < 0 ? (uint64_t)(int64_t)d : (uint64_t)d;
    }
    if (!parse_stop(root, r, e) || !parse_logprobs(root, r, e)) return false;
    if (!get_bool(root, "stream", &r->stream, e) || !get_bool(root, "ignore_eos", &r->ignore_eos, e)) return false;
    if (r->kind == SRV_REQ_COMPLETION && !get_bool(root, "echo", &r->echo, e)) return false;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) return bad(e, "stream_options", "'%s' must be an object", "stream_options");
        if (!get_bool(so, "include_usage", &r->include_usage, e)) return false;
    }
    return true;
}

bool srv_request_from_object(const cJSON *root, srv_req_kind kind, srv_request *r, srv_error *e) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->max_tokens = kind == SRV_REQ_COMPLETION ? 16 : -1; /* OpenAI's defaults */
    r->temperature = 1.0f;
    r->top_p = 1.0f;
    r->repeat_penalty = 1.0f;
    bool ok = parse_fields(root, r, e);
    if (!ok) srv_request_free(r);
    return ok;
}

bool srv_request_parse(const char *body, size_t len, srv_req_kind kind, srv_request *r, srv_error *e) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    cJSON *root = srv_json_parse_object(body, len, e);
    if (!root) return false;
    bool ok = srv_request_from_object(root, kind, r, e);
    cJSON_Delete(root);
    return ok;
}

void srv_request_free(srv_request *r) {
    if (!r) return;
    free(r->model);
    free(r->prompt);
    free(r->prompt_ids);
    for (int i = 0; i < r->n_msgs; i++) {
        free(r->msgs[i].role);
        free(r->msgs[i].content);
    }
    free(r->msgs);
    for (int i = 0; i < r->n_stops; i++) free(r->stops[i]);
    srv_req_kind kind = r->kind;
    memset(r, 0, sizeof *r);
    r->kind = kind;
}
