/* The Q4_K and Q6_K x16 layouts (q8k_x16.h): packing, unpacking, the portable kernel and the
 * table of kernels per level (q8k_x16_avx512.c, q8k_x16_vnni.c). */
#include "quant/q8k_x16.h"

#include <string.h>

#include "quant/blocks.h"
#include "quant/kquant.h"
#include "quant/q8_act.h"
#include "quant/types.h"

enum { ROWS = 16, Q4K_GROUP_SB = 64 + 128 + 128 + 32 * 64, Q6K_GROUP_SB = 32 + 256 + 16 * 3 * 64 };

#define DECLARE(t, sfx)                                                                                     \
    void wg_q8k_x16_matmul_##t##sfx(const uint8_t *group, const wg_q8k_block *x, int64_t x_stride, int nt, \
                                    int64_t nb, float *out, int64_t out_stride);
DECLARE(q4_k, _scalar)
DECLARE(q6_k, _scalar)
#if defined(WGLLM_X86_Q8_DOTS)
DECLARE(q4_k, _avx512)
DECLARE(q4_k, _vnni)
DECLARE(q6_k, _avx512)
DECLARE(q6_k, _vnni)
#endif

bool wg_q8k_x16_type(uint32_t type) { return type == WG_TYPE_Q4_K || type == WG_TYPE_Q6_K; }

static size_t sb_bytes(uint32_t type) { return type == WG_TYPE_Q4_K ? WG_Q4_K_BYTES : WG_Q6_K_BYTES; }
static size_t group_sb(uint32_t type) { return type == WG_TYPE_Q4_K ? Q4K_GROUP_SB : Q6K_GROUP_SB; }

size_t wg_q8k_x16_group_bytes(uint32_t type, int64_t ne0) { return (size_t)(ne0 / 256) * group_sb(type); }

/* Q6_K: element e's 6-bit code in the file's layout. Chunk e / 128 has 64 code bytes (low
 * nibbles: e % 128 < 64, high nibbles: the rest) and 32 high-bit bytes (2 bits per 32). */
static inline int q6_code(const uint8_t *blk, int e) {
    const int lo = (blk[64 * (e / 128) + e % 64] >> (e % 128 < 64 ? 0 : 4)) & 15;
    const int hi = (blk[128 + 32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    return lo | hi << 4;
}
static inline void q6_set_code(uint8_t *blk, int e, int q) {
    blk[64 * (e / 128) + e % 64] |= (uint8_t)((q & 15) << (e % 128 < 64 ? 0 : 4));
    blk[128 + 32 * (e / 128) + e % 32] |= (uint8_t)((q >> 4) << (2 * ((e % 128) / 32)));
}
/* In the packed group, the 16 values of scale j (e / 16) lie in 3 steps of 64 bytes at
 * 288 + 192 j: values 16j + 4m .. + 3 (m < 3) in bits 0-5 of step m (row r at 4r), those
 * of m = 3 in bits 6-7 of steps 0, 1, 2 (code bits 0-1, 2-3, 4-5). */
static inline size_t q6_step_at(int r, int e, int m) {
    return 288 + 192 * (size_t)(e / 16) + 64 * (size_t)m + 4 * (size_t)r + (size_t)(e % 4);
}

static void pack_q6_k(const uint8_t *blk, int r, uint8_t *dst) {
    memcpy(dst + 2 * r, blk + 208, 2);
    for (int j = 0; j < 16; j++) dst[32 + 16 * j + r] = blk[192 + j];
    for (int e = 0; e < 256; e++) {
        const int q = q6_code(blk, e), m = (e % 16) / 4;
        if (m < 3) dst[q6_step_at(r, e, m)] |= (uint8_t)q;
        else
            for (int f = 0; f < 3; f++) dst[q6_step_at(r, e, f)] |= (uint8_t)(((q >> (2 * f)) & 3) << 6);
    }
}

static void unpack_q6_k(const uint8_t *g, int r, uint8_t *dst) {
    memset(dst, 0, WG_Q6_K_BYTES);
    memcpy(dst + 208, g + 2 * r, 2);
    for (int j = 0; j < 16; j++) dst[192 + j] = g[32 + 16 * j + r];
    for (int e = 0; e < 256; e++) {
        const int m = (e % 16) / 4;
        int q = 0;
        if (m < 3) q = g[q6_step_at(r, e, m)] & 63;
        else
            for (int f = 0; f < 3; f++) q |= (g[q6_step_at(r, e, f)] >> 6) << (2 * f);
        q6_set_code(dst, e, q);
    }
}

void wg_q8k_x16_pack(uint32_t type, const uint8_t *src, uint8_t *dst, int64_t ne0, int64_t rows) {
    const int64_t nb = ne0 / 256;
    const size_t SB = sb_bytes(type), GS = group_sb(type), rb = (size_t)nb * SB;
    for (int64_t g = 0; g < rows / ROWS; g++, src += ROWS * rb) {
        for (int64_t b = 0; b < nb; b++, dst += GS) {
            if (type == WG_TYPE_Q6_K) {
                memset(dst, 0, GS);
                for (int r = 0; r < ROWS; r++) pack_q6_k(src + (size_t)r * rb + (size_t)b * SB, r, dst);
                continue;
            }
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
    const uint8_t *g = packed + (size_t)(row / ROWS) * wg_q8k_x16_group_bytes(type, ne0) + (size_t)b * group_sb(type);
    if (type == WG_TYPE_Q6_K) {
        unpack_q6_k(g, r, dst);
        return;
    }
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
static void matmul_scalar(uint32_t type, const uint8_t *group, const wg_q8k_block *x, int64_t x_stride, int nt,
                          int64_t nb, float *out, int64_t out_stride) {
    wg_q8k_dot_fn dot;
    wg_q8k_kernels(type, WG_CPU_ISA_SCALAR, &dot, NULL);
    uint8_t row[WG_Q6_K_BYTES > WG_Q4_K_BYTES ? WG_Q6_K_BYTES : WG_Q4_K_BYTES];
    for (int r = 0; r < ROWS; r++)
        for (int t = 0; t < nt; t++) {
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                wg_q8k_x16_unpack_block(type, group, r, nb * 256, b, row);
                acc += dot(row, x + (size_t)t * (size_t)x_stride + b, 1);
            }
            out[(size_t)t * (size_t)out_stride + (size_t)r] = acc;
        }
}

void wg_q8k_x16_matmul_q4_k_scalar(const uint8_t *group, const wg_q8k_block *x, int64_t x_stride, int nt,
                                   int64_t nb, float *out, int64_t out_stride) {
    matmul_scalar(WG_TYPE_Q4_K, group, x, x_stride, nt, nb, out, out_stride);
}

void wg_q8k_x16_matmul_q6_k_scalar(const uint8_t *group, const wg_q8k_block *x, int64_t x_stride, int nt,
                                   int64_t nb, float *out, int64_t out_stride) {
    matmul_scalar(WG_TYPE_Q6_K, group, x, x_stride, nt, nb, out, out_stride);
}

wg_q8k_x16_fn wg_q8k_x16_kernel(uint32_t type, int isa) {
    if (!wg_q8k_x16_type(type) || isa < 0 || isa > (int)wg_cpu_isa_best()) return NULL;
    const bool q4 = type == WG_TYPE_Q4_K;
    switch (isa) {
    case WG_CPU_ISA_SCALAR: return q4 ? wg_q8k_x16_matmul_q4_k_scalar : wg_q8k_x16_matmul_q6_k_scalar;
#if defined(WGLLM_X86_Q8_DOTS)
    case WG_CPU_ISA_AVX512: return q4 ? wg_q8k_x16_matmul_q4_k_avx512 : wg_q8k_x16_matmul_q6_k_avx512;
    case WG_CPU_ISA_VNNI: return q4 ? wg_q8k_x16_matmul_q4_k_vnni : wg_q8k_x16_matmul_q6_k_vnni;
#endif
    default: return NULL;
    }
}
