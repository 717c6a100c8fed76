/* The WebGPU backend's `layer` op: a layer step (backend/layer.h) with this backend's
 * fused kernels where the step and the layer allow them, else its primitive ops in the
 * order of wg_layer_compose. Per layer, a decode step of one sequence with Q4_0, Q8_0, Q4_K, Q5_K
 * or Q6_K weights (Q4_K_M and Q5_K_M included) takes seven
 * dispatches: rms_norm (+ int8 x), q/k/v + rope + cache store, attention (+ int8 out),
 * wo (+= x), rms_norm (+ int8 x), gate/up + SwiGLU (+ int8 hidden), down (+= x)
 * (tests/unit/test_webgpu_layer_dispatches.c). */
#include "backend/layer.h"
#include "backend/webgpu/wgpu_internal.h"

/* A step waited for right after (not one queued behind a running step) is submitted every
 * few layers, so the device starts while the rest is recorded. Queued steps gain nothing
 * and lose the gaps between command buffers (on an H200, ~2% of a 7B decode step). */
#define FLUSH_EVERY 4
/* Rows of a step of several sequences that rope_rows and decode_attention take at once. */
#define ROWS_AT_ONCE 64

/* q, k and v of the step's rows, with their biases and q/k norms (k and v unstored,
 * unrotated); false when qkv_rope_store took the one row of one sequence instead (rotated
 * q, k and v in the caches). */
static bool qkv(wg_backend *b, const wg_layer_desc *d, const wg_layer_step *s, const wg_layer_acts *a) {
    const int n = s->n;
    const bool plain = !d->bq && !d->bk && !d->bv && !d->q_norm && !d->k_norm && d->rope.dims > 0;
    if (plain && s->n_seqs == 1 && n == 1 &&
        wgb_op_qkv_rope_store(b, d->wq, d->wk, d->wv, a->xb, d->n_head, d->n_head_kv, d->head_dim, &d->rope,
                              s->seqs[0].pos0, a->q, s->seqs[0].k_cache, s->seqs[0].v_cache))
        return false;
    if (!wgb_op_matmul_qkv(b, d->wq, d->wk, d->wv, a->xb, n, a->q, a->k, a->v)) {
        wgb_op_matmul(b, d->wq, a->xb, n, a->q); // (n_head * head_dim, n)
        wgb_op_matmul(b, d->wk, a->xb, n, a->k); // (n_head_kv * head_dim, n)
        wgb_op_matmul(b, d->wv, a->xb, n, a->v);
    }
    if (d->bq) wgb_op_add(b, a->q, d->bq, n);
    if (d->bk) wgb_op_add(b, a->k, d->bk, n);
    if (d->bv) wgb_op_add(b, a->v, d->bv, n);
    if (d->q_norm) wgb_op_rms_norm(b, a->q, d->q_norm, d->norm_eps, n, a->q);
    if (d->k_norm) wgb_op_rms_norm(b, a->k, d->k_norm, d->norm_eps, n, a->k);
    return true;
}

/* Rotation, the cache stores and attention of the step's rows into a->att; `stored`: q, k
 * and v were rotated and stored by qkv_rope_store. */
static void attend(wg_backend *b, const wg_layer_desc *d, const wg_layer_step *s, const wg_layer_acts *a,
                   bool stored) {
    const int n = s->n;
    const wg_rope *rope = d->rope.dims > 0 ? &d->rope : NULL;
    bool q_roped = stored || !rope, k_roped = q_roped;
    if (!stored && s->n_seqs > 1 && n <= ROWS_AT_ONCE) {
        // several sequences: rotation, the stores and attention of all rows at once
        wg_tensor *k_caches[ROWS_AT_ONCE], *v_caches[ROWS_AT_ONCE];
        for (int i = 0; i < s->n_seqs; i++)
            for (int r = 0; r < s->seqs[i].n; r++) {
                k_caches[s->seqs[i].row0 + r] = s->seqs[i].k_cache;
                v_caches[s->seqs[i].row0 + r] = s->seqs[i].v_cache;
            }
        if (wgb_op_decode_attention(b, a->q, a->k, a->v, k_caches, v_caches, s->pos, n, d->n_head, d->n_head_kv,
                                    d->head_dim, rope, d->swa_window, a->att))
            return;
        q_roped = q_roped || wgb_op_rope_rows(b, a->q, n, d->n_head, d->head_dim, rope, s->pos);
        k_roped = k_roped || wgb_op_rope_rows(b, a->k, n, d->n_head_kv, d->head_dim, rope, s->pos);
    }
    for (int i = 0; i < s->n_seqs; i++) {
        const wg_layer_seq *q = &s->seqs[i];
        if (!q_roped) wgb_op_rope(b, a->q, q->n, d->n_head, d->head_dim, rope, q->pos0, q->row0);
        if (!k_roped) wgb_op_rope(b, a->k, q->n, d->n_head_kv, d->head_dim, rope, q->pos0, q->row0);
        if (!stored) wgb_op_kv_store(b, q->k_cache, q->v_cache, a->k, a->v, q->pos0, q->n, q->row0);
        wgb_op_attention(b, a->q, q->k_cache, q->v_cache, q->pos0, q->n, d->n_head, d->n_head_kv, d->head_dim,
                         d->swa_window, a->att, q->row0); // (n_head * head_dim, n)
    }
}

void wgb_op_layer(wg_backend *b, const wg_layer_desc *d, const wg_layer_step *s, const wg_layer_acts *a) {
    if (s->observer) { /* each product's input must be an activation the observer reads */
        wg_layer_compose(b, d, s, a);
        return;
    }
    const int n = s->n;
    if (!s->queued && d->index > 0 && d->index % FLUSH_EVERY == 0) wgb_flush(wgb_ctx_of(b));

    // attention block
    wgb_op_rms_norm(b, a->x, d->attn_norm, d->norm_eps, n, a->xb); // (n_embd, n), + int8 copy
    attend(b, d, s, a, !qkv(b, d, s, a));
    wgb_op_matmul_add(b, d->wo, a->att, n, a->x); // x += wo att

    // feed-forward block (SwiGLU)
    wgb_op_rms_norm(b, a->x, d->ffn_norm, d->norm_eps, n, a->xb);
    wgb_op_matmul_swiglu(b, d->w_gate, d->w_up, a->xb, n, a->hidden); // (n_ff, n)
    wgb_op_matmul_add(b, d->w_down, a->hidden, n, a->x);               // x += w_down hidden
}
