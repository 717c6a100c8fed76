/* The WebGPU backend's ops for batched decode steps (several sequences decoding one token
 * each).
 *
 * matmul_qkv (the q, k and v products of a few tokens in one dispatch) against three
 * matmuls on the same x: the same int8 terms in the same order, so equal to f32 rounding
 * (bound 1e-6); 2 to 13 tokens (two 8-token passes); declined (false, nothing recorded)
 * for one token, for 33 or more, for row counts that are not multiples of 16, and for
 * weights other than Q4_0.
 *
 * decode_attention (all
 * KV stores and all attention in one dispatch each, the sequences' caches side by side in
 * arenas) against the same backend's kv_store and attention called once per sequence on
 * caches of their own. Same kernels and arithmetic per row, so the outputs and caches must
 * agree to f32 rounding (bound 1e-6, max|diff| / max|value|), with f16 and f32 caches.
 * Also checked:
 *   - positions from 0 to the end of the cache, so one row takes one split of positions
 *     and another several (empty splits merge as nothing);
 *   - caches written before their arena grew (the growth copies them);
 *   - the int8 copy of the output that the Q4_0 matmul after attention (wo) reads: the wo
 *     products equal those on the output quantized by quantize_x_q8;
 *   - rope done by the op (all of each head, or part of it with frequency factors, or
 *     none; adjacent or NeoX pairs) against rope per sequence before kv_store and attention;
 *   - sliding-window attention (windows of 1, 12 and 300 positions);
 *   - a step whose sequences have several rows each (prompt chunks), over more rows than
 *     one dispatch takes, so a sequence's rows span two dispatches;
 *   - the op declines (returns false, records nothing) for caches in different arenas, a K
 *     cache paired with two V caches, a position past the cache or twice in a sequence,
 *     and too many rows. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/webgpu/wgpu_autotune.h"
#include "backend/webgpu/wgpu_backend.h"
#include "backend/webgpu/wgpu_internal.h"
#include "check.h"
#include "quant/quant.h"
#include "quant/types.h"

#define N_SEQ 5
#define N_CTX 800
#define BOUND 1e-6

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static float frand(void) { /* uniform in [-1, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / (double)(1ull << 23))) - 1.0f;
}

static float *rand_vec(size_t n) {
    float *v = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) v[i] = frand();
    return v;
}

static double rel_err(const float *a, const float *b, size_t n) {
    double md = 0.0, mb = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= md)) md = d; /* NaN propagates */
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
    }
    return mb > 0 ? md / mb : md;
}

static wg_tensor *buf(wg_backend *b, int64_t ne0, int64_t ne1, const float *init) {
    char err[512] = "";
    wg_tensor *t = b->ops->buffer_create(b, ne0, ne1, err, sizeof err);
    CHECK_MSG(t != NULL, "%s", err);
    if (t && init) b->ops->write_rows(b, t, 0, ne1, init);
    return t;
}

static wg_tensor *cache(wg_backend *b, int64_t ne0, int group, const float *init) {
    char err[512] = "";
    wg_tensor *t = b->ops->kv_cache_create(b, ne0, N_CTX, group, err, sizeof err);
    CHECK_MSG(t != NULL, "%s", err);
    if (t && init) b->ops->write_rows(b, t, 0, N_CTX, init);
    return t;
}

static void read_all(wg_backend *b, const wg_tensor *t, int64_t rows, float *dst) {
    b->ops->read_rows(b, t, 0, rows, dst);
    CHECK_MSG(b->ops->synchronize(b), "%s", b->ops->error(b));
}

#define ROPE_BASE 10000.0f
#define ROPE_SCALE 0.5f

/* The rotation of the cases: dims 0 is none (NULL). */
static const wg_rope *rope_of(wg_rope *r, int dims, bool neox, const float *factors) {
    *r = (wg_rope){.dims = dims, .neox = neox, .base = ROPE_BASE, .scale = ROPE_SCALE, .factors = factors};
    return dims > 0 ? r : NULL;
}

/* Copies of q and k rotated as the op rotates them: rope per sequence, rows r0 .. r0 + len[s]
 * of sequence s at positions pos0[s] onwards. */
static void rotated_copies(wg_backend *g, const wg_tensor *q, const wg_tensor *k, int n, int n_head, int n_head_kv,
                           int hd, int rope_dims, bool neox, const float *factors, const int *len, const int *pos0,
                           int n_seqs, wg_tensor **qr, wg_tensor **kr) {
    *qr = buf(g, q->ne0, n, NULL);
    *kr = buf(g, k->ne0, n, NULL);
    if (!*qr || !*kr) return;
    g->ops->copy_rows(g, q, 0, n, *qr, 0);
    g->ops->copy_rows(g, k, 0, n, *kr, 0);
    for (int s = 0, r0 = 0; rope_dims > 0 && s < n_seqs; r0 += len[s], s++) {
        wg_rope r;
        g->ops->rope(g, *qr, len[s], n_head, hd, rope_of(&r, rope_dims, neox, factors), pos0[s], r0);
        g->ops->rope(g, *kr, len[s], n_head_kv, hd, rope_of(&r, rope_dims, neox, factors), pos0[s], r0);
    }
}

/* neox: NeoX pairs; window > 0: sliding-window attention. */
static void check_case(wg_backend *g, int n_head, int n_head_kv, int hd, int rope_dims, bool neox, int window,
                       const char *what) {
    wg_rope rope;
    const int64_t qd = (int64_t)n_head * hd, kvd = (int64_t)n_head_kv * hd;
    const int32_t pos[N_SEQ] = {0, 7, 300, 650, N_CTX - 1};
    float *q = rand_vec((size_t)(qd * N_SEQ)), *k = rand_vec((size_t)(kvd * N_SEQ)), *v = rand_vec((size_t)(kvd * N_SEQ));
    wg_tensor *tq = buf(g, qd, N_SEQ, q), *tk = buf(g, kvd, N_SEQ, k), *tv = buf(g, kvd, N_SEQ, v);
    wg_tensor *out = buf(g, qd, N_SEQ, NULL), *out_ref = buf(g, qd, N_SEQ, NULL);
    /* Batched caches in groups 0 (K) and 1 (V), each written as soon as it exists, so the
     * later ones grow the arena under the earlier ones; reference caches in groups of their own. */
    wg_tensor *kc[N_SEQ], *vc[N_SEQ], *kr[N_SEQ], *vr[N_SEQ];
    for (int s = 0; s < N_SEQ; s++) {
        float *ik = rand_vec((size_t)(kvd * N_CTX)), *iv = rand_vec((size_t)(kvd * N_CTX));
        kc[s] = cache(g, kvd, 0, ik);
        vc[s] = cache(g, kvd, 1, iv);
        kr[s] = cache(g, kvd, 2 + 2 * s, ik);
        vr[s] = cache(g, kvd, 3 + 2 * s, iv);
        free(ik);
        free(iv);
    }
    int ones[N_SEQ], starts[N_SEQ];
    for (int s = 0; s < N_SEQ; s++) ones[s] = 1, starts[s] = pos[s];
    wg_tensor *tqr = NULL, *tkr = NULL;
    rotated_copies(g, tq, tk, N_SEQ, n_head, n_head_kv, hd, rope_dims, neox, NULL, ones, starts, N_SEQ, &tqr, &tkr);
    for (int s = 0; s < N_SEQ; s++) {
        g->ops->kv_store(g, kr[s], vr[s], tkr, tv, pos[s], 1, s);
        g->ops->attention(g, tqr, kr[s], vr[s], pos[s], 1, n_head, n_head_kv, hd, window, out_ref, s);
    }
    CHECK_MSG(wgb_op_decode_attention(g, tq, tk, tv, kc, vc, pos, N_SEQ, n_head, n_head_kv, hd,
                                       rope_of(&rope, rope_dims, neox, NULL), window, out),
              "%s: decode_attention declined", what);

    /* wo right after attention: its int8 x comes from the attention kernel */
    const int64_t m = 96;
    const size_t rb = wg_type_row_bytes(WG_TYPE_Q4_0, qd);
    uint8_t *w = malloc(rb * (size_t)m);
    for (int64_t r = 0; r < m; r++) {
        float *row = rand_vec((size_t)qd);
        CHECK(wg_quantize_row(WG_TYPE_Q4_0, row, w + (size_t)r * rb, qd));
        free(row);
    }
    char err[512] = "";
    wg_tensor *wo = g->ops->weight_create(g, WG_TYPE_Q4_0, qd, m, w, err, sizeof err);
    CHECK_MSG(wo != NULL, "%s", err);
    wg_tensor *y = buf(g, m, N_SEQ, NULL), *y_ref = buf(g, m, N_SEQ, NULL);
    g->ops->matmul(g, wo, out, N_SEQ, y);
    g->ops->matmul(g, wo, out_ref, N_SEQ, y_ref);

    float *a = malloc(sizeof(float) * (size_t)(qd * N_SEQ)), *b = malloc(sizeof(float) * (size_t)(qd * N_SEQ));
    read_all(g, out, N_SEQ, a);
    read_all(g, out_ref, N_SEQ, b);
    double e_out = rel_err(a, b, (size_t)(qd * N_SEQ));
    CHECK_MSG(e_out <= BOUND, "%s: attention output rel. error %.3g", what, e_out);
    read_all(g, y, N_SEQ, a);
    read_all(g, y_ref, N_SEQ, b);
    double e_wo = rel_err(a, b, (size_t)(m * N_SEQ));
    CHECK_MSG(e_wo <= BOUND, "%s: wo after attention rel. error %.3g", what, e_wo);
    free(a);
    free(b);

    float *ca = malloc(sizeof(float) * (size_t)(kvd * N_CTX)), *cb = malloc(sizeof(float) * (size_t)(kvd * N_CTX));
    int bad = 0;
    for (int s = 0; s < N_SEQ; s++) {
        read_all(g, kc[s], N_CTX, ca);
        read_all(g, kr[s], N_CTX, cb);
        bad += memcmp(ca, cb, sizeof(float) * (size_t)(kvd * N_CTX)) != 0;
        read_all(g, vc[s], N_CTX, ca);
        read_all(g, vr[s], N_CTX, cb);
        bad += memcmp(ca, cb, sizeof(float) * (size_t)(kvd * N_CTX)) != 0;
    }
    CHECK_MSG(bad == 0, "%s: %d caches differ from the per-sequence kv_store", what, bad);
    free(ca);
    free(cb);
    printf("%s: %d sequences, positions 0..%d, rope over %d dims: output rel. error %.3g, wo %.3g, caches equal\n",
           what, N_SEQ, N_CTX - 1, rope_dims, e_out, e_wo);

    /* declines */
    wg_tensor *mixed[N_SEQ];
    memcpy(mixed, kc, sizeof mixed);
    mixed[2] = kr[2]; /* another arena */
    CHECK(!wgb_op_decode_attention(g, tq, tk, tv, mixed, vc, pos, N_SEQ, n_head, n_head_kv, hd,
                                    rope_of(&rope, rope_dims, neox, NULL), window, out));
    memcpy(mixed, kc, sizeof mixed);
    mixed[1] = kc[0]; /* K of one sequence with V of another */
    CHECK(!wgb_op_decode_attention(g, tq, tk, tv, mixed, vc, pos, N_SEQ, n_head, n_head_kv, hd,
                                    rope_of(&rope, rope_dims, neox, NULL), window, out));
    const int32_t past[N_SEQ] = {0, 1, 2, 3, N_CTX};
    CHECK(!wgb_op_decode_attention(g, tq, tk, tv, kc, vc, past, N_SEQ, n_head, n_head_kv, hd,
                                    rope_of(&rope, rope_dims, neox, NULL), window, out));
    CHECK(!wgb_op_decode_attention(g, tq, tk, tv, kc, vc, pos, 257, n_head, n_head_kv, hd,
                                    rope_of(&rope, rope_dims, neox, NULL), window, out));
    CHECK(!wgb_op_decode_attention(g, tq, tk, tv, kc, kc, pos, N_SEQ, n_head, n_head_kv, hd,
                                    rope_of(&rope, rope_dims, neox, NULL), window, out));
    CHECK_MSG(g->ops->synchronize(g), "%s", g->ops->error(g));

    /* a freed slot is reused, and starts empty */
    g->ops->tensor_free(g, kc[1]);
    kc[1] = cache(g, kvd, 0, NULL);
    float *z = malloc(sizeof(float) * (size_t)(kvd * N_CTX));
    read_all(g, kc[1], N_CTX, z);
    int nonzero = 0;
    for (int64_t i = 0; i < kvd * N_CTX; i++) nonzero += z[i] != 0.0f;
    CHECK_MSG(nonzero == 0, "%s: a reused cache slot holds %d old values", what, nonzero);
    free(z);

    for (int s = 0; s < N_SEQ; s++) {
        g->ops->tensor_free(g, kc[s]);
        g->ops->tensor_free(g, vc[s]);
        g->ops->tensor_free(g, kr[s]);
        g->ops->tensor_free(g, vr[s]);
    }
    wg_tensor *ts[] = {tq, tk, tv, out, out_ref, wo, y, y_ref, tqr, tkr};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        if (ts[i]) g->ops->tensor_free(g, ts[i]);
    free(w);
    free(q);
    free(k);
    free(v);
}

/* A step of three sequences with several rows each (a prompt chunk, one decoding token, a
 * chunk that crosses the 64-row dispatches): 72 rows against kv_store and attention per
 * sequence. */
static void check_chunks(wg_backend *g, bool neox, int window, const char *what) {
    enum { NS = 3, ROWS = 72 };
    wg_rope rope;
    const int n_head = 8, n_head_kv = 2, hd = 64;
    const int64_t qd = (int64_t)n_head * hd, kvd = (int64_t)n_head_kv * hd;
    const int len[NS] = {40, 1, 31}, pos0[NS] = {100, 7, 0};
    float *q = rand_vec((size_t)(qd * ROWS)), *k = rand_vec((size_t)(kvd * ROWS)), *v = rand_vec((size_t)(kvd * ROWS));
    wg_tensor *tq = buf(g, qd, ROWS, q), *tk = buf(g, kvd, ROWS, k), *tv = buf(g, kvd, ROWS, v);
    wg_tensor *out = buf(g, qd, ROWS, NULL), *out_ref = buf(g, qd, ROWS, NULL);
    wg_tensor *kc[NS], *vc[NS], *kr[NS], *vr[NS], *rk[ROWS], *rv[ROWS];
    int32_t pos[ROWS];
    for (int s = 0, r = 0; s < NS; s++) {
        float *ik = rand_vec((size_t)(kvd * N_CTX)), *iv = rand_vec((size_t)(kvd * N_CTX));
        kc[s] = cache(g, kvd, 0, ik);
        vc[s] = cache(g, kvd, 1, iv);
        kr[s] = cache(g, kvd, 2 + 2 * s, ik);
        vr[s] = cache(g, kvd, 3 + 2 * s, iv);
        free(ik);
        free(iv);
        for (int i = 0; i < len[s]; i++, r++) {
            rk[r] = kc[s];
            rv[r] = vc[s];
            pos[r] = pos0[s] + i;
        }
    }
    /* rope over the first half of each head, with frequency factors (Llama 3 style) */
    const int rope_dims = hd / 2;
    float factors[16];
    for (int j = 0; j < rope_dims / 2; j++) factors[j] = 1.0f + (float)j / 4.0f;
    wg_tensor *tqr = NULL, *tkr = NULL;
    rotated_copies(g, tq, tk, ROWS, n_head, n_head_kv, hd, rope_dims, neox, factors, len, pos0, NS, &tqr, &tkr);
    for (int s = 0, r0 = 0; s < NS; r0 += len[s], s++) {
        g->ops->kv_store(g, kr[s], vr[s], tkr, tv, pos0[s], len[s], r0);
        g->ops->attention(g, tqr, kr[s], vr[s], pos0[s], len[s], n_head, n_head_kv, hd, window, out_ref, r0);
    }
    CHECK_MSG(wgb_op_decode_attention(g, tq, tk, tv, rk, rv, pos, ROWS, n_head, n_head_kv, hd,
                                       rope_of(&rope, rope_dims, neox, factors), window, out),
              "%s: decode_attention declined chunks", what);
    float *a = malloc(sizeof(float) * (size_t)(qd * ROWS)), *b = malloc(sizeof(float) * (size_t)(qd * ROWS));
    read_all(g, out, ROWS, a);
    read_all(g, out_ref, ROWS, b);
    double e = rel_err(a, b, (size_t)(qd * ROWS));
    CHECK_MSG(e <= BOUND, "%s: chunked step output rel. error %.3g", what, e);
    free(a);
    free(b);
    float *ca = malloc(sizeof(float) * (size_t)(kvd * N_CTX)), *cb = malloc(sizeof(float) * (size_t)(kvd * N_CTX));
    int bad = 0;
    for (int s = 0; s < NS; s++) {
        read_all(g, kc[s], N_CTX, ca);
        read_all(g, kr[s], N_CTX, cb);
        bad += memcmp(ca, cb, sizeof(float) * (size_t)(kvd * N_CTX)) != 0;
        read_all(g, vc[s], N_CTX, ca);
        read_all(g, vr[s], N_CTX, cb);
        bad += memcmp(ca, cb, sizeof(float) * (size_t)(kvd * N_CTX)) != 0;
    }
    CHECK_MSG(bad == 0, "%s: %d caches differ after the chunked step", what, bad);
    printf("%s: %d rows of %d sequences (40, 1, 31 rows): output rel. error %.3g, caches equal\n", what, ROWS, NS, e);
    /* one position twice in a sequence: declined */
    pos[1] = pos[0];
    CHECK(!wgb_op_decode_attention(g, tq, tk, tv, rk, rv, pos, ROWS, n_head, n_head_kv, hd,
                                    rope_of(&rope, rope_dims, neox, factors), window, out));
    CHECK_MSG(g->ops->synchronize(g), "%s", g->ops->error(g));
    free(ca);
    free(cb);
    for (int s = 0; s < NS; s++) {
        g->ops->tensor_free(g, kc[s]);
        g->ops->tensor_free(g, vc[s]);
        g->ops->tensor_free(g, kr[s]);
        g->ops->tensor_free(g, vr[s]);
    }
    wg_tensor *ts[] = {tq, tk, tv, out, out_ref, tqr, tkr};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        if (ts[i]) g->ops->tensor_free(g, ts[i]);
    free(q);
    free(k);
    free(v);
}

static wg_tensor *q4_weight(wg_backend *g, int64_t k, int64_t m, uint32_t type) {
    const size_t rb = wg_type_row_bytes(type, k);
    uint8_t *w = malloc(rb * (size_t)m);
    for (int64_t r = 0; r < m; r++) {
        float *row = rand_vec((size_t)k);
        CHECK(wg_quantize_row(type, row, w + (size_t)r * rb, k));
        free(row);
    }
    char err[512] = "";
    wg_tensor *t = g->ops->weight_create(g, type, k, m, w, err, sizeof err);
    CHECK_MSG(t != NULL, "%s", err);
    free(w);
    return t;
}

static void check_qkv(wg_backend *g, int64_t k, int64_t m_q, int64_t m_kv, int n, bool expect) {
    char what[128];
    snprintf(what, sizeof what, "matmul_qkv k=%lld m_q=%lld m_kv=%lld n=%d", (long long)k, (long long)m_q,
             (long long)m_kv, n);
    /* Q4_0 weights, except for the one case expected to decline for no other reason */
    const bool nt_rows = !wgb_q8_batch_takes(n) && (m_q % 16 || m_kv % 16); /* the nt kernel takes rows in 16s */
    const uint32_t type = expect || nt_rows || n < 2 || n > WGB_Q8_BATCH_MAX_N ? WG_TYPE_Q4_0 : WG_TYPE_Q5_0;
    wg_tensor *wq = q4_weight(g, k, m_q, type), *wk = q4_weight(g, k, m_kv, type), *wv = q4_weight(g, k, m_kv, type);
    float *xv = rand_vec((size_t)(k * n));
    wg_tensor *x = buf(g, k, n, xv);
    wg_tensor *q = buf(g, m_q, n, NULL), *kk = buf(g, m_kv, n, NULL), *v = buf(g, m_kv, n, NULL);
    wg_tensor *qr = buf(g, m_q, n, NULL), *kr = buf(g, m_kv, n, NULL), *vr = buf(g, m_kv, n, NULL);
    bool took = wgb_op_matmul_qkv(g, wq, wk, wv, x, n, q, kk, v);
    CHECK_MSG(took == expect, "%s: %s", what, took ? "taken, expected to decline" : "declined");
    if (took) {
        g->ops->matmul(g, wq, x, n, qr);
        g->ops->matmul(g, wk, x, n, kr);
        g->ops->matmul(g, wv, x, n, vr);
        const wg_tensor *got[3] = {q, kk, v}, *want[3] = {qr, kr, vr};
        double worst = 0.0;
        for (int i = 0; i < 3; i++) {
            const int64_t cnt = got[i]->ne0 * n;
            float *a = malloc(sizeof(float) * (size_t)cnt), *b = malloc(sizeof(float) * (size_t)cnt);
            read_all(g, got[i], n, a);
            read_all(g, want[i], n, b);
            double e = rel_err(a, b, (size_t)cnt);
            if (!(e <= worst)) worst = e;
            free(a);
            free(b);
        }
        CHECK_MSG(worst <= BOUND, "%s: rel. error %.3g against three matmuls", what, worst);
        printf("%s: rel. error %.3g against three matmuls\n", what, worst);
    }
    CHECK_MSG(g->ops->synchronize(g), "%s", g->ops->error(g));
    wg_tensor *all[] = {wq, wk, wv, x, q, kk, v, qr, kr, vr};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) g->ops->tensor_free(g, all[i]);
    free(xv);
}

static void run(const char *what) {
    char err[512] = "";
    wg_backend *g = wg_backend_webgpu_create(-1, err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    if (!g) return;
    /* the batch tiles for 9-64 tokens and whole-run groups for 2-8, whatever this adapter
     * measures faster */
    wgb_autotune_force(wgb_ctx_of(g), WGB_TUNE_Q4_0_DECODE, WGB_TUNE_DECODE_BATCH);
    wgb_autotune_force(wgb_ctx_of(g), WGB_TUNE_Q4_0_FEW, WGB_TUNE_FEW_NT8);
    {
        char name[128];
        snprintf(name, sizeof name, "%s, GQA 8/2 heads of 64", what);
        check_case(g, 8, 2, 64, 64, false, 0, name);
        snprintf(name, sizeof name, "%s, 4 heads of 32", what);
        check_case(g, 4, 4, 32, 0, false, 0, name);
        snprintf(name, sizeof name, "%s, GQA 8/2 heads of 64, NeoX rope, window 300", what);
        check_case(g, 8, 2, 64, 64, true, 300, name);
        snprintf(name, sizeof name, "%s, 4 heads of 32, window 1", what);
        check_case(g, 4, 4, 32, 0, false, 1, name);
        check_chunks(g, false, 0, what);
        snprintf(name, sizeof name, "%s, NeoX rope, window 12", what);
        check_chunks(g, true, 12, name);
    }
    {
        check_qkv(g, 96, 64, 32, 2, true);
        check_qkv(g, 256, 128, 128, 8, true);
        check_qkv(g, 96, 64, 16, 13, true);
        check_qkv(g, 96, 64, 32, 1, false);  /* one token: the fused single-token kernels */
        check_qkv(g, 96, 64, 32, 33, true);  /* 9-64 tokens: the batch tiles (wgpu_q8_batch.c) */
        check_qkv(g, 96, 72, 40, 64, true);  /* ... which take rows in any count */
        check_qkv(g, 96, 64, 32, 65, false); /* the prompt kernel's range */
        check_qkv(g, 96, 72, 32, 4, false);  /* rows not in 16s */
        check_qkv(g, 96, 64, 32, 4, false);  /* q8_0 weights (see check_qkv) */
        /* passes of 8 tokens through the nt kernels where the adapter chose them */
        wgb_autotune_force(wgb_ctx_of(g), WGB_TUNE_Q4_0_DECODE, WGB_TUNE_DECODE_NT);
        check_qkv(g, 96, 64, 32, 13, true);
        check_qkv(g, 96, 64, 32, 40, true);
        /* 2-8 tokens in groups of 8 lanes */
        wgb_autotune_force(wgb_ctx_of(g), WGB_TUNE_Q4_0_FEW, WGB_TUNE_FEW_NT8L8);
        check_qkv(g, 96, 64, 32, 2, true);
        check_qkv(g, 256, 128, 128, 8, true);
    }
    g->ops->destroy(g);
}

int main(void) {
    unsetenv("WGLLM_WEBGPU_Q4_INT8");
    unsetenv("WGLLM_WEBGPU_KV_F16");
    run("default cache (f16 where the device has shader-f16)");
    setenv("WGLLM_WEBGPU_KV_F16", "0", 1);
    run("f32 cache");
    unsetenv("WGLLM_WEBGPU_KV_F16");
    CHECK_DONE();
}
