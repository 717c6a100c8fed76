/* wgllm_warm_up: each shape of step a server takes, run once before it serves, so that a
 * backend that builds or tunes kernels at a shape's first run (a GPU) does it then. */
#include <stdio.h>
#include <stdlib.h>

#include "model/model.h"

/* Empty again, without logits. */
static void empty(wgllm_context *const *ctxs, int n) {
    for (int i = 0; i < n; i++) {
        wgllm_context_truncate(ctxs[i], 0);
        ctxs[i]->n_logit_rows = 0;
        ctxs[i]->logits_on_host = false;
    }
}

/* ctxs[0]'s error says why a step failed (the context that knows may be another). */
static wgllm_status failed(wgllm_context *const *ctxs, int n, wgllm_status st, const char *step) {
    char why[sizeof ctxs[0]->error] = "";
    for (int i = 0; i < n && !why[0]; i++) snprintf(why, sizeof why, "%s", ctxs[i]->error);
    snprintf(ctxs[0]->error, sizeof ctxs[0]->error, "warm-up %s: %s", step, why[0] ? why : wgllm_status_name(st));
    empty(ctxs, n);
    return st;
}

/* One token of each of w sequences with their greedy tokens read together (a step whose
 * tokens are sampled), then two greedy steps (the first takes fresh logits, the second runs
 * behind it, as a server's all-greedy steps do) and the wait for the last. */
static wgllm_status decode_width(wgllm_context *const *ctxs, int w, const wgllm_token **toks, int *ones,
                                 wgllm_token *out) {
    for (int i = 0; i < w; i++) ones[i] = 1;
    wgllm_status st = wgllm_eval_batch(ctxs, toks, ones, w);
    if (st != WGLLM_OK) return failed(ctxs, w, st, "decode step");
    if (!wgllm_get_logits(ctxs[0], 0)) return failed(ctxs, w, WGLLM_ERR_BACKEND, "logits");
    if ((st = wgllm_greedy_batch(ctxs, w, out)) != WGLLM_OK) return failed(ctxs, w, st, "greedy tokens");
    for (int g = 0; g < 2; g++)
        if ((st = wgllm_decode_greedy_batch(ctxs, w, out)) != WGLLM_OK) return failed(ctxs, w, st, "greedy step");
    if (wgllm_greedy(ctxs[w - 1]) < 0) return failed(ctxs, w, WGLLM_ERR_BACKEND, "greedy step");
    empty(ctxs, w);
    return WGLLM_OK;
}

/* step_tokens prompt tokens over as many sequences as chunks of `chunk` need (a burst of
 * requests starting together), or one sequence's chunk (a lone request). */
static wgllm_status prompt_step(wgllm_context *const *ctxs, int n, int step_tokens, int chunk, bool lone,
                                const wgllm_token **toks, int *counts) {
    int k = 0, left = step_tokens;
    while (left > 0 && k < n && (k == 0 || !lone)) {
        int c = chunk < left ? chunk : left;
        if (c > wgllm_context_n_ctx(ctxs[k]) - 1) c = wgllm_context_n_ctx(ctxs[k]) - 1;
        if (c <= 0) break;
        counts[k++] = c;
        left -= c;
    }
    if (k == 0) return WGLLM_OK;
    wgllm_status st = wgllm_eval_batch(ctxs, toks, counts, k);
    if (st != WGLLM_OK) return failed(ctxs, k, st, "prompt step");
    empty(ctxs, k);
    return WGLLM_OK;
}

wgllm_status wgllm_warm_up(wgllm_context *const *ctxs, int n, int step_tokens, int chunk) {
    if (!ctxs || n <= 0 || step_tokens <= 0 || chunk <= 0) return WGLLM_ERR_INVALID_ARG;
    for (int i = 0; i < n; i++)
        if (!ctxs[i] || ctxs[i]->model != ctxs[0]->model) return WGLLM_ERR_INVALID_ARG;
    const wgllm_model *m = ctxs[0]->model;
    if (!m->backend->ops->kernels_at_first_use) return WGLLM_OK;

    const int n_tok = step_tokens > chunk ? step_tokens : chunk;
    wgllm_token *ids = malloc(sizeof *ids * (size_t)n_tok), *out = malloc(sizeof *out * (size_t)n);
    const wgllm_token **toks = malloc(sizeof *toks * (size_t)n);
    int *counts = malloc(sizeof *counts * (size_t)n);
    wgllm_status st = WGLLM_OK;
    if (!ids || !out || !toks || !counts) {
        snprintf(ctxs[0]->error, sizeof ctxs[0]->error, "warm-up: out of memory");
        st = WGLLM_ERR_NO_MEMORY;
        goto done;
    }
    const int n_vocab = wgllm_n_vocab(m);
    for (int i = 0; i < n_tok; i++) ids[i] = (wgllm_token)(i % n_vocab);
    for (int i = 0; i < n; i++) toks[i] = ids + i % n_tok;
    empty(ctxs, n);

    /* three tokens a sequence: its one token and two greedy steps */
    bool room = true;
    for (int i = 0; i < n; i++) room = room && wgllm_context_n_ctx(ctxs[i]) >= 3;
    for (int w = 1; room && st == WGLLM_OK;) {
        st = decode_width(ctxs, w, toks, counts, out);
        if (w == n) break;
        const int next = w == 1 ? 2 : 2 * (w - 1) + 1; /* 2, 3, 5, 9, 17, ...: one past each power of two */
        w = next < n ? next : n;
    }
    for (int i = 0; i < n; i++) toks[i] = ids;
    if (st == WGLLM_OK) st = prompt_step(ctxs, n, step_tokens, chunk, true, toks, counts);
    if (st == WGLLM_OK) st = prompt_step(ctxs, n, step_tokens, chunk, false, toks, counts);
done:
    free(ids);
    free(out);
    free(toks);
    free(counts);
    return st;
}
