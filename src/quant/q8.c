/* q8_0: f16 d, i8 qs[32]; value qs[j] * d (ggml-common.h). */
#include "quant/blocks.h"
#include "quant/quant.h"

#include <math.h>

void wg_q8_0_dequantize(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t ib = 0; ib < nb; ib++, src += WG_Q8_0_BYTES, dst += WG_QK) {
        const float d = wg_half_to_float(wg_load_le16(src));
        const int8_t *qs = (const int8_t *)(src + 2);
        for (int j = 0; j < WG_QK; j++) dst[j] = (float)qs[j] * d;
    }
}

/* As quantize_row_q8_0_ref: d = amax / 127, codes rounded half away from zero. */
void wg_q8_0_quantize(const float *src, uint8_t *dst, int64_t nb) {
    for (int64_t ib = 0; ib < nb; ib++, src += WG_QK, dst += WG_Q8_0_BYTES) {
        float amax = 0.0f;
        for (int j = 0; j < WG_QK; j++) amax = fmaxf(amax, fabsf(src[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        wg_store_le16(dst, wg_f32_to_fp16(d));
        for (int j = 0; j < WG_QK; j++) {
            const float r = roundf(src[j] * id);
            /* finite input keeps |r| <= 127; the guards only tame inf/NaN input */
            const int q = r >= 127.0f ? 127 : r <= -128.0f ? -128 : r == r ? (int)r : 0;
            dst[2 + j] = (uint8_t)(q & 0xff); /* two's complement byte */
        }
    }
}

float wg_q8_0_dot_ref(const uint8_t *row, const float *x, int64_t nb) {
    float acc[8] = {0};
    for (int64_t ib = 0; ib < nb; ib++, row += WG_Q8_0_BYTES, x += WG_QK) {
        const float d = wg_half_to_float(wg_load_le16(row));
        const int8_t *qs = (const int8_t *)(row + 2);
        float s[8] = {0};
        for (int j = 0; j < WG_QK; j += 8)
            for (int k = 0; k < 8; k++) s[k] += (float)qs[j + k] * x[j + k];
        for (int k = 0; k < 8; k++) acc[k] += d * s[k];
    }
    return wg_sum8(acc);
}
