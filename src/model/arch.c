/* The architecture table (see arch.h). Key and tensor names are those llama.cpp's
 * converter writes; the flags follow how llama.cpp loads and runs each family. */
#include "model/arch.h"

#include <stdio.h>
#include <string.h>

/* GGUF's tensor names, shared by every family here. */
static const char *const gguf_names[WG_TENSOR_COUNT_] = {
    [WG_TENSOR_TOKEN_EMBD] = "token_embd",
    [WG_TENSOR_OUTPUT_NORM] = "output_norm",
    [WG_TENSOR_OUTPUT] = "output",
    [WG_TENSOR_ROPE_FREQS] = "rope_freqs",
    [WG_TENSOR_ROPE_FACTORS_LONG] = "rope_factors_long",
    [WG_TENSOR_ROPE_FACTORS_SHORT] = "rope_factors_short",
    [WG_TENSOR_ATTN_NORM] = "blk.%d.attn_norm",
    [WG_TENSOR_ATTN_Q] = "blk.%d.attn_q",
    [WG_TENSOR_ATTN_K] = "blk.%d.attn_k",
    [WG_TENSOR_ATTN_V] = "blk.%d.attn_v",
    [WG_TENSOR_ATTN_QKV] = "blk.%d.attn_qkv",
    [WG_TENSOR_ATTN_Q_NORM] = "blk.%d.attn_q_norm",
    [WG_TENSOR_ATTN_K_NORM] = "blk.%d.attn_k_norm",
    [WG_TENSOR_ATTN_OUT] = "blk.%d.attn_output",
    [WG_TENSOR_FFN_NORM] = "blk.%d.ffn_norm",
    [WG_TENSOR_FFN_GATE] = "blk.%d.ffn_gate",
    [WG_TENSOR_FFN_UP] = "blk.%d.ffn_up",
    [WG_TENSOR_FFN_DOWN] = "blk.%d.ffn_down",
};

static const wg_arch arches[] = {
    /* Llama 1/2/3/3.1/3.2, Mistral, SmolLM, TinyLlama. Biases are optional as in llama.cpp
     * (LlamaConfig.attention_bias); Mistral's sliding window is written by our converter. */
    {.name = "llama",
     .prefix = "llama",
     .tensor_names = gguf_names,
     .qkv_bias = WG_OPTIONAL,
     .qk_norm = WG_ABSENT,
     .output = WG_OPTIONAL,
     .fused_qkv = WG_ABSENT,
     .fused_gate_up = WG_ABSENT,
     .rope_neox = false,
     .sliding_window = true,
     .rope_freqs = true},
    /* Qwen2, Qwen2.5 (and the DeepSeek-R1 distills): q/k/v always biased. Its
     * use_sliding_window is off in every released model, and llama.cpp ignores it. */
    {.name = "qwen2",
     .prefix = "qwen2",
     .tensor_names = gguf_names,
     .qkv_bias = WG_REQUIRED,
     .qk_norm = WG_ABSENT,
     .output = WG_OPTIONAL,
     .fused_qkv = WG_ABSENT,
     .fused_gate_up = WG_ABSENT,
     .rope_neox = true},
    /* Qwen3: per-head RMS norm of q and k; head size from attention.key_length. */
    {.name = "qwen3",
     .prefix = "qwen3",
     .tensor_names = gguf_names,
     .qkv_bias = WG_OPTIONAL,
     .qk_norm = WG_REQUIRED,
     .output = WG_OPTIONAL,
     .fused_qkv = WG_ABSENT,
     .fused_gate_up = WG_ABSENT,
     .rope_neox = true},
    /* Phi-3: the converter keeps HF's fused qkv_proj and gate_up_proj. Its sliding window
     * (2047 in Phi-3-mini-4k) is honoured as transformers does. */
    {.name = "phi3",
     .prefix = "phi3",
     .tensor_names = gguf_names,
     .qkv_bias = WG_OPTIONAL,
     .qk_norm = WG_ABSENT,
     .output = WG_OPTIONAL,
     .fused_qkv = WG_OPTIONAL,
     .fused_gate_up = WG_REQUIRED,
     .rope_neox = true,
     .sliding_window = true,
     .longrope_factors = true},
};

const wg_arch *wg_arch_find(const char *name, size_t len) {
    for (size_t i = 0; name && i < sizeof arches / sizeof arches[0]; i++)
        if (strlen(arches[i].name) == len && memcmp(arches[i].name, name, len) == 0) return &arches[i];
    return NULL;
}

const char *wg_arch_supported_list(void) { return "llama, qwen2, qwen3, phi3"; }

const wg_arch *wg_arch_of_file(const gguf_file *f, char *err, size_t err_size) {
    const char *name;
    size_t len;
    if (!gguf_get_str(f, "general.architecture", &name, &len)) {
        snprintf(err, err_size, "missing metadata key 'general.architecture'");
        return NULL;
    }
    const wg_arch *a = wg_arch_find(name, len);
    if (!a) {
        char shown[48]; /* only printable bytes of a hostile name reach the message */
        snprintf(err, err_size, "unsupported architecture '%s' (supported: %s)",
                 gguf_str_shown(name, len, shown, sizeof shown), wg_arch_supported_list());
    }
    return a;
}

bool wg_arch_key(const wg_arch *a, const char *suffix, char *buf, size_t size) {
    int n = snprintf(buf, size, "%s.%s", a->prefix, suffix);
    return n > 0 && (size_t)n < size;
}

bool wg_arch_tensor_name(const wg_arch *a, wg_tensor_role role, int layer, const char *kind, char *buf, size_t size) {
    if ((unsigned)role >= WG_TENSOR_COUNT_) return false;
    const char *fmt = a->tensor_names[role];
    char base[64];
    int n = strstr(fmt, "%d") ? snprintf(base, sizeof base, fmt, layer) : snprintf(base, sizeof base, "%s", fmt);
    if (n <= 0 || (size_t)n >= sizeof base) return false;
    n = snprintf(buf, size, "%s.%s", base, kind);
    return n > 0 && (size_t)n < size;
}

static bool has(const wg_arch *a, const gguf_file *f, wg_tensor_role role, const char *kind) {
    char name[96];
    return wg_arch_tensor_name(a, role, 0, kind, name, sizeof name) && gguf_find_tensor(f, name);
}

/* Checks one feature against its presence in the table. */
static bool feature(const wg_arch *a, wg_presence p, bool found, const char *what, char *err, size_t err_size) {
    if (found && p == WG_ABSENT) {
        snprintf(err, err_size, "the file has %s, which architecture '%s' never has", what, a->name);
        return false;
    }
    if (!found && p == WG_REQUIRED) {
        snprintf(err, err_size, "architecture '%s' needs %s, but the file has none", a->name, what);
        return false;
    }
    return true;
}

bool wg_arch_features_resolve(const wg_arch *a, const gguf_file *f, wg_arch_features *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    out->fused_qkv = has(a, f, WG_TENSOR_ATTN_QKV, "weight");
    out->qkv_bias = out->fused_qkv ? has(a, f, WG_TENSOR_ATTN_QKV, "bias")
                                   : has(a, f, WG_TENSOR_ATTN_Q, "bias") || has(a, f, WG_TENSOR_ATTN_K, "bias") ||
                                         has(a, f, WG_TENSOR_ATTN_V, "bias");
    out->qk_norm = has(a, f, WG_TENSOR_ATTN_Q_NORM, "weight") || has(a, f, WG_TENSOR_ATTN_K_NORM, "weight");
    out->tied_output = !has(a, f, WG_TENSOR_OUTPUT, "weight");
    out->fused_gate_up = !has(a, f, WG_TENSOR_FFN_GATE, "weight");
    out->longrope =
        has(a, f, WG_TENSOR_ROPE_FACTORS_LONG, "weight") || has(a, f, WG_TENSOR_ROPE_FACTORS_SHORT, "weight");
    if (out->longrope) {
        snprintf(err, err_size, "%s",
                 a->longrope_factors ? "longrope rope scaling (rope_factors_long/short) is not supported"
                                     : "the file has rope_factors_long/short, which its architecture never has");
        return false;
    }
    if (out->fused_qkv && has(a, f, WG_TENSOR_ATTN_Q, "weight")) {
        snprintf(err, err_size, "the file has both fused attn_qkv and separate attn_q tensors");
        return false;
    }
    if (out->fused_gate_up && a->fused_gate_up == WG_ABSENT) {
        /* without ffn_gate the family is not SwiGLU as we know it: name the missing tensor */
        char name[96];
        wg_arch_tensor_name(a, WG_TENSOR_FFN_GATE, 0, "weight", name, sizeof name);
        snprintf(err, err_size, "missing tensor '%s'", name);
        return false;
    }
    return feature(a, a->fused_qkv, out->fused_qkv, "fused attn_qkv tensors", err, err_size) &&
           feature(a, a->fused_gate_up, out->fused_gate_up, "fused ffn gate/up tensors (ffn_up without ffn_gate)", err,
                   err_size) &&
           feature(a, a->qkv_bias, out->qkv_bias, "q/k/v bias tensors", err, err_size) &&
           feature(a, a->qk_norm, out->qk_norm, "q/k norm tensors (attn_q_norm, attn_k_norm)", err, err_size) &&
           feature(a, a->output, !out->tied_output, "an output.weight tensor", err, err_size);
}
