/* Perplexity over a long token sequence with a sliding window, through the public API.
 *
 * Window rule (also in `wgllm perplexity --help` and the README): the text is tokenized
 * once, with BOS. Window k covers tokens [k*stride, min(k*stride + ctx, N)) and is
 * evaluated from an empty cache. The first window scores every token but its first
 * (token j is predicted by the logits of token j-1); each later window scores only
 * the tokens past the end of the previous window. Windows stop at the one that
 * reaches token N-1, so every token but the first is scored exactly once (N-1 in
 * all), and each is predicted from at least ctx - stride tokens of context
 * (except those of the first window, which see everything before them).
 */
#ifndef WGLLM_EVAL_PERPLEXITY_H
#define WGLLM_EVAL_PERPLEXITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wgllm.h"

/* Checks ctx >= 2, 1 <= stride < ctx and n_tokens >= 2; false with a message otherwise. */
bool wg_ppl_check(int64_t n_tokens, int ctx, int stride, char *err, size_t err_size);

/* Number of windows the rule above evaluates (after wg_ppl_check succeeded). */
int64_t wg_ppl_n_windows(int64_t n_tokens, int ctx, int stride);

/* Called once per scored token, in text order: `index` is the token's position in
 * the text, `target` its id, `logits` the n_vocab logits that predict it.
 * Returning false stops the run (the callback writes its reason to err). */
typedef bool (*wg_ppl_score_fn)(void *user, int64_t index, wgllm_token target, const float *logits, int n_vocab,
                                char *err, size_t err_size);

/* Runs every window on c (a context of m whose n_ctx must be >= ctx) and calls score for each
 * scored token. False with a message on an evaluation failure or when score fails. */
bool wg_ppl_run(const wgllm_model *m, wgllm_context *c, const wgllm_token *tokens, int64_t n_tokens, int ctx, int stride,
                wg_ppl_score_fn score, void *user, char *err, size_t err_size);

/* log-softmax of n logits, in double, into out (n entries); returns log-sum-exp. */
double wg_log_softmax(const float *logits, int n, double *out);

/* Running mean and variance (Welford) of per-token values. */
typedef struct wg_mean_acc {
    int64_t n;
    double mean, m2;
} wg_mean_acc;

void wg_mean_add(wg_mean_acc *a, double x);
/* Standard error of the mean: sample standard deviation / sqrt(n) (0 when n < 2). */
double wg_mean_stderr(const wg_mean_acc *a);

#endif
