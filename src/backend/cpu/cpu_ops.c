/* The CPU backend's ops. Each parallel op packs its operands into a small
 * struct and hands a range function to the thread pool. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/cpu_internal.h"
#include "quant/q8_x16.h"
#include "quant/quant.h"
#include "quant/types.h"

int cpu_online_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static wg_threadpool *pool_of(wg_backend *b) { return ((cpu_ctx *)b->ctx)->pool; }

void cpu_op_get_rows(wg_backend *b, const wg_tensor *table, const int32_t *ids, int n, wg_tensor *out) {
    if (cpu_is_x16(table)) { /* each row back in the file's layout first */
        uint8_t *row = malloc(wg_type_row_bytes(table->type, table->ne0));
        if (!row) {
            cpu_fail(b, "out of memory for an embedding row");
            return;
        }
        for (int i = 0; i < n; i++) {
            wg_x16_unpack_row(table->type, ((const cpu_tensor *)table->impl)->data, ids[i], table->ne0, row);
            wg_dequantize_row(table->type, row, cpu_row(out, i), table->ne0);
        }
        free(row);
        return;
    }
    for (int i = 0; i < n; i++)
        wg_dequantize_row(table->type, cpu_row(table, ids[i]), cpu_row(out, i), table->ne0);
}

void cpu_op_copy_rows(wg_backend *b, const wg_tensor *src, int64_t src_row0, int n, wg_tensor *dst,
                      int64_t dst_row0) {
    memmove(cpu_row(dst, dst_row0), cpu_row(src, src_row0), (size_t)n * (size_t)src->ne0 * sizeof(float));
}

void cpu_fail(wg_backend *b, const char *msg) {
    cpu_ctx *c = b->ctx;
    if (c->failed) return;
    c->failed = true;
    snprintf(c->error, sizeof c->error, "cpu backend: %s", msg);
}

void cpu_op_rms_norm(wg_backend *b, const wg_tensor *x, const wg_tensor *w, float eps, int n, wg_tensor *out) {
    const int64_t d = x->ne0, g = w->ne0;
    if (w->type != WG_TYPE_F32 || g <= 0 || d % g != 0) {
        cpu_fail(b, "rms_norm weight must be f32 of a length dividing the row");
        return;
    }
    const float *wv = cpu_row(w, 0);
    for (int i = 0; i < n; i++) {
        const float *xi = cpu_row(x, i);
        float *oi = cpu_row(out, i); /* may be xi: each value is read before it is written */
        for (int64_t j0 = 0; j0 < d; j0 += g) {
            double ss = 0.0;
            for (int64_t j = j0; j < j0 + g; j++) ss += (double)xi[j] * xi[j];
            float scale = (float)(1.0 / sqrt(ss / (double)g + (double)eps));
            for (int64_t j = j0; j < j0 + g; j++) oi[j] = xi[j] * scale * wv[j - j0];
        }
    }
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

void cpu_op_rope(wg_backend *b, wg_tensor *x, int n, int n_heads, int head_dim, const wg_rope *rope, int pos0,
                 int row0) {
    const int dims = rope->dims;
    /* the two values of pair j: adjacent (2j, 2j + 1) or halves (j, j + dims / 2) */
    const int stride = rope->neox ? 1 : 2, mate = rope->neox ? dims / 2 : 1;
    for (int i = 0; i < n; i++) {
        float *xi = cpu_row(x, row0 + i);
        float pos = (float)(pos0 + i) * rope->scale;
        for (int j = 0; j < dims / 2; j++) {
            float freq = 1.0f / powf(rope->base, (float)(2 * j) / (float)dims);
            if (rope->factors) freq /= rope->factors[j];
            float c = cosf(pos * freq), s = sinf(pos * freq);
            for (int h = 0; h < n_heads; h++) {
                float *v = xi + (size_t)h * (size_t)head_dim + (size_t)(j * stride);
                float a = v[0], bb = v[mate];
                v[0] = a * c - bb * s;
                v[mate] = a * s + bb * c;
            }
        }
    }
}

bool cpu_op_rope_rows(wg_backend *b, wg_tensor *x, int n, int n_heads, int head_dim, const wg_rope *rope,
                      const int32_t *pos) {
    for (int i = 0; i < n; i++) cpu_op_rope(b, x, 1, n_heads, head_dim, rope, pos[i], i);
    return true;
}

void cpu_op_kv_store(wg_backend *b, wg_tensor *k_cache, wg_tensor *v_cache, const wg_tensor *k,
                     const wg_tensor *v, int pos0, int n, int row0) {
    memcpy(cpu_row(k_cache, pos0), cpu_row(k, row0), (size_t)n * (size_t)k->ne0 * sizeof(float));
    memcpy(cpu_row(v_cache, pos0), cpu_row(v, row0), (size_t)n * (size_t)v->ne0 * sizeof(float));
}

/* ---- attention: one work item per (token, query head) ---- */
typedef struct {
    const wg_tensor *q, *k_cache, *v_cache;
    wg_tensor *out;
    int pos0, n_head, n_head_kv, head_dim, window, row0;
    float *scratch;
    size_t scratch_stride;
} attn_job;

static void attention_range(void *arg, int64_t it0, int64_t it1, int tid) {
    const attn_job *j = arg;
    const int hd = j->head_dim, group = j->n_head / j->n_head_kv;
    const float scale = 1.0f / sqrtf((float)hd);
    float *att = j->scratch + (size_t)tid * j->scratch_stride;
    for (int64_t it = it0; it < it1; it++) {
        int i = (int)(it / j->n_head), h = (int)(it % j->n_head);
        int pos = j->pos0 + i, kvh = h / group;
        int first = j->window > 0 && pos - j->window + 1 > 0 ? pos - j->window + 1 : 0;
        const float *q = (const float *)cpu_row(j->q, j->row0 + i) + (size_t)h * hd;
        float mx = -INFINITY;
        for (int t = first; t <= pos; t++) {
            const float *k = (const float *)cpu_row(j->k_cache, t) + (size_t)kvh * hd;
            float s = 0.0f;
            for (int d = 0; d < hd; d++) s += q[d] * k[d];
            s *= scale;
            att[t] = s;
            if (s > mx) mx = s;
        }
        float sum = 0.0f;
        for (int t = first; t <= pos; t++) {
            att[t] = expf(att[t] - mx);
            sum += att[t];
        }
        float inv = 1.0f / sum;
        float *o = (float *)cpu_row(j->out, j->row0 + i) + (size_t)h * hd;
        memset(o, 0, (size_t)hd * sizeof(float));
        for (int t = first; t <= pos; t++) {
            const float *v = (const float *)cpu_row(j->v_cache, t) + (size_t)kvh * hd;
            float a = att[t] * inv;
            for (int d = 0; d < hd; d++) o[d] += a * v[d];
        }
    }
}

void cpu_op_attention(wg_backend *b, const wg_tensor *q, const wg_tensor *k_cache, const wg_tensor *v_cache,
                      int pos0, int n, int n_head, int n_head_kv, int head_dim, int window, wg_tensor *out,
                      int row0) {
    cpu_ctx *c = b->ctx;
    size_t stride = (size_t)k_cache->ne1;
    size_t need = stride * (size_t)wg_threadpool_size(c->pool);
    if (need > c->scratch_floats) {
        float *s = realloc(c->scratch, need * sizeof(float));
        if (!s) {
            cpu_fail(b, "out of memory for attention scores");
            return;
        }
        c->scratch = s;
        c->scratch_floats = need;
    }
    attn_job j = {q, k_cache, v_cache, out, pos0, n_head, n_head_kv, head_dim, window, row0, c->scratch, stride};
    int64_t items = (int64_t)n * n_head;
    int64_t grain = (int64_t)pos0 + n < 64 ? items : 1;
    wg_threadpool_run(c->pool, attention_range, &j, items, grain);
}

void cpu_op_swiglu(wg_backend *b, const wg_tensor *gate, const wg_tensor *up, int n, wg_tensor *out) {
    size_t len = (size_t)n * (size_t)gate->ne0;
    const float *g = cpu_row(gate, 0), *u = cpu_row(up, 0);
    float *o = cpu_row(out, 0);
    for (size_t i = 0; i < len; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void cpu_op_add(wg_backend *b, wg_tensor *x, const wg_tensor *y, int n) {
    const size_t d = (size_t)x->ne0;
    if (y->type != WG_TYPE_F32 || y->ne0 != x->ne0) {
        cpu_fail(b, "add needs an f32 y of x's row length");
        return;
    }
    if (y->ne1 == 1) { /* one row (a bias) added to each row */
        const float *c = cpu_row(y, 0);
        for (int i = 0; i < n; i++) {
            float *a = cpu_row(x, i);
            for (size_t k = 0; k < d; k++) a[k] += c[k];
        }
        return;
    }
    size_t len = (size_t)n * d;
    float *a = cpu_row(x, 0);
    const float *c = cpu_row(y, 0);
    for (size_t i = 0; i < len; i++) a[i] += c[i];
}
