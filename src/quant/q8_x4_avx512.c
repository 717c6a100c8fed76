/* The x4 matmul kernels (q8_x4.h) for AVX-512 F/BW/VL; q8_x4_vnni.c includes this file
 * again with WG_Q8_VNNI, where vpdpbusd sums four u8 x s8 products into int32 in one
 * step. Tokens go in tiles of TILE: each weight block is loaded and unpacked once per
 * tile, then one or two integer dots per token and block, scaled into f32 lanes.
 *   q4_0: one vector holds block b of the 4 rows (16 code bytes each, low nibbles then
 *         high), 4 int32 lanes a row;
 *   q8_0: two vectors (rows 0-1, rows 2-3), 8 lanes a row. */
#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__FMA__) && defined(__F16C__) && (!defined(WG_Q8_VNNI) || defined(__AVX512VNNI__))
#include <immintrin.h>
#include <string.h>

#include "quant/q8_x4_kernels.h"

#ifdef WG_Q8_VNNI
#define SFX(f) f##_vnni
#define DOT_ADD(acc, u, s) _mm512_dpbusd_epi32((acc), (u), (s))
#else
#define SFX(f) f##_avx512
#define DOT_ADD(acc, u, s) _mm512_add_epi32((acc), _mm512_madd_epi16(_mm512_maddubs_epi16((u), (s)), _mm512_set1_epi16(1)))
#endif

enum { TILE = 16 };

/* The 4 scales of a block, converted, each repeated over its row's `per` lanes. */
static inline __m512 scales16(const uint8_t *blk, __m512i perm) {
    const __m128 d4 = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)blk));
    return _mm512_permutexvar_ps(perm, _mm512_castps128_ps512(d4));
}

/* Sums each row's lanes (16 / rows of them) of acc into out[0 .. rows). */
static inline void store_rows(__m512 acc, int rows, float *out) {
    float l[16];
    const int per = 16 / rows;
    _mm512_storeu_ps(l, acc);
    for (int i = 0; i < rows; i++) {
        float s = 0.0f;
        for (int k = 0; k < per; k++) s += l[i * per + k];
        out[i] = s;
    }
}

/* x codes arrive offset to unsigned (q + 128, wg_x4_offset_x), so that the weights can be the
 * signed operand: sum (q + 128) * w = sum q * w + 128 * sum w, and the last term, which
 * depends on the weights only, is taken off once per block for every token of the tile. */
static inline __attribute__((always_inline)) void q4_0_tile(const uint8_t *group, const wg_q8_block *x,
                                                             int64_t x_stride, int nt, int64_t nb, float *out,
                                                             int64_t out_stride) {
    const __m512i perm = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i m4 = _mm512_set1_epi8(15), eight = _mm512_set1_epi8(8), c128 = _mm512_set1_epi8(-128);
    __m512 acc[TILE];
    for (int t = 0; t < TILE; t++) acc[t] = _mm512_setzero_ps();
    const uint8_t *g = group;
    for (int64_t b = 0; b < nb; b++, g += 72) {
        const __m512i v = _mm512_loadu_si512(g + 8);
        /* signed values -8..7 of the low (elements 0..15) and high (16..31) nibbles */
        const __m512i lo = _mm512_sub_epi8(_mm512_and_si512(v, m4), eight);
        const __m512i hi = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), m4), eight);
        const __m512i corr = DOT_ADD(DOT_ADD(_mm512_setzero_si512(), c128, lo), c128, hi);
        const __m512i init = _mm512_sub_epi32(_mm512_setzero_si512(), corr);
        const __m512 dw = scales16(g, perm);
        for (int t = 0; t < nt; t++) {
            const wg_q8_block *xb = x + (size_t)t * (size_t)x_stride + b;
            const __m512i xl = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)xb->q));
            const __m512i xh = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(xb->q + 16)));
            const __m512i p = DOT_ADD(DOT_ADD(init, xl, lo), xh, hi);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw, _mm512_set1_ps(xb->d)), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) store_rows(acc[t], 4, out + (size_t)t * (size_t)out_stride);
}

static inline __attribute__((always_inline)) void q8_0_tile(const uint8_t *group, const wg_q8_block *x,
                                                             int64_t x_stride, int nt, int64_t nb, float *out,
                                                             int64_t out_stride) {
    const __m512i perm01 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i perm23 = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2);
    const __m512i c128 = _mm512_set1_epi8(-128);
    __m512 acc01[TILE], acc23[TILE];
    for (int t = 0; t < TILE; t++) acc01[t] = acc23[t] = _mm512_setzero_ps();
    const uint8_t *g = group;
    for (int64_t b = 0; b < nb; b++, g += 136) {
        const __m512i w01 = _mm512_loadu_si512(g + 8), w23 = _mm512_loadu_si512(g + 72);
#ifdef WG_Q8_VNNI /* unsigned x times signed w, less 128 * sum w */
        const __m512i i01 = _mm512_sub_epi32(_mm512_setzero_si512(), DOT_ADD(_mm512_setzero_si512(), c128, w01));
        const __m512i i23 = _mm512_sub_epi32(_mm512_setzero_si512(), DOT_ADD(_mm512_setzero_si512(), c128, w23));
#else /* pairs of 255 * -128 would saturate int16: |w| times signed x with w's sign */
        const __m512i u01 = _mm512_abs_epi8(w01), u23 = _mm512_abs_epi8(w23);
        const __mmask64 n01 = _mm512_movepi8_mask(w01), n23 = _mm512_movepi8_mask(w23);
#endif
        const __m512 dw01 = scales16(g, perm01), dw23 = scales16(g, perm23);
        for (int t = 0; t < nt; t++) {
            const wg_q8_block *xb = x + (size_t)t * (size_t)x_stride + b;
            const __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)xb->q));
#ifdef WG_Q8_VNNI
            const __m512i p01 = DOT_ADD(i01, q, w01), p23 = DOT_ADD(i23, q, w23);
#else
            const __m512i qs = _mm512_xor_si512(q, c128); /* back to signed */
            const __m512i s01 = _mm512_mask_sub_epi8(qs, n01, _mm512_setzero_si512(), qs);
            const __m512i s23 = _mm512_mask_sub_epi8(qs, n23, _mm512_setzero_si512(), qs);
            const __m512i p01 = DOT_ADD(_mm512_setzero_si512(), u01, s01);
            const __m512i p23 = DOT_ADD(_mm512_setzero_si512(), u23, s23);
#endif
            const __m512 dx = _mm512_set1_ps(xb->d);
            acc01[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p01), _mm512_mul_ps(dw01, dx), acc01[t]);
            acc23[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p23), _mm512_mul_ps(dw23, dx), acc23[t]);
        }
    }
    for (int t = 0; t < nt; t++) {
        float *o = out + (size_t)t * (size_t)out_stride;
        store_rows(acc01[t], 2, o);
        store_rows(acc23[t], 2, o + 2);
    }
}

/* The tile bodies are instantiated per token count, so their accumulators stay in registers. */
#define TILES(kind)                                                                                              \
    void SFX(wg_x4_matmul_##kind)(const uint8_t *group, const wg_q8_block *x, int64_t x_stride, int nt, int64_t nb, \
                                  float *out, int64_t out_stride) {                                             \
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
typedef int wg_q8_x4_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
