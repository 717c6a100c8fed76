/* Row-level entry points: check the arguments, then hand whole blocks to the
 * kernel of the type (q4.c, q5.c, q8.c, float_rows.c; dots in dot_vec.c). */
#include "quant/quant.h"

#include <math.h>

#include "quant/blocks.h"
#include "quant/kquant.h"

/* True when n is a usable row length for `type`; *nb gets its block count. */
static bool row_blocks(uint32_t type, int64_t n, int64_t *nb) {
    int64_t bs = 0;
    if (!wg_type_supported(type) || !wg_type_traits(type, &bs, NULL)) return false;
    if (n < 0 || n % bs != 0) return false;
    *nb = n / bs;
    return true;
}

bool wg_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n) {
    int64_t nb = 0;
    if (!row_blocks(type, n, &nb)) return false;
    if (nb > 0 && (!src || !dst)) return false;
    const uint8_t *s = src;
    switch (type) {
    case WG_TYPE_F32: if (nb > 0) memcpy(dst, s, (size_t)nb * sizeof(float)); return true;
    case WG_TYPE_F16: wg_f16_dequantize(s, dst, nb); return true;
    case WG_TYPE_BF16: wg_bf16_dequantize(s, dst, nb); return true;
    case WG_TYPE_Q4_0: wg_q4_0_dequantize(s, dst, nb); return true;
    case WG_TYPE_Q4_1: wg_q4_1_dequantize(s, dst, nb); return true;
    case WG_TYPE_Q5_0: wg_q5_0_dequantize(s, dst, nb); return true;
    case WG_TYPE_Q5_1: wg_q5_1_dequantize(s, dst, nb); return true;
    case WG_TYPE_Q8_0: wg_q8_0_dequantize(s, dst, nb); return true;
    case WG_TYPE_Q2_K: wg_q2_k_dequantize(s, dst, nb); return true;
    case WG_TYPE_Q3_K: wg_q3_k_dequantize(s, dst, nb); return true;
    case WG_TYPE_Q4_K: wg_q4_k_dequantize(s, dst, nb); return true;
    case WG_TYPE_Q5_K: wg_q5_k_dequantize(s, dst, nb); return true;
    case WG_TYPE_Q6_K: wg_q6_k_dequantize(s, dst, nb); return true;
    case WG_TYPE_Q8_K: wg_q8_k_dequantize(s, dst, nb); return true;
    default: return false;
    }
}

bool wg_quantize_row(uint32_t type, const float *src, void *dst, int64_t n) {
    return wg_quantize_row_weighted(type, src, dst, n, NULL);
}

bool wg_quantize_row_weighted(uint32_t type, const float *src, void *dst, int64_t n, const float *qw) {
    int64_t nb = 0;
    if (!row_blocks(type, n, &nb)) return false;
    if (nb > 0 && (!src || !dst)) return false;
    uint8_t *d = dst;
    if (qw && nb > 0) {
        switch (type) {
        case WG_TYPE_Q4_0: wg_q4_0_quantize_weighted(src, d, n, qw); return true;
        case WG_TYPE_Q4_1: wg_q4_1_quantize_weighted(src, d, n, qw); return true;
        case WG_TYPE_Q5_0: wg_q5_0_quantize_weighted(src, d, n, qw); return true;
        case WG_TYPE_Q5_1: wg_q5_1_quantize_weighted(src, d, n, qw); return true;
        default: break; /* the others take qw below or have no weighted form */
        }
    }
    switch (type) {
    case WG_TYPE_F32: if (nb > 0) memcpy(d, src, (size_t)nb * sizeof(float)); return true;
    case WG_TYPE_F16: wg_f16_quantize(src, d, nb); return true;
    case WG_TYPE_BF16: wg_bf16_quantize(src, d, nb); return true;
    case WG_TYPE_Q4_0: wg_q4_0_quantize(src, d, nb); return true;
    case WG_TYPE_Q4_1: wg_q4_1_quantize(src, d, nb); return true;
    case WG_TYPE_Q5_0: wg_q5_0_quantize(src, d, nb); return true;
    case WG_TYPE_Q5_1: wg_q5_1_quantize(src, d, nb); return true;
    case WG_TYPE_Q8_0: wg_q8_0_quantize(src, d, nb); return true;
    case WG_TYPE_Q2_K: wg_q2_k_quantize(src, d, nb, qw); return true;
    case WG_TYPE_Q3_K: wg_q3_k_quantize(src, d, nb, qw); return true;
    case WG_TYPE_Q4_K: wg_q4_k_quantize(src, d, nb, qw); return true;
    case WG_TYPE_Q5_K: wg_q5_k_quantize(src, d, nb, qw); return true;
    case WG_TYPE_Q6_K: wg_q6_k_quantize(src, d, nb, qw); return true;
    case WG_TYPE_Q8_K: wg_q8_k_quantize(src, d, nb); return true;
    default: return false;
    }
}

#if defined(WGLLM_X86_AVX2_DOTS)
static bool cpu_has_avx2_fma(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#define DOT(f) (cpu_has_avx2_fma() ? f##_avx2 : f)
#else
#define DOT(f) f
#endif

/* An unsupported type or a bad length gives NaN, which no real dot produces
 * from finite data, so a caller that skipped wg_type_supported() notices. */
float wg_vec_dot_f32(uint32_t type, const void *row, const float *x, int64_t n) {
    int64_t nb = 0;
    if (!row_blocks(type, n, &nb)) return NAN;
    if (nb == 0) return 0.0f;
    if (!row || !x) return NAN;
    const uint8_t *r = row;
    switch (type) {
    case WG_TYPE_F32: return DOT(wg_f32_dot)(r, x, nb);
    case WG_TYPE_F16: return DOT(wg_f16_dot)(r, x, nb);
    case WG_TYPE_BF16: return DOT(wg_bf16_dot)(r, x, nb);
    case WG_TYPE_Q4_0: return DOT(wg_q4_0_dot)(r, x, nb);
    case WG_TYPE_Q4_1: return DOT(wg_q4_1_dot)(r, x, nb);
    case WG_TYPE_Q5_0: return DOT(wg_q5_0_dot)(r, x, nb);
    case WG_TYPE_Q5_1: return DOT(wg_q5_1_dot)(r, x, nb);
    case WG_TYPE_Q8_0: return DOT(wg_q8_0_dot)(r, x, nb);
    case WG_TYPE_Q2_K: return DOT(wg_q2_k_dot)(r, x, nb);
    case WG_TYPE_Q3_K: return DOT(wg_q3_k_dot)(r, x, nb);
    case WG_TYPE_Q4_K: return DOT(wg_q4_k_dot)(r, x, nb);
    case WG_TYPE_Q5_K: return DOT(wg_q5_k_dot)(r, x, nb);
    case WG_TYPE_Q6_K: return DOT(wg_q6_k_dot)(r, x, nb);
    case WG_TYPE_Q8_K: return DOT(wg_q8_k_dot)(r, x, nb);
    default: return NAN;
    }
}

void wg_vec_dot4_f32(const float *w, const float *x, int64_t x_stride, int64_t n, float out[4]) {
    DOT(wg_f32_dot4)(w, x, x_stride, n, out);
}
