/* The WebGPU backend's Q4_0 products on int8 x for batches of tokens (prompts: the tiled
 * kernel kernels/matmul_q8.wgsl, from 33 tokens on; the 8-token matvec below) against
 *   1. a reference computed here: x rounded to int8 blocks as kernels/quantize_x_q8.wgsl
 *      does, exact integer block dots, scales and the sum in double. The kernel computes
 *      each block's integer dot exactly as well, so what differs is one rounding of the
 *      scale product d_w * d_x, one of its product with the dot, and the f32 sum over k / 32
 *      blocks (at most 128 here): at most (k / 32 + 2) 2^-24 sum|terms| per value, which for
 *      random data is about 1e-6 of max|y|, usually far less. Bound 1e-5 (max|gpu - ref| /
 *      max|ref|, per product), the bound of the other int8 tests; a wrong nibble, scale,
 *      row or token gives O(1e-2) or more. Beyond that, an element of x within 1e-4 of a
 *      rounding tie may round either way on a GPU (int8_ref.h), and its effect is allowed;
 *   2. the 8-token matvec (matvec_q4_0_q8_nt.wgsl, used up to 32 tokens) on the same x, 40
 *      tokens as five products of 8: the same int8 terms summed in another order, so the
 *      two agree to f32 rounding: bound 1e-6.
 * Shapes: k = 32 (one block), 96 (an odd number of blocks, a partial step) and 4096; m = 100
 * and 257 (partial row tiles); n = 9 (the nt matvec) and 33 .. 512 (partial token tiles); out = W x and
 * out += W x (matmul_add) over nonzero out; x as the output buffer (out += W out); the
 * SwiGLU op over two such products; weights split into several bindings
 * (WGLLM_WEBGPU_MAX_BINDING). Runs on any adapter (CI: lavapipe); none is a failure. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/webgpu/wgpu_backend.h"
#include "backend/webgpu/wgpu_internal.h"
#include "check.h"
#include "webgpu_test.h"
#include "int8_ref.h"
#include "quant/quant.h"
#include "quant/types.h"

#define BOUND_REF 1e-5
#define BOUND_NT 1e-6

#define TEST_RAND_SEED 0x7f4a7c159e3779b9ull
#include "test_rand.h"

typedef struct {
    wg_backend *gpu;
    double worst_ref, worst_nt, worst_swiglu;
} ctx;

/* A random Q4_0 weight: its bytes and its values q - 8 as int8 with the row scales. */
typedef struct {
    int64_t k, m;
    uint8_t *bytes;
    int8_t *q;   /* m * k */
    double *d;   /* m * (k / 32) */
    wg_tensor *t;
} q4w;

static q4w q4_new(wg_backend *g, int64_t k, int64_t m) {
    q4w w = {.k = k, .m = m};
    const size_t rb = wg_type_row_bytes(WG_TYPE_Q4_0, k);
    w.bytes = malloc(rb * (size_t)m);
    w.q = malloc((size_t)(k * m));
    w.d = malloc(sizeof(double) * (size_t)(m * (k / 32)));
    for (int64_t r = 0; r < m; r++) {
        float *row = rand_vec((size_t)k, 1.0f);
        CHECK(wg_quantize_row(WG_TYPE_Q4_0, row, w.bytes + (size_t)r * rb, k));
        free(row);
        for (int64_t b = 0; b < k / 32; b++) {
            const uint8_t *blk = w.bytes + (size_t)r * rb + (size_t)b * 18;
            w.d[r * (k / 32) + b] = wg_fp16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
            for (int j = 0; j < 16; j++) {
                w.q[r * k + b * 32 + j] = (int8_t)((blk[2 + j] & 15) - 8);
                w.q[r * k + b * 32 + j + 16] = (int8_t)((blk[2 + j] >> 4) - 8);
            }
        }
    }
    char err[512] = "";
    w.t = g->ops->weight_create(g, WG_TYPE_Q4_0, k, m, w.bytes, err, sizeof err);
    CHECK_MSG(w.t != NULL, "weight [%lld, %lld]: %s", (long long)k, (long long)m, err);
    return w;
}

static void q4_free(wg_backend *g, q4w *w) {
    if (w->t) g->ops->tensor_free(g, w->t);
    free(w->bytes);
    free(w->q);
    free(w->d);
}

/* y[t * m + r] = sum over blocks of d_w d_x (exact integer dot), in double, for n tokens;
 * slack (same shape, or NULL): how far each value may move when x's near-tie elements round
 * the other way on a GPU (int8_ref.h). */
static void ref_matmul(const q4w *w, const float *x, int n, double *y, double *slack) {
    const int64_t k = w->k, nb = k / 32;
    int8_t *xq = malloc((size_t)k);
    float *xd = malloc(sizeof(float) * (size_t)nb);
    for (int t = 0; t < n; t++) {
        const float *xt = x + (size_t)t * (size_t)k;
        quantize_x_q8_ref(xt, k, xq, xd);
        for (int64_t r = 0; r < w->m; r++) {
            const int8_t *wq = w->q + r * k;
            double acc = 0.0, sl = 0.0;
            for (int64_t b = 0; b < nb; b++) {
                int32_t dot = 0;
                for (int j = 0; j < 32; j++) dot += (int32_t)wq[b * 32 + j] * xq[b * 32 + j];
                acc += w->d[r * nb + b] * (double)xd[b] * (double)dot;
                if (!slack) continue;
                const float id = xd[b] > 0.0f ? 1.0f / xd[b] : 0.0f;
                for (int j = 0; j < 32; j++)
                    if (q8_near_tie(xt[b * 32 + j], id)) sl += fabs(w->d[r * nb + b] * wq[b * 32 + j]) * xd[b];
            }
            y[(size_t)t * (size_t)w->m + (size_t)r] = acc;
            if (slack) slack[(size_t)t * (size_t)w->m + (size_t)r] = sl;
        }
    }
    free(xq);
    free(xd);
}

static wg_tensor *act(wg_backend *g, int64_t ne0, int64_t ne1, const float *init) {
    char err[512] = "";
    wg_tensor *t = g->ops->buffer_create(g, ne0, ne1, err, sizeof err);
    CHECK_MSG(t != NULL, "buffer [%lld, %lld]: %s", (long long)ne0, (long long)ne1, err);
    if (t && init) g->ops->write_rows(g, t, 0, ne1, init);
    return t;
}

static bool read_all(wg_backend *g, const wg_tensor *t, int64_t rows, float *dst) {
    g->ops->read_rows(g, t, 0, rows, dst);
    bool ok = g->ops->synchronize(g);
    CHECK_MSG(ok, "webgpu: %s", g->ops->error(g));
    return ok;
}

/* max(|a - b| - slack) / max|b| (slack may be NULL: none) */
static double rel_err(const float *a, const double *b, const double *slack, size_t n) {
    double md = 0.0, mb = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) - (slack ? slack[i] : 0.0);
        double d = e < 0.0 ? 0.0 : e; /* NaN stays NaN */
        if (!(d <= md)) md = d; /* NaN propagates */
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}

static void note(double *worst, double e, double bound, const char *what) {
    CHECK_MSG(e <= bound, "%s: relative error %.3g > %.1g", what, e, bound);
    if (!(e <= *worst)) *worst = e;
}

/* out = W x (or out += W x over a random out) for n tokens, against the reference. */
static void check_product(ctx *c, int64_t k, int64_t m, int n, bool accumulate, const char *tag) {
    wg_backend *g = c->gpu;
    char what[128];
    snprintf(what, sizeof what, "%sk %lld m %lld n %d%s", tag, (long long)k, (long long)m, n,
             accumulate ? " accumulate" : "");
    q4w w = q4_new(g, k, m);
    const size_t nx = (size_t)k * (size_t)n, ny = (size_t)m * (size_t)n;
    /* y0: stale values to overwrite, and one row more that must stay as it is */
    float *x = rand_vec(nx, 2.0f), *y0 = rand_vec(ny + (size_t)m, 4.0f);
    float *got = malloc(sizeof(float) * (ny + (size_t)m));
    double *ref = malloc(sizeof(double) * ny);
    wg_tensor *xt = act(g, k, n, x), *yt = act(g, m, n + 1, y0);
    if (w.t && xt && yt) {
        if (accumulate) wgb_op_matmul_add(g, w.t, xt, n, yt);
        else g->ops->matmul(g, w.t, xt, n, yt);
        if (read_all(g, yt, n + 1, got)) {
            CHECK_MSG(memcmp(got + ny, y0 + ny, sizeof(float) * (size_t)m) == 0, "%s: row n written", what);
            double *slack = malloc(sizeof(double) * ny);
            ref_matmul(&w, x, n, ref, slack);
            if (accumulate) /* the reference of the product alone, so y0 does not hide its error */
                for (size_t i = 0; i < ny; i++) got[i] -= y0[i];
            note(&c->worst_ref, rel_err(got, ref, slack, ny), BOUND_REF, what);
            free(slack);
        }
    }
    if (xt) g->ops->tensor_free(g, xt);
    if (yt) g->ops->tensor_free(g, yt);
    q4_free(g, &w);
    free(x);
    free(y0);
    free(got);
    free(ref);
}

/* 40 tokens through the tiled kernel and, as five products of 8, through the nt matvec. */
static void check_vs_nt(ctx *c, int64_t k, int64_t m) {
    wg_backend *g = c->gpu;
    char what[96];
    enum { N = 40, H = 8 };
    snprintf(what, sizeof what, "k %lld m %lld: %d tokens vs %d x %d (nt kernel)", (long long)k, (long long)m, N,
             N / H, H);
    q4w w = q4_new(g, k, m);
    float *x = rand_vec((size_t)(k * N), 2.0f);
    float *tiled = malloc(sizeof(float) * (size_t)(m * N)), *nt = malloc(sizeof(float) * (size_t)(m * N));
    wg_tensor *xt = act(g, k, N, x), *yt = act(g, m, N, NULL), *xh[N / H], *yh[N / H];
    bool ok = w.t && xt && yt;
    for (int i = 0; i < N / H; i++) {
        xh[i] = act(g, k, H, x + (size_t)(k * H * i));
        yh[i] = act(g, m, H, NULL);
        ok = ok && xh[i] && yh[i];
    }
    if (ok) {
        g->ops->matmul(g, w.t, xt, N, yt);
        for (int i = 0; i < N / H; i++) g->ops->matmul(g, w.t, xh[i], H, yh[i]);
        ok = read_all(g, yt, N, tiled);
        for (int i = 0; ok && i < N / H; i++) ok = read_all(g, yh[i], H, nt + m * H * i);
        if (ok) {
            double *ntd = malloc(sizeof(double) * (size_t)(m * N));
            for (int64_t i = 0; i < m * N; i++) ntd[i] = nt[i];
            note(&c->worst_nt, rel_err(tiled, ntd, NULL, (size_t)(m * N)), BOUND_NT, what);
            free(ntd);
        }
    }
    for (int i = 0; i < N / H; i++) {
        if (xh[i]) g->ops->tensor_free(g, xh[i]);
        if (yh[i]) g->ops->tensor_free(g, yh[i]);
    }
    if (xt) g->ops->tensor_free(g, xt);
    if (yt) g->ops->tensor_free(g, yt);
    q4_free(g, &w);
    free(x);
    free(tiled);
    free(nt);
}

/* x += W x with a square W: x is read through its int8 copy, so it may be the output. */
static void check_in_place(ctx *c, int64_t k, int n) {
    wg_backend *g = c->gpu;
    char what[96];
    snprintf(what, sizeof what, "k %lld n %d: x += W x in place", (long long)k, n);
    q4w w = q4_new(g, k, k);
    const size_t nx = (size_t)k * (size_t)n;
    float *x = rand_vec(nx, 2.0f), *got = malloc(sizeof(float) * nx);
    double *ref = malloc(sizeof(double) * nx);
    wg_tensor *xt = act(g, k, n, x);
    if (w.t && xt) {
        wgb_op_matmul_add(g, w.t, xt, n, xt);
        if (read_all(g, xt, n, got)) {
            double *slack = malloc(sizeof(double) * nx);
            ref_matmul(&w, x, n, ref, slack);
            for (size_t i = 0; i < nx; i++) got[i] -= x[i];
            note(&c->worst_ref, rel_err(got, ref, slack, nx), BOUND_REF, what);
            free(slack);
        }
    }
    if (xt) g->ops->tensor_free(g, xt);
    q4_free(g, &w);
    free(x);
    free(got);
    free(ref);
}

/* silu(Wg x) * (Wu x) for n tokens: the products as above, then the element-wise op. The
 * SwiGLU of values with relative errors e_g, e_u is off by about (e_g + e_u) max|g| max|u|,
 * so the bound is 2 BOUND_REF relative to that scale (not to max|out|, which is smaller). */
static void check_swiglu(ctx *c, int64_t k, int64_t m, int n) {
    wg_backend *g = c->gpu;
    char what[96];
    snprintf(what, sizeof what, "k %lld m %lld n %d: matmul_swiglu", (long long)k, (long long)m, n);
    q4w wg = q4_new(g, k, m), wu = q4_new(g, k, m);
    const size_t nx = (size_t)k * (size_t)n, ny = (size_t)m * (size_t)n;
    float *x = rand_vec(nx, 2.0f), *got = malloc(sizeof(float) * ny);
    double *rg = malloc(sizeof(double) * ny), *ru = malloc(sizeof(double) * ny);
    wg_tensor *xt = act(g, k, n, x), *yt = act(g, m, n, NULL);
    if (wg.t && wu.t && xt && yt) {
        wgb_op_matmul_swiglu(g, wg.t, wu.t, xt, n, yt);
        if (read_all(g, yt, n, got)) {
            ref_matmul(&wg, x, n, rg, NULL);
            ref_matmul(&wu, x, n, ru, NULL);
            double mg = 0.0, mu = 0.0, md = 0.0;
            for (size_t i = 0; i < ny; i++) {
                mg = fmax(mg, fabs(rg[i]));
                mu = fmax(mu, fabs(ru[i]));
                double want = rg[i] / (1.0 + exp(-rg[i])) * ru[i], d = fabs((double)got[i] - want);
                if (!(d <= md)) md = d;
            }
            double e = md / (mg * mu);
            CHECK_MSG(e <= 2 * BOUND_REF, "%s: error %.3g of max|g| max|u| > %.1g", what, e, 2 * BOUND_REF);
            if (!(e <= c->worst_swiglu)) c->worst_swiglu = e;
        }
    }
    if (xt) g->ops->tensor_free(g, xt);
    if (yt) g->ops->tensor_free(g, yt);
    q4_free(g, &wg);
    q4_free(g, &wu);
    free(x);
    free(got);
    free(rg);
    free(ru);
}

static wg_backend *make_gpu(void) {
    wg_backend *g = test_webgpu_create();
    return g;
}

int main(void) {
    unsetenv("WGLLM_WEBGPU_Q4_INT8");
    unsetenv("WGLLM_WEBGPU_MAX_BINDING");
    ctx c = {.gpu = make_gpu()};
    if (c.gpu) {
        static const int ns[] = {9, 33, 64, 65, 130, 512};
        static const int64_t small_k[] = {32, 96}, ms[] = {100, 257};
        for (size_t a = 0; a < 2; a++)
            for (size_t b = 0; b < 2; b++)
                for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++) {
                    check_product(&c, small_k[a], ms[b], ns[j], false, "");
                    check_product(&c, small_k[a], ms[b], ns[j], true, "");
                }
        /* long rows: many steps, the prefetch of the next one */
        check_product(&c, 4096, 100, 9, false, "");
        check_product(&c, 4096, 257, 65, true, "");
        check_product(&c, 4096, 100, 130, false, "");
        check_product(&c, 4096, 257, 512, false, "");
        check_vs_nt(&c, 96, 257);
        check_vs_nt(&c, 4096, 100);
        check_in_place(&c, 96, 33);
        check_swiglu(&c, 96, 257, 65);
        c.gpu->ops->destroy(c.gpu);
    }
    printf("worst relative error vs int8 reference %.3g, vs nt kernel %.3g, swiglu %.3g\n", c.worst_ref, c.worst_nt,
           c.worst_swiglu);

    /* weights over 4 KiB split by rows into several bindings (k 96: 75 rows each; k 1024: 7) */
    setenv("WGLLM_WEBGPU_MAX_BINDING", "4096", 1);
    ctx s = {.gpu = make_gpu()};
    unsetenv("WGLLM_WEBGPU_MAX_BINDING");
    if (s.gpu) {
        check_product(&s, 96, 257, 65, false, "split: ");
        check_product(&s, 96, 257, 130, true, "split: ");
        check_product(&s, 1024, 100, 33, true, "split: ");
        check_vs_nt(&s, 96, 257);
        s.gpu->ops->destroy(s.gpu);
    }
    printf("split weights: worst relative error vs int8 reference %.3g, vs nt kernel %.3g\n", s.worst_ref,
           s.worst_nt);
    CHECK_DONE();
}
