/* The portable int8 dot kernels: exact integer block sums, scaled and added in
 * block order. They are the reference the vector levels are tested against. */
#include "quant/q8_dot_block.h"
#include "quant/q8_kernels.h"

static inline float dot_rows(uint32_t type, const uint8_t *row, const wg_q8_block *x, int64_t nb) {
    const wg_q8_layout L = wg_q8_layout_of(type);
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) acc += wg_q8_block_dot(type, L, row + b * L.bytes, x + b);
    return acc;
}

float wg_q8_dot_q4_0_scalar(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q4_0, row, x, nb); }
float wg_q8_dot_q4_1_scalar(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q4_1, row, x, nb); }
float wg_q8_dot_q5_0_scalar(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q5_0, row, x, nb); }
float wg_q8_dot_q5_1_scalar(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q5_1, row, x, nb); }
float wg_q8_dot_q8_0_scalar(const uint8_t *row, const wg_q8_block *x, int64_t nb) { return dot_rows(WG_TYPE_Q8_0, row, x, nb); }
