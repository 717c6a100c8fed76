/* Token sampling. Order of the chain: repetition penalty -> temperature ->
 * top-k -> top-p -> min-p -> draw (the order of Hugging Face and OpenAI-style
 * servers: the nucleus is taken over the tempered distribution). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wgllm.h"

typedef struct cand {
    float logit;
    int32_t id;
} cand;

struct wgllm_sampler {
    wgllm_sampler_params p;
    uint64_t rng;
    int32_t *recent; /* ring buffer of the last repeat_last_n accepted tokens */
    int n_recent, head;
    cand *cands;
    float *work;   /* penalised logits */
    double *probs; /* probabilities of the sorted candidates */
    int32_t *uniq; /* distinct recent tokens */
    int cap;
};

wgllm_sampler_params wgllm_sampler_default_params(void) {
    wgllm_sampler_params p = {
        .temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
        .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0,
    };
    return p;
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) { return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0); }

wgllm_sampler *wgllm_sampler_create(const wgllm_sampler_params *p, char *err, size_t err_size) {
    char scratch[8];
    if (!err || err_size == 0) {
        err = scratch;
        err_size = sizeof scratch;
    }
    if (!p) {
        snprintf(err, err_size, "no sampler parameters");
        return NULL;
    }
    if (!isfinite(p->temperature) || p->temperature > 100.0f) {
        snprintf(err, err_size, "temperature must be a finite number <= 100");
        return NULL;
    }
    if (!(p->top_p > 0.0f) || p->top_p > 1.0f || !(p->min_p >= 0.0f) || p->min_p > 1.0f) {
        snprintf(err, err_size, "top_p must be in (0, 1] and min_p in [0, 1]");
        return NULL;
    }
    if (!(p->repeat_penalty > 0.0f) || !isfinite(p->repeat_penalty) || p->repeat_last_n < 0 ||
        p->repeat_last_n > (1 << 20)) {
        snprintf(err, err_size, "repeat penalty must be > 0 and repeat_last_n in [0, 1048576]");
        return NULL;
    }
    wgllm_sampler *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    s->p = *p;
    s->rng = p->seed;
    if (p->repeat_last_n > 0) {
        s->recent = malloc(sizeof(int32_t) * (size_t)p->repeat_last_n);
        s->uniq = malloc(sizeof(int32_t) * (size_t)p->repeat_last_n);
        if (!s->recent || !s->uniq) {
            free(s->recent);
            free(s->uniq);
            free(s);
            snprintf(err, err_size, "out of memory");
            return NULL;
        }
    }
    return s;
}

void wgllm_sampler_free(wgllm_sampler *s) {
    if (!s) return;
    free(s->recent);
    free(s->uniq);
    free(s->cands);
    free(s->work);
    free(s->probs);
    free(s);
}

void wgllm_sampler_accept(wgllm_sampler *s, wgllm_token t) {
    if (!s || s->p.repeat_last_n <= 0) return;
    s->recent[s->head] = t;
    s->head = (s->head + 1) % s->p.repeat_last_n;
    if (s->n_recent < s->p.repeat_last_n) s->n_recent++;
}

static double log_sum_exp(const float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i];
    if (!isfinite(mx)) return mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)x[i] - mx);
    return mx + log(sum);
}

static int cand_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Moves the k best candidates to the front (in any order) with a min-heap: O(n log k). */
static void select_top_k(cand *c, int n, int k) {
    for (int i = k / 2 - 1; i >= 0; i--) {
        for (int j = i;;) { /* sift down */
            int l = 2 * j + 1, r = l + 1, m = j;
            if (l < k && cand_desc(&c[l], &c[m]) > 0) m = l;
            if (r < k && cand_desc(&c[r], &c[m]) > 0) m = r;
            if (m == j) break;
            cand t = c[j]; c[j] = c[m]; c[m] = t; j = m;
        }
    }
    for (int i = k; i < n; i++) {
        if (cand_desc(&c[i], &c[0]) >= 0) continue; /* not better than the worst kept */
        c[0] = c[i];
        for (int j = 0;;) {
            int l = 2 * j + 1, r = l + 1, m = j;
            if (l < k && cand_desc(&c[l], &c[m]) > 0) m = l;
            if (r < k && cand_desc(&c[r], &c[m]) > 0) m = r;
            if (m == j) break;
            cand t = c[j]; c[j] = c[m]; c[m] = t; j = m;
        }
    }
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

wgllm_token wgllm_sampler_sample(wgllm_sampler *s, const float *logits, int n_vocab, float *logprob) {
    if (!s || !logits || n_vocab <= 0) return -1;
    if (n_vocab > s->cap) {
        cand *c = realloc(s->cands, sizeof(cand) * (size_t)n_vocab);
        if (c) s->cands = c;
        float *w = realloc(s->work, sizeof(float) * (size_t)n_vocab);
        if (w) s->work = w;
        double *pr = realloc(s->probs, sizeof(double) * (size_t)n_vocab);
        if (pr) s->probs = pr;
        if (!c || !w || !pr) return -1;
        s->cap = n_vocab;
    }
    const float *x = logits;
    if (s->p.repeat_penalty != 1.0f && s->n_recent > 0) {
        memcpy(s->work, logits, sizeof(float) * (size_t)n_vocab);
        /* penalise each token once however often it occurs */
        memcpy(s->uniq, s->recent, sizeof(int32_t) * (size_t)s->n_recent);
        qsort(s->uniq, (size_t)s->n_recent, sizeof(int32_t), cmp_i32);
        for (int i = 0; i < s->n_recent; i++) {
            int32_t t = s->uniq[i];
            if (t < 0 || t >= n_vocab || (i > 0 && s->uniq[i - 1] == t)) continue;
            float v = s->work[t];
            s->work[t] = v > 0.0f ? v / s->p.repeat_penalty : v * s->p.repeat_penalty;
        }
        x = s->work;
    }
    int chosen;
    if (s->p.temperature <= 0.0f) {
        chosen = argmax(x, n_vocab);
    } else {
        cand *c = s->cands;
        int n = n_vocab;
        for (int i = 0; i < n; i++) {
            c[i].id = i;
            c[i].logit = x[i] / s->p.temperature;
        }
        if (s->p.top_k > 0 && s->p.top_k < n) {
            select_top_k(c, n, s->p.top_k);
            n = s->p.top_k;
        }
        qsort(c, (size_t)n, sizeof *c, cand_desc);
        /* softmax over the survivors */
        double mx = c[0].logit, sum = 0.0;
        double *pr = s->probs;
        for (int i = 0; i < n; i++) sum += (pr[i] = exp((double)c[i].logit - mx));
        for (int i = 0; i < n; i++) pr[i] /= sum;
        int keep = n;
        if (s->p.top_p < 1.0f) {
            double cum = 0.0;
            for (int i = 0; i < n; i++) {
                cum += pr[i];
                if (cum >= s->p.top_p) {
                    keep = i + 1;
                    break;
                }
            }
        }
        if (s->p.min_p > 0.0f) {
            double floor_p = pr[0] * s->p.min_p;
            int k = 1;
            while (k < keep && pr[k] >= floor_p) k++;
            keep = k;
        }
        double total = 0.0;
        for (int i = 0; i < keep; i++) total += pr[i];
        double u = uniform01(&s->rng) * total, acc = 0.0;
        chosen = c[keep - 1].id;
        for (int i = 0; i < keep; i++) {
            acc += pr[i];
            if (u < acc) {
                chosen = c[i].id;
                break;
            }
        }
    }
    if (logprob) *logprob = (float)((double)logits[chosen] - log_sum_exp(logits, n_vocab));
    return chosen;
}
