/* Public API glue: status names, tokenizer and detokenizer entry points. */
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

const char *wgllm_status_name(wgllm_status s) {
    switch (s) {
    case WGLLM_OK: return "ok";
    case WGLLM_ERR_INVALID_ARG: return "invalid argument";
    case WGLLM_ERR_IO: return "i/o error";
    case WGLLM_ERR_FORMAT: return "malformed file";
    case WGLLM_ERR_UNSUPPORTED: return "unsupported";
    case WGLLM_ERR_NO_MEMORY: return "out of memory";
    case WGLLM_ERR_CONTEXT_FULL: return "context full";
    case WGLLM_ERR_BACKEND: return "backend failure";
    }
    return "unknown status";
}

int64_t wgllm_tokenize(const wgllm_model *m, const char *text, size_t len, bool add_bos, wgllm_token *out,
                       int64_t max_out) {
    if (!m || (!text && len > 0)) return -1;
    return wg_tokenize(m->tok, text ? text : "", len, add_bos, out, max_out);
}

size_t wgllm_detokenize(const wgllm_model *m, const wgllm_token *ids, size_t n, char *out, size_t cap) {
    return wg_detokenize(m->tok, ids, n, out, cap);
}

wgllm_token wgllm_token_bos(const wgllm_model *m) { return wg_tokenizer_bos(m->tok); }
wgllm_token wgllm_token_eos(const wgllm_model *m) { return wg_tokenizer_eos(m->tok); }
bool wgllm_add_bos_default(const wgllm_model *m) { return wg_tokenizer_add_bos(m->tok); }

int64_t wgllm_tokenize_special(const wgllm_model *m, const char *text, size_t len, bool add_bos,
                               bool parse_special, wgllm_token *out, int64_t max_out) {
    if (!m || (!text && len > 0)) return -1;
    return wg_tokenize_ex(m->tok, text ? text : "", len, add_bos, parse_special, out, max_out);
}

bool wgllm_token_is_eog(const wgllm_model *m, wgllm_token t) { return m && wg_tokenizer_is_eog(m->tok, t); }

const char *wgllm_token_bytes(const wgllm_model *m, wgllm_token id, size_t *len) {
    if (!m) {
        if (len) *len = 0;
        return NULL;
    }
    return wg_token_to_bytes(m->tok, id, len);
}

struct wgllm_detokenizer {
    const wgllm_model *model;
    wg_detok_stream stream;
    char *buf;
    size_t cap;
};

wgllm_detokenizer *wgllm_detokenizer_create(const wgllm_model *m) {
    wgllm_detokenizer *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->model = m;
    d->cap = 64;
    d->buf = malloc(d->cap);
    if (!d->buf) {
        free(d);
        return NULL;
    }
    d->buf[0] = 0;
    wg_detok_stream_init(&d->stream);
    return d;
}

void wgllm_detokenizer_free(wgllm_detokenizer *d) {
    if (!d) return;
    free(d->buf);
    free(d);
}

const char *wgllm_detokenizer_push(wgllm_detokenizer *d, wgllm_token id, size_t *len) {
    size_t piece_len = 0;
    if (!wg_token_to_bytes(d->model->tok, id, &piece_len)) piece_len = 0;
    /* Worst case: pending bytes become U+FFFD (3 bytes each) plus the piece itself. */
    size_t need = 3 * (piece_len + sizeof d->stream.pending) + 4;
    if (need > d->cap) {
        char *nb = realloc(d->buf, need);
        if (nb) {
            d->buf = nb;
            d->cap = need;
        }
    }
    size_t n = wg_detok_stream_push(d->model->tok, &d->stream, id, d->buf, d->cap);
    if (len) *len = n;
    return d->buf;
}

const char *wgllm_detokenizer_flush(wgllm_detokenizer *d, size_t *len) {
    size_t n = wg_detok_stream_flush(&d->stream, d->buf, d->cap);
    if (len) *len = n;
    return d->buf;
}
