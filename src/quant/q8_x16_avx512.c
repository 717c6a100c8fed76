/* The x16 matmul kernels (q8_x16.h) for AVX-512 F/BW/VL; q8_x16_vnni.c includes this file
 * again with WG_Q8_VNNI, where vpdpbusd sums four u8 x s8 products into int32 in one step.
 * One 32-bit lane per row: each step of a block is one byte dot with four codes of x
 * broadcast, a block's steps add up in int32, and the block is scaled once for the
 * sixteen rows. Tokens go in tiles of up to TILE; each weight block is loaded (and
 * q4_0's nibbles split) once per tile.
 *   q4_0: unsigned codes 0..15 times signed x, less 8 * sum(x) per block;
 *   q8_0: codes stored plus 128; with vpdpbusd, unsigned codes times signed x less
 *         128 * sum(x); without it (pairs of 255 * 127 would saturate vpmaddubsw's int16),
 *         |w| times x with w's sign. */
#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__FMA__) && defined(__F16C__) && (!defined(WG_Q8_VNNI) || defined(__AVX512VNNI__))
#include <immintrin.h>
#include <string.h>

#include "quant/q8_x16_kernels.h"

#ifdef WG_Q8_VNNI
#define SFX(f) f##_vnni
#define DOT_ADD(acc, u, s) _mm512_dpbusd_epi32((acc), (u), (s))
#else
#define SFX(f) f##_avx512
#define DOT_ADD(acc, u, s) _mm512_add_epi32((acc), _mm512_madd_epi16(_mm512_maddubs_epi16((u), (s)), _mm512_set1_epi16(1)))
#endif

enum { TILE = 16 };

/* Four codes of x (bytes 4s..4s+3 of the block) in every lane. */
static inline __m512i x4(const wg_q8_block *xb, int s) {
    int32_t w;
    memcpy(&w, xb->q + 4 * s, 4);
    return _mm512_set1_epi32(w);
}

static inline __attribute__((always_inline)) void q4_0_tile(const uint8_t *group, const wg_q8_block *x,
                                                             int64_t x_stride, int nt, int64_t nb, float *out,
                                                             int64_t out_stride) {
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512 acc[TILE];
    for (int t = 0; t < TILE; t++) acc[t] = _mm512_setzero_ps();
    const uint8_t *g = group;
    for (int64_t b = 0; b < nb; b++, g += 16 * 18) {
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g));
        __m512i lo[4], hi[4];
        for (int s = 0; s < 4; s++) {
            const __m512i v = _mm512_loadu_si512(g + 32 + 64 * s);
            lo[s] = _mm512_and_si512(v, m4);
            hi[s] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
        for (int t = 0; t < nt; t++) {
            const wg_q8_block *xb = x + (size_t)t * (size_t)x_stride + b;
            __m512i p = _mm512_set1_epi32(-8 * xb->sum);
            for (int s = 0; s < 4; s++) {
                p = DOT_ADD(p, lo[s], x4(xb, s));
                p = DOT_ADD(p, hi[s], x4(xb, 4 + s));
            }
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw, _mm512_set1_ps(xb->d)), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) _mm512_storeu_ps(out + (size_t)t * (size_t)out_stride, acc[t]);
}

static inline __attribute__((always_inline)) void q8_0_tile(const uint8_t *group, const wg_q8_block *x,
                                                             int64_t x_stride, int nt, int64_t nb, float *out,
                                                             int64_t out_stride) {
    __m512 acc[TILE];
    for (int t = 0; t < TILE; t++) acc[t] = _mm512_setzero_ps();
    const uint8_t *g = group;
    for (int64_t b = 0; b < nb; b++, g += 16 * 34) {
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g));
        __m512i u[8];
#ifndef WG_Q8_VNNI
        __mmask64 neg[8];
#endif
        for (int s = 0; s < 8; s++) {
            u[s] = _mm512_loadu_si512(g + 32 + 64 * s);
#ifndef WG_Q8_VNNI
            const __m512i w = _mm512_xor_si512(u[s], _mm512_set1_epi8(-128)); /* signed codes */
            neg[s] = _mm512_movepi8_mask(w);
            u[s] = _mm512_abs_epi8(w);
#endif
        }
        for (int t = 0; t < nt; t++) {
            const wg_q8_block *xb = x + (size_t)t * (size_t)x_stride + b;
#ifdef WG_Q8_VNNI
            __m512i p = _mm512_set1_epi32(-128 * xb->sum);
            for (int s = 0; s < 8; s++) p = DOT_ADD(p, u[s], x4(xb, s));
#else
            __m512i p = _mm512_setzero_si512();
            for (int s = 0; s < 8; s++) {
                const __m512i q = x4(xb, s);
                p = DOT_ADD(p, u[s], _mm512_mask_sub_epi8(q, neg[s], _mm512_setzero_si512(), q));
            }
#endif
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw, _mm512_set1_ps(xb->d)), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) _mm512_storeu_ps(out + (size_t)t * (size_t)out_stride, acc[t]);
}

/* The tile bodies are instantiated per token count, so their accumulators stay in registers. */
#define TILES(kind)                                                                                              \
    void SFX(wg_x16_matmul_##kind)(const uint8_t *group, const wg_q8_block *x, int64_t x_stride, int nt,        \
                                   int64_t nb, float *out, int64_t out_stride) {                                 \
        for (int t0 = 0, step; t0 < nt; t0 += step) {                                                            \
            const wg_q8_block *xt = x + (size_t)t0 * (size_t)x_stride;                                           \
            float *ot = out + (size_t)t0 * (size_t)out_stride;                                                   \
            step = nt - t0 >= TILE ? TILE : nt - t0 < 8 ? nt - t0 : 8;                                           \
            switch (step) {                                                                                      \
            case 1: kind##_tile(group, xt, x_stride, 1, nb, ot, out_stride); break;                              \
            case 2: kind##_tile(group, xt, x_stride, 2, nb, ot, out_stride); break;                              \
            case 3: kind##_tile(group, xt, x_stride, 3, nb, ot, out_stride); break;                              \
            case 4: kind##_tile(group, xt, x_stride, 4, nb, ot, out_stride); break;                              \
            case 5: kind##_tile(group, xt, x_stride, 5, nb, ot, out_stride); break;                              \
            case 6: kind##_tile(group, xt, x_stride, 6, nb, ot, out_stride); break;                              \
            case 7: kind##_tile(group, xt, x_stride, 7, nb, ot, out_stride); break;                              \
            case 8: kind##_tile(group, xt, x_stride, 8, nb, ot, out_stride); break;                              \
            default: kind##_tile(group, xt, x_stride, TILE, nb, ot, out_stride); break;                          \
            }                                                                                                    \
        }                                                                                                        \
    }
TILES(q4_0)
TILES(q8_0)
#else
typedef int wg_q8_x16_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
