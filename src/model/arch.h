/* Model families: the table that maps a GGUF general.architecture to its metadata key
 * prefix, its tensor names and its feature flags (as llama.cpp's llama-arch.cpp does).
 * hparams.c and model_load.c read everything family-specific through it, so adding a
 * family is one entry here plus the ops it really needs. The table is constant. */
#ifndef WGLLM_MODEL_ARCH_H
#define WGLLM_MODEL_ARCH_H

#include <stdbool.h>
#include <stddef.h>

#include "gguf/gguf.h"

/* Whether a family's files carry a tensor (or a tensor group). */
typedef enum wg_presence {
    WG_ABSENT = 0,   /* never: a file that has it is refused (it would be ignored silently) */
    WG_OPTIONAL = 1, /* used when the file has it */
    WG_REQUIRED = 2, /* a file without it is refused */
} wg_presence;

/* Tensors by role. Names are GGUF's (llama.cpp's): "%d" is the layer; loaders add
 * ".weight" or ".bias". */
typedef enum wg_tensor_role {
    WG_TENSOR_TOKEN_EMBD,
    WG_TENSOR_OUTPUT_NORM,
    WG_TENSOR_OUTPUT,
    WG_TENSOR_ROPE_FREQS,         /* Llama 3 scaling: per-pair frequency divisors */
    WG_TENSOR_ROPE_FACTORS_LONG,  /* Phi-3 longrope (not supported: refused) */
    WG_TENSOR_ROPE_FACTORS_SHORT, /* Phi-3 longrope (not supported: refused) */
    WG_TENSOR_ATTN_NORM,
    WG_TENSOR_ATTN_Q,
    WG_TENSOR_ATTN_K,
    WG_TENSOR_ATTN_V,
    WG_TENSOR_ATTN_QKV, /* fused: q rows, then k rows, then v rows */
    WG_TENSOR_ATTN_Q_NORM,
    WG_TENSOR_ATTN_K_NORM,
    WG_TENSOR_ATTN_OUT,
    WG_TENSOR_FFN_NORM,
    WG_TENSOR_FFN_GATE,
    WG_TENSOR_FFN_UP, /* with fused gate_up: gate rows, then up rows */
    WG_TENSOR_FFN_DOWN,
    WG_TENSOR_COUNT_
} wg_tensor_role;

typedef struct wg_arch {
    const char *name;                /* general.architecture */
    const char *prefix;              /* of the hyper-parameter keys: "<prefix>.attention.head_count" */
    const char *const *tensor_names; /* WG_TENSOR_COUNT_ names, by role */
    wg_presence qkv_bias;            /* attn_q/k/v.bias (with fused qkv: attn_qkv.bias) */
    wg_presence qk_norm;             /* attn_q_norm / attn_k_norm: RMS norm of each head of q and k before rope */
    wg_presence output;              /* output.weight; absent from a file: tied to token_embd */
    wg_presence fused_qkv;           /* attn_qkv instead of attn_q, attn_k, attn_v */
    wg_presence fused_gate_up;       /* ffn_up of 2 * n_ff rows (gate, then up) and no ffn_gate */
    bool rope_neox;                  /* rotate halves (x[i], x[i + dims/2]) instead of adjacent pairs */
    bool sliding_window;             /* honours <prefix>.attention.sliding_window (0: none) */
    bool rope_freqs;                 /* may carry rope_freqs (Llama 3 scaling) */
    bool longrope_factors;           /* may carry rope_factors_long/short, which are refused by name */
    /* Gemma-like scaling, none of the families here: embeddings times sqrt(n_embd), and
     * logits soft-capped. Kept so that the flags exist where a family needs them. */
    bool embd_scale, logit_softcap;
} wg_arch;

/* The entry for an architecture name of `len` bytes (not NUL-terminated); NULL if unknown. */
const wg_arch *wg_arch_find(const char *name, size_t len);
/* The family of a file; NULL with a one-line message that names the architecture and the
 * supported ones when it is missing or unknown. */
const wg_arch *wg_arch_of_file(const gguf_file *f, char *err, size_t err_size);
/* "llama, qwen2, qwen3, phi3" */
const char *wg_arch_supported_list(void);
/* Writes "<prefix>.<suffix>" to buf (false if it does not fit). */
bool wg_arch_key(const wg_arch *a, const char *suffix, char *buf, size_t size);
/* Writes a tensor's full name ("blk.3.attn_q.bias") to buf; layer is ignored for global
 * tensors; kind is "weight" or "bias". False if it does not fit. */
bool wg_arch_tensor_name(const wg_arch *a, wg_tensor_role role, int layer, const char *kind, char *buf, size_t size);

/* What one file holds of its family's optional features, read from layer 0 (the loader
 * holds every layer to it). */
typedef struct wg_arch_features {
    bool qkv_bias, qk_norm, tied_output, fused_qkv, fused_gate_up, longrope;
} wg_arch_features;

/* Resolves the features of f against a's table: false with a one-line message when the
 * file has a tensor the family never has, or lacks one it requires. */
bool wg_arch_features_resolve(const wg_arch *a, const gguf_file *f, wg_arch_features *out, char *err, size_t err_size);

#endif
