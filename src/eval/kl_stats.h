/* Per-token comparison of a model with a base model: KL(base || model), top-token
 * agreement and the base model's own negative log-likelihood. */
#ifndef WGLLM_EVAL_KL_STATS_H
#define WGLLM_EVAL_KL_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "eval/perplexity.h"

typedef struct wg_kl_stats {
    wg_mean_acc kl, base_nll;
    double max;
    double *values; /* every token's KL, for percentiles */
    int64_t cap;
    int64_t same_top; /* tokens where both models' most likely token is the same */
} wg_kl_stats;

/* KL(P||Q) = sum_i P_i (log P_i - log Q_i) from two rows of n log-probabilities, in
 * double; identical rows give exactly 0. */
double wg_kl_divergence(const float *base_lp, const float *model_lp, int n);

/* Index of the largest value (the first on ties). */
int wg_argmax_f32(const float *v, int n);

/* Adds one token; false when out of memory. */
bool wg_kl_stats_add(wg_kl_stats *s, const float *base_lp, const float *model_lp, int n, int32_t target);

/* Nearest-rank percentile (q in (0, 1]) of the KL values; sorts them. */
double wg_kl_stats_percentile(wg_kl_stats *s, double q);

void wg_kl_stats_free(wg_kl_stats *s);

#endif
