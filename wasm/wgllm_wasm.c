/* The engine as a WebAssembly module for embedding (a WASI reactor, no main): the
 * exports that web/local/wgllm-worker.js calls. One session holds a model, its context,
 * sampler and detokenizer; generation runs one token per call so that the page can
 * stream. Strings go in as (pointer, length) in memory from wgllm_alloc; strings coming
 * out are NUL-terminated, owned by the session and valid until its next call.
 * Errors: 0 / -1 returns, with the message at wgllm_error(session) (session 0: the
 * last failed load). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "mman_handoff.h"
#include "model/model.h"
#include "server/chat_template.h"
#include "wgllm.h"

#define EXPORT(name) __attribute__((export_name(#name)))

enum { GEN_ERROR = -1, GEN_DONE = -2 };
/* The default context: a training context of 128K tokens would give a KV cache of
 * gigabytes, more than the 4 GiB a wasm32 module can address beside the weights. */
enum { DEFAULT_CTX = 4096 };

typedef struct session {
    wgllm_model *model;
    wgllm_context *ctx;
    wgllm_sampler *sampler;
    wgllm_detokenizer *detok;
    srv_chat_format chat;
    wgllm_token *hist; /* the tokens in the KV cache, in order */
    int n_hist, cap_hist;
    wgllm_token pending; /* produced, not yet evaluated; -1: none */
    bool greedy;
    int n_left;          /* tokens this generation may still produce */
    int n_reused;        /* prompt tokens of this generation found in the cache */
    const char *stop;    /* why it ended: "eos", "length", "context" */
    char *out;           /* the last returned string */
    size_t out_len;
    char err[512];
} session;

static char load_err[512];

EXPORT(wgllm_alloc) void *wgjs_alloc(size_t n) { return malloc(n ? n : 1); }
EXPORT(wgllm_dealloc) void wgjs_dealloc(void *p) { free(p); }

EXPORT(wgllm_error) const char *wgjs_error(const session *s) { return s ? s->err : load_err; }

/* Keeps a copy of n bytes as the session's returned string. */
static const char *set_out(session *s, const char *text, size_t n) {
    char *p = realloc(s->out, n + 1);
    if (!p) {
        snprintf(s->err, sizeof s->err, "out of memory");
        return NULL;
    }
    memcpy(p, text, n);
    p[n] = 0;
    s->out = p;
    s->out_len = n;
    return p;
}

EXPORT(wgllm_out) const char *wgjs_out(const session *s) { return s->out ? s->out : ""; }
EXPORT(wgllm_out_len) size_t wgjs_out_len(const session *s) { return s->out_len; }

EXPORT(wgllm_free) void wgjs_free(session *s) {
    if (!s) return;
    wgllm_detokenizer_free(s->detok);
    wgllm_sampler_free(s->sampler);
    wgllm_context_free(s->ctx);
    wgllm_model_free(s->model);
    free(s->hist);
    free(s->out);
    free(s);
}

/* Loads path (a name the page's WASI host serves) on backend "cpu", "webgpu" or "auto"
 * with a context of n_ctx tokens (<= 0: the model's, at most DEFAULT_CTX). url_buf, when not NULL, is the
 * whole file already in memory (from wgllm_alloc, url_size bytes): the session takes it
 * and the engine uses it in place. Returns the session, or NULL (wgllm_error(NULL)). */
EXPORT(wgllm_load)
session *wgjs_load(const char *path, const char *backend, int n_ctx, void *url_buf, size_t url_size) {
    load_err[0] = 0;
    wgllm_model_params mp = wgllm_model_default_params();
    mp.n_threads = 1; /* this wasi-libc has no threads */
    if (!wgllm_backend_kind_from_name(backend, &mp.backend)) {
        snprintf(load_err, sizeof load_err, "unknown backend '%s' (cpu, webgpu or auto)", backend);
        free(url_buf);
        return NULL;
    }
    session *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(load_err, sizeof load_err, "out of memory");
        free(url_buf);
        return NULL;
    }
    s->pending = -1;
    if (url_buf) wgllm_mman_handoff(url_buf, url_size);
    wgllm_status st = wgllm_model_load(path, &mp, &s->model, load_err, sizeof load_err);
    free(wgllm_mman_take_back()); /* not taken when the load failed before mapping */
    if (st != WGLLM_OK) {
        wgjs_free(s);
        return NULL;
    }
    wgllm_model_info mi;
    wgllm_model_get_info(s->model, &mi);
    wgllm_context_params cp = wgllm_context_default_params();
    cp.n_ctx = n_ctx > 0 ? n_ctx : mi.n_ctx_train < DEFAULT_CTX ? mi.n_ctx_train : DEFAULT_CTX;
    s->detok = wgllm_detokenizer_create(s->model);
    if (!s->detok || wgllm_context_create(s->model, &cp, &s->ctx, load_err, sizeof load_err) != WGLLM_OK) {
        if (!load_err[0]) snprintf(load_err, sizeof load_err, "out of memory");
        wgjs_free(s);
        return NULL;
    }
    const char *t = NULL;
    size_t len = 0;
    s->chat = gguf_get_str(s->model->file, "tokenizer.chat_template", &t, &len) ? srv_chat_format_detect(t, len)
                                                                               : SRV_CHAT_FALLBACK;
    return s;
}

/* A JSON object describing the model (strings escaped for JSON). */
EXPORT(wgllm_info) const char *wgjs_info(session *s) {
    wgllm_model_info mi;
    wgllm_model_get_info(s->model, &mi);
    char esc[3][300];
    const char *src[3] = {mi.name, mi.backend, mi.arch};
    for (int k = 0; k < 3; k++) {
        size_t j = 0;
        for (const char *p = src[k]; *p && j + 7 < sizeof esc[k]; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '"' || c == '\\') esc[k][j++] = '\\';
            if (c < 0x20)
                j += (size_t)snprintf(esc[k] + j, 7, "\\u%04x", c);
            else
                esc[k][j++] = (char)c;
        }
        esc[k][j] = 0;
    }
    const char *end = srv_chat_end_marker(s->chat);
    char buf[2048];
    int n = snprintf(buf, sizeof buf,
                     "{\"name\":\"%s\",\"backend\":\"%s\",\"arch\":\"%s\",\"n_ctx\":%d,\"n_ctx_train\":%d,"
                     "\"n_vocab\":%d,\"n_layer\":%d,\"n_embd\":%d,\"weight_bytes\":%llu,\"chat_format\":\"%s\","
                     "\"chat_end\":\"%s\"}",
                     esc[0], esc[1], esc[2], wgllm_context_n_ctx(s->ctx), mi.n_ctx_train, mi.n_vocab, mi.n_layer,
                     mi.n_embd, (unsigned long long)mi.weight_bytes, srv_chat_format_name(s->chat),
                     !end ? "" : s->chat == SRV_CHAT_FALLBACK ? "\\nUser:" : end);
    return set_out(s, buf, (size_t)n);
}

/* Writes at most max ids of text to out; returns the total count or -1. */
EXPORT(wgllm_tokenize_text)
int wgjs_tokenize(session *s, const char *text, size_t len, int parse_special, wgllm_token *out, int max) {
    int64_t n = wgllm_tokenize_special(s->model, text, len, wgllm_add_bos_default(s->model), parse_special != 0,
                                       out, max);
    if (n < 0 || n > INT32_MAX) {
        snprintf(s->err, sizeof s->err, "cannot tokenize the text");
        return -1;
    }
    return (int)n;
}

/* Renders n messages with the model's chat template, followed by the assistant's turn.
 * msgs holds n pairs "role\0content\0" (size bytes). */
EXPORT(wgllm_chat_format) const char *wgjs_chat_format(session *s, const char *msgs, size_t size, int n) {
    srv_chat_msg *m = calloc((size_t)(n > 0 ? n : 1), sizeof *m);
    if (!m) {
        snprintf(s->err, sizeof s->err, "out of memory");
        return NULL;
    }
    const char *p = msgs, *end = msgs + size;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 2; k++) {
            const char *z = memchr(p, 0, (size_t)(end - p));
            if (!z) {
                snprintf(s->err, sizeof s->err, "malformed message list");
                free(m);
                return NULL;
            }
            if (k == 0) m[i].role = (char *)p;
            else m[i].content = (char *)p;
            p = z + 1;
        }
    }
    size_t len = 0;
    char *text = srv_chat_render(s->chat, m, n, &len);
    free(m);
    if (!text) {
        snprintf(s->err, sizeof s->err, "out of memory");
        return NULL;
    }
    const char *r = set_out(s, text, len);
    free(text);
    return r;
}

static bool evaluate(session *s, const wgllm_token *ids, int n) {
    if (wgllm_eval(s->ctx, ids, n, false) != WGLLM_OK) {
        snprintf(s->err, sizeof s->err, "%s", wgllm_context_error(s->ctx));
        return false;
    }
    if (s->n_hist + n > s->cap_hist) {
        int cap = (s->n_hist + n) * 2;
        wgllm_token *h = realloc(s->hist, sizeof *h * (size_t)cap);
        if (!h) {
            snprintf(s->err, sizeof s->err, "out of memory");
            wgllm_context_truncate(s->ctx, 0);
            s->n_hist = 0;
            return false;
        }
        s->hist = h;
        s->cap_hist = cap;
    }
    memcpy(s->hist + s->n_hist, ids, sizeof *ids * (size_t)n);
    s->n_hist += n;
    return true;
}

/* Starts a generation after prompt (len bytes; parse_special: its control tokens'
 * text becomes those tokens, as a rendered chat template needs). The tokens already in
 * the cache that the prompt starts with are kept (a chat's earlier turns), the rest is
 * evaluated. Returns the prompt's token count, or -1. */
EXPORT(wgllm_begin)
int wgjs_begin(session *s, const char *prompt, size_t len, int parse_special, int max_tokens, float temperature,
               float top_p, int top_k, float min_p, float repeat_penalty, double seed) {
    s->err[0] = 0;
    s->pending = -1;
    s->stop = NULL;
    s->n_left = 0; /* until the prompt is in: a wgllm_next now ends at once */
    wgllm_sampler_params sp = wgllm_sampler_default_params();
    sp.temperature = temperature;
    sp.top_p = top_p;
    sp.top_k = top_k;
    sp.min_p = min_p;
    sp.repeat_penalty = repeat_penalty;
    sp.seed = seed >= 0 && seed < 18446744073709551616.0 ? (uint64_t)seed : 0;
    wgllm_sampler_free(s->sampler);
    s->sampler = wgllm_sampler_create(&sp, s->err, sizeof s->err);
    if (!s->sampler) return -1;
    s->greedy = temperature <= 0.0f && repeat_penalty == 1.0f;
    int n_ctx = wgllm_context_n_ctx(s->ctx);
    wgllm_token *ids = malloc(sizeof *ids * (size_t)n_ctx);
    if (!ids) {
        snprintf(s->err, sizeof s->err, "out of memory");
        return -1;
    }
    int n = wgjs_tokenize(s, prompt, len, parse_special, ids, n_ctx);
    if (n >= n_ctx) {
        snprintf(s->err, sizeof s->err, "the prompt is %d tokens, the context holds %d", n, n_ctx);
        n = -1;
    }
    if (n <= 0) {
        if (n == 0) snprintf(s->err, sizeof s->err, "empty prompt");
        free(ids);
        return -1;
    }
    /* Reuse the cached prefix, but evaluate at least the last token for its logits. */
    int keep = 0;
    while (keep < s->n_hist && keep < n - 1 && s->hist[keep] == ids[keep]) keep++;
    wgllm_context_truncate(s->ctx, keep);
    s->n_hist = keep;
    s->n_reused = keep;
    wgllm_detokenizer_free(s->detok);
    s->detok = wgllm_detokenizer_create(s->model);
    bool ok = s->detok != NULL;
    if (!ok) snprintf(s->err, sizeof s->err, "out of memory");
    /* The prompt goes through the detokenizer unreturned, so the first piece keeps its
     * leading space. */
    for (int i = 0; ok && i < n; i++) {
        wgllm_sampler_accept(s->sampler, ids[i]);
        wgllm_detokenizer_push(s->detok, ids[i], NULL);
    }
    ok = ok && evaluate(s, ids + keep, n - keep);
    free(ids);
    if (!ok) return -1;
    s->n_left = max_tokens < 0 ? INT32_MAX : max_tokens;
    return n;
}

/* Produces the next token: returns its id (its text at wgllm_piece), GEN_DONE when the
 * generation ended (wgllm_stop_reason; the detokenizer's tail is at wgllm_piece), or
 * GEN_ERROR. */
EXPORT(wgllm_next) int wgjs_next(session *s) {
    size_t len = 0;
    if (s->pending >= 0) {
        wgllm_token t = s->pending;
        s->pending = -1;
        if (wgllm_context_n_past(s->ctx) >= wgllm_context_n_ctx(s->ctx)) s->stop = "context";
        else if (!evaluate(s, &t, 1)) return GEN_ERROR;
    }
    if (!s->stop && s->n_left <= 0) s->stop = "length";
    if (s->stop) {
        const char *tail = wgllm_detokenizer_flush(s->detok, &len);
        return set_out(s, tail, len) ? GEN_DONE : GEN_ERROR;
    }
    wgllm_token t;
    if (s->greedy) {
        t = wgllm_greedy(s->ctx);
    } else {
        const float *logits = wgllm_get_logits(s->ctx, 0);
        t = logits ? wgllm_sampler_sample(s->sampler, logits, wgllm_n_vocab(s->model), NULL) : -1;
    }
    if (t < 0) {
        snprintf(s->err, sizeof s->err, "sampling failed: %s", wgllm_context_error(s->ctx));
        return GEN_ERROR;
    }
    wgllm_sampler_accept(s->sampler, t);
    s->n_left--;
    if (wgllm_token_is_eog(s->model, t)) {
        s->stop = "eos"; /* its text is not returned; the next call ends the generation */
        set_out(s, "", 0);
        return t;
    }
    s->pending = t;
    const char *piece = wgllm_detokenizer_push(s->detok, t, &len);
    return set_out(s, piece, len) ? t : GEN_ERROR;
}

EXPORT(wgllm_stop_reason) const char *wgjs_stop_reason(const session *s) { return s->stop ? s->stop : ""; }
EXPORT(wgllm_n_reused) int wgjs_n_reused(const session *s) { return s->n_reused; }
