/* The int8 dot kernels for wasm32 SIMD128 (built where the compiler targets it,
 * -msimd128; the level is then always there, as the engine's module cannot load
 * without it). Per weight block, the 32 codes become signed bytes (the nibbles less
 * q4_0's and q5_0's bias, q8_0's bytes as stored), so the block's integer dot needs no
 * correction: the bytes widened to int16 and multiplied pairwise into int32
 * (i32x4.dot_i16x8_s, pmaddwd on x86; 8% faster in Node than i16x8.extmul then
 * i32x4.extadd_pairwise). The f32 steps are the scalar kernels' (wg_q8_block_scaled),
 * in block order, so the level gives the scalar's bits. Four blocks' sums reduced
 * together and scaled as one f32x4 measured 20% slower. Relaxed SIMD's byte dot is
 * left out: Node 18-20 have it only behind a flag. */
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>

#include "quant/q8_dot_block.h"
#include "quant/q8_kernels.h"

/* The 5th bits of a q5 block for elements 16h .. 16h + 15, as 16 where set: byte j
 * takes byte 2h + j / 8 of qh, then tests its bit j % 8. */
static inline v128_t fifth_bits(v128_t qh, int h) {
    const v128_t bit = wasm_u8x16_make(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
    const v128_t idx = h ? wasm_u8x16_make(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)
                         : wasm_u8x16_make(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const v128_t set = wasm_i8x16_eq(wasm_v128_and(wasm_i8x16_swizzle(qh, idx), bit), bit);
    return wasm_v128_and(set, wasm_u8x16_splat(16));
}

/* sum_j w_j * q_j over 16 signed byte pairs, as four int32 lanes (exact) */
static inline v128_t isum16(v128_t w, v128_t q) {
    return wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w), wasm_i16x8_extend_low_i8x16(q)),
                          wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w), wasm_i16x8_extend_high_i8x16(q)));
}

static inline int32_t isum32(v128_t w0, v128_t w1, const int8_t *q) {
    const v128_t s = wasm_i32x4_add(isum16(w0, wasm_v128_load(q)), isum16(w1, wasm_v128_load(q + 16)));
    const v128_t t = wasm_i32x4_add(s, wasm_i32x4_shuffle(s, s, 2, 3, 0, 1));
    return wasm_i32x4_extract_lane(t, 0) + wasm_i32x4_extract_lane(t, 1);
}

static inline float dot_rows(uint32_t type, const uint8_t *row, const wg_q8_block *x, int64_t nb) {
    const wg_q8_layout L = wg_q8_layout_of(type);
    const v128_t lo4 = wasm_u8x16_splat(15), bias = wasm_u8x16_splat((uint8_t)L.bias);
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++, row += L.bytes) {
        v128_t w0, w1;
        if (type == WG_TYPE_Q8_0) {
            w0 = wasm_v128_load(row + L.qs);
            w1 = wasm_v128_load(row + L.qs + 16);
        } else {
            const v128_t v = wasm_v128_load(row + L.qs);
            v128_t c0 = wasm_v128_and(v, lo4), c1 = wasm_u8x16_shr(v, 4);
            if (L.qh) {
                const v128_t qh = wasm_i32x4_splat((int32_t)wg_load_le32(row + L.qh));
                c0 = wasm_v128_or(c0, fifth_bits(qh, 0));
                c1 = wasm_v128_or(c1, fifth_bits(qh, 1));
            }
            w0 = wasm_i8x16_sub(c0, bias);
            w1 = wasm_i8x16_sub(c1, bias);
        }
        acc += wg_q8_block_scaled(L, row, x + b, isum32(w0, w1, x[b].q));
    }
    return acc;
}

float wg_q8_dot_q4_0_simd128(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q4_0, row, x, nb); }
float wg_q8_dot_q4_1_simd128(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q4_1, row, x, nb); }
float wg_q8_dot_q5_0_simd128(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q5_0, row, x, nb); }
float wg_q8_dot_q5_1_simd128(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q5_1, row, x, nb); }
float wg_q8_dot_q8_0_simd128(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q8_0, row, x, nb); }
#else
typedef int wg_q8_dot_simd128_unused; /* ISO C forbids an empty translation unit */
#endif
