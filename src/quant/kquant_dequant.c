/* K-quant dequantizers (layouts in kquant.h). The arithmetic is ggml's, step by
 * step (scale products first, then one multiply and one subtraction per value,
 * never fused), so values are bit-identical to ggml's and gguf-py's. */
#include "quant/blocks.h"
#include "quant/kquant.h"

void wg_q2_k_dequantize(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t ib = 0; ib < nb; ib++, src += WG_Q2_K_BYTES, dst += WG_QK_K) {
        const uint8_t *scales = src, *qs = src + 16;
        const float d = wg_half_to_float(wg_load_le16(src + 80));
        const float dmin = wg_half_to_float(wg_load_le16(src + 82));
        for (int e = 0; e < WG_QK_K; e++) {
            const uint8_t sc = scales[e / 16];
            const float dl = d * (float)(sc & 0xF);
            const float ml = dmin * (float)(sc >> 4);
            const int q = (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            const float v = dl * (float)q;
            dst[e] = v - ml;
        }
    }
}

void wg_q3_k_dequantize(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t ib = 0; ib < nb; ib++, src += WG_Q3_K_BYTES, dst += WG_QK_K) {
        const uint8_t *hmask = src, *qs = src + 32, *scales = src + 96;
        const float d = wg_half_to_float(wg_load_le16(src + 108));
        for (int e = 0; e < WG_QK_K; e++) {
            const float dl = d * (float)wg_k3_scale(e / 16, scales);
            const int lo = (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            const int high = (hmask[e % 32] >> (e / 32)) & 1;
            dst[e] = dl * (float)(lo - (high ? 0 : 4));
        }
    }
}

/* q4_k and q5_k share the scale array and the nibble layout. */
static void k45_dequantize(const uint8_t *src, float *dst, int64_t nb, int has_qh) {
    const int bytes = has_qh ? WG_Q5_K_BYTES : WG_Q4_K_BYTES;
    for (int64_t ib = 0; ib < nb; ib++, src += bytes, dst += WG_QK_K) {
        const float d = wg_half_to_float(wg_load_le16(src));
        const float dmin = wg_half_to_float(wg_load_le16(src + 2));
        const uint8_t *scales = src + 4, *qh = src + 16, *qs = src + (has_qh ? 48 : 16);
        for (int j = 0; j < WG_QK_K / 32; j++) {
            uint8_t sc, m;
            wg_k4_scale_min(j, scales, &sc, &m);
            const float d1 = d * (float)sc;
            const float m1 = dmin * (float)m;
            const uint8_t *q = qs + 32 * (j / 2);
            const int shift = 4 * (j % 2);
            for (int l = 0; l < 32; l++) {
                int code = (q[l] >> shift) & 0xF;
                if (has_qh) code |= ((qh[l] >> j) & 1) << 4;
                const float v = d1 * (float)code;
                dst[32 * j + l] = v - m1;
            }
        }
    }
}

void wg_q4_k_dequantize(const uint8_t *src, float *dst, int64_t nb) { k45_dequantize(src, dst, nb, 0); }
void wg_q5_k_dequantize(const uint8_t *src, float *dst, int64_t nb) { k45_dequantize(src, dst, nb, 1); }

void wg_q6_k_dequantize(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t ib = 0; ib < nb; ib++, src += WG_Q6_K_BYTES, dst += WG_QK_K) {
        const uint8_t *ql = src, *qh = src + 128;
        const int8_t *scales = (const int8_t *)(src + 192);
        const float d = wg_half_to_float(wg_load_le16(src + 208));
        for (int e = 0; e < WG_QK_K; e++) {
            const int r = e % 128;
            const int lo = (ql[64 * (e / 128) + r % 64] >> (4 * (r / 64))) & 0xF;
            const int hi = (qh[32 * (e / 128) + r % 32] >> (2 * (r / 32))) & 3;
            const float ds = d * (float)scales[e / 16];
            dst[e] = ds * (float)((lo | (hi << 4)) - 32);
        }
    }
}

void wg_q8_k_dequantize(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t ib = 0; ib < nb; ib++, src += WG_Q8_K_BYTES, dst += WG_QK_K) {
        const float d = wg_bits_f32(wg_load_le32(src));
        const int8_t *qs = (const int8_t *)(src + 4);
        for (int e = 0; e < WG_QK_K; e++) dst[e] = d * (float)qs[e];
    }
}
