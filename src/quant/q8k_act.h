/* Activations rounded to 8 bits in super-blocks of 256 (llama.cpp's block_q8_K
 * layout), for integer dot products with the K-quant weight rows Q2_K, Q3_K, Q4_K,
 * Q5_K and Q6_K. Each row of x is rounded once per op (d = amax / 127, codes
 * rounded half away from zero, as wg_q8_quantize_row); bsums keep the sum of every
 * 16 codes, which pays the K-quants' minimums and code offsets per sub-block.
 *
 * Per weight super-block the kernels compute two exact int32 sums (the scaled
 * codes and the minimums) and add them into an f32 sum in block order with the
 * same f32 steps at every level, so every level and both entry points (one row
 * by one token, and the tile) give bit-identical results. Levels as q8_act.h. */
#ifndef WGLLM_QUANT_Q8K_ACT_H
#define WGLLM_QUANT_Q8K_ACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quant/q8_act.h"

/* One super-block of x: x[j] ~= d * qs[j]; bsums[i] = qs[16i] + ... + qs[16i + 15]. */
typedef struct wg_q8k_block {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
} wg_q8k_block;

/* Rounds x[0..n) (n a multiple of 256) into n / 256 blocks. Inf or NaN in a block
 * gives codes 0 and that block's d is NaN, so the dot products show it. */
void wg_q8k_quantize_row(const float *x, wg_q8k_block *dst, int64_t n);

/* wg_q8k_quantize_row at level `isa` (the same bits at every level; the portable one
 * where a level has none); NULL above wg_cpu_isa_best(). */
typedef void (*wg_q8k_quantize_fn)(const float *x, wg_q8k_block *dst, int64_t n);
wg_q8k_quantize_fn wg_q8k_quantizer(int isa);

/* sum_i row[i] * x[i] over nb weight super-blocks and nb blocks of x. */
typedef float (*wg_q8k_dot_fn)(const uint8_t *row, const wg_q8k_block *x, int64_t nb);

/* The largest tile: rows x tokens. Decoding a weight super-block costs about as
 * much as several tokens' integer sums: a 4 x 1024 x 2048 Q4_K tile on one thread ran
 * 51, 62 and 70 GMAC/s with 8, 16 and 32 tokens. */
enum { WG_Q8K_TILE_R = 4, WG_Q8K_TILE_T = 32 };

/* A tile of nr <= WG_Q8K_TILE_R weight rows (row r at w + r * w_stride bytes) by
 * nt <= WG_Q8K_TILE_T tokens (token t's nb blocks at x + t * x_stride):
 * out[t * ldo + r] = the dot of row r and token t, bit-identical to the dot kernel
 * of the same level. Each weight super-block is decoded once for the nt tokens. */
typedef void (*wg_q8k_tile_fn)(const uint8_t *w, size_t w_stride, int nr, const wg_q8k_block *x, size_t x_stride,
                               int nt, int64_t nb, float *out, size_t ldo);

/* The kernels of weight type `type` at level `isa`: false when the type has no
 * Q8_K kernel or the level is above wg_cpu_isa_best(). Either pointer may be NULL. */
bool wg_q8k_kernels(uint32_t type, int isa, wg_q8k_dot_fn *dot, wg_q8k_tile_fn *tile);

#endif
