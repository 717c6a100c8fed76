/* Several sequences in one step (continuous batching). */
#include <stdio.h>

#include "model/model.h"

wgllm_status wg_eval_batch(wgllm_context *const *ctxs, const wgllm_token *const *tokens, const int *n_tokens,
                           int n_seqs) {
    wgllm_model *m = (wgllm_model *)ctxs[0]->model; /* the lock is the only mutable part */
    pthread_mutex_lock(&m->eval_lock);
    bool ok = true;
    int failed = -1;
    for (int s = 0; ok && s < n_seqs; s++) {
        wgllm_context *c = ctxs[s];
        int start = c->n_past;
        c->logits_on_host = false;
        for (int done = 0; ok && done < n_tokens[s]; done += c->n_batch) {
            int chunk = n_tokens[s] - done < c->n_batch ? n_tokens[s] - done : c->n_batch;
            ok = wg_forward(c, tokens[s] + done, chunk, false, false, 0);
            if (ok) c->n_past += chunk;
        }
        if (!ok) {
            c->n_past = start;
            failed = s;
        } else {
            c->n_logit_rows = 1;
        }
    }
    if (!ok) {
        snprintf(ctxs[failed]->error, sizeof ctxs[failed]->error, "backend failure: %s",
                 m->backend->ops->error(m->backend));
    }
    pthread_mutex_unlock(&m->eval_lock);
    return ok ? WGLLM_OK : WGLLM_ERR_BACKEND;
}
