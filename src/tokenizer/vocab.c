/* wg_vocab storage and its construction from GGUF tokenizer.ggml.* keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/vocab.h"
#include "tokenizer/vocab_load.h"

void wg_vocab_clear(wg_vocab *v) {
    if (!v) return;
    if (v->pieces) {
        for (int32_t i = 0; i < v->n; i++) free(v->pieces[i]);
    }
    free(v->pieces);
    if (v->merges) {
        for (int32_t i = 0; i < v->n_merges; i++) free(v->merges[i]);
    }
    free(v->merges);
    free(v->scores);
    free(v->types);
    memset(v, 0, sizeof *v);
}

bool wg_vocab_alloc(wg_vocab *v, int32_t n) {
    memset(v, 0, sizeof *v);
    if (n < 0) return false;
    size_t count = n > 0 ? (size_t)n : 1;
    v->pieces = calloc(count, sizeof *v->pieces);
    v->scores = calloc(count, sizeof *v->scores);
    v->types = malloc(count * sizeof *v->types);
    if (!v->pieces || !v->scores || !v->types) {
        free(v->pieces);
        free(v->scores);
        free(v->types);
        memset(v, 0, sizeof *v);
        return false;
    }
    v->n = n;
    for (int32_t i = 0; i < n; i++) v->types[i] = WG_TOKEN_NORMAL;
    v->bos = v->eos = v->unk = v->pad = v->eot = v->eom = -1;
    v->kind = WG_VOCAB_SPM;
    v->add_bos = true;
    v->add_eos = false;
    v->add_space_prefix = true;
    return true;
}

bool wg_vocab_alloc_merges(wg_vocab *v, int32_t n) {
    if (n < 0 || v->merges) return false;
    v->merges = calloc(n > 0 ? (size_t)n : 1, sizeof *v->merges);
    if (!v->merges) return false;
    v->n_merges = n;
    return true;
}

bool wg_vocab_pad(wg_vocab *v, int32_t n, float score) {
    if (n <= v->n) return n == v->n;
    char **pieces = realloc(v->pieces, sizeof *pieces * (size_t)n);
    if (!pieces) return false;
    v->pieces = pieces;
    float *scores = realloc(v->scores, sizeof *scores * (size_t)n);
    if (!scores) return false;
    v->scores = scores;
    int32_t *types = realloc(v->types, sizeof *types * (size_t)n);
    if (!types) return false;
    v->types = types;
    for (int32_t i = v->n; i < n; i++) {
        char piece[32];
        int len = snprintf(piece, sizeof piece, "[PAD%d]", (int)i);
        if (!(v->pieces[i] = malloc((size_t)len + 1))) return false;
        memcpy(v->pieces[i], piece, (size_t)len + 1);
        v->scores[i] = score;
        v->types[i] = WG_TOKEN_UNUSED;
        v->n = i + 1; /* counted at once: wg_vocab_clear frees what was made */
    }
    return true;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int wg_piece_byte_value(const char *p) {
    if (!p || p[0] != '<' || p[1] != '0' || p[2] != 'x') return -1;
    int hi = hex_digit(p[3]);
    int lo = hi < 0 ? -1 : hex_digit(p[4]);
    if (lo < 0 || p[5] != '>' || p[6] != '\0') return -1;
    return hi * 16 + lo;
}

/* ---- GGUF ---- */

static bool fail(wg_vocab *out, char *err, size_t err_size, const char *msg, const char *key) {
    wg_vocab_clear(out);
    if (err && err_size) snprintf(err, err_size, "%s%s%s", msg, key ? ": " : "", key ? key : "");
    return false;
}

/* An optional special-token id; out-of-range values fall back to the default,
 * as llama.cpp does, and a default outside the vocab means "none". */
static int32_t special_id(const gguf_file *f, const char *key, int32_t dflt, int32_t n) {
    int64_t v;
    if (gguf_get_i64(f, key, &v) && v >= 0 && v < n) return (int32_t)v;
    return dflt >= 0 && dflt < n ? dflt : -1;
}

static bool flag(const gguf_file *f, const char *key, bool dflt) {
    bool b;
    return gguf_get_bool(f, key, &b) ? b : dflt;
}

/* Finds an optional per-token array; -1 if absent, -2 if present with the wrong length. */
static int64_t optional_array(const gguf_file *f, const char *key, int64_t n) {
    int64_t k = gguf_find_key(f, key);
    if (k < 0) return -1;
    return gguf_arr_n(f, k) == n ? k : -2;
}

/* WG_PRE_* of a tokenizer.ggml.pre name (llama.cpp's spellings of the same split), or -1. */
/* The split a pre-tokenizer name selects, and whether a file without
 * tokenizer.ggml.add_bos_token adds bos: llama.cpp's llama_vocab::load defaults add_bos
 * to false for byte-level BPE and sets it only for some pre-tokenizers (Llama 3's, not
 * Qwen2's). -1 for a name not supported. */
static int32_t pre_kind(const char *pre, size_t len, bool *add_bos) {
    static const struct {
        const char *name;
        int32_t pre;
        bool add_bos;
    } names[] = {
        {"llama-bpe", WG_PRE_LLAMA3, true}, {"llama3", WG_PRE_LLAMA3, true}, {"llama-v3", WG_PRE_LLAMA3, true},
        {"qwen2", WG_PRE_QWEN2, false},
        {"deepseek-r1-qwen", WG_PRE_QWEN2, false}, /* the DeepSeek-R1 distills of Qwen2.5 */
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len && memcmp(names[i].name, pre, len) == 0) {
            *add_bos = names[i].add_bos;
            return names[i].pre;
        }
    return -1;
}

/* The byte-level BPE keys: pre-tokenizer name and merges. */
static bool read_bpe_keys(const gguf_file *f, wg_vocab *out, bool *add_bos, char *err, size_t err_size) {
    const char *pre;
    size_t pre_len;
    if (!gguf_get_str(f, "tokenizer.ggml.pre", &pre, &pre_len)) {
        pre = "";
        pre_len = 0;
    }
    out->pre = pre_kind(pre, pre_len, add_bos);
    if (out->pre < 0) {
        char shown[48];
        if (err && err_size)
            snprintf(err, err_size,
                     "unsupported pre-tokenizer '%s' (tokenizer.ggml.pre) for tokenizer model 'gpt2': "
                     "supported: 'llama-bpe' (Llama 3) and 'qwen2'",
                     gguf_str_shown(pre, pre_len, shown, sizeof shown));
        wg_vocab_clear(out);
        return false;
    }
    int64_t k = gguf_find_key(f, "tokenizer.ggml.merges");
    if (k < 0) return fail(out, err, err_size, "missing tokenizer key", "tokenizer.ggml.merges");
    int64_t n = gguf_arr_n(f, k);
    if (n < 0 || n > INT32_MAX || (n > 0 && gguf_arr_type(f, k) != GGUF_VT_STRING))
        return fail(out, err, err_size, "expected a string array", "tokenizer.ggml.merges");
    if (!wg_vocab_alloc_merges(out, (int32_t)n)) return fail(out, err, err_size, "out of memory reading the merges", NULL);
    for (int64_t i = 0; i < n; i++) {
        const char *s;
        size_t len;
        if (!gguf_arr_get_str(f, k, i, &s, &len))
            return fail(out, err, err_size, "cannot read a merge", "tokenizer.ggml.merges");
        char *m = malloc(len + 1);
        if (!m) return fail(out, err, err_size, "out of memory reading the merges", NULL);
        memcpy(m, s, len);
        m[len] = '\0';
        out->merges[i] = m;
    }
    return true;
}

bool wg_vocab_from_gguf(const gguf_file *f, wg_vocab *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    const char *model;
    size_t model_len;
    if (!gguf_get_str(f, "tokenizer.ggml.model", &model, &model_len))
        return fail(out, err, err_size, "missing tokenizer key", "tokenizer.ggml.model");
    bool is_bpe = model_len == 4 && memcmp(model, "gpt2", 4) == 0;
    if (!is_bpe && (model_len != 5 || memcmp(model, "llama", 5) != 0)) {
        char shown[48]; /* a hostile name must not break the one-line message */
        if (err && err_size)
            snprintf(err, err_size,
                     "unsupported tokenizer model '%s' (tokenizer.ggml.model): only 'llama' (SentencePiece BPE) "
                     "and 'gpt2' (byte-level BPE) are supported",
                     gguf_str_shown(model, model_len, shown, sizeof shown));
        return false;
    }
    int64_t k_tok = gguf_find_key(f, "tokenizer.ggml.tokens");
    if (k_tok < 0) return fail(out, err, err_size, "missing tokenizer key", "tokenizer.ggml.tokens");
    int64_t n = gguf_arr_n(f, k_tok);
    if (n <= 0 || gguf_arr_type(f, k_tok) != GGUF_VT_STRING)
        return fail(out, err, err_size, "expected a non-empty string array", "tokenizer.ggml.tokens");
    if (n > INT32_MAX) return fail(out, err, err_size, "too many tokens", "tokenizer.ggml.tokens");
    int64_t k_score = optional_array(f, "tokenizer.ggml.scores", n);
    if (k_score == -2) return fail(out, err, err_size, "array length differs from tokenizer.ggml.tokens", "tokenizer.ggml.scores");
    int64_t k_type = optional_array(f, "tokenizer.ggml.token_type", n);
    if (k_type == -2) return fail(out, err, err_size, "array length differs from tokenizer.ggml.tokens", "tokenizer.ggml.token_type");

    if (!wg_vocab_alloc(out, (int32_t)n)) return fail(out, err, err_size, "out of memory reading the vocabulary", NULL);
    for (int64_t i = 0; i < n; i++) {
        const char *s;
        size_t len;
        if (!gguf_arr_get_str(f, k_tok, i, &s, &len))
            return fail(out, err, err_size, "cannot read a token string", "tokenizer.ggml.tokens");
        char *piece = malloc(len + 1);
        if (!piece) return fail(out, err, err_size, "out of memory reading the vocabulary", NULL);
        memcpy(piece, s, len);
        piece[len] = '\0';
        out->pieces[i] = piece;
        if (k_score >= 0) {
            double d;
            if (!gguf_arr_get_f64(f, k_score, i, &d))
                return fail(out, err, err_size, "cannot read a score", "tokenizer.ggml.scores");
            out->scores[i] = (float)d;
        }
        if (k_type >= 0) {
            int64_t t;
            if (!gguf_arr_get_i64(f, k_type, i, &t))
                return fail(out, err, err_size, "cannot read a token type", "tokenizer.ggml.token_type");
            out->types[i] = t >= WG_TOKEN_NORMAL && t <= WG_TOKEN_BYTE ? (int32_t)t : WG_TOKEN_NORMAL;
        } else if (!is_bpe && wg_piece_byte_value(piece) >= 0) {
            out->types[i] = WG_TOKEN_BYTE;
        }
    }
    int32_t n32 = (int32_t)n;
    bool add_bos = true; /* llama.cpp's default for "llama" (SentencePiece) */
    if (is_bpe) {
        out->kind = WG_VOCAB_BPE;
        if (!read_bpe_keys(f, out, &add_bos, err, err_size)) return false;
    }
    /* Byte-level vocabularies have no conventional special ids to fall back to. */
    out->bos = special_id(f, "tokenizer.ggml.bos_token_id", is_bpe ? -1 : 1, n32);
    out->eos = special_id(f, "tokenizer.ggml.eos_token_id", is_bpe ? -1 : 2, n32);
    out->unk = special_id(f, "tokenizer.ggml.unknown_token_id", is_bpe ? -1 : 0, n32);
    out->pad = special_id(f, "tokenizer.ggml.padding_token_id", -1, n32);
    out->eot = special_id(f, "tokenizer.ggml.eot_token_id", -1, n32);
    out->eom = special_id(f, "tokenizer.ggml.eom_token_id", -1, n32);
    if (k_type < 0) {
        /* Without token types, the named specials still must not decode as text. */
        if (out->unk >= 0) out->types[out->unk] = WG_TOKEN_UNKNOWN;
        if (out->bos >= 0) out->types[out->bos] = WG_TOKEN_CONTROL;
        if (out->eos >= 0) out->types[out->eos] = WG_TOKEN_CONTROL;
        if (out->pad >= 0) out->types[out->pad] = WG_TOKEN_CONTROL;
    }
    out->add_bos = flag(f, "tokenizer.ggml.add_bos_token", add_bos);
    out->add_eos = flag(f, "tokenizer.ggml.add_eos_token", false);
    out->add_space_prefix = flag(f, "tokenizer.ggml.add_space_prefix", !is_bpe);
    return true;
}
