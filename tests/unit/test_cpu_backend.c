/* CPU backend ops against plain double-precision references on random inputs,
 * and identical results for 1 and 3 threads (the exact f32 path, WGLLM_CPU_EXACT=1). This is the harness every other
 * backend's ops will be held to. */
#include <math.h>
#include <stdint.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_internal.h"
#include "check.h"
#include "quant/q8_act.h"
#include "quant/quant.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 4503599627370496.0 - 1.0);
}

static double rel_err(const float *a, const double *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - ref[i]);
        if (d > num) num = d;
        if (fabs(ref[i]) > den) den = fabs(ref[i]);
    }
    return den > 0 ? num / den : num;
}

static wg_tensor *buf(wg_backend *b, int64_t ne0, int64_t ne1, const float *data) {
    char err[128];
    wg_tensor *t = b->ops->buffer_create(b, ne0, ne1, err, sizeof err);
    if (t && data) b->ops->write_rows(b, t, 0, ne1, data);
    return t;
}

static void test_matmul(wg_backend *b, uint32_t type, int64_t k, int64_t m, int n) {
    float *w = malloc(sizeof(float) * (size_t)(k * m)), *x = malloc(sizeof(float) * (size_t)(k * n));
    float *deq = malloc(sizeof(float) * (size_t)(k * m)), *out = malloc(sizeof(float) * (size_t)(m * n));
    double *ref = malloc(sizeof(double) * (size_t)(m * n));
    size_t rb = wg_type_row_bytes(type, k);
    unsigned char *q = malloc(rb * (size_t)m);
    for (int64_t i = 0; i < k * m; i++) w[i] = frand() * 0.1f;
    for (int64_t i = 0; i < k * n; i++) x[i] = frand();
    for (int64_t r = 0; r < m; r++) {
        wg_quantize_row(type, w + r * k, q + (size_t)r * rb, k);
        wg_dequantize_row(type, q + (size_t)r * rb, deq + r * k, k);
    }
    for (int i = 0; i < n; i++)
        for (int64_t r = 0; r < m; r++) {
            double s = 0;
            for (int64_t j = 0; j < k; j++) s += (double)deq[r * k + j] * x[(int64_t)i * k + j];
            ref[(int64_t)i * m + r] = s;
        }
    char err[128];
    wg_tensor *W = b->ops->weight_create(b, type, k, m, q, err, sizeof err);
    wg_tensor *X = buf(b, k, n, x), *Y = buf(b, m, n, NULL);
    b->ops->matmul(b, W, X, n, Y);
    b->ops->read_rows(b, Y, 0, n, out);
    double e = rel_err(out, ref, (size_t)(m * n));
    CHECK_MSG(e < 1e-5, "matmul %s k=%lld m=%lld n=%d rel err %g", wg_type_name(type), (long long)k, (long long)m, n, e);
    b->ops->tensor_free(b, W);
    b->ops->tensor_free(b, X);
    b->ops->tensor_free(b, Y);
    free(w); free(x); free(deq); free(out); free(ref); free(q);
}

static void test_attention(wg_backend *b, int n_head, int n_head_kv, int hd, int pos0, int n) {
    int qd = n_head * hd, kvd = n_head_kv * hd, ctx = pos0 + n + 3;
    float *q = malloc(sizeof(float) * (size_t)(qd * n)), *kc = malloc(sizeof(float) * (size_t)(kvd * ctx)),
          *vc = malloc(sizeof(float) * (size_t)(kvd * ctx)), *out = malloc(sizeof(float) * (size_t)(qd * n));
    double *ref = calloc((size_t)(qd * n), sizeof(double)), *sc = malloc(sizeof(double) * (size_t)ctx);
    for (int i = 0; i < qd * n; i++) q[i] = frand() * 2;
    for (int i = 0; i < kvd * ctx; i++) kc[i] = frand() * 2, vc[i] = frand();
    for (int i = 0; i < n; i++)
        for (int h = 0; h < n_head; h++) {
            int kvh = h / (n_head / n_head_kv), pos = pos0 + i;
            double mx = -1e300, sum = 0;
            for (int t = 0; t <= pos; t++) {
                double s = 0;
                for (int d = 0; d < hd; d++) s += (double)q[i * qd + h * hd + d] * kc[t * kvd + kvh * hd + d];
                sc[t] = s / sqrt((double)hd);
                if (sc[t] > mx) mx = sc[t];
            }
            for (int t = 0; t <= pos; t++) sum += (sc[t] = exp(sc[t] - mx));
            for (int t = 0; t <= pos; t++)
                for (int d = 0; d < hd; d++) ref[i * qd + h * hd + d] += sc[t] / sum * vc[t * kvd + kvh * hd + d];
        }
    wg_tensor *Q = buf(b, qd, n, q), *K = buf(b, kvd, ctx, kc), *V = buf(b, kvd, ctx, vc), *O = buf(b, qd, n, NULL);
    b->ops->attention(b, Q, K, V, pos0, n, n_head, n_head_kv, hd, 0, O, 0);
    b->ops->read_rows(b, O, 0, n, out);
    double e = rel_err(out, ref, (size_t)(qd * n));
    CHECK_MSG(e < 1e-5, "attention heads %d/%d hd %d pos0 %d n %d: rel err %g", n_head, n_head_kv, hd, pos0, n, e);
    wg_tensor *ts[] = {Q, K, V, O};
    for (int i = 0; i < 4; i++) b->ops->tensor_free(b, ts[i]);
    free(q); free(kc); free(vc); free(out); free(ref); free(sc);
}

/* Ops large enough to be split across the pool give exactly the single thread's values
 * (which test_small_ops holds to the reference); rows of 1000 cut across the split's
 * 1024-float blocks. */
static void test_split_ops(wg_backend *b1, wg_backend *b3) {
    enum { D = 1000, N = 40, KV = 600 };
    const size_t sz = (size_t)D * N;
    float *x = malloc(sizeof(float) * sz), *g = malloc(sizeof(float) * sz), *u = malloc(sizeof(float) * sz);
    float *w = malloc(sizeof(float) * D), *o1 = calloc(2 * sz, sizeof(float)), *o3 = calloc(2 * sz, sizeof(float)); /* kv_store: 2 x KV x N */
    double *ref = malloc(sizeof(double) * sz);
    for (size_t i = 0; i < sz; i++) x[i] = frand() * 3, g[i] = frand() * 4, u[i] = frand();
    for (int i = 0; i < D; i++) w[i] = 1 + frand() * 0.5f;
    char err[128];
    wg_backend *bs[2] = {b1, b3};
    float *outs[2] = {o1, o3};
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = (i * 7) % N;
    for (int k = 0; k < 7; k++) {
        for (int v = 0; v < 2; v++) {
            wg_backend *b = bs[v];
            wg_tensor *X = buf(b, D, N, x), *G = buf(b, D, N, g), *U = buf(b, D, N, u), *O = buf(b, D, N, NULL);
            wg_tensor *W = b->ops->weight_create(b, WG_TYPE_F32, D, 1, w, err, sizeof err);
            wg_tensor *T = b->ops->weight_create(b, WG_TYPE_F32, D, N, u, err, sizeof err);
            wg_tensor *Kc = buf(b, KV, N + 9, NULL), *Vc = buf(b, KV, N + 9, NULL);
            wg_tensor *Kx = buf(b, KV, N, x), *Vx = buf(b, KV, N, g);
            wg_rope rope = {.dims = 64, .base = 10000.0f, .scale = 1.0f};
            switch (k) {
            case 0: b->ops->rms_norm(b, X, W, 1e-5f, N, O); break;
            case 1: b->ops->swiglu(b, G, U, N, O); break;
            case 2: b->ops->add(b, X, U, N); break;
            case 3: b->ops->add(b, X, W, N); break;
            case 4: b->ops->rope(b, X, N, 10, 100, &rope, 17, 0); break;
            case 5: b->ops->get_rows(b, T, ids, N, O); break;
            case 6:
                b->ops->kv_store(b, Kc, Vc, Kx, Vx, 9, N, 0);
                b->ops->read_rows(b, Kc, 9, N, outs[v]);
                b->ops->read_rows(b, Vc, 9, N, outs[v] + (size_t)KV * N);
                break;
            }
            if (k == 2 || k == 3 || k == 4) b->ops->read_rows(b, X, 0, N, outs[v]);
            else if (k != 6) b->ops->read_rows(b, O, 0, N, outs[v]);
            CHECK(b->ops->synchronize(b));
            wg_tensor *ts[] = {X, G, U, O, W, T, Kc, Vc, Kx, Vx};
            for (int i = 0; i < 10; i++) b->ops->tensor_free(b, ts[i]);
        }
        CHECK_MSG(memcmp(o1, o3, sizeof(float) * 2 * sz) == 0, "split op %d differs from one thread's", k);
        /* spot checks against the plain formulas */
        if (k == 3) {
            for (size_t i = 0; i < sz; i++) ref[i] = (double)x[i] + w[i % D];
            CHECK(rel_err(o3, ref, sz) < 1e-6);
        } else if (k == 5) {
            CHECK(memcmp(o3 + (size_t)D * 3, u + (size_t)D * ids[3], sizeof(float) * D) == 0);
        } else if (k == 6) {
            CHECK(memcmp(o3, x, sizeof(float) * KV * N) == 0 && memcmp(o3 + (size_t)KV * N, g, sizeof(float) * KV * N) == 0);
        }
    }
    free(x); free(g); free(u); free(w); free(o1); free(o3); free(ref);
}

/* rope at per-row positions (split across threads) = the same on one thread = rope at
 * pos0 row by row */
static void test_rope_rows_split(wg_backend *b1, wg_backend *b3) {
    enum { D = 1000, N = 40 };
    const size_t sz = (size_t)D * N;
    float *x = malloc(sizeof(float) * sz), *o1 = malloc(sizeof(float) * sz), *o3 = malloc(sizeof(float) * sz);
    for (size_t i = 0; i < sz; i++) x[i] = frand() * 3;
    const int32_t pos[N] = {5, 900, 3, 77, 12, 0, 1, 2, 3000, 40};
    wg_backend *bs[2] = {b1, b3};
    float *outs[2] = {o1, o3};
    const wg_rope rope = {.dims = 100, .base = 500000.0f, .scale = 1.0f, .neox = true};
    for (int v = 0; v < 2; v++) {
        wg_backend *b = bs[v];
        wg_tensor *X = buf(b, D, N, x);
        CHECK(cpu_op_rope_rows(b, X, N, 10, 100, &rope, pos));
        b->ops->read_rows(b, X, 0, N, outs[v]);
        b->ops->tensor_free(b, X);
    }
    CHECK(memcmp(o1, o3, sizeof(float) * sz) == 0);
    wg_tensor *X = buf(b1, D, 1, x + (size_t)D * 8);
    b1->ops->rope(b1, X, 1, 10, 100, &rope, pos[8], 0);
    b1->ops->read_rows(b1, X, 0, 1, o1);
    b1->ops->tensor_free(b1, X);
    CHECK(memcmp(o1, o3 + (size_t)D * 8, sizeof(float) * D) == 0);
    free(x);
    free(o1);
    free(o3);
}

static void test_small_ops(wg_backend *b) {
    enum { D = 96, N = 5 };
    float x[D * N], w[D], g[D * N], u[D * N], out[D * N];
    double ref[D * N];
    for (int i = 0; i < D * N; i++) x[i] = frand() * 3, g[i] = frand() * 4, u[i] = frand();
    for (int i = 0; i < D; i++) w[i] = 1 + frand() * 0.5f;
    char err[128];
    wg_tensor *X = buf(b, D, N, x), *W = b->ops->weight_create(b, WG_TYPE_F32, D, 1, w, err, sizeof err),
              *O = buf(b, D, N, NULL), *G = buf(b, D, N, g), *U = buf(b, D, N, u);
    /* rms_norm */
    b->ops->rms_norm(b, X, W, 1e-5f, N, O);
    b->ops->read_rows(b, O, 0, N, out);
    for (int i = 0; i < N; i++) {
        double ss = 0;
        for (int j = 0; j < D; j++) ss += (double)x[i * D + j] * x[i * D + j];
        double sc = 1 / sqrt(ss / D + 1e-5);
        for (int j = 0; j < D; j++) ref[i * D + j] = x[i * D + j] * sc * w[j];
    }
    CHECK(rel_err(out, ref, D * N) < 1e-6);
    /* swiglu */
    b->ops->swiglu(b, G, U, N, O);
    b->ops->read_rows(b, O, 0, N, out);
    for (int i = 0; i < D * N; i++) ref[i] = g[i] / (1 + exp(-(double)g[i])) * u[i];
    CHECK(rel_err(out, ref, D * N) < 1e-6);
    /* add */
    b->ops->add(b, G, U, N);
    b->ops->read_rows(b, G, 0, N, out);
    for (int i = 0; i < D * N; i++) ref[i] = (double)g[i] + u[i];
    CHECK(rel_err(out, ref, D * N) < 1e-6);
    /* rope: 4 heads of 24, rotate the first 16 dims, pos0 = 7 */
    b->ops->write_rows(b, X, 0, N, x);
    b->ops->rope(b, X, N, 4, 24, &(wg_rope){.dims = 16, .base = 10000.0f, .scale = 1.0f}, 7, 0);
    b->ops->read_rows(b, X, 0, N, out);
    for (int i = 0; i < N; i++)
        for (int h = 0; h < 4; h++)
            for (int j = 0; j < 24; j += 2) {
                int o = i * D + h * 24 + j;
                if (j >= 16) {
                    ref[o] = x[o], ref[o + 1] = x[o + 1];
                    continue;
                }
                double th = (7 + i) * pow(10000.0, -(double)j / 16);
                ref[o] = x[o] * cos(th) - x[o + 1] * sin(th);
                ref[o + 1] = x[o] * sin(th) + x[o + 1] * cos(th);
            }
    CHECK(rel_err(out, ref, D * N) < 1e-5);
    /* rope with per-pair frequency divisors (Llama 3 scaling): same layout, angle / factor */
    const float factors[8] = {1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f, 8.0f, 8.0f};
    b->ops->write_rows(b, X, 0, N, x);
    b->ops->rope(b, X, N, 4, 24, &(wg_rope){.dims = 16, .base = 10000.0f, .scale = 1.0f, .factors = factors}, 7,
                 0);
    b->ops->read_rows(b, X, 0, N, out);
    for (int i = 0; i < N; i++)
        for (int h = 0; h < 4; h++)
            for (int j = 0; j < 24; j += 2) {
                int o = i * D + h * 24 + j;
                if (j >= 16) {
                    ref[o] = x[o], ref[o + 1] = x[o + 1];
                    continue;
                }
                double th = (7 + i) * pow(10000.0, -(double)j / 16) / factors[j / 2];
                ref[o] = x[o] * cos(th) - x[o + 1] * sin(th);
                ref[o + 1] = x[o] * sin(th) + x[o + 1] * cos(th);
            }
    CHECK(rel_err(out, ref, D * N) < 1e-5);
    /* get_rows from a q8_0 table, copy_rows */
    unsigned char table[3 * 34 * 3];
    float rows[3 * D], deq[D];
    for (int i = 0; i < 3 * D; i++) rows[i] = frand();
    for (int r = 0; r < 3; r++) wg_quantize_row(WG_TYPE_Q8_0, rows + r * D, table + r * 102, D);
    wg_tensor *T = b->ops->weight_create(b, WG_TYPE_Q8_0, D, 3, table, err, sizeof err);
    int32_t ids[2] = {2, 0};
    b->ops->get_rows(b, T, ids, 2, O);
    b->ops->copy_rows(b, O, 1, 1, X, 4);
    b->ops->read_rows(b, X, 4, 1, out);
    wg_dequantize_row(WG_TYPE_Q8_0, table, deq, D);
    CHECK(memcmp(out, deq, sizeof deq) == 0);
    wg_tensor *ts[] = {X, W, O, G, U, T};
    for (int i = 0; i < 6; i++) b->ops->tensor_free(b, ts[i]);
}

int main(void) {
    /* the f32 path, held to float64 at 1e-5; the default int8 path of quantized
     * matrix-vector products is test_cpu_q8_dot's */
    setenv("WGLLM_CPU_EXACT", "1", 1);
    char err[128];
    wg_backend *b1 = wg_backend_cpu_create(1, err, sizeof err), *b3 = wg_backend_cpu_create(3, err, sizeof err);
    CHECK(b1 && b3);
    if (!b1 || !b3) CHECK_DONE();
    const uint32_t types[] = {WG_TYPE_F32, WG_TYPE_F16, WG_TYPE_BF16, WG_TYPE_Q4_0, WG_TYPE_Q4_1,
                              WG_TYPE_Q5_0, WG_TYPE_Q5_1, WG_TYPE_Q8_0};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        test_matmul(b1, types[t], 64, 17, 1);
        test_matmul(b3, types[t], 256, 333, 1);
        test_matmul(b3, types[t], 96, 130, 7);
    }
    test_matmul(b3, WG_TYPE_F32, 172, 64, 3); /* a row length that is no multiple of 32 */
    test_attention(b1, 4, 4, 8, 0, 1);
    test_attention(b3, 8, 4, 8, 5, 6);
    test_attention(b3, 8, 2, 64, 100, 3);
    test_attention(b3, 6, 1, 32, 0, 40);
    /* decoding deep in the cache: split into chunks of positions, merged afterwards */
    test_attention(b3, 32, 4, 64, 2047, 1);
    test_attention(b3, 8, 8, 16, 300, 2);
    test_attention(b1, 4, 2, 64, 700, 1);
    test_small_ops(b1);
    test_small_ops(b3);
    test_split_ops(b1, b3);
    test_rope_rows_split(b1, b3);
    b1->ops->destroy(b1);
    b3->ops->destroy(b3);
    /* the default (int8) mode's attention takes a polynomial exp, held to the same bound, on
     * each instruction-set level's copy this CPU can run (a level above it is capped) */
    unsetenv("WGLLM_CPU_EXACT");
    /* x86-64: scalar, avx2, avx512 (vnni adds nothing to f32 code); aarch64: its levels */
    for (int l = 0; l < 3 && l < WG_CPU_ISA_COUNT_; l++) {
        setenv("WGLLM_CPU_ISA", wg_cpu_isa_name(l), 1);
        wg_backend *bq = wg_backend_cpu_create(2, err, sizeof err);
        CHECK(bq != NULL);
        if (!bq) continue;
        test_attention(bq, 32, 4, 64, 2047, 1);
        test_attention(bq, 8, 2, 64, 100, 3);
        test_attention(bq, 6, 1, 32, 0, 40);
        test_attention(bq, 4, 2, 8, 50, 2); /* a head of no multiple of 16: the plain loops */
        bq->ops->destroy(bq);
    }
    unsetenv("WGLLM_CPU_ISA");
    CHECK_DONE();
}
