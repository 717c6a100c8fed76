/* The int8 dot kernels for AVX2 (the build gives this file -mavx2 -mfma -mf16c;
 * q8_act.c calls them only on CPUs with those). One weight block per step: its 32
 * codes as unsigned bytes times the signed codes of x (vpmaddubsw, pairs summed in
 * int16 without saturation: |pair| <= 2 * 128 * 127), then pairs of pairs in int32
 * (vpmaddwd), converted and scaled into 8 f32 lanes. */
#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include "quant/q8_dot_block.h"
#include "quant/q8_kernels.h"

/* The 32 stored codes of a nibble block as bytes in element order: low nibbles
 * (elements 0..15), then high nibbles, with the 5th bits of qh where the format has them. */
static inline __m256i codes_of(wg_q8_layout L, const uint8_t *blk) {
    const __m128i t = _mm_loadu_si128((const __m128i *)(blk + L.qs));
    const __m256i lo4 = _mm256_set1_epi8(15);
    __m256i c = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), lo4);
    if (L.qh) {
        /* byte j takes byte j / 8 of qh, then tests its bit j % 8 */
        const __m256i v = _mm256_set1_epi32((int)wg_load_le32(blk + L.qh));
        const __m256i which = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2,
                                               2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
        const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
        const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(v, which), bit), bit);
        c = _mm256_or_si256(c, _mm256_and_si256(set, _mm256_set1_epi8(16)));
    }
    return c;
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float dot_rows(uint32_t type, const uint8_t *row, const wg_q8_block *x, int64_t nb) {
    const wg_q8_layout L = wg_q8_layout_of(type);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    float acc_m = 0.0f; /* the minimum's terms, m * dx * sum */
    for (int64_t b = 0; b < nb; b++, row += L.bytes) {
        __m256i q = _mm256_loadu_si256((const __m256i *)x[b].q);
        __m256i u;
        if (type == WG_TYPE_Q8_0) { /* signed codes: |w| times q with w's sign */
            const __m256i w = _mm256_loadu_si256((const __m256i *)(row + L.qs));
            u = _mm256_sign_epi8(w, w);
            q = _mm256_sign_epi8(q, w);
        } else {
            u = codes_of(L, row);
        }
        __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u, q), ones);
        if (type != WG_TYPE_Q8_0 && L.bias) p = _mm256_add_epi32(p, _mm256_zextsi128_si256(_mm_cvtsi32_si128(-L.bias * x[b].sum)));
        const float dw = _cvtsh_ss(wg_load_le16(row));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * x[b].d), acc);
        if (L.m) acc_m += _cvtsh_ss(wg_load_le16(row + L.m)) * (x[b].d * (float)x[b].sum);
    }
    return hsum8(acc) + acc_m;
}

float wg_q8_dot_q4_0_avx2(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q4_0, row, x, nb); }
float wg_q8_dot_q4_1_avx2(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q4_1, row, x, nb); }
float wg_q8_dot_q5_0_avx2(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q5_0, row, x, nb); }
float wg_q8_dot_q5_1_avx2(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q5_1, row, x, nb); }
float wg_q8_dot_q8_0_avx2(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q8_0, row, x, nb); }
#else
typedef int wg_q8_dot_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
