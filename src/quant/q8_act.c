/* Rounding a row of x to wg_q8_block, the instruction-set levels and the table of
 * int8 dot kernels (q8_dot.c; x86-64: q8_dot_avx2.c, q8_dot_avx512.c, q8_dot_vnni.c;
 * aarch64: q8_dot_neon.c, q8_dot_dotprod.c; wasm32: q8_dot_simd128.c). */
#include "quant/q8_act.h"

#include <ctype.h>
#if defined(WGLLM_X86_Q8_DOTS)
#include <cpuid.h>
#elif defined(WGLLM_ARM_Q8_DOTS)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20) /* Linux's bit, for C libraries older than it */
#endif
#endif
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "quant/q8_kernels.h"
#include "quant/types.h"

/* One pass per row and op, so plain C: the matrix products dominate by far. */
void wg_q8_quantize_row(const float *x, wg_q8_block *dst, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float amax = 0.0f;
        bool nan = false;
        for (int j = 0; j < 32; j++) {
            nan |= x[j] != x[j];
            amax = fmaxf(amax, fabsf(x[j]));
        }
        /* inf or NaN in x: d is inf or NaN and the codes 0, so every product is NaN */
        const float d = nan ? NAN : amax / 127.0f;
        float id = d > 0.0f ? 1.0f / d : 0.0f;
        if (!isfinite(id)) id = 0.0f;
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) {
            const float r = roundf(x[j] * id);
            /* finite x keeps |r| <= 127; the guards only tame inf/NaN */
            const int q = r >= 127.0f ? 127 : r <= -127.0f ? -127 : r == r ? (int)r : 0;
            dst[b].q[j] = (int8_t)q;
            sum += q;
        }
        dst[b].d = d;
        dst[b].sum = sum;
    }
}

#if defined(__aarch64__)
static const char *const k_isa_names[WG_CPU_ISA_COUNT_] = {"scalar", "neon", "dotprod"};
#elif defined(__wasm__)
static const char *const k_isa_names[WG_CPU_ISA_COUNT_] = {"scalar", "simd128"};
#else
static const char *const k_isa_names[WG_CPU_ISA_COUNT_] = {"scalar", "avx2", "avx512", "vnni"};
#endif

const char *wg_cpu_isa_name(int isa) {
    return isa >= 0 && isa < WG_CPU_ISA_COUNT_ ? k_isa_names[isa] : NULL;
}

int wg_cpu_isa_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < WG_CPU_ISA_COUNT_; i++) {
        const char *n = k_isa_names[i];
        size_t j = 0;
        while (n[j] && name[j] && tolower((unsigned char)name[j]) == n[j]) j++;
        if (n[j] == 0 && name[j] == 0) return i;
    }
    return -1;
}

#if defined(WGLLM_X86_Q8_DOTS)
/* F16C from CPUID leaf 1 (clang's __builtin_cpu_supports has no "f16c"). */
static bool cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

static wg_cpu_isa isa_detect(void) {
#if defined(WGLLM_X86_Q8_DOTS)
    /* libgcc's checks include the OS's support of the AVX and AVX-512 registers */
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c()))
        return WG_CPU_ISA_SCALAR;
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512vl")))
        return WG_CPU_ISA_AVX2;
    if (!__builtin_cpu_supports("avx512vnni")) return WG_CPU_ISA_AVX512;
    return WG_CPU_ISA_VNNI;
#elif defined(WGLLM_ARM_Q8_DOTS)
    /* Advanced SIMD is part of every aarch64 CPU; sdot/udot came with Armv8.2 (optional) */
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) ? WG_CPU_ISA_DOTPROD : WG_CPU_ISA_NEON;
#elif defined(WGLLM_WASM_Q8_DOTS)
    return WG_CPU_ISA_SIMD128; /* the module was built with it, so the engine runs it */
#else
    return WG_CPU_ISA_SCALAR;
#endif
}

/* Detected once: the kernel lookups ask on every matmul, and CPUID exits to the
 * hypervisor in a VM (about 5% of a 2-thread TinyLlama decode). */
wg_cpu_isa wg_cpu_isa_best(void) {
    static atomic_int best = -1;
    int v = atomic_load_explicit(&best, memory_order_relaxed);
    if (v < 0) {
        v = (int)isa_detect();
        atomic_store_explicit(&best, v, memory_order_relaxed);
    }
    return (wg_cpu_isa)v;
}

/* Columns: q4_0, q4_1, q5_0, q5_1, q8_0. */
#define ROW(sfx) {wg_q8_dot_q4_0##sfx, wg_q8_dot_q4_1##sfx, wg_q8_dot_q5_0##sfx, wg_q8_dot_q5_1##sfx, wg_q8_dot_q8_0##sfx}
static const wg_q8_dot_fn k_kernels[WG_CPU_ISA_COUNT_][5] = {
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
#elif defined(__wasm__)
    {NULL, NULL, NULL, NULL, NULL}, /* a module without SIMD128: never above scalar */
#endif
};

wg_q8_dot_fn wg_q8_dot_kernel(uint32_t type, int isa) {
    const int col = wg_q8_type_column(type);
    if (col < 0 || isa < 0 || isa > (int)wg_cpu_isa_best()) return NULL;
    return k_kernels[isa][col];
}
