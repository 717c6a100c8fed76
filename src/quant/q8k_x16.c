/* The Q4_K x16 layout (q8k_x16.h): packing, unpacking, the portable kernel and the
 * table of kernels per level (q8k_x16_avx512.c, q8k_x16_vnni.c). */
#include "quant/q8k_x16.h"

#include <string.h>

#include "quant/blocks.h"
#include "quant/kquant.h"
#include "quant/q8_act.h"
#include "quant/types.h"

enum { ROWS = 16, SB = WG_Q4_K_BYTES, GROUP_SB = 64 + 128 + 128 + 32 * 64 };

void wg_q8k_x16_matmul_q4_k_scalar(const uint8_t *group, const wg_q8k_block *x, int64_t x_stride, int nt,
                                   int64_t nb, float *out, int64_t out_stride);
#if defined(WGLLM_X86_Q8_DOTS)
void wg_q8k_x16_matmul_q4_k_avx512(const uint8_t *group, const wg_q8k_block *x, int64_t x_stride, int nt,
                                   int64_t nb, float *out, int64_t out_stride);
void wg_q8k_x16_matmul_q4_k_vnni(const uint8_t *group, const wg_q8k_block *x, int64_t x_stride, int nt,
                                 int64_t nb, float *out, int64_t out_stride);
#endif

bool wg_q8k_x16_type(uint32_t type) { return type == WG_TYPE_Q4_K; }

size_t wg_q8k_x16_group_bytes(uint32_t type, int64_t ne0) {
    (void)type;
    return (size_t)(ne0 / 256) * GROUP_SB;
}

void wg_q8k_x16_pack(uint32_t type, const uint8_t *src, uint8_t *dst, int64_t ne0, int64_t rows) {
    (void)type;
    const int64_t nb = ne0 / 256;
    const size_t rb = (size_t)nb * SB;
    for (int64_t g = 0; g < rows / ROWS; g++, src += ROWS * rb) {
        for (int64_t b = 0; b < nb; b++, dst += GROUP_SB) {
            for (int r = 0; r < ROWS; r++) {
                const uint8_t *blk = src + (size_t)r * rb + (size_t)b * SB;
                memcpy(dst + 2 * r, blk, 2);          /* d */
                memcpy(dst + 32 + 2 * r, blk + 2, 2); /* dmin */
                for (int j = 0; j < 8; j++) {
                    uint8_t sc, m;
                    wg_k4_scale_min(j, blk + 4, &sc, &m);
                    dst[64 + 16 * j + r] = sc;
                    dst[192 + 32 * (j / 2) + 2 * r + j % 2] = m;
                }
                for (int s = 0; s < 32; s++) memcpy(dst + 320 + 64 * s + 4 * r, blk + 16 + 4 * s, 4);
            }
        }
    }
}

void wg_q8k_x16_unpack_block(uint32_t type, const uint8_t *packed, int64_t row, int64_t ne0, int64_t b,
                             uint8_t *dst) {
    const int r = (int)(row % ROWS);
    const uint8_t *g = packed + (size_t)(row / ROWS) * wg_q8k_x16_group_bytes(type, ne0) + (size_t)b * GROUP_SB;
    memcpy(dst, g + 2 * r, 2);
    memcpy(dst + 2, g + 32 + 2 * r, 2);
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = g[64 + 16 * j + r];
        m[j] = g[192 + 32 * (j / 2) + 2 * r + j % 2];
    }
    /* the 12-byte scale array, as wg_k4_scale_min reads it */
    uint8_t *q = dst + 4;
    for (int j = 0; j < 4; j++) {
        q[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        q[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        q[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
    for (int s = 0; s < 32; s++) memcpy(dst + 16 + 4 * s, g + 320 + 64 * s + 4 * r, 4);
}

/* The reference: each row's super-block rebuilt in the file's layout and dotted by the
 * portable Q8_K kernel. */
void wg_q8k_x16_matmul_q4_k_scalar(const uint8_t *group, const wg_q8k_block *x, int64_t x_stride, int nt,
                                   int64_t nb, float *out, int64_t out_stride) {
    wg_q8k_dot_fn dot;
    wg_q8k_kernels(WG_TYPE_Q4_K, WG_CPU_ISA_SCALAR, &dot, NULL);
    uint8_t row[SB];
    for (int r = 0; r < ROWS; r++)
        for (int t = 0; t < nt; t++) {
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                wg_q8k_x16_unpack_block(WG_TYPE_Q4_K, group, r, nb * 256, b, row);
                acc += dot(row, x + (size_t)t * (size_t)x_stride + b, 1);
            }
            out[(size_t)t * (size_t)out_stride + (size_t)r] = acc;
        }
}

wg_q8k_x16_fn wg_q8k_x16_kernel(uint32_t type, int isa) {
    if (!wg_q8k_x16_type(type) || isa < 0 || isa > (int)wg_cpu_isa_best()) return NULL;
    switch (isa) {
    case WG_CPU_ISA_SCALAR: return wg_q8k_x16_matmul_q4_k_scalar;
#if defined(WGLLM_X86_Q8_DOTS)
    case WG_CPU_ISA_AVX512: return wg_q8k_x16_matmul_q4_k_avx512;
    case WG_CPU_ISA_VNNI: return wg_q8k_x16_matmul_q4_k_vnni;
#endif
    default: return NULL;
    }
}
