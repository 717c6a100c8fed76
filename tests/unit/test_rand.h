/* Reproducible test data for the unit tests: an xorshift64 sequence of floats, uniform in
 * [-1, 1). A test defines TEST_RAND_SEED (its own sequence) before including this. */
#ifndef WGLLM_TEST_RAND_H
#define WGLLM_TEST_RAND_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#ifndef TEST_RAND_SEED
#error "define TEST_RAND_SEED before including test_rand.h"
#endif

static uint64_t g_rng = TEST_RAND_SEED;

static inline float frand(void) { /* uniform in [-1, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / (double)(1ull << 23))) - 1.0f;
}

/* n values frand() * scale, malloc'ed (NULL when out of memory). */
static inline float *rand_vec(size_t n, float scale) {
    float *v = malloc(sizeof(float) * n);
    for (size_t i = 0; v && i < n; i++) v[i] = frand() * scale;
    return v;
}

#endif
