/* KL divergence and agreement statistics between a base model and another model. */
#include "eval/kl_stats.h"

#include <math.h>
#include <stdlib.h>

double wg_kl_divergence(const float *base_lp, const float *model_lp, int n) {
    double kl = 0.0;
    for (int i = 0; i < n; i++) {
        double p = (double)base_lp[i];
        kl += exp(p) * (p - (double)model_lp[i]);
    }
    return kl;
}

int wg_argmax_f32(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

bool wg_kl_stats_add(wg_kl_stats *s, const float *base_lp, const float *model_lp, int n, int32_t target) {
    if (s->kl.n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 1024;
        double *p = realloc(s->values, (size_t)cap * sizeof *p);
        if (!p) return false;
        s->values = p;
        s->cap = cap;
    }
    double kl = wg_kl_divergence(base_lp, model_lp, n);
    s->values[s->kl.n] = kl;
    if (s->kl.n == 0 || kl > s->max) s->max = kl;
    wg_mean_add(&s->kl, kl);
    wg_mean_add(&s->base_nll, -(double)base_lp[target]);
    if (wg_argmax_f32(base_lp, n) == wg_argmax_f32(model_lp, n)) s->same_top++;
    return true;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double wg_kl_stats_percentile(wg_kl_stats *s, double q) {
    int64_t n = s->kl.n;
    if (n == 0) return 0.0;
    qsort(s->values, (size_t)n, sizeof *s->values, cmp_double);
    int64_t rank = (int64_t)ceil(q * (double)n); /* 1-based */
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return s->values[rank - 1];
}

void wg_kl_stats_free(wg_kl_stats *s) {
    free(s->values);
    s->values = NULL;
    s->cap = 0;
}
