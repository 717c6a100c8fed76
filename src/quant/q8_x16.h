/* Q4_0 and Q8_0 weights repacked sixteen rows at a time, for the CPU's int8 matmul.
 *
 * In the file's layout each row is its own run of blocks. The "x16" layout keeps block
 * b of sixteen consecutive rows together, so that one 32-bit vector lane follows one
 * row: the sixteen f16 scales (32 bytes), then steps of 64 bytes, each holding 4 code
 * bytes of every row (row r at bytes 4r..4r+3 of the step):
 *   q4_0: 4 steps; step g has the row's stored bytes 4g..4g+3, whose low nibbles are
 *         elements 4g..4g+3 and high nibbles elements 16+4g..16+4g+3;
 *   q8_0: 8 steps; step g has elements 4g..4g+3, stored plus 128 (unsigned).
 * It has the same size as the original. A byte dot of a step with four codes of x
 * (broadcast) then gives sixteen rows' partial sums at once, a block's steps add up in
 * int32 lane by lane, and the block is scaled once per sixteen rows.
 *
 * The matmul computes sixteen rows for many tokens per call: each weight block is
 * unpacked once and reused for every token of a tile. The integer block sums are exact
 * and the same at every level (as for wg_q8_dot_kernel); only the f32 sum of the scaled
 * blocks may round differently, and a row's result does not depend on the batch. */
#ifndef WGLLM_QUANT_Q8_X16_H
#define WGLLM_QUANT_Q8_X16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quant/q8_act.h"

enum { WG_X16_ROWS = 16 };

/* True for the weight types that have the x16 layout (q4_0, q8_0). */
bool wg_x16_type(uint32_t type);

/* Bytes of one group of sixteen rows of ne0 values (ne0 a multiple of 32). */
size_t wg_x16_group_bytes(uint32_t type, int64_t ne0);

/* Repacks rows (a multiple of 16) rows of ne0 values from the file's layout. */
void wg_x16_pack(uint32_t type, const uint8_t *src, uint8_t *dst, int64_t ne0, int64_t rows);

/* Row `row` of packed data back in the file's layout (wg_type_row_bytes(type, ne0) bytes). */
void wg_x16_unpack_row(uint32_t type, const uint8_t *packed, int64_t row, int64_t ne0, uint8_t *dst);

/* Block b of row `row` back in the file's layout (wg_type_row_bytes(type, 32) bytes). */
void wg_x16_unpack_block(uint32_t type, const uint8_t *packed, int64_t row, int64_t ne0, int64_t b, uint8_t *dst);

/* out[t * out_stride + r] = dot(row r of the group, x row t) for r < 16, t < nt, where
 * x row t is the nb blocks at x + t * x_stride (as wg_q8_quantize_row makes them). */
typedef void (*wg_x16_matmul_fn)(const uint8_t *group, const wg_q8_block *x, int64_t x_stride, int nt, int64_t nb,
                                 float *out, int64_t out_stride);

/* The kernel of `type` at level `isa`; NULL when there is none (not an x16 type, a
 * level without one (aarch64's: the weights stay as stored), or a level above
 * wg_cpu_isa_best()). */
wg_x16_matmul_fn wg_x16_matmul_kernel(uint32_t type, int isa);

#endif
