/* One greedy decoding step of several sequences, pipelined across calls.
 *
 * Each call feeds every sequence the argmax of its last logits and leaves the argmax of the
 * new logits in a device id slot, being read back. The next call over the same contexts
 * queues its step behind that argmax (the ids go from the slot into the embedding lookup
 * on the GPU) and only then waits for the ids it fed. So the GPU runs step t+1 while the
 * caller handles the tokens of step t, as wgllm_generate_greedy does for one sequence.
 * Without device id slots it is wgllm_greedy_batch followed by wgllm_eval_batch. */
#include <stdio.h>
#include <stdlib.h>

#include "model/model.h"

/* Slots 0 and 1 are wgllm_generate_greedy's (it holds the lock throughout); the step here
 * alternates between these two, and keeps one being read between calls. */
#define SLOT_A 2
#define SLOT_B 3

static wgllm_status fail_all(wgllm_context *const *ctxs, int n, wgllm_status st, const char *what,
                             const char *why) {
    for (int i = 0; i < n; i++) snprintf(ctxs[i]->error, sizeof ctxs[i]->error, "%s%s", what, why);
    return st;
}

static wgllm_status check_args(wgllm_context *const *ctxs, int n, wgllm_token *out) {
    if (!ctxs || !out || n <= 0) return WGLLM_ERR_INVALID_ARG;
    for (int i = 0; i < n; i++)
        if (!ctxs[i] || ctxs[i]->model != ctxs[0]->model) return WGLLM_ERR_INVALID_ARG;
    for (int i = 0; i < n; i++) {
        wgllm_context *c = ctxs[i];
        c->error[0] = 0;
        for (int j = 0; j < i; j++)
            if (ctxs[j] == c) {
                snprintf(c->error, sizeof c->error, "context appears twice in a batch");
                return WGLLM_ERR_INVALID_ARG;
            }
        if (c->n_logit_rows != 1) {
            snprintf(c->error, sizeof c->error, "no logits of a last token: evaluate tokens (all_logits false) first");
            return WGLLM_ERR_INVALID_ARG;
        }
        if (c->n_past >= c->n_ctx) {
            snprintf(c->error, sizeof c->error, "1 token does not fit: 0 of %d context positions are free", c->n_ctx);
            return WGLLM_ERR_CONTEXT_FULL;
        }
    }
    return WGLLM_OK;
}

/* Without device id slots, or for more sequences than a slot holds. */
static wgllm_status decode_plain(wgllm_context *const *ctxs, int n, wgllm_token *out) {
    wgllm_status st = wgllm_greedy_batch(ctxs, n, out);
    const wgllm_token **toks = NULL;
    int *ones = NULL;
    if (st == WGLLM_OK) {
        toks = malloc(sizeof *toks * (size_t)n);
        ones = malloc(sizeof *ones * (size_t)n);
        if (!toks || !ones) {
            free(toks), free(ones);
            return fail_all(ctxs, n, WGLLM_ERR_NO_MEMORY, "out of memory", "");
        }
        for (int i = 0; i < n; i++) toks[i] = &out[i], ones[i] = 1;
        st = wgllm_eval_batch(ctxs, toks, ones, n);
        free(toks), free(ones);
    }
    if (st != WGLLM_OK) /* the context that says why speaks for all */
        for (int i = 0; i < n; i++)
            if (ctxs[i]->error[0]) {
                char why[sizeof ctxs[i]->error];
                snprintf(why, sizeof why, "%s", ctxs[i]->error);
                return fail_all(ctxs, n, st, why, "");
            }
    return st;
}

/* The slot of the previous step still holds the argmax of exactly these contexts' logits. */
static bool ahead_of(const struct wg_greedy_ahead *g, wgllm_context *const *ctxs, int n) {
    if (!g->valid || g->n != n) return false;
    for (int i = 0; i < n; i++)
        if (g->ctx[i] != ctxs[i] || g->n_past[i] != ctxs[i]->n_past) return false;
    return true;
}

/* Waits for a read nobody will use, so that its slot can be filled again. */
static void drain(wg_backend *b, struct wg_greedy_ahead *g) {
    if (!g->reading) return;
    int32_t unused[WG_SLOT_IDS];
    b->ops->read_slot(b, g->slot, g->n, unused);
    g->reading = false;
}

wgllm_status wgllm_decode_greedy_batch(wgllm_context *const *ctxs, int n, wgllm_token *out) {
    wgllm_status st = check_args(ctxs, n, out);
    if (st != WGLLM_OK) return st;
    wgllm_model *m = (wgllm_model *)ctxs[0]->model; /* the lock, the batch buffers and the slot state */
    wg_backend *b = m->backend;
    const wg_backend_ops *ops = b->ops;
    if (n > WG_SLOT_IDS || !ops->argmax_to_slot || !ops->slot_read_start || !ops->get_rows_from_slot ||
        !ops->read_slot)
        return decode_plain(ctxs, n, out);

    pthread_mutex_lock(&m->eval_lock);
    struct wg_greedy_ahead *g = &m->greedy_ahead;
    char err[256] = "";
    st = wg_batch_acts_ready(m, n, err, sizeof err);
    if (st != WGLLM_OK) {
        pthread_mutex_unlock(&m->eval_lock);
        return fail_all(ctxs, n, st, err, "");
    }
    int slot;
    if (ahead_of(g, ctxs, n)) {
        slot = g->slot; /* its read started with the previous step */
    } else {
        drain(b, g);
        slot = SLOT_A;
        for (int i = 0; i < n; i++) ops->argmax_to_slot(b, ctxs[i]->acts.logits, 0, slot, i);
        ops->slot_read_start(b, slot, n);
    }
    g->valid = false;
    g->reading = false; /* the read of `slot` is taken below */
    const int next = slot == SLOT_A ? SLOT_B : SLOT_A;

    wg_seq seqs[WG_SLOT_IDS];
    for (int i = 0; i < n; i++) seqs[i] = (wg_seq){ctxs[i], NULL, 1, slot};
    bool ok = wg_forward(m, &m->batch_acts, seqs, n, false);
    if (ok) {
        for (int i = 0; i < n; i++) {
            ops->copy_rows(b, m->batch_acts.logits, i, 1, ctxs[i]->acts.logits, 0);
            ops->argmax_to_slot(b, m->batch_acts.logits, i, next, i);
        }
        ops->slot_read_start(b, next, n); /* submits this step; the ids come back with the next call */
        g->reading = true;
        g->slot = next;
        g->n = n;
    }
    int32_t ids[WG_SLOT_IDS];
    ok = ops->read_slot(b, slot, n, ids) && ok; /* the tokens fed: known once the previous step is done */
    if (!ok) {
        drain(b, g);
        ops->synchronize(b); /* clears the failure for the next caller */
        snprintf(err, sizeof err, "%s", ops->error(b));
        for (int i = 0; i < n; i++) { /* the step may have written their logits: none are valid */
            ctxs[i]->n_logit_rows = 0;
            ctxs[i]->logits_on_host = false;
        }
        pthread_mutex_unlock(&m->eval_lock);
        return fail_all(ctxs, n, WGLLM_ERR_BACKEND, "backend failure: ", err);
    }
    for (int i = 0; i < n; i++) {
        wgllm_context *c = ctxs[i];
        out[i] = ids[i];
        c->n_past++;
        c->n_logit_rows = 1;
        c->logits_on_host = false;
        g->ctx[i] = c;
        g->n_past[i] = c->n_past;
    }
    g->valid = true;
    pthread_mutex_unlock(&m->eval_lock);
    return WGLLM_OK;
}
