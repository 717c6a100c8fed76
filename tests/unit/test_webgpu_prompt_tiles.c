/* Every shape of the int8 prompt tiles (kernels/matmul_q8.wgsl with lib_q8_batch.wgsl in the shapes of
 * wgpu_q8_prompt.h), each forced in turn as the autotune's choice (WGB_TUNE_Q8_PROMPT), for
 * every int8 weight format (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K), against the int8 reference of
 * int8_ref.h: the C dequantizer's rows times x rounded to int8 blocks, summed in double.
 * The kernel's block dots are exact integers, so what differs is the rounding of the scale
 * products and the f32 sum over k / 32 blocks: bound 1e-5 of max|ref| per token (the bound
 * of the other int8 tests), beyond what x's near-tie elements rounding the other way on a
 * GPU explain (int8_ref.h). A wrong row, token, block, scale or min gives O(1e-2) or more.
 * Shapes: token counts 65 and 131 (odd; partial token tiles of 64 and 128), rows 100
 * (partial row tiles of 64 and 128), Q4_0 and Q8_0 rows of 3 and 5 blocks (a partial step
 * of 2 and of 4 blocks), the K-quants' rows of 1 and 3 super-blocks; out = W x and
 * out += W x. It checks that the forced tile's kernel ran and no other prompt tile did, and
 * that on a device with workgroup memory for the first tile only a pick of another runs the
 * first.
 * Runs on any adapter (CI: lavapipe, whose 32 KiB of workgroup memory holds every tile);
 * none is a failure. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/webgpu/wgpu_autotune.h"
#include "backend/webgpu/wgpu_backend.h"
#include "backend/webgpu/wgpu_internal.h"
#include "check.h"
#include "webgpu_test.h"
#include "int8_ref.h"
#include "quant/quant.h"
#include "quant/types.h"

#define BOUND_REF 1e-5

#define TEST_RAND_SEED 0x9e3779b97f4a7c15ull
#include "test_rand.h"

/* Random rows whose 16-element groups differ in amplitude and offset, so that the K-quants'
 * sub-block scales and mins span their range; quantized to `type`. */
static uint8_t *weight_bytes(uint32_t type, int64_t k, int64_t m) {
    const size_t rb = wg_type_row_bytes(type, k);
    uint8_t *w = malloc(rb * (size_t)m);
    float *row = malloc(sizeof(float) * (size_t)k);
    for (int64_t r = 0; r < m; r++) {
        for (int64_t g = 0; g < k; g += 16) {
            const float amp = 0.05f + 2.0f * (frand() + 1.0f), off = 0.5f * frand() * amp;
            for (int64_t e = g; e < g + 16; e++) row[e] = off + amp * frand();
        }
        CHECK(wg_quantize_row(type, row, w + (size_t)r * rb, k));
    }
    free(row);
    return w;
}

static double g_worst;

/* y = W x (or y += W x over a random y) for n tokens, against the reference; tile t's kernel
 * must be the one that ran. */
static void check_product(wg_backend *g, uint32_t type, int t, int64_t k, int64_t m, int n, bool accumulate) {
    wgb_ctx *c = wgb_ctx_of(g);
    char what[160];
    snprintf(what, sizeof what, "%s tile %s k %lld m %lld n %d%s", wg_type_name(type), wgb_q8_prompt_name(t),
             (long long)k, (long long)m, n, accumulate ? " accumulate" : "");
    char err[512] = "";
    uint8_t *wb = weight_bytes(type, k, m);
    const size_t nx = (size_t)(k * n), ny = (size_t)(m * n);
    float *x = malloc(sizeof(float) * nx), *y0 = malloc(sizeof(float) * ny), *got = malloc(sizeof(float) * ny);
    double *ref = malloc(sizeof(double) * (size_t)m), *slack = malloc(sizeof(double) * (size_t)m);
    for (size_t i = 0; i < nx; i++) x[i] = 2.0f * frand();
    for (size_t i = 0; i < ny; i++) y0[i] = accumulate ? 4.0f * frand() : NAN; /* stale values to overwrite */
    wg_tensor *w = g->ops->weight_create(g, type, k, m, wb, err, sizeof err);
    CHECK_MSG(w != NULL, "%s: weight: %s", what, err);
    wg_tensor *xt = g->ops->buffer_create(g, k, n, err, sizeof err), *yt = g->ops->buffer_create(g, m, n, err, sizeof err);
    CHECK_MSG(xt && yt, "%s: buffers: %s", what, err);
    if (w && xt && yt) {
        g->ops->write_rows(g, xt, 0, n, x);
        g->ops->write_rows(g, yt, 0, n, y0);
        const int f = wgb_q8_format_of(type);
        uint64_t before[WGB_K_COUNT];
        memcpy(before, c->dispatched, sizeof before);
        if (accumulate) wgb_op_matmul_add(g, w, xt, n, yt);
        else g->ops->matmul(g, w, xt, n, yt);
        int others = 0;
        for (int u = 0; u < WGB_Q8_PROMPT_TILE_COUNT; u++)
            others += u != t && c->dispatched[wgb_q8_prompt_kernel(f, u)] != before[wgb_q8_prompt_kernel(f, u)];
        CHECK_MSG(c->dispatched[wgb_q8_prompt_kernel(f, t)] > before[wgb_q8_prompt_kernel(f, t)] && others == 0,
                  "%s: the tile's kernel did not run (%d other prompt tiles did)", what, others);
        g->ops->read_rows(g, yt, 0, n, got);
        const bool ok = g->ops->synchronize(g);
        CHECK_MSG(ok, "%s: webgpu: %s", what, g->ops->error(g));
        for (int tok = 0; ok && tok < n; tok++) {
            matvec_q8_ref(type, wb, k, m, x + (size_t)(tok * k), ref);
            matvec_q8_tie_slack(type, wb, k, m, x + (size_t)(tok * k), slack);
            double maxr = 0.0, maxd = 0.0;
            for (int64_t r = 0; r < m; r++) {
                const double v = (double)got[tok * m + r] - (accumulate ? (double)y0[tok * m + r] : 0.0);
                const double e = fabs(v - ref[r]) - slack[r], d = e < 0.0 ? 0.0 : e; /* NaN stays NaN */
                if (!(d <= maxd)) maxd = d;
                if (fabs(ref[r]) > maxr) maxr = fabs(ref[r]);
            }
            const double rel = maxr > 0 ? maxd / maxr : maxd;
            CHECK_MSG(rel <= BOUND_REF, "%s: token %d: relative error %.3g > %.1g", what, tok, rel, BOUND_REF);
            if (!(rel <= g_worst)) g_worst = rel;
        }
    }
    if (w) g->ops->tensor_free(g, w);
    if (xt) g->ops->tensor_free(g, xt);
    if (yt) g->ops->tensor_free(g, yt);
    free(wb);
    free(x);
    free(y0);
    free(got);
    free(ref);
    free(slack);
}

int main(void) {
    unsetenv("WGLLM_WEBGPU_Q4_INT8");
    unsetenv("WGLLM_WEBGPU_MAX_BINDING");
    wg_backend *g = test_webgpu_create();
    if (!g) CHECK_DONE();
    wgb_ctx *c = wgb_ctx_of(g);
    static const uint32_t types[] = {WG_TYPE_Q4_0, WG_TYPE_Q8_0, WG_TYPE_Q4_K, WG_TYPE_Q5_K, WG_TYPE_Q6_K};
    for (int t = 0; t < WGB_Q8_PROMPT_TILE_COUNT; t++) {
        CHECK_MSG(wgb_q8_prompt_fits(c, t), "tile %s needs %u bytes of workgroup memory, the device has %u",
                  wgb_q8_prompt_name(t), wgb_q8_prompt_wg_bytes(t), c->dev->limits.max_compute_workgroup_storage_size);
        wgb_autotune_force(c, WGB_TUNE_Q8_PROMPT, t);
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
            const bool kq = wgb_q8_row_multiple(wgb_q8_format_of(types[i])) == 256;
            check_product(g, types[i], t, kq ? 256 : 96, 100, 65, false);
            check_product(g, types[i], t, kq ? 768 : 160, 100, 131, true);
        }
    }
    printf("worst relative error vs the int8 reference over %d tiles and 5 formats: %.3g\n",
           WGB_Q8_PROMPT_TILE_COUNT, g_worst);
    /* a device with workgroup memory for tile 0 only: a pick of a bigger tile runs tile 0,
     * and the pipelines refuse the others without an error message */
    uint32_t *limit = &c->dev->limits.max_compute_workgroup_storage_size;
    const uint32_t saved = *limit;
    *limit = wgb_q8_prompt_wg_bytes(0);
    char err[256];
    for (int t = 1; t < WGB_Q8_PROMPT_TILE_COUNT; t++) {
        CHECK_MSG(!wgb_q8_prompt_fits(c, t), "tile %s fits %u bytes", wgb_q8_prompt_name(t), *limit);
        wgb_autotune_force(c, WGB_TUNE_Q8_PROMPT, t);
        check_product(g, WG_TYPE_Q4_0, 0, 96, 100, 65, false);
        err[0] = 'x';
        CHECK(!wgb_pipelines_add_q8_prompt(c->dev, &c->pl, WGB_Q8F_Q4_0, t, err, sizeof err) && err[0] == 0);
    }
    err[0] = 'x';
    CHECK(wgb_pipelines_add_q8_prompt(c->dev, &c->pl, WGB_Q8F_Q4_0, 0, err, sizeof err) && err[0] == 0);
    *limit = saved;
    CHECK_MSG(!c->failed, "%s", c->error);
    g->ops->destroy(g);
    CHECK_DONE();
}
