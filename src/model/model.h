/* Internal view of a loaded model and of a context. Model code talks to the
 * compute backend only through backend/backend.h. */
#ifndef WGLLM_MODEL_H
#define WGLLM_MODEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "backend/layer.h"
#include "gguf/gguf.h"
#include "model/arch.h"
#include "tokenizer/tokenizer.h"
#include "wgllm.h"

typedef struct wg_hparams {
    const struct wg_arch *arch; /* the family's table entry (model/arch.h) */
    int n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff;
    int head_dim, rope_dims;
    float rope_base, rope_scale; /* rope_scale multiplies positions (linear scaling) */
    bool rope_llama3;            /* Llama 3 scaling: per-pair divisors in rope_freqs.weight */
    float norm_eps;
    bool rope_neox; /* rotate halves (x[i], x[i + rope_dims/2]) instead of adjacent pairs */
    int swa_window; /* sliding-window attention over this many positions; 0: none */
} wg_hparams;

typedef struct wg_layer {
    wg_tensor *attn_norm, *wq, *wk, *wv, *wo;
    wg_tensor *ffn_norm, *w_gate, *w_up, *w_down;
    wg_tensor *bq, *bk, *bv;     /* f32 one-row biases of wq, wk, wv; NULL: no bias */
    wg_tensor *q_norm, *k_norm;  /* f32 RMS norm weights of head_dim, per head of q and k; NULL: none */
} wg_layer;

/* Buffers for up to `rows` tokens of one forward step: the layers' activations, the last
 * rows and the logits. Logits take a row of n_vocab each (large: 0.5 MiB for Llama 3), so
 * `logits` holds only as many rows as were reserved (wg_acts_reserve_logits; one at
 * creation). */
typedef struct wg_acts {
    int rows;
    wg_layer_acts l;
    wg_tensor *last, *logits;
    int32_t *pos;       /* rows: each row's position in a step */
    wg_layer_seq *seqs; /* rows: a step's sequences */
} wg_acts;

struct wgllm_model {
    gguf_file *file;
    wg_tokenizer *tok;
    wg_backend *backend;
    pthread_mutex_t eval_lock; /* the backend runs one forward pass at a time */
    wg_acts batch_acts;        /* for wgllm_eval_batch; grown on demand under eval_lock */
    /* The argmax of the last wgllm_decode_greedy_batch step, left in a device id slot for
     * the next call over the same contexts (decode_greedy.c); under eval_lock. Any other
     * forward pass makes it stale. */
    struct wg_greedy_ahead {
        bool valid;   /* the slot holds the ids of these contexts' next tokens */
        bool reading; /* a read of the slot is under way (drained before the slot is reused) */
        int slot, n;
        const wgllm_context *ctx[WG_SLOT_IDS];
        int n_past[WG_SLOT_IDS];
    } greedy_ahead;
    wg_hparams hp;
    wg_layer *layers;
    wg_layer_desc *layer_descs; /* n_layer: the layers as the backends run them */
    wg_tensor *tok_embd, *out_norm, *output; /* output == tok_embd when tied */
    bool tied;
    wg_arch_features features; /* what the file holds of its family's optional features */
    float *norm_data; /* f32 copies of the norm vectors, biases and q/k norms */
    float *rope_factors; /* rope_dims / 2 frequency divisors from rope_freqs.weight; NULL: none */
    char name[128];
    char backend_desc[320]; /* which backend and why */
    uint64_t weight_bytes;
};

struct wgllm_context {
    const wgllm_model *model;
    int n_ctx, n_batch, n_past;
    wg_tensor **k_cache, **v_cache; /* per layer: [kv_dim, n_ctx] */
    wg_acts acts; /* for up to n_batch tokens; acts.logits row 0 holds the last token's logits */
    float *host_logits; /* rows of n_vocab, copied from c->logits on first use */
    int n_logit_rows, cap_logit_rows;
    bool logits_on_host; /* host_logits holds the last evaluation's rows */
    int logits_row0;     /* host row of device logits row 0 for the last chunk */
    wgllm_matmul_observer observer; /* NULL: none (see wgllm_context_set_matmul_observer) */
    void *observer_user;
    float *observer_rows; /* input rows read back for the observer */
    int64_t observer_cap; /* floats in observer_rows */
    char error[256];
};

/* Loads hyper-parameters from the keys of the file's architecture (model/arch.h). */
bool wg_hparams_load(const gguf_file *f, wg_hparams *hp, char *err, size_t err_size);

/* Describes every layer for the backend (m->layer_descs), once the weights are loaded. */
bool wg_layer_descs_build(wgllm_model *m, char *err, size_t err_size);

bool wg_acts_create(const wgllm_model *m, int rows, wg_acts *a, char *err, size_t err_size);
void wg_acts_free(const wgllm_model *m, wg_acts *a);
/* Makes a->logits hold at least `rows` rows (its old contents are lost when it grows). */
bool wg_acts_reserve_logits(const wgllm_model *m, wg_acts *a, int rows, char *err, size_t err_size);

/* One sequence's part of a forward step: n tokens at positions c->n_past.. */
typedef struct wg_seq {
    wgllm_context *c;
    const int32_t *ids;
    int n;
    int id_slot; /* >= 0 (the same in every wg_seq of the step): one token, whose id is id s of
                    that device slot for the step's sequence s (ids unused); see generate.c */
} wg_seq;

/* Runs a forward step over the sequences (sum of n <= a->rows) and appends their tokens
 * to their caches (n_past is left to the caller). Logits stay on the device in
 * a->logits: with all_logits (one sequence only) one row per token, otherwise one row per
 * sequence, its last token's; the caller reserves those rows. */
bool wg_forward(const wgllm_model *m, wg_acts *a, const wg_seq *seqs, int n_seqs, bool all_logits);

/* wgllm_eval_batch after its arguments were checked. */
/* Makes m->batch_acts hold a step of n_seqs sequences and a row of logits each; under
 * eval_lock. WGLLM_ERR_NO_MEMORY with the reason in err. */
wgllm_status wg_batch_acts_ready(wgllm_model *m, int n_seqs, char *err, size_t err_size);
wgllm_status wg_eval_batch(wgllm_context *const *ctxs, const wgllm_token *const *tokens, const int *n_tokens,
                           int n_seqs);

#endif
