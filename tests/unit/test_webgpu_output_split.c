/* Outputs split over bindings (output_create: the logits of a large vocabulary exceed a
 * device's binding limit, 128 MiB by default). WGLLM_WEBGPU_MAX_BINDING=4096 makes a
 * small output split too (rows of 96 bytes: 42 rows a binding, parts of 42, 42 and 16
 * rows), and the f32 weight with it. Checked against the CPU backend on the same inputs:
 *   - matmul into a split output for 1, 5, 37 and 100 tokens (the matvec, the tiled kernel
 *     and, for Q4_0, the int8 matvecs and the tiled int8 kernel), f32 and Q4_0 weights: bound
 *     1e-5 (f32) and 5e-2 (Q4_0: x rounded to int8, see test_webgpu_backend.c), and to the
 *     same product into an output of one binding within 1e-6 (f32 rounding: a part's rows
 *     may take another kernel than all rows together);
 *   - read_rows and write_rows of ranges that cross parts;
 *   - copy_rows between split outputs and from one into a plain buffer, across parts;
 *   - argmax of rows in later parts, argmax_rows and argmax_to_slot;
 *   - the ops that take only one binding refuse a split output (an error, no crash). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/webgpu/wgpu_backend.h"
#include "backend/webgpu/wgpu_internal.h"
#include "check.h"
#include "quant/quant.h"
#include "quant/types.h"

#define K 64
#define M 24
#define N_MAX 100
#define PART 42 /* rows of M floats in 4096 bytes */

#define TEST_RAND_SEED 0x9e3779b97f4a7c15ull
#include "test_rand.h"

/* max|a - b| / max|b| */
static double rel_err(const float *a, const float *b, size_t n) {
    double md = 0.0, mb = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= md)) md = d; /* NaN propagates */
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
    }
    return mb > 0 ? md / mb : md;
}

static int argmax_ref(const float *row, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (row[i] > row[best]) best = i;
    return best;
}

static bool sync_ok(wg_backend *b) {
    bool ok = b->ops->synchronize(b);
    CHECK_MSG(ok, "%s: %s", b->ops->name, b->ops->error(b));
    return ok;
}

static wg_tensor *output(wg_backend *g, int64_t ne0, int64_t ne1) {
    char err[512] = "";
    wg_tensor *t = g->ops->output_create(g, ne0, ne1, err, sizeof err);
    CHECK_MSG(t != NULL, "output [%lld, %lld]: %s", (long long)ne0, (long long)ne1, err);
    return t;
}

static wg_tensor *buffer(wg_backend *b, int64_t ne0, int64_t ne1) {
    char err[512] = "";
    wg_tensor *t = b->ops->buffer_create(b, ne0, ne1, err, sizeof err);
    CHECK_MSG(t != NULL, "buffer [%lld, %lld]: %s", (long long)ne0, (long long)ne1, err);
    return t;
}

static wg_tensor *weight(wg_backend *b, uint32_t type, const void *data) {
    char err[512] = "";
    wg_tensor *t = b->ops->weight_create(b, type, K, M, data, err, sizeof err);
    CHECK_MSG(t != NULL, "weight: %s", err);
    return t;
}

/* matmul of n tokens into a split output against the CPU and against one binding. */
static void check_matmul(wg_backend *g, wg_backend *cpu, uint32_t type, const void *wdata, const float *x, int n,
                         double bound) {
    wg_tensor *wg = weight(g, type, wdata), *wc = weight(cpu, type, wdata);
    wg_tensor *xg = buffer(g, K, N_MAX), *xc = buffer(cpu, K, N_MAX);
    wg_tensor *split = output(g, M, N_MAX), *whole = buffer(g, M, N_MAX), *yc = buffer(cpu, M, N_MAX);
    float *a = calloc((size_t)M * N_MAX, sizeof *a), *b = calloc((size_t)M * N_MAX, sizeof *b),
          *r = calloc((size_t)M * N_MAX, sizeof *r);
    if (wg && wc && xg && xc && split && whole && yc) {
        CHECK_MSG(wgb_t(split)->n_parts == (N_MAX + PART - 1) / PART, "output split into %d parts",
                  wgb_t(split)->n_parts);
        if (type == WG_TYPE_F32) CHECK(wgb_t(wg)->n_parts > 1); /* the weight is split too */
        g->ops->write_rows(g, xg, 0, N_MAX, x);
        cpu->ops->write_rows(cpu, xc, 0, N_MAX, x);
        g->ops->matmul(g, wg, xg, n, split);
        g->ops->matmul(g, wg, xg, n, whole);
        cpu->ops->matmul(cpu, wc, xc, n, yc);
        g->ops->read_rows(g, split, 0, n, a);
        g->ops->read_rows(g, whole, 0, n, b);
        cpu->ops->read_rows(cpu, yc, 0, n, r);
        if (sync_ok(g)) {
            double e = rel_err(a, r, (size_t)M * (size_t)n);
            CHECK_MSG(e <= bound, "%s, %d tokens: split output vs cpu: relative error %.3g > %.1g",
                      wg_type_name(type), n, e, bound);
            double w = rel_err(a, b, (size_t)M * (size_t)n);
            CHECK_MSG(w <= 1e-6, "%s, %d tokens: split output vs one binding: relative error %.3g",
                      wg_type_name(type), n, w);
            printf("%s, %d tokens: split output vs cpu %.3g\n", wg_type_name(type), n, e);
        }
    }
    wg_tensor *gt[] = {wg, xg, split, whole}, *ct[] = {wc, xc, yc};
    for (size_t i = 0; i < 4; i++)
        if (gt[i]) g->ops->tensor_free(g, gt[i]);
    for (size_t i = 0; i < 3; i++)
        if (ct[i]) cpu->ops->tensor_free(cpu, ct[i]);
    free(a);
    free(b);
    free(r);
}

/* read, write, copy and argmax across the parts of split outputs. */
static void check_rows(wg_backend *g) {
    const size_t all = (size_t)M * N_MAX;
    float *v = malloc(sizeof(float) * all), *got = calloc(all, sizeof *got);
    for (size_t i = 0; i < all; i++) v[i] = frand();
    wg_tensor *s1 = output(g, M, N_MAX), *s2 = output(g, M, N_MAX), *plain = buffer(g, M, 16);
    if (!s1 || !s2 || !plain) goto done;
    g->ops->write_rows(g, s1, 0, 7, v);                 /* within part 0 */
    g->ops->write_rows(g, s1, 7, N_MAX - 7, v + 7 * M); /* parts 0 to 2 */
    g->ops->read_rows(g, s1, 0, N_MAX, got);
    if (sync_ok(g)) CHECK_MSG(memcmp(got, v, sizeof(float) * all) == 0, "write_rows/read_rows across parts");
    g->ops->read_rows(g, s1, 38, 50, got); /* rows 38..87: parts 0, 1, 2 */
    if (sync_ok(g)) CHECK_MSG(memcmp(got, v + 38 * M, sizeof(float) * 50 * M) == 0, "read_rows of rows 38..87");

    /* rows 30..79 of s1 to rows 50..99 of s2 (the parts' boundaries fall elsewhere in each) */
    g->ops->copy_rows(g, s1, 30, 50, s2, 50);
    g->ops->read_rows(g, s2, 50, 50, got);
    if (sync_ok(g)) CHECK_MSG(memcmp(got, v + 30 * M, sizeof(float) * 50 * M) == 0, "copy_rows split to split");
    g->ops->copy_rows(g, s1, 40, 4, plain, 3); /* rows 40..43 (parts 0, 1) to a plain buffer */
    g->ops->copy_rows(g, plain, 3, 1, s2, 90); /* and a plain row into the last part */
    g->ops->read_rows(g, plain, 3, 4, got);
    g->ops->read_rows(g, s2, 90, 1, got + 4 * M);
    if (sync_ok(g)) {
        CHECK_MSG(memcmp(got, v + 40 * M, sizeof(float) * 4 * M) == 0, "copy_rows split to plain");
        CHECK_MSG(memcmp(got + 4 * M, v + 40 * M, sizeof(float) * M) == 0, "copy_rows plain to split");
    }

    for (int row = 0; row < N_MAX; row += 9) {
        int32_t id = g->ops->argmax(g, s1, row);
        CHECK_MSG(sync_ok(g) && id == argmax_ref(v + (size_t)row * M, M), "argmax of row %d: %d", row, id);
    }
    g->ops->copy_rows(g, s1, 30, 1, s2, 0);
    const wg_tensor *rows[2] = {s1, s2};
    int32_t ids[2] = {-1, -1};
    CHECK(g->ops->argmax_rows(g, rows, 2, ids));
    CHECK(sync_ok(g) && ids[0] == argmax_ref(v, M) && ids[1] == argmax_ref(v + 30 * M, M));
    /* rows of both parts into ids 0..2 of slot 1, read back together */
    g->ops->argmax_to_slot(g, s1, 95, 1, 0);
    g->ops->argmax_to_slot(g, s1, 3, 1, 1);
    g->ops->argmax_to_slot(g, s1, 64, 1, 2);
    g->ops->slot_read_start(g, 1, 3);
    int32_t slot_ids[3] = {-1, -1, -1};
    CHECK(g->ops->read_slot(g, 1, 3, slot_ids));
    CHECK_MSG(sync_ok(g) && slot_ids[0] == argmax_ref(v + 95 * M, M) && slot_ids[1] == argmax_ref(v + 3 * M, M) &&
                  slot_ids[2] == argmax_ref(v + 64 * M, M),
              "argmax_to_slot of rows 95, 3, 64: %d %d %d", slot_ids[0], slot_ids[1], slot_ids[2]);

    /* ops of one binding refuse a split output */
    g->ops->add(g, s1, s2, 12);
    CHECK_MSG(!g->ops->synchronize(g), "add of split outputs should fail");
    g->ops->read_rows(g, s1, 90, N_MAX - 89, got); /* one row past the end */
    CHECK_MSG(!g->ops->synchronize(g), "read_rows past the end should fail");
done:
    if (s1) g->ops->tensor_free(g, s1);
    if (s2) g->ops->tensor_free(g, s2);
    if (plain) g->ops->tensor_free(g, plain);
    free(v);
    free(got);
}

int main(void) {
    char err[2048] = "";
    unsetenv("WGLLM_WEBGPU_Q4_INT8");
    setenv("WGLLM_WEBGPU_MAX_BINDING", "4096", 1);
    wg_backend *g = wg_backend_webgpu_create(-1, err, sizeof err);
    unsetenv("WGLLM_WEBGPU_MAX_BINDING");
    CHECK_MSG(g != NULL, "no usable WebGPU device (a GPU, or Mesa's lavapipe on CI): %s", err);
    wg_backend *cpu = wg_backend_cpu_create(2, err, sizeof err);
    CHECK_MSG(cpu != NULL, "%s", err);
    if (g && cpu) {
        CHECK(g->ops->output_create != NULL && cpu->ops->output_create == NULL);
        float *wf = malloc(sizeof(float) * K * M), *x = malloc(sizeof(float) * K * N_MAX);
        for (int i = 0; i < K * M; i++) wf[i] = frand();
        for (int i = 0; i < K * N_MAX; i++) x[i] = frand();
        const size_t rb = wg_type_row_bytes(WG_TYPE_Q4_0, K);
        uint8_t *wq = malloc(rb * M);
        for (int r = 0; r < M; r++) CHECK(wg_quantize_row(WG_TYPE_Q4_0, wf + (size_t)r * K, wq + (size_t)r * rb, K));
        static const int tokens[] = {1, 5, 37, N_MAX};
        for (int i = 0; i < 4; i++) {
            check_matmul(g, cpu, WG_TYPE_F32, wf, x, tokens[i], 1e-5);
            check_matmul(g, cpu, WG_TYPE_Q4_0, wq, x, tokens[i], 5e-2);
        }
        check_rows(g);
        free(wf);
        free(x);
        free(wq);
    }
    if (g) g->ops->destroy(g);
    if (cpu) cpu->ops->destroy(cpu);
    CHECK_DONE();
}
