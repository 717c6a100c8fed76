/* The Q8_K dot kernels of the K-quants, one source for every level: this file is
 * the portable reference, and q8k_dot_avx2.c, q8k_dot_avx512.c and q8k_dot_vnni.c
 * include it again with WG_Q8K_LEVEL set (the build gives each its -m flags).
 *
 * Per weight super-block a row is decoded into 256 unsigned codes in element order
 * plus, per 16 elements, a scale, an offset and a minimum (plain C loops that each
 * build vectorizes for its flags). Only the code-times-x sum of 256 byte pairs is
 * written per level (vpmaddubsw + vpmaddwd, or vpdpbusd); it is exact in int32:
 *   isum = sum_g sc_g * sum_{e in g} u_e q_e - sum_g off_g * bsum_g
 *   msum = sum_g mn_g * bsum_g
 *   acc += (d * dx) * isum, then acc -= (dmin * dx) * msum   (f32, block order)
 * where the signed code is u - off_g / sc_g (q6_k: 32, q3_k: 4, else 0). The f32
 * steps are the same everywhere (ISO C: no contraction into FMA), so all levels
 * and both entry points give the same bits. */
#ifndef WG_Q8K_LEVEL
#define WG_Q8K_LEVEL 0
#endif

#if WG_Q8K_LEVEL == 0 ||                                                                                   \
    (defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) &&                 \
     (WG_Q8K_LEVEL < 2 || (defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__))) && \
     (WG_Q8K_LEVEL < 3 || defined(__AVX512VNNI__)))
#if WG_Q8K_LEVEL > 0
#include <immintrin.h>
#endif

#include "quant/blocks.h"
#include "quant/kquant.h"
#include "quant/q8k_kernels.h"

#if WG_Q8K_LEVEL == 0
#define SFX(f) f##_scalar
#elif WG_Q8K_LEVEL == 1
#define SFX(f) f##_avx2
#elif WG_Q8K_LEVEL == 2
#define SFX(f) f##_avx512
#else
#define SFX(f) f##_vnni
#endif

#define K_INLINE static inline __attribute__((always_inline))

/* One decoded weight super-block. `es` repeats each scale once per lane of the
 * level's int16 (or int32 for vpdpbusd) partial sums. */
typedef struct {
    _Alignas(64) uint8_t u[256];
#if WG_Q8K_LEVEL == 3
    int32_t es[64];
#elif WG_Q8K_LEVEL > 0
    int16_t es[128];
#endif
    int16_t sc[16], off[16], mn[16];
    float d, dmin;
} k_dec;

K_INLINE void expand_scales(k_dec *w) {
#if WG_Q8K_LEVEL == 3
    for (int i = 0; i < 64; i++) w->es[i] = w->sc[i / 4]; /* 4 bytes a lane */
#elif WG_Q8K_LEVEL > 0
    for (int i = 0; i < 128; i++) w->es[i] = w->sc[i / 8]; /* 2 bytes a lane */
#else
    (void)w;
#endif
}

/* ---- decoding one super-block (layouts in kquant.h) ---- */
K_INLINE void dec_q2_k(const uint8_t *b, k_dec *w) {
    const uint8_t *qs = b + 16;
    for (int n = 0; n < 2; n++)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) w->u[128 * n + 32 * j + l] = (uint8_t)((qs[32 * n + l] >> (2 * j)) & 3);
    for (int g = 0; g < 16; g++) {
        w->sc[g] = (int16_t)(b[g] & 0xF);
        w->mn[g] = (int16_t)(b[g] >> 4);
        w->off[g] = 0;
    }
    w->d = wg_half_to_float(wg_load_le16(b + 80));
    w->dmin = wg_half_to_float(wg_load_le16(b + 82));
    expand_scales(w);
}

K_INLINE void dec_q3_k(const uint8_t *b, k_dec *w) {
    const uint8_t *hmask = b, *qs = b + 32;
    for (int n = 0; n < 2; n++)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) w->u[128 * n + 32 * j + l] = (uint8_t)((qs[32 * n + l] >> (2 * j)) & 3);
    /* the stored value is code - 4 where the high bit is clear: u = code + 4 * bit, offset 4 */
    for (int k = 0; k < 8; k++)
        for (int l = 0; l < 32; l++) w->u[32 * k + l] = (uint8_t)(w->u[32 * k + l] + (((hmask[l] >> k) & 1) << 2));
    for (int g = 0; g < 16; g++) {
        w->sc[g] = (int16_t)wg_k3_scale(g, b + 96);
        w->off[g] = (int16_t)(4 * w->sc[g]);
        w->mn[g] = 0;
    }
    w->d = wg_half_to_float(wg_load_le16(b + 108));
    w->dmin = 0.0f;
    expand_scales(w);
}

K_INLINE void dec_q45(const uint8_t *b, k_dec *w, int has_qh) {
    const uint8_t *qs = b + (has_qh ? 48 : 16);
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < 32; l++) {
            w->u[64 * k + l] = qs[32 * k + l] & 0xF;
            w->u[64 * k + 32 + l] = qs[32 * k + l] >> 4;
        }
    if (has_qh) {
        const uint8_t *qh = b + 16;
        for (int k = 0; k < 8; k++)
            for (int l = 0; l < 32; l++) w->u[32 * k + l] = (uint8_t)(w->u[32 * k + l] | (((qh[l] >> k) & 1) << 4));
    }
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        wg_k4_scale_min(j, b + 4, &sc, &m);
        w->sc[2 * j] = w->sc[2 * j + 1] = sc;
        w->mn[2 * j] = w->mn[2 * j + 1] = m;
        w->off[2 * j] = w->off[2 * j + 1] = 0;
    }
    w->d = wg_half_to_float(wg_load_le16(b));
    w->dmin = wg_half_to_float(wg_load_le16(b + 2));
    expand_scales(w);
}
K_INLINE void dec_q4_k(const uint8_t *b, k_dec *w) { dec_q45(b, w, 0); }
K_INLINE void dec_q5_k(const uint8_t *b, k_dec *w) { dec_q45(b, w, 1); }

K_INLINE void dec_q6_k(const uint8_t *b, k_dec *w) {
    for (int n = 0; n < 2; n++) {
        const uint8_t *ql = b + 64 * n, *qh = b + 128 + 32 * n;
        uint8_t *u = w->u + 128 * n;
        for (int l = 0; l < 32; l++) {
            u[l] = (uint8_t)((ql[l] & 0xF) | ((qh[l] & 3) << 4));
            u[32 + l] = (uint8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
            u[64 + l] = (uint8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
            u[96 + l] = (uint8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
        }
    }
    for (int g = 0; g < 16; g++) {
        w->sc[g] = (int8_t)b[192 + g];
        w->off[g] = (int16_t)(32 * w->sc[g]); /* stored value is code - 32 */
        w->mn[g] = 0;
    }
    w->d = wg_half_to_float(wg_load_le16(b + 208));
    w->dmin = 0.0f;
    expand_scales(w);
}

/* ---- sum_g sc_g * sum_{e in g} u_e q_e for NR rows and one block of x ----
 * u <= 63 and |q| <= 127: a vpmaddubsw pair is at most 16002 (no saturation). */
#if WG_Q8K_LEVEL == 0
K_INLINE void core(const k_dec *const *w, const int NR, const int8_t *q, int32_t *out) {
    for (int r = 0; r < NR; r++) {
        int32_t s = 0;
        for (int g = 0; g < 16; g++) {
            int32_t t = 0;
            for (int j = 0; j < 16; j++) t += w[r]->u[16 * g + j] * q[16 * g + j];
            s += w[r]->sc[g] * t;
        }
        out[r] = s;
    }
}
#elif WG_Q8K_LEVEL == 1
K_INLINE void core(const k_dec *const *w, const int NR, const int8_t *q, int32_t *out) {
    __m256i acc[WG_Q8K_TILE_R];
    for (int r = 0; r < NR; r++) acc[r] = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) { /* 32 elements: lanes 0..7 group 2j, 8..15 group 2j + 1 */
        const __m256i qv = _mm256_loadu_si256((const __m256i *)(q + 32 * j));
        for (int r = 0; r < NR; r++) {
            const __m256i p = _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)(w[r]->u + 32 * j)), qv);
            acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(p, _mm256_loadu_si256((const __m256i *)(w[r]->es + 16 * j))));
        }
    }
    for (int r = 0; r < NR; r++) {
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc[r]), _mm256_extracti128_si256(acc[r], 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
        out[r] = _mm_cvtsi128_si32(s);
    }
}
#else
K_INLINE void core(const k_dec *const *w, const int NR, const int8_t *q, int32_t *out) {
    __m512i acc[WG_Q8K_TILE_R];
    for (int r = 0; r < NR; r++) acc[r] = _mm512_setzero_si512();
    for (int k = 0; k < 4; k++) { /* 64 elements: groups 4k .. 4k + 3 */
        const __m512i qv = _mm512_loadu_si512((const void *)(q + 64 * k));
        for (int r = 0; r < NR; r++) {
            const __m512i u = _mm512_load_si512((const void *)(w[r]->u + 64 * k));
#if WG_Q8K_LEVEL == 3 /* four products a lane in int32, then that lane's scale */
            const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, qv);
            acc[r] = _mm512_add_epi32(acc[r], _mm512_mullo_epi32(p, _mm512_loadu_si512((const void *)(w[r]->es + 16 * k))));
#else
            const __m512i p = _mm512_maddubs_epi16(u, qv);
            acc[r] = _mm512_add_epi32(acc[r], _mm512_madd_epi16(p, _mm512_loadu_si512((const void *)(w[r]->es + 32 * k))));
#endif
        }
    }
    for (int r = 0; r < NR; r++) out[r] = _mm512_reduce_add_epi32(acc[r]);
}
#endif

/* Adds one super-block's value into *acc (the f32 steps of every level). */
K_INLINE void finish(const k_dec *w, const wg_q8k_block *x, int32_t dot, float *acc) {
    int32_t corr = 0, msum = 0;
    for (int g = 0; g < 16; g++) {
        corr += w->off[g] * x->bsums[g];
        msum += w->mn[g] * x->bsums[g];
    }
    *acc += (w->d * x->d) * (float)(dot - corr);
    *acc -= (w->dmin * x->d) * (float)msum;
}

K_INLINE float dot_rows(void (*dec)(const uint8_t *, k_dec *), int bytes, const uint8_t *row,
                        const wg_q8k_block *x, int64_t nb) {
    k_dec w;
    const k_dec *wp = &w;
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        dec(row + b * bytes, &w);
        int32_t d;
        core(&wp, 1, x[b].qs, &d);
        finish(&w, x + b, d, &acc);
    }
    return acc;
}

/* Rows past nr read row 0's decoding; their sums are dropped. */
K_INLINE void tile_rows(void (*dec)(const uint8_t *, k_dec *), int bytes, const uint8_t *w, size_t w_stride, int nr,
                        const wg_q8k_block *x, size_t x_stride, int nt, int64_t nb, float *out, size_t ldo) {
    k_dec blk[WG_Q8K_TILE_R];
    const k_dec *wp[WG_Q8K_TILE_R];
    float acc[WG_Q8K_TILE_T][WG_Q8K_TILE_R] = {{0}};
    for (int r = 0; r < WG_Q8K_TILE_R; r++) wp[r] = &blk[r < nr ? r : 0];
    for (int64_t b = 0; b < nb; b++) {
        for (int r = 0; r < nr; r++) dec(w + (size_t)r * w_stride + (size_t)b * (size_t)bytes, &blk[r]);
        for (int t = 0; t < nt; t++) {
            const wg_q8k_block *xb = x + (size_t)t * x_stride + (size_t)b;
            int32_t d[WG_Q8K_TILE_R];
            if (nr == 1) core(wp, 1, xb->qs, d);
            else core(wp, WG_Q8K_TILE_R, xb->qs, d);
            for (int r = 0; r < nr; r++) finish(&blk[r], xb, d[r], &acc[t][r]);
        }
    }
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) out[(size_t)t * ldo + (size_t)r] = acc[t][r];
}

#define K_ENTRY(t, bytes)                                                                                     \
    float SFX(wg_q8k_dot_##t)(const uint8_t *row, const wg_q8k_block *x, int64_t nb) {                        \
        return dot_rows(dec_##t, bytes, row, x, nb);                                                          \
    }                                                                                                         \
    void SFX(wg_q8k_tile_##t)(const uint8_t *w, size_t w_stride, int nr, const wg_q8k_block *x,              \
                              size_t x_stride, int nt, int64_t nb, float *out, size_t ldo) {                  \
        tile_rows(dec_##t, bytes, w, w_stride, nr, x, x_stride, nt, nb, out, ldo);                            \
    }

K_ENTRY(q2_k, WG_Q2_K_BYTES)
K_ENTRY(q3_k, WG_Q3_K_BYTES)
K_ENTRY(q4_k, WG_Q4_K_BYTES)
K_ENTRY(q5_k, WG_Q5_K_BYTES)
K_ENTRY(q6_k, WG_Q6_K_BYTES)

#else
typedef int wg_q8k_dot_unused; /* ISO C forbids an empty translation unit */
#endif
