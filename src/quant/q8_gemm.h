/* The prompt matmul on int8 activations: W (rows of Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0
 * blocks) times n rows of x rounded to wg_q8_block. A tile of 8 or 16 weight rows by
 * up to 4-8 tokens: each stretch of weight blocks is decoded once per 8 rows (nibbles
 * unpacked, 5th bits merged, 8 rows interleaved 4 codes at a time so that one vector
 * lane holds one row) and reused for every token; each block of x is reused for all
 * rows of the tile.
 *
 * Every level gives bit for bit what the scalar dot kernels of q8_act.h give, for
 * any n: each lane sums its row's blocks in block order with the same f32 steps
 * (no fused multiply-add), so a row's result does not depend on the batch it is in. */
#ifndef WGLLM_QUANT_Q8_GEMM_H
#define WGLLM_QUANT_Q8_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "quant/q8_act.h"

/* Rows of the largest tile: split W between threads in multiples of this. */
enum { WG_Q8_GEMM_ROWS = 16 };

/* out[t * ldo + r] = sum_i row_r[i] * x_t[i] for r in [0, rows), t in [0, n): row r
 * at w + r * row_bytes (nb weight blocks), x_t at x + t * nb. */
typedef void (*wg_q8_gemm_fn)(const uint8_t *w, size_t row_bytes, int64_t rows, const wg_q8_block *x, int64_t nb,
                              int n, float *out, int64_t ldo);

/* The kernel of weight type `type` at level `isa`; NULL when the type has no int8
 * kernel or the level is above wg_cpu_isa_best(). */
wg_q8_gemm_fn wg_q8_gemm_kernel(uint32_t type, int isa);

/* wg_q8_quantize_row at level `isa` (bit for bit the same blocks at every level). */
typedef void (*wg_q8_quantize_fn)(const float *x, wg_q8_block *dst, int64_t n);
wg_q8_quantize_fn wg_q8_quantize_kernel(int isa);

#endif
