/* Block formats bit-compatible with llama.cpp (ggml-quants.c): dequantize,
 * reference quantize and dot products, portable C. Every function works on one
 * row whose length n is a multiple of the type's block size (types.h). */
#ifndef WGLLM_QUANT_H
#define WGLLM_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "quant/types.h"

/* IEEE half and bfloat16 conversions (round-to-nearest-even, NaN preserved). */
float wg_fp16_to_f32(uint16_t h);
uint16_t wg_f32_to_fp16(float f);
float wg_bf16_to_f32(uint16_t h);
uint16_t wg_f32_to_bf16(float f);

/* dst[0..n) = values of the row. False if the type is unsupported. */
bool wg_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Reference quantizer: same bytes as llama.cpp's quantize_row_*_ref.
 * Supported targets: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
 * Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K. */
bool wg_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* Same, with importance weights qw[0..n) of the row's columns (NULL: as
 * wg_quantize_row): llama.cpp's quantize_*_impl for Q4_0..Q5_1 and the
 * K-quants; F32, F16, BF16, Q8_0 and Q8_K ignore qw. */
bool wg_quantize_row_weighted(uint32_t type, const float *src, void *dst, int64_t n, const float *qw);

/* sum_i row[i] * x[i] with x in f32. Accumulates in f32 per block, like ggml's
 * scalar paths; the row is never expanded to memory. */
float wg_vec_dot_f32(uint32_t type, const void *row, const float *x, int64_t n);

/* out[t] = sum_i w[i] * x[t * x_stride + i] for t = 0..3 (f32 row w of length n):
 * the batched matmul's kernel, which reads the row once for four tokens. */
void wg_vec_dot4_f32(const float *w, const float *x, int64_t x_stride, int64_t n, float out[4]);

#endif
