/* The WebGPU backend's fused decode op qkv_rope_store (q, k, v products of one token with
 * Q4_0 weights, and with Q8_0, Q4_K, Q5_K and Q6_K weights (the same kernel body with their
 * int8 block dots) and Q4_K or Q5_K q, k with a Q6_K v (Q4_K_M, Q5_K_M), rotary embedding, KV cache store: one dispatch) against
 *   1. the same backend's unfused ops (matmul x3, rope x2, kv_store) on the same inputs:
 *      the same int8 dot products, reduction order and angle arithmetic, so the results
 *      agree to f32 rounding: bound 1e-6 (max|diff| / max|value|), for the f16 cache too;
 *   2. a reference computed here: x rounded to int8 blocks as kernels/quantize_x_q8.wgsl
 *      does, exact integer block dots (other formats: the C dequantizer's rows), scales and
 *      the rotation in double (the angle is
 *      rounded to f32 as the CPU backend and rope.wgsl do): bound 1e-5, plus f16 rounding
 *      (2^-11 relative) for the f16 cache;
 *   3. the CPU backend's matmul, rope and kv_store on f32 x: bound 5e-2, the int8
 *      activation rounding of the decode path (see test_webgpu_backend.c), far below what
 *      a wrong row, pair or angle gives (O(1)).
 * Shapes: grouped-query heads, head_dim 64, 96 and 128, rope_dims < head_dim, frequency
 * factors, adjacent and NeoX (halves) pairs, k over several 128-block strides; positions
 * 0, 1 and 300; f32 and f16 caches; with subgroups and with the workgroup-memory
 * reduction. Cache rows other than pos0 must stay as they were. Also: the op declines
 * (returns false, changes nothing) for weights without int8 kernels or split over
 * bindings, and for NeoX pairs of an odd count. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/webgpu/wgpu_backend.h"
#include "backend/webgpu/wgpu_internal.h"
#include "check.h"
#include "webgpu_test.h"
#include "int8_ref.h"
#include "quant/quant.h"
#include "quant/types.h"

#define BOUND_UNFUSED 1e-6
#define BOUND_REF 1e-5
#define BOUND_F16 (1e-5 + 4.9e-4)
#define BOUND_CPU 5e-2
#define N_CTX 310

#define TEST_RAND_SEED 0x2545f4914f6cdd1dull
#include "test_rand.h"

typedef struct {
    int n_head, n_head_kv, head_dim, rope_dims;
    int64_t k;
    bool factors;
    bool neox; /* pairs (j, j + rope_dims / 2) */
} shape;

typedef struct {
    wg_backend *gpu, *cpu;
    double worst[4]; /* vs unfused, vs reference (f32 cache), vs cpu, vs reference (f16 cache) */
} ctx;

/* max|a - b| / max|b| */
static double rel_err(const float *a, const double *b, size_t n) {
    double md = 0.0, mb = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d; /* NaN propagates */
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}

static double rel_err_f(const float *a, const float *b, size_t n) {
    double *bd = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) bd[i] = b[i];
    double r = rel_err(a, bd, n);
    free(bd);
    return r;
}

/* rope's rotation of n_heads heads in double; the angle as the backends round it. */
static void rope_ref(double *v, int n_heads, int head_dim, int rope_dims, bool neox, int pos, float base, float scale,
                     const float *factors) {
    const float p = (float)pos * scale;
    for (int j = 0; j < rope_dims; j += 2) {
        float freq = 1.0f / powf(base, (float)j / (float)rope_dims);
        if (factors) freq /= factors[j / 2];
        const double a = (double)(p * freq), c = cos(a), s = sin(a);
        for (int h = 0; h < n_heads; h++) {
            double *e = v + (size_t)h * (size_t)head_dim + (neox ? j / 2 : j);
            const int mate = neox ? rope_dims / 2 : 1;
            const double x0 = e[0], x1 = e[mate];
            e[0] = x0 * c - x1 * s;
            e[mate] = x0 * s + x1 * c;
        }
    }
}

static uint8_t *q_weight(uint32_t type, int64_t k, int64_t m) {
    const size_t rb = wg_type_row_bytes(type, k);
    uint8_t *w = malloc(rb * (size_t)m);
    for (int64_t r = 0; r < m; r++) {
        float *row = rand_vec((size_t)k, 1.0f);
        CHECK(wg_quantize_row(type, row, w + (size_t)r * rb, k));
        free(row);
    }
    return w;
}

static wg_tensor *weight(wg_backend *b, uint32_t type, const void *data, int64_t k, int64_t m) {
    char err[512] = "";
    wg_tensor *t = b->ops->weight_create(b, type, k, m, data, err, sizeof err);
    CHECK_MSG(t != NULL, "weight [%lld, %lld]: %s", (long long)k, (long long)m, err);
    return t;
}

static wg_tensor *act(wg_backend *b, int64_t ne0, int64_t ne1, const float *init, bool kv) {
    char err[512] = "";
    static int group; /* a group per cache: each in its own arena, as separate layers are */
    wg_tensor *t = kv ? b->ops->kv_cache_create(b, ne0, ne1, group++, err, sizeof err)
                      : b->ops->buffer_create(b, ne0, ne1, err, sizeof err);
    CHECK_MSG(t != NULL, "buffer [%lld, %lld]: %s", (long long)ne0, (long long)ne1, err);
    if (t && init) b->ops->write_rows(b, t, 0, ne1, init);
    return t;
}

static void read_all(wg_backend *b, const wg_tensor *t, float *dst) {
    b->ops->read_rows(b, t, 0, t->ne1, dst);
    CHECK_MSG(b->ops->synchronize(b), "%s: %s", b->ops->name, b->ops->error(b));
}

/* Cache rows other than `pos` equal before (`init`, as stored) and after (`got`). */
static void check_other_rows(const float *got, const float *init, int64_t ne0, int pos, const char *what) {
    int64_t bad = 0;
    for (int64_t r = 0; r < N_CTX; r++)
        if (r != pos && memcmp(got + r * ne0, init + r * ne0, sizeof(float) * (size_t)ne0) != 0) bad++;
    CHECK_MSG(bad == 0, "%s: %lld cache rows other than %d changed", what, (long long)bad, pos);
}

static void note(ctx *c, int i, double e, double bound, const char *what, const char *vs) {
    CHECK_MSG(e <= bound, "%s: %s: relative error %.3g > %.1g", what, vs, e, bound);
    if (!(e <= c->worst[i])) c->worst[i] = e;
}

static void check_case(ctx *c, const shape *s, uint32_t type, uint32_t vtype, int pos, bool half) {
    wg_backend *g = c->gpu, *cpu = c->cpu;
    /* k-quant rows are whole super-blocks: k rounded up to 256 */
    const int64_t k = type == WG_TYPE_Q4_K || type == WG_TYPE_Q5_K || type == WG_TYPE_Q6_K ? (s->k + 255) / 256 * 256 : s->k, m_q = (int64_t)s->n_head * s->head_dim, m_kv = (int64_t)s->n_head_kv * s->head_dim;
    const float base = 10000.0f, scale = s->factors ? 0.5f : 1.0f;
    char what[160];
    snprintf(what, sizeof what, "%s/%s: heads %d/%d hd %d rope %d%s k %lld%s pos %d %s cache", wg_type_name(type),
             wg_type_name(vtype), s->n_head, s->n_head_kv,
             s->head_dim, s->rope_dims, s->neox ? " neox" : "", (long long)k, s->factors ? " factors" : "", pos,
             half ? "f16" : "f32");
    float *factors = NULL;
    if (s->factors) {
        factors = malloc(sizeof(float) * (size_t)(s->rope_dims / 2));
        for (int j = 0; j < s->rope_dims / 2; j++) factors[j] = 1.0f + 3.0f * (float)j / (float)s->rope_dims;
    }
    uint8_t *wqd = q_weight(type, k, m_q), *wkd = q_weight(type, k, m_kv), *wvd = q_weight(vtype, k, m_kv);
    float *x = rand_vec((size_t)k, 2.0f);
    float *kinit = rand_vec((size_t)(m_kv * N_CTX), 1.0f), *vinit = rand_vec((size_t)(m_kv * N_CTX), 1.0f);

    wg_tensor *wq = weight(g, type, wqd, k, m_q), *wk = weight(g, type, wkd, k, m_kv),
              *wv = weight(g, vtype, wvd, k, m_kv);
    wg_tensor *xg = act(g, k, 1, x, false), *qf = act(g, m_q, 1, NULL, false), *qu = act(g, m_q, 1, NULL, false);
    wg_tensor *kt = act(g, m_kv, 1, NULL, false), *vt = act(g, m_kv, 1, NULL, false);
    wg_tensor *kcf = act(g, m_kv, N_CTX, kinit, half), *vcf = act(g, m_kv, N_CTX, vinit, half);
    wg_tensor *kcu = act(g, m_kv, N_CTX, kinit, half), *vcu = act(g, m_kv, N_CTX, vinit, half);
    const size_t cache_n = (size_t)(m_kv * N_CTX);
    float *q1 = malloc(sizeof(float) * (size_t)m_q), *q2 = malloc(sizeof(float) * (size_t)m_q);
    float *kc1 = malloc(sizeof(float) * cache_n), *vc1 = malloc(sizeof(float) * cache_n);
    float *kc2 = malloc(sizeof(float) * cache_n), *vc2 = malloc(sizeof(float) * cache_n);
    float *k0 = malloc(sizeof(float) * cache_n), *v0 = malloc(sizeof(float) * cache_n);
    if (wq && wk && wv && xg && qf && qu && kt && vt && kcf && vcf && kcu && vcu) {
        read_all(g, kcf, k0); /* the initial caches as stored (f16-rounded in an f16 cache) */
        read_all(g, vcf, v0);
        const wg_rope rope = {.dims = s->rope_dims, .neox = s->neox, .base = base, .scale = scale, .factors = factors};
        bool done = wgb_op_qkv_rope_store(g, wq, wk, wv, xg, s->n_head, s->n_head_kv, s->head_dim, &rope, pos, qf,
                                           kcf, vcf);
        CHECK_MSG(done, "%s: qkv_rope_store declined", what);
        g->ops->matmul(g, wq, xg, 1, qu);
        g->ops->matmul(g, wk, xg, 1, kt);
        g->ops->matmul(g, wv, xg, 1, vt);
        g->ops->rope(g, qu, 1, s->n_head, s->head_dim, &rope, pos, 0);
        g->ops->rope(g, kt, 1, s->n_head_kv, s->head_dim, &rope, pos, 0);
        g->ops->kv_store(g, kcu, vcu, kt, vt, pos, 1, 0);
        read_all(g, qf, q1);
        read_all(g, qu, q2);
        read_all(g, kcf, kc1);
        read_all(g, vcf, vc1);
        read_all(g, kcu, kc2);
        read_all(g, vcu, vc2);

        /* 1. fused against unfused, whole caches */
        note(c, 0, rel_err_f(q1, q2, (size_t)m_q), BOUND_UNFUSED, what, "q vs unfused");
        note(c, 0, rel_err_f(kc1, kc2, cache_n), BOUND_UNFUSED, what, "k cache vs unfused");
        note(c, 0, rel_err_f(vc1, vc2, cache_n), BOUND_UNFUSED, what, "v cache vs unfused");
        check_other_rows(kc1, k0, m_kv, pos, what);
        check_other_rows(vc1, v0, m_kv, pos, what);

        /* 2. against the int8 reference in double */
        double *qr = malloc(sizeof(double) * (size_t)m_q), *kr = malloc(sizeof(double) * (size_t)m_kv),
               *vr = malloc(sizeof(double) * (size_t)m_kv);
        matvec_q8_ref(type, wqd, k, m_q, x, qr);
        matvec_q8_ref(type, wkd, k, m_kv, x, kr);
        matvec_q8_ref(vtype, wvd, k, m_kv, x, vr);
        rope_ref(qr, s->n_head, s->head_dim, s->rope_dims, s->neox, pos, base, scale, factors);
        rope_ref(kr, s->n_head_kv, s->head_dim, s->rope_dims, s->neox, pos, base, scale, factors);
        const double bkv = half ? BOUND_F16 : BOUND_REF;
        note(c, 1, rel_err(q1, qr, (size_t)m_q), BOUND_REF, what, "q vs int8 reference");
        note(c, half ? 3 : 1, rel_err(kc1 + (size_t)pos * (size_t)m_kv, kr, (size_t)m_kv), bkv, what,
             "k row vs int8 reference");
        note(c, half ? 3 : 1, rel_err(vc1 + (size_t)pos * (size_t)m_kv, vr, (size_t)m_kv), bkv, what,
             "v row vs int8 reference");
        free(qr);
        free(kr);
        free(vr);

        /* 3. against the CPU backend's unfused ops on f32 x */
        wg_tensor *cwq = weight(cpu, type, wqd, k, m_q), *cwk = weight(cpu, type, wkd, k, m_kv),
                  *cwv = weight(cpu, vtype, wvd, k, m_kv);
        wg_tensor *cx = act(cpu, k, 1, x, false), *cq = act(cpu, m_q, 1, NULL, false);
        wg_tensor *ck = act(cpu, m_kv, 1, NULL, false), *cv = act(cpu, m_kv, 1, NULL, false);
        wg_tensor *ckc = act(cpu, m_kv, N_CTX, k0, false), *cvc = act(cpu, m_kv, N_CTX, v0, false);
        if (cwq && cwk && cwv && cx && cq && ck && cv && ckc && cvc) {
            cpu->ops->matmul(cpu, cwq, cx, 1, cq);
            cpu->ops->matmul(cpu, cwk, cx, 1, ck);
            cpu->ops->matmul(cpu, cwv, cx, 1, cv);
            cpu->ops->rope(cpu, cq, 1, s->n_head, s->head_dim, &rope, pos, 0);
            cpu->ops->rope(cpu, ck, 1, s->n_head_kv, s->head_dim, &rope, pos, 0);
            cpu->ops->kv_store(cpu, ckc, cvc, ck, cv, pos, 1, 0);
            read_all(cpu, cq, q2);
            read_all(cpu, ckc, kc2);
            read_all(cpu, cvc, vc2);
            note(c, 2, rel_err_f(q1, q2, (size_t)m_q), BOUND_CPU, what, "q vs cpu");
            note(c, 2, rel_err_f(kc1, kc2, cache_n), BOUND_CPU, what, "k cache vs cpu");
            note(c, 2, rel_err_f(vc1, vc2, cache_n), BOUND_CPU, what, "v cache vs cpu");
        }
        wg_tensor *ct[] = {cwq, cwk, cwv, cx, cq, ck, cv, ckc, cvc};
        for (size_t i = 0; i < sizeof ct / sizeof ct[0]; i++)
            if (ct[i]) cpu->ops->tensor_free(cpu, ct[i]);
    }
    wg_tensor *gt[] = {wq, wk, wv, xg, qf, qu, kt, vt, kcf, vcf, kcu, vcu};
    for (size_t i = 0; i < sizeof gt / sizeof gt[0]; i++)
        if (gt[i]) g->ops->tensor_free(g, gt[i]);
    void *bufs[] = {factors, wqd, wkd, wvd, x, kinit, vinit, q1, q2, kc1, vc1, kc2, vc2, k0, v0};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
}

static void run_cases(ctx *c) {
    static const shape shapes[] = {
        {8, 2, 64, 64, 256, false, false},    /* grouped-query, 4 query heads per kv head */
        {4, 4, 128, 128, 160, false, false},  /* head_dim 128, an odd number of blocks */
        {6, 2, 128, 64, 96, true, false},     /* rope_dims < head_dim, frequency factors */
        {2, 1, 64, 32, 4160, false, false},   /* 130 blocks: the 128-invocation stride wraps */
        {6, 2, 128, 64, 96, true, true},      /* NeoX pairs (qwen2) over part of the head, factors */
        {2, 2, 96, 96, 128, false, true},     /* NeoX over phi3's head of 96 */
    };
    static const int positions[] = {0, 1, 300};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t p = 0; p < 3; p++)
            for (int half = 0; half < 2; half++) check_case(c, &shapes[s], WG_TYPE_Q4_0, WG_TYPE_Q4_0, positions[p], half);
    /* the other int8 formats: the same body with their block dots (one position and one
     * cache type a shape keep it short), and Q4_K or Q5_K q, k with a Q6_K v (the layers of a
     * wider attn_v in Q4_K_M, Q5_K_M files) */
    static const uint32_t types[][2] = {{WG_TYPE_Q8_0, WG_TYPE_Q8_0}, {WG_TYPE_Q4_K, WG_TYPE_Q4_K},
                                        {WG_TYPE_Q6_K, WG_TYPE_Q6_K}, {WG_TYPE_Q5_K, WG_TYPE_Q5_K},
                                        {WG_TYPE_Q4_K, WG_TYPE_Q6_K}, {WG_TYPE_Q5_K, WG_TYPE_Q6_K}};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) /* f32 and f16 caches by turns */
            check_case(c, &shapes[s], types[t][0], types[t][1], positions[2], (s + t) % 2 == 1);
}

/* Cases the fused kernel does not take: declined, the cache untouched. */
/* v of vtype, q and k of type. */
static void check_declines_v(wg_backend *g, uint32_t type, uint32_t vtype, int64_t k, const wg_rope *rope,
                             const char *what) {
    const int64_t m = 64;
    const size_t rb = wg_type_row_bytes(type, k), vrb = wg_type_row_bytes(vtype, k);
    uint8_t *wd = calloc(rb, (size_t)m), *vd = calloc(vrb, (size_t)m);
    float *row = rand_vec((size_t)k, 1.0f);
    for (int64_t r = 0; r < m; r++) CHECK(wg_quantize_row(type, row, wd + (size_t)r * rb, k));
    for (int64_t r = 0; r < m; r++) CHECK(wg_quantize_row(vtype, row, vd + (size_t)r * vrb, k));
    float *init = rand_vec((size_t)(m * N_CTX), 1.0f), *after = malloc(sizeof(float) * (size_t)(m * N_CTX));
    wg_tensor *w = weight(g, type, wd, k, m), *wv = weight(g, vtype, vd, k, m), *x = act(g, k, 1, row, false), *q = act(g, m, 1, NULL, false);
    wg_tensor *kc = act(g, m, N_CTX, init, false), *vc = act(g, m, N_CTX, init, false);
    if (w && wv && x && q && kc && vc) {
        bool done = wgb_op_qkv_rope_store(g, w, w, wv, x, 1, 1, 64, rope, 5, q, kc, vc);
        CHECK_MSG(!done, "%s: qkv_rope_store should decline", what);
        read_all(g, kc, after);
        CHECK_MSG(memcmp(after, init, sizeof(float) * (size_t)(m * N_CTX)) == 0, "%s: cache changed", what);
    }
    wg_tensor *gt[] = {w, wv, x, q, kc, vc};
    for (size_t i = 0; i < sizeof gt / sizeof gt[0]; i++)
        if (gt[i]) g->ops->tensor_free(g, gt[i]);
    free(wd);
    free(vd);
    free(row);
    free(init);
    free(after);
}

static void check_declines(wg_backend *g, uint32_t type, int64_t k, const wg_rope *rope, const char *what) {
    check_declines_v(g, type, type, k, rope, what);
}

/* Decode attention also leaves its output as int8 blocks for the Q4_0 matvec that follows
 * (no quantize dispatch): that matvec must equal, bit for bit, the one on a fresh rounding
 * of the same output (host write: the int8 copy is made again by quantize_x_q8), and the
 * int8 reference at BOUND_REF. Positions cover one split, several splits (attention_combine
 * rounds) and many heads without splits. */
static void check_attention_q8(ctx *c, int n_head, int n_head_kv, int hd, int pos, bool half) {
    wg_backend *g = c->gpu;
    const int64_t qd = (int64_t)n_head * hd, kvd = (int64_t)n_head_kv * hd, m = 48, n_ctx = pos + 1;
    char what[128];
    snprintf(what, sizeof what, "attention then q4_0 matvec heads %d/%d hd %d pos %d %s cache", n_head, n_head_kv, hd,
             pos, half ? "f16" : "f32");
    float *q = rand_vec((size_t)qd, 1.0f), *kv = rand_vec((size_t)(kvd * n_ctx), 1.0f);
    uint8_t *wd = q_weight(WG_TYPE_Q4_0, qd, m);
    wg_tensor *w = weight(g, WG_TYPE_Q4_0, wd, qd, m), *qt = act(g, qd, 1, q, false), *att = act(g, qd, 1, NULL, false);
    wg_tensor *kc = act(g, kvd, n_ctx, kv, half), *vc = act(g, kvd, n_ctx, kv, half);
    wg_tensor *y1 = act(g, m, 1, NULL, false), *y2 = act(g, m, 1, NULL, false);
    float *a = malloc(sizeof(float) * (size_t)qd), *r1 = malloc(sizeof(float) * (size_t)m),
          *r2 = malloc(sizeof(float) * (size_t)m);
    double *ref = malloc(sizeof(double) * (size_t)m);
    if (w && qt && att && kc && vc && y1 && y2) {
        g->ops->attention(g, qt, kc, vc, pos, 1, n_head, n_head_kv, hd, 0, att, 0);
        g->ops->matmul(g, w, att, 1, y1);
        read_all(g, att, a);
        g->ops->write_rows(g, att, 0, 1, a); /* the same values; the int8 copy is stale now */
        g->ops->matmul(g, w, att, 1, y2);
        read_all(g, y1, r1);
        read_all(g, y2, r2);
        CHECK_MSG(memcmp(r1, r2, sizeof(float) * (size_t)m) == 0, "%s: differs from quantize_x_q8's rounding (%.3g)",
                  what, rel_err_f(r1, r2, (size_t)m));
        matvec_q4_0_q8_ref(wd, qd, m, a, ref);
        note(c, 1, rel_err(r1, ref, (size_t)m), BOUND_REF, what, "vs int8 reference");
    }
    wg_tensor *gt[] = {w, qt, att, kc, vc, y1, y2};
    for (size_t i = 0; i < sizeof gt / sizeof gt[0]; i++)
        if (gt[i]) g->ops->tensor_free(g, gt[i]);
    void *bufs[] = {q, kv, wd, a, r1, r2, ref};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
}

static void run_attention_q8(ctx *c) {
    static const int positions[] = {0, 5, 255, 256, 300, 600};
    for (int half = 0; half < 2; half++) {
        for (size_t p = 0; p < 6; p++) {
            check_attention_q8(c, 8, 2, 64, positions[p], half);
            check_attention_q8(c, 4, 4, 128, positions[p], half);
        }
        check_attention_q8(c, 256, 64, 32, 300, half); /* 256 heads: one split at any length */
    }
}

static wg_backend *make_gpu(void) {
    wg_backend *g = test_webgpu_create();
    CHECK(!g || g->ops->layer != NULL);
    return g;
}

static void report(const ctx *c, const char *title) {
    printf("%s: worst relative error vs unfused ops %.3g, vs int8 reference %.3g (f16 cache %.3g), vs cpu %.3g\n",
           title, c->worst[0], c->worst[1], c->worst[3], c->worst[2]);
}

int main(void) {
    char err[256];
    const wg_rope rope64 = {.dims = 64, .base = 10000.0f, .scale = 1.0f};
    unsetenv("WGLLM_WEBGPU_Q4_INT8");
    unsetenv("WGLLM_WEBGPU_SUBGROUPS");
    unsetenv("WGLLM_WEBGPU_MAX_BINDING");
    unsetenv("WGLLM_WEBGPU_KV_F16");
    ctx c = {.cpu = wg_backend_cpu_create(2, err, sizeof err)};
    CHECK_MSG(c.cpu != NULL, "%s", err);
    c.gpu = make_gpu();
    if (c.cpu && c.gpu) {
        run_cases(&c);
        run_attention_q8(&c);
        check_declines(c.gpu, WG_TYPE_Q5_0, 64, &rope64, "q5_0 weights (no int8 kernels)");
        check_declines_v(c.gpu, WG_TYPE_Q4_0, WG_TYPE_Q8_0, 64, &rope64, "q4_0 q, k with a q8_0 v (no such kernel)");
        /* NeoX pairs are taken two at a time: an odd number of pairs is declined */
        check_declines(c.gpu, WG_TYPE_Q4_0, 64, &(wg_rope){.dims = 34, .neox = true, .base = 10000.0f, .scale = 1.0f},
                       "neox over 17 pairs");
        report(&c, "subgroup reduction (where the device has subgroups)");
    }
    if (c.gpu) c.gpu->ops->destroy(c.gpu);

    /* the workgroup-memory reduction (devices without subgroups) */
    setenv("WGLLM_WEBGPU_SUBGROUPS", "0", 1);
    ctx w = {.cpu = c.cpu, .gpu = make_gpu()};
    unsetenv("WGLLM_WEBGPU_SUBGROUPS");
    if (w.cpu && w.gpu) {
        run_cases(&w);
        run_attention_q8(&w);
        report(&w, "workgroup-memory reduction");
    }
    if (w.gpu) w.gpu->ops->destroy(w.gpu);

    /* weights over 4 KiB split into several bindings: declined */
    setenv("WGLLM_WEBGPU_MAX_BINDING", "4096", 1);
    wg_backend *sp = make_gpu();
    unsetenv("WGLLM_WEBGPU_MAX_BINDING");
    if (sp) {
        check_declines(sp, WG_TYPE_Q4_0, 1024, &rope64, "split q4_0 weights"); /* 64 rows x 576 bytes */
        sp->ops->destroy(sp);
    }

    /* the int8 path off: the f32 matvec, no fused op */
    setenv("WGLLM_WEBGPU_Q4_INT8", "0", 1);
    wg_backend *f = make_gpu();
    unsetenv("WGLLM_WEBGPU_Q4_INT8");
    if (f) {
        check_declines(f, WG_TYPE_Q4_0, 64, &rope64, "WGLLM_WEBGPU_Q4_INT8=0");
        f->ops->destroy(f);
    }
    if (c.cpu) c.cpu->ops->destroy(c.cpu);
    CHECK_DONE();
}
