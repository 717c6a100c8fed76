/* The x16 matmul kernels (q8_x16.h) for AVX2 (the build gives this file -mavx2 -mfma
 * -mf16c; q8_x16.c calls them only on CPUs with those). As the AVX-512 kernels, one
 * 32-bit lane per row, on 8 rows at a time: the group's two halves one after the other.
 * Unsigned codes times signed x (vpmaddubsw, pairs in int16), pairs of pairs in int32
 * (vpmaddwd): q4_0 less 8 * sum(x) per block; q8_0 as |w| times x with w's sign (pairs of
 * 255 * 127 would saturate). */
#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#include <string.h>

#include "quant/q8_x16_kernels.h"

enum { TILE = 4 };

static inline __m256i dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

static inline __m256i x4(const wg_q8_block *xb, int s) {
    int32_t w;
    memcpy(&w, xb->q + 4 * s, 4);
    return _mm256_set1_epi32(w);
}

/* Rows 8h..8h+7 of the group. */
static inline __attribute__((always_inline)) void q4_0_tile(const uint8_t *group, int h, const wg_q8_block *x,
                                                             int64_t x_stride, int nt, int64_t nb, float *out,
                                                             int64_t out_stride) {
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256 acc[TILE];
    for (int t = 0; t < TILE; t++) acc[t] = _mm256_setzero_ps();
    const uint8_t *g = group;
    for (int64_t b = 0; b < nb; b++, g += 16 * 18) {
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + 16 * h)));
        __m256i lo[4], hi[4];
        for (int s = 0; s < 4; s++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(g + 32 + 64 * s + 32 * h));
            lo[s] = _mm256_and_si256(v, m4);
            hi[s] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        }
        for (int t = 0; t < nt; t++) {
            const wg_q8_block *xb = x + (size_t)t * (size_t)x_stride + b;
            __m256i p = _mm256_set1_epi32(-8 * xb->sum);
            for (int s = 0; s < 4; s++) {
                p = _mm256_add_epi32(p, dot_u8s8(lo[s], x4(xb, s)));
                p = _mm256_add_epi32(p, dot_u8s8(hi[s], x4(xb, 4 + s)));
            }
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw, _mm256_set1_ps(xb->d)), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) _mm256_storeu_ps(out + (size_t)t * (size_t)out_stride + 8 * h, acc[t]);
}

static inline __attribute__((always_inline)) void q8_0_tile(const uint8_t *group, int h, const wg_q8_block *x,
                                                             int64_t x_stride, int nt, int64_t nb, float *out,
                                                             int64_t out_stride) {
    __m256 acc[TILE];
    for (int t = 0; t < TILE; t++) acc[t] = _mm256_setzero_ps();
    const uint8_t *g = group;
    for (int64_t b = 0; b < nb; b++, g += 16 * 34) {
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + 16 * h)));
        __m256i w[8], a[8];
        for (int s = 0; s < 8; s++) {
            w[s] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(g + 32 + 64 * s + 32 * h)),
                                    _mm256_set1_epi8(-128)); /* signed codes */
            a[s] = _mm256_sign_epi8(w[s], w[s]);
        }
        for (int t = 0; t < nt; t++) {
            const wg_q8_block *xb = x + (size_t)t * (size_t)x_stride + b;
            __m256i p = _mm256_setzero_si256();
            for (int s = 0; s < 8; s++) p = _mm256_add_epi32(p, dot_u8s8(a[s], _mm256_sign_epi8(x4(xb, s), w[s])));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw, _mm256_set1_ps(xb->d)), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) _mm256_storeu_ps(out + (size_t)t * (size_t)out_stride + 8 * h, acc[t]);
}

#define TILES(kind)                                                                                              \
    void wg_x16_matmul_##kind##_avx2(const uint8_t *group, const wg_q8_block *x, int64_t x_stride, int nt,      \
                                     int64_t nb, float *out, int64_t out_stride) {                               \
        for (int h = 0; h < 2; h++)                                                                              \
            for (int t0 = 0; t0 < nt; t0 += TILE) {                                                              \
                const wg_q8_block *xt = x + (size_t)t0 * (size_t)x_stride;                                       \
                float *ot = out + (size_t)t0 * (size_t)out_stride;                                               \
                switch (nt - t0 < TILE ? nt - t0 : TILE) {                                                       \
                case 1: kind##_tile(group, h, xt, x_stride, 1, nb, ot, out_stride); break;                       \
                case 2: kind##_tile(group, h, xt, x_stride, 2, nb, ot, out_stride); break;                       \
                case 3: kind##_tile(group, h, xt, x_stride, 3, nb, ot, out_stride); break;                       \
                default: kind##_tile(group, h, xt, x_stride, 4, nb, ot, out_stride); break;                      \
                }                                                                                                \
            }                                                                                                    \
    }
TILES(q4_0)
TILES(q8_0)
#else
typedef int wg_q8_x16_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
