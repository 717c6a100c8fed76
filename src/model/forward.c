/* The Llama forward pass over a batch of tokens, written against the backend
 * seam. Shapes are (row length, rows); one row per token of the batch. */
#include "model/model.h"

bool wg_forward(wgllm_context *c, const int32_t *ids, int n, bool all_logits, bool copy_out, int out_row0) {
    const wgllm_model *m = c->model;
    const wg_hparams *hp = &m->hp;
    wg_backend *b = m->backend;
    const wg_backend_ops *ops = b->ops;
    const int pos0 = c->n_past;

    ops->get_rows(b, m->tok_embd, ids, n, c->x); // x: (n_embd, n)

    for (int l = 0; l < hp->n_layer; l++) {
        const wg_layer *L = &m->layers[l];

        // attention block
        ops->rms_norm(b, c->x, L->attn_norm, hp->norm_eps, n, c->xb);
        ops->matmul(b, L->wq, c->xb, n, c->q); // (n_head * head_dim, n)
        ops->matmul(b, L->wk, c->xb, n, c->k); // (n_head_kv * head_dim, n)
        ops->matmul(b, L->wv, c->xb, n, c->v);
        ops->rope(b, c->q, n, hp->n_head, hp->head_dim, hp->rope_dims, pos0, hp->rope_base, hp->rope_scale,
                  m->rope_factors);
        ops->rope(b, c->k, n, hp->n_head_kv, hp->head_dim, hp->rope_dims, pos0, hp->rope_base, hp->rope_scale,
                  m->rope_factors);
        ops->kv_store(b, c->k_cache[l], c->v_cache[l], c->k, c->v, pos0, n);
        ops->attention(b, c->q, c->k_cache[l], c->v_cache[l], pos0, n, hp->n_head, hp->n_head_kv, hp->head_dim,
                       c->att); // (n_head * head_dim, n)
        ops->matmul(b, L->wo, c->att, n, c->proj); // (n_embd, n)
        ops->add(b, c->x, c->proj, n);

        // feed-forward block (SwiGLU)
        ops->rms_norm(b, c->x, L->ffn_norm, hp->norm_eps, n, c->xb);
        ops->matmul(b, L->w_gate, c->xb, n, c->gate); // (n_ff, n)
        ops->matmul(b, L->w_up, c->xb, n, c->up);
        ops->swiglu(b, c->gate, c->up, n, c->hidden);
        ops->matmul(b, L->w_down, c->hidden, n, c->proj); // (n_embd, n)
        ops->add(b, c->x, c->proj, n);
    }

    // output head: every row, or just the last one
    const wg_tensor *h = c->x;
    int rows = n;
    if (!all_logits) {
        ops->copy_rows(b, c->x, n - 1, 1, c->last, 0);
        h = c->last;
        rows = 1;
    }
    ops->rms_norm(b, h, m->out_norm, hp->norm_eps, rows, c->xb);
    ops->matmul(b, m->output, c->xb, rows, c->logits); // (n_vocab, rows)
    if (copy_out) ops->read_rows(b, c->logits, 0, rows, c->host_logits + (size_t)out_row0 * (size_t)hp->n_vocab);
    return ops->synchronize(b);
}
