/* The CPU backend's ops. Each parallel op packs its operands into a small
 * struct and hands a range function to the thread pool. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/cpu_internal.h"
#include "quant/kquant.h"
#include "quant/q8_x16.h"
#include "quant/q8k_x16.h"
#include "quant/quant.h"
#include "quant/types.h"

int cpu_online_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static wg_threadpool *pool_of(wg_backend *b) { return ((cpu_ctx *)b->ctx)->pool; }

/* Ops with less work than this many floats run on the calling thread: waking the
 * pool costs more than it saves. */
#define PAR_MIN_FLOATS 16384

/* Runs fn over n items of `item_floats` floats of work each: on the calling thread when
 * the whole is small, else in about 4 chunks per thread. */
static void run_items(wg_backend *b, wg_range_fn fn, void *job, int64_t n, int64_t item_floats) {
    wg_threadpool *p = pool_of(b);
    const int64_t threads = wg_threadpool_size(p);
    int64_t grain = n * item_floats < PAR_MIN_FLOATS ? n : (n + 4 * threads - 1) / (4 * threads);
    wg_threadpool_run(p, fn, job, n, grain);
}

typedef struct {
    const wg_tensor *table;
    const int32_t *ids;
    wg_tensor *out;
} get_rows_job;

static void get_rows_range(void *arg, int64_t i0, int64_t i1, int tid) {
    const get_rows_job *j = arg;
    const wg_tensor *t = j->table;
    if (cpu_is_x16(t) && wg_q8k_x16_type(t->type)) { /* repacked K-quant: a super-block at a time */
        const uint8_t *packed = ((const cpu_tensor *)t->impl)->data;
        for (int64_t i = i0; i < i1; i++)
            for (int64_t b = 0; b < t->ne0 / 256; b++) {
                uint8_t blk[WG_Q6_K_BYTES > WG_Q4_K_BYTES ? WG_Q6_K_BYTES : WG_Q4_K_BYTES];
                wg_q8k_x16_unpack_block(t->type, packed, j->ids[i], t->ne0, b, blk);
                wg_dequantize_row(t->type, blk, (float *)cpu_row(j->out, i) + 256 * b, 256);
            }
        return;
    }
    if (cpu_is_x16(t)) { /* a repacked table: each row back in the file's layout, a block at a time */
        const uint8_t *packed = ((const cpu_tensor *)t->impl)->data;
        for (int64_t i = i0; i < i1; i++)
            for (int64_t b = 0; b < t->ne0 / 32; b++) {
                uint8_t blk[2 + 32];
                wg_x16_unpack_block(t->type, packed, j->ids[i], t->ne0, b, blk);
                wg_dequantize_row(t->type, blk, (float *)cpu_row(j->out, i) + 32 * b, 32);
            }
        return;
    }
    for (int64_t i = i0; i < i1; i++)
        wg_dequantize_row(t->type, cpu_row(t, j->ids[i]), cpu_row(j->out, i), t->ne0);
}

void cpu_op_get_rows(wg_backend *b, const wg_tensor *table, const int32_t *ids, int n, wg_tensor *out) {
    get_rows_job j = {table, ids, out};
    run_items(b, get_rows_range, &j, n, table->ne0);
}

void cpu_op_copy_rows(wg_backend *b, const wg_tensor *src, int64_t src_row0, int n, wg_tensor *dst,
                      int64_t dst_row0) {
    memmove(cpu_row(dst, dst_row0), cpu_row(src, src_row0), (size_t)n * (size_t)src->ne0 * sizeof(float));
}


typedef struct {
    const wg_tensor *x;
    const float *w;
    wg_tensor *out;
    int64_t d, g;
    float eps;
} rms_norm_job;

static void rms_norm_range(void *arg, int64_t i0, int64_t i1, int tid) {
    const rms_norm_job *jb = arg;
    const int64_t d = jb->d, g = jb->g;
    for (int64_t i = i0; i < i1; i++) {
        const float *xi = cpu_row(jb->x, i);
        float *oi = cpu_row(jb->out, i); /* may be xi: each value is read before it is written */
        for (int64_t j0 = 0; j0 < d; j0 += g) {
            double ss = 0.0;
            for (int64_t j = j0; j < j0 + g; j++) ss += (double)xi[j] * xi[j];
            float scale = (float)(1.0 / sqrt(ss / (double)g + (double)jb->eps));
            for (int64_t j = j0; j < j0 + g; j++) oi[j] = xi[j] * scale * jb->w[j - j0];
        }
    }
}

void cpu_op_rms_norm(wg_backend *b, const wg_tensor *x, const wg_tensor *w, float eps, int n, wg_tensor *out) {
    const int64_t d = x->ne0, g = w->ne0;
    if (w->type != WG_TYPE_F32 || g <= 0 || d % g != 0) {
        cpu_fail(b, "rms_norm weight must be f32 of a length dividing the row");
        return;
    }
    rms_norm_job j = {x, cpu_row(w, 0), out, d, g, eps};
    run_items(b, rms_norm_range, &j, n, d);
}

/* ---- matmul: rows of W split across threads; each W row is reused for all n tokens ---- */
typedef struct {
    const wg_tensor *w, *x;
    wg_tensor *out;
    int n;
    float *rowbuf; /* per-thread f32 row, for batches */
} matmul_job;

/* Batches below this size dot the quantized row directly; larger ones expand
 * each weight row once (into a per-thread buffer) and reuse it for every token. */
#define MATMUL_EXPAND_MIN_BATCH 4

static void matmul_range(void *arg, int64_t r0, int64_t r1, int tid) {
    const matmul_job *j = arg;
    const int64_t k = j->w->ne0, m = j->w->ne1;
    const float *x = cpu_row(j->x, 0);
    float *out = cpu_row(j->out, 0);
    const bool expand = j->rowbuf != NULL;
    float *buf = expand ? j->rowbuf + (size_t)tid * (size_t)k : NULL;
    for (int64_t r = r0; r < r1; r++) {
        const void *row = cpu_row(j->w, r);
        uint32_t type = j->w->type;
        if (expand) {
            wg_dequantize_row(type, row, buf, k);
            row = buf;
            type = WG_TYPE_F32;
        }
        int i = 0;
        if (type == WG_TYPE_F32) {
            for (; i + 4 <= j->n; i += 4) {
                float o[4];
                wg_vec_dot4_f32(row, x + (size_t)i * (size_t)k, k, k, o);
                for (int t = 0; t < 4; t++) out[(size_t)(i + t) * (size_t)m + (size_t)r] = o[t];
            }
        }
        for (; i < j->n; i++)
            out[(size_t)i * (size_t)m + (size_t)r] = wg_vec_dot_f32(type, row, x + (size_t)i * (size_t)k, k);
    }
}

void cpu_op_matmul(wg_backend *b, const wg_tensor *w, const wg_tensor *x, int n, wg_tensor *out) {
    cpu_ctx *c = b->ctx;
    if (cpu_matmul_q8k(b, w, x, n, out)) return;
    if (cpu_matmul_q8(b, w, x, n, out)) return;
    if (cpu_is_x16(w)) { /* only the int8 kernels read the repacked layout */
        cpu_fail(b, "out of memory for the int8 rows of a matmul");
        return;
    }
    matmul_job j = {w, x, out, n, NULL};
    wg_threadpool *p = pool_of(b);
    if (n >= MATMUL_EXPAND_MIN_BATCH && w->type != WG_TYPE_F32) {
        size_t need = (size_t)w->ne0 * (size_t)wg_threadpool_size(p);
        if (need > c->rowbuf_floats) {
            float *nb = realloc(c->rowbuf, need * sizeof(float));
            if (nb) {
                c->rowbuf = nb;
                c->rowbuf_floats = need;
            }
        }
        /* Without the buffer the direct path still gives the right answer, only slower. */
        if (need <= c->rowbuf_floats) j.rowbuf = c->rowbuf;
    }
    int64_t rows = w->ne1;
    /* ~8 chunks per thread balances load; very small matrices stay on one thread. */
    int64_t grain = rows / (8 * wg_threadpool_size(p));
    if ((int64_t)w->ne0 * rows * n < 32768) grain = rows;
    if (grain < 1) grain = 1;
    wg_threadpool_run(p, matmul_range, &j, rows, grain);
}

typedef struct {
    wg_tensor *x;
    int n_heads, head_dim, pos0, row0;
    const int32_t *pos; /* per row, or NULL: pos0 + i */
    const wg_rope *rope;
    const float *freq; /* dims / 2 */
} rope_job;

static void rope_range(void *arg, int64_t i0, int64_t i1, int tid) {
    const rope_job *jb = arg;
    const int dims = jb->rope->dims, n_heads = jb->n_heads;
    const size_t head_dim = (size_t)jb->head_dim;
    const float scale = jb->rope->scale, *freq = jb->freq;
    const int32_t *rows_pos = jb->pos;
    /* the two values of pair j: adjacent (2j, 2j + 1) or halves (j, j + dims / 2) */
    const int stride = jb->rope->neox ? 1 : 2, mate = jb->rope->neox ? dims / 2 : 1;
    for (int64_t i = i0; i < i1; i++) {
        float *xi = cpu_row(jb->x, jb->row0 + i);
        const int p = rows_pos ? rows_pos[i] : jb->pos0 + (int)i;
        const float angle = (float)p * scale;
        for (int j = 0; j < dims / 2; j++) {
            const float c = cosf(angle * freq[j]), s = sinf(angle * freq[j]);
            for (int h = 0; h < n_heads; h++) {
                float *v = xi + (size_t)h * head_dim + (size_t)(j * stride);
                const float a = v[0], bb = v[mate];
                v[0] = a * c - bb * s;
                v[mate] = a * s + bb * c;
            }
        }
    }
}

/* The rotation of rows [row0, row0 + n) at positions pos[i] (or pos0 + i). */
static void rope_rows(wg_backend *b, wg_tensor *x, int n, int n_heads, int head_dim, const wg_rope *rope,
                      int pos0, const int32_t *pos, int row0) {
    enum { MAX_PAIRS = 512 };
    const int dims = rope->dims;
    if (dims < 0 || dims / 2 > MAX_PAIRS) {
        cpu_fail(b, "rope rotates more than 1024 values per head");
        return;
    }
    float freq[MAX_PAIRS];
    for (int j = 0; j < dims / 2; j++) {
        freq[j] = 1.0f / powf(rope->base, (float)(2 * j) / (float)dims);
        if (rope->factors) freq[j] /= rope->factors[j];
    }
    rope_job j = {x, n_heads, head_dim, pos0, row0, pos, rope, freq};
    run_items(b, rope_range, &j, n, (int64_t)n_heads * dims * 2);
}

void cpu_op_rope(wg_backend *b, wg_tensor *x, int n, int n_heads, int head_dim, const wg_rope *rope, int pos0,
                 int row0) {
    rope_rows(b, x, n, n_heads, head_dim, rope, pos0, NULL, row0);
}

bool cpu_op_rope_rows(wg_backend *b, wg_tensor *x, int n, int n_heads, int head_dim, const wg_rope *rope,
                      const int32_t *pos) {
    rope_rows(b, x, n, n_heads, head_dim, rope, 0, pos, 0);
    return true;
}

typedef struct {
    wg_tensor *k_cache, *v_cache;
    const wg_tensor *k, *v;
    int pos0, row0;
} kv_store_job;

static void kv_store_range(void *arg, int64_t i0, int64_t i1, int tid) {
    const kv_store_job *j = arg;
    const size_t n = (size_t)(i1 - i0);
    memcpy(cpu_row(j->k_cache, j->pos0 + i0), cpu_row(j->k, j->row0 + i0), n * (size_t)j->k->ne0 * sizeof(float));
    memcpy(cpu_row(j->v_cache, j->pos0 + i0), cpu_row(j->v, j->row0 + i0), n * (size_t)j->v->ne0 * sizeof(float));
}

void cpu_op_kv_store(wg_backend *b, wg_tensor *k_cache, wg_tensor *v_cache, const wg_tensor *k,
                     const wg_tensor *v, int pos0, int n, int row0) {
    kv_store_job j = {k_cache, v_cache, k, v, pos0, row0};
    /* a copy is cheap per float: only long prompts are split */
    run_items(b, kv_store_range, &j, n, (k->ne0 + v->ne0) / 2);
}

/* Element-wise ops: ranges of floats, whole blocks of ELEM_BLOCK per item. */
enum { ELEM_BLOCK = 1024 };

typedef struct {
    const float *g, *u;
    float *o;
    size_t len;
} swiglu_job;

static void swiglu_range(void *arg, int64_t b0, int64_t b1, int tid) {
    const swiglu_job *j = arg;
    const size_t end = (size_t)b1 * ELEM_BLOCK < j->len ? (size_t)b1 * ELEM_BLOCK : j->len;
    for (size_t i = (size_t)b0 * ELEM_BLOCK; i < end; i++) j->o[i] = j->g[i] / (1.0f + expf(-j->g[i])) * j->u[i];
}

void cpu_op_swiglu(wg_backend *b, const wg_tensor *gate, const wg_tensor *up, int n, wg_tensor *out) {
    size_t len = (size_t)n * (size_t)gate->ne0;
    swiglu_job j = {cpu_row(gate, 0), cpu_row(up, 0), cpu_row(out, 0), len};
    /* an exp per value: worth splitting from a quarter of the usual size */
    run_items(b, swiglu_range, &j, (int64_t)((len + ELEM_BLOCK - 1) / ELEM_BLOCK), ELEM_BLOCK * 4);
}

typedef struct {
    float *a;
    const float *c;
    size_t len, d; /* d > 0: c is one row of d added to each row */
} add_job;

static void add_range(void *arg, int64_t b0, int64_t b1, int tid) {
    const add_job *j = arg;
    const size_t end = (size_t)b1 * ELEM_BLOCK < j->len ? (size_t)b1 * ELEM_BLOCK : j->len;
    size_t i = (size_t)b0 * ELEM_BLOCK;
    if (j->d == 0) {
        for (; i < end; i++) j->a[i] += j->c[i];
        return;
    }
    while (i < end) { /* a run within one row */
        size_t k = i % j->d, stop = i - k + j->d < end ? i - k + j->d : end;
        for (; i < stop; i++, k++) j->a[i] += j->c[k];
    }
}

void cpu_op_add(wg_backend *b, wg_tensor *x, const wg_tensor *y, int n) {
    const size_t d = (size_t)x->ne0;
    if (y->type != WG_TYPE_F32 || y->ne0 != x->ne0) {
        cpu_fail(b, "add needs an f32 y of x's row length");
        return;
    }
    /* rows of x and y are contiguous (buffers and f32 weights alike) */
    add_job j = {cpu_row(x, 0), cpu_row(y, 0), (size_t)n * d, y->ne1 == 1 ? d : 0};
    run_items(b, add_range, &j, (int64_t)((j.len + ELEM_BLOCK - 1) / ELEM_BLOCK), ELEM_BLOCK);
}
