/* Hyper-parameters from GGUF metadata, read through the architecture table: keys are
 * "<prefix>.<name>" as llama.cpp writes them. */
#include <stdio.h>
#include <string.h>

#include "model/model.h"

/* Key names are short: a longer prefix is a table error, caught by the unit test. */
#define KEY(hp, suffix, buf) (wg_arch_key((hp)->arch, (suffix), (buf), sizeof(buf)) ? (buf) : "")

static bool need_u32(const gguf_file *f, const char *key, int *out, char *err, size_t err_size) {
    uint32_t v;
    if (!gguf_get_u32(f, key, &v)) {
        snprintf(err, err_size, "missing or invalid metadata key '%s'", key);
        return false;
    }
    if (v == 0 || v > (1u << 30)) {
        snprintf(err, err_size, "metadata key '%s' has an out-of-range value %u", key, v);
        return false;
    }
    *out = (int)v;
    return true;
}

static bool opt_u32(const gguf_file *f, const char *key, int *out, int def, char *err, size_t err_size) {
    if (gguf_find_key(f, key) < 0) {
        *out = def;
        return true;
    }
    return need_u32(f, key, out, err, err_size);
}

static bool opt_f32(const gguf_file *f, const char *key, float *out, float def, char *err, size_t err_size) {
    *out = def;
    if (gguf_find_key(f, key) >= 0 && !gguf_get_f32(f, key, out)) {
        snprintf(err, err_size, "invalid metadata key '%s'", key);
        return false;
    }
    return true;
}

/* <prefix>.attention.sliding_window: 0 or absent means full attention. */
static bool load_sliding_window(const gguf_file *f, wg_hparams *hp, char *err, size_t err_size) {
    char k[96];
    const char *key = KEY(hp, "attention.sliding_window", k);
    hp->swa_window = 0;
    if (!hp->arch->sliding_window || gguf_find_key(f, key) < 0) return true;
    uint32_t v;
    if (!gguf_get_u32(f, key, &v) || v > (1u << 30)) {
        snprintf(err, err_size, "invalid metadata key '%s'", key);
        return false;
    }
    hp->swa_window = (int)v;
    return true;
}

/* RoPE scaling: none, linear and llama3 (whose factors are the tensor rope_freqs.weight)
 * are supported; others (yarn, longrope, ...) are refused rather than run wrong. */
static bool load_rope_scaling(const gguf_file *f, wg_hparams *hp, char *err, size_t err_size) {
    char k[96];
    hp->rope_scale = 1.0f;
    const char *st;
    size_t st_len;
    if (!gguf_get_str(f, KEY(hp, "rope.scaling.type", k), &st, &st_len)) return true;
    if (st_len == 6 && memcmp(st, "linear", 6) == 0) {
        float factor;
        if (!gguf_get_f32(f, KEY(hp, "rope.scaling.factor", k), &factor) || !(factor >= 1.0f)) {
            snprintf(err, err_size, "linear rope scaling needs %s >= 1", k);
            return false;
        }
        hp->rope_scale = 1.0f / factor;
    } else if (st_len == 6 && memcmp(st, "llama3", 6) == 0 && hp->arch->rope_freqs) {
        hp->rope_llama3 = true;
    } else if (!(st_len == 4 && memcmp(st, "none", 4) == 0)) {
        char shown[48];
        snprintf(err, err_size, "unsupported rope scaling type '%s' for architecture '%s'",
                 gguf_str_shown(st, st_len, shown, sizeof shown), hp->arch->name);
        return false;
    }
    return true;
}

bool wg_hparams_load(const gguf_file *f, wg_hparams *hp, char *err, size_t err_size) {
    memset(hp, 0, sizeof *hp);
    if (!(hp->arch = wg_arch_of_file(f, err, err_size))) return false;
    hp->rope_neox = hp->arch->rope_neox;
    char k[96];
    if (!need_u32(f, KEY(hp, "embedding_length", k), &hp->n_embd, err, err_size) ||
        !need_u32(f, KEY(hp, "block_count", k), &hp->n_layer, err, err_size) ||
        !need_u32(f, KEY(hp, "feed_forward_length", k), &hp->n_ff, err, err_size) ||
        !need_u32(f, KEY(hp, "attention.head_count", k), &hp->n_head, err, err_size) ||
        !opt_u32(f, KEY(hp, "attention.head_count_kv", k), &hp->n_head_kv, hp->n_head, err, err_size) ||
        !opt_u32(f, KEY(hp, "context_length", k), &hp->n_ctx_train, 2048, err, err_size))
        return false;
    if (hp->n_head_kv > hp->n_head || hp->n_head % hp->n_head_kv != 0) {
        snprintf(err, err_size, "head_count %d is not a multiple of head_count_kv %d", hp->n_head, hp->n_head_kv);
        return false;
    }
    int key_len, val_len;
    if (!opt_u32(f, KEY(hp, "attention.key_length", k), &key_len, hp->n_embd / hp->n_head, err, err_size) ||
        !opt_u32(f, KEY(hp, "attention.value_length", k), &val_len, key_len, err, err_size))
        return false;
    if (key_len != val_len || key_len % 2 != 0) {
        snprintf(err, err_size, "unsupported head sizes: key_length %d, value_length %d", key_len, val_len);
        return false;
    }
    hp->head_dim = key_len;
    if ((long long)hp->n_head * hp->head_dim > (1 << 30)) {
        snprintf(err, err_size, "head_count %d times key_length %d is out of range", hp->n_head, hp->head_dim);
        return false;
    }
    /* partial rotary (Phi-4-mini, StableLM-like files): only the first dimension_count of
     * each head turn */
    if (!opt_u32(f, KEY(hp, "rope.dimension_count", k), &hp->rope_dims, hp->head_dim, err, err_size)) return false;
    if (hp->rope_dims > hp->head_dim || hp->rope_dims % 2 != 0) {
        snprintf(err, err_size, "rope.dimension_count %d does not fit head size %d", hp->rope_dims, hp->head_dim);
        return false;
    }
    if (!opt_f32(f, KEY(hp, "rope.freq_base", k), &hp->rope_base, 10000.0f, err, err_size) ||
        !opt_f32(f, KEY(hp, "attention.layer_norm_rms_epsilon", k), &hp->norm_eps, 1e-5f, err, err_size))
        return false;
    if (!(hp->rope_base > 0.0f) || !(hp->norm_eps >= 0.0f) || hp->norm_eps > 1.0f) {
        snprintf(err, err_size, "invalid rope.freq_base %g or rms epsilon %g", (double)hp->rope_base,
                 (double)hp->norm_eps);
        return false;
    }
    return load_sliding_window(f, hp, err, err_size) && load_rope_scaling(f, hp, err, err_size);
}
