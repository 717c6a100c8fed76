/* Q4_K and Q6_K weights repacked sixteen rows at a time, for the CPU's int8 matmul on Q8_K
 * activations (src/quant/q8k_act.h); the K-quant counterpart of q8_x16.h.
 *
 * Per super-block of 256 values, the sixteen rows' fields lie together so that one
 * 32-bit vector lane follows one row:
 *   d[16], dmin[16]  f16 (64 bytes);
 *   sc[8][16]        u8, the 6-bit scale of sub-block j of row r at sc[j][r] (128 bytes);
 *   mn[4][16][2]     u8, the 6-bit minimums of sub-blocks 2p and 2p+1 of row r (128 bytes);
 *   32 steps of 64 bytes: step s holds bytes 4s..4s+3 of each row's 128 code bytes (row r
 *   at 4r), whose low nibbles are elements 64(s/8) + 4(s%8)..+3 (sub-block 2(s/8)) and
 *   high nibbles the same places of sub-block 2(s/8)+1.
 * 2,368 bytes against 2,304 in the file (2.8% more). Per super-block and token, all
 * in int32 lanes: isum = sum_j sc_j * (codes of sub-block j . x), msum = sum_j mn_j *
 * (sum of x over sub-block j), then acc += d*dx * isum - dmin*dx * msum in f32.
 *
 * Q6_K, per super-block, in the order the kernel reads it:
 *   d[16]            f16 (32 bytes);
 *   sc[16][16]       i8, scale j of row r at sc[j][r] (256 bytes);
 *   16 x 3 steps of 64 bytes, three per scale j (values 16j..16j+15): byte 4r + i of
 *   step m < 3 holds row r's 6-bit code of value 16j + 4m + i in bits 0-5, and in bits
 *   6-7 bits 2m, 2m+1 of the code of value 16j + 12 + i. The fourth step's codes take
 *   three shifts, two ternary-logic selects and an AND; the others one AND.
 * 3,360 bytes against 3,360 in the file. Per scale: p = -32 * (x's sum over its 16
 * values) + codes . x, isum += sc_j * p, then acc += d*dx * isum. */
#ifndef WGLLM_QUANT_Q8K_X16_H
#define WGLLM_QUANT_Q8K_X16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quant/q8k_act.h"

/* True for the weight types that have this layout (q4_k, q6_k). */
bool wg_q8k_x16_type(uint32_t type);

/* Bytes of one group of sixteen rows of ne0 values (ne0 a multiple of 256). */
size_t wg_q8k_x16_group_bytes(uint32_t type, int64_t ne0);

/* Repacks rows (a multiple of 16) rows of ne0 values from the file's layout into dst
 * (rows / 16 groups). */
void wg_q8k_x16_pack(uint32_t type, const uint8_t *src, uint8_t *dst, int64_t ne0, int64_t rows);

/* Super-block b of row `row` back in the file's layout (144 bytes for q4_k, 210 for q6_k). */
void wg_q8k_x16_unpack_block(uint32_t type, const uint8_t *packed, int64_t row, int64_t ne0, int64_t b,
                             uint8_t *dst);

/* out[t * out_stride + r] = dot(row r of the group, x row t) for r < 16, t < nt; x row
 * t is the nb super-blocks at x + t * x_stride. */
typedef void (*wg_q8k_x16_fn)(const uint8_t *group, const wg_q8k_block *x, int64_t x_stride, int nt, int64_t nb,
                              float *out, int64_t out_stride);

/* The kernel of `type` at level `isa`: NULL when there is none (not a repacked type,
 * a level without one (AVX2, aarch64's: the weights stay as stored), or above wg_cpu_isa_best()). */
wg_q8k_x16_fn wg_q8k_x16_kernel(uint32_t type, int isa);

#endif
