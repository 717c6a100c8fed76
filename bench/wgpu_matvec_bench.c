/* Standalone benchmark and correctness check of the decode matrix-vector kernels
 * (kernels/quantize_x_q8.wgsl + kernels/matvec_q4_0_q8.wgsl) on the first WebGPU adapter.
 *
 *   wgpu_matvec_bench KERNEL_DIR [--check] [--check-big] [--time] [--sweep]
 *                     [--pool-mib N] [--copy-mib N] [--passes N]
 *
 * --check      small and odd shapes (7B shapes scaled down, 2-D grids, offsets) against the CPU
 * --check-big  the Llama-2-7B decode shapes against the CPU
 * --time       kernel times of the 7B shapes from timestamp queries, GB/s of weights read,
 *              next to the copy bandwidth (copyBufferToBuffer) and a plain WGSL read kernel
 * --sweep      the same timing for several workgroup sizes / rows per workgroup
 *
 * Errors reported: vs the exact integer math in double on the GPU's own int8 x (bound 1e-5 of
 * max |y|), and vs f32 x with the dequantized weights (larger: x carries 8-bit error).
 * Exit status 0 when every check passed. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/webgpu/wgpu_device.h"
#include "quant/quant.h"

#define QX_WG 256u     /* quantize_x_q8 workgroup size (invocations per 4 elements) */
#define MAX_GRID 65535u
#define BOUND_INT 1e-5  /* vs exact integer math, relative to max |y| */
#define BOUND_F32 3e-2  /* vs f32 x, relative to max |y| (x quantized to 8 bits) */

typedef struct bench {
    wg_device *d;
    const wg_wgpu *api;
    char dir[1024];
    int failures;
    uint64_t rng;
} bench;

typedef struct kernel {
    WGPUComputePipeline pipe;
    WGPUBindGroupLayout layout;
    unsigned wg, rows;
    bool subgroups;
} kernel;

/* ---------------------------------------------------------------- small helpers */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_uniform(uint64_t *s) { /* [-1, 1) */
    return (float)((double)(rng_next(s) >> 11) * 0x1p-52 - 1.0);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

/* Replaces the whole line that starts with `prefix` by `line` (the sweep's knob). */
static char *replace_line(char *src, const char *prefix, const char *line) {
    char *at = strstr(src, prefix);
    if (!at) return src;
    char *eol = strchr(at, '\n');
    if (!eol) return src;
    size_t head = (size_t)(at - src), tail = strlen(eol);
    char *out = malloc(head + strlen(line) + tail + 1);
    if (!out) return src;
    memcpy(out, src, head);
    strcpy(out + head, line);
    strcpy(out + head + strlen(line), eol);
    free(src);
    return out;
}

/* Without subgroups the section between the marker lines is cut out. With them the text is
 * used as is: naga (wgpu-native 29) rejects `enable subgroups;` and accepts the subgroup
 * built-ins when the device has the feature. */
static char *apply_subgroups(char *src, bool subgroups) {
    if (subgroups) return src;
    char *b = strstr(src, "// SUBGROUPS-BEGIN"), *e = strstr(src, "// SUBGROUPS-END");
    if (b && e && e > b) {
        char *eol = strchr(e, '\n');
        char *rest = eol ? eol + 1 : e + strlen(e);
        memmove(b, rest, strlen(rest) + 1);
    }
    return src;
}

static bool kernel_load(bench *B, const char *file, const char *entry, unsigned wg, unsigned rows, bool subgroups,
                        kernel *k) {
    memset(k, 0, sizeof *k);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", B->dir, file);
    char *src = read_text(path);
    if (!src) {
        fprintf(stderr, "cannot read %s\n", path);
        return false;
    }
    if (wg) {
        char line[64];
        snprintf(line, sizeof line, "const WG: u32 = %uu;", wg);
        src = replace_line(src, "const WG: u32 =", line);
        snprintf(line, sizeof line, "const ROWS: u32 = %uu;", rows);
        src = replace_line(src, "const ROWS: u32 =", line);
    }
    src = apply_subgroups(src, subgroups);
    char err[8192] = "";
    k->pipe = wg_pipeline_create(B->d, file, src, entry, err, sizeof err);
    free(src);
    if (!k->pipe) {
        fprintf(stderr, "%s:%s: %s\n", file, entry, err);
        return false;
    }
    k->layout = B->api->ComputePipelineGetBindGroupLayout(k->pipe, 0);
    k->wg = wg ? wg : 128;
    k->rows = rows ? rows : 4;
    k->subgroups = subgroups;
    return true;
}

static void kernel_free(bench *B, kernel *k) {
    if (k->layout) B->api->BindGroupLayoutRelease(k->layout);
    if (k->pipe) B->api->ComputePipelineRelease(k->pipe);
    memset(k, 0, sizeof *k);
}

static WGPUBuffer uniform_create(bench *B, const uint32_t p[4]) {
    WGPUBufferDescriptor desc = WGPU_BUFFER_DESCRIPTOR_INIT;
    desc.label = wg_sv("params");
    desc.size = 16;
    desc.usage = WGPUBufferUsage_Uniform | WGPUBufferUsage_CopyDst;
    WGPUBuffer b = B->api->DeviceCreateBuffer(B->d->device, &desc);
    if (b) B->api->QueueWriteBuffer(B->d->queue, b, 0, p, 16);
    return b;
}

typedef struct binding {
    WGPUBuffer buf;
    uint64_t off, size;
} binding;

static WGPUBindGroup bind(bench *B, const kernel *k, int n, const binding *bs) {
    WGPUBindGroupEntry e[8];
    for (int i = 0; i < n; i++) {
        WGPUBindGroupEntry x = WGPU_BIND_GROUP_ENTRY_INIT;
        x.binding = (uint32_t)i;
        x.buffer = bs[i].buf;
        x.offset = bs[i].off;
        x.size = bs[i].size;
        e[i] = x;
    }
    WGPUBindGroupDescriptor desc = WGPU_BIND_GROUP_DESCRIPTOR_INIT;
    desc.layout = k->layout;
    desc.entryCount = (size_t)n;
    desc.entries = e;
    return B->api->DeviceCreateBindGroup(B->d->device, &desc);
}

/* Grid for `groups` workgroups: x up to max_x, the rest in y (kernels fold wg.y * num_workgroups.x). */
static void grid(uint32_t groups, uint32_t max_x, uint32_t *gx, uint32_t *gy) {
    *gx = groups < max_x ? groups : max_x;
    if (*gx == 0) *gx = 1;
    *gy = (groups + *gx - 1) / *gx;
}

static void dispatch(bench *B, WGPUComputePassEncoder pass, const kernel *k, WGPUBindGroup bg, uint32_t groups,
                     uint32_t max_x) {
    uint32_t gx, gy;
    grid(groups, max_x, &gx, &gy);
    B->api->ComputePassEncoderSetPipeline(pass, k->pipe);
    B->api->ComputePassEncoderSetBindGroup(pass, 0, bg, 0, NULL);
    B->api->ComputePassEncoderDispatchWorkgroups(pass, gx, gy, 1);
}

static bool submit_and_wait(bench *B, WGPUCommandEncoder enc) {
    WGPUCommandBuffer cmd = B->api->CommandEncoderFinish(enc, NULL);
    B->api->CommandEncoderRelease(enc);
    B->api->QueueSubmit(B->d->queue, 1, &cmd);
    B->api->CommandBufferRelease(cmd);
    char err[2048] = "";
    if (!wg_device_finish(B->d, err, sizeof err) || !wg_device_check(B->d, err, sizeof err)) {
        fprintf(stderr, "GPU error: %s\n", err);
        return false;
    }
    return true;
}

static uint64_t round_up(uint64_t v, uint64_t a) {
    return (v + a - 1) / a * a;
}

/* ---------------------------------------------------------------- correctness */

/* Same rule as the kernel and llama.cpp's q8_0, in f32 (scale kept in f32). */
static void cpu_quantize_x(const float *x, int k, int8_t *q, float *s) {
    for (int b = 0; b < k / 32; b++) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * b + j]));
        const float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        s[b] = d;
        for (int j = 0; j < 32; j++) q[32 * b + j] = (int8_t)roundf(x[32 * b + j] * id);
    }
}

/* y[r] = sum_b d_w d_x sum_j (q_w - 8) q_x in double; also sum_b |term| for the error scale. */
static void exact_int_dot(const uint8_t *w, int k, int m, const int8_t *q, const float *s, double *y) {
    const int nb = k / 32;
    for (int r = 0; r < m; r++) {
        double acc = 0.0;
        for (int b = 0; b < nb; b++) {
            const uint8_t *blk = w + ((size_t)r * nb + b) * 18;
            const float dw = wg_fp16_to_f32((uint16_t)(blk[0] | (blk[1] << 8)));
            long isum = 0;
            for (int j = 0; j < 16; j++) {
                isum += (long)((blk[2 + j] & 15) - 8) * q[32 * b + j];
                isum += (long)((blk[2 + j] >> 4) - 8) * q[32 * b + j + 16];
            }
            acc += (double)dw * (double)s[b] * (double)isum;
        }
        y[r] = acc;
    }
}

static double max_abs(const double *v, int n) {
    double m = 0.0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(v[i]));
    return m;
}

static double rel_err(const float *got, const double *want, int n) {
    double e = 0.0;
    for (int i = 0; i < n; i++) e = fmax(e, fabs((double)got[i] - want[i]));
    const double scale = max_abs(want, n);
    return scale > 0.0 ? e / scale : e;
}

/* One x row quantized on the GPU and one matvec, checked against the CPU.
 * x sits at x_off floats into its buffer, y at y_off; the grid's x extent is capped at max_x
 * (small caps exercise the 2-D grid). */
static void check_one(bench *B, const kernel *qx, const kernel *mv, int k, int m, uint32_t x_off, uint32_t y_off,
                      uint32_t max_x) {
    const int nb = k / 32;
    const uint64_t w_bytes = (uint64_t)m * nb * 18, w_alloc = round_up(w_bytes, 4);
    uint8_t *w = calloc(w_alloc, 1);
    float *row = malloc((size_t)k * sizeof *row);
    float *x = calloc((size_t)x_off + k, sizeof *x);
    const size_t y_n = (size_t)y_off + m + 64;
    float *y = malloc(y_n * sizeof *y), *y_init = malloc(y_n * sizeof *y);
    uint32_t *xq_gpu = malloc((size_t)k);
    float *xs_gpu = malloc((size_t)nb * sizeof(float)), *xs_cpu = malloc((size_t)nb * sizeof(float));
    int8_t *q_cpu = malloc((size_t)k);
    double *y_int = malloc((size_t)m * sizeof(double)), *y_cpu = malloc((size_t)m * sizeof(double));
    double *y_f32 = malloc((size_t)m * sizeof(double));
    WGPUBuffer bw = NULL, bx = NULL, bxq = NULL, bxs = NULL, by = NULL, pq = NULL, pm = NULL;
    WGPUBindGroup gq = NULL, gm = NULL;
    bool ok = w && row && x && y && y_init && xq_gpu && xs_gpu && xs_cpu && q_cpu && y_int && y_cpu && y_f32;
    if (!ok) {
        fprintf(stderr, "out of host memory\n");
        B->failures++;
        goto out;
    }
    /* Weights: rows of varying scale, quantized by the reference quantizer. */
    for (int r = 0; r < m; r++) {
        const float scale = 0.02f * (1.0f + (float)(r % 7));
        for (int j = 0; j < k; j++) row[j] = scale * rng_uniform(&B->rng);
        wg_quantize_row(WG_TYPE_Q4_0, row, w + (size_t)r * nb * 18, k);
    }
    /* x: blocks of different magnitudes, one all-zero block (d = 0), one with ties at .5. */
    for (int b = 0; b < nb; b++) {
        const float mag = b == 1 ? 0.0f : powf(2.0f, (float)(b % 9) - 4.0f);
        for (int j = 0; j < 32; j++) x[x_off + 32 * b + j] = mag * rng_uniform(&B->rng);
    }
    if (nb > 2)
        for (int j = 0; j < 32; j++) x[x_off + 64 + j] = (float)(j - 16) * 0.5f; /* amax 8: q = x * 127/8 */
    for (size_t i = 0; i < y_n; i++) y_init[i] = -777.0f;

    char err[4096] = "";
    bw = wg_buffer_create(B->d, w_alloc, "w", err, sizeof err);
    bx = bw ? wg_buffer_create(B->d, ((uint64_t)x_off + k) * 4, "x", err, sizeof err) : NULL;
    bxq = bx ? wg_buffer_create(B->d, (uint64_t)k, "xq", err, sizeof err) : NULL;
    bxs = bxq ? wg_buffer_create(B->d, (uint64_t)nb * 4, "xs", err, sizeof err) : NULL;
    by = bxs ? wg_buffer_create(B->d, y_n * 4, "y", err, sizeof err) : NULL;
    if (!by) {
        fprintf(stderr, "buffer: %s\n", err);
        B->failures++;
        goto out;
    }
    ok = wg_buffer_write(B->d, bw, 0, w, w_alloc, err, sizeof err) &&
         wg_buffer_write(B->d, bx, 0, x, ((size_t)x_off + k) * 4, err, sizeof err) &&
         wg_buffer_write(B->d, by, 0, y_init, y_n * 4, err, sizeof err);
    if (!ok) {
        fprintf(stderr, "upload: %s\n", err);
        B->failures++;
        goto out;
    }
    const uint32_t p_q[4] = {(uint32_t)k, 1, x_off, 0}, p_m[4] = {(uint32_t)k, (uint32_t)m, y_off, 0};
    pq = uniform_create(B, p_q);
    pm = uniform_create(B, p_m);
    const binding bq[4] = {{bx, 0, ((uint64_t)x_off + k) * 4}, {bxq, 0, (uint64_t)k}, {bxs, 0, (uint64_t)nb * 4},
                           {pq, 0, 16}};
    const binding bm[5] = {{bw, 0, w_alloc}, {bxq, 0, (uint64_t)k}, {bxs, 0, (uint64_t)nb * 4},
                           {by, 0, y_n * 4}, {pm, 0, 16}};
    gq = bind(B, qx, 4, bq);
    gm = bind(B, mv, 5, bm);
    WGPUCommandEncoder enc = B->api->DeviceCreateCommandEncoder(B->d->device, NULL);
    WGPUComputePassEncoder pass = B->api->CommandEncoderBeginComputePass(enc, NULL);
    dispatch(B, pass, qx, gq, (uint32_t)((k / 4 + QX_WG - 1) / QX_WG), max_x);
    dispatch(B, pass, mv, gm, (uint32_t)((m + mv->rows - 1) / mv->rows), max_x);
    B->api->ComputePassEncoderEnd(pass);
    B->api->ComputePassEncoderRelease(pass);
    if (!submit_and_wait(B, enc)) {
        B->failures++;
        goto out;
    }
    ok = wg_buffer_read(B->d, bxq, 0, xq_gpu, (size_t)k, err, sizeof err) &&
         wg_buffer_read(B->d, bxs, 0, xs_gpu, (size_t)nb * 4, err, sizeof err) &&
         wg_buffer_read(B->d, by, 0, y, y_n * 4, err, sizeof err);
    if (!ok) {
        fprintf(stderr, "read-back: %s\n", err);
        B->failures++;
        goto out;
    }

    /* x quantization: scales to 1e-6 relative, codes equal or (rounding ties after a
     * differently rounded 1/d) one apart. */
    const int8_t *q_gpu = (const int8_t *)xq_gpu;
    cpu_quantize_x(x + x_off, k, q_cpu, xs_cpu);
    int q_off_by_one = 0, q_bad = 0;
    double xs_err = 0.0;
    for (int b = 0; b < nb; b++)
        if (xs_cpu[b] > 0.0f) xs_err = fmax(xs_err, fabs((double)xs_gpu[b] - xs_cpu[b]) / xs_cpu[b]);
        else if (xs_gpu[b] != 0.0f) xs_err = 1.0;
    for (int i = 0; i < k; i++) {
        const int dq = abs((int)q_gpu[i] - (int)q_cpu[i]);
        q_off_by_one += dq == 1;
        q_bad += dq > 1;
    }

    exact_int_dot(w, k, m, q_gpu, xs_gpu, y_int);
    exact_int_dot(w, k, m, q_cpu, xs_cpu, y_cpu);
    for (int r = 0; r < m; r++) {
        wg_dequantize_row(WG_TYPE_Q4_0, w + (size_t)r * nb * 18, row, k);
        double acc = 0.0;
        for (int j = 0; j < k; j++) acc += (double)row[j] * (double)x[x_off + j];
        y_f32[r] = acc;
    }
    const float *yg = y + y_off;
    const double e_int = rel_err(yg, y_int, m), e_cpu = rel_err(yg, y_cpu, m), e_f32 = rel_err(yg, y_f32, m);
    int touched = 0;
    for (size_t i = 0; i < y_n; i++)
        if ((i < y_off || i >= (size_t)y_off + m) && y[i] != -777.0f) touched++;
    const bool pass_ok = e_int <= BOUND_INT && e_f32 <= BOUND_F32 && touched == 0 && q_bad == 0 &&
                         q_off_by_one <= k / 256 + 1 && xs_err <= 1e-6;
    printf("%s k=%-6d m=%-7d x_off=%-3u y_off=%-3u max_x=%-5u %-9s wg=%u rows=%u: err_int %.2e err_cpu_q %.2e "
           "err_f32x %.2e xs %.1e q+-1 %d q>1 %d outside %d\n",
           pass_ok ? "ok  " : "FAIL", k, m, x_off, y_off, max_x, mv->subgroups ? "subgroup" : "workgroup", mv->wg,
           mv->rows, e_int, e_cpu, e_f32, xs_err, q_off_by_one, q_bad, touched);
    if (!pass_ok) B->failures++;
out:
    if (gq) B->api->BindGroupRelease(gq);
    if (gm) B->api->BindGroupRelease(gm);
    if (pq) B->api->BufferRelease(pq);
    if (pm) B->api->BufferRelease(pm);
    wg_buffer_free(B->d, bw);
    wg_buffer_free(B->d, bx);
    wg_buffer_free(B->d, bxq);
    wg_buffer_free(B->d, bxs);
    wg_buffer_free(B->d, by);
    free(w);
    free(row);
    free(x);
    free(y);
    free(y_init);
    free(xq_gpu);
    free(xs_gpu);
    free(xs_cpu);
    free(q_cpu);
    free(y_int);
    free(y_cpu);
    free(y_f32);
}

/* ---------------------------------------------------------------- timing */

typedef struct timer {
    WGPUQuerySet qs;
    WGPUBuffer resolve, readable;
    uint32_t count;
    double period_ns;
} timer;

static bool timer_init(bench *B, timer *t, uint32_t count) {
    memset(t, 0, sizeof *t);
    if (!B->d->features.timestamp_query) return false;
    WGPUQuerySetDescriptor qd = WGPU_QUERY_SET_DESCRIPTOR_INIT;
    qd.type = WGPUQueryType_Timestamp;
    qd.count = count;
    t->qs = B->api->DeviceCreateQuerySet(B->d->device, &qd);
    WGPUBufferDescriptor bd = WGPU_BUFFER_DESCRIPTOR_INIT;
    bd.size = (uint64_t)count * 8;
    bd.usage = WGPUBufferUsage_QueryResolve | WGPUBufferUsage_CopySrc;
    t->resolve = B->api->DeviceCreateBuffer(B->d->device, &bd);
    char err[1024];
    t->readable = wg_buffer_create(B->d, (uint64_t)count * 8, "timestamps", err, sizeof err);
    t->count = count;
    t->period_ns = B->api->QueueGetTimestampPeriod ? B->api->QueueGetTimestampPeriod(B->d->queue) : 1.0;
    return t->qs && t->resolve && t->readable;
}

static void timer_free(bench *B, timer *t) {
    if (t->qs) B->api->QuerySetRelease(t->qs);
    if (t->resolve) B->api->BufferRelease(t->resolve);
    wg_buffer_free(B->d, t->readable);
}

/* Resolves `n` timestamps (into enc, which is then submitted) and returns them in ns. */
static bool timer_read(bench *B, timer *t, WGPUCommandEncoder enc, uint32_t n, double *ns) {
    B->api->CommandEncoderResolveQuerySet(enc, t->qs, 0, n, t->resolve, 0);
    B->api->CommandEncoderCopyBufferToBuffer(enc, t->resolve, 0, t->readable, 0, (uint64_t)n * 8);
    if (!submit_and_wait(B, enc)) return false;
    uint64_t *raw = malloc((size_t)n * 8);
    char err[1024];
    bool ok = raw && wg_buffer_read(B->d, t->readable, 0, raw, (size_t)n * 8, err, sizeof err);
    for (uint32_t i = 0; ok && i < n; i++) ns[i] = (double)raw[i] * t->period_ns;
    free(raw);
    return ok;
}

static WGPUComputePassEncoder begin_pass(bench *B, WGPUCommandEncoder enc, timer *t, uint32_t q0) {
    WGPUComputePassDescriptor pd = WGPU_COMPUTE_PASS_DESCRIPTOR_INIT;
    WGPUPassTimestampWrites tw = WGPU_PASS_TIMESTAMP_WRITES_INIT;
    if (t) {
        tw.querySet = t->qs;
        tw.beginningOfPassWriteIndex = q0;
        tw.endOfPassWriteIndex = q0 + 1;
        pd.timestampWrites = &tw;
    }
    return B->api->CommandEncoderBeginComputePass(enc, &pd);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct stats {
    double med, min, p90;
} stats;

static stats summarize(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    stats s = {v[n / 2], v[0], v[(n * 9) / 10]};
    return s;
}

/* Keeps the GPU busy for `seconds` so that its clocks are up before a measurement. */
static void warm_up(bench *B, WGPUBuffer a, WGPUBuffer b, uint64_t bytes, double seconds) {
    const double t0 = now_s();
    while (now_s() - t0 < seconds) {
        WGPUCommandEncoder enc = B->api->DeviceCreateCommandEncoder(B->d->device, NULL);
        for (int i = 0; i < 8; i++) B->api->CommandEncoderCopyBufferToBuffer(enc, a, 0, b, 0, bytes);
        if (!submit_and_wait(B, enc)) return;
    }
}

static const char k_read_wgsl[] =
    "@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;\n"
    "@group(0) @binding(1) var<storage, read_write> sink: array<u32>;\n"
    "@compute @workgroup_size(256)\n"
    "fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {\n"
    "    let n = arrayLength(&src);\n"
    "    let stride = nwg.x * 256u;\n"
    "    var acc = vec4<u32>(0u);\n"
    "    for (var i = gid.x; i < n; i += stride) { acc ^= src[i]; }\n"
    "    if (all(acc == vec4<u32>(0x9e3779b9u))) { sink[0] = acc.x; }\n"
    "}\n";

/* Copy bandwidth (wall time of back-to-back 1 GiB copies in one submit) and a plain WGSL
 * read kernel (timestamps). */
static void time_reference(bench *B, uint64_t bytes, double *copy_gbs, double *read_gbs) {
    char err[4096] = "";
    *copy_gbs = *read_gbs = 0.0;
    WGPUBuffer a = wg_buffer_create(B->d, bytes, "copy_a", err, sizeof err);
    WGPUBuffer b = a ? wg_buffer_create(B->d, bytes, "copy_b", err, sizeof err) : NULL;
    WGPUBuffer sink = b ? wg_buffer_create(B->d, 256, "sink", err, sizeof err) : NULL;
    if (!sink) {
        fprintf(stderr, "reference buffers: %s\n", err);
        goto out;
    }
    warm_up(B, a, b, bytes, 2.0);
    const int reps = 10;
    WGPUCommandEncoder enc = B->api->DeviceCreateCommandEncoder(B->d->device, NULL);
    for (int i = 0; i < reps; i++) B->api->CommandEncoderCopyBufferToBuffer(enc, a, 0, b, 0, bytes);
    double t0 = now_s();
    if (!submit_and_wait(B, enc)) goto out;
    const double t_copy = (now_s() - t0) / reps;
    *copy_gbs = (double)bytes / t_copy / 1e9;
    printf("copyBufferToBuffer %.0f MiB: %.3f ms per copy (wall, %d in one submit): %.0f GB/s copied "
           "(%.0f GB/s read+written)\n",
           (double)bytes / 1048576.0, t_copy * 1e3, reps, *copy_gbs, 2.0 * *copy_gbs);

    WGPUComputePipeline pipe = wg_pipeline_create(B->d, "read_bw", k_read_wgsl, "main", err, sizeof err);
    timer t;
    if (!pipe || !timer_init(B, &t, 2 * reps)) {
        fprintf(stderr, "read kernel: %s\n", pipe ? "no timestamp queries" : err);
        if (pipe) B->api->ComputePipelineRelease(pipe);
        goto out;
    }
    kernel k = {pipe, B->api->ComputePipelineGetBindGroupLayout(pipe, 0), 256, 1, false};
    const binding bs[2] = {{a, 0, bytes}, {sink, 0, 256}};
    WGPUBindGroup bg = bind(B, &k, 2, bs);
    enc = B->api->DeviceCreateCommandEncoder(B->d->device, NULL);
    for (int i = 0; i < reps; i++) {
        WGPUComputePassEncoder pass = begin_pass(B, enc, &t, 2 * (uint32_t)i);
        dispatch(B, pass, &k, bg, 132u * 64u, MAX_GRID);
        B->api->ComputePassEncoderEnd(pass);
        B->api->ComputePassEncoderRelease(pass);
    }
    double ns[64], dt[32];
    if (timer_read(B, &t, enc, 2 * reps, ns)) {
        for (int i = 0; i < reps; i++) dt[i] = ns[2 * i + 1] - ns[2 * i];
        stats s = summarize(dt, reps);
        *read_gbs = (double)bytes / s.med;
        printf("WGSL read kernel %.0f MiB: median %.3f ms (min %.3f): %.0f GB/s\n", (double)bytes / 1048576.0,
               s.med * 1e-6, s.min * 1e-6, *read_gbs);
    }
    B->api->BindGroupRelease(bg);
    kernel_free(B, &k);
    timer_free(B, &t);
out:
    wg_buffer_free(B->d, a);
    wg_buffer_free(B->d, b);
    wg_buffer_free(B->d, sink);
}

/* Random valid Q4_0 blocks (scales 1e-3 .. 2e-3, random nibbles): what the timing reads. */
static void random_q4_0(bench *B, uint8_t *w, uint64_t n_blocks) {
    for (uint64_t i = 0; i < n_blocks; i++) {
        uint8_t *blk = w + i * 18;
        const uint16_t d = wg_f32_to_fp16(0.001f * (1.5f + 0.5f * rng_uniform(&B->rng)));
        blk[0] = (uint8_t)(d & 0xff);
        blk[1] = (uint8_t)(d >> 8);
        uint64_t r0 = rng_next(&B->rng), r1 = rng_next(&B->rng);
        memcpy(blk + 2, &r0, 8);
        memcpy(blk + 10, &r1, 8);
    }
}

typedef struct shape {
    int k, m;
    const char *what;
} shape;

static const shape k_7b[] = {
    {4096, 4096, "attn q/k/v/o"},
    {4096, 11008, "ffn gate/up"},
    {11008, 4096, "ffn down"},
    {4096, 32000, "output head"},
};

/* Times quantize + matvec for one shape. The weights are replicated over a pool of at least
 * pool_bytes and each pass reads the next copy, so that no pass finds its weights in the
 * 50 MB L2. One compute pass per kernel with timestamps at its start and end gives the
 * kernel time; `chain` dispatches in one pass give the cost per dependent dispatch. */
static void time_shape(bench *B, const kernel *qx, const kernel *mv, const shape *sh, uint64_t pool_bytes,
                       int passes, int chain, double warm_s, double *gbs_out) {
    const int k = sh->k, m = sh->m, nb = k / 32;
    const uint64_t w_bytes = (uint64_t)m * nb * 18;
    const uint64_t stride = round_up(w_bytes, B->d->limits.min_storage_buffer_offset_alignment);
    uint64_t copies = pool_bytes / stride;
    if (copies < 1) copies = 1;
    if (copies > 256) copies = 256;
    char err[4096] = "";
    uint8_t *w = malloc(round_up(w_bytes, 4));
    float *x = malloc((size_t)k * sizeof *x);
    WGPUBuffer pool = NULL, bx = NULL, bxq = NULL, bxs = NULL, by = NULL, pq = NULL, pm = NULL;
    WGPUBindGroup *gm = calloc(copies, sizeof *gm), gq = NULL;
    timer t = {0};
    const int n_q = 2 * (passes + 2);
    double *ns = malloc((size_t)n_q * sizeof *ns), *dt = malloc((size_t)passes * sizeof *dt);
    if (!w || !x || !gm || !ns || !dt) goto out;
    random_q4_0(B, w, (uint64_t)m * nb);
    for (int j = 0; j < k; j++) x[j] = rng_uniform(&B->rng);
    pool = wg_buffer_create(B->d, stride * copies, "pool", err, sizeof err);
    bx = pool ? wg_buffer_create(B->d, (uint64_t)k * 4, "x", err, sizeof err) : NULL;
    bxq = bx ? wg_buffer_create(B->d, (uint64_t)k, "xq", err, sizeof err) : NULL;
    bxs = bxq ? wg_buffer_create(B->d, (uint64_t)nb * 4, "xs", err, sizeof err) : NULL;
    by = bxs ? wg_buffer_create(B->d, (uint64_t)m * 4, "y", err, sizeof err) : NULL;
    /* One upload, then GPU copies into every slot of the pool (a buffer cannot copy onto itself). */
    WGPUBuffer src = by ? wg_buffer_create(B->d, round_up(w_bytes, 4), "w", err, sizeof err) : NULL;
    if (!src || !wg_buffer_write(B->d, src, 0, w, round_up(w_bytes, 4), err, sizeof err) ||
        !wg_buffer_write(B->d, bx, 0, x, (size_t)k * 4, err, sizeof err)) {
        fprintf(stderr, "timing buffers: %s\n", err);
        wg_buffer_free(B->d, src);
        goto out;
    }
    WGPUCommandEncoder enc = B->api->DeviceCreateCommandEncoder(B->d->device, NULL);
    for (uint64_t c = 0; c < copies; c++)
        B->api->CommandEncoderCopyBufferToBuffer(enc, src, 0, pool, c * stride, round_up(w_bytes, 4));
    const bool copied = submit_and_wait(B, enc);
    wg_buffer_free(B->d, src);
    if (!copied) goto out;
    const uint32_t p_q[4] = {(uint32_t)k, 1, 0, 0}, p_m[4] = {(uint32_t)k, (uint32_t)m, 0, 0};
    pq = uniform_create(B, p_q);
    pm = uniform_create(B, p_m);
    const binding bq[4] = {{bx, 0, (uint64_t)k * 4}, {bxq, 0, (uint64_t)k}, {bxs, 0, (uint64_t)nb * 4}, {pq, 0, 16}};
    gq = bind(B, qx, 4, bq);
    for (uint64_t c = 0; c < copies; c++) {
        const binding bm[5] = {{pool, c * stride, round_up(w_bytes, 4)}, {bxq, 0, (uint64_t)k},
                               {bxs, 0, (uint64_t)nb * 4}, {by, 0, (uint64_t)m * 4}, {pm, 0, 16}};
        gm[c] = bind(B, mv, 5, bm);
    }
    if (!timer_init(B, &t, (uint32_t)n_q)) {
        fprintf(stderr, "no timestamp queries on this device: timing skipped\n");
        goto out;
    }
    const uint32_t groups = (uint32_t)((m + mv->rows - 1) / mv->rows);
    /* The same work runs back to back for warm_s seconds (clocks up, caches and pipelines
     * warm); the last run is the one reported. */
    double t_chain = 0.0, t_quant = 0.0, wall = 0.0;
    const double t_begin = now_s();
    for (int run = 0; run < 2 || now_s() - t_begin < warm_s; run++) {
        enc = B->api->DeviceCreateCommandEncoder(B->d->device, NULL);
        WGPUComputePassEncoder pass = begin_pass(B, enc, &t, 0);
        dispatch(B, pass, qx, gq, (uint32_t)((k / 4 + QX_WG - 1) / QX_WG), MAX_GRID);
        B->api->ComputePassEncoderEnd(pass);
        B->api->ComputePassEncoderRelease(pass);
        for (int i = 0; i < passes; i++) {
            pass = begin_pass(B, enc, &t, 2 + 2 * (uint32_t)i);
            dispatch(B, pass, mv, gm[(uint64_t)i % copies], groups, MAX_GRID);
            B->api->ComputePassEncoderEnd(pass);
            B->api->ComputePassEncoderRelease(pass);
        }
        pass = begin_pass(B, enc, &t, 2 + 2 * (uint32_t)passes);
        for (int i = 0; i < chain; i++) dispatch(B, pass, mv, gm[(uint64_t)i % copies], groups, MAX_GRID);
        B->api->ComputePassEncoderEnd(pass);
        B->api->ComputePassEncoderRelease(pass);
        const double t0 = now_s();
        if (!timer_read(B, &t, enc, (uint32_t)n_q, ns)) goto out;
        wall = now_s() - t0;
    }
    t_quant = ns[1] - ns[0];
    for (int i = 0; i < passes; i++) dt[i] = ns[3 + 2 * i] - ns[2 + 2 * i];
    t_chain = (ns[3 + 2 * passes] - ns[2 + 2 * passes]) / chain;
    stats s = summarize(dt, passes);
    const double gbs = (double)w_bytes / s.med;
    if (gbs_out) *gbs_out = gbs;
    printf("k=%-6d m=%-6d %-13s %-9s wg=%-3u rows=%u: %6.2f MB, median %7.2f us (min %7.2f, p90 %7.2f) = %5.0f GB/s; "
           "in one pass %7.2f us/dispatch = %5.0f GB/s; quantize_x %.2f us; %llu copies; wall %.1f ms\n",
           k, m, sh->what, mv->subgroups ? "subgroup" : "workgroup", mv->wg, mv->rows, (double)w_bytes / 1e6,
           s.med * 1e-3, s.min * 1e-3, s.p90 * 1e-3, gbs, t_chain * 1e-3, (double)w_bytes / t_chain, t_quant * 1e-3,
           (unsigned long long)copies, wall * 1e3);
out:
    timer_free(B, &t);
    for (uint64_t c = 0; gm && c < copies; c++)
        if (gm[c]) B->api->BindGroupRelease(gm[c]);
    if (gq) B->api->BindGroupRelease(gq);
    if (pq) B->api->BufferRelease(pq);
    if (pm) B->api->BufferRelease(pm);
    wg_buffer_free(B->d, pool);
    wg_buffer_free(B->d, bx);
    wg_buffer_free(B->d, bxq);
    wg_buffer_free(B->d, bxs);
    wg_buffer_free(B->d, by);
    free(gm);
    free(w);
    free(x);
    free(ns);
    free(dt);
}

/* ---------------------------------------------------------------- main */

static void run_checks(bench *B, const kernel *qx, const kernel *mv, bool big) {
    if (big) {
        for (size_t i = 0; i < sizeof k_7b / sizeof k_7b[0]; i++) check_one(B, qx, mv, k_7b[i].k, k_7b[i].m, 0, 0, MAX_GRID);
        return;
    }
    /* 7B shapes scaled down by 8, then odd sizes, offsets and forced 2-D grids. */
    check_one(B, qx, mv, 512, 512, 0, 0, MAX_GRID);
    check_one(B, qx, mv, 512, 1376, 0, 0, MAX_GRID);
    check_one(B, qx, mv, 1376, 512, 0, 0, MAX_GRID);
    check_one(B, qx, mv, 512, 4000, 0, 0, MAX_GRID);
    check_one(B, qx, mv, 32, 1, 0, 0, MAX_GRID);
    check_one(B, qx, mv, 96, 3, 5, 7, MAX_GRID);
    check_one(B, qx, mv, 160, 67, 3, 1, 5);      /* 2-D grid: 17 groups as 5 x 4 */
    check_one(B, qx, mv, 4128, 37, 1, 13, 3);    /* 129 blocks: one past a multiple of 128 */
    check_one(B, qx, mv, 11008, 9, 0, 2, MAX_GRID);
    check_one(B, qx, mv, 32, 262147, 0, 0, MAX_GRID); /* more than 65535 groups of 4 rows */
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s KERNEL_DIR [--check] [--check-big] [--time] [--sweep] [--pool-mib N] "
                        "[--copy-mib N] [--passes N]\n", argv[0]);
        return 2;
    }
    bool check = false, check_big = false, do_time = false, sweep = false;
    uint64_t pool_mib = 1024, copy_mib = 1024;
    int passes = 200;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--check")) check = true;
        else if (!strcmp(argv[i], "--check-big")) check_big = true;
        else if (!strcmp(argv[i], "--time")) do_time = true;
        else if (!strcmp(argv[i], "--sweep")) sweep = true;
        else if (!strcmp(argv[i], "--pool-mib") && i + 1 < argc) pool_mib = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--copy-mib") && i + 1 < argc) copy_mib = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--passes") && i + 1 < argc) passes = atoi(argv[++i]);
        else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (passes < 4) passes = 4;
    if (passes > 1000) passes = 1000;

    setvbuf(stdout, NULL, _IOLBF, 0);
    bench B = {0};
    B.rng = 12345;
    snprintf(B.dir, sizeof B.dir, "%s", argv[1]);
    char err[4096] = "";
    wg_gpu *g = wg_gpu_open(NULL, err, sizeof err);
    if (!g || g->n_adapters < 1) {
        fprintf(stderr, "no WebGPU adapter: %s\n", g ? "none found" : err);
        return 1;
    }
    B.d = wg_device_create(g, 0, err, sizeof err);
    if (!B.d) {
        fprintf(stderr, "device: %s\n", err);
        return 1;
    }
    B.api = B.d->api;
    const wg_adapter_info *a = &g->info[0];
    const uint32_t ver = B.api->GetVersion ? B.api->GetVersion() : 0;
    printf("adapter: %s (%s) driver '%s'; wgpu-native %u.%u.%u.%u; subgroups %d (sizes %u..%u) timestamps %d\n",
           a->name, wg_backend_type_name(a->backend), a->description, (ver >> 24) & 255, (ver >> 16) & 255,
           (ver >> 8) & 255, ver & 255, B.d->features.subgroups, a->subgroup_min_size, a->subgroup_max_size,
           B.d->features.timestamp_query);

    kernel qx, mv_wg, mv_sg = {0};
    if (!kernel_load(&B, "quantize_x_q8.wgsl", "main", 0, 0, false, &qx) ||
        !kernel_load(&B, "matvec_q4_0_q8.wgsl", "main", 0, 0, false, &mv_wg))
        return 1;
    const bool have_sg = B.d->features.subgroups &&
                         kernel_load(&B, "matvec_q4_0_q8.wgsl", "main_subgroup", 0, 0, true, &mv_sg);
    if (check || check_big) {
        run_checks(&B, &qx, &mv_wg, check_big);
        if (have_sg) run_checks(&B, &qx, &mv_sg, check_big);
    }
    if (do_time || sweep) {
        double copy_gbs, read_gbs;
        time_reference(&B, copy_mib << 20, &copy_gbs, &read_gbs);
        for (size_t i = 0; i < sizeof k_7b / sizeof k_7b[0]; i++) {
            if (do_time) time_shape(&B, &qx, &mv_wg, &k_7b[i], pool_mib << 20, passes, 64, 0.5, NULL);
            if (do_time && have_sg) time_shape(&B, &qx, &mv_sg, &k_7b[i], pool_mib << 20, passes, 64, 0.5, NULL);
        }
    }
    if (sweep) {
        static const unsigned cfg[][2] = {{64, 2}, {64, 4}, {128, 1}, {128, 2}, {128, 4}, {128, 8}, {256, 2},
                                          {256, 4}, {256, 8}, {512, 4}};
        for (int sg = 0; sg <= (int)have_sg; sg++)
            for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
                kernel mv;
                if (!kernel_load(&B, "matvec_q4_0_q8.wgsl", sg ? "main_subgroup" : "main", cfg[c][0], cfg[c][1],
                                 sg != 0, &mv))
                    continue;
                for (size_t i = 0; i < sizeof k_7b / sizeof k_7b[0]; i++)
                    time_shape(&B, &qx, &mv, &k_7b[i], pool_mib << 20, passes / 2, 16, 0.25, NULL);
                kernel_free(&B, &mv);
            }
    }
    kernel_free(&B, &qx);
    kernel_free(&B, &mv_wg);
    kernel_free(&B, &mv_sg);
    if (!wg_device_check(B.d, err, sizeof err)) {
        fprintf(stderr, "device error: %s\n", err);
        B.failures++;
    }
    wg_device_destroy(B.d);
    wg_gpu_close(g);
    if (check || check_big) printf("%s: %d check(s) failed\n", B.failures ? "FAILED" : "PASSED", B.failures);
    return B.failures ? 1 : 0;
}
