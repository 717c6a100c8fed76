#include "convert/synth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Shapes of well-known models (weights random). */
static const wg_synth_preset k_presets[] = {
    /* name         dim   ffn    layers heads kv  vocab  ctx   tied */
    {"tiny", {64, 192, 2, 4, 2, 512, 256, true, {0}}},
    {"small", {256, 768, 4, 8, 4, 4096, 1024, false, {0}}},
    {"tinyllama", {2048, 5632, 22, 32, 4, 32000, 2048, false, {0}}},
    {"llama2-7b", {4096, 11008, 32, 32, 32, 32000, 4096, false, {0}}},
    {"llama2-13b", {5120, 13824, 40, 40, 40, 32000, 4096, false, {0}}},
    {"llama3-8b", {4096, 14336, 32, 32, 8, 32000, 8192, false, {0}}},
};

const wg_synth_preset *wg_synth_presets(int *count) {
    *count = (int)(sizeof k_presets / sizeof k_presets[0]);
    return k_presets;
}

const wg_synth_preset *wg_synth_find_preset(const char *name) {
    if (strcmp(name, "llama3-8b-shape") == 0) name = "llama3-8b";
    for (size_t i = 0; i < sizeof k_presets / sizeof k_presets[0]; i++)
        if (strcmp(k_presets[i].name, name) == 0) return &k_presets[i];
    return NULL;
}

/* ---- vocabulary ---- */

/* k-th string over a..z in shortlex order: a..z, aa..zz, aaa.. */
static void shortlex(int64_t k, char *buf) {
    int len = 1;
    int64_t span = 26;
    while (k >= span) {
        k -= span;
        span *= 26;
        len++;
    }
    for (int i = len - 1; i >= 0; i--) {
        buf[i] = (char)('a' + k % 26);
        k /= 26;
    }
    buf[len] = 0;
}

bool wg_synth_make_vocab(int32_t n, wg_vocab *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    if (n < WG_SYNTH_MIN_VOCAB || n > WG_LLAMA_MAX_DIM) {
        snprintf(err, err_size, "a synthetic vocabulary needs %d..%d pieces (got %d)", WG_SYNTH_MIN_VOCAB,
                 WG_LLAMA_MAX_DIM, (int)n);
        return false;
    }
    out->pieces = calloc((size_t)n, sizeof *out->pieces);
    out->scores = calloc((size_t)n, sizeof *out->scores);
    out->types = calloc((size_t)n, sizeof *out->types);
    out->n = n;
    out->bos = 1;
    out->eos = 2;
    out->unk = 0;
    out->pad = -1;
    out->add_bos = true;
    out->add_eos = false;
    out->add_space_prefix = true;
    if (!out->pieces || !out->scores || !out->types) goto oom;
    for (int32_t i = 0; i < n; i++) {
        char buf[32];
        if (i == 0) {
            snprintf(buf, sizeof buf, "<unk>");
            out->types[i] = WG_TOKEN_UNKNOWN;
        } else if (i == 1 || i == 2) {
            snprintf(buf, sizeof buf, i == 1 ? "<s>" : "</s>");
            out->types[i] = WG_TOKEN_CONTROL;
        } else if (i < 259) {
            snprintf(buf, sizeof buf, "<0x%02X>", (unsigned)(i - 3));
            out->types[i] = WG_TOKEN_BYTE;
        } else {
            /* Alternate word-initial ("\u2581a") and inner ("a") pieces of growing length. */
            int64_t g = i - 259;
            char word[16];
            shortlex(g / 2, word);
            snprintf(buf, sizeof buf, "%s%s", g % 2 == 0 ? "\xe2\x96\x81" : "", word);
            out->types[i] = WG_TOKEN_NORMAL;
            out->scores[i] = -(float)g;
        }
        out->pieces[i] = strdup(buf);
        if (!out->pieces[i]) goto oom;
    }
    return true;
oom:
    wg_vocab_clear(out);
    snprintf(err, err_size, "out of memory");
    return false;
}

/* ---- weights ---- */

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct synth_source {
    uint64_t seed;
    int32_t n_layer;
} synth_source;

/* Standard deviation of the weights of tensor t (see the header). */
static double weight_std(const synth_source *src, const wg_llama_tensor_desc *t) {
    double fan_in = (double)t->n_cols;
    switch (t->kind) {
    case WG_LT_TOKEN_EMBD:
    case WG_LT_OUTPUT: return 2.0 / sqrt(fan_in);
    case WG_LT_ATTN_OUTPUT:
    case WG_LT_FFN_DOWN: return 1.0 / sqrt(fan_in) / sqrt(2.0 * src->n_layer);
    case WG_LT_ATTN_NORM:
    case WG_LT_FFN_NORM:
    case WG_LT_OUTPUT_NORM: return 0.1;
    default: return 1.0 / sqrt(fan_in);
    }
}

/* Fills rows with an approximately normal distribution: the sum of four
 * uniform 16-bit lanes of one 64-bit draw (Irwin-Hall), cheap enough for the
 * billions of values of a 7B model and bounded (|z| <= 2*sqrt(3)). */
static void synth_fill(void *ctx, const wg_llama_tensor_desc *t, int64_t row0, int64_t n_rows, float *dst) {
    const synth_source *src = ctx;
    const double std = weight_std(src, t);
    const float mean = t->is_norm ? 1.0f : 0.0f;
    /* Each 16-bit lane is uniform on 0..65535 (mean 32767.5, variance ~65536^2/12): the
     * sum of four has mean 131070 and std 65536/sqrt(3). Integers stay exact in float. */
    const float scale = (float)(std * sqrt(3.0) / 65536.0);
    for (int64_t r = 0; r < n_rows; r++) {
        uint64_t state = mix64(mix64(mix64(src->seed) ^ (uint64_t)t->index) + (uint64_t)(row0 + r));
        float *row = dst + r * t->n_cols;
        for (int64_t c = 0; c < t->n_cols; c++) {
            state += 0x9e3779b97f4a7c15ull;
            uint64_t z = mix64(state);
            int32_t sum = (int32_t)((z & 0xffff) + ((z >> 16) & 0xffff) + ((z >> 32) & 0xffff) + (z >> 48));
            row[c] = mean + (float)(sum - 131070) * scale;
        }
    }
}

bool wg_synth_write(const char *path, const wg_llama_shape *s, const wg_vocab *v, uint64_t seed,
                    const wg_llama_write_opts *opts, char *err, size_t err_size) {
    synth_source src = {seed, s->n_layer};
    return wg_llama_write_gguf(path, s, v, opts, synth_fill, &src, err, err_size);
}
