/* Internal to src/quant: the int8 dot kernels of every level (see q8_act.h). Call
 * the vector ones only through wg_q8_dot_kernel, which checks the CPU. */
#ifndef WGLLM_QUANT_Q8_KERNELS_H
#define WGLLM_QUANT_Q8_KERNELS_H

#include "quant/q8_act.h"
#include "quant/types.h"

/* The column of a weight type in the per-level kernel tables (q4_0, q4_1, q5_0, q5_1,
 * q8_0), or -1 for a type without int8 kernels. */
static inline int wg_q8_type_column(uint32_t type) {
    switch (type) {
    case WG_TYPE_Q4_0: return 0;
    case WG_TYPE_Q4_1: return 1;
    case WG_TYPE_Q5_0: return 2;
    case WG_TYPE_Q5_1: return 3;
    case WG_TYPE_Q8_0: return 4;
    default: return -1;
    }
}

#define WG_Q8_DECLARE(sfx)                                                       \
    float wg_q8_dot_q4_0##sfx(const uint8_t *row, const wg_q8_block *x, int64_t nb); \
    float wg_q8_dot_q4_1##sfx(const uint8_t *row, const wg_q8_block *x, int64_t nb); \
    float wg_q8_dot_q5_0##sfx(const uint8_t *row, const wg_q8_block *x, int64_t nb); \
    float wg_q8_dot_q5_1##sfx(const uint8_t *row, const wg_q8_block *x, int64_t nb); \
    float wg_q8_dot_q8_0##sfx(const uint8_t *row, const wg_q8_block *x, int64_t nb);

WG_Q8_DECLARE(_scalar)
#if defined(WGLLM_X86_Q8_DOTS)
WG_Q8_DECLARE(_avx2)
WG_Q8_DECLARE(_avx512)
WG_Q8_DECLARE(_vnni)
#elif defined(WGLLM_ARM_Q8_DOTS)
WG_Q8_DECLARE(_neon)
WG_Q8_DECLARE(_dotprod)
#elif defined(WGLLM_WASM_Q8_DOTS)
WG_Q8_DECLARE(_simd128)
#endif

#endif
