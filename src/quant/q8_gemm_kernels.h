/* Internal to src/quant: the prompt matmul kernels and x rounders of every level
 * (see q8_gemm.h). Call the x86 ones only through q8_gemm.c, which checks the CPU. */
#ifndef WGLLM_QUANT_Q8_GEMM_KERNELS_H
#define WGLLM_QUANT_Q8_GEMM_KERNELS_H

#include "quant/q8_gemm.h"

#define WG_Q8_GEMM_DECLARE(sfx)                                                                                 \
    void wg_q8_gemm_q4_0##sfx(const uint8_t *w, size_t row_bytes, int64_t rows, const wg_q8_block *x, int64_t nb, \
                              int n, float *out, int64_t ldo);                                                  \
    void wg_q8_gemm_q4_1##sfx(const uint8_t *w, size_t row_bytes, int64_t rows, const wg_q8_block *x, int64_t nb, \
                              int n, float *out, int64_t ldo);                                                  \
    void wg_q8_gemm_q5_0##sfx(const uint8_t *w, size_t row_bytes, int64_t rows, const wg_q8_block *x, int64_t nb, \
                              int n, float *out, int64_t ldo);                                                  \
    void wg_q8_gemm_q5_1##sfx(const uint8_t *w, size_t row_bytes, int64_t rows, const wg_q8_block *x, int64_t nb, \
                              int n, float *out, int64_t ldo);                                                  \
    void wg_q8_gemm_q8_0##sfx(const uint8_t *w, size_t row_bytes, int64_t rows, const wg_q8_block *x, int64_t nb, \
                              int n, float *out, int64_t ldo);                                                  \
    void wg_q8_quantize_row##sfx(const float *x, wg_q8_block *dst, int64_t n);

#if defined(WGLLM_X86_Q8_DOTS)
WG_Q8_GEMM_DECLARE(_avx2)
WG_Q8_GEMM_DECLARE(_avx512)
WG_Q8_GEMM_DECLARE(_vnni)
#endif

#endif
