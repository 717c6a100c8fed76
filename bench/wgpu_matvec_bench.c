/* Standalone benchmark and correctness check of the decode kernels
 * kernels/quantize_x_q8.wgsl and kernels/matvec_q8.wgsl of Q4_0 weights (as the backend
 * builds it: lib_q8_x.wgsl, lib_q4_0_int8.wgsl and q8dot_q4_0.wgsl in front).
 *
 *   wgpu_matvec_bench KERNEL_DIR [--time] [--sweep] [--reps N] [--warm-s S] [--copy-mib N] [--device N]
 *
 * Always: checks the GPU against a CPU reference on small and odd shapes (every variant
 * with --sweep). With --time: per-kernel GPU time on the Llama-2-7B decode shapes, GB/s
 * of weights read, and the buffer-copy bandwidth of the same device.
 *
 * Variants: the matvec source starts with `const WG: u32 = ...;` and `const ROWS: u32 = ...;`
 * (the backend's shape, wgpu_pipelines.h); the bench rewrites those two lines to try other workgroup sizes and rows per workgroup,
 * and builds the subgroup entry point when the device has the "subgroups" feature.
 *
 * Timing: with timestamp-query, each timed dispatch sits alone in a compute pass whose
 * begin/end timestamps give its GPU time (median and best of N); a second figure puts N
 * dispatches in one pass (the barriers between them included), as a decode step would.
 * Without timestamps: wall time of N dispatches in one submit. The weights rotate over
 * enough copies (>= 384 MiB in all) that no dispatch finds its matrix in the L2 cache.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/webgpu/wgpu_device.h"
#include "backend/webgpu/wgpu_pipelines.h"
#include "quant/quant.h"
#include "quant/types.h"

#define MAX_REPS 512
#define MAX_COPIES 64
#define ROTATE_BYTES (384ull << 20)

typedef struct bench {
    wg_device *d;
    const wg_wgpu *api;
    bool timestamps;
    double ns_per_tick;
    WGPUQuerySet qset;
    WGPUBuffer qresolve;
    int reps;
    double warm_s;
} bench;

/* Weight layouts: GGUF's 18-byte blocks (the backend's), or the same bytes regrouped as all
 * blocks' 16 nibble bytes, then all f16 scales ("soa"), read as vec4s or as words; "read" is
 * no matvec, only a read of the same bytes as vec4s (the roofline of this device). */
enum { LAYOUT_GGUF, LAYOUT_SOA_VEC4, LAYOUT_SOA_WORDS, LAYOUT_READ };

typedef struct variant {
    unsigned wg, rows;
    bool subgroup;
    int layout;
    WGPUComputePipeline pipe;
    char name[48];
} variant;

/* ---------- small utilities ---------- */

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static double rng_unit(uint64_t *s) { /* [0, 1) */
    return (double)(rng_next(s) >> 11) * 0x1p-53;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static char *read_text(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
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

/* lib's text, then the kernel's. */
static char *read_kernel(const char *dir, const char *lib, const char *name) {
    char *a = read_text(dir, lib), *b = read_text(dir, name);
    char *s = a && b ? malloc(strlen(a) + strlen(b) + 2) : NULL;
    if (s) sprintf(s, "%s\n%s", a, b);
    free(a);
    free(b);
    return s;
}

/* The Q4_0 int8 matvec as the backend builds it: its shape declared in front, then the
 * shared files and the body. */
static char *read_matvec(const char *dir) {
    static const char *const files[] = {"lib_q8_x.wgsl", "lib_q4_0_int8.wgsl", "q8dot_q4_0.wgsl", "matvec_q8.wgsl"};
    char head[96];
    snprintf(head, sizeof head, "const WG: u32 = %uu;\nconst ROWS: u32 = %uu;\nconst X_TOKENS: u32 = 1u;\n",
             (unsigned)WGB_Q8_WG, (unsigned)WGB_Q8_ROWS);
    char *s = strdup(head);
    for (size_t i = 0; s && i < sizeof files / sizeof files[0]; i++) {
        char *t = read_text(dir, files[i]);
        char *u = t ? malloc(strlen(s) + strlen(t) + 2) : NULL;
        if (u) sprintf(u, "%s\n%s", s, t);
        free(t);
        free(s);
        s = u;
    }
    return s;
}

/* The Q4_0 int8 matvec on the regrouped layout: block g's nibbles are vec4 g, its f16 scale
 * is half g % 2 of word 4 nblocks + g / 2. Same bindings, parameters, grid and reduction
 * as matvec_q8.wgsl (lib_q8_x.wgsl in front for the int8 sums). */
static const char k_soa_body[] =
    "struct Params { k: u32, m: u32, y_off: u32, accumulate: u32, }\n"
    "WBINDING\n"
    "@group(0) @binding(1) var<storage, read> xq: array<vec4<u32>>;\n"
    "@group(0) @binding(2) var<storage, read> xs: array<f32>;\n"
    "@group(0) @binding(3) var<storage, read_write> y: array<f32>;\n"
    "@group(0) @binding(4) var<uniform> params: Params;\n"
    "WNIBBLES\n"
    "WSCALEWORD\n"
    "fn partial_dots(row0: u32, t: u32) -> array<f32, ROWS> {\n"
    "    let nu = params.k / 32u;\n"
    "    let m = params.m;\n"
    "    let sbase = 4u * m * nu;\n"
    "    var acc: array<f32, ROWS>;\n"
    "    for (var r = 0u; r < ROWS; r++) { acc[r] = 0.0; }\n"
    "    for (var u = t; u < nu; u += WG) {\n"
    "        let xa = xq[2u * u];\n"
    "        let xc = xq[2u * u + 1u];\n"
    "        let s8 = 8 * (i8_sum16(xa) + i8_sum16(xc));\n"
    "        let dx = xs[u];\n"
    "        for (var r = 0u; r < ROWS; r++) {\n"
    "            let g = min(row0 + r, m - 1u) * nu + u;\n"
    "            let q = nibbles(g);\n"
    "            let d2 = unpack2x16float(scale_word(sbase + (g >> 1u)));\n"
    "            let d = select(d2.x, d2.y, (g & 1u) == 1u);\n"
    "            let lo = q & vec4<u32>(0x0f0f0f0fu);\n"
    "            let hi = (q >> vec4<u32>(4u)) & vec4<u32>(0x0f0f0f0fu);\n"
    "            acc[r] += f32(i8_dot16(lo, xa) + i8_dot16(hi, xc) - s8) * (d * dx);\n"
    "        }\n"
    "    }\n"
    "    return acc;\n"
    "}\n"
    "var<workgroup> partial: array<f32, WG * ROWS>;\n"
    "@compute @workgroup_size(WG)\n"
    "fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,\n"
    "        @builtin(local_invocation_index) t: u32) {\n"
    "    let row0 = (wg.x + wg.y * nwg.x) * ROWS;\n"
    "    if (row0 >= params.m) { return; }\n"
    "    let acc = partial_dots(row0, t);\n"
    "    for (var r = 0u; r < ROWS; r++) { partial[r * WG + t] = acc[r]; }\n"
    "    for (var half = WG / 2u; half > 0u; half >>= 1u) {\n"
    "        workgroupBarrier();\n"
    "        if (t < half) {\n"
    "            for (var r = 0u; r < ROWS; r++) { partial[r * WG + t] += partial[r * WG + t + half]; }\n"
    "        }\n"
    "    }\n"
    "    workgroupBarrier();\n"
    "    if (t < ROWS && row0 + t < params.m) { y[params.y_off + row0 + t] = partial[t * WG]; }\n"
    "}\n"
    "// SUBGROUPS-BEGIN\n"
    "var<workgroup> sg_partial: array<f32, (WG / 4u) * ROWS>;\n"
    "@compute @workgroup_size(WG)\n"
    "fn main_subgroup(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,\n"
    "                 @builtin(local_invocation_index) t: u32, @builtin(subgroup_invocation_id) lane: u32,\n"
    "                 @builtin(subgroup_size) sg_size: u32) {\n"
    "    let row0 = (wg.x + wg.y * nwg.x) * ROWS;\n"
    "    if (row0 >= params.m) { return; }\n"
    "    let acc = partial_dots(row0, t);\n"
    "    let n_sg = (WG + sg_size - 1u) / sg_size;\n"
    "    let sg = t / sg_size;\n"
    "    for (var r = 0u; r < ROWS; r++) {\n"
    "        let s = subgroupAdd(acc[r]);\n"
    "        if (lane == 0u) { sg_partial[r * (WG / 4u) + sg] = s; }\n"
    "    }\n"
    "    workgroupBarrier();\n"
    "    if (t < ROWS && row0 + t < params.m) {\n"
    "        var sum = 0.0;\n"
    "        for (var i = 0u; i < n_sg; i++) { sum += sg_partial[t * (WG / 4u) + i]; }\n"
    "        y[params.y_off + row0 + t] = sum;\n"
    "    }\n"
    "}\n"
    "// SUBGROUPS-END\n";

/* The roofline: each invocation reads one vec4 of the weights (the bytes of a matvec). */
static const char k_read_src[] =
    "const WG: u32 = 256u;\n"
    "const ROWS: u32 = 1u;\n"
    "struct Params { k: u32, m: u32, y_off: u32, accumulate: u32, }\n"
    "@group(0) @binding(0) var<storage, read> w: array<vec4<u32>>;\n"
    "@group(0) @binding(3) var<storage, read_write> y: array<f32>;\n"
    "@compute @workgroup_size(WG)\n"
    "fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,\n"
    "        @builtin(local_invocation_index) t: u32) {\n"
    "    let i = (wg.x + wg.y * nwg.x) * WG + t;\n"
    "    if (i >= arrayLength(&w)) { return; }\n"
    "    let v = w[i];\n"
    "    if (v.x == 0x12345678u && v.y == 0x9abcdef0u) { y[0] = f32(v.z); }\n"
    "}\n";

static bool replace_line(char **src, const char *prefix, const char *line);

/* The soa kernel with its shape and weight access put in; NULL on allocation failure. */
static char *soa_source(const char *dir, int layout) {
    char *lib = read_text(dir, "lib_q8_x.wgsl");
    if (!lib) return NULL;
    const bool vec = layout == LAYOUT_SOA_VEC4;
    const char *binding = vec ? "@group(0) @binding(0) var<storage, read> w: array<vec4<u32>>;"
                              : "@group(0) @binding(0) var<storage, read> w: array<u32>;";
    const char *nib = vec ? "fn nibbles(g: u32) -> vec4<u32> { return w[g]; }"
                          : "fn nibbles(g: u32) -> vec4<u32> { let o = 4u * g; "
                            "return vec4<u32>(w[o], w[o + 1u], w[o + 2u], w[o + 3u]); }";
    const char *sw = vec ? "fn scale_word(i: u32) -> u32 { return w[i >> 2u][i & 3u]; }"
                         : "fn scale_word(i: u32) -> u32 { return w[i]; }";
    size_t n = strlen(lib) + strlen(k_soa_body) + strlen(binding) + strlen(nib) + strlen(sw) + 128;
    char *s = malloc(n);
    if (s) snprintf(s, n, "const WG: u32 = 128u;\nconst ROWS: u32 = 4u;\n%s\n%s", lib, k_soa_body);
    free(lib);
    if (s && !(replace_line(&s, "WBINDING", binding) && replace_line(&s, "WNIBBLES", nib) &&
               replace_line(&s, "WSCALEWORD", sw))) {
        free(s);
        s = NULL;
    }
    return s;
}

/* Replaces the first line starting with `prefix` by `line` (both without newline). */
static bool replace_line(char **src, const char *prefix, const char *line) {
    char *p = strstr(*src, prefix);
    if (!p) return false;
    char *e = strchr(p, '\n');
    if (!e) e = p + strlen(p);
    size_t head = (size_t)(p - *src), tail = strlen(e), nl = strlen(line);
    char *out = malloc(head + nl + tail + 1);
    if (!out) return false;
    memcpy(out, *src, head);
    memcpy(out + head, line, nl);
    memcpy(out + head + nl, e, tail + 1);
    free(*src);
    *src = out;
    return true;
}

/* Without the subgroups feature the marked section is cut out. (naga in wgpu-native 29
 * rejects `enable subgroups;`; the builtins need only the device feature.) */
static bool apply_subgroups(char **src, bool on) {
    if (on) return true;
    char *b = strstr(*src, "\n// SUBGROUPS-BEGIN\n");
    char *e = b ? strstr(b, "\n// SUBGROUPS-END") : NULL;
    if (!b || !e) return b == NULL;
    e += strlen("\n// SUBGROUPS-END");
    memmove(b, e, strlen(e) + 1);
    return true;
}

static WGPUBuffer make_buffer(bench *B, uint64_t size, WGPUBufferUsage usage, const char *label) {
    WGPUBufferDescriptor desc = {NULL, wg_sv(label), usage, (size + 3) & ~3ull, false};
    return B->api->DeviceCreateBuffer(B->d->device, &desc);
}

static WGPUBuffer make_uniform(bench *B, const uint32_t p[4], const char *label) {
    WGPUBuffer b = make_buffer(B, 16, WGPUBufferUsage_Uniform | WGPUBufferUsage_CopyDst, label);
    if (b) B->api->QueueWriteBuffer(B->d->queue, b, 0, p, 16);
    return b;
}

static WGPUBuffer make_storage(bench *B, uint64_t size, const char *label) {
    char err[1024];
    WGPUBuffer b = wg_buffer_create(B->d, size < 4 ? 4 : size, label, err, sizeof err);
    if (!b) fprintf(stderr, "%s\n", err);
    return b;
}

typedef struct binding {
    WGPUBuffer buf;
    uint64_t offset, size;
} binding;

/* Entries i < n at binding ids[i] (NULL: at i). */
static WGPUBindGroup make_bind_group_at(bench *B, WGPUComputePipeline pipe, const binding *bs, const uint32_t *ids,
                                        size_t n) {
    WGPUBindGroupEntry e[8];
    for (size_t i = 0; i < n; i++) {
        WGPUBindGroupEntry x = {NULL, ids ? ids[i] : (uint32_t)i, bs[i].buf, bs[i].offset, (bs[i].size + 3) & ~3ull, NULL, NULL};
        e[i] = x;
    }
    WGPUBindGroupLayout layout = B->api->ComputePipelineGetBindGroupLayout(pipe, 0);
    WGPUBindGroupDescriptor desc = {NULL, wg_sv("bench"), layout, n, e};
    WGPUBindGroup bg = B->api->DeviceCreateBindGroup(B->d->device, &desc);
    B->api->BindGroupLayoutRelease(layout);
    return bg;
}

static WGPUBindGroup make_bind_group(bench *B, WGPUComputePipeline pipe, const binding *bs, size_t n) {
    return make_bind_group_at(B, pipe, bs, NULL, n);
}

/* groups -> a grid within 65535 per dimension; the kernels fold (x, y) back into one index. */
static void grid_for(uint64_t groups, uint32_t *gx, uint32_t *gy) {
    uint64_t x = groups < 65535 ? groups : 65535;
    if (x == 0) x = 1;
    *gx = (uint32_t)x;
    *gy = (uint32_t)((groups + x - 1) / x);
}

static void encode_dispatch(bench *B, WGPUComputePassEncoder pass, WGPUComputePipeline pipe, WGPUBindGroup bg,
                            uint32_t gx, uint32_t gy) {
    B->api->ComputePassEncoderSetPipeline(pass, pipe);
    B->api->ComputePassEncoderSetBindGroup(pass, 0, bg, 0, NULL);
    B->api->ComputePassEncoderDispatchWorkgroups(pass, gx, gy, 1);
}

static void submit(bench *B, WGPUCommandEncoder enc) {
    WGPUCommandBuffer cmd = B->api->CommandEncoderFinish(enc, NULL);
    B->api->CommandEncoderRelease(enc);
    B->api->QueueSubmit(B->d->queue, 1, &cmd);
    B->api->CommandBufferRelease(cmd);
}

static bool finish(bench *B) {
    char err[2048];
    if (!wg_device_finish(B->d, err, sizeof err) || !wg_device_check(B->d, err, sizeof err)) {
        fprintf(stderr, "device error: %s\n", err);
        return false;
    }
    return true;
}

/* One pass with one dispatch, run now. */
static bool run_once(bench *B, WGPUComputePipeline pipe, WGPUBindGroup bg, uint32_t gx, uint32_t gy) {
    WGPUCommandEncoder enc = B->api->DeviceCreateCommandEncoder(B->d->device, NULL);
    WGPUComputePassEncoder pass = B->api->CommandEncoderBeginComputePass(enc, NULL);
    encode_dispatch(B, pass, pipe, bg, gx, gy);
    B->api->ComputePassEncoderEnd(pass);
    B->api->ComputePassEncoderRelease(pass);
    submit(B, enc);
    return finish(B);
}

/* ---------- CPU references ---------- */

/* Q4_0 weights with random nibbles and scales of both signs. */
static void fill_q4_0(uint8_t *w, uint64_t n_blocks, uint64_t *rng) {
    for (uint64_t g = 0; g < n_blocks; g++) {
        uint8_t *blk = w + 18 * g;
        double u = rng_unit(rng);
        float d = (float)((0.5 + u) * 0.01 * (rng_next(rng) & 1 ? 1 : -1));
        uint16_t h = wg_f32_to_fp16(d);
        blk[0] = (uint8_t)(h & 0xff);
        blk[1] = (uint8_t)(h >> 8);
        for (int j = 0; j < 16; j++) blk[2 + j] = (uint8_t)rng_next(rng);
    }
}

/* llama.cpp's q8_0 rule in double: d = amax / 127, q = round(x / d), half away from zero. */
static void quantize_ref(const float *x, uint64_t n, int8_t *q, double *d) {
    for (uint64_t b = 0; b < n / 32; b++) {
        double amax = 0;
        for (int j = 0; j < 32; j++) amax = fmax(amax, fabs((double)x[32 * b + j]));
        d[b] = amax / 127.0;
        for (int j = 0; j < 32; j++) q[32 * b + j] = d[b] > 0 ? (int8_t)round((double)x[32 * b + j] / d[b]) : 0;
    }
}

static int q4_nibble(const uint8_t *blk, int j) {
    return j < 16 ? (blk[2 + j] & 0x0f) : (blk[2 + j - 16] >> 4);
}

/* GGUF blocks -> the soa layout: all nibble bytes (16 a block), then all f16 scales. */
static void repack_soa(const uint8_t *w, uint64_t n_blocks, uint8_t *out) {
    for (uint64_t g = 0; g < n_blocks; g++) {
        memcpy(out + 16 * g, w + 18 * g + 2, 16);
        memcpy(out + 16 * n_blocks + 2 * g, w + 18 * g, 2);
    }
}

/* ---------- pipelines ---------- */

static WGPUComputePipeline build(bench *B, const char *label, const char *src, const char *entry) {
    char err[8192];
    WGPUComputePipeline p = wg_pipeline_create(B->d, label, src, entry, err, sizeof err);
    if (!p) fprintf(stderr, "%s\n", err);
    return p;
}

static const char *const k_layout_names[] = {"", "soa4_", "soaw_", "read_"};

static bool build_variant(bench *B, const char *dir, const char *matvec_src, variant *v) {
    char *src = v->layout == LAYOUT_GGUF ? strdup(matvec_src)
                : v->layout == LAYOUT_READ ? strdup(k_read_src)
                                           : soa_source(dir, v->layout);
    char line[96];
    bool ok = src != NULL;
    snprintf(line, sizeof line, "const WG: u32 = %uu;", v->wg);
    ok = ok && replace_line(&src, "const WG: u32 =", line);
    snprintf(line, sizeof line, "const ROWS: u32 = %uu;", v->rows);
    ok = ok && replace_line(&src, "const ROWS: u32 =", line);
    ok = ok && apply_subgroups(&src, v->subgroup);
    snprintf(v->name, sizeof v->name, "%swg%u_rows%u_%s", k_layout_names[v->layout], v->wg, v->rows,
             v->subgroup ? "subgroup" : "wgmem");
    v->pipe = ok ? build(B, v->name, src, v->subgroup && v->layout != LAYOUT_READ ? "main_subgroup" : "main") : NULL;
    free(src);
    return v->pipe != NULL;
}

/* ---------- correctness ---------- */

/* Quantizes n tokens of k at x_off on the GPU and compares with the CPU rule. */
static bool check_quantize(bench *B, WGPUComputePipeline qpipe, uint32_t k, uint32_t n, uint32_t x_off,
                           uint64_t *rng) {
    uint64_t nx = (uint64_t)x_off + (uint64_t)k * n;
    float *x = malloc(nx * sizeof *x);
    int8_t *q = malloc((size_t)k * n);
    double *d = malloc((size_t)k * n / 32 * sizeof *d);
    uint32_t *gq = malloc((size_t)k * n);
    float *gs = malloc((size_t)k * n / 32 * sizeof *gs);
    bool ok = x && q && d && gq && gs;
    if (!ok) goto out;
    for (uint64_t i = 0; i < nx; i++) x[i] = (float)((rng_unit(rng) - 0.5) * 8.0);
    /* an all-zero block, a block with one huge value, exact halves in the last block */
    if (k >= 64) {
        for (int j = 0; j < 32; j++) x[x_off + 32 + j] = 0.0f;
        x[x_off] = 1000.0f;
        for (int j = 0; j < 32; j++) x[x_off + (n - 1) * (uint64_t)k + j] = (float)(j - 16) * 0.5f;
    }
    quantize_ref(x + x_off, (uint64_t)k * n, q, d);

    WGPUBuffer bx = make_storage(B, nx * 4, "x"), bq = make_storage(B, (uint64_t)k * n, "xq"),
               bs = make_storage(B, (uint64_t)k * n / 8, "xs");
    uint32_t p[4] = {k, n, x_off, 0};
    WGPUBuffer bp = make_uniform(B, p, "qparams");
    char err[1024] = "";
    ok = bx && bq && bs && bp && wg_buffer_write(B->d, bx, 0, x, nx * 4, err, sizeof err);
    if (ok) {
        binding bind[4] = {{bx, 0, nx * 4}, {bq, 0, (uint64_t)k * n}, {bs, 0, (uint64_t)k * n / 8}, {bp, 0, 16}};
        WGPUBindGroup bg = make_bind_group(B, qpipe, bind, 4);
        uint32_t gx, gy;
        grid_for(((uint64_t)k * n / 4 + WGB_Q8_QUANT_WG - 1) / WGB_Q8_QUANT_WG, &gx, &gy);
        ok = run_once(B, qpipe, bg, gx, gy) && wg_buffer_read(B->d, bq, 0, gq, (size_t)k * n, err, sizeof err) &&
             wg_buffer_read(B->d, bs, 0, gs, (size_t)k * n / 8, err, sizeof err);
        B->api->BindGroupRelease(bg);
    }
    if (ok) {
        uint64_t q_off = 0, q_bad = 0, s_bad = 0;
        const int8_t *gq8 = (const int8_t *)gq;
        for (uint64_t i = 0; i < (uint64_t)k * n; i++) {
            int diff = abs((int)gq8[i] - (int)q[i]);
            q_off += diff == 1; /* x/d on a rounding boundary: f32 and double may disagree */
            q_bad += diff > 1;
        }
        for (uint64_t b = 0; b < (uint64_t)k * n / 32; b++)
            s_bad += fabs((double)gs[b] - d[b]) > 1e-6 * d[b] + 1e-30;
        /* off by one on at most 0.1% of elements (boundary cases), nothing else */
        ok = q_bad == 0 && s_bad == 0 && q_off * 1000 <= (uint64_t)k * n;
        printf("  quantize k=%u n=%u x_off=%u: %s (q off by one: %llu of %llu, q worse: %llu, scales off: %llu)\n", k,
               n, x_off, ok ? "ok" : "FAIL", (unsigned long long)q_off, (unsigned long long)k * n,
               (unsigned long long)q_bad, (unsigned long long)s_bad);
    } else {
        fprintf(stderr, "quantize run failed: %s\n", err);
    }
    if (bx) wg_buffer_free(B->d, bx);
    if (bq) wg_buffer_free(B->d, bq);
    if (bs) wg_buffer_free(B->d, bs);
    if (bp) B->api->BufferRelease(bp);
out:
    free(x);
    free(q);
    free(d);
    free(gq);
    free(gs);
    return ok;
}

/* y = W x for an m x k Q4_0 matrix through both kernels; the reference uses the GPU's own
 * int8 x (checked separately above), so the bound only covers the f32 accumulation. */
static bool check_matvec(bench *B, WGPUComputePipeline qpipe, const variant *v, uint32_t k, uint32_t m,
                         uint64_t *rng) {
    const uint32_t nb = k / 32, x_off = 7, y_off = 3, y_tail = 5;
    const uint64_t w_bytes = ((uint64_t)m * nb * 18 + 15) & ~15ull;
    const float sentinel = -777.0f;
    uint8_t *w = malloc(w_bytes + 4), *up = malloc(w_bytes + 4);
    float *x = malloc(((size_t)k + x_off) * sizeof *x);
    float *y = malloc(((size_t)m + y_off + y_tail) * sizeof *y);
    uint32_t *gq = malloc(k);
    float *gs = malloc((size_t)nb * sizeof *gs);
    bool ok = w && up && x && y && gq && gs;
    WGPUBuffer bw = NULL, bx = NULL, bq = NULL, bs = NULL, by = NULL, bqp = NULL, bmp = NULL;
    char err[1024] = "";
    if (!ok) goto out;
    memset(w, 0, w_bytes + 4);
    fill_q4_0(w, (uint64_t)m * nb, rng);
    memcpy(up, w, w_bytes + 4);
    if (v->layout != LAYOUT_GGUF) repack_soa(w, (uint64_t)m * nb, up);
    for (uint32_t i = 0; i < k + x_off; i++) x[i] = (float)(rng_unit(rng) * 2.0 - 1.0);
    for (uint32_t i = 0; i < m + y_off + y_tail; i++) y[i] = sentinel;

    bw = make_storage(B, w_bytes, "w");
    bx = make_storage(B, ((uint64_t)k + x_off) * 4, "x");
    bq = make_storage(B, k, "xq");
    bs = make_storage(B, (uint64_t)nb * 4, "xs");
    by = make_storage(B, ((uint64_t)m + y_off + y_tail) * 4, "y");
    uint32_t qp[4] = {k, 1, x_off, 0}, mp[4] = {k, m, y_off, 0};
    bqp = make_uniform(B, qp, "qparams");
    bmp = make_uniform(B, mp, "mparams");
    ok = bw && bx && bq && bs && by && bqp && bmp &&
         wg_buffer_write(B->d, bw, 0, up, w_bytes, err, sizeof err) &&
         wg_buffer_write(B->d, bx, 0, x, ((size_t)k + x_off) * 4, err, sizeof err) &&
         wg_buffer_write(B->d, by, 0, y, ((size_t)m + y_off + y_tail) * 4, err, sizeof err);
    if (!ok) goto out;
    binding qb[4] = {{bx, 0, ((uint64_t)k + x_off) * 4}, {bq, 0, k}, {bs, 0, (uint64_t)nb * 4}, {bqp, 0, 16}};
    binding mb[5] = {{bw, 0, w_bytes}, {bq, 0, k}, {bs, 0, (uint64_t)nb * 4}, {by, 0, ((uint64_t)m + y_off + y_tail) * 4},
                     {bmp, 0, 16}};
    WGPUBindGroup qbg = make_bind_group(B, qpipe, qb, 4), mbg = make_bind_group(B, v->pipe, mb, 5);
    uint32_t qx, qy, mx, my;
    grid_for(((uint64_t)k / 4 + WGB_Q8_QUANT_WG - 1) / WGB_Q8_QUANT_WG, &qx, &qy);
    grid_for(((uint64_t)m + v->rows - 1) / v->rows, &mx, &my);
    ok = run_once(B, qpipe, qbg, qx, qy) && run_once(B, v->pipe, mbg, mx, my) &&
         wg_buffer_read(B->d, bq, 0, gq, k, err, sizeof err) &&
         wg_buffer_read(B->d, bs, 0, gs, (size_t)nb * 4, err, sizeof err) &&
         wg_buffer_read(B->d, by, 0, y, ((size_t)m + y_off + y_tail) * 4, err, sizeof err);
    B->api->BindGroupRelease(qbg);
    B->api->BindGroupRelease(mbg);
    if (!ok) goto out;

    const int8_t *xq = (const int8_t *)gq;
    double worst = 0, worst_f = 0;
    uint64_t bad = 0, touched = 0;
    for (uint32_t r = 0; r < m; r++) {
        double want = 0, mag = 0, exact = 0, exact_mag = 0;
        for (uint32_t b = 0; b < nb; b++) {
            const uint8_t *blk = w + 18 * ((uint64_t)r * nb + b);
            double dw = wg_fp16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
            long isum = 0;
            for (int j = 0; j < 32; j++) {
                int qv = q4_nibble(blk, j) - 8;
                isum += (long)qv * xq[32 * b + j];
                exact += dw * qv * (double)x[x_off + 32 * b + j];
                exact_mag += fabs(dw * qv * (double)x[x_off + 32 * b + j]);
            }
            want += dw * gs[b] * (double)isum;
            mag += fabs(dw * gs[b] * (double)isum);
        }
        double got = y[y_off + r];
        double rel = fabs(got - want) / (mag + 1e-30);
        if (rel > worst) worst = rel;
        if (!(rel <= 1e-5)) bad++;
        double rel_f = fabs(got - exact) / (exact_mag + 1e-30);
        if (rel_f > worst_f) worst_f = rel_f;
    }
    for (uint32_t i = 0; i < y_off; i++) touched += y[i] != sentinel;
    for (uint32_t i = 0; i < y_tail; i++) touched += y[y_off + m + i] != sentinel;
    ok = bad == 0 && touched == 0;
    printf("  matvec %-20s k=%-5u m=%-6u: %s (max rel err %.2e vs int8-x reference, %.2e vs f32 x; "
           "rows over 1e-5: %llu; writes outside y: %llu)\n",
           v->name, k, m, ok ? "ok" : "FAIL", worst, worst_f, (unsigned long long)bad, (unsigned long long)touched);
out:
    if (!ok && err[0]) fprintf(stderr, "%s\n", err);
    WGPUBuffer bufs[5] = {bw, bx, bq, bs, by};
    for (int i = 0; i < 5; i++)
        if (bufs[i]) wg_buffer_free(B->d, bufs[i]);
    if (bqp) B->api->BufferRelease(bqp);
    if (bmp) B->api->BufferRelease(bmp);
    free(w);
    free(up);
    free(x);
    free(y);
    free(gq);
    free(gs);
    return ok;
}

/* ---------- timing ---------- */

typedef struct timing {
    double median_ns, best_ns, stream_ns; /* stream: per dispatch, N dispatches in one pass */
} timing;

/* GPU times of `reps` dispatches that cycle over bind groups. */
static bool time_dispatches(bench *B, WGPUComputePipeline pipe, WGPUBindGroup *bgs, int n_bg, uint32_t gx,
                            uint32_t gy, timing *t) {
    const wg_wgpu *api = B->api;
    int reps = B->reps;
    /* warm-up: keep the GPU busy so its clocks are up before we time */
    double t0 = now_s();
    int it = 0;
    do {
        WGPUCommandEncoder enc = api->DeviceCreateCommandEncoder(B->d->device, NULL);
        WGPUComputePassEncoder pass = api->CommandEncoderBeginComputePass(enc, NULL);
        for (int i = 0; i < 64; i++) encode_dispatch(B, pass, pipe, bgs[(it + i) % n_bg], gx, gy);
        api->ComputePassEncoderEnd(pass);
        api->ComputePassEncoderRelease(pass);
        submit(B, enc);
        if (!finish(B)) return false;
        it++;
    } while (now_s() - t0 < B->warm_s);

    if (!B->timestamps) {
        WGPUCommandEncoder enc = api->DeviceCreateCommandEncoder(B->d->device, NULL);
        WGPUComputePassEncoder pass = api->CommandEncoderBeginComputePass(enc, NULL);
        for (int i = 0; i < reps; i++) encode_dispatch(B, pass, pipe, bgs[i % n_bg], gx, gy);
        api->ComputePassEncoderEnd(pass);
        api->ComputePassEncoderRelease(pass);
        double s0 = now_s();
        submit(B, enc);
        if (!finish(B)) return false;
        t->stream_ns = t->median_ns = t->best_ns = (now_s() - s0) * 1e9 / reps;
        return true;
    }

    /* reps single-dispatch passes, then one pass of reps dispatches: 2 * reps + 2 queries */
    WGPUCommandEncoder enc = api->DeviceCreateCommandEncoder(B->d->device, NULL);
    for (int i = 0; i < reps; i++) {
        WGPUPassTimestampWrites tw = {NULL, B->qset, (uint32_t)(2 * i), (uint32_t)(2 * i + 1)};
        WGPUComputePassDescriptor pd = {NULL, wg_sv("timed"), &tw};
        WGPUComputePassEncoder pass = api->CommandEncoderBeginComputePass(enc, &pd);
        encode_dispatch(B, pass, pipe, bgs[i % n_bg], gx, gy);
        api->ComputePassEncoderEnd(pass);
        api->ComputePassEncoderRelease(pass);
    }
    WGPUPassTimestampWrites tw = {NULL, B->qset, (uint32_t)(2 * reps), (uint32_t)(2 * reps + 1)};
    WGPUComputePassDescriptor pd = {NULL, wg_sv("stream"), &tw};
    WGPUComputePassEncoder pass = api->CommandEncoderBeginComputePass(enc, &pd);
    for (int i = 0; i < reps; i++) encode_dispatch(B, pass, pipe, bgs[i % n_bg], gx, gy);
    api->ComputePassEncoderEnd(pass);
    api->ComputePassEncoderRelease(pass);
    api->CommandEncoderResolveQuerySet(enc, B->qset, 0, (uint32_t)(2 * reps + 2), B->qresolve, 0);
    submit(B, enc);
    if (!finish(B)) return false;
    uint64_t ts[2 * MAX_REPS + 2];
    char err[1024];
    if (!wg_buffer_read(B->d, B->qresolve, 0, ts, (size_t)(2 * reps + 2) * 8, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return false;
    }
    double dt[MAX_REPS];
    for (int i = 0; i < reps; i++) dt[i] = (double)(ts[2 * i + 1] - ts[2 * i]) * B->ns_per_tick;
    qsort(dt, (size_t)reps, sizeof dt[0], cmp_double);
    t->median_ns = dt[reps / 2];
    t->best_ns = dt[0];
    t->stream_ns = (double)(ts[2 * reps + 1] - ts[2 * reps]) * B->ns_per_tick / reps;
    return true;
}

typedef struct shape {
    uint32_t m, k;
    const char *what;
} shape;

static const shape k_shapes[] = {
    {4096, 4096, "attn_qkvo"},
    {11008, 4096, "ffn_gate_up"},
    {4096, 11008, "ffn_down"},
    {32000, 4096, "output"},
};
#define N_SHAPES (sizeof k_shapes / sizeof k_shapes[0])

/* Times every variant on every shape; false on a device error. */
static bool time_matvecs(bench *B, WGPUComputePipeline qpipe, variant *vs, int n_v, uint64_t *rng) {
    printf("\nmatvec timings (GB/s = Q4_0 weight bytes / time; median and best of %d single-dispatch passes; "
           "'stream' = %d dependent dispatches in one pass, per dispatch)\n",
           B->reps, B->reps);
    printf("%-12s %-6s %-6s %-20s %10s %10s %10s %9s %9s\n", "what", "m", "k", "variant", "median_us", "best_us",
           "stream_us", "GB/s_med", "GB/s_strm");
    for (size_t s = 0; s < N_SHAPES; s++) {
        const shape *sh = &k_shapes[s];
        const uint32_t nb = sh->k / 32;
        const uint64_t w_bytes = (uint64_t)sh->m * nb * 18;
        const uint64_t stride = (w_bytes + 255) & ~255ull;
        int copies = (int)((ROTATE_BYTES + stride - 1) / stride);
        if (copies < 2) copies = 2;
        if (copies > MAX_COPIES) copies = MAX_COPIES;
        if (stride * copies > B->d->limits.max_buffer_size) copies = (int)(B->d->limits.max_buffer_size / stride);
        WGPUBuffer bw = make_storage(B, stride * copies, "w copies");
        WGPUBuffer bx = make_storage(B, (uint64_t)sh->k * 4, "x"), bq = make_storage(B, sh->k, "xq"),
                   bs = make_storage(B, (uint64_t)nb * 4, "xs"), by = make_storage(B, (uint64_t)sh->m * 4, "y");
        uint32_t qp[4] = {sh->k, 1, 0, 0}, mp[4] = {sh->k, sh->m, 0, 0};
        WGPUBuffer bqp = make_uniform(B, qp, "qparams"), bmp = make_uniform(B, mp, "mparams");
        if (!bw || !bx || !bq || !bs || !by || !bqp || !bmp) return false;
        /* one host upload, replicated on the GPU */
        uint8_t *w = malloc(stride);
        float *x = malloc((size_t)sh->k * 4);
        if (!w || !x) return false;
        memset(w, 0, stride);
        fill_q4_0(w, (uint64_t)sh->m * nb, rng);
        for (uint32_t i = 0; i < sh->k; i++) x[i] = (float)(rng_unit(rng) * 2 - 1);
        char err[1024];
        WGPUBuffer stage = make_storage(B, stride, "w stage");
        if (!stage || !wg_buffer_write(B->d, stage, 0, w, stride, err, sizeof err) ||
            !wg_buffer_write(B->d, bx, 0, x, (size_t)sh->k * 4, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return false;
        }
        free(w);
        free(x);
        WGPUCommandEncoder enc = B->api->DeviceCreateCommandEncoder(B->d->device, NULL);
        for (int c = 0; c < copies; c++) B->api->CommandEncoderCopyBufferToBuffer(enc, stage, 0, bw, stride * c, stride);
        submit(B, enc);
        if (!finish(B)) return false;
        wg_buffer_free(B->d, stage);

        /* the quantize kernel depends on k only */
        binding qb[4] = {{bx, 0, (uint64_t)sh->k * 4}, {bq, 0, sh->k}, {bs, 0, (uint64_t)nb * 4}, {bqp, 0, 16}};
        WGPUBindGroup qbg = make_bind_group(B, qpipe, qb, 4);
        uint32_t qx, qy;
        grid_for(((uint64_t)sh->k / 4 + WGB_Q8_QUANT_WG - 1) / WGB_Q8_QUANT_WG, &qx, &qy);
        timing qt;
        if (!time_dispatches(B, qpipe, &qbg, 1, qx, qy, &qt)) return false;
        printf("%-12s %-6s %-6u %-20s %10.2f %10.2f %10.2f\n", "quantize_x", "-", sh->k, "wg256", qt.median_ns / 1e3,
               qt.best_ns / 1e3, qt.stream_ns / 1e3);
        B->api->BindGroupRelease(qbg);

        for (int vi = 0; vi < n_v; vi++) {
            variant *v = &vs[vi];
            WGPUBindGroup bgs[MAX_COPIES];
            for (int c = 0; c < copies; c++) {
                binding mb[5] = {{bw, stride * c, w_bytes}, {bq, 0, sh->k}, {bs, 0, (uint64_t)nb * 4},
                                 {by, 0, (uint64_t)sh->m * 4}, {bmp, 0, 16}};
                static const uint32_t read_ids[2] = {0, 3};
                binding rb[2] = {mb[0], mb[3]};
                bgs[c] = v->layout == LAYOUT_READ ? make_bind_group_at(B, v->pipe, rb, read_ids, 2)
                                                  : make_bind_group(B, v->pipe, mb, 5);
            }
            uint32_t gx, gy;
            if (v->layout == LAYOUT_READ) grid_for((w_bytes / 16 + v->wg - 1) / v->wg, &gx, &gy);
            else grid_for(((uint64_t)sh->m + v->rows - 1) / v->rows, &gx, &gy);
            timing t;
            bool ok = time_dispatches(B, v->pipe, bgs, copies, gx, gy, &t);
            for (int c = 0; c < copies; c++) B->api->BindGroupRelease(bgs[c]);
            if (!ok) return false;
            printf("%-12s %-6u %-6u %-20s %10.2f %10.2f %10.2f %9.0f %9.0f\n", sh->what, sh->m, sh->k, v->name,
                   t.median_ns / 1e3, t.best_ns / 1e3, t.stream_ns / 1e3, (double)w_bytes / t.median_ns,
                   (double)w_bytes / t.stream_ns);
        }
        WGPUBuffer bufs[5] = {bw, bx, bq, bs, by};
        for (int i = 0; i < 5; i++) wg_buffer_free(B->d, bufs[i]);
        B->api->BufferRelease(bqp);
        B->api->BufferRelease(bmp);
        fflush(stdout);
    }
    return true;
}

/* copyBufferToBuffer bandwidth: wall time of n copies in one submit, best of 5 after a warm-up round. */
static bool time_copy(bench *B, uint64_t bytes) {
    if (bytes > B->d->limits.max_buffer_size) bytes = B->d->limits.max_buffer_size & ~255ull;
    WGPUBuffer a = make_storage(B, bytes, "copy src"), b = make_storage(B, bytes, "copy dst");
    if (!a || !b) return false;
    const int n = 10;
    double best = 1e30;
    for (int round = 0; round < 6; round++) {
        WGPUCommandEncoder enc = B->api->DeviceCreateCommandEncoder(B->d->device, NULL);
        for (int i = 0; i < n; i++) {
            if (i % 2 == 0) B->api->CommandEncoderCopyBufferToBuffer(enc, a, 0, b, 0, bytes);
            else B->api->CommandEncoderCopyBufferToBuffer(enc, b, 0, a, 0, bytes);
        }
        double t0 = now_s();
        submit(B, enc);
        if (!finish(B)) return false;
        double dt = (now_s() - t0) / n;
        if (round > 0 && dt < best) best = dt;
    }
    printf("\ncopyBufferToBuffer %.0f MiB: %.3f ms per copy -> %.0f GB/s copied (%.0f GB/s read + write)\n",
           (double)bytes / (1 << 20), best * 1e3, (double)bytes / best / 1e9, 2.0 * (double)bytes / best / 1e9);
    fflush(stdout);
    wg_buffer_free(B->d, a);
    wg_buffer_free(B->d, b);
    return true;
}

/* ---------- main ---------- */

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s KERNEL_DIR [--time] [--sweep] [--reps N] [--warm-s S] [--copy-mib N] [--device N] [--layouts]\n",
                argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    bool do_time = false, sweep = false, layouts = false;
    int reps = 100, device = 0;
    double warm_s = 1.0;
    uint64_t copy_mib = 1024;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--time")) do_time = true;
        else if (!strcmp(argv[i], "--sweep")) sweep = true;
        else if (!strcmp(argv[i], "--layouts")) layouts = true;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warm-s") && i + 1 < argc) warm_s = atof(argv[++i]);
        else if (!strcmp(argv[i], "--copy-mib") && i + 1 < argc) copy_mib = (uint64_t)atoll(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) device = atoi(argv[++i]);
        else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (reps < 3) reps = 3;
    if (reps > MAX_REPS) reps = MAX_REPS;

    char err[4096];
    wg_gpu *g = wg_gpu_open(NULL, err, sizeof err);
    if (!g || g->n_adapters <= device) {
        fprintf(stderr, "no WebGPU adapter %d: %s\n", device, g ? "not found" : err);
        return 1;
    }
    wg_device *d = wg_device_create(g, device, err, sizeof err);
    if (!d) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const wg_adapter_info *ai = &g->info[device];
    printf("adapter: %s (%s, %s), driver '%s', library %s\n", ai->name, wg_backend_type_name(ai->backend),
           wg_adapter_type_name(ai->type), ai->description, g->api.path);
    printf("features: shader-f16 %d subgroups %d (sizes %u..%u) timestamp-query %d\n", d->features.shader_f16,
           d->features.subgroups, ai->subgroup_min_size, ai->subgroup_max_size, d->features.timestamp_query);

    bench B = {d, d->api, d->features.timestamp_query, 1.0, NULL, NULL, reps, warm_s};
    if (B.timestamps) {
        if (d->api->QueueGetTimestampPeriod) B.ns_per_tick = d->api->QueueGetTimestampPeriod(d->queue);
        WGPUQuerySetDescriptor qd = {NULL, wg_sv("timestamps"), WGPUQueryType_Timestamp, 2 * MAX_REPS + 2};
        B.qset = d->api->DeviceCreateQuerySet(d->device, &qd);
        B.qresolve = make_buffer(&B, (2 * MAX_REPS + 2) * 8, WGPUBufferUsage_QueryResolve | WGPUBufferUsage_CopySrc,
                                 "resolve");
        printf("timestamp period: %g ns/tick\n", B.ns_per_tick);
    }

    /* as the backend builds them: the shared functions in front of each kernel */
    char *qsrc = read_kernel(dir, "lib_q8_round.wgsl", "quantize_x_q8.wgsl");
    char qhead[48];
    snprintf(qhead, sizeof qhead, "const WG: u32 = %uu;\n", (unsigned)WGB_Q8_QUANT_WG);
    if (qsrc) { /* the workgroup size the backend declares (wgpu_pipelines.h) */
        char *t = malloc(strlen(qhead) + strlen(qsrc) + 1);
        if (t) sprintf(t, "%s%s", qhead, qsrc);
        free(qsrc);
        qsrc = t;
    }
    char *msrc = read_matvec(dir);
    if (!qsrc || !msrc) return 1;
    WGPUComputePipeline qpipe = build(&B, "quantize_x_q8", qsrc, "main");
    if (!qpipe) return 1;

    variant vs[32];
    int n_v = 0;
    unsigned wgs[3] = {64, 128, 256}, rows[4] = {1, 2, 4, 8};
    if (sweep) {
        for (int sg = 0; sg <= (d->features.subgroups ? 1 : 0); sg++)
            for (int a = 0; a < 3; a++)
                for (int r = 0; r < 4; r++) vs[n_v++] = (variant){wgs[a], rows[r], sg == 1, LAYOUT_GGUF, NULL, ""};
    } else {
        /* the backend's constants, with and without subgroups */
        unsigned w0 = 0, r0 = 0;
        const char *p = strstr(msrc, "const WG: u32 =");
        const char *q = strstr(msrc, "const ROWS: u32 =");
        if (!p || !q || sscanf(p, "const WG: u32 = %uu;", &w0) != 1 || sscanf(q, "const ROWS: u32 = %uu;", &r0) != 1) {
            fprintf(stderr, "matvec source lacks the WG / ROWS constants\n");
            return 1;
        }
        vs[n_v++] = (variant){w0, r0, false, LAYOUT_GGUF, NULL, ""};
        if (d->features.subgroups) vs[n_v++] = (variant){w0, r0, true, LAYOUT_GGUF, NULL, ""};
    }
    if (layouts) { /* the regrouped layout in a few shapes, and the read roofline */
        const bool sg = d->features.subgroups;
        static const unsigned shapes[][2] = {{128, 4}, {64, 4}, {256, 4}, {128, 8}, {64, 8}, {128, 2}};
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            vs[n_v++] = (variant){shapes[i][0], shapes[i][1], sg, LAYOUT_SOA_VEC4, NULL, ""};
        vs[n_v++] = (variant){128, 4, sg, LAYOUT_SOA_WORDS, NULL, ""};
        vs[n_v++] = (variant){256, 1, false, LAYOUT_READ, NULL, ""};
    }
    for (int i = 0; i < n_v; i++)
        if (!build_variant(&B, dir, msrc, &vs[i])) return 1;

    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int failures = 0;
    printf("\ncorrectness (GPU vs CPU)\n");
    failures += !check_quantize(&B, qpipe, 352, 3, 5, &rng);
    failures += !check_quantize(&B, qpipe, 11008, 1, 0, &rng);
    failures += !check_quantize(&B, qpipe, 32, 70000, 1, &rng); /* 2-D grid for the quantizer */
    static const uint32_t shapes[][2] = {{32, 1}, {64, 7}, {96, 33}, {352, 257}, {4096, 130}, {11008, 67}};
    for (int i = 0; i < n_v; i++) {
        if (vs[i].layout == LAYOUT_READ) continue;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            failures += !check_matvec(&B, qpipe, &vs[i], shapes[s][0], shapes[s][1], &rng);
        /* more than 65535 workgroups: the 2-D grid */
        failures += !check_matvec(&B, qpipe, &vs[i], 64, 65535u * vs[i].rows + 3, &rng);
        fflush(stdout);
    }
    printf("correctness: %s (%d failures)\n", failures ? "FAIL" : "all ok", failures);

    if (do_time && failures == 0) {
        if (!time_copy(&B, copy_mib << 20)) return 1;
        if (!time_matvecs(&B, qpipe, vs, n_v, &rng)) return 1;
        if (!time_copy(&B, copy_mib << 20)) return 1;
    }
    for (int i = 0; i < n_v; i++) d->api->ComputePipelineRelease(vs[i].pipe);
    d->api->ComputePipelineRelease(qpipe);
    if (B.qset) {
        d->api->QuerySetRelease(B.qset); /* (QuerySetDestroy then Release panics in wgpu-native) */
    }
    if (B.qresolve) d->api->BufferRelease(B.qresolve);
    free(qsrc);
    free(msrc);
    wg_device_destroy(d);
    wg_gpu_close(g);
    return failures ? 1 : 0;
}
