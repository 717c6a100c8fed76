/* Sliding-window scoring over the public API; statistics helpers. */
#include "eval/perplexity.h"

#include <math.h>
#include <stdio.h>

bool wg_ppl_check(int64_t n_tokens, int ctx, int stride, char *err, size_t err_size) {
    if (ctx < 2) {
        snprintf(err, err_size, "context of %d tokens: it must be at least 2", ctx);
        return false;
    }
    if (stride < 1 || stride >= ctx) {
        snprintf(err, err_size, "stride %d: it must be between 1 and ctx - 1 = %d", stride, ctx - 1);
        return false;
    }
    if (n_tokens < 2) {
        snprintf(err, err_size, "text too short: %lld token%s with BOS, at least 2 are needed to score one",
                 (long long)n_tokens, n_tokens == 1 ? "" : "s");
        return false;
    }
    return true;
}

int64_t wg_ppl_n_windows(int64_t n_tokens, int ctx, int stride) {
    if (n_tokens <= ctx) return 1;
    return 1 + (n_tokens - ctx + stride - 1) / stride;
}

bool wg_ppl_run(const wgllm_model *m, wgllm_context *c, const wgllm_token *tokens, int64_t n_tokens, int ctx, int stride,
                wg_ppl_score_fn score, void *user, char *err, size_t err_size) {
    if (!wg_ppl_check(n_tokens, ctx, stride, err, err_size)) return false;
    if (wgllm_context_n_ctx(c) < ctx) {
        snprintf(err, err_size, "context holds %d tokens, the window needs %d", wgllm_context_n_ctx(c), ctx);
        return false;
    }
    const int n_vocab = wgllm_n_vocab(m);
    int64_t scored_to = 1; /* next token to score */
    for (int64_t start = 0; scored_to < n_tokens; start += stride) {
        int64_t end = start + ctx < n_tokens ? start + ctx : n_tokens;
        wgllm_context_truncate(c, 0);
        wgllm_status s = wgllm_eval(c, tokens + start, (int)(end - start), true);
        if (s != WGLLM_OK) {
            snprintf(err, err_size, "evaluating tokens %lld..%lld: %s", (long long)start, (long long)end - 1,
                     wgllm_context_error(c));
            return false;
        }
        for (int64_t j = scored_to; j < end; j++) {
            const float *logits = wgllm_get_logits(c, (int)(j - 1 - start));
            if (!logits) {
                snprintf(err, err_size, "reading logits: %s", wgllm_context_error(c));
                return false;
            }
            if (!score(user, j, tokens[j], logits, n_vocab, err, err_size)) return false;
        }
        scored_to = end;
    }
    return true;
}

double wg_log_softmax(const float *logits, int n, double *out) {
    double mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    double lse = mx + log(sum);
    if (out)
        for (int i = 0; i < n; i++) out[i] = (double)logits[i] - lse;
    return lse;
}

void wg_mean_add(wg_mean_acc *a, double x) {
    a->n++;
    double d = x - a->mean;
    a->mean += d / (double)a->n;
    a->m2 += d * (x - a->mean);
}

double wg_mean_stderr(const wg_mean_acc *a) {
    if (a->n < 2) return 0.0;
    double var = a->m2 / (double)(a->n - 1);
    return sqrt(var / (double)a->n);
}
