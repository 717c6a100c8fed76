/* Every primitive op of every backend in the registry against plain scalar references
 * written here (double precision, own dequantization), as llama.cpp's test-backend-ops
 * does: a backend added to the registry gets these checks without a line here. A backend
 * the build registers but cannot create (no WebGPU device) fails the test.
 *
 * Errors are max |got - ref| / max |ref| per case, printed as the worst per op and backend.
 * Bounds: f32 arithmetic 1e-5; rope at large positions 1e-3 (f32 angles of thousands of
 * radians); KV values read back from the cache as stored (f16 on GPUs that have it), so
 * attention is held to 1e-4 on every backend; Q4_0 products 2e-2 (a GPU may round x to
 * int8 blocks, as llama.cpp does), and the CPU's Q8_0 products too (it rounds x to int8
 * blocks for batches below 4 unless WGLLM_CPU_EXACT=1).
 *
 * Variants of one backend (WebGPU without subgroups, f32 KV) are this test run again with
 * the backend's environment switches (CMakeLists.txt). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/registry.h"
#include "check.h"
#include "quant/quant.h"
#include "quant/types.h"

enum { OP_GET_ROWS, OP_COPY_ROWS, OP_RMS_NORM, OP_MATMUL, OP_ROPE, OP_KV_STORE, OP_ATTENTION, OP_SWIGLU, OP_ADD,
       OP_COUNT };
static const char *const k_op_names[OP_COUNT] = {"get_rows", "copy_rows", "rms_norm", "matmul", "rope",
                                                 "kv_store", "attention", "swiglu",   "add"};

typedef struct {
    wg_backend *b;
    const char *name;
    double worst[OP_COUNT];
    int cases[OP_COUNT];
} ctx;

static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static float frand(void) { /* uniform in [-1, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) / 4503599627370496.0 - 1.0);
}

static float *rand_vec(size_t n, float scale) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; v && i < n; i++) v[i] = frand() * scale;
    return v;
}

static double rel_err(const float *got, const double *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= num)) num = d; /* NaN wins */
        if (fabs(ref[i]) > den) den = fabs(ref[i]);
    }
    return den > 0 ? num / den : num;
}

/* Records a case's error; fails it above bound (and on any backend error). */
static void note(ctx *c, int op, double err, double bound, const char *what) {
    const bool synced = c->b->ops->synchronize(c->b);
    CHECK_MSG(synced, "%s: %s: backend error: %s", c->name, what, c->b->ops->error(c->b));
    CHECK_MSG(err <= bound, "%s: %s: rel. error %.3g above %.3g", c->name, what, err, bound);
    printf("  %-8s %-72s %9.3g (bound %.0e)\n", c->name, what, err, bound);
    if (!(err <= c->worst[op])) c->worst[op] = err;
    c->cases[op]++;
}

/* ---- tensors ---- */
static wg_tensor *act(ctx *c, int64_t ne0, int64_t ne1, const float *data) {
    char err[256];
    wg_tensor *t = c->b->ops->buffer_create(c->b, ne0, ne1, err, sizeof err);
    CHECK_MSG(t != NULL, "%s: buffer_create: %s", c->name, err);
    if (t && data) c->b->ops->write_rows(c->b, t, 0, ne1, data);
    return t;
}

static wg_tensor *weight(ctx *c, uint32_t type, int64_t ne0, int64_t ne1, const void *data) {
    char err[256];
    wg_tensor *t = c->b->ops->weight_create(c->b, type, ne0, ne1, data, err, sizeof err);
    CHECK_MSG(t != NULL, "%s: weight_create: %s", c->name, err);
    return t;
}

/* A KV cache as the model makes it (kv_cache_create where the backend has it). */
static wg_tensor *kv_cache(ctx *c, int64_t ne0, int64_t ne1, int group) {
    char err[256];
    const wg_backend_ops *o = c->b->ops;
    wg_tensor *t = o->kv_cache_create ? o->kv_cache_create(c->b, ne0, ne1, group, err, sizeof err)
                                      : o->buffer_create(c->b, ne0, ne1, err, sizeof err);
    CHECK_MSG(t != NULL, "%s: kv cache: %s", c->name, err);
    return t;
}

static float *read_back(ctx *c, const wg_tensor *t, int64_t rows) {
    float *v = calloc((size_t)(t->ne0 * rows), sizeof(float));
    if (v) c->b->ops->read_rows(c->b, t, 0, rows, v);
    return v;
}

static void drop(ctx *c, wg_tensor *t) {
    if (t) c->b->ops->tensor_free(c->b, t);
}

/* ---- the reference's own decoding of the weight formats ---- */
static double half_to_double(uint16_t h) {
    const int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return h & 0x8000 ? -v : v;
}

static uint16_t u16_at(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Row r of a weight of type f32, f16, q8_0 (blocks of 32: f16 scale, 32 int8) or q4_0
 * (blocks of 32: f16 scale, 16 bytes; low nibbles are elements 0..15, high 16..31, value
 * (nibble - 8) * scale), as doubles. */
static void ref_row(uint32_t type, const uint8_t *data, int64_t k, int64_t r, double *out) {
    const size_t rb = wg_type_row_bytes(type, k);
    const uint8_t *row = data + (size_t)r * rb;
    for (int64_t j = 0; j < k; j++) {
        switch (type) {
        case WG_TYPE_F32: {
            float f;
            memcpy(&f, row + 4 * j, 4);
            out[j] = f;
            break;
        }
        case WG_TYPE_F16: out[j] = half_to_double(u16_at(row + 2 * j)); break;
        case WG_TYPE_Q8_0: {
            const uint8_t *blk = row + (size_t)(j / 32) * 34;
            out[j] = half_to_double(u16_at(blk)) * (double)(int8_t)blk[2 + j % 32];
            break;
        }
        default: { /* q4_0 */
            const uint8_t *blk = row + (size_t)(j / 32) * 18;
            const int e = (int)(j % 32);
            const int q = e < 16 ? blk[2 + e] & 15 : blk[2 + e - 16] >> 4;
            out[j] = half_to_double(u16_at(blk)) * (q - 8);
            break;
        }
        }
    }
}

/* m rows of k random values stored as `type`. */
static uint8_t *rand_weight(uint32_t type, int64_t k, int64_t m, float scale) {
    const size_t rb = wg_type_row_bytes(type, k);
    uint8_t *d = malloc(rb * (size_t)m);
    float *row = rand_vec((size_t)k, scale);
    for (int64_t r = 0; d && row && r < m; r++) {
        for (int64_t j = 0; j < k; j++) row[j] = frand() * scale;
        CHECK(wg_quantize_row(type, row, d + (size_t)r * rb, k));
    }
    free(row);
    return d;
}

/* ---- get_rows, copy_rows ---- */
static void test_get_rows(ctx *c, uint32_t type, int64_t k, int64_t rows) {
    char what[96];
    snprintf(what, sizeof what, "get_rows %s k=%lld", wg_type_name(type), (long long)k);
    const int32_t ids[] = {3, 0, (int32_t)rows - 1, 3, 7, 1};
    const int n = (int)(sizeof ids / sizeof ids[0]);
    uint8_t *data = rand_weight(type, k, rows, 1.0f);
    double *ref = malloc(sizeof(double) * (size_t)(k * n));
    wg_tensor *t = weight(c, type, k, rows, data), *out = act(c, k, n, NULL);
    if (t && out && ref) {
        for (int i = 0; i < n; i++) ref_row(type, data, k, ids[i], ref + (size_t)i * (size_t)k);
        c->b->ops->get_rows(c->b, t, ids, n, out);
        float *got = read_back(c, out, n);
        note(c, OP_GET_ROWS, rel_err(got, ref, (size_t)(k * n)), 1e-6, what);
        free(got);
    }
    drop(c, t);
    drop(c, out);
    free(data);
    free(ref);
}

static void test_copy_rows(ctx *c) {
    const int64_t d = 72;
    float *src = rand_vec((size_t)(d * 9), 1.0f), *dst0 = rand_vec((size_t)(d * 12), 1.0f);
    double *ref = malloc(sizeof(double) * (size_t)(d * 12));
    wg_tensor *s = act(c, d, 9, src), *t = act(c, d, 12, dst0);
    if (s && t && ref) {
        c->b->ops->copy_rows(c->b, s, 2, 5, t, 6); /* rows 2..6 to 6..10 */
        for (int64_t i = 0; i < d * 12; i++) ref[i] = dst0[i];
        for (int64_t i = 0; i < d * 5; i++) ref[6 * d + i] = src[2 * d + i];
        float *got = read_back(c, t, 12);
        note(c, OP_COPY_ROWS, rel_err(got, ref, (size_t)(d * 12)), 0.0, "copy_rows 5 rows, offsets 2 -> 6");
        free(got);
    }
    drop(c, s);
    drop(c, t);
    free(src);
    free(dst0);
    free(ref);
}

/* ---- rms_norm: groups of w's length; out separate or x itself; w a weight or an activation ---- */
static void test_rms_norm(ctx *c, int64_t d, int64_t g, int n, bool in_place, bool w_is_weight) {
    char what[128];
    snprintf(what, sizeof what, "rms_norm d=%lld group=%lld n=%d%s%s", (long long)d, (long long)g, n,
             in_place ? " in place" : "", w_is_weight ? "" : " (w an activation)");
    float *x = rand_vec((size_t)(d * n), 2.0f), *w = rand_vec((size_t)g, 1.0f);
    for (int i = 0; i < n; i++) /* groups of very different scales */
        for (int64_t j = 0; j < d; j++) x[(size_t)i * (size_t)d + (size_t)j] *= (float)(1 + (j / g) * 7 % 5);
    double *ref = malloc(sizeof(double) * (size_t)(d * n));
    const float eps = 1e-5f;
    for (int i = 0; ref && i < n; i++)
        for (int64_t j0 = 0; j0 < d; j0 += g) {
            const float *xi = x + (size_t)i * (size_t)d + (size_t)j0;
            double ss = 0;
            for (int64_t j = 0; j < g; j++) ss += (double)xi[j] * xi[j];
            const double s = 1.0 / sqrt(ss / (double)g + eps);
            for (int64_t j = 0; j < g; j++) ref[(size_t)i * (size_t)d + (size_t)(j0 + j)] = xi[j] * s * w[j];
        }
    wg_tensor *X = act(c, d, n, x), *W = w_is_weight ? weight(c, WG_TYPE_F32, g, 1, w) : act(c, g, 1, w);
    wg_tensor *O = in_place ? X : act(c, d, n, NULL);
    if (X && W && O && ref) {
        c->b->ops->rms_norm(c->b, X, W, eps, n, O);
        float *got = read_back(c, O, n);
        note(c, OP_RMS_NORM, rel_err(got, ref, (size_t)(d * n)), 1e-5, what);
        free(got);
    }
    drop(c, X);
    drop(c, W);
    if (!in_place) drop(c, O);
    free(x);
    free(w);
    free(ref);
}

/* ---- matmul ---- */
static void test_matmul(ctx *c, uint32_t type, int64_t k, int64_t m, int n) {
    char what[96];
    snprintf(what, sizeof what, "matmul %s k=%lld m=%lld n=%d", wg_type_name(type), (long long)k, (long long)m, n);
    uint8_t *data = rand_weight(type, k, m, 0.5f);
    float *x = rand_vec((size_t)(k * n), 1.0f);
    double *wr = malloc(sizeof(double) * (size_t)k), *ref = malloc(sizeof(double) * (size_t)(m * n));
    for (int64_t r = 0; wr && ref && r < m; r++) {
        ref_row(type, data, k, r, wr);
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int64_t j = 0; j < k; j++) s += wr[j] * x[(size_t)i * (size_t)k + (size_t)j];
            ref[(size_t)i * (size_t)m + (size_t)r] = s;
        }
    }
    wg_tensor *W = weight(c, type, k, m, data), *X = act(c, k, n, x), *Y = act(c, m, n, NULL);
    if (W && X && Y && ref) {
        c->b->ops->matmul(c->b, W, X, n, Y);
        float *got = read_back(c, Y, n);
        /* the CPU rounds x to int8 blocks for small batches of quantized weights by default */
        /* and so does WebGPU for every int8 format at any token count (unless WGLLM_WEBGPU_Q4_INT8=0) */
        const char *i8 = getenv("WGLLM_WEBGPU_Q4_INT8");
        const bool gpu_int8 = strcmp(c->name, "webgpu") == 0 && !(i8 && strcmp(i8, "0") == 0);
        const bool int8_x = type == WG_TYPE_Q4_0 || (type == WG_TYPE_Q8_0 && (strcmp(c->name, "cpu") == 0 || gpu_int8));
        note(c, OP_MATMUL, rel_err(got, ref, (size_t)(m * n)), int8_x ? 2e-2 : 1e-5, what);
        free(got);
    }
    drop(c, W);
    drop(c, X);
    drop(c, Y);
    free(data);
    free(x);
    free(wr);
    free(ref);
}

/* ---- rope ---- */
/* The rotation of wg_rope, in double: pair j of a head is (2j, 2j + 1), or (j, j + dims / 2)
 * with neox, turned by p * scale * base^(-2j / dims) / factors[j]. */
static void rope_ref(double *x, int n_heads, int head_dim, const wg_rope *r, int pos) {
    const int half = r->dims / 2;
    for (int h = 0; h < n_heads; h++)
        for (int j = 0; j < half; j++) {
            double th = pos * (double)r->scale * pow(r->base, -2.0 * j / r->dims);
            if (r->factors) th /= r->factors[j];
            double *v = x + (size_t)h * (size_t)head_dim;
            const int a = r->neox ? j : 2 * j, b = r->neox ? j + half : 2 * j + 1;
            const double va = v[a], vb = v[b];
            v[a] = va * cos(th) - vb * sin(th);
            v[b] = va * sin(th) + vb * cos(th);
        }
}

static void test_rope(ctx *c, int n_heads, int head_dim, const wg_rope *r, int pos0, int n, int row0, double bound) {
    char what[160];
    snprintf(what, sizeof what, "rope %s heads=%d hd=%d dims=%d%s scale=%g pos0=%d n=%d row0=%d",
             r->neox ? "neox" : "adjacent", n_heads, head_dim, r->dims, r->factors ? " factors" : "",
             (double)r->scale, pos0, n, row0);
    const int64_t d = (int64_t)n_heads * head_dim + 8, rows = row0 + n + 1; /* a longer row, rows around */
    float *x = rand_vec((size_t)(d * rows), 1.0f);
    double *ref = malloc(sizeof(double) * (size_t)(d * rows));
    for (int64_t i = 0; ref && i < d * rows; i++) ref[i] = x[i];
    for (int i = 0; ref && i < n; i++) rope_ref(ref + (size_t)(row0 + i) * (size_t)d, n_heads, head_dim, r, pos0 + i);
    wg_tensor *X = act(c, d, rows, x);
    if (X && ref) {
        c->b->ops->rope(c->b, X, n, n_heads, head_dim, r, pos0, row0);
        float *got = read_back(c, X, rows);
        note(c, OP_ROPE, rel_err(got, ref, (size_t)(d * rows)), bound, what);
        free(got);
    }
    drop(c, X);
    free(x);
    free(ref);
}

static void test_ropes(ctx *c) {
    float factors[64];
    for (int j = 0; j < 64; j++) factors[j] = j < 8 ? 1.0f : j < 24 ? 1.0f + 0.4f * (float)(j - 7) : 8.0f;
    for (int neox = 0; neox < 2; neox++) {
        const wg_rope full = {.dims = 64, .neox = neox, .base = 10000.0f, .scale = 1.0f};
        const wg_rope part = {.dims = 32, .neox = neox, .base = 10000.0f, .scale = 1.0f};   /* partial rotary */
        const wg_rope odd = {.dims = 24, .neox = neox, .base = 500000.0f, .scale = 1.0f};   /* 12 pairs */
        const wg_rope fac = {.dims = 128, .neox = neox, .base = 500000.0f, .scale = 1.0f, .factors = factors};
        const wg_rope lin = {.dims = 96, .neox = neox, .base = 10000.0f, .scale = 0.25f};  /* phi3's head */
        test_rope(c, 4, 64, &full, 0, 3, 0, 1e-5);
        test_rope(c, 3, 64, &full, 17, 5, 2, 1e-5);
        test_rope(c, 2, 64, &part, 9, 4, 1, 1e-5);
        test_rope(c, 2, 40, &odd, 5, 2, 0, 1e-5);
        test_rope(c, 2, 128, &fac, 3000, 3, 0, 1e-3);
        test_rope(c, 3, 96, &lin, 400, 4, 1, 1e-4);
    }
}

/* ---- kv_store ---- */
static void test_kv_store(ctx *c, int64_t kvd, int pos0, int n, int row0) {
    char what[96];
    snprintf(what, sizeof what, "kv_store kv=%lld pos0=%d n=%d row0=%d", (long long)kvd, pos0, n, row0);
    const int64_t ctx_len = pos0 + n + 3, rows = row0 + n;
    float *k = rand_vec((size_t)(kvd * rows), 1.0f), *v = rand_vec((size_t)(kvd * rows), 1.0f);
    wg_tensor *K = act(c, kvd, rows, k), *V = act(c, kvd, rows, v);
    wg_tensor *Kc = kv_cache(c, kvd, ctx_len, 0), *Vc = kv_cache(c, kvd, ctx_len, 1);
    if (K && V && Kc && Vc) {
        c->b->ops->kv_store(c->b, Kc, Vc, K, V, pos0, n, row0);
        float *kc = read_back(c, Kc, ctx_len), *vc = read_back(c, Vc, ctx_len);
        double *rk = calloc((size_t)(kvd * ctx_len), sizeof(double));
        double *rv = calloc((size_t)(kvd * ctx_len), sizeof(double));
        for (int64_t i = 0; i < kvd * n; i++) {
            rk[(size_t)(pos0 * kvd + i)] = k[(size_t)(row0 * kvd + i)];
            rv[(size_t)(pos0 * kvd + i)] = v[(size_t)(row0 * kvd + i)];
        }
        /* f16 caches round the values */
        const double e = fmax(rel_err(kc, rk, (size_t)(kvd * ctx_len)), rel_err(vc, rv, (size_t)(kvd * ctx_len)));
        note(c, OP_KV_STORE, e, 1e-3, what);
        free(kc);
        free(vc);
        free(rk);
        free(rv);
    }
    drop(c, K);
    drop(c, V);
    drop(c, Kc);
    drop(c, Vc);
    free(k);
    free(v);
}

/* ---- attention ---- */
/* Query rows row0 + i (position pos0 + i) over the caches as stored (kc, vc read back). */
static void attention_ref(const float *q, int64_t q_stride, const float *kc, const float *vc, int64_t kv_stride,
                          int pos0, int n, int n_head, int n_head_kv, int hd, int window, double *out) {
    double *s = malloc(sizeof(double) * (size_t)(pos0 + n));
    for (int i = 0; s && i < n; i++)
        for (int h = 0; h < n_head; h++) {
            const int p = pos0 + i, kvh = h / (n_head / n_head_kv);
            const int t0 = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
            const float *qi = q + (size_t)i * (size_t)q_stride + (size_t)h * (size_t)hd;
            double mx = -INFINITY, sum = 0;
            for (int t = t0; t <= p; t++) {
                const float *kt = kc + (size_t)t * (size_t)kv_stride + (size_t)kvh * (size_t)hd;
                double d = 0;
                for (int e = 0; e < hd; e++) d += (double)qi[e] * kt[e];
                s[t] = d / sqrt((double)hd);
                if (s[t] > mx) mx = s[t];
            }
            for (int t = t0; t <= p; t++) sum += s[t] = exp(s[t] - mx);
            double *o = out + (size_t)i * (size_t)q_stride + (size_t)h * (size_t)hd;
            for (int e = 0; e < hd; e++) o[e] = 0;
            for (int t = t0; t <= p; t++) {
                const float *vt = vc + (size_t)t * (size_t)kv_stride + (size_t)kvh * (size_t)hd;
                for (int e = 0; e < hd; e++) o[e] += s[t] / sum * vt[e];
            }
        }
    free(s);
}

static void test_attention(ctx *c, int n_head, int n_head_kv, int hd, int pos0, int n, int window, int row0) {
    char what[128];
    snprintf(what, sizeof what, "attention heads=%d/%d hd=%d pos0=%d n=%d window=%d row0=%d", n_head, n_head_kv, hd,
             pos0, n, window, row0);
    const int64_t qd = (int64_t)n_head * hd, kvd = (int64_t)n_head_kv * hd, ctx_len = pos0 + n + 5;
    const int rows = row0 + n;
    float *q = rand_vec((size_t)(qd * rows), 1.0f), *k = rand_vec((size_t)(kvd * ctx_len), 1.0f),
          *v = rand_vec((size_t)(kvd * ctx_len), 1.0f);
    for (int64_t i = 0; i < qd * rows; i++) q[i] *= 3.0f; /* sharper softmax */
    wg_tensor *Q = act(c, qd, rows, q), *O = act(c, qd, rows, NULL);
    wg_tensor *Kc = kv_cache(c, kvd, ctx_len, 0), *Vc = kv_cache(c, kvd, ctx_len, 1);
    double *ref = calloc((size_t)(qd * n), sizeof(double));
    if (Q && O && Kc && Vc && ref) {
        c->b->ops->write_rows(c->b, Kc, 0, ctx_len, k);
        c->b->ops->write_rows(c->b, Vc, 0, ctx_len, v);
        c->b->ops->attention(c->b, Q, Kc, Vc, pos0, n, n_head, n_head_kv, hd, window, O, row0);
        float *kc = read_back(c, Kc, ctx_len), *vc = read_back(c, Vc, ctx_len), *got = read_back(c, O, rows);
        attention_ref(q + (size_t)row0 * (size_t)qd, qd, kc, vc, kvd, pos0, n, n_head, n_head_kv, hd, window, ref);
        note(c, OP_ATTENTION, rel_err(got + (size_t)row0 * (size_t)qd, ref, (size_t)(qd * n)), 1e-4, what);
        free(kc);
        free(vc);
        free(got);
    }
    drop(c, Q);
    drop(c, O);
    drop(c, Kc);
    drop(c, Vc);
    free(q);
    free(k);
    free(v);
    free(ref);
}

static void test_attentions(ctx *c) {
    static const struct {
        int n_head, n_head_kv, hd, pos0, n, window, row0;
    } cases[] = {
        {4, 4, 64, 0, 1, 0, 0},      {8, 2, 64, 5, 6, 0, 0},      {8, 2, 64, 5, 6, 4, 0},
        {4, 1, 128, 40, 20, 16, 3},  {8, 8, 32, 700, 1, 0, 0},    {8, 8, 32, 700, 1, 300, 0},
        {8, 2, 64, 600, 1, 1, 0},    {4, 2, 64, 300, 3, 1000, 0}, {2, 1, 64, 280, 40, 100, 0},
        {8, 4, 96, 30, 9, 8, 1},     {2, 1, 64, 600, 5, 400, 2}, /* window over two splits */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        test_attention(c, cases[i].n_head, cases[i].n_head_kv, cases[i].hd, cases[i].pos0, cases[i].n,
                       cases[i].window, cases[i].row0);
}

/* ---- swiglu, add ---- */
static void test_swiglu(ctx *c, int64_t d, int n) {
    float *g = rand_vec((size_t)(d * n), 4.0f), *u = rand_vec((size_t)(d * n), 1.0f);
    double *ref = malloc(sizeof(double) * (size_t)(d * n));
    for (int64_t i = 0; ref && i < d * n; i++) ref[i] = g[i] / (1.0 + exp(-(double)g[i])) * u[i];
    wg_tensor *G = act(c, d, n, g), *U = act(c, d, n, u), *O = act(c, d, n, NULL);
    if (G && U && O && ref) {
        c->b->ops->swiglu(c->b, G, U, n, O);
        float *got = read_back(c, O, n);
        note(c, OP_SWIGLU, rel_err(got, ref, (size_t)(d * n)), 1e-5, "swiglu");
        free(got);
    }
    drop(c, G);
    drop(c, U);
    drop(c, O);
    free(g);
    free(u);
    free(ref);
}

/* y: n rows (bias 0), or one row added to each: an activation (1) or an f32 weight (2). */
static void test_add(ctx *c, int64_t d, int n, int bias) {
    char what[64];
    snprintf(what, sizeof what, "add d=%lld n=%d%s", (long long)d, n,
             bias == 0 ? "" : bias == 1 ? " broadcast row" : " broadcast f32 weight");
    const int yrows = bias ? 1 : n;
    float *x = rand_vec((size_t)(d * n), 1.0f), *y = rand_vec((size_t)(d * yrows), 1.0f);
    double *ref = malloc(sizeof(double) * (size_t)(d * n));
    for (int i = 0; ref && i < n; i++)
        for (int64_t j = 0; j < d; j++)
            ref[(size_t)i * (size_t)d + (size_t)j] =
                (double)x[(size_t)i * (size_t)d + (size_t)j] + y[(size_t)(bias ? 0 : i) * (size_t)d + (size_t)j];
    wg_tensor *X = act(c, d, n, x), *Y = bias == 2 ? weight(c, WG_TYPE_F32, d, 1, y) : act(c, d, yrows, y);
    if (X && Y && ref) {
        c->b->ops->add(c->b, X, Y, n);
        float *got = read_back(c, X, n);
        note(c, OP_ADD, rel_err(got, ref, (size_t)(d * n)), 1e-6, what);
        free(got);
    }
    drop(c, X);
    drop(c, Y);
    free(x);
    free(y);
    free(ref);
}

/* Operands the ops do not take: reported by synchronize (false, with a message), no crash,
 * and the backend works on afterwards. */
static void test_rejects(ctx *c) {
    const wg_backend_ops *o = c->b->ops;
    float *x = rand_vec(96 * 2, 1.0f), *w = rand_vec(40, 1.0f);
    wg_tensor *X = act(c, 96, 2, x), *O = act(c, 96, 2, NULL), *W = weight(c, WG_TYPE_F32, 40, 1, w);
    wg_tensor *Y = act(c, 40, 1, w);
    if (X && O && W && Y) {
        o->rms_norm(c->b, X, W, 1e-5f, 2, O); /* 40 does not divide 96 */
        CHECK_MSG(!o->synchronize(c->b) && o->error(c->b) && *o->error(c->b),
                  "%s: rms_norm with a weight of 40 for rows of 96 not reported", c->name);
        o->add(c->b, X, Y, 2); /* a bias row of another length */
        CHECK_MSG(!o->synchronize(c->b) && o->error(c->b) && *o->error(c->b),
                  "%s: add of a row of 40 to rows of 96 not reported", c->name);
    }
    drop(c, X);
    drop(c, O);
    drop(c, W);
    drop(c, Y);
    free(x);
    free(w);
    test_add(c, 96, 2, 2); /* works on afterwards */
}

static void run_all(ctx *c) {
    static const uint32_t types[] = {WG_TYPE_F32, WG_TYPE_F16, WG_TYPE_Q8_0, WG_TYPE_Q4_0};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        test_get_rows(c, types[t], 96, 9);
        test_matmul(c, types[t], 256, 48, 1);
        test_matmul(c, types[t], 128, 80, 5);
        test_matmul(c, types[t], 64, 128, 40);
    }
    test_matmul(c, WG_TYPE_F32, 40, 24, 3); /* a row of no whole blocks */
    test_copy_rows(c);
    test_rms_norm(c, 256, 256, 3, false, true);
    test_rms_norm(c, 4096, 4096, 2, false, true);
    test_rms_norm(c, 256, 256, 3, true, true);
    test_rms_norm(c, 4 * 64, 64, 5, false, true); /* per-head q/k norm */
    test_rms_norm(c, 8 * 128, 128, 3, true, true);
    test_rms_norm(c, 2 * 96, 96, 2, true, false);
    test_rms_norm(c, 96, 96, 2, false, false);
    test_ropes(c);
    test_kv_store(c, 128, 0, 1, 0);
    test_kv_store(c, 256, 7, 5, 2);
    test_attentions(c);
    test_swiglu(c, 300, 3);
    test_add(c, 200, 4, 0);
    test_add(c, 200, 4, 1);
    test_add(c, 200, 4, 2);
    test_add(c, 96, 1, 2);
    test_rejects(c);
}

int main(void) {
    const int nb = wg_backend_registry_count();
    CHECK(nb >= 1 && strcmp(wg_backend_registry_name(0), "cpu") == 0);
    for (int i = 0; i < nb; i++) {
        char desc[128], err[1024] = "";
        ctx c = {.name = wg_backend_registry_name(i)};
        c.b = wg_backend_create_kind(wg_backend_registry_kind(i), 2, -1, desc, sizeof desc, err, sizeof err);
        CHECK_MSG(c.b != NULL, "backend %s is registered but cannot be created: %s", c.name, err);
        if (!c.b) continue;
        run_all(&c);
        printf("%s: worst relative error per op (cases)\n", c.name);
        for (int op = 0; op < OP_COUNT; op++) {
            printf("  %-10s %9.3g  (%d)\n", k_op_names[op], c.worst[op], c.cases[op]);
            CHECK_MSG(c.cases[op] > 0, "%s: no case of %s ran", c.name, k_op_names[op]);
        }
        c.b->ops->destroy(c.b);
    }
    CHECK_DONE();
}
