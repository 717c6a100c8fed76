/* Internal to src/quant: the Q8_K kernels of every level (see q8k_act.h). Call the
 * x86 ones only through wg_q8k_kernels, which checks the CPU. */
#ifndef WGLLM_QUANT_Q8K_KERNELS_H
#define WGLLM_QUANT_Q8K_KERNELS_H

#include "quant/q8k_act.h"

#define WG_Q8K_DECLARE_TYPE(t, sfx)                                                                   \
    float wg_q8k_dot_##t##sfx(const uint8_t *row, const wg_q8k_block *x, int64_t nb);                 \
    void wg_q8k_tile_##t##sfx(const uint8_t *w, size_t w_stride, int nr, const wg_q8k_block *x,       \
                              size_t x_stride, int nt, int64_t nb, float *out, size_t ldo);
#define WG_Q8K_DECLARE(sfx)          \
    WG_Q8K_DECLARE_TYPE(q2_k, sfx)   \
    WG_Q8K_DECLARE_TYPE(q3_k, sfx)   \
    WG_Q8K_DECLARE_TYPE(q4_k, sfx)   \
    WG_Q8K_DECLARE_TYPE(q5_k, sfx)   \
    WG_Q8K_DECLARE_TYPE(q6_k, sfx)

WG_Q8K_DECLARE(_scalar)
#if defined(WGLLM_X86_Q8_DOTS)
WG_Q8K_DECLARE(_avx2)
WG_Q8K_DECLARE(_avx512)
WG_Q8K_DECLARE(_vnni)
#endif

#endif
