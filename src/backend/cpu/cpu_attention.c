/* Causal attention on the CPU, split by KV head and by chunks of KV positions
 * (flash-decoding): a work item is (token, KV head, position chunk). It reads each
 * K and V row of its chunk once for every query head that shares the KV head and
 * keeps, per query head, a partial (max score, sum of weights, weighted sum of V);
 * a second pass merges the chunks of each (token, head). Decoding one token at
 * depth 2048 with 4 KV heads thus has 4 x 8 chunks to share out, instead of the
 * 32 query heads that each read the whole cache. A prompt has enough items in
 * (token, KV head) and takes one chunk per item, normalised in place. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"

/* The kernels are compiled for three x86 levels and picked by the loader (the
 * binary stays portable); elsewhere the compiler's baseline is used. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ATTN_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define ATTN_CLONES
#endif

typedef struct {
    const wg_tensor *q, *k_cache, *v_cache;
    wg_tensor *out;
    int pos0, n, n_head, n_head_kv, head_dim, window, row0;
    int group, chunk, n_chunks; /* query heads per KV head; positions per chunk */
    bool exact;                 /* libm's expf, as the reference */
    float *scores;              /* per thread: group x chunk */
    float *part;                /* (token, head, chunk) x (max, sum, hd values); NULL: one chunk */
    float scale;
} attn_job;

static inline float dot_f32(const float *restrict a, const float *restrict b, int n) {
    float s = 0.0f;
    for (int d = 0; d < n; d++) s += a[d] * b[d];
    return s;
}

static inline void axpy_f32(float *restrict y, float a, const float *restrict x, int n) {
    for (int d = 0; d < n; d++) y[d] += a * x[d];
}

/* Vectors of 16 floats (GCC/clang vector extensions): one AVX-512 register, two AVX or four
 * SSE registers, whichever the clone is compiled for. Loops over plain float arrays left
 * their partial sums on the stack; these stay in registers. Heads of a multiple of 16. */
#if defined(__GNUC__)
#define ATTN_VEC 1
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4), may_alias)); /* unaligned loads */
typedef float v4 __attribute__((vector_size(16)));
enum { VEC_MAX = 256 / 16 }; /* head_dim <= 256 */

/* macros and pointers, not vector arguments: those would change the ABI between clones */
#define ld16(p) (*(const v16u *)(p))

static inline float hsum16(const v16 *a) {
    v4 p[4];
    memcpy(p, a, sizeof p);
    v4 s = (p[0] + p[1]) + (p[2] + p[3]);
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* sc[g * len + t] = q_g . (K row lo + t) for the group's heads, hd = 16 * nv */
static inline void scores_vec(float *restrict sc, const float *restrict q, const wg_tensor *k_cache, size_t col,
                              int lo, int len, int group, int nv) {
    for (int t = 0; t < len; t++) {
        const float *k = (const float *)cpu_row(k_cache, lo + t) + col;
        v16 kv[VEC_MAX];
        for (int i = 0; i < nv; i++) kv[i] = ld16(k + 16 * i);
        for (int g = 0; g < group; g++) {
            const float *qg = q + (size_t)g * 16 * (size_t)nv;
            v16 acc = ld16(qg) * kv[0];
            for (int i = 1; i < nv; i++) acc += ld16(qg + 16 * i) * kv[i];
            sc[(size_t)g * (size_t)len + (size_t)t] = hsum16(&acc);
        }
    }
}

/* acc = sum over t of w[t] * (V row lo + t), hd = 16 * nv */
static inline void weighted_rows_vec(float *restrict acc, const float *restrict w, const wg_tensor *v, size_t col,
                                     int lo, int len, int nv) {
    v16 a[VEC_MAX];
    for (int i = 0; i < nv; i++) a[i] = (v16){0};
    for (int t = 0; t < len; t++) {
        const float *x = (const float *)cpu_row(v, lo + t) + col;
        const v16 wt = (v16){0} + w[t];
        for (int i = 0; i < nv; i++) a[i] += wt * ld16(x + 16 * i);
    }
    for (int i = 0; i < nv; i++) memcpy(acc + 16 * i, &a[i], sizeof a[i]);
}
#endif

/* e^x for x <= 0 within 2 ulp, in straight-line code the compiler vectorises:
 * x = k ln2 + f with |f| <= ln2 / 2, e^f by a degree-6 polynomial, 2^k from the exponent bits. */
static inline float exp_nonpos(float x) {
    x = x < -87.0f ? -87.0f : x; /* 2^k stays a normal float */
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float r = x * 1.44269504f + shifter;
    float k = r - shifter;
    int32_t ki;
    memcpy(&ki, &r, sizeof ki);
    ki -= 0x4B400000; /* the bits of the shifter */
    float f = x - k * 0.693359375f + k * 2.12194440e-4f; /* ln2 in two parts */
    float p = 1.9875691500e-4f;
    p = p * f + 1.3981999507e-3f;
    p = p * f + 8.3334519073e-3f;
    p = p * f + 4.1665795894e-2f;
    p = p * f + 1.6666665459e-1f;
    p = p * f + 5.0000001201e-1f;
    float y = p * f * f + f + 1.0f;
    int32_t bits = (ki + 127) << 23;
    float two_k;
    memcpy(&two_k, &bits, sizeof two_k);
    return y * two_k;
}

ATTN_CLONES
static void attention_items(void *arg, int64_t it0, int64_t it1, int tid) {
    const attn_job *j = arg;
    const int hd = j->head_dim, group = j->group, nkv = j->n_head_kv;
    float *sc = j->scores + (size_t)tid * (size_t)group * (size_t)j->chunk;
    for (int64_t it = it0; it < it1; it++) {
        const int c = (int)(it % j->n_chunks), kvh = (int)(it / j->n_chunks % nkv), i = (int)(it / j->n_chunks / nkv);
        const int pos = j->pos0 + i;
        const int first = j->window > 0 && pos - j->window + 1 > 0 ? pos - j->window + 1 : 0;
        const int lo = first > c * j->chunk ? first : c * j->chunk;
        const int hi = pos + 1 < (c + 1) * j->chunk ? pos + 1 : (c + 1) * j->chunk; /* [lo, hi) */
        const int len = hi - lo;
        const float *q = (const float *)cpu_row(j->q, j->row0 + i) + (size_t)kvh * (size_t)group * (size_t)hd;
        /* per query head h = kvh * group + g: the weighted sum of V it accumulates (its output
         * row, or the values of its partial record) and the record's (max, sum) header */
        float *acc[64], *hdr[64];
        for (int g = 0; g < group; g++) {
            int h = kvh * group + g;
            if (j->part) {
                hdr[g] = j->part + (((size_t)i * (size_t)j->n_head + (size_t)h) * (size_t)j->n_chunks + (size_t)c) *
                                       (size_t)(hd + 2);
                hdr[g][0] = -INFINITY;
                hdr[g][1] = 0.0f;
                acc[g] = hdr[g] + 2;
            } else {
                hdr[g] = NULL;
                acc[g] = (float *)cpu_row(j->out, j->row0 + i) + (size_t)h * (size_t)hd;
            }
            memset(acc[g], 0, (size_t)hd * sizeof(float));
        }
        if (len <= 0) continue;
        /* scores: each K row once for the whole group */
        const size_t col = (size_t)kvh * (size_t)hd;
#ifdef ATTN_VEC
        if (hd == 64)
            scores_vec(sc, q, j->k_cache, col, lo, len, group, 4);
        else if (hd % 16 == 0 && hd <= 256)
            scores_vec(sc, q, j->k_cache, col, lo, len, group, hd / 16);
        else
#endif
            for (int t = 0; t < len; t++) {
                const float *k = (const float *)cpu_row(j->k_cache, lo + t) + col;
                for (int g = 0; g < group; g++)
                    sc[(size_t)g * (size_t)len + (size_t)t] = dot_f32(q + (size_t)g * hd, k, hd);
            }
        for (int g = 0; g < group; g++)
            for (int t = 0; t < len; t++) sc[(size_t)g * (size_t)len + (size_t)t] *= j->scale;
        float inv[64];
        for (int g = 0; g < group; g++) {
            float *s = sc + (size_t)g * (size_t)len;
            float mx = -INFINITY;
            for (int t = 0; t < len; t++) mx = s[t] > mx ? s[t] : mx;
            float sum = 0.0f;
            if (j->exact) {
                for (int t = 0; t < len; t++) sum += (s[t] = expf(s[t] - mx));
            } else {
                for (int t = 0; t < len; t++) s[t] = exp_nonpos(s[t] - mx);
                for (int t = 0; t < len; t++) sum += s[t];
            }
            if (hdr[g]) {
                hdr[g][0] = mx;
                hdr[g][1] = sum;
                inv[g] = 1.0f;
            } else {
                inv[g] = 1.0f / sum;
            }
        }
        /* weighted V, head by head: the chunk's V rows stay in cache for the next head */
        for (int g = 0; g < group; g++) {
            float *w = sc + (size_t)g * (size_t)len;
            for (int t = 0; t < len; t++) w[t] *= inv[g];
#ifdef ATTN_VEC
            if (hd == 64) {
                weighted_rows_vec(acc[g], w, j->v_cache, col, lo, len, 4);
                continue;
            }
            if (hd % 16 == 0 && hd <= 256) {
                weighted_rows_vec(acc[g], w, j->v_cache, col, lo, len, hd / 16);
                continue;
            }
#endif
            for (int t = 0; t < len; t++) axpy_f32(acc[g], w[t], (const float *)cpu_row(j->v_cache, lo + t) + col, hd);
        }
    }
}

/* Merges the chunks of (token, head) items [it0, it1). */
ATTN_CLONES
static void attention_merge(void *arg, int64_t it0, int64_t it1, int tid) {
    (void)tid;
    const attn_job *j = arg;
    const int hd = j->head_dim;
    for (int64_t it = it0; it < it1; it++) {
        const int i = (int)(it / j->n_head), h = (int)(it % j->n_head);
        const float *r = j->part + (size_t)it * (size_t)j->n_chunks * (size_t)(hd + 2);
        float *o = (float *)cpu_row(j->out, j->row0 + i) + (size_t)h * (size_t)hd;
        float mx = -INFINITY;
        for (int c = 0; c < j->n_chunks; c++)
            if (r[(size_t)c * (hd + 2) + 1] > 0.0f && r[(size_t)c * (hd + 2)] > mx) mx = r[(size_t)c * (hd + 2)];
        float sum = 0.0f;
        memset(o, 0, (size_t)hd * sizeof(float));
        for (int c = 0; c < j->n_chunks; c++) {
            const float *rc = r + (size_t)c * (size_t)(hd + 2);
            if (rc[1] <= 0.0f) continue; /* no position in this chunk */
            float w = expf(rc[0] - mx);
            sum += w * rc[1];
            axpy_f32(o, w, rc + 2, hd);
        }
        const float inv = 1.0f / sum;
        for (int d = 0; d < hd; d++) o[d] *= inv;
    }
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void cpu_op_attention(wg_backend *b, const wg_tensor *q, const wg_tensor *k_cache, const wg_tensor *v_cache,
                      int pos0, int n, int n_head, int n_head_kv, int head_dim, int window, wg_tensor *out,
                      int row0) {
    cpu_ctx *c = b->ctx;
    if (n <= 0) return;
    if (n_head_kv <= 0 || n_head % n_head_kv != 0 || n_head / n_head_kv > 64 || head_dim <= 0) {
        cpu_fail(b, "attention needs query heads a multiple (at most 64x) of the KV heads");
        return;
    }
    const int threads = wg_threadpool_size(c->pool), group = n_head / n_head_kv;
    const int span = pos0 + n; /* positions the last token sees */
    /* Enough chunks for ~4 items per thread, none shorter than 32 positions. */
    int64_t n_chunks = ceil_div(4 * (int64_t)threads, (int64_t)n * n_head_kv);
    if (n_chunks > ceil_div(span, 32)) n_chunks = ceil_div(span, 32);
    if (n_chunks < 1) n_chunks = 1;
    const int chunk = (int)ceil_div(span, n_chunks);
    n_chunks = ceil_div(span, chunk);
    const size_t score_floats = (size_t)threads * (size_t)group * (size_t)chunk;
    const size_t part_floats = n_chunks > 1 ? (size_t)n * (size_t)n_head * (size_t)n_chunks * (size_t)(head_dim + 2) : 0;
    const size_t need = score_floats + part_floats;
    if (need > c->scratch_floats) {
        float *s = realloc(c->scratch, need * sizeof(float));
        if (!s) {
            cpu_fail(b, "out of memory for attention scores");
            return;
        }
        c->scratch = s;
        c->scratch_floats = need;
    }
    attn_job j = {q, k_cache, v_cache, out, pos0, n, n_head, n_head_kv, head_dim, window, row0, group, chunk,
                  (int)n_chunks, c->exact, c->scratch, part_floats ? c->scratch + score_floats : NULL,
                  1.0f / sqrtf((float)head_dim)};
    const int64_t items = (int64_t)n * n_head_kv * n_chunks;
    /* a short context is not worth waking the pool for */
    const int64_t grain = (int64_t)span * n * n_head * head_dim < 65536 ? items : 1;
    wg_threadpool_run(c->pool, attention_items, &j, items, grain);
    if (j.part) {
        const int64_t heads = (int64_t)n * n_head;
        wg_threadpool_run(c->pool, attention_merge, &j, heads, heads < 4 * (int64_t)threads ? heads : heads / (4 * threads));
    }
}
