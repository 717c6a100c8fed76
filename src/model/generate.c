/* Greedy generation. With a backend that keeps sampled ids on the device, step t+1 is
 * recorded and submitted before token t is read back, so the GPU always has the next
 * step queued; otherwise the plain loop of wgllm_greedy and wgllm_eval. */
#include <stdio.h>

#include "model/model.h"

#define N_SLOTS 2 /* ids in flight: the token being read and the next step's */

static bool should_stop(wgllm_context *c, wgllm_token t, int produced, int n_max,
                        bool (*on_token)(wgllm_token, void *), void *user, bool stop_at_eog) {
    bool go_on = on_token ? on_token(t, user) : true;
    return !go_on || (stop_at_eog && wgllm_token_is_eog(c->model, t)) || produced >= n_max;
}

static int generate_plain(wgllm_context *c, int n_max, bool (*on_token)(wgllm_token, void *), void *user,
                          bool stop_at_eog) {
    int produced = 0;
    for (;;) {
        wgllm_token t = wgllm_greedy(c);
        if (t < 0) return -1;
        produced++;
        if (should_stop(c, t, produced, n_max, on_token, user, stop_at_eog) || c->n_past >= c->n_ctx) break;
        if (wgllm_eval(c, &t, 1, false) != WGLLM_OK) return -1;
    }
    c->n_logit_rows = 0;
    return produced;
}

int wgllm_generate_greedy(wgllm_context *c, int n_max, bool (*on_token)(wgllm_token, void *), void *user,
                          bool stop_at_eog) {
    if (!c || n_max < 0) return -1;
    c->error[0] = 0;
    if (n_max == 0) return 0;
    if (c->n_logit_rows != 1) {
        snprintf(c->error, sizeof c->error, "no logits of a last token: evaluate tokens (all_logits false) first");
        return -1;
    }
    wgllm_model *m = (wgllm_model *)c->model; /* the lock is the only mutable part */
    wg_backend *b = m->backend;
    const wg_backend_ops *ops = b->ops;
    if (!ops->argmax_to_slot || !ops->slot_read_start || !ops->get_rows_from_slot || !ops->read_slot)
        return generate_plain(c, n_max, on_token, user, stop_at_eog);

    /* The lock is held throughout: the device id slots must not be shared with another
     * context's steps while ours are in flight. */
    pthread_mutex_lock(&m->eval_lock);
    int slot = 0, produced = 0;
    bool ok = true;
    ops->argmax_to_slot(b, c->acts.logits, 0, slot, 0);
    ops->slot_read_start(b, slot, 1);
    for (;;) {
        const int next = (slot + 1) % N_SLOTS;
        bool queued = false;
        if (produced + 1 < n_max && c->n_past < c->n_ctx) { /* the step that feeds this token */
            wg_seq seq = {c, NULL, 1, slot};
            ok = wg_forward(m, &c->acts, &seq, 1, false);
            if (!ok) break;
            ops->argmax_to_slot(b, c->acts.logits, 0, next, 0);
            ops->slot_read_start(b, next, 1);
            c->n_past++;
            queued = true;
        }
        int32_t t;
        if (!ops->read_slot(b, slot, 1, &t)) {
            ok = false;
            break;
        }
        produced++;
        bool stop = should_stop(c, t, produced, n_max, on_token, user, stop_at_eog) || !queued;
        if (stop) {
            if (queued) { /* that step evaluated the last token: take it back */
                int32_t unused;
                ops->read_slot(b, next, 1, &unused);
                c->n_past--;
            }
            break;
        }
        slot = next;
    }
    ok = ops->synchronize(b) && ok;
    if (!ok) snprintf(c->error, sizeof c->error, "backend failure: %s", ops->error(b));
    c->n_logit_rows = 0;
    c->logits_on_host = false;
    pthread_mutex_unlock(&m->eval_lock);
    return ok ? produced : -1;
}
