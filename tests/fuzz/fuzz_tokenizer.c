/* libFuzzer target for the tokenizer.
 * 1. Encodes the input with the Llama 2 vocabulary ($WGLLM_SHARED/models/
 *    tokenizer.model) or, without it, a small built-in vocabulary, and checks
 *    decode(encode(x)) == x (a U+2581 in x decodes as ' ', as documented) and
 *    that the streaming detokenizer releases valid UTF-8 equal to the sanitized text.
 * 2. Feeds the raw input to the SentencePiece and llama2.c file parsers and, when
 *    one accepts it, builds a tokenizer from the result and encodes with it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab_load.h"

static wg_tokenizer *builtin_tokenizer(void) {
    static const char *const words[] = {"\xE2\x96\x81", "\xE2\x96\x81the", "th", "he", "e", "t", "h",
                                        "\xE2\x96\x81t", "in", "i", "n", "\xE2\x96\x81\xE2\x96\x81", "\xE4\xBD\xA0"};
    int32_t n_words = (int32_t)(sizeof words / sizeof words[0]);
    wg_vocab v;
    if (!wg_vocab_alloc(&v, 3 + 256 + n_words)) return NULL;
    static const char *const specials[3] = {"<unk>", "<s>", "</s>"};
    for (int32_t i = 0; i < v.n; i++) {
        char buf[16];
        const char *p = buf;
        if (i < 3) p = specials[i];
        else if (i < 259) snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
        else p = words[i - 259];
        v.pieces[i] = malloc(strlen(p) + 1);
        if (!v.pieces[i]) {
            wg_vocab_clear(&v);
            return NULL;
        }
        strcpy(v.pieces[i], p);
        v.types[i] = i == 0 ? WG_TOKEN_UNKNOWN : i < 3 ? WG_TOKEN_CONTROL : i < 259 ? WG_TOKEN_BYTE : WG_TOKEN_NORMAL;
        v.scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
    }
    v.unk = 0;
    v.bos = 1;
    v.eos = 2;
    wg_tokenizer *t = wg_tokenizer_from_vocab(&v, NULL, 0);
    wg_vocab_clear(&v);
    return t;
}

static wg_tokenizer *main_tokenizer(void) {
    static wg_tokenizer *t; /* built once per process: the fuzzer calls us millions of times */
    if (t) return t;
    const char *dir = getenv("WGLLM_SHARED");
    char path[4096];
    snprintf(path, sizeof path, "%s/models/tokenizer.model", dir && *dir ? dir : "../shared");
    wg_vocab v;
    if (wg_vocab_load_spm(path, &v, NULL, 0)) {
        t = wg_tokenizer_from_vocab(&v, NULL, 0);
        wg_vocab_clear(&v);
    }
    if (!t) t = builtin_tokenizer();
    return t;
}

static void check_roundtrip(const wg_tokenizer *t, const char *s, size_t len) {
    int64_t n = wg_tokenize(t, s, len, true, NULL, 0);
    if (n < 0) abort();
    int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
    if (wg_tokenize(t, s, len, true, ids, n) != n) abort();
    size_t dl = wg_detokenize(t, ids, (size_t)n, NULL, 0);
    char *d = malloc(dl + 1);
    if (wg_detokenize(t, ids, (size_t)n, d, dl + 1) != dl) abort();

    /* Expected: the input with each U+2581 read as a space. */
    char *want = malloc(len + 1);
    size_t wl = 0;
    for (size_t i = 0; i < len; i++) {
        if (i + 2 < len && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 && (unsigned char)s[i + 2] == 0x81) {
            want[wl++] = ' ';
            i += 2;
        } else {
            want[wl++] = s[i];
        }
    }
    if (dl != wl || memcmp(d, want, wl) != 0) abort();

    size_t cap = wg_detok_stream_max_out(t);
    char *chunk = malloc(cap);
    char *streamed = malloc(3 * dl + 16);
    size_t sl = 0;
    wg_detok_stream st;
    wg_detok_stream_init(&st);
    for (int64_t i = 0; i < n; i++) {
        size_t c = wg_detok_stream_push(t, &st, ids[i], chunk, cap);
        memcpy(streamed + sl, chunk, c);
        sl += c;
    }
    size_t c = wg_detok_stream_flush(&st, chunk, cap);
    memcpy(streamed + sl, chunk, c);
    sl += c;
    char *san = malloc(3 * dl + 16);
    size_t san_len = wg_utf8_sanitize(d, dl, san, 3 * dl + 16);
    if (san_len != sl || memcmp(san, streamed, sl) != 0) abort();
    free(san);
    free(streamed);
    free(chunk);
    free(want);
    free(d);
    free(ids);
}

static void try_vocab(bool ok, wg_vocab *v) {
    if (!ok) return;
    wg_tokenizer *t = wg_tokenizer_from_vocab(v, NULL, 0);
    wg_vocab_clear(v);
    if (!t) return;
    int32_t ids[64];
    static const char text[] = "Hello world \xF0\x9F\xA6\x99 <s> \xFF";
    int64_t n = wg_tokenize(t, text, sizeof text - 1, true, ids, 64);
    if (n < 0) abort();
    char out[256];
    wg_detokenize(t, ids, n < 64 ? (size_t)n : 64, out, sizeof out);
    wg_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const wg_tokenizer *t = main_tokenizer();
    if (t) check_roundtrip(t, (const char *)data, size);

    wg_vocab v;
    char err[256];
    try_vocab(wg_vocab_parse_spm(data, size, &v, err, sizeof err), &v);
    try_vocab(wg_vocab_parse_llama2c(data, size, &v, err, sizeof err), &v);
    return 0;
}
