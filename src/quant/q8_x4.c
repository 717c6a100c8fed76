/* The x4 layout (q8_x4.h): packing, unpacking, the portable kernels and the table
 * of kernels per level (q8_x4_avx2.c, q8_x4_avx512.c, q8_x4_vnni.c). */
#include "quant/q8_x4.h"

#include <string.h>

#include "quant/q8_dot_block.h"
#include "quant/q8_x4_kernels.h"

void wg_x4_offset_x(wg_q8_block *x, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++)
        for (int j = 0; j < 32; j++) x[b].q[j] = (int8_t)((uint8_t)x[b].q[j] ^ 0x80u);
}

bool wg_x4_type(uint32_t type) { return type == WG_TYPE_Q4_0 || type == WG_TYPE_Q8_0; }

size_t wg_x4_group_bytes(uint32_t type, int64_t ne0) { return 4 * wg_type_row_bytes(type, ne0); }

/* Block b of the group: 4 scales of 2 bytes, then 4 runs of codes. */
static inline size_t codes_bytes(uint32_t type) { return type == WG_TYPE_Q4_0 ? 16 : 32; }

void wg_x4_pack(uint32_t type, const uint8_t *src, uint8_t *dst, int64_t ne0, int64_t rows) {
    const size_t cb = codes_bytes(type), bb = 2 + cb, rb = wg_type_row_bytes(type, ne0);
    const int64_t nb = ne0 / 32;
    for (int64_t g = 0; g < rows / 4; g++, src += 4 * rb) {
        for (int64_t b = 0; b < nb; b++, dst += 4 * bb) {
            for (int i = 0; i < 4; i++) {
                const uint8_t *blk = src + (size_t)i * rb + (size_t)b * bb;
                memcpy(dst + 2 * i, blk, 2);
                memcpy(dst + 8 + (size_t)i * cb, blk + 2, cb);
            }
        }
    }
}

void wg_x4_unpack_row(uint32_t type, const uint8_t *packed, int64_t row, int64_t ne0, uint8_t *dst) {
    const size_t cb = codes_bytes(type), bb = 2 + cb;
    const int64_t nb = ne0 / 32;
    const int i = (int)(row % 4);
    const uint8_t *g = packed + (size_t)(row / 4) * wg_x4_group_bytes(type, ne0);
    for (int64_t b = 0; b < nb; b++, g += 4 * bb, dst += bb) {
        memcpy(dst, g + 2 * i, 2);
        memcpy(dst + 2, g + 8 + (size_t)i * cb, cb);
    }
}

/* The reference: each row's block rebuilt in the file's layout and dotted exactly as
 * the portable kernels of q8_dot.c do. */
static void matmul_scalar(uint32_t type, const uint8_t *group, const wg_q8_block *x, int64_t x_stride, int nt,
                          int64_t nb, float *out, int64_t out_stride) {
    const wg_q8_layout L = wg_q8_layout_of(type);
    const size_t cb = codes_bytes(type), bb = 2 + cb;
    for (int t = 0; t < nt; t++) {
        const wg_q8_block *xt = x + (size_t)t * (size_t)x_stride;
        for (int i = 0; i < 4; i++) {
            float acc = 0.0f;
            const uint8_t *g = group;
            for (int64_t b = 0; b < nb; b++, g += 4 * bb) {
                uint8_t blk[2 + 32];
                memcpy(blk, g + 2 * i, 2);
                memcpy(blk + 2, g + 8 + (size_t)i * cb, cb);
                wg_q8_block xs = xt[b]; /* the codes back to signed */
                for (int j = 0; j < 32; j++) xs.q[j] = (int8_t)((uint8_t)xs.q[j] ^ 0x80u);
                acc += wg_q8_block_dot(type, L, blk, &xs);
            }
            out[(size_t)t * (size_t)out_stride + (size_t)i] = acc;
        }
    }
}

void wg_x4_matmul_q4_0_scalar(const uint8_t *group, const wg_q8_block *x, int64_t x_stride, int nt, int64_t nb,
                              float *out, int64_t out_stride) {
    matmul_scalar(WG_TYPE_Q4_0, group, x, x_stride, nt, nb, out, out_stride);
}

void wg_x4_matmul_q8_0_scalar(const uint8_t *group, const wg_q8_block *x, int64_t x_stride, int nt, int64_t nb,
                              float *out, int64_t out_stride) {
    matmul_scalar(WG_TYPE_Q8_0, group, x, x_stride, nt, nb, out, out_stride);
}

#define ROW(sfx) {wg_x4_matmul_q4_0##sfx, wg_x4_matmul_q8_0##sfx}
static const wg_x4_matmul_fn k_kernels[WG_CPU_ISA_COUNT_][2] = {
    ROW(_scalar),
#if defined(WGLLM_X86_Q8_DOTS)
    ROW(_avx2),
    ROW(_avx512),
    ROW(_vnni),
#endif
};

wg_x4_matmul_fn wg_x4_matmul_kernel(uint32_t type, int isa) {
    if (!wg_x4_type(type) || isa < 0 || isa > (int)wg_cpu_isa_best()) return NULL;
    return k_kernels[isa][type == WG_TYPE_Q4_0 ? 0 : 1];
}
