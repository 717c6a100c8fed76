/* The forward pass over a batch of tokens, written against the backend seam: embeddings,
 * each layer as one call (the backend's `layer`, or wg_layer_compose: backend/layer.h),
 * the output head. Shapes are (row length, rows); one row per token. The tokens of several
 * sequences share the matrix products (each weight is read once per step); rotary
 * embedding, the KV cache and attention are per sequence, on that sequence's rows. */
#include <stdio.h>
#include <stdlib.h>

#include "model/model.h"

bool wg_acts_create(const wgllm_model *m, int rows, wg_acts *a, char *err, size_t err_size) {
    wg_backend *b = m->backend;
    *a = (wg_acts){.rows = rows};
    a->pos = calloc((size_t)rows, sizeof *a->pos);
    a->seqs = calloc((size_t)rows, sizeof *a->seqs);
    if (!a->pos || !a->seqs) {
        snprintf(err, err_size, "out of memory");
        wg_acts_free(m, a);
        return false;
    }
    /* packed rows: the matmuls read n_embd per token */
    if (!wg_layer_acts_create(b, &m->layer_descs[0], rows, &a->l, err, err_size) ||
        !(a->last = b->ops->buffer_create(b, m->hp.n_embd, rows, err, err_size)) ||
        !wg_acts_reserve_logits(m, a, 1, err, err_size)) {
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
    wg_layer_acts_free(b, &a->l);
    if (a->last) b->ops->tensor_free(b, a->last);
    if (a->logits) b->ops->tensor_free(b, a->logits);
    free(a->pos);
    free(a->seqs);
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

/* A step as the observers see it: its sequences, whose contexts hold the observers. */
typedef struct observed_step {
    const wgllm_model *m;
    const wg_seq *seqs;
    int n_seqs;
} observed_step;

/* Hands the input rows x of the products with the weights `names` to the observers of the
 * sequences the rows belong to: sequence s owns its tokens' rows, or with last_rows only
 * row s. */
static void observe(const observed_step *o, const wg_tensor *x, bool last_rows, const char *const *names,
                    int n_names) {
    wg_backend *b = o->m->backend;
    for (int s = 0, row0 = 0; s < o->n_seqs; row0 += last_rows ? 1 : o->seqs[s].n, s++) {
        wgllm_context *c = o->seqs[s].c;
        if (!c->observer) continue;
        const int rows = last_rows ? 1 : o->seqs[s].n, step = (int)(c->observer_cap / x->ne0);
        for (int r = 0; r < rows; r += step) {
            const int k = rows - r < step ? rows - r : step;
            b->ops->read_rows(b, x, row0 + r, k, c->observer_rows);
            for (int i = 0; i < n_names; i++) c->observer(c->observer_user, names[i], c->observer_rows, k, x->ne0);
        }
    }
}

/* The layer's products shown to the observers, under their GGUF names blk.<layer>.<kind>.weight. */
static void observe_layer(void *user, const wg_layer_desc *d, const wg_layer_weight *ws, int n_ws, const wg_tensor *x,
                          int n) {
    static const char *const kinds[] = {[WG_LAYER_WQ] = "attn_q",       [WG_LAYER_WK] = "attn_k",
                                        [WG_LAYER_WV] = "attn_v",       [WG_LAYER_WO] = "attn_output",
                                        [WG_LAYER_W_GATE] = "ffn_gate", [WG_LAYER_W_UP] = "ffn_up",
                                        [WG_LAYER_W_DOWN] = "ffn_down"};
    char names[4][96];
    const char *ptrs[4];
    for (int i = 0; i < n_ws && i < 4; i++) {
        snprintf(names[i], sizeof names[i], "blk.%d.%s.weight", d->index, kinds[ws[i]]);
        ptrs[i] = names[i];
    }
    observe(user, x, false, ptrs, n_ws < 4 ? n_ws : 4);
}

bool wg_forward(const wgllm_model *m, wg_acts *a, const wg_seq *seqs, int n_seqs, bool all_logits) {
    const wg_hparams *hp = &m->hp;
    wg_backend *b = m->backend;
    const wg_backend_ops *ops = b->ops;
    int n = 0;
    bool observed = false; /* some sequence's context has a matmul observer */
    for (int s = 0; s < n_seqs; s++) n += seqs[s].n, observed = observed || seqs[s].c->observer;
    ((wgllm_model *)m)->greedy_ahead.valid = false; /* its contexts' caches or logits change (decode_greedy.c) */
    /* The ids are on the device (generate.c, decode_greedy.c): id s of the slot is sequence s's one token. */
    const int id_slot = seqs[0].id_slot;
    if (id_slot >= 0) {
        if (!ops->get_rows_from_slot(b, m->tok_embd, id_slot, n_seqs, a->l.x)) {
            int32_t ids[WG_SLOT_IDS];
            if (!ops->read_slot(b, id_slot, n_seqs, ids)) return false;
            ops->get_rows(b, m->tok_embd, ids, n_seqs, a->l.x);
        }
    } else {
        int32_t *ids = gather_ids(seqs, n_seqs, n);
        if (!ids) return false;
        ops->get_rows(b, m->tok_embd, ids, n, a->l.x); // x: (n_embd, n)
        if (n_seqs > 1) free(ids); /* else it is seqs[0].ids */
    }

    // the step: each sequence's rows and positions; its caches are set per layer
    for (int s = 0, row0 = 0; s < n_seqs; row0 += seqs[s].n, s++) {
        a->seqs[s] = (wg_layer_seq){.row0 = row0, .n = seqs[s].n, .pos0 = seqs[s].c->n_past};
        for (int i = 0; i < seqs[s].n; i++) a->pos[row0 + i] = seqs[s].c->n_past + i;
    }
    observed_step o = {m, seqs, n_seqs};
    const wg_layer_observer observer = {observe_layer, &o};
    const wg_layer_step step = {
        .n = n,
        .n_seqs = n_seqs,
        .seqs = a->seqs,
        .pos = a->pos,
        .queued = id_slot >= 0, /* behind the step that made its ids */
        .observer = observed ? &observer : NULL,
    };
    void (*layer)(wg_backend *, const wg_layer_desc *, const wg_layer_step *, const wg_layer_acts *) =
        ops->layer && !observed ? ops->layer : wg_layer_compose;
    char err[160];
    if (layer == wg_layer_compose && !wg_layer_acts_for_compose(b, &a->l, err, sizeof err)) return false;
    for (int l = 0; l < hp->n_layer; l++) {
        for (int s = 0; s < n_seqs; s++) {
            a->seqs[s].k_cache = seqs[s].c->k_cache[l];
            a->seqs[s].v_cache = seqs[s].c->v_cache[l];
        }
        layer(b, &m->layer_descs[l], &step, &a->l);
    }

    // output head: every row, or each sequence's last one
    const wg_tensor *h = a->l.x;
    int rows = n;
    if (!all_logits) {
        for (int s = 0, end = 0; s < n_seqs; s++) {
            end += seqs[s].n;
            ops->copy_rows(b, a->l.x, end - 1, 1, a->last, s);
        }
        h = a->last;
        rows = n_seqs;
    }
    ops->rms_norm(b, h, m->out_norm, hp->norm_eps, rows, a->l.xb);
    if (observed) {
        const char *const out_name[] = {m->tied ? "token_embd.weight" : "output.weight"};
        observe(&o, a->l.xb, !all_logits, out_name, 1);
    }
    ops->matmul(b, m->output, a->l.xb, rows, a->logits); // (n_vocab, rows)
    return true;
}
