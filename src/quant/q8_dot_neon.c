/* The int8 dot kernels for aarch64 Advanced SIMD; q8_dot_dotprod.c includes this
 * file again with WG_Q8_DOTPROD set (the build gives it the Armv8.2 dot product;
 * q8_act.c calls those only on CPUs with it). Per weight block, the 32 codes become
 * signed bytes (the nibbles less q4_0's and q5_0's bias, q8_0's bytes as stored),
 * so the block's integer dot needs no correction: sdot (vdotq_s32) at the dotprod
 * level, else widening byte products (|pair| <= 2 * 128 * 127 fits int16) added
 * pairwise into int32. The f32 steps are the scalar kernels' (wg_q8_block_scaled),
 * in block order, so every aarch64 level gives the scalar's bits. */
#if defined(__aarch64__) && (!defined(WG_Q8_DOTPROD) || defined(__ARM_FEATURE_DOTPROD))
#include <arm_neon.h>

#include "quant/q8_dot_block.h"
#include "quant/q8_kernels.h"

#if defined(WG_Q8_DOTPROD)
#define SFX(f) f##_dotprod
#else
#define SFX(f) f##_neon
#endif

/* The 5th bits of a q5 block for elements 16h .. 16h + 15, as 16 where set: byte j
 * takes byte j / 8 of the 16 bits, then tests its bit j % 8. */
static inline uint8x16_t fifth_bits(uint32_t qh, int h) {
    static const uint8_t k_bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t v = vcombine_u8(vdup_n_u8((uint8_t)(qh >> (16 * h))), vdup_n_u8((uint8_t)(qh >> (16 * h + 8))));
    return vandq_u8(vtstq_u8(v, vld1q_u8(k_bit)), vdupq_n_u8(16));
}

/* sum_j w_j * q_j over 32 signed byte pairs, exact in int32 */
static inline int32_t isum32(int8x16_t w0, int8x16_t w1, const int8_t *q) {
    const int8x16_t q0 = vld1q_s8(q), q1 = vld1q_s8(q + 16);
#if defined(WG_Q8_DOTPROD)
    return vaddvq_s32(vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, q0), w1, q1));
#else
    int16x8_t p0 = vmull_s8(vget_low_s8(w0), vget_low_s8(q0));
    int16x8_t p1 = vmull_s8(vget_low_s8(w1), vget_low_s8(q1));
    p0 = vmlal_s8(p0, vget_high_s8(w0), vget_high_s8(q0));
    p1 = vmlal_s8(p1, vget_high_s8(w1), vget_high_s8(q1));
    return vaddvq_s32(vpadalq_s16(vpaddlq_s16(p0), p1));
#endif
}

static inline float dot_rows(uint32_t type, const uint8_t *row, const wg_q8_block *x, int64_t nb) {
    const wg_q8_layout L = wg_q8_layout_of(type);
    const uint8x16_t lo4 = vdupq_n_u8(15), bias = vdupq_n_u8((uint8_t)L.bias);
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++, row += L.bytes) {
        int8x16_t w0, w1;
        if (type == WG_TYPE_Q8_0) {
            w0 = vld1q_s8((const int8_t *)(row + L.qs));
            w1 = vld1q_s8((const int8_t *)(row + L.qs + 16));
        } else {
            const uint8x16_t v = vld1q_u8(row + L.qs);
            uint8x16_t c0 = vandq_u8(v, lo4), c1 = vshrq_n_u8(v, 4);
            if (L.qh) {
                const uint32_t qh = wg_load_le32(row + L.qh);
                c0 = vorrq_u8(c0, fifth_bits(qh, 0));
                c1 = vorrq_u8(c1, fifth_bits(qh, 1));
            }
            w0 = vreinterpretq_s8_u8(vsubq_u8(c0, bias));
            w1 = vreinterpretq_s8_u8(vsubq_u8(c1, bias));
        }
        acc += wg_q8_block_scaled(L, row, x + b, isum32(w0, w1, x[b].q));
    }
    return acc;
}

float SFX(wg_q8_dot_q4_0)(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q4_0, row, x, nb); }
float SFX(wg_q8_dot_q4_1)(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q4_1, row, x, nb); }
float SFX(wg_q8_dot_q5_0)(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q5_0, row, x, nb); }
float SFX(wg_q8_dot_q5_1)(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q5_1, row, x, nb); }
float SFX(wg_q8_dot_q8_0)(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q8_0, row, x, nb); }
#else
typedef int wg_q8_dot_neon_unused; /* ISO C forbids an empty translation unit */
#endif
