/* WebGPU kernels of the K-quant weight formats (Q4_K, Q5_K, Q6_K) and Q8_0 against the CPU backend
 * on the same block bytes: matmul with one token (the matvec kernel), with 3 and 70 tokens
 * (the tiled kernel, several token tiles), matmul_add (the accumulating form),
 * matmul_swiglu, get_rows, on
 * rows of 1 to 4 super-blocks (Q6_K's odd counts put rows at 2-byte offsets), odd row
 * counts, and weights split over 4 KiB bindings (WGLLM_WEBGPU_MAX_BINDING). Runs on any
 * adapter (CI: lavapipe); none is a failure.
 *
 * Both backends decode the same bytes to the same f32 values, so only the order of the f32
 * summation (and fused multiply-adds) differs. Error measure: max|gpu - cpu| / max|cpu| over
 * the compared values; bounds: 1e-5 for matmul, 1e-6 for get_rows (one rounding at most).
 * A wrong scale, min, nibble or high bit gives errors of order 1e-2 .. 1.
 * All of it twice: with the f32 kernels (WGLLM_WEBGPU_Q4_INT8=0, the fallback) and with the
 * int8 kernels (x rounded to int8 blocks: up to 8 tokens matvec_q8*.wgsl, 9 to 64 the batch
 * shapes of the int8 tiles (lib_q8_batch.wgsl), more their prompt shapes, both with the format's
 * q8_block decoding), which are held to 2e-2
 * against the CPU's f32 path and to 1e-5 against the int8 reference (the C dequantizer's
 * rows times the int8 x the GPU made). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/webgpu/wgpu_autotune.h"
#include "backend/webgpu/wgpu_backend.h"
#include "backend/webgpu/wgpu_internal.h"
#include "check.h"
#include "webgpu_test.h"
#include "int8_ref.h"
#include "quant/quant.h"
#include "quant/types.h"

#define BOUND_EXACT 1e-6
#define BOUND_REDUCE 1e-5
/* Products on int8 x against the CPU's f32 path: x's rounding
 * to int8 blocks (measured worst ~5e-3); against the int8 reference: BOUND_REDUCE. */
#define BOUND_INT8_CPU 2e-2

#define TEST_RAND_SEED 0x2545f4914f6cdd1dull
#include "test_rand.h"

typedef struct {
    wg_backend *gpu, *cpu;
    bool int8; /* the backend's int8 products on (WGLLM_WEBGPU_Q4_INT8) */
    double worst[3];
} pair;

enum { OP_MATVEC, OP_MATMUL, OP_GET_ROWS };
static const char *const k_op_names[] = {"matvec (n=1)", "matmul (n>1)", "get_rows"};

typedef struct {
    wg_tensor *g, *c;
    void *data;
} twin;

static twin act_new(pair *p, int64_t ne0, int64_t ne1, float scale) {
    char err[512] = "";
    twin t = {0};
    t.g = p->gpu->ops->buffer_create(p->gpu, ne0, ne1, err, sizeof err);
    CHECK_MSG(t.g != NULL, "%s", err);
    t.c = p->cpu->ops->buffer_create(p->cpu, ne0, ne1, err, sizeof err);
    CHECK_MSG(t.c != NULL, "%s", err);
    if (scale != 0.0f && t.g && t.c) {
        size_t len = (size_t)(ne0 * ne1);
        float *v = malloc(sizeof(float) * len);
        for (size_t i = 0; i < len; i++) v[i] = frand() * scale;
        p->gpu->ops->write_rows(p->gpu, t.g, 0, ne1, v);
        p->cpu->ops->write_rows(p->cpu, t.c, 0, ne1, v);
        free(v);
    }
    return t;
}

/* A K-quant weight from random rows whose 16-element groups differ in amplitude and
 * offset, so that the sub-block scales and mins span their 6-bit range (high bits set)
 * and Q6_K's signed scales take both signs. */
static twin weight_new(pair *p, uint32_t type, int64_t ne0, int64_t ne1) {
    char err[512] = "";
    twin t = {0};
    size_t rb = wg_type_row_bytes(type, ne0);
    float *row = malloc(sizeof(float) * (size_t)ne0);
    t.data = malloc(rb * (size_t)ne1);
    for (int64_t r = 0; r < ne1; r++) {
        for (int64_t g = 0; g < ne0; g += 16) {
            float amp = 0.05f + 2.0f * (frand() + 1.0f), off = 0.5f * frand() * amp;
            for (int64_t e = g; e < g + 16; e++) row[e] = off + amp * frand();
        }
        CHECK(wg_quantize_row(type, row, (uint8_t *)t.data + (size_t)r * rb, ne0));
    }
    free(row);
    t.g = p->gpu->ops->weight_create(p->gpu, type, ne0, ne1, t.data, err, sizeof err);
    CHECK_MSG(t.g != NULL, "weight %s [%lld,%lld]: %s", wg_type_name(type), (long long)ne0, (long long)ne1, err);
    t.c = p->cpu->ops->weight_create(p->cpu, type, ne0, ne1, t.data, err, sizeof err);
    CHECK_MSG(t.c != NULL, "%s", err);
    return t;
}

static void twin_free(pair *p, twin *t) {
    if (t->g) p->gpu->ops->tensor_free(p->gpu, t->g);
    if (t->c) p->cpu->ops->tensor_free(p->cpu, t->c);
    free(t->data);
    memset(t, 0, sizeof *t);
}

static bool sync_ok(pair *p, const char *what) {
    bool g = p->gpu->ops->synchronize(p->gpu);
    CHECK_MSG(g, "%s: webgpu: %s", what, p->gpu->ops->error(p->gpu));
    bool c = p->cpu->ops->synchronize(p->cpu);
    CHECK_MSG(c, "%s: cpu: %s", what, p->cpu->ops->error(p->cpu));
    return g && c;
}

/* Compares all rows of the twin; returns the relative error. */
static double compare(pair *p, const twin *t, double bound, int op, const char *what) {
    if (!t->g || !t->c) return INFINITY;
    const int64_t n = t->g->ne1;
    size_t len = (size_t)(n * t->g->ne0);
    float *g = malloc(len * sizeof *g), *c = malloc(len * sizeof *c);
    for (size_t i = 0; i < len; i++) g[i] = NAN;
    p->gpu->ops->read_rows(p->gpu, t->g, 0, n, g);
    p->cpu->ops->read_rows(p->cpu, t->c, 0, n, c);
    double rel = INFINITY;
    if (sync_ok(p, what)) {
        double maxc = 0.0, maxd = 0.0;
        for (size_t i = 0; i < len; i++) {
            double d = fabs((double)g[i] - (double)c[i]);
            if (!(d <= maxd)) maxd = d; /* NaN propagates */
            if (fabs((double)c[i]) > maxc) maxc = fabs((double)c[i]);
        }
        rel = maxc > 0 ? maxd / maxc : maxd;
        CHECK_MSG(maxc > 0, "%s: the CPU result is all zeros", what);
        CHECK_MSG(rel <= bound, "%s: relative error %.3g > %.1g (max|cpu| %.3g)", what, rel, bound, maxc);
    }
    if (!(rel <= p->worst[op])) p->worst[op] = rel;
    free(g);
    free(c);
    return rel;
}

static const uint32_t k_types[] = {WG_TYPE_Q4_K, WG_TYPE_Q5_K, WG_TYPE_Q6_K, WG_TYPE_Q8_0};
#define N_TYPES (sizeof k_types / sizeof k_types[0])

/* The bound of a product against the CPU's f32 path. */
static double bound_of(const pair *p) {
    return p->int8 ? BOUND_INT8_CPU : BOUND_REDUCE;
}

/* y (n tokens of W x on int8 x) against the int8 reference from x's GPU contents, beyond what
 * near-tie elements of x rounding the other way explain (int8_ref.h). */
static void compare_int8_ref(pair *p, const twin *w, uint32_t type, const twin *x, const twin *y, int n,
                             const char *what) {
    const int64_t k = x->g->ne0, m = y->g->ne0;
    float *xv = malloc(sizeof(float) * (size_t)(k * n)), *g = malloc(sizeof(float) * (size_t)(m * n));
    double *ref = malloc(sizeof(double) * (size_t)m), *slack = malloc(sizeof(double) * (size_t)m);
    p->gpu->ops->read_rows(p->gpu, x->g, 0, n, xv);
    p->gpu->ops->read_rows(p->gpu, y->g, 0, n, g);
    if (sync_ok(p, what)) {
        for (int t = 0; t < n; t++) {
            matvec_q8_ref(type, w->data, k, m, xv + (size_t)(t * k), ref);
            matvec_q8_tie_slack(type, w->data, k, m, xv + (size_t)(t * k), slack);
            double maxr = 0.0, maxd = 0.0;
            for (int64_t i = 0; i < m; i++) {
                double e = fabs((double)g[(size_t)(t * m + i)] - ref[i]) - slack[i];
                double dd = e < 0.0 ? 0.0 : e; /* NaN stays NaN */
                if (!(dd <= maxd)) maxd = dd;
                if (fabs(ref[i]) > maxr) maxr = fabs(ref[i]);
            }
            double rel = maxr > 0 ? maxd / maxr : maxd;
            CHECK_MSG(rel <= BOUND_REDUCE, "%s: token %d: relative error %.3g vs int8 reference > %.1g", what, t, rel,
                      BOUND_REDUCE);
        }
    }
    free(xv);
    free(g);
    free(ref);
    free(slack);
}

/* y = W x (and y += W x, `add`) for n tokens. */
static void check_matmul(pair *p, uint32_t type, int64_t k, int64_t m, int n, bool add) {
    char what[128];
    snprintf(what, sizeof what, "matmul%s %s k=%lld m=%lld n=%d", add ? "_add" : "", wg_type_name(type),
             (long long)k, (long long)m, n);
    twin w = weight_new(p, type, k, m);
    twin x = act_new(p, k, n, 1.0f);
    twin y = act_new(p, m, n, add ? 4.0f : 0.0f);
    if (w.g && w.c && x.g && y.g) {
        if (add) { /* the CPU backend has no fused form: matmul, then add */
            wgb_op_matmul_add(p->gpu, w.g, x.g, n, y.g);
            char err[256] = "";
            wg_tensor *z = p->cpu->ops->buffer_create(p->cpu, m, n, err, sizeof err);
            CHECK_MSG(z != NULL, "%s", err);
            if (z) {
                p->cpu->ops->matmul(p->cpu, w.c, x.c, n, z);
                p->cpu->ops->add(p->cpu, y.c, z, n);
                p->cpu->ops->tensor_free(p->cpu, z);
            }
        } else {
            /* int8: 9 to 64 tokens the format's batch tiles, more its prompt tiles */
            const uint64_t *dispatched = wgb_ctx_of(p->gpu)->dispatched;
            const int f = wgb_q8_format_of(type);
            const int batch0 = WGB_K_Q8_BATCH + f * WGB_Q8_BATCH_KERNELS, batch1 = batch0 + WGB_Q8_BATCH_KERNELS;
            uint64_t before[WGB_K_COUNT];
            memcpy(before, dispatched, sizeof before);
            p->gpu->ops->matmul(p->gpu, w.g, x.g, n, y.g);
            int batch = 0, tiled = 0; /* tiled: the prompt tiles of any shape (test_webgpu_prompt_tiles checks each) */
            for (int k = batch0; k < batch1; k++) batch += dispatched[k] != before[k];
            for (int t = 0; t < WGB_Q8_PROMPT_TILE_COUNT; t++)
                tiled += dispatched[wgb_q8_prompt_kernel(f, t)] != before[wgb_q8_prompt_kernel(f, t)];
            CHECK_MSG(tiled == (p->int8 && n > WGB_Q8_BATCH_MAX_N), "%s: %d prompt tile kernels ran", what, tiled);
            CHECK_MSG(batch == (p->int8 && wgb_q8_batch_takes(n)), "%s: %d batch tile kernels ran", what, batch);
            p->cpu->ops->matmul(p->cpu, w.c, x.c, n, y.c);
            if (bound_of(p) > BOUND_REDUCE) compare_int8_ref(p, &w, type, &x, &y, n, what);
        }
        compare(p, &y, bound_of(p), n == 1 ? OP_MATVEC : OP_MATMUL, what);
    }
    twin_free(p, &w);
    twin_free(p, &x);
    twin_free(p, &y);
}

/* out = silu(W_gate x) * (W_up x): the feed-forward product of a K-quant model. */
static void check_swiglu(pair *p, uint32_t type, int64_t k, int64_t m, int n) {
    char what[128];
    snprintf(what, sizeof what, "matmul_swiglu %s k=%lld m=%lld n=%d", wg_type_name(type), (long long)k,
             (long long)m, n);
    twin wg = weight_new(p, type, k, m), wu = weight_new(p, type, k, m);
    twin x = act_new(p, k, n, 1.0f);
    twin gate = act_new(p, m, n, 0.0f), up = act_new(p, m, n, 0.0f), y = act_new(p, m, n, 0.0f);
    if (wg.g && wg.c && wu.g && wu.c && x.g && gate.c && up.c && y.g) {
        wgb_op_matmul_swiglu(p->gpu, wg.g, wu.g, x.g, n, y.g);
        p->cpu->ops->matmul(p->cpu, wg.c, x.c, n, gate.c);
        p->cpu->ops->matmul(p->cpu, wu.c, x.c, n, up.c);
        p->cpu->ops->swiglu(p->cpu, gate.c, up.c, n, y.c);
        compare(p, &y, bound_of(p), n == 1 ? OP_MATVEC : OP_MATMUL, what);
    }
    twin_free(p, &wg);
    twin_free(p, &wu);
    twin_free(p, &x);
    twin_free(p, &gate);
    twin_free(p, &up);
    twin_free(p, &y);
}

/* q, k, v = Wq x, Wk x, Wv x in one op (the batch tiles' q/k/v kernel for 9 to 64 tokens),
 * each against the CPU's product. */
static void check_qkv(pair *p, uint32_t type, int n) {
    char what[128];
    snprintf(what, sizeof what, "matmul_qkv %s n=%d", wg_type_name(type), n);
    const int64_t k = 512, m_q = 300, m_kv = 100;
    twin wq = weight_new(p, type, k, m_q), wk = weight_new(p, type, k, m_kv), wv = weight_new(p, type, k, m_kv);
    twin x = act_new(p, k, n, 1.0f);
    twin q = act_new(p, m_q, n, 0.0f), kk = act_new(p, m_kv, n, 0.0f), v = act_new(p, m_kv, n, 0.0f);
    if (wq.g && wk.g && wv.g && x.g && q.g && kk.g && v.g) {
        const bool fused = wgb_op_matmul_qkv(p->gpu, wq.g, wk.g, wv.g, x.g, n, q.g, kk.g, v.g);
        CHECK_MSG(fused == p->int8, "%s: the fused op %s", what, fused ? "ran" : "declined");
        if (!fused) { /* the f32 kernels: one product each */
            p->gpu->ops->matmul(p->gpu, wq.g, x.g, n, q.g);
            p->gpu->ops->matmul(p->gpu, wk.g, x.g, n, kk.g);
            p->gpu->ops->matmul(p->gpu, wv.g, x.g, n, v.g);
        }
        p->cpu->ops->matmul(p->cpu, wq.c, x.c, n, q.c);
        p->cpu->ops->matmul(p->cpu, wk.c, x.c, n, kk.c);
        p->cpu->ops->matmul(p->cpu, wv.c, x.c, n, v.c);
        if (p->int8) {
            compare_int8_ref(p, &wq, type, &x, &q, n, what);
            compare_int8_ref(p, &wk, type, &x, &kk, n, what);
            compare_int8_ref(p, &wv, type, &x, &v, n, what);
        }
        compare(p, &q, bound_of(p), OP_MATMUL, what);
        compare(p, &kk, bound_of(p), OP_MATMUL, what);
        compare(p, &v, bound_of(p), OP_MATMUL, what);
    }
    twin *all[] = {&wq, &wk, &wv, &x, &q, &kk, &v};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) twin_free(p, all[i]);
}

static void check_get_rows(pair *p, uint32_t type, int64_t ne0, int64_t ne1, int n) {
    char what[128];
    snprintf(what, sizeof what, "get_rows %s ne0=%lld rows=%lld n=%d", wg_type_name(type), (long long)ne0,
             (long long)ne1, n);
    twin w = weight_new(p, type, ne0, ne1);
    twin out = act_new(p, ne0, n, 0.5f);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)((g_rng >> 33) % (uint64_t)ne1), frand();
    ids[0] = (int32_t)ne1 - 1; /* the last row: the binding's end */
    if (w.g && w.c && out.g) {
        p->gpu->ops->get_rows(p->gpu, w.g, ids, n, out.g);
        p->cpu->ops->get_rows(p->cpu, w.c, ids, n, out.c);
        compare(p, &out, BOUND_EXACT, OP_GET_ROWS, what);
    }
    free(ids);
    twin_free(p, &w);
    twin_free(p, &out);
}

static void run_all(pair *p) {
    /* 1, 3 and 4 super-blocks a row; 37 rows (not a multiple of the 8-row matvec group),
     * 300 rows (three 128-row tiles, the last partial) */
    static const struct { int64_t k, m; } shapes[] = {{256, 37}, {768, 300}, {1024, 37}};
    static const int ns[] = {1, 3, 70};
    for (size_t t = 0; t < N_TYPES; t++) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++) {
                if (s == 1 && ns[j] == 70 && t > 0) continue; /* keep the lavapipe run short */
                check_matmul(p, k_types[t], shapes[s].k, shapes[s].m, ns[j], false);
            }
        check_matmul(p, k_types[t], 768, 37, 1, true);
        check_matmul(p, k_types[t], 512, 37, 3, true);
        check_swiglu(p, k_types[t], 512, 37, 1);
        check_swiglu(p, k_types[t], 256, 37, 3);
        check_swiglu(p, k_types[t], 256, 37, 11);       /* int8: two dispatches of 8 tokens at most */
        check_swiglu(p, k_types[t], 256, 37, 40);       /* int8: the batch tiles' gate/up + SwiGLU */
        check_swiglu(p, k_types[t], 256, 37, 70);       /* int8: two prompt-tile products, then SwiGLU */
        check_matmul(p, k_types[t], 512, 37, 11, false);
        check_matmul(p, k_types[t], 768, 37, 40, false); /* int8: the batch tiles */
        check_matmul(p, k_types[t], 256, 300, 20, false);
        check_qkv(p, k_types[t], 40);
        check_get_rows(p, k_types[t], 256, 11, 3);
        check_get_rows(p, k_types[t], 768, 300, 130); /* more ids than one dispatch holds */
    }
}

/* Weights split over bindings of at most 4 KiB: 4 to 7 rows a binding. */
static void run_split(pair *p) {
    for (size_t t = 0; t < N_TYPES; t++) {
        check_matmul(p, k_types[t], 768, 300, 1, false);
        check_matmul(p, k_types[t], 768, 300, 70, false);
        check_get_rows(p, k_types[t], 768, 300, 130);
    }
}

static void report(const pair *p, const char *title) {
    printf("%s: worst relative error per op\n", title);
    for (int i = 0; i < 3; i++) printf("  %-14s %.3g\n", k_op_names[i], p->worst[i]);
}

static wg_backend *make_gpu(void) {
    wg_backend *g = test_webgpu_create();
    /* the batch tiles for 9-64 tokens whatever this adapter's autotune chose: they are checked here */
    if (g) wgb_autotune_force(wgb_ctx_of(g), WGB_TUNE_Q4_0_DECODE, WGB_TUNE_DECODE_BATCH);
    return g;
}

int main(void) {
    char err[256];
    unsetenv("WGLLM_WEBGPU_MAX_BINDING");
    setenv("WGLLM_CPU_EXACT", "1", 1); /* the reference: the CPU's f32 path */
    pair p = {0};
    p.cpu = wg_backend_cpu_create(2, err, sizeof err);
    CHECK_MSG(p.cpu != NULL, "%s", err);
    setenv("WGLLM_WEBGPU_Q4_INT8", "0", 1); /* the f32 kernels (the fallback) */
    p.gpu = make_gpu();
    unsetenv("WGLLM_WEBGPU_Q4_INT8");
    if (p.cpu && p.gpu) {
        run_all(&p);
        report(&p, "webgpu (f32 kernels) vs cpu, K-quants");
    }
    if (p.gpu) p.gpu->ops->destroy(p.gpu);

    pair q = {.cpu = p.cpu, .gpu = make_gpu(), .int8 = true}; /* products on int8 x */
    if (q.cpu && q.gpu) {
        run_all(&q);
        report(&q, "webgpu (int8 kernels) vs cpu, K-quants");
    }
    if (q.gpu) q.gpu->ops->destroy(q.gpu);

    setenv("WGLLM_WEBGPU_MAX_BINDING", "4096", 1);
    pair s = {.cpu = p.cpu, .gpu = make_gpu(), .int8 = true};
    unsetenv("WGLLM_WEBGPU_MAX_BINDING");
    if (s.cpu && s.gpu) {
        run_split(&s);
        report(&s, "webgpu (4 KiB bindings) vs cpu, K-quants");
    }
    if (s.gpu) s.gpu->ops->destroy(s.gpu);
    if (p.cpu) p.cpu->ops->destroy(p.cpu);
    CHECK_DONE();
}
