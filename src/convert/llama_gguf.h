/* Writes a Llama-family model (llama, qwen2, qwen3, phi3) as GGUF with the tensor
 * names and metadata keys of llama.cpp's convert_hf_to_gguf.py.
 * Shared by the llama2.c converter and the synthetic-model generator: they only
 * say where each tensor's f32 rows come from; this file lays out the tensors,
 * converts them to the requested type in parallel and streams them to disk one
 * tensor at a time (peak memory: one converted tensor plus per-thread scratch). */
#ifndef WGLLM_CONVERT_LLAMA_GGUF_H
#define WGLLM_CONVERT_LLAMA_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gguf/gguf.h"
#include "tokenizer/vocab.h"

/* general.architecture of the file; each implies its tensor set:
 *   LLAMA: separate q/k/v (q and k rows in adjacent-pair rope order), gate/up;
 *   QWEN2: as LLAMA plus q/k/v biases (attn_q.bias, ...);
 *   QWEN3: as LLAMA plus per-head q/k RMS norms (attn_q_norm.weight, attn_k_norm.weight);
 *   PHI3:  fused attn_qkv (q, k then v rows) and ffn_up (gate then up rows). */
typedef enum wg_llama_arch {
    WG_LLAMA_ARCH_LLAMA = 0,
    WG_LLAMA_ARCH_QWEN2,
    WG_LLAMA_ARCH_QWEN3,
    WG_LLAMA_ARCH_PHI3,
} wg_llama_arch;

/* "llama", "qwen2", ... (the key prefix too). */
const char *wg_llama_arch_name(int32_t arch);

/* What newer checkpoints add to llama2.c's shape; zero means llama2.c's default. */
typedef struct wg_llama_ext {
    int32_t arch;            /* WG_LLAMA_ARCH_* (0: llama) */
    int32_t rope_dims;       /* rotated values per head (partial rotary); 0: the whole head */
    int32_t swa_window;      /* sliding-window attention span; 0: none */
    int32_t head_dim;        /* 0: n_embd / n_head */
    float rope_freq_base;    /* 0: 10000 */
    float rms_eps;           /* 0: 1e-5 */
    int32_t rope_scaling;    /* WG_LLAMA_ROPE_SCALING_*; factor and original context below */
    float rope_scaling_factor;
    int32_t rope_scaling_orig_ctx;
    bool rope_freqs;         /* a rope_freqs.weight tensor of head_dim / 2 f32 factors (kind WG_LT_ROPE_FREQS) */
} wg_llama_ext;

/* Hyper-parameters of a Llama model (names after llama.cpp's hparams). */
typedef struct wg_llama_shape {
    int32_t n_embd;    /* model width (dim) */
    int32_t n_ff;      /* feed-forward hidden width */
    int32_t n_layer;
    int32_t n_head;    /* query heads */
    int32_t n_head_kv; /* key/value heads (grouped-query attention when < n_head) */
    int32_t n_vocab;
    int32_t n_ctx;     /* training context length */
    bool tied;         /* no output.weight: the classifier reuses token_embd */
    wg_llama_ext ext;  /* all zero for a llama2.c-style model */
} wg_llama_shape;

enum { WG_LLAMA_ROPE_SCALING_NONE = 0, WG_LLAMA_ROPE_SCALING_LINEAR, WG_LLAMA_ROPE_SCALING_LLAMA3 };

/* Head size of a shape (head_dim, or n_embd / n_head when 0). */
int32_t wg_llama_head_dim(const wg_llama_shape *s);

/* Largest value accepted for any dimension; keeps every size product far from overflow. */
#define WG_LLAMA_MAX_DIM (1 << 20)

typedef enum wg_llama_tensor_kind {
    WG_LT_TOKEN_EMBD,
    WG_LT_ATTN_NORM,
    WG_LT_ATTN_Q,
    WG_LT_ATTN_K,
    WG_LT_ATTN_V,
    WG_LT_ATTN_OUTPUT,
    WG_LT_FFN_NORM,
    WG_LT_FFN_GATE,
    WG_LT_FFN_DOWN,
    WG_LT_FFN_UP,
    WG_LT_OUTPUT_NORM,
    WG_LT_OUTPUT,
    WG_LT_ROPE_FREQS, /* per-pair rope frequency divisors (Llama 3 scaling), after everything else */
    WG_LT_ATTN_Q_BIAS, /* qwen2 */
    WG_LT_ATTN_K_BIAS,
    WG_LT_ATTN_V_BIAS,
    WG_LT_ATTN_Q_NORM, /* qwen3: head_dim weights shared by every head */
    WG_LT_ATTN_K_NORM,
    WG_LT_ATTN_QKV,    /* phi3: q, k and v rows in one matrix */
    WG_LT_KIND_COUNT
} wg_llama_tensor_kind;

/* One tensor of the file. A matrix has n_rows rows of n_cols contiguous values
 * (GGUF ne = {n_cols, n_rows}); a norm weight is one row (ne = {n_cols}). */
typedef struct wg_llama_tensor_desc {
    int index;   /* position in the file's tensor list, 0-based */
    wg_llama_tensor_kind kind;
    int layer;   /* block number, -1 outside the blocks */
    int64_t n_cols;
    int64_t n_rows;
    bool is_norm; /* 1-D (a norm weight or a bias), always stored as f32 */
    char name[48];
} wg_llama_tensor_desc;

/* Fills rows [row0, row0 + n_rows) of tensor t with f32 values, row-major.
 * Called from several threads at once with disjoint row ranges. */
typedef void (*wg_llama_fill_fn)(void *ctx, const wg_llama_tensor_desc *t, int64_t row0, int64_t n_rows,
                                 float *dst);

typedef struct wg_llama_write_opts {
    const char *name;  /* general.name; NULL: not written */
    uint32_t type;     /* target type of the 2-D weights: F32, F16, Q8_0 or Q4_0 */
    int n_threads;     /* <= 0: number of online CPUs */
    FILE *log;         /* notes and progress lines; NULL: quiet */
    bool progress;     /* one line per tensor on log, for models of more than 100M parameters */
    const char *log_prefix; /* e.g. "wgllm synth" */
    /* Tokenizer keys when wg_llama_write_gguf gets no wg_vocab (e.g. a BPE tokenizer.json). */
    bool (*vocab_kv)(void *ctx, gguf_writer *w, char *err, size_t err_size);
    void *vocab_ctx;
    /* The keys llama.cpp's convert_hf_to_gguf.py adds to a bare Llama file: general.type,
       general.size_label, general.quantization_version, attention.key_length/value_length
       always, and tokenizer.ggml.pre "default" for a SentencePiece vocabulary. */
    bool hf_metadata;
} wg_llama_write_opts;

/* Checks the shape is a valid Llama: everything positive and <= WG_LLAMA_MAX_DIM,
 * n_embd divisible by n_head, even head size, n_head divisible by n_head_kv, a known
 * arch, rope_dims even and at most the head size. */
bool wg_llama_shape_check(const wg_llama_shape *s, char *err, size_t err_size);

/* Number of tensors in the file and the description of the one at index. */
int wg_llama_tensor_count(const wg_llama_shape *s);
bool wg_llama_tensor_at(const wg_llama_shape *s, int index, wg_llama_tensor_desc *out);

/* llama.cpp's general.file_type (LLAMA_FTYPE_*) for a weight type; -1 if we cannot write it. */
int wg_llama_file_type(uint32_t type);

/* llama.cpp's general.size_label of a parameter count ("1.1B", "94K"). */
void wg_llama_size_label(uint64_t n_params, char *buf, size_t size);

/* Sets the tokenizer.ggml.* keys describing v (model "llama"). */
bool wg_llama_set_vocab_kv(gguf_writer *w, const wg_vocab *v);

/* Writes the whole model to path (atomically: on failure no file is left).
 * v->n must equal s->n_vocab; v may be NULL when opts->vocab_kv writes the tokenizer. */
bool wg_llama_write_gguf(const char *path, const wg_llama_shape *s, const wg_vocab *v,
                         const wg_llama_write_opts *opts, wg_llama_fill_fn fill, void *fill_ctx, char *err,
                         size_t err_size);

/* Writes a vocabulary-only GGUF: general.architecture "llama" plus tokenizer.* keys. */
bool wg_llama_write_vocab_gguf(const char *path, const wg_vocab *v, char *err, size_t err_size);

/* Number of online CPUs (at least 1). */
int wg_llama_default_threads(void);

#endif
