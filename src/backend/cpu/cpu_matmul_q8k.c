/* The CPU backend's matmul of K-quant weights (Q2_K .. Q6_K) on int8 activations,
 * for every batch size: each row of x is rounded once per op into Q8_K blocks
 * (src/quant/q8k_act.h), then the weight rows are taken in groups of
 * WG_Q8K_TILE_R and the tokens in tiles of WG_Q8K_TILE_T, each weight super-block
 * decoded once per tile (one or two tokens: the dot kernel row by row). Groups of
 * rows are split across the threads; a group's weights stay in cache while all the
 * tokens pass. Every batch size gives each token the same bits. WGLLM_CPU_EXACT=1
 * keeps the f32 path of cpu_ops.c. */
#include <stdlib.h>

#include "backend/cpu/cpu_internal.h"
#include "quant/q8k_act.h"
#include "quant/q8k_x16.h"

typedef struct {
    const wg_tensor *w;
    const wg_q8k_block *xq; /* n rows of nb blocks */
    float *out;             /* [n][m] */
    int64_t nb, m;
    int n;
    wg_q8k_dot_fn dot;
    wg_q8k_tile_fn tile;
} q8k_job;

static void q8k_range(void *arg, int64_t g0, int64_t g1, int tid) {
    const q8k_job *j = arg;
    const size_t stride = ((const cpu_tensor *)j->w->impl)->row_bytes;
    for (int64_t g = g0; g < g1; g++) {
        const int64_t r0 = g * WG_Q8K_TILE_R;
        const int nr = j->m - r0 < WG_Q8K_TILE_R ? (int)(j->m - r0) : WG_Q8K_TILE_R;
        if (j->n <= 2) {
            /* one or two tokens: row by row (Q4_K on one thread: 30 GMAC/s; tiles of 4 x 1
             * ran 13, of 4 x 2 24, of 4 x 32 75) */
            for (int r = 0; r < nr; r++)
                for (int t = 0; t < j->n; t++)
                    j->out[(size_t)t * (size_t)j->m + (size_t)(r0 + r)] =
                        j->dot(cpu_row(j->w, r0 + r), j->xq + (size_t)t * (size_t)j->nb, j->nb);
            continue;
        }
        for (int t0 = 0; t0 < j->n; t0 += WG_Q8K_TILE_T) {
            const int nt = j->n - t0 < WG_Q8K_TILE_T ? j->n - t0 : WG_Q8K_TILE_T;
            j->tile(cpu_row(j->w, r0), stride, nr, j->xq + (size_t)t0 * (size_t)j->nb, (size_t)j->nb, nt, j->nb,
                    j->out + (size_t)t0 * (size_t)j->m + (size_t)r0, (size_t)j->m);
        }
    }
}

/* Q4_K weights repacked sixteen rows at a time (src/quant/q8k_x16.h): groups of sixteen
 * rows split across threads, all tokens per group. */
typedef struct {
    const uint8_t *w;
    size_t group_bytes;
    const wg_q8k_block *xq;
    float *out;
    int64_t nb, m;
    int n;
    wg_q8k_x16_fn kernel;
} x16_job;

static void x16_range(void *arg, int64_t g0, int64_t g1, int tid) {
    const x16_job *j = arg;
    for (int64_t g = g0; g < g1; g++)
        j->kernel(j->w + (size_t)g * j->group_bytes, j->xq, j->nb, j->n, j->nb, j->out + 16 * g, j->m);
}

typedef struct {
    const wg_tensor *x;
    wg_q8k_block *xq;
    int64_t k;
    wg_q8k_quantize_fn quantize;
} quant_job;

static void quant_range(void *arg, int64_t i0, int64_t i1, int tid) {
    const quant_job *j = arg;
    for (int64_t i = i0; i < i1; i++)
        j->quantize(cpu_row(j->x, i), j->xq + (size_t)i * (size_t)(j->k / 256), j->k);
}

bool cpu_matmul_q8k(wg_backend *b, const wg_tensor *w, const wg_tensor *x, int n, wg_tensor *out) {
    cpu_ctx *c = b->ctx;
    if (c->exact || n <= 0 || w->ne0 % 256 != 0) return false;
    wg_q8k_dot_fn dot;
    wg_q8k_tile_fn tile;
    if (!wg_q8k_kernels(w->type, c->isa, &dot, &tile)) return false;
    const wg_q8k_x16_fn x16 = cpu_is_x16(w) ? wg_q8k_x16_kernel(w->type, c->isa) : NULL;
    if (cpu_is_x16(w) && !x16) return false;
    const int64_t nb = w->ne0 / 256;
    const size_t need = (size_t)nb * (size_t)n;
    if (need > c->xqk_blocks) {
        wg_q8k_block *q = realloc(c->xqk, need * sizeof *q);
        if (!q) return false; /* the f32 path still gives the answer */
        c->xqk = q;
        c->xqk_blocks = need;
    }
    wg_threadpool *p = c->pool;
    quant_job qj = {x, c->xqk, w->ne0, wg_q8k_quantizer(c->isa)};
    /* a few rows on this thread: waking the pool would cost more */
    if (n < 8) quant_range(&qj, 0, n, 0);
    else wg_threadpool_run(p, quant_range, &qj, n, 1);

    if (x16) {
        const int64_t groups = w->ne1 / 16;
        int64_t grain = groups / (8 * wg_threadpool_size(p));
        if (grain < 1) grain = 1;
        x16_job xj = {((const cpu_tensor *)w->impl)->data, wg_q8k_x16_group_bytes(w->type, w->ne0), c->xqk,
                      cpu_row(out, 0), nb, w->ne1, n, x16};
        wg_threadpool_run(p, x16_range, &xj, groups, grain);
        return true;
    }
    q8k_job j = {w, c->xqk, cpu_row(out, 0), nb, w->ne1, n, dot, tile};
    const int64_t groups = (w->ne1 + WG_Q8K_TILE_R - 1) / WG_Q8K_TILE_R;
    /* as the f32 matmul: ~8 chunks per thread, small matrices on one thread */
    int64_t grain = groups / (8 * wg_threadpool_size(p));
    if (w->ne0 * w->ne1 * n < 32768) grain = groups;
    if (grain < 1) grain = 1;
    wg_threadpool_run(p, q8k_range, &j, groups, grain);
    return true;
}
