/* IEEE half and bfloat16 conversions in portable integer code, with the same
 * results as ggml (F16C or its portable fallback): round to nearest, ties to
 * even; overflow goes to infinity; NaN stays NaN and becomes quiet. */
#include "quant/blocks.h"
#include "quant/quant.h"

float wg_fp16_to_f32(uint16_t h) {
    return wg_half_to_float(h);
}

/* Rounds the dropped low bits of `mag` at bit position `shift` to nearest even. */
static uint32_t round_shift_even(uint32_t mag, unsigned shift) {
    const uint32_t kept = mag >> shift;
    const uint32_t rest = mag & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    return kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
}

uint16_t wg_f32_to_fp16(float f) {
    const uint32_t u = wg_f32_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: keep the top payload bits, force quiet */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x1ffu));
    if (a >= 0x477ff000u) /* >= 65520 (halfway past 65504, tie goes up to even): inf */
        return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) { /* >= 2^-14: normal half; rounding may carry into the exponent */
        return (uint16_t)(sign | round_shift_even(a - ((127u - 15u) << 23), 13));
    }
    /* Subnormal half: count units of 2^-24. Below 2^-25 everything rounds to 0. */
    const uint32_t exp = a >> 23;
    if (exp < 102u) return sign;
    const uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    return (uint16_t)(sign | round_shift_even(mant, 126u - exp));
}

float wg_bf16_to_f32(uint16_t h) {
    return wg_bf16_bits_to_float(h);
}

uint16_t wg_f32_to_bf16(float f) {
    const uint32_t u = wg_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
