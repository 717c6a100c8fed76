/* Rounding a row of x to wg_q8k_block and the table of Q8_K kernels (q8k_dot.c,
 * compiled once per level by q8k_dot_avx2.c, q8k_dot_avx512.c, q8k_dot_vnni.c). */
#include "quant/q8k_act.h"

#include <math.h>

#include "quant/q8k_kernels.h"
#include "quant/types.h"

/* roundf for |v| < 2^22 (here |v| <= 127) in arithmetic that vectorizes: adding and
 * subtracting 1.5 * 2^23 rounds to nearest even; a tie (v - r exactly +-0.5, an exact
 * difference) goes away from zero instead. NaN stays NaN. */
static inline float round_half_away(float v) {
    const float magic = 12582912.0f;
    const float r = (v + magic) - magic;
    const float diff = v - r;
    return diff == 0.5f || diff == -0.5f ? v + (v > 0.0f ? 0.5f : -0.5f) : r;
}

/* One pass per row and op in plain C; the loops vectorize. */
void wg_q8k_quantize_row(const float *x, wg_q8k_block *dst, int64_t n) {
    for (int64_t b = 0; b < n / 256; b++, x += 256) {
        float amax = 0.0f;
        bool nan = false;
        for (int j = 0; j < 256; j++) { /* NaN is tracked apart, so a plain max (vectorizes) */
            nan |= x[j] != x[j];
            const float a = fabsf(x[j]);
            amax = a > amax ? a : amax;
        }
        /* inf or NaN in x: d is inf or NaN and the codes 0, so every product is NaN */
        const float d = nan ? NAN : amax / 127.0f;
        float id = d > 0.0f ? 1.0f / d : 0.0f;
        if (!isfinite(id)) id = 0.0f;
        for (int j = 0; j < 256; j++) {
            const float r = round_half_away(x[j] * id);
            /* finite x keeps |r| <= 127; the guards only tame inf/NaN */
            dst[b].qs[j] = (int8_t)(r >= 127.0f ? 127 : r <= -127.0f ? -127 : r == r ? (int)r : 0);
        }
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += dst[b].qs[16 * g + j];
            dst[b].bsums[g] = (int16_t)s;
        }
        dst[b].d = d;
    }
}

#if defined(WGLLM_X86_Q8_DOTS)
void wg_q8k_quantize_row_avx512(const float *x, wg_q8k_block *dst, int64_t n); /* q8k_act_avx512.c */
#endif

wg_q8k_quantize_fn wg_q8k_quantizer(int isa) {
    if (isa < 0 || isa > (int)wg_cpu_isa_best()) return NULL;
#if defined(WGLLM_X86_Q8_DOTS)
    if (isa >= WG_CPU_ISA_AVX512) return wg_q8k_quantize_row_avx512;
#endif
    return wg_q8k_quantize_row;
}

/* Columns: q2_k, q3_k, q4_k, q5_k, q6_k. */
#define K_DOTS(sfx) {wg_q8k_dot_q2_k##sfx, wg_q8k_dot_q3_k##sfx, wg_q8k_dot_q4_k##sfx, wg_q8k_dot_q5_k##sfx, wg_q8k_dot_q6_k##sfx}
#define K_TILES(sfx) {wg_q8k_tile_q2_k##sfx, wg_q8k_tile_q3_k##sfx, wg_q8k_tile_q4_k##sfx, wg_q8k_tile_q5_k##sfx, wg_q8k_tile_q6_k##sfx}
static const wg_q8k_dot_fn k_dots[WG_CPU_ISA_COUNT_][5] = {
    K_DOTS(_scalar),
#if defined(WGLLM_X86_Q8_DOTS)
    K_DOTS(_avx2),
    K_DOTS(_avx512),
    K_DOTS(_vnni),
#elif defined(WGLLM_ARM_Q8_DOTS)
    K_DOTS(_scalar), /* aarch64 levels: the portable kernels (no NEON ones yet) */
    K_DOTS(_scalar),
#elif defined(WGLLM_WASM_Q8_DOTS)
    K_DOTS(_scalar), /* wasm32 SIMD128: the portable kernels (no SIMD128 ones yet) */
#endif
};
static const wg_q8k_tile_fn k_tiles[WG_CPU_ISA_COUNT_][5] = {
    K_TILES(_scalar),
#if defined(WGLLM_X86_Q8_DOTS)
    K_TILES(_avx2),
    K_TILES(_avx512),
    K_TILES(_vnni),
#elif defined(WGLLM_ARM_Q8_DOTS)
    K_TILES(_scalar),
    K_TILES(_scalar),
#elif defined(WGLLM_WASM_Q8_DOTS)
    K_TILES(_scalar),
#endif
};

bool wg_q8k_kernels(uint32_t type, int isa, wg_q8k_dot_fn *dot, wg_q8k_tile_fn *tile) {
    int col;
    switch (type) {
    case WG_TYPE_Q2_K: col = 0; break;
    case WG_TYPE_Q3_K: col = 1; break;
    case WG_TYPE_Q4_K: col = 2; break;
    case WG_TYPE_Q5_K: col = 3; break;
    case WG_TYPE_Q6_K: col = 4; break;
    default: return false;
    }
    if (isa < 0 || isa > (int)wg_cpu_isa_best()) return false;
    if (dot) *dot = k_dots[isa][col];
    if (tile) *tile = k_tiles[isa][col];
    return true;
}
