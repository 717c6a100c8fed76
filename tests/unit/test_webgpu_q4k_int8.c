/* kernels/matvec_q4_k_q8.wgsl on its own (the int8-activation decode kernel for Q4_K
 * weights), run through the device layer as the host runs matvec_q4_0_q8: x rounded to
 * int8 blocks by kernels/quantize_x_q8.wgsl, then y = W x. Both entry points (workgroup
 * memory, and subgroups where the device has them), rows not a multiple of the 4 rows of a
 * workgroup, rows longer than one pass of the 128 invocations, y at an offset with
 * neighbours that must stay untouched, and the accumulating form (y += W x).
 * Runs on any adapter (CI: lavapipe); none is a failure.
 *
 * Reference: the row dequantized by the C dequantizer (wg_dequantize_row, bit-exact with
 * llama.cpp) times the int8 x the GPU made (read back: q * d per block), summed in double.
 * The kernel's integer sums are exact and its f32 scale products round at ~1e-7, so the
 * bound is 1e-5 relative to max|y|; a wrong scale, min or nibble gives errors of O(1e-2). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/webgpu/wgpu_device.h"
#include "backend/webgpu/wgpu_kernels.h"
#include "check.h"
#include "quant/quant.h"
#include "quant/types.h"

#define BOUND 1e-5
#define ROWS 4u /* kernels/matvec_q4_k_q8.wgsl: ROWS */

static uint64_t g_rng = 0x853c49e6748fea9bull;

static float frand(void) { /* uniform in [-1, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / (double)(1ull << 23))) - 1.0f;
}

typedef struct {
    wg_device *d;
    WGPUComputePipeline quant, matvec;
} ctx;

static WGPUBuffer storage(ctx *c, const void *data, uint64_t bytes) {
    char err[512] = "";
    WGPUBuffer b = wg_buffer_create(c->d, bytes, "test", err, sizeof err);
    CHECK_MSG(b != NULL, "%s", err);
    if (b && data) CHECK_MSG(wg_buffer_write(c->d, b, 0, data, (size_t)((bytes + 3) & ~3ull), err, sizeof err), "%s", err);
    return b;
}

static WGPUBuffer uniform(ctx *c, const uint32_t p[4]) {
    WGPUBufferDescriptor desc = {NULL, wg_sv("params"), WGPUBufferUsage_Uniform | WGPUBufferUsage_CopyDst, 16, false};
    WGPUBuffer b = c->d->api->DeviceCreateBuffer(c->d->device, &desc);
    CHECK(b != NULL);
    if (b) c->d->api->QueueWriteBuffer(c->d->queue, b, 0, p, 16);
    return b;
}

/* One dispatch of `pipe` over buffers bufs[0..n) (bindings 0..n-1, whole buffers), run now. */
static bool run(ctx *c, WGPUComputePipeline pipe, WGPUBuffer *bufs, const uint64_t *sizes, int n, uint32_t groups) {
    const wg_wgpu *api = c->d->api;
    WGPUBindGroupEntry e[8];
    for (int i = 0; i < n; i++) {
        WGPUBindGroupEntry x = {NULL, (uint32_t)i, bufs[i], 0, (sizes[i] + 3) & ~3ull, NULL, NULL};
        e[i] = x;
    }
    WGPUBindGroupLayout layout = api->ComputePipelineGetBindGroupLayout(pipe, 0);
    WGPUBindGroupDescriptor desc = {NULL, wg_sv("test"), layout, (size_t)n, e};
    WGPUBindGroup bg = api->DeviceCreateBindGroup(c->d->device, &desc);
    api->BindGroupLayoutRelease(layout);
    WGPUCommandEncoder enc = api->DeviceCreateCommandEncoder(c->d->device, NULL);
    WGPUComputePassEncoder pass = api->CommandEncoderBeginComputePass(enc, NULL);
    api->ComputePassEncoderSetPipeline(pass, pipe);
    api->ComputePassEncoderSetBindGroup(pass, 0, bg, 0, NULL);
    api->ComputePassEncoderDispatchWorkgroups(pass, groups, 1, 1);
    api->ComputePassEncoderEnd(pass);
    api->ComputePassEncoderRelease(pass);
    WGPUCommandBuffer cmd = api->CommandEncoderFinish(enc, NULL);
    api->CommandEncoderRelease(enc);
    api->QueueSubmit(c->d->queue, 1, &cmd);
    api->CommandBufferRelease(cmd);
    api->BindGroupRelease(bg);
    char err[2048] = "";
    bool ok = wg_device_finish(c->d, err, sizeof err) && wg_device_check(c->d, err, sizeof err);
    CHECK_MSG(ok, "dispatch: %s", err);
    return ok;
}

static void check_matvec(ctx *c, const char *entry, uint32_t k, uint32_t m, bool accumulate) {
    const uint32_t nb = k / 32, y_off = 3, y_tail = 5, ny = m + y_off + y_tail;
    const size_t rb = wg_type_row_bytes(WG_TYPE_Q4_K, k);
    const float sentinel = -777.0f;
    uint8_t *w = malloc(rb * m);
    float *row = malloc(sizeof(float) * k), *x = malloc(sizeof(float) * k), *y = malloc(sizeof(float) * ny);
    float *y0 = malloc(sizeof(float) * ny), *xs = malloc(sizeof(float) * nb);
    int8_t *xq = malloc(k);
    for (uint32_t r = 0; r < m; r++) {
        for (uint32_t g = 0; g < k; g += 16) { /* groups of varied amplitude and offset: all 6 scale bits */
            float amp = 0.05f + 2.0f * (frand() + 1.0f), off = 0.5f * frand() * amp;
            for (uint32_t e = g; e < g + 16; e++) row[e] = off + amp * frand();
        }
        CHECK(wg_quantize_row(WG_TYPE_Q4_K, row, w + (size_t)r * rb, k));
    }
    for (uint32_t i = 0; i < k; i++) x[i] = frand() * (i % 97 == 0 ? 8.0f : 1.0f);
    for (uint32_t i = 0; i < ny; i++) y0[i] = i >= y_off && i < y_off + m && accumulate ? frand() : sentinel;

    uint32_t qp[4] = {k, 1, 0, 0}, mp[4] = {k, m, y_off, accumulate};
    WGPUBuffer bw = storage(c, w, rb * m), bx = storage(c, x, (uint64_t)k * 4), bq = storage(c, NULL, k),
               bs = storage(c, NULL, (uint64_t)nb * 4), by = storage(c, y0, (uint64_t)ny * 4), bqp = uniform(c, qp),
               bmp = uniform(c, mp);
    char err[1024] = "";
    if (bw && bx && bq && bs && by && bqp && bmp) {
        WGPUBuffer qb[4] = {bx, bq, bs, bqp}, mb[5] = {bw, bq, bs, by, bmp};
        uint64_t qsz[4] = {(uint64_t)k * 4, k, (uint64_t)nb * 4, 16};
        uint64_t msz[5] = {rb * m, k, (uint64_t)nb * 4, (uint64_t)ny * 4, 16};
        bool ok = run(c, c->quant, qb, qsz, 4, (k / 4 + 255) / 256) && run(c, c->matvec, mb, msz, 5, (m + ROWS - 1) / ROWS);
        ok = ok && wg_buffer_read(c->d, bq, 0, xq, k, err, sizeof err) &&
             wg_buffer_read(c->d, bs, 0, xs, (size_t)nb * 4, err, sizeof err) &&
             wg_buffer_read(c->d, by, 0, y, (size_t)ny * 4, err, sizeof err);
        CHECK_MSG(ok, "%s", err);
        if (ok) {
            double maxr = 0.0, maxd = 0.0;
            for (uint32_t r = 0; r < m; r++) {
                wg_dequantize_row(WG_TYPE_Q4_K, w + (size_t)r * rb, row, k);
                double ref = accumulate ? (double)y0[y_off + r] : 0.0;
                for (uint32_t i = 0; i < k; i++) ref += (double)row[i] * ((double)xq[i] * (double)xs[i / 32]);
                double d = fabs((double)y[y_off + r] - ref);
                if (!(d <= maxd)) maxd = d;
                if (fabs(ref) > maxr) maxr = fabs(ref);
            }
            double rel = maxd / maxr;
            printf("matvec_q4_k_q8 %s k=%u m=%u%s: relative error %.3g\n", entry, k, m,
                   accumulate ? " (accumulate)" : "", rel);
            CHECK_MSG(rel <= BOUND, "%s k=%u m=%u: relative error %.3g > %.1g", entry, k, m, rel, BOUND);
            for (uint32_t i = 0; i < ny; i++)
                if (i < y_off || i >= y_off + m) CHECK_MSG(y[i] == sentinel, "y[%u] outside the rows was written", i);
        }
    }
    WGPUBuffer all[5] = {bw, bx, bq, bs, by};
    for (int i = 0; i < 5; i++)
        if (all[i]) wg_buffer_free(c->d, all[i]);
    if (bqp) c->d->api->BufferRelease(bqp);
    if (bmp) c->d->api->BufferRelease(bmp);
    free(w);
    free(row);
    free(x);
    free(y);
    free(y0);
    free(xs);
    free(xq);
}

/* The kernel text with the subgroup section cut out (devices without the feature). */
static char *without_subgroups(const char *src) {
    char *s = strdup(src);
    char *b = s ? strstr(s, "// SUBGROUPS-BEGIN") : NULL;
    char *e = b ? strstr(b, "// SUBGROUPS-END") : NULL;
    CHECK_MSG(b && e, "matvec_q4_k_q8.wgsl lacks its SUBGROUPS-BEGIN/END markers");
    if (b && e) memmove(b, e + strlen("// SUBGROUPS-END"), strlen(e + strlen("// SUBGROUPS-END")) + 1);
    return s;
}

static void run_entry(ctx *c, const char *entry) {
    const char *src = wg_kernel_source("matvec_q4_k_q8");
    CHECK(src != NULL);
    if (!src) return;
    char *text = strcmp(entry, "main") == 0 ? without_subgroups(src) : strdup(src);
    char err[4096] = "";
    c->matvec = text ? wg_pipeline_create(c->d, "matvec_q4_k_q8", text, entry, err, sizeof err) : NULL;
    CHECK_MSG(c->matvec != NULL, "matvec_q4_k_q8 (%s): %s", entry, err);
    free(text);
    if (!c->matvec) return;
    check_matvec(c, entry, 256, 37, false);   /* one super-block a row, 8 units: most invocations idle */
    check_matvec(c, entry, 1024, 300, false);
    check_matvec(c, entry, 4352, 9, false);   /* 136 units a row: invocations take a second one */
    check_matvec(c, entry, 512, 61, true);
    c->d->api->ComputePipelineRelease(c->matvec);
    c->matvec = NULL;
}

int main(void) {
    char err[4096] = "";
    wg_gpu *g = wg_gpu_open(NULL, err, sizeof err);
    CHECK_MSG(g && g->n_adapters > 0, "no WebGPU adapter (a GPU, or Mesa's lavapipe on CI): %s",
              g ? "none found" : err);
    ctx c = {0};
    if (g && g->n_adapters > 0) c.d = wg_device_create(g, 0, err, sizeof err);
    CHECK_MSG(!g || g->n_adapters == 0 || c.d != NULL, "%s", err);
    if (c.d) {
        /* the backend puts the shared rounding functions in front of the kernel; so does this test */
        const char *lib = wg_kernel_source("lib_q8_round"), *body = wg_kernel_source("quantize_x_q8");
        CHECK(lib != NULL && body != NULL);
        char *qsrc = lib && body ? malloc(strlen(lib) + strlen(body) + 2) : NULL;
        if (qsrc) sprintf(qsrc, "%s\n%s", lib, body);
        c.quant = qsrc ? wg_pipeline_create(c.d, "quantize_x_q8", qsrc, "main", err, sizeof err) : NULL;
        free(qsrc);
        CHECK_MSG(c.quant != NULL, "quantize_x_q8: %s", err);
        if (c.quant) {
            run_entry(&c, "main");
            if (c.d->features.subgroups) run_entry(&c, "main_subgroup");
            else printf("device without subgroups: main_subgroup not run\n");
            c.d->api->ComputePipelineRelease(c.quant);
        }
        wg_device_destroy(c.d);
    }
    if (g) wg_gpu_close(g);
    CHECK_DONE();
}
