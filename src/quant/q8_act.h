/* Activations rounded to 8 bits, for integer dot products with Q4_0, Q4_1, Q5_0,
 * Q5_1 and Q8_0 weight rows (the CPU backend's decode path). A row of x becomes
 * blocks of 32 int8 codes with an f32 scale, llama.cpp's q8_0 rounding rule
 * (d = amax / 127, codes rounded half away from zero) with the scale kept in f32.
 * Every weight block then costs one integer dot of 32 code pairs and one scale.
 *
 * The kernels exist per instruction set (x86-64 and aarch64), picked at run time (the
 * binary stays portable), and for wasm32 SIMD128, picked at compile time (-msimd128,
 * which defines __wasm_simd128__: a module has no run-time feature test); every level computes the same integer block sums, only the f32 sum of
 * the scaled blocks may round differently. */
#ifndef WGLLM_QUANT_Q8_ACT_H
#define WGLLM_QUANT_Q8_ACT_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__wasm_simd128__)
#define WGLLM_WASM_Q8_DOTS 1 /* q8_dot_simd128.c */
#endif

/* One block of x: x[j] ~= d * q[j]; sum = q[0] + ... + q[31] (for the weight
 * formats with an offset or a minimum). */
typedef struct wg_q8_block {
    float d;
    int32_t sum;
    int8_t q[32];
} wg_q8_block;

/* Kernel levels, lowest first; each architecture has its own ladder. SCALAR is
 * portable C. x86-64: AVX2 needs AVX2, FMA and F16C; AVX512 needs AVX-512 F, BW and
 * VL; VNNI needs those and AVX-512 VNNI (vpdpbusd). aarch64: NEON is Advanced SIMD
 * (every aarch64 CPU); DOTPROD needs the Armv8.2 dot product (sdot, HWCAP_ASIMDDP).
 * wasm32: SIMD128 is there when the module was built with it. */
typedef enum wg_cpu_isa {
    WG_CPU_ISA_SCALAR = 0,
#if defined(__aarch64__)
    WG_CPU_ISA_NEON = 1,
    WG_CPU_ISA_DOTPROD = 2,
    WG_CPU_ISA_COUNT_ = 3 /* not a level */
#elif defined(__wasm__)
    WG_CPU_ISA_SIMD128 = 1,
    WG_CPU_ISA_COUNT_ = 2 /* not a level */
#else
    WG_CPU_ISA_AVX2 = 1,
    WG_CPU_ISA_AVX512 = 2,
    WG_CPU_ISA_VNNI = 3,
    WG_CPU_ISA_COUNT_ = 4 /* not a level */
#endif
} wg_cpu_isa;

/* The names of this build's levels, for messages. */
#if defined(__aarch64__)
#define WG_CPU_ISA_NAMES "scalar, neon or dotprod"
#elif defined(__wasm__)
#define WG_CPU_ISA_NAMES "scalar or simd128"
#else
#define WG_CPU_ISA_NAMES "scalar, avx2, avx512 or vnni"
#endif

/* The highest level that this CPU and this build can run. */
wg_cpu_isa wg_cpu_isa_best(void);

/* "scalar", "avx2", "avx512", "vnni" (aarch64: "scalar", "neon", "dotprod"; wasm32:
 * "scalar", "simd128"); NULL for
 * a value outside the enum. */
const char *wg_cpu_isa_name(int isa);

/* Parses a name as written by wg_cpu_isa_name (case-insensitive); -1 if unknown. */
int wg_cpu_isa_from_name(const char *name);

/* Rounds x[0..n) (n a multiple of 32) into n / 32 blocks. Inf or NaN in a block
 * gives codes 0 and that block's d is inf or NaN, so the dot products show it. */
void wg_q8_quantize_row(const float *x, wg_q8_block *dst, int64_t n);

/* sum_i row[i] * x[i] for a row of nb weight blocks of 32 and nb blocks of x. */
typedef float (*wg_q8_dot_fn)(const uint8_t *row, const wg_q8_block *x, int64_t nb);

/* The kernel of weight type `type` at level `isa`; NULL when the type has no int8
 * kernel or the level is above wg_cpu_isa_best(). */
wg_q8_dot_fn wg_q8_dot_kernel(uint32_t type, int isa);

#endif
