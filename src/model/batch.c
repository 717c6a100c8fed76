/* Several sequences in one step (continuous batching): their tokens go through the
 * matrix products together, so the weights are read once for all of them. */
#include <stdio.h>
#include <stdlib.h>

#include "model/model.h"

#define WG_BATCH_ROWS_DEFAULT 64

/* Rows per step: what the backend likes, and at least one per sequence. */
static int step_rows(const wgllm_model *m, int n_seqs) {
    int rows = m->backend->ops->batch_hint > 0 ? m->backend->ops->batch_hint : WG_BATCH_ROWS_DEFAULT;
    return rows < n_seqs ? n_seqs : rows;
}

wgllm_status wg_batch_acts_ready(wgllm_model *m, int n_seqs, char *err, size_t err_size) {
    const int rows = step_rows(m, n_seqs);
    char why[200] = "";
    bool ok = true;
    if (m->batch_acts.rows < rows) {
        wg_acts_free(m, &m->batch_acts);
        ok = wg_acts_create(m, rows, &m->batch_acts, why, sizeof why);
    }
    /* a row of logits per sequence (each step's last token of it) */
    ok = ok && wg_acts_reserve_logits(m, &m->batch_acts, n_seqs, why, sizeof why);
    if (ok) return WGLLM_OK;
    snprintf(err, err_size, "cannot allocate batch buffers: %s", why);
    return WGLLM_ERR_NO_MEMORY;
}

wgllm_status wg_eval_batch(wgllm_context *const *ctxs, const wgllm_token *const *tokens, const int *n_tokens,
                           int n_seqs) {
    wgllm_model *m = (wgllm_model *)ctxs[0]->model; /* the lock and the batch buffers are its mutable part */
    wg_backend *b = m->backend;
    int *done = calloc((size_t)n_seqs, sizeof *done);
    int *start = malloc(sizeof *start * (size_t)n_seqs);
    wg_seq *seqs = malloc(sizeof *seqs * (size_t)n_seqs);
    int *slot = malloc(sizeof *slot * (size_t)n_seqs); /* sequence of each wg_seq */
    if (!done || !start || !seqs || !slot) {
        free(done), free(start), free(seqs), free(slot);
        snprintf(ctxs[0]->error, sizeof ctxs[0]->error, "out of memory for a batch of %d sequences", n_seqs);
        return WGLLM_ERR_NO_MEMORY;
    }
    pthread_mutex_lock(&m->eval_lock);
    const int rows = step_rows(m, n_seqs);
    wgllm_status st = wg_batch_acts_ready(m, n_seqs, ctxs[0]->error, sizeof ctxs[0]->error);
    for (int s = 0; s < n_seqs; s++) {
        start[s] = ctxs[s]->n_past;
        ctxs[s]->logits_on_host = false;
    }
    /* Rounds of at most `rows` tokens; long prompts take several. */
    bool left = true;
    while (st == WGLLM_OK && left) {
        int k = 0, used = 0;
        for (int s = 0; s < n_seqs && used < rows; s++) {
            int rem = n_tokens[s] - done[s];
            if (rem <= 0) continue;
            int take = rem < rows - used ? rem : rows - used;
            seqs[k] = (wg_seq){ctxs[s], tokens[s] + done[s], take, -1};
            slot[k++] = s;
            used += take;
        }
        bool ok = wg_forward(m, &m->batch_acts, seqs, k, false);
        for (int i = 0; ok && i < k; i++) {
            int s = slot[i];
            if (done[s] + seqs[i].n == n_tokens[s]) /* its last token: keep its logits */
                b->ops->copy_rows(b, m->batch_acts.logits, i, 1, ctxs[s]->acts.logits, 0);
        }
        ok = b->ops->synchronize(b) && ok;
        if (!ok) {
            for (int s = 0; s < n_seqs; s++)
                snprintf(ctxs[s]->error, sizeof ctxs[s]->error, "backend failure: %s", b->ops->error(b));
            st = WGLLM_ERR_BACKEND;
            break;
        }
        left = false;
        for (int i = 0; i < k; i++) {
            int s = slot[i];
            done[s] += seqs[i].n;
            ctxs[s]->n_past += seqs[i].n;
            if (done[s] < n_tokens[s]) left = true;
        }
        for (int s = 0; s < n_seqs; s++)
            if (done[s] < n_tokens[s]) left = true;
    }
    for (int s = 0; s < n_seqs; s++) {
        if (st != WGLLM_OK) ctxs[s]->n_past = start[s]; /* all or nothing */
        else ctxs[s]->n_logit_rows = 1;
    }
    pthread_mutex_unlock(&m->eval_lock);
    free(done), free(start), free(seqs), free(slot);
    return st;
}
