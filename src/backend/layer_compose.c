/* A layer step with the primitive ops of backend.h only: what every backend can run, and
 * the path a step with a matmul observer takes (each product's input is then an
 * activation the observer can read). */
#include <stdio.h>

#include "backend/layer.h"

static void observe(const wg_layer_step *s, const wg_layer_desc *d, const wg_layer_weight *ws, int n_ws,
                    const wg_tensor *x) {
    if (s->observer) s->observer->matmul_input(s->observer->user, d, ws, n_ws, x, s->n);
}

void wg_layer_compose(wg_backend *b, const wg_layer_desc *d, const wg_layer_step *s, const wg_layer_acts *a) {
    const wg_backend_ops *ops = b->ops;
    const int n = s->n;
    static const wg_layer_weight k_qkv[] = {WG_LAYER_WQ, WG_LAYER_WK, WG_LAYER_WV}, k_o[] = {WG_LAYER_WO},
                                 k_ffn[] = {WG_LAYER_W_GATE, WG_LAYER_W_UP}, k_down[] = {WG_LAYER_W_DOWN};

    // attention block
    ops->rms_norm(b, a->x, d->attn_norm, d->norm_eps, n, a->xb); // xb: (n_embd, n)
    observe(s, d, k_qkv, 3, a->xb);
    ops->matmul(b, d->wq, a->xb, n, a->q); // (n_head * head_dim, n)
    ops->matmul(b, d->wk, a->xb, n, a->k); // (n_head_kv * head_dim, n)
    ops->matmul(b, d->wv, a->xb, n, a->v);
    if (d->bq) ops->add(b, a->q, d->bq, n);
    if (d->bk) ops->add(b, a->k, d->bk, n);
    if (d->bv) ops->add(b, a->v, d->bv, n);
    if (d->q_norm) ops->rms_norm(b, a->q, d->q_norm, d->norm_eps, n, a->q); // each head on its own
    if (d->k_norm) ops->rms_norm(b, a->k, d->k_norm, d->norm_eps, n, a->k);
    for (int i = 0; i < s->n_seqs; i++) {
        const wg_layer_seq *q = &s->seqs[i];
        if (d->rope.dims > 0) {
            ops->rope(b, a->q, q->n, d->n_head, d->head_dim, &d->rope, q->pos0, q->row0);
            ops->rope(b, a->k, q->n, d->n_head_kv, d->head_dim, &d->rope, q->pos0, q->row0);
        }
        ops->kv_store(b, q->k_cache, q->v_cache, a->k, a->v, q->pos0, q->n, q->row0);
        ops->attention(b, a->q, q->k_cache, q->v_cache, q->pos0, q->n, d->n_head, d->n_head_kv, d->head_dim,
                       d->swa_window, a->att, q->row0); // (n_head * head_dim, n)
    }
    observe(s, d, k_o, 1, a->att);
    ops->matmul(b, d->wo, a->att, n, a->proj); // (n_embd, n)
    ops->add(b, a->x, a->proj, n);

    // feed-forward block (SwiGLU)
    ops->rms_norm(b, a->x, d->ffn_norm, d->norm_eps, n, a->xb);
    observe(s, d, k_ffn, 2, a->xb);
    ops->matmul(b, d->w_gate, a->xb, n, a->hidden); // (n_ff, n)
    ops->matmul(b, d->w_up, a->xb, n, a->up);
    ops->swiglu(b, a->hidden, a->up, n, a->hidden);
    observe(s, d, k_down, 1, a->hidden);
    ops->matmul(b, d->w_down, a->hidden, n, a->proj); // (n_embd, n)
    ops->add(b, a->x, a->proj, n);
}

uint64_t wg_layer_acts_row_bytes(const wg_layer_desc *d) {
    const uint64_t q_dim = (uint64_t)d->n_head * (uint64_t)d->head_dim;
    const uint64_t kv_dim = (uint64_t)d->n_head_kv * (uint64_t)d->head_dim;
    return sizeof(float) * (3 * (uint64_t)d->n_embd + 2 * q_dim + 2 * kv_dim + 2 * (uint64_t)d->n_ff);
}

bool wg_layer_acts_create(wg_backend *b, const wg_layer_desc *d, int rows, wg_layer_acts *a, char *err,
                          size_t err_size) {
    const int64_t q_dim = (int64_t)d->n_head * d->head_dim, kv_dim = (int64_t)d->n_head_kv * d->head_dim;
    *a = (wg_layer_acts){.rows = rows};
    struct {
        wg_tensor **slot;
        int64_t ne0;
    } bufs[] = {
        {&a->x, d->n_embd}, {&a->xb, d->n_embd}, {&a->proj, d->n_embd}, {&a->q, q_dim},        {&a->att, q_dim},
        {&a->k, kv_dim},    {&a->v, kv_dim},     {&a->hidden, d->n_ff}, {&a->up, d->n_ff},
    };
    const bool no_up = b->ops->layer && b->ops->layer_without_up;
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        if (bufs[i].slot == &a->up && no_up) continue;
        if (!(*bufs[i].slot = b->ops->buffer_create(b, bufs[i].ne0, rows, err, err_size))) {
            wg_layer_acts_free(b, a);
            return false;
        }
    }
    return true;
}

bool wg_layer_acts_for_compose(wg_backend *b, wg_layer_acts *a, char *err, size_t err_size) {
    if (!a->up) a->up = b->ops->buffer_create(b, a->hidden->ne0, a->rows, err, err_size);
    return a->up != NULL;
}

void wg_layer_acts_free(wg_backend *b, wg_layer_acts *a) {
    wg_tensor *bufs[] = {a->x, a->xb, a->proj, a->q, a->att, a->k, a->v, a->hidden, a->up};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) b->ops->tensor_free(b, bufs[i]);
    *a = (wg_layer_acts){0};
}
