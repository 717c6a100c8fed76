/* One transformer layer as the model states it, for backends to execute.
 *
 * The model describes a layer once (wg_layer_desc, made at load) and each forward step
 * once (wg_layer_step); a backend runs the layer with its `layer` op, fusing what it can
 * behind it, or wg_layer_compose runs it with the primitive ops of backend.h. Dataflow
 * of one step over n rows (one row per token), shapes (row length, rows):
 *
 *   xb  = rms_norm(x, attn_norm)                               (n_embd, n)
 *   q   = wq xb + bq, k = wk xb + bk, v = wv xb + bv           (n_head * head_dim, n), (n_head_kv * head_dim, n)
 *   q   = rms_norm per head (q_norm), k likewise (k_norm)      where given
 *   q,k = rope at each row's position
 *   k, v stored at their positions in the sequence's caches
 *   att = attention of q over the cache (window: the last swa_window positions)
 *   x  += wo att                                               (n_embd, n)
 *   xb  = rms_norm(x, ffn_norm)
 *   x  += w_down (silu(w_gate xb) * (w_up xb))                 (n_ff, n) inside
 */
#ifndef WGLLM_BACKEND_LAYER_H
#define WGLLM_BACKEND_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* One layer: shapes, constants and weights (owned by the model; valid while it lives). */
typedef struct wg_layer_desc {
    int index; /* the layer's number in the model */
    int n_embd, n_head, n_head_kv, head_dim, n_ff;
    float norm_eps;
    wg_rope rope;
    int swa_window; /* 0: causal over the whole cache; > 0: the last swa_window positions */
    const wg_tensor *attn_norm, *wq, *wk, *wv, *wo;
    const wg_tensor *bq, *bk, *bv;    /* NULL: no bias; f32, one row */
    const wg_tensor *q_norm, *k_norm; /* NULL: none; f32 of head_dim, per-head RMS norm before rope */
    const wg_tensor *ffn_norm, *w_gate, *w_up, *w_down;
} wg_layer_desc;

/* A sequence's rows of a step: rows row0 .. row0 + n - 1, at positions pos0 .. pos0 + n - 1,
 * stored in and attending over this layer's caches of the sequence. */
typedef struct wg_layer_seq {
    int row0, n, pos0;
    wg_tensor *k_cache, *v_cache;
} wg_layer_seq;

/* Which product an observer is shown the input of. */
typedef enum wg_layer_weight {
    WG_LAYER_WQ,
    WG_LAYER_WK,
    WG_LAYER_WV,
    WG_LAYER_WO,
    WG_LAYER_W_GATE,
    WG_LAYER_W_UP,
    WG_LAYER_W_DOWN,
} wg_layer_weight;

/* Shown the input rows x (rows 0 .. n - 1) of the products with the weights ws[0 .. n_ws)
 * of layer d before they run (imatrix collection). */
typedef struct wg_layer_observer {
    void (*matmul_input)(void *user, const wg_layer_desc *d, const wg_layer_weight *ws, int n_ws,
                         const wg_tensor *x, int n);
    void *user;
} wg_layer_observer;

/* One forward step through a layer. */
typedef struct wg_layer_step {
    int n;                       /* rows */
    int n_seqs;
    const wg_layer_seq *seqs;    /* n_seqs, in row order, covering rows 0 .. n - 1 */
    const int32_t *pos;          /* n: each row's position */
    bool queued;                 /* queued behind a running step: its results are not waited for next */
    const wg_layer_observer *observer; /* NULL: none; a step with one runs through wg_layer_compose */
} wg_layer_step;

/* Activations of a step of up to `rows` rows, the same for every backend and layer. x is
 * the residual stream, read and updated; the others are scratch, overwritten. wg_layer_compose
 * needs them all; a backend whose `layer` says layer_without_up gets up == NULL. */
typedef struct wg_layer_acts {
    int rows;
    wg_tensor *x, *xb, *proj;   /* (n_embd, rows) */
    wg_tensor *q, *att;         /* (n_head * head_dim, rows) */
    wg_tensor *k, *v;           /* (n_head_kv * head_dim, rows) */
    wg_tensor *hidden, *up;     /* (n_ff, rows) */
} wg_layer_acts;

/* Runs the layer with the primitive ops only (the default for a backend without `layer`);
 * a->up must be there (wg_layer_acts_for_compose). */
void wg_layer_compose(wg_backend *b, const wg_layer_desc *d, const wg_layer_step *s, const wg_layer_acts *a);

/* Creates a's buffers for `rows` rows of layers shaped as d (all layers of a model are), all
 * but `up` where the backend's layer op goes without it. */
bool wg_layer_acts_create(wg_backend *b, const wg_layer_desc *d, int rows, wg_layer_acts *a, char *err,
                          size_t err_size);
/* Makes a->up if it is missing, for wg_layer_compose. */
bool wg_layer_acts_for_compose(wg_backend *b, wg_layer_acts *a, char *err, size_t err_size);
void wg_layer_acts_free(wg_backend *b, wg_layer_acts *a);
/* Bytes of f32 activations per row, all of them (as for wg_layer_compose). */
uint64_t wg_layer_acts_row_bytes(const wg_layer_desc *d);

#endif
