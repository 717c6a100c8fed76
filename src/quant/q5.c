/* 5-bit formats, 32 elements a block, layout of ggml-common.h:
 *   q5_0: f16 d, u8 qh[4], u8 qs[16]          value (q - 16) * d
 *   q5_1: f16 d, f16 m, u8 qh[4], u8 qs[16]   value q * d + m
 * The low 4 bits of element j are the low nibble of qs[j] (element j + 16: the
 * high nibble); its 5th bit is bit j of qh read as a little-endian u32. */
#include "quant/blocks.h"
#include "quant/quant.h"

#include <float.h>
#include <math.h>

/* Unpacks the 32 five-bit codes of one block as floats, in element order. */
static inline void unpack_q5(const uint8_t *qh_bytes, const uint8_t *qs, float q[WG_QK]) {
    const uint32_t qh = wg_load_le32(qh_bytes);
    for (int j = 0; j < WG_QK / 2; j++) {
        const uint32_t h0 = ((qh >> j) & 1u) << 4;
        const uint32_t h1 = ((qh >> (j + WG_QK / 2)) & 1u) << 4;
        q[j] = (float)((qs[j] & 0x0fu) | h0);
        q[j + WG_QK / 2] = (float)((uint32_t)(qs[j] >> 4) | h1);
    }
}

/* Packs 32 five-bit codes; returns the qh word. */
static uint32_t pack_q5(const int q[WG_QK], uint8_t *qs) {
    uint32_t qh = 0;
    for (int j = 0; j < WG_QK / 2; j++) {
        const int q0 = q[j], q1 = q[j + WG_QK / 2];
        qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
        qh |= (uint32_t)((q0 >> 4) & 1) << j;
        qh |= (uint32_t)((q1 >> 4) & 1) << (j + WG_QK / 2);
    }
    return qh;
}

void wg_q5_0_dequantize(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t ib = 0; ib < nb; ib++, src += WG_Q5_0_BYTES, dst += WG_QK) {
        const float d = wg_half_to_float(wg_load_le16(src));
        float q[WG_QK];
        unpack_q5(src + 2, src + 6, q);
        for (int j = 0; j < WG_QK; j++) dst[j] = (q[j] - 16.0f) * d;
    }
}

/* As quantize_row_q5_0_ref: the signed extreme maps to -16. */
void wg_q5_0_quantize(const float *src, uint8_t *dst, int64_t nb) {
    for (int64_t ib = 0; ib < nb; ib++, src += WG_QK, dst += WG_Q5_0_BYTES) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < WG_QK; j++) {
            if (amax < fabsf(src[j])) {
                amax = fabsf(src[j]);
                max = src[j];
            }
        }
        const float d = max / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int q[WG_QK];
        for (int j = 0; j < WG_QK; j++) {
            const float xs = src[j] * id; /* kept apart from the add: no fused multiply-add */
            q[j] = wg_trunc_clamp(xs + 16.5f, 31);
        }
        wg_store_le16(dst, wg_f32_to_fp16(d));
        wg_store_le32(dst + 2, pack_q5(q, dst + 6));
    }
}

float wg_q5_0_dot_ref(const uint8_t *row, const float *x, int64_t nb) {
    float acc[8] = {0};
    for (int64_t ib = 0; ib < nb; ib++, row += WG_Q5_0_BYTES, x += WG_QK) {
        const float d = wg_half_to_float(wg_load_le16(row));
        float q[WG_QK];
        unpack_q5(row + 2, row + 6, q);
        float s[8] = {0};
        for (int j = 0; j < WG_QK; j += 8)
            for (int k = 0; k < 8; k++) s[k] += (q[j + k] - 16.0f) * x[j + k];
        for (int k = 0; k < 8; k++) acc[k] += d * s[k];
    }
    return wg_sum8(acc);
}

void wg_q5_1_dequantize(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t ib = 0; ib < nb; ib++, src += WG_Q5_1_BYTES, dst += WG_QK) {
        const float d = wg_half_to_float(wg_load_le16(src));
        const float m = wg_half_to_float(wg_load_le16(src + 2));
        float q[WG_QK];
        unpack_q5(src + 4, src + 8, q);
        for (int j = 0; j < WG_QK; j++) {
            const float qd = q[j] * d;
            dst[j] = qd + m;
        }
    }
}

/* As quantize_row_q5_1_ref: 31 steps from the block minimum to its maximum. */
void wg_q5_1_quantize(const float *src, uint8_t *dst, int64_t nb) {
    for (int64_t ib = 0; ib < nb; ib++, src += WG_QK, dst += WG_Q5_1_BYTES) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < WG_QK; j++) {
            if (src[j] < min) min = src[j];
            if (src[j] > max) max = src[j];
        }
        const float d = (max - min) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int q[WG_QK];
        for (int j = 0; j < WG_QK; j++) {
            const float xs = (src[j] - min) * id;
            q[j] = wg_trunc_clamp(xs + 0.5f, 31);
        }
        wg_store_le16(dst, wg_f32_to_fp16(d));
        wg_store_le16(dst + 2, wg_f32_to_fp16(min));
        wg_store_le32(dst + 4, pack_q5(q, dst + 8));
    }
}

float wg_q5_1_dot_ref(const uint8_t *row, const float *x, int64_t nb) {
    float acc[8] = {0};
    for (int64_t ib = 0; ib < nb; ib++, row += WG_Q5_1_BYTES, x += WG_QK) {
        const float d = wg_half_to_float(wg_load_le16(row));
        const float m = wg_half_to_float(wg_load_le16(row + 2));
        float q[WG_QK];
        unpack_q5(row + 4, row + 8, q);
        for (int j = 0; j < WG_QK; j++) {
            const float qd = q[j] * d;
            q[j] = qd + m;
        }
        for (int j = 0; j < WG_QK; j += 8)
            for (int k = 0; k < 8; k++) acc[k] += q[j + k] * x[j + k];
    }
    return wg_sum8(acc);
}
