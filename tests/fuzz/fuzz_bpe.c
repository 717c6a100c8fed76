/* libFuzzer target for the byte-level BPE (Llama 3) tokenizer.
 * 1. Splits the input with the Llama 3 pre-tokenizer and checks that the pieces
 *    are non-empty and cover the input in order.
 * 2. Encodes it with a small built-in byte-level vocabulary (full byte alphabet,
 *    a few merges, special tokens) and checks decode(encode(x)) == x without
 *    special parsing, that the streaming detokenizer releases exactly the
 *    sanitized text, and that parsing specials never fails.
 * 3. Feeds the input to the tokenizer.json converter's parser and, when it
 *    accepts it, builds a tokenizer from the result and encodes with it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/hf_tokenizer.h"
#include "tokenizer/bpe.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

static const char *const k_words[] = {"he", "\xC4\xA0t", "\xC4\xA0the", "ll", "aa", "\xC4\xA0\xC4\xA0", "\xC4\x8A\xC4\x8A",
                                      "\xC3\xA6\xC2\x97\xC2\xA5"};
static const char *const k_merges[] = {"h e", "\xC4\xA0 t", "\xC4\xA0t he", "l l", "a a", "\xC4\xA0 \xC4\xA0",
                                       "\xC4\x8A \xC4\x8A", "\xC3\xA6 \xC2\x97", "\xC3\xA6\xC2\x97 \xC2\xA5"};
static const char *const k_specials[] = {"<|begin_of_text|>", "<|eot_id|>", "<x>"};
#define N_WORDS (int32_t)(sizeof k_words / sizeof k_words[0])
#define N_MERGES (int32_t)(sizeof k_merges / sizeof k_merges[0])

static char *dup_str(const char *s) {
    char *p = malloc(strlen(s) + 1);
    if (p) strcpy(p, s);
    return p;
}

static wg_tokenizer *builtin_tokenizer(void) {
    static wg_tokenizer *t; /* built once per process */
    if (t) return t;
    wg_vocab v;
    if (!wg_vocab_alloc(&v, 256 + N_WORDS + 3) || !wg_vocab_alloc_merges(&v, N_MERGES)) abort();
    v.kind = WG_VOCAB_BPE;
    v.add_space_prefix = false;
    for (int32_t i = 0; i < v.n; i++) {
        char buf[8];
        const char *p = buf;
        if (i < 256) buf[wg_utf8_encode(wg_bpe_byte_to_cp((unsigned char)i), buf)] = '\0';
        else if (i < 256 + N_WORDS) p = k_words[i - 256];
        else p = k_specials[i - 256 - N_WORDS];
        if (!(v.pieces[i] = dup_str(p))) abort();
        if (i >= 256 + N_WORDS) v.types[i] = i == v.n - 1 ? WG_TOKEN_USER_DEFINED : WG_TOKEN_CONTROL;
    }
    for (int32_t i = 0; i < N_MERGES; i++)
        if (!(v.merges[i] = dup_str(k_merges[i]))) abort();
    v.bos = 256 + N_WORDS;
    v.eos = 256 + N_WORDS + 1;
    t = wg_tokenizer_from_vocab(&v, NULL, 0);
    wg_vocab_clear(&v);
    if (!t) abort();
    return t;
}

typedef struct cover {
    size_t next;
} cover;

static bool check_piece(void *ctx, size_t start, size_t len) {
    cover *c = ctx;
    if (start != c->next || len == 0) abort();
    c->next = start + len;
    return true;
}

static void check_roundtrip(const wg_tokenizer *t, const char *s, size_t len) {
    int64_t n = wg_tokenize_ex(t, s, len, true, false, NULL, 0);
    if (n < 0) abort();
    int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
    if (!ids || wg_tokenize_ex(t, s, len, true, false, ids, n) != n) abort();
    size_t dl = wg_detokenize(t, ids, (size_t)n, NULL, 0);
    char *d = malloc(dl + 1);
    if (!d || wg_detokenize(t, ids, (size_t)n, d, dl + 1) != dl) abort();
    /* "<x>" is user-defined: it is cut out of the text but decodes to itself. */
    if (dl != len || memcmp(d, s, len) != 0) abort();

    size_t cap = wg_detok_stream_max_out(t);
    char *chunk = malloc(cap), *streamed = malloc(3 * dl + 16), *san = malloc(3 * dl + 16);
    if (!chunk || !streamed || !san) abort();
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
    size_t san_len = wg_utf8_sanitize(d, dl, san, 3 * dl + 16);
    if (san_len != sl || memcmp(san, streamed, sl) != 0) abort();

    int64_t m = wg_tokenize_ex(t, s, len, false, true, NULL, 0);
    if (m < 0 || m > (int64_t)len) abort();
    free(san);
    free(streamed);
    free(chunk);
    free(d);
    free(ids);
}

static void try_hf_json(const uint8_t *data, size_t size) {
    wg_vocab v;
    char err[256];
    if (!wg_hf_tokenizer_parse((const char *)data, size, NULL, 0, &v, err, sizeof err)) return;
    wg_tokenizer *t = wg_tokenizer_from_vocab(&v, NULL, 0);
    wg_vocab_clear(&v);
    if (!t) return;
    static const char text[] = "Hello world, it's 12345!\n\n \xF0\x9F\xA6\x99 <|eot_id|> \xFF";
    int32_t ids[128];
    int64_t n = wg_tokenize_ex(t, text, sizeof text - 1, true, true, ids, 128);
    if (n < 0) abort();
    char out[512];
    wg_detokenize(t, ids, n < 128 ? (size_t)n : 128, out, sizeof out);
    wg_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cover c = {0};
    if (!wg_pretok_llama3((const char *)data, size, check_piece, &c) || c.next != size) abort();
    check_roundtrip(builtin_tokenizer(), (const char *)data, size);
    try_hf_json(data, size);
    return 0;
}
