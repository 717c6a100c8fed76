/* The Llama forward pass over a batch of tokens, written against the backend seam.
 * Shapes are (row length, rows); one row per token. The tokens of several sequences
 * share the matrix products (each weight is read once per step); rotary embedding, the
 * KV cache and attention are per sequence, on that sequence's rows. */
#include <stdio.h>
#include <stdlib.h>

#include "model/model.h"

bool wg_acts_create(const wgllm_model *m, int rows, wg_acts *a, char *err, size_t err_size) {
    const wg_hparams *hp = &m->hp;
    wg_backend *b = m->backend;
    const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim, q_dim = (int64_t)hp->n_head * hp->head_dim;
    const bool fused_ffn = b->ops->matmul_swiglu != NULL;
    *a = (wg_acts){.rows = rows};
    struct {
        wg_tensor **slot;
        int64_t ne0;
    } bufs[] = {
        {&a->x, hp->n_embd},      {&a->xb, hp->n_embd}, /* packed rows: the matmuls read n_embd per token */
        {&a->q, q_dim},           {&a->k, kv_dim},
        {&a->v, kv_dim},          {&a->att, q_dim},
        {&a->proj, hp->n_embd},   {&a->hidden, hp->n_ff},
        {&a->last, hp->n_embd},
        {fused_ffn ? NULL : &a->gate, hp->n_ff}, {fused_ffn ? NULL : &a->up, hp->n_ff},
    };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        if (!bufs[i].slot) continue;
        *bufs[i].slot = b->ops->buffer_create(b, bufs[i].ne0, rows, err, err_size);
        if (!*bufs[i].slot) {
            wg_acts_free(m, a);
            return false;
        }
    }
    if (!wg_acts_reserve_logits(m, a, 1, err, err_size)) {
        wg_acts_free(m, a);
        return false;
    }
    return true;
}

bool wg_acts_reserve_logits(const wgllm_model *m, wg_acts *a, int rows, char *err, size_t err_size) {
    if (a->logits && a->logits->ne1 >= rows) return true;
    /* grow by doubling (batches of 1, 2, 3, ... sequences), up to a step's rows */
    int want = a->logits && 2 * a->logits->ne1 > rows ? (int)(2 * a->logits->ne1) : rows;
    if (want > a->rows) want = rows > a->rows ? rows : a->rows;
    wg_backend *b = m->backend;
    /* an output buffer: a backend may split it (a row of a large vocabulary is big) */
    wg_tensor *t = (b->ops->output_create ? b->ops->output_create : b->ops->buffer_create)(b, m->hp.n_vocab, want,
                                                                                           err, err_size);
    if (!t) return false;
    if (a->logits) b->ops->tensor_free(b, a->logits);
    a->logits = t;
    return true;
}

void wg_acts_free(const wgllm_model *m, wg_acts *a) {
    wg_backend *b = m->backend;
    wg_tensor *bufs[] = {a->x, a->xb, a->q, a->k, a->v, a->att, a->proj, a->hidden, a->last, a->logits, a->gate, a->up};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) b->ops->tensor_free(b, bufs[i]);
    *a = (wg_acts){0};
}

/* Token ids of all sequences, back to back (seqs[0].ids itself for one sequence). */
static int32_t *gather_ids(const wg_seq *seqs, int n_seqs, int total) {
    if (n_seqs == 1) return (int32_t *)seqs[0].ids;
    int32_t *ids = calloc((size_t)total, sizeof *ids);
    if (!ids) return NULL;
    int r = 0;
    for (int s = 0; s < n_seqs; s++)
        for (int i = 0; i < seqs[s].n; i++) ids[r++] = seqs[s].ids[i];
    return ids;
}

/* Hands the input rows x of the products with the weights named blk.<layer>.<kinds[i]>.weight
 * (layer < 0: kinds are whole names) to the observers of the sequences the rows belong to:
 * sequence s owns its tokens' rows, or with last_rows only row s. */
static void observe(const wgllm_model *m, const wg_seq *seqs, int n_seqs, const wg_tensor *x, bool last_rows,
                    int layer, const char *const *kinds, int n_kinds) {
    wg_backend *b = m->backend;
    char name[96];
    for (int s = 0, row0 = 0; s < n_seqs; row0 += last_rows ? 1 : seqs[s].n, s++) {
        wgllm_context *c = seqs[s].c;
        if (!c->observer) continue;
        const int rows = last_rows ? 1 : seqs[s].n, step = (int)(c->observer_cap / x->ne0);
        for (int r = 0; r < rows; r += step) {
            const int k = rows - r < step ? rows - r : step;
            b->ops->read_rows(b, x, row0 + r, k, c->observer_rows);
            for (int i = 0; i < n_kinds; i++) {
                if (layer >= 0) snprintf(name, sizeof name, "blk.%d.%s.weight", layer, kinds[i]);
                c->observer(c->observer_user, layer >= 0 ? name : kinds[i], c->observer_rows, k, x->ne0);
            }
        }
    }
}

bool wg_forward(const wgllm_model *m, wg_acts *a, const wg_seq *seqs, int n_seqs, bool all_logits) {
    const wg_hparams *hp = &m->hp;
    wg_backend *b = m->backend;
    const wg_backend_ops *ops = b->ops;
    int n = 0;
    bool observed = false; /* some sequence's context has a matmul observer */
    for (int s = 0; s < n_seqs; s++) n += seqs[s].n, observed = observed || seqs[s].c->observer;
    static const char *const k_qkv[] = {"attn_q", "attn_k", "attn_v"}, *const k_o[] = {"attn_output"},
                             *const k_ffn[] = {"ffn_gate", "ffn_up"}, *const k_down[] = {"ffn_down"};
    if (n_seqs == 1 && seqs[0].id_slot >= 0) { // the id is on the device (generate.c)
        if (!ops->get_rows_from_slot(b, m->tok_embd, seqs[0].id_slot, a->x)) {
            int32_t id = ops->read_slot(b, seqs[0].id_slot);
            if (id < 0) return false;
            ops->get_rows(b, m->tok_embd, &id, 1, a->x);
        }
    } else {
        int32_t *ids = gather_ids(seqs, n_seqs, n);
        if (!ids) return false;
        ops->get_rows(b, m->tok_embd, ids, n, a->x); // x: (n_embd, n)
        if (n_seqs > 1) free(ids); /* else it is seqs[0].ids */
    }

    // positions of the rows of a small batch of sequences, for rope_rows and decode_attention
    int32_t pos_buf[64];
    const int32_t *pos = NULL;
    if (n_seqs > 1 && n <= (int)(sizeof pos_buf / sizeof pos_buf[0]) && (ops->rope_rows || ops->decode_attention)) {
        for (int s = 0, r = 0; s < n_seqs; s++)
            for (int i = 0; i < seqs[s].n; i++) pos_buf[r++] = seqs[s].c->n_past + i;
        pos = pos_buf;
    }

    // a step of several sequences with every row's position in pos: the caches of each row
    wg_tensor *k_caches[64], *v_caches[64];
    const bool rows_known = pos != NULL && n <= (int)(sizeof k_caches / sizeof k_caches[0]);

    // A step waited for right after (not one queued behind a running step): submit every few
    // layers, so the device starts while the rest is recorded. Queued steps gain nothing and
    // lose the gaps between command buffers (on an H200, ~2% of a 7B decode step).
    const bool queued = n_seqs == 1 && seqs[0].id_slot >= 0;
    const int flush_every = 4;
    const wg_rope rope = {.dims = hp->rope_dims, .neox = false, .base = hp->rope_base, .scale = hp->rope_scale,
                          .factors = m->rope_factors};
    const int window = 0;

    for (int l = 0; l < hp->n_layer; l++) {
        const wg_layer *L = &m->layers[l];
        if (!queued && ops->flush && l > 0 && l % flush_every == 0) ops->flush(b);

        // attention block
        ops->rms_norm(b, a->x, L->attn_norm, hp->norm_eps, n, a->xb);
        if (observed) observe(m, seqs, n_seqs, a->xb, false, l, k_qkv, 3);
        // one decoding sequence: q, k, v, rope and the cache store in one op where the backend has it
        const bool fused_qkv = n_seqs == 1 && n == 1 && ops->qkv_rope_store &&
                               ops->qkv_rope_store(b, L->wq, L->wk, L->wv, a->xb, hp->n_head, hp->n_head_kv,
                                                   hp->head_dim, &rope, seqs[0].c->n_past, a->q,
                                                   seqs[0].c->k_cache[l], seqs[0].c->v_cache[l]);
        bool q_roped = fused_qkv, k_roped = fused_qkv;
        if (!fused_qkv) {
            if (!ops->matmul_qkv || !ops->matmul_qkv(b, L->wq, L->wk, L->wv, a->xb, n, a->q, a->k, a->v)) {
                ops->matmul(b, L->wq, a->xb, n, a->q); // (n_head * head_dim, n)
                ops->matmul(b, L->wk, a->xb, n, a->k); // (n_head_kv * head_dim, n)
                ops->matmul(b, L->wv, a->xb, n, a->v);
            }
            // several sequences: rope, the KV stores and attention of all rows at once where
            // the backend can
            if (rows_known && ops->decode_attention) {
                for (int s = 0, r = 0; s < n_seqs; s++)
                    for (int i = 0; i < seqs[s].n; i++, r++) {
                        k_caches[r] = seqs[s].c->k_cache[l];
                        v_caches[r] = seqs[s].c->v_cache[l];
                    }
                if (ops->decode_attention(b, a->q, a->k, a->v, k_caches, v_caches, pos, n, hp->n_head,
                                          hp->n_head_kv, hp->head_dim, &rope, window, a->att))
                    goto attention_done;
            }
            q_roped = pos && ops->rope_rows &&
                      ops->rope_rows(b, a->q, n, hp->n_head, hp->head_dim, &rope, pos);
            k_roped = q_roped && ops->rope_rows(b, a->k, n, hp->n_head_kv, hp->head_dim, &rope, pos);
        }
        for (int s = 0, row0 = 0; s < n_seqs; row0 += seqs[s].n, s++) {
            wgllm_context *c = seqs[s].c;
            const int ns = seqs[s].n, pos0 = c->n_past;
            if (!q_roped)
                ops->rope(b, a->q, ns, hp->n_head, hp->head_dim, &rope, pos0, row0);
            if (!k_roped)
                ops->rope(b, a->k, ns, hp->n_head_kv, hp->head_dim, &rope, pos0, row0);
            if (!fused_qkv) ops->kv_store(b, c->k_cache[l], c->v_cache[l], a->k, a->v, pos0, ns, row0);
            ops->attention(b, a->q, c->k_cache[l], c->v_cache[l], pos0, ns, hp->n_head, hp->n_head_kv, hp->head_dim,
                           window, a->att, row0); // (n_head * head_dim, n)
        }
    attention_done:
        if (observed) observe(m, seqs, n_seqs, a->att, false, l, k_o, 1);
        if (ops->matmul_add) {
            ops->matmul_add(b, L->wo, a->att, n, a->x); // x += wo att
        } else {
            ops->matmul(b, L->wo, a->att, n, a->proj); // (n_embd, n)
            ops->add(b, a->x, a->proj, n);
        }

        // feed-forward block (SwiGLU)
        ops->rms_norm(b, a->x, L->ffn_norm, hp->norm_eps, n, a->xb);
        if (observed) observe(m, seqs, n_seqs, a->xb, false, l, k_ffn, 2);
        if (ops->matmul_swiglu) {
            ops->matmul_swiglu(b, L->w_gate, L->w_up, a->xb, n, a->hidden); // (n_ff, n)
        } else {
            ops->matmul(b, L->w_gate, a->xb, n, a->gate); // (n_ff, n)
            ops->matmul(b, L->w_up, a->xb, n, a->up);
            ops->swiglu(b, a->gate, a->up, n, a->hidden);
        }
        if (observed) observe(m, seqs, n_seqs, a->hidden, false, l, k_down, 1);
        if (ops->matmul_add) {
            ops->matmul_add(b, L->w_down, a->hidden, n, a->x); // x += w_down hidden
        } else {
            ops->matmul(b, L->w_down, a->hidden, n, a->proj); // (n_embd, n)
            ops->add(b, a->x, a->proj, n);
        }
    }

    // output head: every row, or each sequence's last one
    const wg_tensor *h = a->x;
    int rows = n;
    if (!all_logits) {
        for (int s = 0, end = 0; s < n_seqs; s++) {
            end += seqs[s].n;
            ops->copy_rows(b, a->x, end - 1, 1, a->last, s);
        }
        h = a->last;
        rows = n_seqs;
    }
    ops->rms_norm(b, h, m->out_norm, hp->norm_eps, rows, a->xb);
    if (observed) {
        const char *const out_name[] = {m->tied ? "token_embd.weight" : "output.weight"};
        observe(m, seqs, n_seqs, a->xb, !all_logits, -1, out_name, 1);
    }
    ops->matmul(b, m->output, a->xb, rows, a->logits); // (n_vocab, rows)
    return true;
}
