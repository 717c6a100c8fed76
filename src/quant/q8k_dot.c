/* The Q8_K dot kernels of the K-quants, one source for every level: this file is
 * the portable reference, and q8k_dot_avx2.c, q8k_dot_avx512.c and q8k_dot_vnni.c
 * include it again with WG_Q8K_LEVEL set (the build gives each its -m flags).
 *
 * For the tiles, each weight super-block is decoded once into 256 unsigned codes in
 * element order plus, per 16 elements, a scale, an offset and a minimum (plain C
 * loops that each build vectorizes for its flags); only the code-times-x sums are
 * written per level (vpmaddubsw, then vpmaddwd or VNNI's vpdpwssd). The one-token
 * dots of q4_k, q5_k and q6_k keep codes and scales in registers instead (weights
 * stream from memory there). Either way, per super-block, exact in int32:
 *   isum = sum_g sc_g * sum_{e in g} u_e q_e - sum_g off_g * bsum_g
 *   msum = sum_g mn_g * bsum_g
 *   acc += (d * dx) * isum, then acc -= (dmin * dx) * msum   (f32, block order)
 * with off_g = sc_g * (what u exceeds the signed code by: q6_k 32, q3_k 4, else 0).
 * The f32 steps are the same everywhere, never contracted into FMA, so all levels
 * and both entry points give the same bits. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* GCC's default in ISO C mode; clang contracts unless told */
#endif
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
/* acc + pairs of int16 products of p and s, in int32: one vpdpwssd with VNNI */
#if WG_Q8K_LEVEL == 3
#define K_MADD_ACC(acc, p, s) _mm512_dpwssd_epi32((acc), (p), (s))
#elif WG_Q8K_LEVEL == 2
#define K_MADD_ACC(acc, p, s) _mm512_add_epi32((acc), _mm512_madd_epi16((p), (s)))
#endif
#define K_PREFETCH 1024 /* bytes ahead in each weight row */
#if WG_Q8K_LEVEL > 0
#define K_HALF(p) _cvtsh_ss(wg_load_le16(p)) /* F16C: the same exact conversion */
#else
#define K_HALF(p) wg_half_to_float(wg_load_le16(p))
#endif

/* One decoded weight super-block. `es` repeats each scale once per lane of the
 * level's int16 partial sums (pairs of products). */
typedef struct {
    _Alignas(64) uint8_t u[256];
#if WG_Q8K_LEVEL > 0
    int16_t es[128];
#endif
    int16_t sc[16], off[16], mn[16];
    float d, dmin;
} k_dec;

K_INLINE void expand_scales(k_dec *w) {
#if WG_Q8K_LEVEL == 1 /* pair j of scales -> lanes 0..7 and 8..15 of es vector j */
    const __m256i S = _mm256_loadu_si256((const __m256i *)w->sc);
    const __m256i ctrl = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3,
                                          2, 3, 2, 3, 2, 3);
    for (int j = 0; j < 8; j++)
        _mm256_storeu_si256((__m256i *)(w->es + 16 * j),
                            _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(S, _mm256_set1_epi32(j)), ctrl));
#elif WG_Q8K_LEVEL >= 2 /* lane i of es vector k: scale 4k + i / 8 */
    const __m512i S = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)w->sc));
    const __m512i base = _mm512_set_epi64(0x0003000300030003ll, 0x0003000300030003ll, 0x0002000200020002ll,
                                          0x0002000200020002ll, 0x0001000100010001ll, 0x0001000100010001ll, 0, 0);
    for (int k = 0; k < 4; k++)
        _mm512_storeu_si512((void *)(w->es + 32 * k),
                            _mm512_permutexvar_epi16(_mm512_add_epi16(base, _mm512_set1_epi16((short)(4 * k))), S));
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
    w->d = K_HALF(b + 80);
    w->dmin = K_HALF(b + 82);
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
    w->d = K_HALF(b + 108);
    w->dmin = 0.0f;
    expand_scales(w);
}

/* The 8 scales (bytes of sm[0..1]) and 8 minimums (sm[2..3]) of 6 bits of a q4_k or
 * q5_k super-block b (wg_k4_scale_min), four at a time: with words a, b, c of the
 * 12 bytes, scales 0..3 are the low 6 bits of a, scales 4..7 the low nibbles of c
 * with the top 2 bits of a above them; the minimums likewise from b and the high
 * nibbles of c. */
K_INLINE void k45_scales(const uint8_t *blk, uint32_t sm[4]) {
    const uint32_t a = wg_load_le32(blk + 4), b = wg_load_le32(blk + 8), c = wg_load_le32(blk + 12);
    sm[0] = a & 0x3f3f3f3fu;
    sm[1] = (c & 0x0f0f0f0fu) | ((a >> 2) & 0x30303030u);
    sm[2] = b & 0x3f3f3f3fu;
    sm[3] = ((c >> 4) & 0x0f0f0f0fu) | ((b >> 2) & 0x30303030u);
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
    uint32_t sm[4];
    k45_scales(b, sm);
    for (int j = 0; j < 8; j++) {
        const uint8_t sc = (uint8_t)(sm[j / 4] >> (8 * (j % 4))), m = (uint8_t)(sm[2 + j / 4] >> (8 * (j % 4)));
        w->sc[2 * j] = w->sc[2 * j + 1] = sc;
        w->mn[2 * j] = w->mn[2 * j + 1] = m;
        w->off[2 * j] = w->off[2 * j + 1] = 0;
    }
    w->d = K_HALF(b);
    w->dmin = K_HALF(b + 2);
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
    w->d = K_HALF(b + 208);
    w->dmin = 0.0f;
    expand_scales(w);
}

/* ---- the two integer sums of NR rows with one block of x ----
 * isum = sum_g sc_g * sum_{e in g} u_e q_e - sum_g off_g * bsum_g, msum = sum_g mn_g * bsum_g
 * (off only where HAS_OFF, mn only where HAS_MIN: constants of each type).
 * u <= 63 and |q| <= 127: a vpmaddubsw pair is at most 16002 (no saturation). */
#if WG_Q8K_LEVEL == 0
K_INLINE void core(const k_dec *const *w, const int NR, const wg_q8k_block *x, const int HAS_OFF, const int HAS_MIN,
                   int32_t *isum, int32_t *msum) {
    for (int r = 0; r < NR; r++) {
        int32_t s = 0, m = 0;
        for (int g = 0; g < 16; g++) {
            int32_t t = 0;
            for (int j = 0; j < 16; j++) t += w[r]->u[16 * g + j] * x->qs[16 * g + j];
            s += w[r]->sc[g] * t;
            if (HAS_OFF) s -= w[r]->off[g] * x->bsums[g];
            if (HAS_MIN) m += w[r]->mn[g] * x->bsums[g];
        }
        isum[r] = s;
        msum[r] = m;
    }
}
#else
K_INLINE int32_t hsum256(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}
K_INLINE __m128i fold256(__m256i v) { return _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)); }

/* The sums of the lanes of each of a, b, c, d, as lanes 0..3: transpose-add within
 * each 128-bit lane first, then fold the lanes once for all four. */
K_INLINE __m128i hsum4x4_256(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
    const __m256i cd = _mm256_add_epi32(_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
    return fold256(_mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd)));
}

/* The minimums' sums of NR rows (HAS_MIN types). */
K_INLINE void min_sums(const k_dec *const *w, const int NR, __m256i bs, int32_t *msum) {
    if (NR == WG_Q8K_TILE_R) {
        __m256i m[WG_Q8K_TILE_R];
        for (int r = 0; r < NR; r++) m[r] = _mm256_madd_epi16(bs, _mm256_loadu_si256((const __m256i *)w[r]->mn));
        _mm_storeu_si128((__m128i *)msum, hsum4x4_256(m[0], m[1], m[2], m[3]));
    } else {
        for (int r = 0; r < NR; r++) msum[r] = hsum256(_mm256_madd_epi16(bs, _mm256_loadu_si256((const __m256i *)w[r]->mn)));
    }
}
#if WG_Q8K_LEVEL == 1
K_INLINE void core(const k_dec *const *w, const int NR, const wg_q8k_block *x, const int HAS_OFF, const int HAS_MIN,
                   int32_t *isum, int32_t *msum) {
    const __m256i bs = _mm256_loadu_si256((const __m256i *)x->bsums);
    __m256i acc[WG_Q8K_TILE_R];
    for (int r = 0; r < NR; r++)
        acc[r] = HAS_OFF ? _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_madd_epi16(bs, _mm256_loadu_si256((const __m256i *)w[r]->off)))
                         : _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) { /* 32 elements: lanes 0..7 group 2j, 8..15 group 2j + 1 */
        const __m256i qv = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * j));
        for (int r = 0; r < NR; r++) {
            const __m256i p = _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)(w[r]->u + 32 * j)), qv);
            acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(p, _mm256_loadu_si256((const __m256i *)(w[r]->es + 16 * j))));
        }
    }
    if (NR == WG_Q8K_TILE_R)
        _mm_storeu_si128((__m128i *)isum, hsum4x4_256(acc[0], acc[1], acc[2], acc[3]));
    else
        for (int r = 0; r < NR; r++) isum[r] = hsum256(acc[r]);
    if (HAS_MIN) min_sums(w, NR, bs, msum);
    else for (int r = 0; r < NR; r++) msum[r] = 0;
}
#else
K_INLINE void core(const k_dec *const *w, const int NR, const wg_q8k_block *x, const int HAS_OFF, const int HAS_MIN,
                   int32_t *isum, int32_t *msum) {
    const __m256i bs = _mm256_loadu_si256((const __m256i *)x->bsums);
    __m512i acc[WG_Q8K_TILE_R];
    for (int r = 0; r < NR; r++)
        acc[r] = HAS_OFF ? _mm512_zextsi256_si512(_mm256_sub_epi32(
                               _mm256_setzero_si256(), _mm256_madd_epi16(bs, _mm256_loadu_si256((const __m256i *)w[r]->off))))
                         : _mm512_setzero_si512();
    for (int k = 0; k < 4; k++) { /* 64 elements: groups 4k .. 4k + 3 */
        const __m512i qv = _mm512_loadu_si512((const void *)(x->qs + 64 * k));
        for (int r = 0; r < NR; r++) {
            const __m512i u = _mm512_load_si512((const void *)(w[r]->u + 64 * k));
            acc[r] = K_MADD_ACC(acc[r], _mm512_maddubs_epi16(u, qv), _mm512_loadu_si512((const void *)(w[r]->es + 32 * k)));
        }
    }
    if (NR == WG_Q8K_TILE_R) { /* transpose-add in each 128-bit lane, then fold the lanes once */
        const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(acc[0], acc[1]), _mm512_unpackhi_epi32(acc[0], acc[1]));
        const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(acc[2], acc[3]), _mm512_unpackhi_epi32(acc[2], acc[3]));
        const __m512i t = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
        const __m256i t2 = _mm256_add_epi32(_mm512_castsi512_si256(t), _mm512_extracti64x4_epi64(t, 1));
        _mm_storeu_si128((__m128i *)isum, fold256(t2));
    } else {
        for (int r = 0; r < NR; r++) isum[r] = _mm512_reduce_add_epi32(acc[r]);
    }
    if (HAS_MIN) min_sums(w, NR, bs, msum);
    else for (int r = 0; r < NR; r++) msum[r] = 0;
}
#endif
#endif

/* Adds one super-block's value into *acc (the f32 steps of every level). */
K_INLINE void finish(const k_dec *w, const wg_q8k_block *x, int32_t isum, int32_t msum, const int HAS_MIN, float *acc) {
    *acc += (w->d * x->d) * (float)isum;
    if (HAS_MIN) *acc -= (w->dmin * x->d) * (float)msum;
}

typedef void (*k_dec_fn)(const uint8_t *, k_dec *);

K_INLINE float dot_rows(k_dec_fn dec, const int HAS_OFF, const int HAS_MIN, int bytes, const uint8_t *row,
                        const wg_q8k_block *x, int64_t nb) {
    k_dec w;
    const k_dec *wp = &w;
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        dec(row + b * bytes, &w);
        int32_t is, ms;
        core(&wp, 1, x + b, HAS_OFF, HAS_MIN, &is, &ms);
        finish(&w, x + b, is, ms, HAS_MIN, &acc);
    }
    return acc;
}

/* Rows past nr read row 0's decoding; their sums are dropped. */
K_INLINE void tile_rows(k_dec_fn dec, const int HAS_OFF, const int HAS_MIN, int bytes, const uint8_t *w,
                        size_t w_stride, int nr, const wg_q8k_block *x, size_t x_stride, int nt, int64_t nb,
                        float *out, size_t ldo) {
    k_dec blk[WG_Q8K_TILE_R];
    const k_dec *wp[WG_Q8K_TILE_R];
    float acc[WG_Q8K_TILE_T][WG_Q8K_TILE_R] = {{0}};
    for (int r = 0; r < WG_Q8K_TILE_R; r++) wp[r] = &blk[r < nr ? r : 0];
    for (int64_t b = 0; b < nb; b++) {
        for (int r = 0; r < nr; r++) {
            const uint8_t *src = w + (size_t)r * w_stride + (size_t)b * (size_t)bytes;
            /* nr streams at once outrun the hardware prefetcher: ask for the lines of
             * a few blocks ahead (measured: tiles of 4 x 1 read DRAM at half the speed without) */
            for (int l = 0; l < bytes; l += 64) __builtin_prefetch(src + K_PREFETCH + l);
            dec(src, &blk[r]);
        }
#if WG_Q8K_LEVEL > 0
        const __m128 d4 = _mm_setr_ps(wp[0]->d, wp[1]->d, wp[2]->d, wp[3]->d);
        const __m128 dmin4 = _mm_setr_ps(wp[0]->dmin, wp[1]->dmin, wp[2]->dmin, wp[3]->dmin);
#endif
        for (int t = 0; t < nt; t++) {
            const wg_q8k_block *xb = x + (size_t)t * x_stride + (size_t)b;
            int32_t is[WG_Q8K_TILE_R], ms[WG_Q8K_TILE_R];
            if (nr == 1) {
                core(wp, 1, xb, HAS_OFF, HAS_MIN, is, ms);
                finish(&blk[0], xb, is[0], ms[0], HAS_MIN, &acc[t][0]);
                continue;
            }
            core(wp, WG_Q8K_TILE_R, xb, HAS_OFF, HAS_MIN, is, ms);
#if WG_Q8K_LEVEL > 0 /* finish() of the four rows, lane by lane: the same f32 steps */
            const __m128 dx = _mm_set1_ps(xb->d);
            __m128 a = _mm_loadu_ps(acc[t]);
            a = _mm_add_ps(a, _mm_mul_ps(_mm_mul_ps(d4, dx), _mm_cvtepi32_ps(_mm_loadu_si128((const __m128i *)is))));
            if (HAS_MIN)
                a = _mm_sub_ps(a, _mm_mul_ps(_mm_mul_ps(dmin4, dx), _mm_cvtepi32_ps(_mm_loadu_si128((const __m128i *)ms))));
            _mm_storeu_ps(acc[t], a);
#else
            for (int r = 0; r < nr; r++) finish(&blk[r], xb, is[r], ms[r], HAS_MIN, &acc[t][r]);
#endif
        }
    }
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) out[(size_t)t * ldo + (size_t)r] = acc[t][r];
}

#if WG_Q8K_LEVEL > 0
/* One q4_k / q5_k row by one token with codes, scales and minimums kept in
 * registers (the decode path streams weights; the decoded block costs more than
 * the dot here). The same integer sums and f32 steps as dot_rows. */
K_INLINE float dot_q45(const uint8_t *row, const wg_q8k_block *x, int64_t nb, const int HAS_QH) {
    const int bytes = HAS_QH ? WG_Q5_K_BYTES : WG_Q4_K_BYTES;
    const __m256i lo4 = _mm256_set1_epi8(15);
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++, row += bytes) {
        const wg_q8k_block *xb = x + b;
        uint32_t sm[4];
        k45_scales(row, sm);
        const __m128i sc8 = _mm_set_epi32(0, 0, (int)sm[1], (int)sm[0]), mn8 = _mm_set_epi32(0, 0, (int)sm[3], (int)sm[2]);
        /* minimum j covers bsums 2j and 2j + 1 */
        const int32_t msum = hsum256(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)xb->bsums),
                                                       _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mn8, mn8))));
        const uint8_t *qs = row + (HAS_QH ? 48 : 16);
        __m256i qh = _mm256_setzero_si256();
        if (HAS_QH) qh = _mm256_loadu_si256((const __m256i *)(row + 16));
#if WG_Q8K_LEVEL == 1
        uint8_t scb[16];
        _mm_storeu_si128((__m128i *)scb, sc8);
        __m256i accv = _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) { /* elements 64k.. (low nibbles, scale 2k), 64k + 32.. (high, scale 2k + 1) */
            const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * k));
            __m256i lo = _mm256_and_si256(v, lo4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), lo4);
            if (HAS_QH) {
                const __m256i bl = _mm256_set1_epi8((char)(1 << (2 * k))), bh = _mm256_set1_epi8((char)(2 << (2 * k)));
                const __m256i sixteen = _mm256_set1_epi8(16);
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bl), bl), sixteen));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bh), bh), sixteen));
            }
            const __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(xb->qs + 64 * k)));
            const __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(xb->qs + 64 * k + 32)));
            accv = _mm256_add_epi32(accv, _mm256_madd_epi16(plo, _mm256_set1_epi16(scb[2 * k])));
            accv = _mm256_add_epi32(accv, _mm256_madd_epi16(phi, _mm256_set1_epi16(scb[2 * k + 1])));
        }
        const int32_t isum = hsum256(accv);
#else
        const __m512i scw = _mm512_zextsi256_si512(_mm256_cvtepu8_epi16(sc8)); /* scale j in int16 lane j */
        const __m512i base = _mm512_set_epi64(0x0001000100010001ll, 0x0001000100010001ll, 0x0001000100010001ll,
                                              0x0001000100010001ll, 0, 0, 0, 0);
        __m512i accv = _mm512_setzero_si512();
        for (int k = 0; k < 4; k++) { /* low half: low nibbles, scale 2k; high half: high nibbles, scale 2k + 1 */
            const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * k));
            __m256i lo = _mm256_and_si256(v, lo4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), lo4);
            if (HAS_QH) {
                const __m256i sixteen = _mm256_set1_epi8(16);
                lo = _mm256_mask_add_epi8(lo, _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * k)))), lo, sixteen);
                hi = _mm256_mask_add_epi8(hi, _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(2 << (2 * k)))), hi, sixteen);
            }
            const __m512i u = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
            const __m512i q = _mm512_loadu_si512((const void *)(xb->qs + 64 * k));
            const __m512i sv = _mm512_permutexvar_epi16(_mm512_add_epi16(base, _mm512_set1_epi16((short)(2 * k))), scw);
            accv = K_MADD_ACC(accv, _mm512_maddubs_epi16(u, q), sv);
        }
        const int32_t isum = _mm512_reduce_add_epi32(accv);
#endif
        acc += (_cvtsh_ss(wg_load_le16(row)) * xb->d) * (float)isum;
        acc -= (_cvtsh_ss(wg_load_le16(row + 2)) * xb->d) * (float)msum;
    }
    return acc;
}
/* One q6_k row by one token, likewise in registers. */
K_INLINE float dot_q6(const uint8_t *row, const wg_q8k_block *x, int64_t nb) {
    const __m256i lo4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++, row += WG_Q6_K_BYTES) {
        const wg_q8k_block *xb = x + b;
        const __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(row + 192))); /* scale g in lane g */
        /* the stored value is code - 32: minus 32 * sum_g sc_g * bsum_g */
        const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)xb->bsums), sc), 5);
        __m256i u[8]; /* elements 32i .. 32i + 31: groups 2i, 2i + 1 */
        for (int n = 0; n < 2; n++) {
            const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(row + 64 * n));
            const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(row + 64 * n + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)(row + 128 + 32 * n));
            u[4 * n + 0] = _mm256_or_si256(_mm256_and_si256(ql0, lo4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
            u[4 * n + 1] = _mm256_or_si256(_mm256_and_si256(ql1, lo4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
            u[4 * n + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), lo4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
            u[4 * n + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), lo4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
        }
#if WG_Q8K_LEVEL == 1
        const __m256i ctrl = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2,
                                              3, 2, 3, 2, 3, 2, 3);
        __m256i accv = _mm256_sub_epi32(_mm256_setzero_si256(), corr);
        for (int i = 0; i < 8; i++) {
            const __m256i p = _mm256_maddubs_epi16(u[i], _mm256_loadu_si256((const __m256i *)(xb->qs + 32 * i)));
            const __m256i sv = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(sc, _mm256_set1_epi32(i)), ctrl);
            accv = _mm256_add_epi32(accv, _mm256_madd_epi16(p, sv));
        }
        const int32_t isum = hsum256(accv);
#else
        const __m512i scw = _mm512_zextsi256_si512(sc);
        const __m512i base = _mm512_set_epi64(0x0003000300030003ll, 0x0003000300030003ll, 0x0002000200020002ll,
                                              0x0002000200020002ll, 0x0001000100010001ll, 0x0001000100010001ll, 0, 0);
        __m512i accv = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), corr));
        for (int k = 0; k < 4; k++) { /* elements 64k .. 64k + 63: groups 4k .. 4k + 3 */
            const __m512i uu = _mm512_inserti64x4(_mm512_castsi256_si512(u[2 * k]), u[2 * k + 1], 1);
            const __m512i q = _mm512_loadu_si512((const void *)(xb->qs + 64 * k));
            const __m512i sv = _mm512_permutexvar_epi16(_mm512_add_epi16(base, _mm512_set1_epi16((short)(4 * k))), scw);
            accv = K_MADD_ACC(accv, _mm512_maddubs_epi16(uu, q), sv);
        }
        const int32_t isum = _mm512_reduce_add_epi32(accv);
#endif
        acc += (_cvtsh_ss(wg_load_le16(row + 208)) * xb->d) * (float)isum;
    }
    return acc;
}
#define K_DOT_q6_k(row, x, nb) dot_q6(row, x, nb)
#define K_DOT_q4_k(row, x, nb) dot_q45(row, x, nb, 0)
#define K_DOT_q5_k(row, x, nb) dot_q45(row, x, nb, 1)
#else
#define K_DOT_q4_k(row, x, nb) dot_rows(dec_q4_k, 0, 1, WG_Q4_K_BYTES, row, x, nb)
#define K_DOT_q5_k(row, x, nb) dot_rows(dec_q5_k, 0, 1, WG_Q5_K_BYTES, row, x, nb)
#define K_DOT_q6_k(row, x, nb) dot_rows(dec_q6_k, 1, 0, WG_Q6_K_BYTES, row, x, nb)
#endif
#define K_DOT_q2_k(row, x, nb) dot_rows(dec_q2_k, 0, 1, WG_Q2_K_BYTES, row, x, nb)
#define K_DOT_q3_k(row, x, nb) dot_rows(dec_q3_k, 1, 0, WG_Q3_K_BYTES, row, x, nb)

#define K_ENTRY(t, has_off, has_min, bytes)                                                            \
    float SFX(wg_q8k_dot_##t)(const uint8_t *row, const wg_q8k_block *x, int64_t nb) {                 \
        return K_DOT_##t(row, x, nb);                                                                  \
    }                                                                                                  \
    void SFX(wg_q8k_tile_##t)(const uint8_t *w, size_t w_stride, int nr, const wg_q8k_block *x,       \
                              size_t x_stride, int nt, int64_t nb, float *out, size_t ldo) {           \
        tile_rows(dec_##t, has_off, has_min, bytes, w, w_stride, nr, x, x_stride, nt, nb, out, ldo);   \
    }

/* offsets: the types of signed codes; minimums: the others */
K_ENTRY(q2_k, 0, 1, WG_Q2_K_BYTES)
K_ENTRY(q3_k, 1, 0, WG_Q3_K_BYTES)
K_ENTRY(q4_k, 0, 1, WG_Q4_K_BYTES)
K_ENTRY(q5_k, 0, 1, WG_Q5_K_BYTES)
K_ENTRY(q6_k, 1, 0, WG_Q6_K_BYTES)

#else
typedef int wg_q8k_dot_unused; /* ISO C forbids an empty translation unit */
#endif
