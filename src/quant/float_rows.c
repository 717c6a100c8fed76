/* Element-wise rows: f32, f16 (IEEE half) and bf16, stored little-endian. */
#include "quant/blocks.h"
#include "quant/quant.h"

void wg_f16_dequantize(const uint8_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = wg_half_to_float(wg_load_le16(src + 2 * i));
}

void wg_f16_quantize(const float *src, uint8_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) wg_store_le16(dst + 2 * i, wg_f32_to_fp16(src[i]));
}

void wg_bf16_dequantize(const uint8_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = wg_bf16_bits_to_float(wg_load_le16(src + 2 * i));
}

void wg_bf16_quantize(const float *src, uint8_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) wg_store_le16(dst + 2 * i, wg_f32_to_bf16(src[i]));
}

/* The element-wise dots work in chunks of 8 (one lane each) and finish the
 * n % 8 tail in a last partial chunk, so any n is accepted. */

float wg_f16_dot_ref(const uint8_t *row, const float *x, int64_t n) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 8; k++) acc[k] += wg_half_to_float(wg_load_le16(row + 2 * (i + k))) * x[i + k];
    }
    for (int k = 0; i + k < n; k++) acc[k] += wg_half_to_float(wg_load_le16(row + 2 * (i + k))) * x[i + k];
    return wg_sum8(acc);
}

float wg_bf16_dot_ref(const uint8_t *row, const float *x, int64_t n) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 8; k++) acc[k] += wg_bf16_bits_to_float(wg_load_le16(row + 2 * (i + k))) * x[i + k];
    }
    for (int k = 0; i + k < n; k++) acc[k] += wg_bf16_bits_to_float(wg_load_le16(row + 2 * (i + k))) * x[i + k];
    return wg_sum8(acc);
}

/* The row may sit at any byte offset in a file mapping: memcpy, not a cast. */
float wg_f32_dot_ref(const uint8_t *row, const float *x, int64_t n) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float w[8];
        memcpy(w, row + 4 * i, sizeof w);
        for (int k = 0; k < 8; k++) acc[k] += w[k] * x[i + k];
    }
    for (int k = 0; i + k < n; k++) {
        float w;
        memcpy(&w, row + 4 * (i + k), sizeof w);
        acc[k] += w * x[i + k];
    }
    return wg_sum8(acc);
}
