#include "convert/hf_config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "convert/json_file.h"
#include "convert/safetensors.h"

static const cJSON *field(const cJSON *obj, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(j) ? NULL : j; /* transformers writes null for "use the default" */
}

/* A whole number in 1..WG_LLAMA_MAX_DIM; def when absent (def < 0: required). */
static bool get_dim(const cJSON *obj, const char *key, int32_t def, int32_t *out, char *err, size_t err_size) {
    const cJSON *j = field(obj, key);
    if (!j) {
        if (def < 0) {
            snprintf(err, err_size, "config.json: missing \"%s\"", key);
            return false;
        }
        *out = def;
        return true;
    }
    double d = cJSON_IsNumber(j) ? j->valuedouble : -1.0;
    if (!(d >= 1.0 && d <= (double)WG_LLAMA_MAX_DIM) || d != floor(d)) {
        snprintf(err, err_size, "config.json: \"%s\" must be an integer in 1..%d", key, WG_LLAMA_MAX_DIM);
        return false;
    }
    *out = (int32_t)d;
    return true;
}

/* A finite positive number; def when absent. */
static bool get_pos(const cJSON *obj, const char *key, double def, double *out, char *err, size_t err_size) {
    const cJSON *j = field(obj, key);
    if (!j) {
        *out = def;
        return true;
    }
    if (!cJSON_IsNumber(j) || !(j->valuedouble > 0.0) || !isfinite(j->valuedouble)) {
        snprintf(err, err_size, "config.json: \"%s\" must be a positive number", key);
        return false;
    }
    *out = j->valuedouble;
    return true;
}

static bool get_bool(const cJSON *obj, const char *key, bool def) {
    const cJSON *j = field(obj, key);
    return cJSON_IsBool(j) ? cJSON_IsTrue(j) : def;
}

/* The Hugging Face classes converted, and the GGUF arch of each. */
static const struct {
    const char *hf, *model_type;
    int32_t arch;
} k_archs[] = {
    {"LlamaForCausalLM", "llama", WG_LLAMA_ARCH_LLAMA},   {"MistralForCausalLM", "mistral", WG_LLAMA_ARCH_LLAMA},
    {"Qwen2ForCausalLM", "qwen2", WG_LLAMA_ARCH_QWEN2},   {"Qwen3ForCausalLM", "qwen3", WG_LLAMA_ARCH_QWEN3},
    {"Phi3ForCausalLM", "phi3", WG_LLAMA_ARCH_PHI3},
};
#define N_ARCHS (sizeof k_archs / sizeof k_archs[0])

static bool check_architecture(const cJSON *root, wg_hf_config *c, char *err, size_t err_size) {
    const cJSON *arch = field(root, "architectures");
    const char *first = NULL;
    if (!arch) {
        const cJSON *mt = field(root, "model_type");
        for (size_t i = 0; cJSON_IsString(mt) && i < N_ARCHS; i++) {
            if (strcmp(mt->valuestring, k_archs[i].model_type) != 0) continue;
            c->shape.ext.arch = k_archs[i].arch;
            snprintf(c->hf_arch, sizeof c->hf_arch, "%s", k_archs[i].hf);
            return true;
        }
        snprintf(err, err_size, "config.json: no \"architectures\" (expected LlamaForCausalLM, MistralForCausalLM, "
                                "Qwen2ForCausalLM, Qwen3ForCausalLM or Phi3ForCausalLM)");
        return false;
    }
    for (const cJSON *a = cJSON_IsArray(arch) ? arch->child : NULL; a; a = a->next) {
        if (!cJSON_IsString(a)) continue;
        for (size_t i = 0; i < N_ARCHS; i++) {
            if (strcmp(a->valuestring, k_archs[i].hf) != 0) continue;
            c->shape.ext.arch = k_archs[i].arch;
            snprintf(c->hf_arch, sizeof c->hf_arch, "%s", k_archs[i].hf);
            return true;
        }
        if (!first) first = a->valuestring;
    }
    char shown[96];
    wg_st_printable(first ? first : "?", shown, sizeof shown);
    snprintf(err, err_size,
             "config.json: unsupported architecture '%s' (supported: LlamaForCausalLM, MistralForCausalLM, "
             "Qwen2ForCausalLM, Qwen3ForCausalLM, Phi3ForCausalLM)",
             shown);
    return false;
}

/* A window or context size that may also be 0 or null ("none"): 0 then. */
static bool get_window(const cJSON *obj, const char *key, int32_t *out, char *err, size_t err_size) {
    const cJSON *j = field(obj, key);
    if (!j || (cJSON_IsNumber(j) && j->valuedouble == 0.0)) {
        *out = 0;
        return true;
    }
    return get_dim(obj, key, 0, out, err, err_size);
}

/* A key of config.json, or of its rope_parameters (where transformers 5 moved some). */
static const cJSON *rope_field(const cJSON *root, const char *key) {
    const cJSON *j = field(root, key);
    const cJSON *rp = field(root, "rope_parameters");
    return j ? j : (cJSON_IsObject(rp) ? field(rp, key) : NULL);
}

/* Sliding window, partial rotary and the original context, per family. */
static bool parse_family(const cJSON *root, wg_hf_config *c, char *err, size_t err_size) {
    wg_llama_shape *s = &c->shape;
    int32_t arch = s->ext.arch;
    bool mistral = strcmp(c->hf_arch, "MistralForCausalLM") == 0;
    if (mistral || arch == WG_LLAMA_ARCH_PHI3) {
        if (!get_window(root, "sliding_window", &s->ext.swa_window, err, err_size)) return false;
    }
    if ((arch == WG_LLAMA_ARCH_QWEN2 || arch == WG_LLAMA_ARCH_QWEN3) && get_bool(root, "use_sliding_window", false)) {
        snprintf(err, err_size, "config.json: %s with use_sliding_window is not supported", c->hf_arch);
        return false;
    }
    const cJSON *prf = rope_field(root, "partial_rotary_factor");
    double factor = 1.0;
    if (prf && !(cJSON_IsNumber(prf) && prf->valuedouble > 0.0 && prf->valuedouble <= 1.0)) {
        snprintf(err, err_size, "config.json: \"partial_rotary_factor\" must be a number in (0, 1]");
        return false;
    }
    if (prf) factor = prf->valuedouble;
    if (factor != 1.0 && arch != WG_LLAMA_ARCH_PHI3) {
        snprintf(err, err_size, "config.json: partial rotary embeddings are supported only for Phi3ForCausalLM");
        return false;
    }
    if (arch == WG_LLAMA_ARCH_PHI3) {
        /* llama.cpp's count: int(factor * n_embd) // n_head */
        int32_t dims = (int32_t)(factor * (double)s->n_embd) / s->n_head;
        if (dims < 2) {
            snprintf(err, err_size, "config.json: \"partial_rotary_factor\" %g rotates no pair of a head", factor);
            return false;
        }
        if (dims != wg_llama_head_dim(s)) s->ext.rope_dims = dims;
        const char *key = "original_max_position_embeddings";
        const cJSON *rp = field(root, "rope_parameters");
        const cJSON *holder = field(root, key) || !cJSON_IsObject(rp) ? root : rp;
        if (!get_dim(holder, key, s->n_ctx, &s->ext.rope_scaling_orig_ctx, err, err_size)) return false;
    }
    return true;
}

/* rope_scaling (transformers 4) or rope_parameters (transformers 5, which also carries
 * rope_theta). "default" is no scaling. */
static bool parse_rope(const cJSON *root, wg_hf_config *c, char *err, size_t err_size) {
    wg_llama_shape *s = &c->shape;
    const cJSON *rs = field(root, "rope_scaling");
    const cJSON *rp = field(root, "rope_parameters");
    double theta;
    if (!get_pos(root, "rope_theta", 10000.0, &theta, err, err_size)) return false;
    if (!field(root, "rope_theta") && cJSON_IsObject(rp) &&
        !get_pos(rp, "rope_theta", 10000.0, &theta, err, err_size))
        return false;
    s->ext.rope_freq_base = (float)theta;
    if (!rs) rs = rp;
    c->low_freq_factor = 1.0f;
    c->high_freq_factor = 4.0f;
    if (!rs) return true;
    if (!cJSON_IsObject(rs)) {
        snprintf(err, err_size, "config.json: \"rope_scaling\" must be an object");
        return false;
    }
    const cJSON *type = field(rs, "rope_type");
    if (!type) type = field(rs, "type");
    if (!cJSON_IsString(type)) {
        snprintf(err, err_size, "config.json: rope scaling without a \"rope_type\"");
        return false;
    }
    const char *t = type->valuestring;
    if (strcmp(t, "default") == 0) return true;
    bool linear = strcmp(t, "linear") == 0, llama3 = strcmp(t, "llama3") == 0;
    if (!linear && !(llama3 && s->ext.arch == WG_LLAMA_ARCH_LLAMA)) {
        char shown[48];
        wg_st_printable(t, shown, sizeof shown);
        bool longrope = strcmp(t, "longrope") == 0 || strcmp(t, "su") == 0;
        snprintf(err, err_size, "config.json: unsupported rope scaling '%s'%s (supported: linear%s)", shown,
                 longrope ? " of the long-context Phi-3 models" : "",
                 s->ext.arch == WG_LLAMA_ARCH_LLAMA ? ", llama3" : "");
        return false;
    }
    if (!field(rs, "factor")) {
        snprintf(err, err_size, "config.json: %s rope scaling needs a \"factor\"", t);
        return false;
    }
    double factor;
    if (!get_pos(rs, "factor", 1.0, &factor, err, err_size)) return false;
    s->ext.rope_scaling = linear ? WG_LLAMA_ROPE_SCALING_LINEAR : WG_LLAMA_ROPE_SCALING_LLAMA3;
    s->ext.rope_scaling_factor = (float)factor;
    if (linear) return true;

    double lo, hi;
    int32_t orig;
    if (!get_pos(rs, "low_freq_factor", 1.0, &lo, err, err_size) ||
        !get_pos(rs, "high_freq_factor", 4.0, &hi, err, err_size) ||
        !get_dim(rs, "original_max_position_embeddings", 8192, &orig, err, err_size))
        return false;
    if (!(hi > lo)) {
        snprintf(err, err_size, "config.json: llama3 rope scaling needs high_freq_factor > low_freq_factor");
        return false;
    }
    c->low_freq_factor = (float)lo;
    c->high_freq_factor = (float)hi;
    s->ext.rope_scaling_orig_ctx = orig;
    s->ext.rope_freqs = true;
    return true;
}

bool wg_hf_config_parse(const cJSON *root, wg_hf_config *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(root)) {
        snprintf(err, err_size, "config.json: not a JSON object");
        return false;
    }
    if (!check_architecture(root, out, err, err_size)) return false;
    const cJSON *nop = field(root, "_name_or_path");
    if (cJSON_IsString(nop)) snprintf(out->name_or_path, sizeof out->name_or_path, "%s", nop->valuestring);
    const cJSON *act = field(root, "hidden_act");
    if (act && !(cJSON_IsString(act) && strcmp(act->valuestring, "silu") == 0)) {
        char shown[48];
        wg_st_printable(cJSON_IsString(act) ? act->valuestring : "?", shown, sizeof shown);
        snprintf(err, err_size, "config.json: unsupported hidden_act '%s' (supported: silu)", shown);
        return false;
    }
    /* Qwen2 always has q/k/v biases (its config has no switch); no other bias is read */
    if (get_bool(root, "attention_bias", false) || get_bool(root, "mlp_bias", false)) {
        snprintf(err, err_size, "config.json: attention or MLP biases are not supported for %s", out->hf_arch);
        return false;
    }
    wg_llama_shape *s = &out->shape;
    int32_t head_dim = 0;
    if (!get_dim(root, "hidden_size", -1, &s->n_embd, err, err_size) ||
        !get_dim(root, "intermediate_size", -1, &s->n_ff, err, err_size) ||
        !get_dim(root, "num_hidden_layers", -1, &s->n_layer, err, err_size) ||
        !get_dim(root, "num_attention_heads", -1, &s->n_head, err, err_size) ||
        !get_dim(root, "num_key_value_heads", s->n_head, &s->n_head_kv, err, err_size) ||
        !get_dim(root, "vocab_size", -1, &s->n_vocab, err, err_size) ||
        !get_dim(root, "max_position_embeddings", 2048, &s->n_ctx, err, err_size) ||
        !get_dim(root, "head_dim", 0, &head_dim, err, err_size))
        return false;
    /* head_dim is written only when it differs from hidden_size / heads (llama.cpp does the same) */
    if (head_dim > 0 && !(head_dim * s->n_head == s->n_embd)) s->ext.head_dim = head_dim;
    double eps;
    if (!get_pos(root, "rms_norm_eps", 1e-6, &eps, err, err_size)) return false;
    s->ext.rms_eps = (float)eps;
    s->tied = get_bool(root, "tie_word_embeddings", false);
    if (!parse_rope(root, out, err, err_size) || !parse_family(root, out, err, err_size)) return false;
    char why[200];
    if (!wg_llama_shape_check(s, why, sizeof why)) {
        snprintf(err, err_size, "config.json: %s", why);
        return false;
    }
    return true;
}

bool wg_hf_config_load(const char *path, wg_hf_config *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    cJSON *root = wg_json_load_file(path, 1u << 20, err, err_size);
    if (!root) return false;
    bool ok = wg_hf_config_parse(root, out, err, err_size);
    cJSON_Delete(root);
    return ok;
}

void wg_hf_llama3_rope_factors(const wg_hf_config *c, float *factors) {
    const wg_llama_shape *s = &c->shape;
    int d = wg_llama_head_dim(s);
    double base = s->ext.rope_freq_base, factor = s->ext.rope_scaling_factor;
    double lo = c->low_freq_factor, hi = c->high_freq_factor, orig = s->ext.rope_scaling_orig_ctx;
    double low_freq_wavelen = orig / lo, high_freq_wavelen = orig / hi;
    for (int j = 0; j < d / 2; j++) {
        double freq = pow(base, -(double)(2 * j) / d);
        double wavelen = 2.0 * M_PI / freq;
        double f;
        if (wavelen < high_freq_wavelen) {
            f = 1.0; /* high frequencies: unchanged */
        } else if (wavelen > low_freq_wavelen) {
            f = factor; /* low frequencies: slowed down by the full factor */
        } else { /* in between: a smooth blend of the two */
            double smooth = (orig / wavelen - lo) / (hi - lo);
            f = 1.0 / ((1.0 - smooth) / factor + smooth);
        }
        factors[j] = (float)f;
    }
}
