/* The int8 dot kernels for AVX-512 F/BW/VL (the build gives this file those flags;
 * q8_act.c calls them only on CPUs with them). q8_dot_vnni.c includes this file again
 * with WG_Q8_VNNI, where vpdpbusd sums four u8 x s8 products into int32 in one step.
 * Two weight blocks per step, one per 256-bit half: lanes 0..7 hold block b, lanes
 * 8..15 block b + 1; an odd last block takes the exact scalar block dot. */
#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__FMA__) && defined(__F16C__) && (!defined(WG_Q8_VNNI) || defined(__AVX512VNNI__))
#include <immintrin.h>

#include "quant/q8_dot_block.h"
#include "quant/q8_kernels.h"

#ifdef WG_Q8_VNNI
#define SFX(f) f##_vnni
/* sums of four u8 x s8 products in int32, no intermediate saturation */
#define DOT_U8S8(u, s) _mm512_dpbusd_epi32(_mm512_setzero_si512(), (u), (s))
#else
#define SFX(f) f##_avx512
/* pairs in int16 (|pair| <= 2 * 128 * 127, no saturation), then pairs of pairs */
#define DOT_U8S8(u, s) _mm512_madd_epi16(_mm512_maddubs_epi16((u), (s)), _mm512_set1_epi16(1))
#endif

/* Two 32-byte runs as one vector: a in the low half, b in the high half. */
static inline __m512i pair256(const void *a, const void *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}

/* The stored codes of two nibble blocks, each in element order (low nibbles, then
 * high nibbles), with the 5th bits of qh where the format has them. */
static inline __m512i codes_of2(wg_q8_layout L, const uint8_t *ba, const uint8_t *bb) {
    const __m256i t = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(bb + L.qs)),
                                       _mm_loadu_si128((const __m128i *)(ba + L.qs)));
    const __m256i lo4 = _mm256_set1_epi8(15);
    const __m256i lo = _mm256_and_si256(t, lo4), hi = _mm256_and_si256(_mm256_srli_epi16(t, 4), lo4);
    /* [lo a, lo b, hi a, hi b] in 128-bit lanes -> [lo a, hi a, lo b, hi b] */
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    __m512i c = _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0));
    if (L.qh) { /* byte i is element i % 32 of block i / 32: bit i of the two qh words */
        const __mmask64 k = (__mmask64)wg_load_le32(ba + L.qh) | (__mmask64)wg_load_le32(bb + L.qh) << 32;
        c = _mm512_or_si512(c, _mm512_maskz_mov_epi8(k, _mm512_set1_epi8(16)));
    }
    return c;
}

static inline float dot_rows(uint32_t type, const uint8_t *row, const wg_q8_block *x, int64_t nb) {
    const wg_q8_layout L = wg_q8_layout_of(type);
    __m512 acc = _mm512_setzero_ps();
    float acc_m = 0.0f; /* the minimum's terms, m * dx * sum */
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2, row += 2 * L.bytes) {
        const uint8_t *rb = row + L.bytes;
        __m512i q = pair256(x[b].q, x[b + 1].q);
        __m512i u;
        if (type == WG_TYPE_Q8_0) { /* signed codes: |w| times q with w's sign */
            const __m512i w = pair256(row + L.qs, rb + L.qs);
            u = _mm512_abs_epi8(w);
            q = _mm512_mask_sub_epi8(q, _mm512_movepi8_mask(w), _mm512_setzero_si512(), q);
        } else {
            u = codes_of2(L, row, rb);
        }
        __m512i p = DOT_U8S8(u, q);
        if (type != WG_TYPE_Q8_0 && L.bias) /* - bias * sum of each block, into its first lane */
            p = _mm512_add_epi32(p, _mm512_mask_set1_epi32(_mm512_maskz_set1_epi32(0x0001, -L.bias * x[b].sum),
                                                           0x0100, -L.bias * x[b + 1].sum));
        const float sa = _cvtsh_ss(wg_load_le16(row)) * x[b].d;
        const float sb = _cvtsh_ss(wg_load_le16(rb)) * x[b + 1].d;
        const __m512 scale = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(sa), _mm512_set1_ps(sb));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale, acc);
        if (L.m) {
            acc_m += _cvtsh_ss(wg_load_le16(row + L.m)) * (x[b].d * (float)x[b].sum);
            acc_m += _cvtsh_ss(wg_load_le16(rb + L.m)) * (x[b + 1].d * (float)x[b + 1].sum);
        }
    }
    float tail = 0.0f;
    if (b < nb) tail = wg_q8_block_dot(type, L, row, x + b);
    return _mm512_reduce_add_ps(acc) + acc_m + tail;
}

float SFX(wg_q8_dot_q4_0)(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q4_0, row, x, nb); }
float SFX(wg_q8_dot_q4_1)(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q4_1, row, x, nb); }
float SFX(wg_q8_dot_q5_0)(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q5_0, row, x, nb); }
float SFX(wg_q8_dot_q5_1)(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q5_1, row, x, nb); }
float SFX(wg_q8_dot_q8_0)(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q8_0, row, x, nb); }
#else
typedef int wg_q8_dot_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
