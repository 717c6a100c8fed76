/* Internal to src/quant: the x16 matmul kernels of every level (see q8_x16.h). Call
 * the x86 ones only through wg_x16_matmul_kernel, which checks the CPU. */
#ifndef WGLLM_QUANT_Q8_X16_KERNELS_H
#define WGLLM_QUANT_Q8_X16_KERNELS_H

#include "quant/q8_x16.h"

#define WG_X16_DECLARE(sfx)                                                                                 \
    void wg_x16_matmul_q4_0##sfx(const uint8_t *group, const wg_q8_block *x, int64_t x_stride, int nt,    \
                                 int64_t nb, float *out, int64_t out_stride);                              \
    void wg_x16_matmul_q8_0##sfx(const uint8_t *group, const wg_q8_block *x, int64_t x_stride, int nt,    \
                                 int64_t nb, float *out, int64_t out_stride);

WG_X16_DECLARE(_scalar)
#if defined(WGLLM_X86_Q8_DOTS)
WG_X16_DECLARE(_avx2)
WG_X16_DECLARE(_avx512)
WG_X16_DECLARE(_vnni)
#endif

#endif
