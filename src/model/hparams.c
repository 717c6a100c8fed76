/* Hyper-parameters of the llama architecture from GGUF metadata (llama.* keys,
 * names as llama.cpp writes them). */
#include <stdio.h>
#include <string.h>

#include "model/model.h"

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

bool wg_hparams_load(const gguf_file *f, wg_hparams *hp, char *err, size_t err_size) {
    memset(hp, 0, sizeof *hp);
    const char *arch;
    size_t arch_len;
    if (!gguf_get_str(f, "general.architecture", &arch, &arch_len)) {
        snprintf(err, err_size, "missing metadata key 'general.architecture'");
        return false;
    }
    if (arch_len != 5 || memcmp(arch, "llama", 5) != 0) {
        snprintf(err, err_size, "unsupported architecture '%.*s' (supported: llama)", (int)(arch_len > 40 ? 40 : arch_len),
                 arch);
        return false;
    }
    if (!need_u32(f, "llama.embedding_length", &hp->n_embd, err, err_size) ||
        !need_u32(f, "llama.block_count", &hp->n_layer, err, err_size) ||
        !need_u32(f, "llama.feed_forward_length", &hp->n_ff, err, err_size) ||
        !need_u32(f, "llama.attention.head_count", &hp->n_head, err, err_size) ||
        !opt_u32(f, "llama.attention.head_count_kv", &hp->n_head_kv, hp->n_head, err, err_size) ||
        !opt_u32(f, "llama.context_length", &hp->n_ctx_train, 2048, err, err_size))
        return false;
    if (hp->n_head_kv > hp->n_head || hp->n_head % hp->n_head_kv != 0) {
        snprintf(err, err_size, "head_count %d is not a multiple of head_count_kv %d", hp->n_head, hp->n_head_kv);
        return false;
    }
    int key_len, val_len;
    if (!opt_u32(f, "llama.attention.key_length", &key_len, hp->n_embd / hp->n_head, err, err_size) ||
        !opt_u32(f, "llama.attention.value_length", &val_len, key_len, err, err_size))
        return false;
    if (key_len != val_len || key_len % 2 != 0) {
        snprintf(err, err_size, "unsupported head sizes: key_length %d, value_length %d", key_len, val_len);
        return false;
    }
    hp->head_dim = key_len;
    if (!opt_u32(f, "llama.rope.dimension_count", &hp->rope_dims, hp->head_dim, err, err_size)) return false;
    if (hp->rope_dims > hp->head_dim || hp->rope_dims % 2 != 0) {
        snprintf(err, err_size, "rope.dimension_count %d does not fit head size %d", hp->rope_dims, hp->head_dim);
        return false;
    }
    hp->rope_base = 10000.0f;
    if (gguf_find_key(f, "llama.rope.freq_base") >= 0 && !gguf_get_f32(f, "llama.rope.freq_base", &hp->rope_base)) {
        snprintf(err, err_size, "invalid metadata key 'llama.rope.freq_base'");
        return false;
    }
    hp->norm_eps = 1e-5f;
    if (gguf_find_key(f, "llama.attention.layer_norm_rms_epsilon") >= 0 &&
        !gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &hp->norm_eps)) {
        snprintf(err, err_size, "invalid metadata key 'llama.attention.layer_norm_rms_epsilon'");
        return false;
    }
    if (!(hp->rope_base > 0.0f) || !(hp->norm_eps >= 0.0f) || hp->norm_eps > 1.0f) {
        snprintf(err, err_size, "invalid rope.freq_base %g or rms epsilon %g", (double)hp->rope_base,
                 (double)hp->norm_eps);
        return false;
    }
    /* RoPE scaling: none, linear and llama3 (whose factors are the tensor rope_freqs.weight)
     * are supported; others are refused rather than run wrong. */
    hp->rope_scale = 1.0f;
    const char *st;
    size_t st_len;
    if (gguf_get_str(f, "llama.rope.scaling.type", &st, &st_len)) {
        if (st_len == 6 && memcmp(st, "linear", 6) == 0) {
            float factor;
            if (!gguf_get_f32(f, "llama.rope.scaling.factor", &factor) || !(factor >= 1.0f)) {
                snprintf(err, err_size, "linear rope scaling needs llama.rope.scaling.factor >= 1");
                return false;
            }
            hp->rope_scale = 1.0f / factor;
        } else if (st_len == 6 && memcmp(st, "llama3", 6) == 0) {
            hp->rope_llama3 = true;
        } else if (!(st_len == 4 && memcmp(st, "none", 4) == 0)) {
            snprintf(err, err_size, "unsupported rope scaling type '%.*s'", (int)(st_len > 40 ? 40 : st_len), st);
            return false;
        }
    }
    return true;
}
