/* Sampler: greedy, seeded determinism, filters, penalty, logprob, bad parameters. */
#include <math.h>

#include "check.h"
#include "wgllm.h"

static wgllm_sampler *make(float temp, int top_k, float top_p, float min_p, float pen, uint64_t seed) {
    wgllm_sampler_params p = wgllm_sampler_default_params();
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repeat_penalty = pen;
    p.seed = seed;
    char err[128];
    wgllm_sampler *s = wgllm_sampler_create(&p, err, sizeof err);
    if (!s) fprintf(stderr, "sampler_create: %s\n", err);
    return s;
}

int main(void) {
    const float logits[6] = {0.1f, 2.0f, -1.0f, 2.0f, 1.5f, 0.0f};

    /* greedy: argmax, first index on ties; logprob = log softmax */
    wgllm_sampler *g = make(0.0f, 0, 1.0f, 0.0f, 1.0f, 1);
    float lp = 0;
    CHECK(wgllm_sampler_sample(g, logits, 6, &lp) == 1);
    double lse = 0;
    for (int i = 0; i < 6; i++) lse += exp(logits[i]);
    CHECK_NEAR(lp, 2.0 - log(lse), 1e-5);
    wgllm_sampler_free(g);

    /* same seed, same sequence; another seed, another sequence */
    int a[64], b[64], c[64];
    wgllm_sampler *s1 = make(1.0f, 0, 1.0f, 0.0f, 1.0f, 42), *s2 = make(1.0f, 0, 1.0f, 0.0f, 1.0f, 42),
                  *s3 = make(1.0f, 0, 1.0f, 0.0f, 1.0f, 43);
    int differ = 0;
    for (int i = 0; i < 64; i++) {
        a[i] = wgllm_sampler_sample(s1, logits, 6, NULL);
        b[i] = wgllm_sampler_sample(s2, logits, 6, NULL);
        c[i] = wgllm_sampler_sample(s3, logits, 6, NULL);
        differ += a[i] != c[i];
    }
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(differ > 0);
    wgllm_sampler_free(s1);
    wgllm_sampler_free(s2);
    wgllm_sampler_free(s3);

    /* top-k 1, tiny top-p and min-p 1 all reduce to the best token (ties: lowest id) */
    wgllm_sampler *k1 = make(5.0f, 1, 1.0f, 0.0f, 1.0f, 7), *p0 = make(5.0f, 0, 0.01f, 0.0f, 1.0f, 7),
                  *m1 = make(5.0f, 0, 1.0f, 1.0f, 1.0f, 7);
    int ok_k = 1, ok_p = 1, ok_m = 1;
    for (int i = 0; i < 200; i++) {
        ok_k &= wgllm_sampler_sample(k1, logits, 6, NULL) == 1;
        ok_p &= wgllm_sampler_sample(p0, logits, 6, NULL) == 1;
        int t = wgllm_sampler_sample(m1, logits, 6, NULL);
        ok_m &= t == 1 || t == 3; /* min-p keeps both tied maxima */
    }
    CHECK(ok_k);
    CHECK(ok_p);
    CHECK(ok_m);
    wgllm_sampler_free(k1);
    wgllm_sampler_free(p0);
    wgllm_sampler_free(m1);

    /* top-k 2 never yields anything but the two best */
    wgllm_sampler *k2 = make(1.0f, 2, 1.0f, 0.0f, 1.0f, 9);
    int ok_k2 = 1;
    for (int i = 0; i < 500; i++) {
        int t = wgllm_sampler_sample(k2, logits, 6, NULL);
        ok_k2 &= t == 1 || t == 3;
    }
    CHECK(ok_k2);
    wgllm_sampler_free(k2);

    /* temperature 1, no filters: frequencies follow softmax (fixed seed, 40k draws, 4-sigma-ish bound) */
    const float three[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    wgllm_sampler *d = make(1.0f, 0, 1.0f, 0.0f, 1.0f, 12345);
    int counts[3] = {0, 0, 0};
    for (int i = 0; i < 40000; i++) counts[wgllm_sampler_sample(d, three, 3, NULL)]++;
    CHECK_NEAR(counts[0] / 40000.0, 0.5, 0.01);
    CHECK_NEAR(counts[1] / 40000.0, 0.3, 0.01);
    CHECK_NEAR(counts[2] / 40000.0, 0.2, 0.01);
    wgllm_sampler_free(d);

    /* top-p 0.75 over {0.5, 0.3, 0.2}: keeps the first two only */
    wgllm_sampler *tp = make(1.0f, 0, 0.75f, 0.0f, 1.0f, 5);
    int ok_tp = 1, seen1 = 0;
    for (int i = 0; i < 2000; i++) {
        int t = wgllm_sampler_sample(tp, three, 3, NULL);
        ok_tp &= t != 2;
        seen1 |= t == 1;
    }
    CHECK(ok_tp);
    CHECK(seen1);
    wgllm_sampler_free(tp);

    /* repetition penalty: a recent positive logit is divided, a negative one multiplied */
    const float pen_logits[3] = {2.0f, 1.9f, -0.5f};
    wgllm_sampler *rp = make(0.0f, 0, 1.0f, 0.0f, 1.5f, 1);
    CHECK(wgllm_sampler_sample(rp, pen_logits, 3, NULL) == 0);
    wgllm_sampler_accept(rp, 0);
    wgllm_sampler_accept(rp, 0); /* counted once */
    CHECK(wgllm_sampler_sample(rp, pen_logits, 3, NULL) == 1);
    wgllm_sampler_accept(rp, 1);
    /* now 0 -> 1.333, 1 -> 1.2667, so 0 wins again */
    CHECK(wgllm_sampler_sample(rp, pen_logits, 3, NULL) == 0);
    wgllm_sampler_free(rp);

    /* invalid parameters are refused with a message */
    wgllm_sampler_params bad = wgllm_sampler_default_params();
    char err[128] = "";
    bad.temperature = NAN;
    CHECK(wgllm_sampler_create(&bad, err, sizeof err) == NULL && err[0]);
    bad = wgllm_sampler_default_params();
    bad.top_p = 0.0f;
    CHECK(wgllm_sampler_create(&bad, err, sizeof err) == NULL);
    bad.top_p = 1.5f;
    CHECK(wgllm_sampler_create(&bad, err, sizeof err) == NULL);
    bad = wgllm_sampler_default_params();
    bad.min_p = -0.1f;
    CHECK(wgllm_sampler_create(&bad, err, sizeof err) == NULL);
    bad = wgllm_sampler_default_params();
    bad.repeat_penalty = 0.0f;
    CHECK(wgllm_sampler_create(&bad, err, sizeof err) == NULL);
    CHECK_DONE();
}
