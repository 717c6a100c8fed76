/* The one-token gate/up/SwiGLU kernel's int8 copy of its output (kernels/matvec_q8_swiglu.wgsl,
 * scratch slot HIDDEN of the WebGPU backend): the down product that follows reads it instead
 * of quantizing the hidden state in a dispatch of its own. Checked, for Q4_0, Q8_0 and Q4_K
 * weights and m of one and of many 32-row workgroups:
 *   1. the copy has the bits kernels/quantize_x_q8.wgsl makes of the same y on the same
 *      device (the tag cleared, the down product quantizes into slot X: compared byte for
 *      byte), and the down product gives the same bits by both routes;
 *   2. it matches the C rounding of y (int8_ref.h) except near a .5 tie, where a GPU's
 *      division may round the other way;
 *   3. the down product on the fused copy dispatches no quantize; a host write to y, or a
 *      product of y through another SwiGLU (whose x is the copy in slot HIDDEN and which
 *      writes slot HIDDEN itself), makes or uses a fresh copy in slot X instead;
 *   4. with m not a multiple of 32 the kernel writes no copy (no tag), and its y rows equal
 *      those of the same rows in a larger m.
 * Runs on any adapter (CI: lavapipe); none is a failure. */
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

#define TEST_RAND_SEED 0x9e3779b97f4a7c15ull
#include "test_rand.h"

/* A random weight of m rows of k in `type`; its bytes in *bytes_out where asked (caller frees). */
static wg_tensor *weight(wg_backend *g, uint32_t type, int64_t k, int64_t m, uint8_t **bytes_out) {
    const size_t rb = wg_type_row_bytes(type, k);
    uint8_t *bytes = malloc(rb * (size_t)m);
    float *row = rand_vec((size_t)k, 1.0f);
    if (!bytes || !row) {
        free(bytes);
        free(row);
        CHECK_MSG(0, "out of memory");
        return NULL;
    }
    for (int64_t r = 0; r < m; r++) {
        for (int64_t i = 0; i < k; i++) row[i] = frand();
        CHECK(wg_quantize_row(type, row, bytes + (size_t)r * rb, k));
    }
    free(row);
    char err[512] = "";
    wg_tensor *t = g->ops->weight_create(g, type, k, m, bytes, err, sizeof err);
    CHECK_MSG(t != NULL, "weight %s [%lld, %lld]: %s", wg_type_name(type), (long long)k, (long long)m, err);
    if (bytes_out) *bytes_out = bytes;
    else free(bytes);
    return t;
}

static wg_tensor *act(wg_backend *g, int64_t ne0, const float *init) {
    char err[512] = "";
    wg_tensor *t = g->ops->buffer_create(g, ne0, 1, err, sizeof err);
    CHECK_MSG(t != NULL, "buffer [%lld]: %s", (long long)ne0, err);
    if (t && init) g->ops->write_rows(g, t, 0, 1, init);
    return t;
}

static void free_all(wg_backend *g, wg_tensor **t, int n) {
    for (int i = 0; i < n; i++)
        if (t[i]) g->ops->tensor_free(g, t[i]);
}

static bool synced(wg_backend *g, const char *what) {
    bool ok = g->ops->synchronize(g);
    CHECK_MSG(ok, "%s: webgpu: %s", what, g->ops->error(g));
    return ok;
}

/* The int8 blocks (m bytes) and scales (m / 32) of an int8 scratch pair, after recorded work. */
static bool read_q8(wgb_ctx *c, int slot_q, int slot_s, int64_t m, int8_t *q, float *d) {
    return wgb_read(c, &c->scratch[slot_q], 0, q, (uint64_t)m) &&
           wgb_read(c, &c->scratch[slot_s], 0, d, (uint64_t)m / 32 * sizeof(float));
}

static uint64_t quantizes(const wgb_ctx *c) { return c->dispatched[WGB_K_QUANTIZE_X_Q8]; }

/* Checks 1-3 for weights of `type`: gate/up k x m, down m x kd. */
static void check_copy(wg_backend *g, uint32_t type, int64_t k, int64_t m, int64_t kd) {
    wgb_ctx *c = wgb_ctx_of(g);
    char what[96];
    snprintf(what, sizeof what, "%s k %lld m %lld", wg_type_name(type), (long long)k, (long long)m);
    float *x = rand_vec((size_t)k, 2.0f), *y = malloc(sizeof(float) * (size_t)m);
    float *o1 = malloc(sizeof(float) * (size_t)kd), *o2 = malloc(sizeof(float) * (size_t)kd);
    float *df = malloc(sizeof(float) * (size_t)(m / 32)), *dq = malloc(sizeof(float) * (size_t)(m / 32));
    float *dr = malloc(sizeof(float) * (size_t)(m / 32));
    int8_t *qf = malloc((size_t)m), *qq = malloc((size_t)m), *qr = malloc((size_t)m);
    /* wg, wu, wd, then gate/up of k = m (a SwiGLU of the hidden state), x, h, h2, out */
    wg_tensor *t[9] = {weight(g, type, k, m, NULL), weight(g, type, k, m, NULL), weight(g, type, m, kd, NULL),
                       weight(g, type, m, m, NULL), weight(g, type, m, m, NULL), act(g, k, x), act(g, m, NULL),
                       act(g, m, NULL), act(g, kd, NULL)};
    bool have = x && y && o1 && o2 && df && dq && dr && qf && qq && qr;
    for (int i = 0; i < 9; i++) have = have && t[i];
    if (!have || !synced(g, what)) goto done;
    wg_tensor *wg = t[0], *wu = t[1], *wd = t[2], *wg2 = t[3], *wu2 = t[4], *xt = t[5], *h = t[6], *h2 = t[7],
              *out = t[8];
    const uint64_t hid = wgb_act(h).id;

    /* 1, 3: the fused copy, then the down product on it (no quantize) */
    wgb_op_matmul_swiglu(g, wg, wu, xt, 1, h);
    CHECK_MSG(c->q8[WGB_Q8_SLOT_HIDDEN].id == hid && c->q8[WGB_Q8_SLOT_HIDDEN].k == m &&
                  c->q8[WGB_Q8_SLOT_HIDDEN].n == 1,
              "%s: the gate/up kernel's output is not tagged in slot HIDDEN", what);
    uint64_t q0 = quantizes(c);
    g->ops->matmul(g, wd, h, 1, out);
    CHECK_MSG(quantizes(c) == q0, "%s: the down product quantized the hidden state again", what);
    if (!read_q8(c, WGB_SCRATCH_XQ_H, WGB_SCRATCH_XS_H, m, qf, df) || !synced(g, what)) goto done;
    g->ops->read_rows(g, out, 0, 1, o1);
    g->ops->read_rows(g, h, 0, 1, y);
    if (!synced(g, what)) goto done;

    /* 1: quantize_x_q8 on the same y (tag cleared: the down product makes the copy in slot X) */
    wgb_q8_forget(c, hid);
    q0 = quantizes(c);
    g->ops->matmul(g, wd, h, 1, out);
    CHECK_MSG(quantizes(c) == q0 + 1, "%s: %llu quantize dispatches without the fused copy, expected 1", what,
              (unsigned long long)(quantizes(c) - q0));
    if (!read_q8(c, WGB_SCRATCH_XQ, WGB_SCRATCH_XS, m, qq, dq) || !synced(g, what)) goto done;
    g->ops->read_rows(g, out, 0, 1, o2);
    if (!synced(g, what)) goto done;
    int bad_q = 0, bad_d = 0;
    for (int64_t i = 0; i < m; i++) bad_q += qf[i] != qq[i];
    for (int64_t b = 0; b < m / 32; b++) bad_d += memcmp(&df[b], &dq[b], sizeof(float)) != 0;
    CHECK_MSG(bad_q == 0 && bad_d == 0, "%s: fused int8 copy differs from quantize_x_q8's in %d values, %d scales",
              what, bad_q, bad_d);
    CHECK_MSG(memcmp(o1, o2, sizeof(float) * (size_t)kd) == 0,
              "%s: the down product differs between the fused copy and quantize_x_q8's", what);

    /* 2: against the C rounding of y */
    quantize_x_q8_ref(y, m, qr, dr);
    int off = 0, ties = 0;
    double worst_d = 0.0;
    for (int64_t b = 0; b < m / 32; b++) {
        worst_d = fmax(worst_d, fabs((double)df[b] - dr[b]) / fmax((double)dr[b], 1e-30));
        const float id = dr[b] > 0.0f ? 1.0f / dr[b] : 0.0f;
        for (int j = 0; j < 32; j++) {
            const int64_t i = b * 32 + j;
            if (qf[i] == qr[i]) continue;
            if (q8_near_tie(y[i], id) && abs(qf[i] - qr[i]) == 1) ties++;
            else off++;
        }
    }
    CHECK_MSG(off == 0 && worst_d <= 1e-6, "%s: %d int8 values off the C rounding (scales within %.3g)", what, off,
              worst_d);

    /* 3: a host write to y drops the copy */
    wgb_op_matmul_swiglu(g, wg, wu, xt, 1, h);
    g->ops->write_rows(g, h, 0, 1, y);
    CHECK_MSG(c->q8[WGB_Q8_SLOT_HIDDEN].id == 0, "%s: a host write left the int8 copy tagged", what);
    q0 = quantizes(c);
    g->ops->matmul(g, wd, h, 1, out);
    CHECK_MSG(quantizes(c) == q0 + 1, "%s: the down product after a host write did not quantize", what);

    /* 3: a SwiGLU of the hidden state: its x (in slot HIDDEN) is made again in slot X, since
     * the kernel writes slot HIDDEN; the result equals that of a fresh copy */
    float *a = malloc(sizeof(float) * (size_t)m), *b2 = malloc(sizeof(float) * (size_t)m);
    if (a && b2) {
        wgb_op_matmul_swiglu(g, wg, wu, xt, 1, h);
        q0 = quantizes(c);
        wgb_op_matmul_swiglu(g, wg2, wu2, h, 1, h2);
        CHECK_MSG(quantizes(c) == q0 + 1, "%s: SwiGLU of the hidden state: %llu quantize dispatches, expected 1", what,
                  (unsigned long long)(quantizes(c) - q0));
        CHECK_MSG(c->q8[WGB_Q8_SLOT_HIDDEN].id == wgb_act(h2).id, "%s: the second SwiGLU's output is not tagged", what);
        g->ops->read_rows(g, h2, 0, 1, a);
        if (synced(g, what)) {
            g->ops->write_rows(g, h, 0, 1, y); /* the same y, no copy of it anywhere */
            wgb_op_matmul_swiglu(g, wg2, wu2, h, 1, h2);
            g->ops->read_rows(g, h2, 0, 1, b2);
            if (synced(g, what))
                CHECK_MSG(memcmp(a, b2, sizeof(float) * (size_t)m) == 0,
                          "%s: SwiGLU of the hidden state differs from that of a fresh int8 copy", what);
        }
    }
    free(a);
    free(b2);
    printf("%s: fused int8 copy vs quantize_x_q8's: %d values, %d scales differ; %d near-tie values off the C "
           "rounding\n", what, bad_q, bad_d, ties);
done:
    free_all(g, t, 9);
    free(x);
    free(y);
    free(o1);
    free(o2);
    free(df);
    free(dq);
    free(dr);
    free(qf);
    free(qq);
    free(qr);
}

/* 4: m = 80 (no whole blocks for the last workgroup) writes no copy and the same y rows as
 * the first 80 of m = 96 with those rows. */
static void check_partial(wg_backend *g) {
    wgb_ctx *c = wgb_ctx_of(g);
    const int64_t k = 96, m = 96, mp = 80;
    uint8_t *bg = NULL, *bu = NULL;
    /* yp: a whole row of the m-row buffer, of which the m = 80 product writes 80 */
    float *x = rand_vec((size_t)k, 2.0f), *y = malloc(sizeof(float) * m), *yp = malloc(sizeof(float) * m);
    wg_tensor *t[6] = {weight(g, WG_TYPE_Q4_0, k, m, &bg), weight(g, WG_TYPE_Q4_0, k, m, &bu), NULL, NULL,
                       act(g, k, x), act(g, m, NULL)};
    char err[512] = "";
    if (bg && bu) {
        t[2] = g->ops->weight_create(g, WG_TYPE_Q4_0, k, mp, bg, err, sizeof err);
        t[3] = g->ops->weight_create(g, WG_TYPE_Q4_0, k, mp, bu, err, sizeof err);
        CHECK_MSG(t[2] && t[3], "weight [%lld, %lld]: %s", (long long)k, (long long)mp, err);
    }
    bool have = x && y && yp;
    for (int i = 0; i < 6; i++) have = have && t[i];
    if (have) {
        wgb_op_matmul_swiglu(g, t[0], t[1], t[4], 1, t[5]);
        g->ops->read_rows(g, t[5], 0, 1, y);
        if (synced(g, "m 96")) {
            wgb_op_matmul_swiglu(g, t[2], t[3], t[4], 1, t[5]);
            CHECK_MSG(c->q8[WGB_Q8_SLOT_HIDDEN].id == 0, "m 80: an int8 copy tagged for a partial block");
            g->ops->read_rows(g, t[5], 0, 1, yp);
            if (synced(g, "m 80"))
                CHECK_MSG(memcmp(y, yp, sizeof(float) * (size_t)mp) == 0, "m 80: rows differ from those of m 96");
        }
    }
    free_all(g, t, 6);
    free(bg);
    free(bu);
    free(x);
    free(y);
    free(yp);
}

int main(void) {
    unsetenv("WGLLM_WEBGPU_Q4_INT8");
    unsetenv("WGLLM_WEBGPU_MAX_BINDING");
    wg_backend *g = test_webgpu_create();
    if (g) {
        check_copy(g, WG_TYPE_Q4_0, 96, 32, 64);     /* one workgroup */
        check_copy(g, WG_TYPE_Q4_0, 256, 1056, 96);  /* 33 workgroups */
        check_copy(g, WG_TYPE_Q8_0, 128, 416, 64);
        check_copy(g, WG_TYPE_Q4_K, 256, 512, 256);
        check_partial(g);
        g->ops->destroy(g);
    }
    CHECK_DONE();
}
