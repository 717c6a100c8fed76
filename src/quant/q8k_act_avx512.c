/* wg_q8k_quantize_row for AVX-512 F/BW/VL (the build gives this file those flags;
 * q8k_act.c hands it out only on CPUs with it): the same bits, sixteen values per
 * step. The portable loop took 5.7 us for a row of 2,048 on the EPYC decode host,
 * once per matmul on the calling thread while the others wait. */
#include "quant/q8k_act.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>
#include <math.h>

void wg_q8k_quantize_row_avx512(const float *x, wg_q8k_block *dst, int64_t n) {
    const __m512 magic = _mm512_set1_ps(12582912.0f), half = _mm512_set1_ps(0.5f);
    const __m512 hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    for (int64_t b = 0; b < n / 256; b++, x += 256) {
        __m512 amax = _mm512_setzero_ps();
        __mmask16 nan = 0;
        for (int j = 0; j < 256; j += 16) {
            const __m512 v = _mm512_loadu_ps(x + j);
            nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            amax = _mm512_max_ps(amax, _mm512_abs_ps(v)); /* NaN matters only through nan */
        }
        /* the scalar steps of wg_q8k_quantize_row */
        const float d = nan ? NAN : _mm512_reduce_max_ps(amax) / 127.0f;
        float id = d > 0.0f ? 1.0f / d : 0.0f;
        if (!isfinite(id)) id = 0.0f;
        const __m512 vid = _mm512_set1_ps(id);
        for (int g = 0; g < 16; g++) {
            const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + 16 * g), vid);
            /* nearest even as (v + 1.5 * 2^23) - 1.5 * 2^23, then ties away from zero */
            __m512 r = _mm512_sub_ps(_mm512_add_ps(v, magic), magic);
            const __m512 diff = _mm512_abs_ps(_mm512_sub_ps(v, r));
            const __mmask16 tie = _mm512_cmp_ps_mask(diff, half, _CMP_EQ_OQ);
            const __m512i away =
                _mm512_or_si512(_mm512_castps_si512(half), _mm512_and_si512(_mm512_castps_si512(v), sign));
            r = _mm512_mask_add_ps(r, tie, v, _mm512_castsi512_ps(away)); /* v +- 0.5 */
            const __mmask16 ok = _mm512_cmp_ps_mask(r, r, _CMP_ORD_Q); /* NaN codes are 0 */
            const __m512i q = _mm512_maskz_cvtps_epi32(ok, _mm512_min_ps(_mm512_max_ps(r, lo), hi));
            _mm_storeu_si128((__m128i *)(dst[b].qs + 16 * g), _mm512_cvtepi32_epi8(q));
            dst[b].bsums[g] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        dst[b].d = d;
    }
}
#else
typedef int wg_q8k_act_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
