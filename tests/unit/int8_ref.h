/* References for the int8 decode path (tests only): x rounded to int8 blocks of 32 as
 * kernels/lib_q8_round.wgsl does it, and Q4_0 x int8 products with exact integer block dots.
 * Header-only: each test program is one file. */
#ifndef WGLLM_TEST_INT8_REF_H
#define WGLLM_TEST_INT8_REF_H

#include <math.h>
#include <stdbool.h>
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

/* An element of x whose x / d lands within Q8_TIE_WINDOW of a .5 boundary may round to
 * either neighbour on a GPU: WGSL (like Vulkan) lets an f32 division be off by a few ulp,
 * and the block scale amax / 127 and its reciprocal are divisions (measured: an NVIDIA H200
 * rounds a few such elements the other way). A few ulp of |x / d| <= 127 is below 1e-4. */
#define Q8_TIE_WINDOW 1e-4

static inline bool q8_near_tie(float x, float id) {
    double s = fabs((double)(x * id));
    return fabs(s - floor(s) - 0.5) < Q8_TIE_WINDOW;
}

/* slack[r]: how far row r of W x (Q4_0 rows, int8 x as above) may move when the near-tie
 * elements of x round the other way: the sum of |w_rj| d_x over them. */
static inline void matvec_q4_0_q8_tie_slack(const uint8_t *w, int64_t k, int64_t m, const float *x, double *slack) {
    int8_t *q = malloc((size_t)k);
    float *d = malloc(sizeof(float) * (size_t)(k / 32));
    quantize_x_q8_ref(x, k, q, d);
    const size_t rb = wg_type_row_bytes(WG_TYPE_Q4_0, k);
    for (int64_t r = 0; r < m; r++) slack[r] = 0.0;
    for (int64_t b = 0; b < k / 32; b++) {
        const float id = d[b] > 0.0f ? 1.0f / d[b] : 0.0f;
        for (int j = 0; j < 32; j++) {
            if (!q8_near_tie(x[b * 32 + j], id)) continue;
            for (int64_t r = 0; r < m; r++) {
                const uint8_t *blk = w + (size_t)r * rb + (size_t)b * 18;
                const double dw = wg_fp16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
                const int nib = j < 16 ? (blk[2 + j] & 15) : (blk[2 + j - 16] >> 4);
                slack[r] += fabs(dw * (double)(nib - 8)) * (double)d[b];
            }
        }
    }
    free(q);
    free(d);
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

/* slack[r] as matvec_q4_0_q8_tie_slack gives it, for rows of any quantized type. */
static inline void matvec_q8_tie_slack(uint32_t type, const uint8_t *w, int64_t k, int64_t m, const float *x,
                                       double *slack) {
    int8_t *q = malloc((size_t)k);
    float *d = malloc(sizeof(float) * (size_t)(k / 32)), *row = malloc(sizeof(float) * (size_t)k);
    quantize_x_q8_ref(x, k, q, d);
    const size_t rb = wg_type_row_bytes(type, k);
    for (int64_t r = 0; r < m; r++) {
        wg_dequantize_row(type, w + (size_t)r * rb, row, k);
        slack[r] = 0.0;
        for (int64_t i = 0; i < k; i++) {
            const float id = d[i / 32] > 0.0f ? 1.0f / d[i / 32] : 0.0f;
            if (q8_near_tie(x[i], id)) slack[r] += fabs((double)row[i]) * (double)d[i / 32];
        }
    }
    free(q);
    free(d);
    free(row);
}

/* y = W x for rows of any quantized type and int8 x: the row dequantized by the C
 * dequantizer (llama.cpp's values) times the int8 x, summed in double. */
static inline void matvec_q8_ref(uint32_t type, const uint8_t *w, int64_t k, int64_t m, const float *x, double *y) {
    int8_t *q = malloc((size_t)k);
    float *d = malloc(sizeof(float) * (size_t)(k / 32)), *row = malloc(sizeof(float) * (size_t)k);
    quantize_x_q8_ref(x, k, q, d);
    const size_t rb = wg_type_row_bytes(type, k);
    for (int64_t r = 0; r < m; r++) {
        wg_dequantize_row(type, w + (size_t)r * rb, row, k);
        double acc = 0.0;
        for (int64_t i = 0; i < k; i++) acc += (double)row[i] * (double)q[i] * (double)d[i / 32];
        y[r] = acc;
    }
    free(q);
    free(d);
    free(row);
}

#endif
