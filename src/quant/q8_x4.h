/* Q4_0 and Q8_0 weights repacked four rows at a time, for the CPU's int8 matmul.
 *
 * In the file's layout each row is its own run of blocks, so one weight block is
 * 16 (q4_0) or 32 (q8_0) bytes of codes after its 2-byte scale, and a kernel that
 * wants several rows gathers small pieces from far apart. The "x4" layout keeps
 * block b of four consecutive rows together: the four f16 scales (8 bytes), then
 * the four rows' codes one after the other (4 x 16 or 4 x 32 bytes). One vector
 * load then holds block b of four rows, their scales convert in one step, and a
 * block of x is read once for four rows. It has the same size as the original.
 *
 * The matmul computes four rows for up to many tokens per call: each weight block
 * is unpacked once and reused for every token of the tile. The integer block sums
 * are exact and the same at every level (as for wg_q8_dot_kernel), only the f32
 * sum of the scaled blocks may round differently. */
#ifndef WGLLM_QUANT_Q8_X4_H
#define WGLLM_QUANT_Q8_X4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quant/q8_act.h"

/* True for the weight types that have the x4 layout (q4_0, q8_0). */
bool wg_x4_type(uint32_t type);

/* Bytes of one group of four rows of ne0 values (ne0 a multiple of 32). */
size_t wg_x4_group_bytes(uint32_t type, int64_t ne0);

/* Repacks rows (a multiple of 4) rows of ne0 values from the file's layout. */
void wg_x4_pack(uint32_t type, const uint8_t *src, uint8_t *dst, int64_t ne0, int64_t rows);

/* Row `row` of packed data back in the file's layout (wg_type_row_bytes(type, ne0) bytes). */
void wg_x4_unpack_row(uint32_t type, const uint8_t *packed, int64_t row, int64_t ne0, uint8_t *dst);

/* The x4 kernels take x's codes offset to unsigned (q + 128, stored in wg_q8_block.q), so
 * that the weights can be the signed operand of the byte products. Converts blocks made by
 * wg_q8_quantize_row (and back: applying it twice restores them). */
void wg_x4_offset_x(wg_q8_block *x, int64_t n_blocks);

/* out[t * out_stride + i] = dot(row i of the group, x row t) for i < 4, t < nt, where
 * x row t is the nb blocks at x + t * x_stride, its codes offset by wg_x4_offset_x. */
typedef void (*wg_x4_matmul_fn)(const uint8_t *group, const wg_q8_block *x, int64_t x_stride, int nt, int64_t nb,
                                float *out, int64_t out_stride);

/* The kernel of `type` at level `isa`; NULL when there is none (not an x4 type, or a
 * level above wg_cpu_isa_best()). */
wg_x4_matmul_fn wg_x4_matmul_kernel(uint32_t type, int isa);

#endif
