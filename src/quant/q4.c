/* 4-bit formats, 32 elements a block, layout of ggml-common.h:
 *   q4_0: f16 d, u8 qs[16]          value (q - 8) * d
 *   q4_1: f16 d, f16 m, u8 qs[16]   value q * d + m
 * Element j sits in the low nibble of qs[j], element j + 16 in its high nibble. */
#include "quant/blocks.h"
#include "quant/quant.h"

#include <float.h>
#include <math.h>

/* Unpacks the 32 nibbles of qs as floats, in element order. */
static inline void unpack_nibbles(const uint8_t *qs, float q[WG_QK]) {
    for (int j = 0; j < WG_QK / 2; j++) {
        q[j] = (float)(qs[j] & 0x0f);
        q[j + WG_QK / 2] = (float)(qs[j] >> 4);
    }
}

void wg_q4_0_dequantize(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t ib = 0; ib < nb; ib++, src += WG_Q4_0_BYTES, dst += WG_QK) {
        const float d = wg_half_to_float(wg_load_le16(src));
        const uint8_t *qs = src + 2;
        for (int j = 0; j < WG_QK / 2; j++) {
            dst[j] = (float)((qs[j] & 0x0f) - 8) * d;
            dst[j + WG_QK / 2] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
}

/* Same arithmetic as ggml's quantize_row_q4_0_ref: the scale comes from the
 * first element of largest magnitude, with its sign, so that it maps to -8. */
void wg_q4_0_quantize(const float *src, uint8_t *dst, int64_t nb) {
    for (int64_t ib = 0; ib < nb; ib++, src += WG_QK, dst += WG_Q4_0_BYTES) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < WG_QK; j++) {
            if (amax < fabsf(src[j])) {
                amax = fabsf(src[j]);
                max = src[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        wg_store_le16(dst, wg_f32_to_fp16(d));
        for (int j = 0; j < WG_QK / 2; j++) {
            /* products kept apart from the additions: no fused multiply-add */
            const float x0 = src[j] * id;
            const float x1 = src[j + WG_QK / 2] * id;
            const int q0 = wg_trunc_clamp(x0 + 8.5f, 15);
            const int q1 = wg_trunc_clamp(x1 + 8.5f, 15);
            dst[2 + j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* Per block: 8 lane sums of (q - 8) * x, then scaled once by d into 8 running
 * lanes. Fixed-length loops over local arrays, which compilers vectorize. */
float wg_q4_0_dot_ref(const uint8_t *row, const float *x, int64_t nb) {
    float acc[8] = {0};
    for (int64_t ib = 0; ib < nb; ib++, row += WG_Q4_0_BYTES, x += WG_QK) {
        const float d = wg_half_to_float(wg_load_le16(row));
        float q[WG_QK];
        unpack_nibbles(row + 2, q);
        float s[8] = {0};
        for (int j = 0; j < WG_QK; j += 8)
            for (int k = 0; k < 8; k++) s[k] += (q[j + k] - 8.0f) * x[j + k];
        for (int k = 0; k < 8; k++) acc[k] += d * s[k];
    }
    return wg_sum8(acc);
}

void wg_q4_1_dequantize(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t ib = 0; ib < nb; ib++, src += WG_Q4_1_BYTES, dst += WG_QK) {
        const float d = wg_half_to_float(wg_load_le16(src));
        const float m = wg_half_to_float(wg_load_le16(src + 2));
        const uint8_t *qs = src + 4;
        for (int j = 0; j < WG_QK / 2; j++) {
            const float v0 = (float)(qs[j] & 0x0f) * d;
            const float v1 = (float)(qs[j] >> 4) * d;
            dst[j] = v0 + m;
            dst[j + WG_QK / 2] = v1 + m;
        }
    }
}

/* As quantize_row_q4_1_ref: 15 steps from the block minimum to its maximum. */
void wg_q4_1_quantize(const float *src, uint8_t *dst, int64_t nb) {
    for (int64_t ib = 0; ib < nb; ib++, src += WG_QK, dst += WG_Q4_1_BYTES) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < WG_QK; j++) {
            if (src[j] < min) min = src[j];
            if (src[j] > max) max = src[j];
        }
        const float d = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        wg_store_le16(dst, wg_f32_to_fp16(d));
        wg_store_le16(dst + 2, wg_f32_to_fp16(min));
        for (int j = 0; j < WG_QK / 2; j++) {
            const float x0 = (src[j] - min) * id;
            const float x1 = (src[j + WG_QK / 2] - min) * id;
            const int q0 = wg_trunc_clamp(x0 + 0.5f, 15);
            const int q1 = wg_trunc_clamp(x1 + 0.5f, 15);
            dst[4 + j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* Each value is rebuilt exactly as the dequantizer does (q*d, then + m) so the
 * dot matches the dequantized row up to summation order. */
float wg_q4_1_dot_ref(const uint8_t *row, const float *x, int64_t nb) {
    float acc[8] = {0};
    for (int64_t ib = 0; ib < nb; ib++, row += WG_Q4_1_BYTES, x += WG_QK) {
        const float d = wg_half_to_float(wg_load_le16(row));
        const float m = wg_half_to_float(wg_load_le16(row + 2));
        float q[WG_QK];
        unpack_nibbles(row + 4, q);
        for (int j = 0; j < WG_QK; j++) {
            const float qd = q[j] * d;
            q[j] = qd + m;
        }
        for (int j = 0; j < WG_QK; j += 8)
            for (int k = 0; k < 8; k++) acc[k] += q[j + k] * x[j + k];
    }
    return wg_sum8(acc);
}
