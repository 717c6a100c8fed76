/* The CPU backend's matmul on int8 activations: each row of x is rounded once per
 * op into wg_q8_block (src/quant/q8_act.h), then integer block dots. Weights repacked
 * at load (q4_0, q8_0: src/quant/q8_x16.h) take the x16 kernels for any batch; rows as
 * stored take the dot kernels of q8_act.h for one token and, from 2 tokens on, tiles of
 * up to 16 rows by several tokens (src/quant/q8_gemm.h). This is the default for Q4_0,
 * Q4_1, Q5_0, Q5_1 and Q8_0 weights; WGLLM_CPU_EXACT=1 keeps the f32 path of cpu_ops.c,
 * whose sums follow llama2.c's arithmetic (the golden tests hold it to that). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "quant/q8_act.h"
#include "quant/q8_gemm.h"
#include "quant/q8_x16.h"
#include "quant/types.h"

bool cpu_arith_from_env(cpu_ctx *c, char *err, size_t err_size) {
    const char *exact = getenv("WGLLM_CPU_EXACT");
    if (exact && *exact && strcmp(exact, "0") != 0 && strcmp(exact, "1") != 0) {
        snprintf(err, err_size, "cpu backend: WGLLM_CPU_EXACT must be 0 or 1");
        return false;
    }
    c->exact = exact && strcmp(exact, "1") == 0;
    c->isa = (int)wg_cpu_isa_best();
    const char *isa = getenv("WGLLM_CPU_ISA");
    if (isa && *isa) {
        const int want = wg_cpu_isa_from_name(isa);
        if (want < 0) {
            snprintf(err, err_size, "cpu backend: WGLLM_CPU_ISA must be " WG_CPU_ISA_NAMES);
            return false;
        }
        if (want < c->isa) c->isa = want; /* forces a lower level; a higher one than the CPU has is ignored */
    }
    return true;
}

/* One token (decode) takes the row-by-row dot kernels: streaming a 64 MiB Q4_0 matrix
 * from memory (one Zen 4 thread, CPU time) the tile took 6.6 ms for one token against
 * their 5.7, and 4.0 ms a token against 5.4 for two. Their integer block sums are the
 * same; only the f32 order of summing the scaled blocks differs from the tile's. */
#define GEMM_MIN_BATCH 2

typedef struct {
    const wg_tensor *w;
    const wg_q8_block *xq; /* n rows of nb blocks */
    float *out;            /* [n][m] */
    int64_t nb, m;
    int n;
    wg_q8_gemm_fn gemm;
    wg_q8_dot_fn dot;
} q8_job;

/* items are tiles of WG_Q8_GEMM_ROWS weight rows, each for all n tokens */
static void q8_range(void *arg, int64_t i0, int64_t i1, int tid) {
    const q8_job *j = arg;
    const int64_t r0 = i0 * WG_Q8_GEMM_ROWS;
    int64_t r1 = i1 * WG_Q8_GEMM_ROWS;
    if (r1 > j->m) r1 = j->m;
    if (j->gemm) {
        const cpu_tensor *ct = j->w->impl;
        j->gemm(cpu_row(j->w, r0), ct->row_bytes, r1 - r0, j->xq, j->nb, j->n, j->out + r0, j->m);
        return;
    }
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = cpu_row(j->w, r);
        for (int i = 0; i < j->n; i++)
            j->out[(size_t)i * (size_t)j->m + (size_t)r] = j->dot(row, j->xq + (size_t)i * (size_t)j->nb, j->nb);
    }
}

/* Weights repacked sixteen rows at a time: groups of sixteen rows split across threads;
 * each group's blocks are unpacked once per tile of tokens. */
typedef struct {
    const uint8_t *w; /* packed groups */
    size_t group_bytes;
    const wg_q8_block *xq;
    float *out;
    int64_t nb, m;
    int n;
    wg_x16_matmul_fn kernel;
} x16_job;

static void x16_range(void *arg, int64_t g0, int64_t g1, int tid) {
    const x16_job *j = arg;
    for (int64_t g = g0; g < g1; g++)
        j->kernel(j->w + (size_t)g * j->group_bytes, j->xq, j->nb, j->n, j->nb, j->out + WG_X16_ROWS * g, j->m);
}

typedef struct {
    const wg_tensor *x;
    wg_q8_block *xq;
    int64_t k;
    wg_q8_quantize_fn quantize;
} quant_job;

static void quant_range(void *arg, int64_t i0, int64_t i1, int tid) {
    const quant_job *j = arg;
    for (int64_t i = i0; i < i1; i++) j->quantize(cpu_row(j->x, i), j->xq + (size_t)i * (size_t)(j->k / 32), j->k);
}

bool cpu_matmul_q8(wg_backend *b, const wg_tensor *w, const wg_tensor *x, int n, wg_tensor *out) {
    cpu_ctx *c = b->ctx;
    if (c->exact || n <= 0 || w->ne0 % 32 != 0) return false;
    const bool x16 = cpu_is_x16(w);
    const wg_x16_matmul_fn kernel = x16 ? wg_x16_matmul_kernel(w->type, c->isa) : NULL;
    const wg_q8_gemm_fn gemm = !x16 && n >= GEMM_MIN_BATCH ? wg_q8_gemm_kernel(w->type, c->isa) : NULL;
    const wg_q8_dot_fn dot = x16 ? NULL : wg_q8_dot_kernel(w->type, c->isa);
    const wg_q8_quantize_fn quantize = wg_q8_quantize_kernel(c->isa);
    if ((!dot && !kernel) || !quantize) return false;
    const int64_t nb = w->ne0 / 32;
    const size_t need = (size_t)nb * (size_t)n;
    if (need > c->xq_blocks) {
        wg_q8_block *q = realloc(c->xq, need * sizeof *q);
        if (!q) return false; /* the f32 path still gives the answer */
        c->xq = q;
        c->xq_blocks = need;
    }
    wg_threadpool *p = c->pool;
    const int threads = wg_threadpool_size(p);
    /* rounding x is ~1/m of the matmul: worth a wake-up of the pool only for many rows */
    quant_job qj = {x, c->xq, w->ne0, quantize};
    if (n >= 4 * threads) wg_threadpool_run(p, quant_range, &qj, n, (n + 2 * threads - 1) / (2 * threads));
    else quant_range(&qj, 0, n, 0);
    if (x16) {
        const int64_t groups = w->ne1 / WG_X16_ROWS;
        int64_t grain = groups / (8 * threads);
        if (w->ne0 * w->ne1 * n < 32768) grain = groups;
        if (grain < 1) grain = 1;
        x16_job j = {((const cpu_tensor *)w->impl)->data, wg_x16_group_bytes(w->type, w->ne0), c->xq,
                     cpu_row(out, 0), nb, w->ne1, n, kernel};
        wg_threadpool_run(p, x16_range, &j, groups, grain);
        return true;
    }
    q8_job j = {w, c->xq, cpu_row(out, 0), nb, w->ne1, n, gemm, dot};
    const int64_t tiles = (w->ne1 + WG_Q8_GEMM_ROWS - 1) / WG_Q8_GEMM_ROWS;
    /* ~8 chunks per thread balances load; small matrices stay on one thread */
    int64_t grain = tiles / (8 * threads);
    if (w->ne0 * w->ne1 * n < 32768) grain = tiles;
    if (grain < 1) grain = 1;
    wg_threadpool_run(p, q8_range, &j, tiles, grain);
    return true;
}
