/* The shapes the WebGPU backend's C code and kernels share (wgpu_shapes.h) are defined once:
 * each kernel that depends on one names it (the host puts it in front as a WGSL const) and
 * declares no number of its own for it. A kernel that went back to a literal tile size or
 * array length would drift from the C side's dispatch sizes and parameter blocks unseen.
 * Likewise the int8 kernel families share one parameter block and binding list per kind of
 * product. Needs no adapter: it reads the embedded kernel text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/webgpu/wgpu_kernels.h"
#include "backend/webgpu/wgpu_q8_batch.h"
#include "backend/webgpu/wgpu_q8_gen.h"
#include "backend/webgpu/wgpu_q8_prompt.h"
#include "backend/webgpu/wgpu_shapes.h"
#include "check.h"

/* kernel, a shape it must use, a literal it must no longer carry */
static const struct {
    const char *kernel, *shape, *literal;
} k_uses[] = {
    {"matvec", "MATVEC_TPR", "const TPR: u32 = 32u"},
    {"matvec", "MATVEC_WG", "@workgroup_size(256)"},
    {"matmul", "MATMUL_TM", "const TM: u32 = 128u"},
    {"matmul", "MATMUL_TN", "const TN: u32 = 64u"},
    {"get_rows", "GET_ROWS_MAX_IDS", "array<vec4<u32>, 30>"},
    {"rope", "ROPE_MAX_PAIRS", "array<vec4<f32>, 32>"},
    {"rope", "ROPE_MAX_ROWS", "array<vec4<u32>, 8>"},
    {"attention", "DECODE_MAX_ROWS", "array<vec4<u32>, 64>"},
    {"attention", "ROPE_MAX_PAIRS", "array<vec4<f32>, 32>"},
    {"attention", "ATTN_WG", "@workgroup_size(256)"},
    {"kv_store_rows", "DECODE_MAX_ROWS", "array<vec4<u32>, 64>"},
    {"matvec_q8_qkv", "ROPE_MAX_PAIRS", "array<vec4<f32>, 32>"},
};

#define NAME_OF(name, value) #name,
static const char *const k_names[] = {WGB_SHAPES(NAME_OF)};
#undef NAME_OF

int main(void) {
    for (size_t i = 0; i < sizeof k_uses / sizeof k_uses[0]; i++) {
        const char *src = wg_kernel_source(k_uses[i].kernel);
        CHECK_MSG(src != NULL, "kernel %s is not embedded", k_uses[i].kernel);
        if (!src) continue;
        CHECK_MSG(strstr(src, k_uses[i].shape) != NULL, "%s does not use %s", k_uses[i].kernel, k_uses[i].shape);
        CHECK_MSG(strstr(src, k_uses[i].literal) == NULL, "%s still has '%s'", k_uses[i].kernel, k_uses[i].literal);
    }
    /* no kernel declares a shape itself: the host's declaration would clash */
    static const char *const kernels[] = {"matvec", "matmul", "matmul_q8", "get_rows", "rope",
                                          "attention", "kv_store_rows", "matvec_q8_qkv"};
    char decl[64];
    for (size_t k = 0; k < sizeof kernels / sizeof kernels[0]; k++)
        for (size_t n = 0; n < sizeof k_names / sizeof k_names[0]; n++) {
            const char *src = wg_kernel_source(kernels[k]);
            snprintf(decl, sizeof decl, "const %s:", k_names[n]);
            CHECK_MSG(!src || strstr(src, decl) == NULL, "%s declares %s", kernels[k], k_names[n]);
        }
    /* the nt matvecs and the int8 tiles (prompts and batched decode) take their parameter blocks and
     * bindings (and q/k/v their split over the three matrices) from one library each */
    static const char *const io_users[] = {"matvec_q8_nt", "matvec_q8_nt_qkv", "matmul_q8_batch_qkv", "matmul_q8"};
    for (size_t k = 0; k < sizeof io_users / sizeof io_users[0]; k++) {
        const char *src = wg_kernel_source(io_users[k]);
        CHECK_MSG(src && !strstr(src, "struct Params") && !strstr(src, "@binding"), "%s declares its own io",
                  io_users[k]);
    }
    const char *qkv = wg_kernel_source("lib_q8_qkv_io"), *mat = wg_kernel_source("lib_q8_mat_io");
    CHECK(qkv && strstr(qkv, "fn qkv_locate(") && strstr(qkv, "struct Params"));
    CHECK(mat && strstr(mat, "fn put_y(") && strstr(mat, "struct Params"));
    /* the WGSL text is made from the same table */
    CHECK(strstr(WGB_SHAPES_WGSL, "const MATMUL_TM: u32 = 128u;") != NULL);
    CHECK(WGB_MATMUL_TM == 128 && WGB_DECODE_MAX_ROWS == 64);
    /* the int8 prompt tiles take every shape constant from the host (wgpu_q8_prompt.h) */
    static const char *const prompt_shape[] = {"TM", "TN", "RT", "TT"};
    const char *q8mm = wg_kernel_source("matmul_q8");
    for (size_t i = 0; i < sizeof prompt_shape / sizeof prompt_shape[0]; i++) {
        snprintf(decl, sizeof decl, "const %s:", prompt_shape[i]);
        CHECK_MSG(q8mm && !strstr(q8mm, decl), "matmul_q8 declares %s", prompt_shape[i]);
        for (int t = 0; t < WGB_Q8_PROMPT_TILE_COUNT; t++)
            CHECK_MSG(strstr(wgb_q8_prompt_prefix(t), decl), "prompt tile %d lacks %s", t, prompt_shape[i]);
    }
    /* the tile threads' registers are generated with named fields, no indexed arrays, for
     * every shape in use (the prompt tiles, then the batch tiles' kernels); shapes the
     * generator does not make are refused */
    for (int t = 0; t < WGB_Q8_PROMPT_TILE_COUNT + WGB_Q8_BATCH_KERNELS; t++) {
        int rt, tt;
        if (t < WGB_Q8_PROMPT_TILE_COUNT) {
            wgb_q8_prompt_thread(t, &rt, &tt);
        } else {
            const wgb_q8_batch_kernel b = wgb_q8_batch_spec(t - WGB_Q8_PROMPT_TILE_COUNT);
            rt = b.rt;
            tt = b.tt;
        }
        char *code = wgb_q8_tile_wgsl(rt, tt, false), *pairs = wgb_q8_tile_wgsl(rt, tt, true);
        CHECK_MSG(code && !strstr(code, "array<") && strstr(code, "fn tile_step(") && strstr(code, "acc_put(c, 0u, 0u, ") &&
                      !strstr(code, "pair_put"),
                  "tile code of %d x %d", rt, tt);
        /* gate/up pairs: row 0 with row rt / 2, and no single stores */
        snprintf(decl, sizeof decl, "pair_put(c, 0u, 0u, a.a0_0%s, a.a%d_0", tt > 1 ? "[0]" : "", rt / 2);
        CHECK_MSG(pairs && strstr(pairs, decl) && !strstr(pairs, "acc_put"), "pair code of %d x %d lacks %s", rt, tt, decl);
        free(pairs);
        snprintf(decl, sizeof decl, "a%d_%d: %s", rt - 1, (tt + 3) / 4 - 1, tt >= 4 ? "vec4<f32>" : tt == 2 ? "vec2<f32>" : "f32");
        CHECK_MSG(code && strstr(code, decl), "tile code of %d x %d lacks %s", rt, tt, decl);
        free(code);
    }
    CHECK(wgb_q8_tile_wgsl(8, 3, false) == NULL && wgb_q8_tile_wgsl(0, 4, false) == NULL &&
          wgb_q8_tile_wgsl(16, 8, false) == NULL && wgb_q8_tile_wgsl(3, 4, true) == NULL);
    CHECK_DONE();
}
