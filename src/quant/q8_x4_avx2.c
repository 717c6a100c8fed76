/* The x4 matmul kernels (q8_x4.h) for AVX2 (the build gives this file -mavx2 -mfma
 * -mf16c; q8_x4.c calls them only on CPUs with those). Unsigned codes times signed x
 * (vpmaddubsw, pairs in int16 without saturation), pairs of pairs in int32 (vpmaddwd).
 *   q4_0: two vectors a block (rows 0-1, rows 2-3), 4 int32 lanes a row;
 *   q8_0: one vector a row and block, 8 lanes a row; |w| times x with w's sign. */
#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include "quant/q8_x4_kernels.h"

enum { TILE = 4 };

static inline __m256i dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hsum4(__m128 s) {
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* x codes arrive offset to unsigned (q + 128): sum (q + 128) * v = sum q * v + 128 * sum v,
 * the last term taken off once per block for all tokens. q4_0's v = code - 8 keeps the
 * int16 pairs far from saturation (2 * 255 * 8); q8_0 turns x back to signed instead. */
static inline __attribute__((always_inline)) void q4_0_tile(const uint8_t *group, const wg_q8_block *x,
                                                             int64_t x_stride, int nt, int64_t nb, float *out,
                                                             int64_t out_stride) {
    const __m256i m4 = _mm256_set1_epi8(15), eight = _mm256_set1_epi8(8), c128 = _mm256_set1_epi8(-128);
    const __m256i perm01 = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), perm23 = _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3);
    __m256 acc01[TILE], acc23[TILE];
    for (int t = 0; t < TILE; t++) acc01[t] = acc23[t] = _mm256_setzero_ps();
    const uint8_t *g = group;
    for (int64_t b = 0; b < nb; b++, g += 72) {
        const __m256i v01 = _mm256_loadu_si256((const __m256i *)(g + 8)), v23 = _mm256_loadu_si256((const __m256i *)(g + 40));
        const __m256i lo01 = _mm256_sub_epi8(_mm256_and_si256(v01, m4), eight);
        const __m256i hi01 = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v01, 4), m4), eight);
        const __m256i lo23 = _mm256_sub_epi8(_mm256_and_si256(v23, m4), eight);
        const __m256i hi23 = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v23, 4), m4), eight);
        const __m256i i01 = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_add_epi32(dot_u8s8(c128, lo01), dot_u8s8(c128, hi01)));
        const __m256i i23 = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_add_epi32(dot_u8s8(c128, lo23), dot_u8s8(c128, hi23)));
        const __m256 d4 = _mm256_castps128_ps256(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)g)));
        const __m256 dw01 = _mm256_permutevar8x32_ps(d4, perm01), dw23 = _mm256_permutevar8x32_ps(d4, perm23);
        for (int t = 0; t < nt; t++) {
            const wg_q8_block *xb = x + (size_t)t * (size_t)x_stride + b;
            const __m256i xl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)xb->q));
            const __m256i xh = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(xb->q + 16)));
            const __m256i p01 = _mm256_add_epi32(i01, _mm256_add_epi32(dot_u8s8(xl, lo01), dot_u8s8(xh, hi01)));
            const __m256i p23 = _mm256_add_epi32(i23, _mm256_add_epi32(dot_u8s8(xl, lo23), dot_u8s8(xh, hi23)));
            const __m256 dx = _mm256_set1_ps(xb->d);
            acc01[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p01), _mm256_mul_ps(dw01, dx), acc01[t]);
            acc23[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p23), _mm256_mul_ps(dw23, dx), acc23[t]);
        }
    }
    for (int t = 0; t < nt; t++) {
        float *o = out + (size_t)t * (size_t)out_stride;
        o[0] = hsum4(_mm256_castps256_ps128(acc01[t]));
        o[1] = hsum4(_mm256_extractf128_ps(acc01[t], 1));
        o[2] = hsum4(_mm256_castps256_ps128(acc23[t]));
        o[3] = hsum4(_mm256_extractf128_ps(acc23[t], 1));
    }
}

static inline __attribute__((always_inline)) void q8_0_tile(const uint8_t *group, const wg_q8_block *x,
                                                             int64_t x_stride, int nt, int64_t nb, float *out,
                                                             int64_t out_stride) {
    const __m256i c128 = _mm256_set1_epi8(-128);
    __m256 acc[TILE][4];
    for (int t = 0; t < TILE; t++)
        for (int i = 0; i < 4; i++) acc[t][i] = _mm256_setzero_ps();
    const uint8_t *g = group;
    for (int64_t b = 0; b < nb; b++, g += 136) {
        __m256i w[4], u[4];
        for (int i = 0; i < 4; i++) {
            w[i] = _mm256_loadu_si256((const __m256i *)(g + 8 + 32 * i));
            u[i] = _mm256_sign_epi8(w[i], w[i]);
        }
        const __m128 d4 = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)g));
        for (int t = 0; t < nt; t++) {
            const wg_q8_block *xb = x + (size_t)t * (size_t)x_stride + b;
            const __m256i q = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)xb->q), c128); /* signed */
            const __m128 s4 = _mm_mul_ps(d4, _mm_set1_ps(xb->d));
            for (int i = 0; i < 4; i++) {
                const __m256i p = dot_u8s8(u[i], _mm256_sign_epi8(q, w[i]));
                const __m256 s = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(s4), _mm256_set1_epi32(i));
                acc[t][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc[t][i]);
            }
        }
    }
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < 4; i++) out[(size_t)t * (size_t)out_stride + (size_t)i] = hsum8(acc[t][i]);
}

#define TILES(kind)                                                                                              \
    void wg_x4_matmul_##kind##_avx2(const uint8_t *group, const wg_q8_block *x, int64_t x_stride, int nt,       \
                                    int64_t nb, float *out, int64_t out_stride) {                                \
        for (int t0 = 0; t0 < nt; t0 += TILE) {                                                                  \
            const wg_q8_block *xt = x + (size_t)t0 * (size_t)x_stride;                                           \
            float *ot = out + (size_t)t0 * (size_t)out_stride;                                                   \
            switch (nt - t0 < TILE ? nt - t0 : TILE) {                                                           \
            case 1: kind##_tile(group, xt, x_stride, 1, nb, ot, out_stride); break;                              \
            case 2: kind##_tile(group, xt, x_stride, 2, nb, ot, out_stride); break;                              \
            case 3: kind##_tile(group, xt, x_stride, 3, nb, ot, out_stride); break;                              \
            default: kind##_tile(group, xt, x_stride, 4, nb, ot, out_stride); break;                             \
            }                                                                                                    \
        }                                                                                                        \
    }
TILES(q4_0)
TILES(q8_0)
#else
typedef int wg_q8_x4_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
