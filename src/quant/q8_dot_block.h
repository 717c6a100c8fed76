/* Internal to src/quant: where the fields of the 32-element weight blocks lie, and
 * the exact integer dot of one weight block with one wg_q8_block, which the scalar
 * kernels use and the vector kernels take for their odd tail blocks. */
#ifndef WGLLM_QUANT_Q8_DOT_BLOCK_H
#define WGLLM_QUANT_Q8_DOT_BLOCK_H

#include "quant/blocks.h"
#include "quant/q8_act.h"
#include "quant/types.h"

/* Block geometry of a weight type (ggml-common.h): bytes, offset of the codes (qs),
 * of the 5th bits (qh, 0 if none) and of the minimum m (0 if none); `bias` is what
 * the code of wg_q8_codes exceeds the signed value by (q4_0: 8, q5_0: 16, q8_0: 128; the vector kernels
 * take q8_0's signed bytes as they are, as |w| times q with w's sign, and skip its bias). */
typedef struct {
    int bytes, qs, qh, m, bias;
} wg_q8_layout;

static inline wg_q8_layout wg_q8_layout_of(uint32_t type) {
    switch (type) {
    case WG_TYPE_Q4_0: return (wg_q8_layout){WG_Q4_0_BYTES, 2, 0, 0, 8};
    case WG_TYPE_Q4_1: return (wg_q8_layout){WG_Q4_1_BYTES, 4, 0, 2, 0};
    case WG_TYPE_Q5_0: return (wg_q8_layout){WG_Q5_0_BYTES, 6, 2, 0, 16};
    case WG_TYPE_Q5_1: return (wg_q8_layout){WG_Q5_1_BYTES, 8, 4, 2, 0};
    default: return (wg_q8_layout){WG_Q8_0_BYTES, 2, 0, 0, 128}; /* q8_0, codes read as w + 128 */
    }
}

/* The block's codes as unsigned bytes, in element order: the stored nibbles (and 5th
 * bits), q8_0's signed bytes plus 128. Unsigned times signed bytes is also the one
 * form that GCC 12 vectorizes correctly with AVX-512 VNNI: a signed-by-signed byte sum
 * here became vpdpbusd (unsigned by signed) in the VNNI file, found by test_cpu_q8_dot.
 * Plain loops over the whole block, which compilers vectorize. */
static inline void wg_q8_codes(uint32_t type, wg_q8_layout L, const uint8_t *blk, uint8_t c[32]) {
    const uint8_t *qs = blk + L.qs;
    if (type == WG_TYPE_Q8_0) {
        for (int j = 0; j < 32; j++) c[j] = qs[j] ^ 0x80;
        return;
    }
    for (int j = 0; j < 16; j++) {
        c[j] = qs[j] & 15;
        c[j + 16] = qs[j] >> 4;
    }
    if (L.qh) {
        const uint32_t qh = wg_load_le32(blk + L.qh);
        for (int j = 0; j < 32; j++) c[j] |= (uint8_t)(((qh >> j) & 1u) << 4);
    }
}

/* sum_j code_j * q_j - bias * sum: the block's dot in integers (|value| < 2^20). */
static inline int32_t wg_q8_block_isum(uint32_t type, wg_q8_layout L, const uint8_t *blk, const wg_q8_block *x) {
    uint8_t c[32];
    wg_q8_codes(type, L, blk, c);
    int32_t s = 0;
    for (int j = 0; j < 32; j++) s += c[j] * x->q[j];
    return s - L.bias * x->sum;
}

/* The block's value in f32: isum * (dw * dx), plus m * (dx * sum) for the formats
 * with a minimum. */
static inline float wg_q8_block_dot(uint32_t type, wg_q8_layout L, const uint8_t *blk, const wg_q8_block *x) {
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* as GCC in ISO C mode, so wg_q8_block_scaled gives the same bits */
#endif
    const float dw = wg_half_to_float(wg_load_le16(blk));
    float v = (float)wg_q8_block_isum(type, L, blk, x) * (dw * x->d);
    if (L.m) v += wg_half_to_float(wg_load_le16(blk + L.m)) * (x->d * (float)x->sum);
    return v;
}

/* wg_q8_block_dot's f32 steps on an integer dot isum computed elsewhere: kernels that
 * only compute isum differently (aarch64's) give the scalar kernels' bits. */
static inline float wg_q8_block_scaled(wg_q8_layout L, const uint8_t *blk, const wg_q8_block *x, int32_t isum) {
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif
    const float dw = wg_half_to_float(wg_load_le16(blk));
    float v = (float)isum * (dw * x->d);
    if (L.m) v += wg_half_to_float(wg_load_le16(blk + L.m)) * (x->d * (float)x->sum);
    return v;
}

#endif
