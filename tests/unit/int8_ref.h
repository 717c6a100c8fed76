/* References for the int8 decode path (tests only): x rounded to int8 blocks of 32 as
 * kernels/lib_q8_round.wgsl does it, and Q4_0 x int8 products with exact integer block dots.
 * Header-only: each test program is one file. */
#ifndef WGLLM_TEST_INT8_REF_H
#define WGLLM_TEST_INT8_REF_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "quant/quant.h"
#include "quant/types.h"

/* x rounded as kernels/quantize_x_q8.wgsl does (llama.cpp's q8_0 rule, f32 scale):
 * d = amax / 127, q = x / d rounded half away from zero, per block of 32. */
static inline void quantize_x_q8_ref(const float *x, int64_t k, int8_t *q, float *d) {
    for (int64_t b = 0; b < k / 32; b++) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        d[b] = amax / 127.0f;
        float id = d[b] > 0.0f ? 1.0f / d[b] : 0.0f;
        for (int j = 0; j < 32; j++) q[b * 32 + j] = (int8_t)roundf(x[b * 32 + j] * id);
    }
}

/* y = W x for Q4_0 rows and int8 x: exact integer dot per block, scales applied in double. */
static inline void matvec_q4_0_q8_ref(const uint8_t *w, int64_t k, int64_t m, const float *x, double *y) {
    int8_t *q = malloc((size_t)k);
    float *d = malloc(sizeof(float) * (size_t)(k / 32));
    quantize_x_q8_ref(x, k, q, d);
    const size_t rb = wg_type_row_bytes(WG_TYPE_Q4_0, k);
    for (int64_t r = 0; r < m; r++) {
        double acc = 0.0;
        for (int64_t b = 0; b < k / 32; b++) {
            const uint8_t *blk = w + (size_t)r * rb + (size_t)b * 18;
            double dw = wg_fp16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
            long dot = 0;
            for (int j = 0; j < 16; j++) {
                dot += (long)((blk[2 + j] & 15) - 8) * q[b * 32 + j];
                dot += (long)((blk[2 + j] >> 4) - 8) * q[b * 32 + j + 16];
            }
            acc += dw * (double)d[b] * (double)dot;
        }
        y[r] = acc;
    }
    free(q);
    free(d);
}

#endif
