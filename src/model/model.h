/* Internal view of a loaded model and of a context. Model code talks to the
 * compute backend only through backend/backend.h. */
#ifndef WGLLM_MODEL_H
#define WGLLM_MODEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "wgllm.h"

typedef struct wg_hparams {
    int n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff;
    int head_dim, rope_dims;
    float rope_base, rope_scale; /* rope_scale multiplies positions (linear scaling) */
    bool rope_llama3;            /* Llama 3 scaling: per-pair divisors in rope_freqs.weight */
    float norm_eps;
} wg_hparams;

typedef struct wg_layer {
    wg_tensor *attn_norm, *wq, *wk, *wv, *wo;
    wg_tensor *ffn_norm, *w_gate, *w_up, *w_down;
} wg_layer;

struct wgllm_model {
    gguf_file *file;
    wg_tokenizer *tok;
    wg_backend *backend;
    pthread_mutex_t eval_lock; /* the backend runs one forward pass at a time */
    wg_hparams hp;
    wg_layer *layers;
    wg_tensor *tok_embd, *out_norm, *output; /* output == tok_embd when tied */
    bool tied;
    float *norm_data; /* f32 copies of the norm vectors */
    float *rope_factors; /* rope_dims / 2 frequency divisors from rope_freqs.weight; NULL: none */
    char name[128];
    char backend_desc[320]; /* which backend and why */
    uint64_t weight_bytes;
};

struct wgllm_context {
    const wgllm_model *model;
    int n_ctx, n_batch, n_past;
    wg_tensor **k_cache, **v_cache; /* per layer: [kv_dim, n_ctx] */
    /* activations for up to n_batch tokens */
    wg_tensor *x, *xb, *q, *k, *v, *att, *proj, *gate, *up, *hidden, *last, *logits;
    float *host_logits; /* rows of n_vocab, copied from c->logits on first use */
    int n_logit_rows, cap_logit_rows;
    bool logits_on_host; /* host_logits holds the last evaluation's rows */
    int logits_row0;     /* host row of device logits row 0 for the last chunk */
    char error[256];
};

/* Loads hyper-parameters from llama.* keys. */
bool wg_hparams_load(const gguf_file *f, wg_hparams *hp, char *err, size_t err_size);

/* Runs tokens ids[0..n) (n <= c->n_batch) at positions c->n_past.. and appends them
 * to the cache. Logits of every token when all_logits, else of the last one, are
 * left in the device tensor c->logits; with copy_out they are also copied to
 * c->host_logits starting at row `out_row0`. */
bool wg_forward(wgllm_context *c, const int32_t *ids, int n, bool all_logits, bool copy_out, int out_row0);

/* wgllm_eval_batch after its arguments were checked. */
wgllm_status wg_eval_batch(wgllm_context *const *ctxs, const wgllm_token *const *tokens, const int *n_tokens,
                           int n_seqs);

#endif
