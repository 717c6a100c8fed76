/* Internal to src/quant: byte loaders, the inline half decoder used by the hot
 * loops, and the per-format kernels that quant.c dispatches to. Every kernel
 * takes a count of whole blocks (nb) and raw bytes, so blocks need no alignment. */
#ifndef WGLLM_QUANT_BLOCKS_H
#define WGLLM_QUANT_BLOCKS_H

#include <stdint.h>
#include <string.h>

/* Bytes per 32-element block, as in ggml-common.h. */
enum {
    WG_QK = 32,
    WG_Q4_0_BYTES = 2 + 16,
    WG_Q4_1_BYTES = 2 + 2 + 16,
    WG_Q5_0_BYTES = 2 + 4 + 16,
    WG_Q5_1_BYTES = 2 + 2 + 4 + 16,
    WG_Q8_0_BYTES = 2 + 32,
};

/* GGUF data is little-endian whatever the host; byte-wise loads also cost
 * nothing on little-endian hosts (compilers merge them into one load). */
static inline uint16_t wg_load_le16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t wg_load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void wg_store_le16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

static inline void wg_store_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t wg_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float wg_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Exact half -> float without branches on the data, so that loops over many
 * halves vectorize: normals and inf/NaN are a shift plus an exponent rebias;
 * subnormals are mantissa * 2^-24, which a float holds exactly. */
static inline float wg_half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t em = h & 0x7fffu;
    uint32_t normal = (em << 13) + ((127u - 15u) << 23);
    if (em >= 0x7c00u) normal += (128u - 16u) << 23; /* exponent 31 -> 255 */
    const uint32_t sub = wg_f32_bits((float)em * 0x1p-24f);
    return wg_bits_f32(sign | (em < 0x400u ? sub : normal));
}

static inline float wg_bf16_bits_to_float(uint16_t h) {
    return wg_bits_f32((uint32_t)h << 16);
}

/* Sum of 8 lanes in a fixed order, so results do not depend on the compiler. */
static inline float wg_sum8(const float acc[8]) {
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

/* Per-format kernels (q4.c, q5.c, q8.c, float_rows.c). The *_dot_ref kernels are
 * the plain C reference; the *_dot kernels (dot_vec.c) are the same sums in
 * compiler vector types where the compiler has them, else the reference. */
void wg_q4_0_dequantize(const uint8_t *src, float *dst, int64_t nb);
void wg_q4_0_quantize(const float *src, uint8_t *dst, int64_t nb);
float wg_q4_0_dot_ref(const uint8_t *row, const float *x, int64_t nb);
float wg_q4_0_dot(const uint8_t *row, const float *x, int64_t nb);
void wg_q4_1_dequantize(const uint8_t *src, float *dst, int64_t nb);
void wg_q4_1_quantize(const float *src, uint8_t *dst, int64_t nb);
float wg_q4_1_dot_ref(const uint8_t *row, const float *x, int64_t nb);
float wg_q4_1_dot(const uint8_t *row, const float *x, int64_t nb);

void wg_q5_0_dequantize(const uint8_t *src, float *dst, int64_t nb);
void wg_q5_0_quantize(const float *src, uint8_t *dst, int64_t nb);
float wg_q5_0_dot_ref(const uint8_t *row, const float *x, int64_t nb);
float wg_q5_0_dot(const uint8_t *row, const float *x, int64_t nb);
void wg_q5_1_dequantize(const uint8_t *src, float *dst, int64_t nb);
void wg_q5_1_quantize(const float *src, uint8_t *dst, int64_t nb);
float wg_q5_1_dot_ref(const uint8_t *row, const float *x, int64_t nb);
float wg_q5_1_dot(const uint8_t *row, const float *x, int64_t nb);

void wg_q8_0_dequantize(const uint8_t *src, float *dst, int64_t nb);
void wg_q8_0_quantize(const float *src, uint8_t *dst, int64_t nb);
float wg_q8_0_dot_ref(const uint8_t *row, const float *x, int64_t nb);
float wg_q8_0_dot(const uint8_t *row, const float *x, int64_t nb);

/* Element-wise rows (n elements, no blocks). */
void wg_f16_dequantize(const uint8_t *src, float *dst, int64_t n);
void wg_f16_quantize(const float *src, uint8_t *dst, int64_t n);
float wg_f16_dot_ref(const uint8_t *row, const float *x, int64_t n);
float wg_f16_dot(const uint8_t *row, const float *x, int64_t n);
void wg_bf16_dequantize(const uint8_t *src, float *dst, int64_t n);
void wg_bf16_quantize(const float *src, uint8_t *dst, int64_t n);
float wg_bf16_dot_ref(const uint8_t *row, const float *x, int64_t n);
float wg_bf16_dot(const uint8_t *row, const float *x, int64_t n);
float wg_f32_dot_ref(const uint8_t *row, const float *x, int64_t n);
float wg_f32_dot(const uint8_t *row, const float *x, int64_t n);

#if defined(WGLLM_X86_AVX2_DOTS)
/* The same kernels built for AVX2 + FMA (dot_vec_avx2.c); only call them when
 * the CPU has both. */
float wg_q4_0_dot_avx2(const uint8_t *row, const float *x, int64_t nb);
float wg_q4_1_dot_avx2(const uint8_t *row, const float *x, int64_t nb);
float wg_q5_0_dot_avx2(const uint8_t *row, const float *x, int64_t nb);
float wg_q5_1_dot_avx2(const uint8_t *row, const float *x, int64_t nb);
float wg_q8_0_dot_avx2(const uint8_t *row, const float *x, int64_t nb);
float wg_f16_dot_avx2(const uint8_t *row, const float *x, int64_t n);
float wg_bf16_dot_avx2(const uint8_t *row, const float *x, int64_t n);
float wg_f32_dot_avx2(const uint8_t *row, const float *x, int64_t n);
void wg_f32_dot4_avx2(const float *w, const float *x, int64_t stride, int64_t n, float out[4]);
#endif
void wg_f32_dot4(const float *w, const float *x, int64_t stride, int64_t n, float out[4]);

/* (int)v clamped to [0, hi], as ggml's MIN(hi, (int8_t)v) for the values its
 * quantizers produce, but defined for NaN and out-of-range input too. */
static inline int wg_trunc_clamp(float v, int hi) {
    if (!(v > 0.0f)) return 0;
    if (v >= (float)hi) return hi;
    return (int)v;
}

#endif
