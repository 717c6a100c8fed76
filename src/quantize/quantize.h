/* `wgllm quantize`: rewrites a GGUF model with its weights in another type,
 * choosing per-tensor types as llama.cpp's llama-quantize does. */
#ifndef WGLLM_QUANTIZE_H
#define WGLLM_QUANTIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A quantization target: a name, llama.cpp's general.file_type (LLAMA_FTYPE_*)
 * and the type most weights get. */
typedef struct wg_ftype {
    const char *name;
    int ftype;
    uint32_t base_type;
} wg_ftype;

/* Looks up a target by name (case-insensitive): f32, f16, bf16, q4_0, q4_1,
 * q5_0, q5_1, q8_0, q2_k, q3_k_s/m/l, q4_k_s/m, q5_k_s/m, q6_k; q3_k, q4_k and
 * q5_k stand for the _s mixes. NULL if unknown. */
const wg_ftype *wg_ftype_find(const char *name);

/* Comma-separated list of the target names, for usage text. */
const char *wg_ftype_names(void);

/* Facts of the model the per-tensor choice depends on. */
typedef struct wg_qplan {
    const wg_ftype *ft;
    bool pure;          /* every quantizable weight gets base_type (then shape fallbacks) */
    bool has_imatrix;
    bool has_output;    /* output.weight exists; else token_embd is the output too */
    int n_layer;
    int n_gqa;          /* n_head / n_head_kv */
    int n_attn_v;       /* number of attn_v tensors */
    bool is_70b;        /* llama.cpp's LLM_TYPE_70B for Llama (80 layers) */
} wg_qplan;

/* Whether llama-quantize would quantize this tensor at all (2-D+, name ends
 * in "weight", not a norm, ...). */
bool wg_qplan_quantizable(const char *name, uint32_t n_dims);

/* The type a quantizable tensor gets (llama_tensor_get_type for the dense Llama
 * architecture), including llama.cpp's fallbacks for rows that are not a
 * multiple of the block size. `fell_back` (may be NULL) is set when that happened. */
uint32_t wg_qplan_tensor_type(const wg_qplan *p, const char *name, int64_t ne0, bool *fell_back);

/* Importance matrix: a GGUF with NAME.in_sum2 (f32[ne0]) and NAME.counts (f32[1])
 * per weight tensor NAME; importance = in_sum2 / counts. */
typedef struct wg_imatrix wg_imatrix;
wg_imatrix *wg_imatrix_open(const char *path, char *err, size_t err_size);
void wg_imatrix_free(wg_imatrix *m);
/* Importance of the ne0 columns of weight `name` into out[0..ne0): 1 if found,
 * 0 if the file has no entry for it, -1 (with err) if its length differs. */
int wg_imatrix_get(const wg_imatrix *m, const char *name, int64_t ne0, float *out, char *err, size_t err_size);
int64_t wg_imatrix_count(const wg_imatrix *m);

typedef struct wg_quantize_opts {
    int n_threads;            /* <= 0: all cores */
    const char *imatrix_path; /* NULL: none */
    bool pure;
    FILE *progress;           /* one line per tensor; NULL for none */
} wg_quantize_opts;

/* Reads `in`, writes `out` (atomically: a temporary file renamed at the end).
 * False with a one-line message on any failure. */
bool wg_quantize_file(const char *in, const char *out, const wg_ftype *ft, const wg_quantize_opts *o, char *err,
                      size_t err_size);

#endif
