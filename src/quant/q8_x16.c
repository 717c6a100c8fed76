/* The x16 layout (q8_x16.h): packing, unpacking, the portable kernels and the table
 * of kernels per level (q8_x16_avx2.c, q8_x16_avx512.c, q8_x16_vnni.c). */
#include "quant/q8_x16.h"

#include <string.h>

#include "quant/q8_dot_block.h"
#include "quant/q8_x16_kernels.h"

bool wg_x16_type(uint32_t type) { return type == WG_TYPE_Q4_0 || type == WG_TYPE_Q8_0; }

size_t wg_x16_group_bytes(uint32_t type, int64_t ne0) { return WG_X16_ROWS * wg_type_row_bytes(type, ne0); }

/* Code bytes of one row's block: q4_0 16 (two codes a byte), q8_0 32. */
static inline int codes_bytes(uint32_t type) { return type == WG_TYPE_Q4_0 ? 16 : 32; }

/* Where byte j of row r's block codes lies in a packed block, and q8_0's offset. */
static inline size_t code_at(int r, int j) { return 32 + (size_t)(j / 4) * 64 + (size_t)r * 4 + (size_t)(j % 4); }
static inline uint8_t code_offset(uint32_t type) { return type == WG_TYPE_Q8_0 ? 0x80 : 0; }

void wg_x16_pack(uint32_t type, const uint8_t *src, uint8_t *dst, int64_t ne0, int64_t rows) {
    const int cb = codes_bytes(type);
    const size_t bb = 2 + (size_t)cb, rb = wg_type_row_bytes(type, ne0);
    const uint8_t off = code_offset(type);
    const int64_t nb = ne0 / 32;
    for (int64_t g = 0; g < rows / WG_X16_ROWS; g++, src += WG_X16_ROWS * rb) {
        for (int64_t b = 0; b < nb; b++, dst += WG_X16_ROWS * bb) {
            for (int r = 0; r < WG_X16_ROWS; r++) {
                const uint8_t *blk = src + (size_t)r * rb + (size_t)b * bb;
                memcpy(dst + 2 * r, blk, 2);
                for (int j = 0; j < cb; j += 4) { /* 4 codes of a row at a time */
                    uint32_t w;
                    memcpy(&w, blk + 2 + j, 4);
                    w ^= off * 0x01010101u;
                    memcpy(dst + code_at(r, j), &w, 4);
                }
            }
        }
    }
}

void wg_x16_unpack_block(uint32_t type, const uint8_t *packed, int64_t row, int64_t ne0, int64_t b, uint8_t *dst) {
    const int cb = codes_bytes(type);
    const size_t bb = 2 + (size_t)cb;
    const uint8_t off = code_offset(type);
    const int r = (int)(row % WG_X16_ROWS);
    const uint8_t *g = packed + (size_t)(row / WG_X16_ROWS) * wg_x16_group_bytes(type, ne0) + (size_t)b * WG_X16_ROWS * bb;
    memcpy(dst, g + 2 * r, 2);
    for (int j = 0; j < cb; j++) dst[2 + j] = (uint8_t)(g[code_at(r, j)] ^ off);
}

void wg_x16_unpack_row(uint32_t type, const uint8_t *packed, int64_t row, int64_t ne0, uint8_t *dst) {
    const size_t bb = wg_type_row_bytes(type, 32);
    for (int64_t b = 0; b < ne0 / 32; b++) wg_x16_unpack_block(type, packed, row, ne0, b, dst + (size_t)b * bb);
}

/* The reference: each row's block rebuilt in the file's layout and dotted exactly as
 * the portable kernels of q8_dot.c do. */
static void matmul_scalar(uint32_t type, const uint8_t *group, const wg_q8_block *x, int64_t x_stride, int nt,
                          int64_t nb, float *out, int64_t out_stride) {
    const wg_q8_layout L = wg_q8_layout_of(type);
    const int cb = codes_bytes(type);
    const size_t bb = 2 + (size_t)cb;
    const uint8_t off = code_offset(type);
    for (int t = 0; t < nt; t++) {
        const wg_q8_block *xt = x + (size_t)t * (size_t)x_stride;
        for (int r = 0; r < WG_X16_ROWS; r++) {
            float acc = 0.0f;
            const uint8_t *g = group;
            for (int64_t b = 0; b < nb; b++, g += WG_X16_ROWS * bb) {
                uint8_t blk[2 + 32];
                memcpy(blk, g + 2 * r, 2);
                for (int j = 0; j < cb; j++) blk[2 + j] = (uint8_t)(g[code_at(r, j)] ^ off);
                acc += wg_q8_block_dot(type, L, blk, xt + b);
            }
            out[(size_t)t * (size_t)out_stride + (size_t)r] = acc;
        }
    }
}

void wg_x16_matmul_q4_0_scalar(const uint8_t *group, const wg_q8_block *x, int64_t x_stride, int nt, int64_t nb,
                               float *out, int64_t out_stride) {
    matmul_scalar(WG_TYPE_Q4_0, group, x, x_stride, nt, nb, out, out_stride);
}

void wg_x16_matmul_q8_0_scalar(const uint8_t *group, const wg_q8_block *x, int64_t x_stride, int nt, int64_t nb,
                               float *out, int64_t out_stride) {
    matmul_scalar(WG_TYPE_Q8_0, group, x, x_stride, nt, nb, out, out_stride);
}

#define ROW(sfx) {wg_x16_matmul_q4_0##sfx, wg_x16_matmul_q8_0##sfx}
static const wg_x16_matmul_fn k_kernels[WG_CPU_ISA_COUNT_][2] = {
    ROW(_scalar),
#if defined(WGLLM_X86_Q8_DOTS)
    ROW(_avx2),
    ROW(_avx512),
    ROW(_vnni),
#elif defined(WGLLM_ARM_Q8_DOTS)
    {NULL, NULL}, /* aarch64 levels: no x16 kernel yet, the weights stay as stored */
    {NULL, NULL},
#elif defined(__wasm__)
    {NULL, NULL}, /* wasm32 SIMD128: the weights stay as stored (see cpu_weight_create) */
#endif
};

wg_x16_matmul_fn wg_x16_matmul_kernel(uint32_t type, int isa) {
    if (!wg_x16_type(type) || isa < 0 || isa > (int)wg_cpu_isa_best()) return NULL;
    return k_kernels[isa][type == WG_TYPE_Q4_0 ? 0 : 1];
}
