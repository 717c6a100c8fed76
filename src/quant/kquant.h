/* Internal to src/quant: the K-quant super-block formats of ggml-common.h
 * (QK_K = 256 elements a block) and their kernels. Byte layouts:
 *
 *   q2_k  84 B: u8 scales[16] (low nibble: scale, high: min, per 16 elements),
 *               u8 qs[64] (2-bit codes), f16 d, f16 dmin
 *               value = d*sc * q - dmin*m
 *   q3_k 110 B: u8 hmask[32] (3rd bit), u8 qs[64] (low 2 bits),
 *               u8 scales[12] (16 signed 6-bit scales, +32), f16 d
 *               value = d*(sc-32) * (q - (hmask bit ? 0 : 4))
 *   q4_k 144 B: f16 d, f16 dmin, u8 scales[12] (8 scales + 8 mins, 6 bits each),
 *               u8 qs[128] (4-bit codes)       value = d*sc * q - dmin*m
 *   q5_k 176 B: f16 d, f16 dmin, u8 scales[12], u8 qh[32] (5th bit), u8 qs[128]
 *   q6_k 210 B: u8 ql[128] (low 4 bits), u8 qh[64] (high 2 bits),
 *               i8 scales[16], f16 d         value = d*sc * (q - 32)
 *   q8_k 292 B: f32 d, i8 qs[256], i16 bsums[16] (sums of 16 codes)
 *
 * Code positions (element e of a block; every scale covers 16 or 32
 * consecutive elements, index e/16 or e/32):
 *   q2_k/q3_k: bits 2*((e%128)/32) of qs[32*(e/128) + e%32]; q3_k's 3rd bit is
 *              bit e/32 of hmask[e%32]
 *   q4_k/q5_k: qs[32*(e/64) + e%32], low nibble when (e%64) < 32, else high;
 *              q5_k's 5th bit is bit e/32 of qh[e%32]
 *   q6_k: low nibble of ql[64*(e/128) + e%64] when (e%128) < 64, else high;
 *         2 bits at 2*((e%128)/32) of qh[32*(e/128) + e%32]
 */
#ifndef WGLLM_QUANT_KQUANT_H
#define WGLLM_QUANT_KQUANT_H

#include <stdint.h>

enum {
    WG_QK_K = 256,
    WG_Q2_K_BYTES = 16 + 64 + 2 + 2,
    WG_Q3_K_BYTES = 32 + 64 + 12 + 2,
    WG_Q4_K_BYTES = 2 + 2 + 12 + 128,
    WG_Q5_K_BYTES = 2 + 2 + 12 + 32 + 128,
    WG_Q6_K_BYTES = 128 + 64 + 16 + 2,
    WG_Q8_K_BYTES = 4 + 256 + 32,
};

/* 6-bit scale j (0..7) and min of the 12-byte q4_k/q5_k scale array. */
static inline void wg_k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Signed scale j (0..15) of the 12-byte q3_k scale array: -32..31. */
static inline int wg_k3_scale(int j, const uint8_t *s) {
    const int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

/* Dequantizers (kquant_dequant.c): nb whole blocks. */
void wg_q2_k_dequantize(const uint8_t *src, float *dst, int64_t nb);
void wg_q3_k_dequantize(const uint8_t *src, float *dst, int64_t nb);
void wg_q4_k_dequantize(const uint8_t *src, float *dst, int64_t nb);
void wg_q5_k_dequantize(const uint8_t *src, float *dst, int64_t nb);
void wg_q6_k_dequantize(const uint8_t *src, float *dst, int64_t nb);
void wg_q8_k_dequantize(const uint8_t *src, float *dst, int64_t nb);

/* Quantizers (kquant_quantize.c), one row of nb blocks. qw: importance of each
 * of the row's nb*256 columns, or NULL for llama.cpp's *_ref quantizer. */
void wg_q2_k_quantize(const float *src, uint8_t *dst, int64_t nb, const float *qw);
void wg_q3_k_quantize(const float *src, uint8_t *dst, int64_t nb, const float *qw);
void wg_q4_k_quantize(const float *src, uint8_t *dst, int64_t nb, const float *qw);
void wg_q5_k_quantize(const float *src, uint8_t *dst, int64_t nb, const float *qw);
void wg_q6_k_quantize(const float *src, uint8_t *dst, int64_t nb, const float *qw);
void wg_q8_k_quantize(const float *src, uint8_t *dst, int64_t nb);

/* Weighted quantizers of the 32-element formats (llama.cpp's quantize_row_*_impl),
 * n = row length; used when an importance matrix is given. */
void wg_q4_0_quantize_weighted(const float *src, uint8_t *dst, int64_t n, const float *qw);
void wg_q4_1_quantize_weighted(const float *src, uint8_t *dst, int64_t n, const float *qw);
void wg_q5_0_quantize_weighted(const float *src, uint8_t *dst, int64_t n, const float *qw);
void wg_q5_1_quantize_weighted(const float *src, uint8_t *dst, int64_t n, const float *qw);

/* Scale solvers shared by the quantizers (kquant_solvers.c), as in ggml-quants.c. */
int wg_nearest_int(float v);
float wg_make_qx_quants(int n, int nmax, const float *x, int8_t *L, int rmse_type, const float *qw);
float wg_make_q3_quants(int n, int nmax, const float *x, int8_t *L, int do_rmse);
float wg_make_qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min,
                          uint8_t *Laux, float rmin, float rdelta, int nstep, int use_mad);
float wg_make_qkx3_quants(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min,
                          uint8_t *Laux, float rmin, float rdelta, int nstep, int use_mad);
float wg_make_qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *qw);

/* Dot products with f32 activations (kquant_dot.c): sum of row * x over nb blocks. */
float wg_q2_k_dot(const uint8_t *row, const float *x, int64_t nb);
float wg_q3_k_dot(const uint8_t *row, const float *x, int64_t nb);
float wg_q4_k_dot(const uint8_t *row, const float *x, int64_t nb);
float wg_q5_k_dot(const uint8_t *row, const float *x, int64_t nb);
float wg_q6_k_dot(const uint8_t *row, const float *x, int64_t nb);
float wg_q8_k_dot(const uint8_t *row, const float *x, int64_t nb);
#if defined(WGLLM_X86_AVX2_DOTS)
float wg_q2_k_dot_avx2(const uint8_t *row, const float *x, int64_t nb);
float wg_q3_k_dot_avx2(const uint8_t *row, const float *x, int64_t nb);
float wg_q4_k_dot_avx2(const uint8_t *row, const float *x, int64_t nb);
float wg_q5_k_dot_avx2(const uint8_t *row, const float *x, int64_t nb);
float wg_q6_k_dot_avx2(const uint8_t *row, const float *x, int64_t nb);
float wg_q8_k_dot_avx2(const uint8_t *row, const float *x, int64_t nb);
#endif

#endif
