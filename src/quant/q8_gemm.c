/* The portable prompt matmul (rows times tokens of the scalar dot kernels, the
 * reference of the vector levels) and the table of q8_gemm.h's kernels. */
#include "quant/q8_gemm.h"

#include "quant/q8_gemm_kernels.h"
#include "quant/q8_kernels.h"
#include "quant/types.h"

static inline void gemm_scalar(wg_q8_dot_fn dot, const uint8_t *w, size_t row_bytes, int64_t rows,
                               const wg_q8_block *x, int64_t nb, int n, float *out, int64_t ldo) {
    for (int64_t r = 0; r < rows; r++)
        for (int t = 0; t < n; t++)
            out[(size_t)t * (size_t)ldo + (size_t)r] = dot(w + (size_t)r * row_bytes, x + (size_t)t * (size_t)nb, nb);
}

#define GEMM_SCALAR(name)                                                                                  \
    static void wg_q8_gemm_##name##_scalar(const uint8_t *w, size_t row_bytes, int64_t rows,              \
                                           const wg_q8_block *x, int64_t nb, int n, float *out, int64_t ldo) { \
        gemm_scalar(wg_q8_dot_##name##_scalar, w, row_bytes, rows, x, nb, n, out, ldo);                    \
    }
GEMM_SCALAR(q4_0)
GEMM_SCALAR(q4_1)
GEMM_SCALAR(q5_0)
GEMM_SCALAR(q5_1)
GEMM_SCALAR(q8_0)

#if defined(WGLLM_ARM_Q8_DOTS) || defined(WGLLM_WASM_Q8_DOTS)
/* aarch64 and wasm32 have no tile of their own yet: the level's dot kernel per row and
 * token, whose bits equal the scalar kernel's (q8_dot_neon.c, q8_dot_simd128.c), so the
 * tile still sums as it. */
#define GEMM_DOT(name, sfx)                                                                                \
    static void wg_q8_gemm_##name##sfx(const uint8_t *w, size_t row_bytes, int64_t rows,                  \
                                       const wg_q8_block *x, int64_t nb, int n, float *out, int64_t ldo) { \
        gemm_scalar(wg_q8_dot_##name##sfx, w, row_bytes, rows, x, nb, n, out, ldo);                       \
    }
#define GEMM_DOTS(sfx) GEMM_DOT(q4_0, sfx) GEMM_DOT(q4_1, sfx) GEMM_DOT(q5_0, sfx) GEMM_DOT(q5_1, sfx) GEMM_DOT(q8_0, sfx)
#if defined(WGLLM_ARM_Q8_DOTS)
GEMM_DOTS(_neon)
GEMM_DOTS(_dotprod)
#else
GEMM_DOTS(_simd128)
#endif
#endif

/* Columns: q4_0, q4_1, q5_0, q5_1, q8_0. */
#define ROW(sfx) {wg_q8_gemm_q4_0##sfx, wg_q8_gemm_q4_1##sfx, wg_q8_gemm_q5_0##sfx, wg_q8_gemm_q5_1##sfx, wg_q8_gemm_q8_0##sfx}
static const wg_q8_gemm_fn k_gemm[WG_CPU_ISA_COUNT_][5] = {
    ROW(_scalar),
#if defined(WGLLM_X86_Q8_DOTS)
    ROW(_avx2),
    ROW(_avx512),
    ROW(_vnni),
#elif defined(WGLLM_ARM_Q8_DOTS)
    ROW(_neon),
    ROW(_dotprod),
#elif defined(WGLLM_WASM_Q8_DOTS)
    ROW(_simd128),
#endif
};

static const wg_q8_quantize_fn k_quantize[WG_CPU_ISA_COUNT_] = {
    wg_q8_quantize_row,
#if defined(WGLLM_X86_Q8_DOTS)
    wg_q8_quantize_row_avx2,
    wg_q8_quantize_row_avx512,
    wg_q8_quantize_row_vnni,
#elif defined(WGLLM_ARM_Q8_DOTS)
    wg_q8_quantize_row,
    wg_q8_quantize_row,
#elif defined(WGLLM_WASM_Q8_DOTS)
    wg_q8_quantize_row,
#endif
};

wg_q8_gemm_fn wg_q8_gemm_kernel(uint32_t type, int isa) {
    const int col = wg_q8_type_column(type);
    if (col < 0 || isa < 0 || isa > (int)wg_cpu_isa_best()) return NULL;
    return k_gemm[isa][col];
}

wg_q8_quantize_fn wg_q8_quantize_kernel(int isa) {
    if (isa < 0 || isa > (int)wg_cpu_isa_best()) return NULL;
    return k_quantize[isa];
}
