/* The Q4_K x16 matmul kernel (q8k_x16.h) for AVX-512 F/BW/VL; q8k_x16_vnni.c includes
 * this file again with WG_Q8_VNNI (vpdpbusd). One 32-bit lane per row: a sub-block's
 * eight steps are byte dots with four codes of x broadcast, summed in int32, times the
 * row's scale (vpmulld); the minimums' sums are vpmaddwd of the rows' minimum pairs with
 * x's sub-block sums. Tokens go in tiles of up to TILE; each sub-block pair's codes are
 * loaded and split once per tile. Q6_K likewise, a scale's four steps of 6-bit codes
 * rebuilt from three stored ones once per tile (q8k_x16.h), the codes' offset of 32
 * taken off by starting each scale's sum at -32 * x's sum over its 16 values. */
#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__FMA__) && defined(__F16C__) && (!defined(WG_Q8_VNNI) || defined(__AVX512VNNI__))
#include <immintrin.h>
#include <string.h>

#include "quant/q8k_x16.h"

#ifdef WG_Q8_VNNI
#define SFX(f) f##_vnni
#define DOT_ADD(acc, u, s) _mm512_dpbusd_epi32((acc), (u), (s))
#else
#define SFX(f) f##_avx512
#define DOT_ADD(acc, u, s) _mm512_add_epi32((acc), _mm512_madd_epi16(_mm512_maddubs_epi16((u), (s)), _mm512_set1_epi16(1)))
#endif

enum { TILE = 6, GROUP_SB = 64 + 128 + 128 + 32 * 64, Q6K_TILE = 8, Q6K_GROUP_SB = 32 + 256 + 16 * 3 * 64 };

static inline __m512i x4(const int8_t *q) {
    int32_t w;
    memcpy(&w, q, 4);
    return _mm512_set1_epi32(w);
}

static inline __attribute__((always_inline)) void q4_k_tile(const uint8_t *group, const wg_q8k_block *x,
                                                             int64_t x_stride, int nt, int64_t nb, float *out,
                                                             int64_t out_stride) {
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512 acc[TILE];
    for (int t = 0; t < TILE; t++) acc[t] = _mm512_setzero_ps();
    const uint8_t *g = group;
    for (int64_t b = 0; b < nb; b++, g += GROUP_SB) {
        __m512i isum[TILE];
        for (int t = 0; t < TILE; t++) isum[t] = _mm512_setzero_si512();
        for (int k = 0; k < 4; k++) { /* sub-blocks 2k (low nibbles) and 2k+1 (high) */
            const __m512i sc_lo = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(g + 64 + 32 * k)));
            const __m512i sc_hi = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(g + 80 + 32 * k)));
            __m512i lo[8], hi[8];
            for (int s = 0; s < 8; s++) {
                const __m512i v = _mm512_loadu_si512(g + 320 + 64 * (8 * k + s));
                lo[s] = _mm512_and_si512(v, m4);
                hi[s] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            }
            for (int t = 0; t < nt; t++) {
                const int8_t *q = x[(size_t)t * (size_t)x_stride + b].qs + 64 * k;
                __m512i pl = _mm512_setzero_si512(), ph = _mm512_setzero_si512();
                for (int s = 0; s < 8; s++) {
                    pl = DOT_ADD(pl, lo[s], x4(q + 4 * s));
                    ph = DOT_ADD(ph, hi[s], x4(q + 32 + 4 * s));
                }
                isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(pl, sc_lo),
                                                                     _mm512_mullo_epi32(ph, sc_hi)));
            }
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(g + 32)));
        for (int t = 0; t < nt; t++) {
            const wg_q8k_block *xb = x + (size_t)t * (size_t)x_stride + b;
            __m512i msum = _mm512_setzero_si512();
            for (int p = 0; p < 4; p++) { /* minimums of sub-blocks 2p, 2p+1 times x's sums over them */
                const __m512i mn = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(g + 192 + 32 * p)));
                const int s0 = xb->bsums[4 * p] + xb->bsums[4 * p + 1], s1 = xb->bsums[4 * p + 2] + xb->bsums[4 * p + 3];
                const __m512i pair = _mm512_set1_epi32((int32_t)((uint32_t)(uint16_t)s0 | (uint32_t)(uint16_t)s1 << 16));
                msum = _mm512_add_epi32(msum, _mm512_madd_epi16(mn, pair));
            }
            const __m512 dx = _mm512_set1_ps(xb->d);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(d, dx), acc[t]);
            acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(dmin, dx), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) _mm512_storeu_ps(out + (size_t)t * (size_t)out_stride, acc[t]);
}

static inline __attribute__((always_inline)) void q6_k_tile(const uint8_t *group, const wg_q8k_block *x,
                                                             int64_t x_stride, int nt, int64_t nb, float *out,
                                                             int64_t out_stride) {
    const __m512i m63 = _mm512_set1_epi8(63), m192 = _mm512_set1_epi8((char)0xC0);
    __m512 acc[Q6K_TILE];
    for (int t = 0; t < Q6K_TILE; t++) acc[t] = _mm512_setzero_ps();
    const uint8_t *g = group;
    for (int64_t b = 0; b < nb; b++, g += Q6K_GROUP_SB) {
        __m512i isum[Q6K_TILE];
        for (int t = 0; t < Q6K_TILE; t++) isum[t] = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int j = 0; j < 16; j++) { /* scale j: values 16j..16j+15 */
            const uint8_t *v = g + 288 + 192 * j;
            const __m512i v0 = _mm512_loadu_si512(v), v1 = _mm512_loadu_si512(v + 64), v2 = _mm512_loadu_si512(v + 128);
            /* the fourth step from bits 6-7 of the three: (v1's, v0's >> 2), then (v2's, that >> 2) */
            const __m512i u = _mm512_ternarylogic_epi32(v1, _mm512_srli_epi16(v0, 2), m192, 0xE4);
            const __m512i w = _mm512_ternarylogic_epi32(v2, _mm512_srli_epi16(u, 2), m192, 0xE4);
            const __m512i c0 = _mm512_and_si512(v0, m63), c1 = _mm512_and_si512(v1, m63),
                          c2 = _mm512_and_si512(v2, m63), c3 = _mm512_and_si512(_mm512_srli_epi16(w, 2), m63);
            const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(g + 32 + 16 * j)));
            for (int t = 0; t < nt; t++) {
                const wg_q8k_block *xb = x + (size_t)t * (size_t)x_stride + b;
                const int8_t *q = xb->qs + 16 * j;
                /* the codes' offset of 32: the sum starts at -32 * (x's sum over the 16 values) */
                __m512i p = _mm512_set1_epi32(-32 * xb->bsums[j]);
                p = DOT_ADD(p, c0, x4(q));
                p = DOT_ADD(p, c1, x4(q + 4));
                p = DOT_ADD(p, c2, x4(q + 8));
                p = DOT_ADD(p, c3, x4(q + 12));
                isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(p, sc));
            }
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g));
        for (int t = 0; t < nt; t++) {
            const wg_q8k_block *xb = x + (size_t)t * (size_t)x_stride + b;
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(d, _mm512_set1_ps(xb->d)), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) _mm512_storeu_ps(out + (size_t)t * (size_t)out_stride, acc[t]);
}

void SFX(wg_q8k_x16_matmul_q6_k)(const uint8_t *group, const wg_q8k_block *x, int64_t x_stride, int nt,
                                 int64_t nb, float *out, int64_t out_stride) {
    for (int t0 = 0; t0 < nt; t0 += Q6K_TILE) {
        const wg_q8k_block *xt = x + (size_t)t0 * (size_t)x_stride;
        float *ot = out + (size_t)t0 * (size_t)out_stride;
        switch (nt - t0 < Q6K_TILE ? nt - t0 : Q6K_TILE) {
        case 1: q6_k_tile(group, xt, x_stride, 1, nb, ot, out_stride); break;
        case 2: q6_k_tile(group, xt, x_stride, 2, nb, ot, out_stride); break;
        case 3: q6_k_tile(group, xt, x_stride, 3, nb, ot, out_stride); break;
        case 4: q6_k_tile(group, xt, x_stride, 4, nb, ot, out_stride); break;
        case 5: q6_k_tile(group, xt, x_stride, 5, nb, ot, out_stride); break;
        case 6: q6_k_tile(group, xt, x_stride, 6, nb, ot, out_stride); break;
        case 7: q6_k_tile(group, xt, x_stride, 7, nb, ot, out_stride); break;
        default: q6_k_tile(group, xt, x_stride, Q6K_TILE, nb, ot, out_stride); break;
        }
    }
}

void SFX(wg_q8k_x16_matmul_q4_k)(const uint8_t *group, const wg_q8k_block *x, int64_t x_stride, int nt,
                                 int64_t nb, float *out, int64_t out_stride) {
    for (int t0 = 0; t0 < nt; t0 += TILE) {
        const wg_q8k_block *xt = x + (size_t)t0 * (size_t)x_stride;
        float *ot = out + (size_t)t0 * (size_t)out_stride;
        switch (nt - t0 < TILE ? nt - t0 : TILE) {
        case 1: q4_k_tile(group, xt, x_stride, 1, nb, ot, out_stride); break;
        case 2: q4_k_tile(group, xt, x_stride, 2, nb, ot, out_stride); break;
        case 3: q4_k_tile(group, xt, x_stride, 3, nb, ot, out_stride); break;
        case 4: q4_k_tile(group, xt, x_stride, 4, nb, ot, out_stride); break;
        case 5: q4_k_tile(group, xt, x_stride, 5, nb, ot, out_stride); break;
        default: q4_k_tile(group, xt, x_stride, TILE, nb, ot, out_stride); break;
        }
    }
}
#else
typedef int wg_q8k_x16_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
