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

/* The kernels are compiled for the x86 levels of the int8 kernels (q8_act.h) and picked
 * by the backend's level, so WGLLM_CPU_ISA tests each copy and the binary stays portable.
 * Everything below the entry points is inlined into each copy. */
#if defined(__GNUC__)
#define ATTN_INLINE static inline __attribute__((always_inline))
#else
#define ATTN_INLINE static inline
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

ATTN_INLINE float dot_f32(const float *restrict a, const float *restrict b, int n) {
    float s = 0.0f;
    for (int d = 0; d < n; d++) s += a[d] * b[d];
    return s;
}

ATTN_INLINE void axpy_f32(float *restrict y, float a, const float *restrict x, int n) {
    for (int d = 0; d < n; d++) y[d] += a * x[d];
}

/* Vectors of W floats (GCC/clang vector extensions), W the register width of the level's
 * copy: 4 (SSE), 8 (AVX2), 16 (AVX-512); wider generic vectors are split through memory.
 * Loops over plain float arrays left their partial sums on the stack; these stay in
 * registers. Macros and pointers, not vector arguments, which would change the ABI. */
#if defined(__GNUC__)
#define ATTN_VEC 1
#define ATTN_VEC_KERNELS(W)                                                                                     \
    typedef float v##W __attribute__((vector_size(4 * (W))));                                                   \
    typedef float v##W##u __attribute__((vector_size(4 * (W)), aligned(4), may_alias)); /* unaligned loads */ \
                                                                                                                \
    ATTN_INLINE float hsum##W(const v##W *a) {                                                                  \
        float s[W];                                                                                             \
        memcpy(s, a, sizeof s);                                                                                 \
        for (int w = (W) / 2; w > 0; w /= 2)                                                                    \
            for (int l = 0; l < w; l++) s[l] += s[l + w];                                                       \
        return s[0];                                                                                            \
    }                                                                                                           \
                                                                                                                \
    /* sc[g * len + t] = q_g . (K row lo + t) for the group's heads; hd = W * nv <= 256 */                     \
    __attribute__((unused)) ATTN_INLINE void scores_vec##W(float *restrict sc, const float *restrict q,        \
                                                           const wg_tensor *k_cache,                            \
                                   size_t col, int lo, int len, int group, int nv) {                            \
        for (int t = 0; t < len; t++) {                                                                         \
            const float *k = (const float *)cpu_row(k_cache, lo + t) + col;                                     \
            v##W kv[256 / (W)];                                                                                 \
            for (int i = 0; i < nv; i++) kv[i] = *(const v##W##u *)(k + (W) * i);                              \
            for (int g = 0; g < group; g++) {                                                                   \
                const float *qg = q + (size_t)g * (W) * (size_t)nv;                                             \
                v##W acc = *(const v##W##u *)qg * kv[0];                                                        \
                for (int i = 1; i < nv; i++) acc += *(const v##W##u *)(qg + (W) * i) * kv[i];                   \
                sc[(size_t)g * (size_t)len + (size_t)t] = hsum##W(&acc);                                        \
            }                                                                                                   \
        }                                                                                                       \
    }                                                                                                           \
                                                                                                                \
    /* acc = sum over t of w[t] * (V row lo + t); hd = W * nv <= 256 */                                        \
    ATTN_INLINE void weighted_rows_vec##W(float *restrict acc, const float *restrict w, const wg_tensor *v,     \
                                          size_t col, int lo, int len, int nv) {                                \
        v##W a[256 / (W)];                                                                                      \
        for (int i = 0; i < nv; i++) a[i] = (v##W){0};                                                          \
        for (int t = 0; t < len; t++) {                                                                         \
            const float *x = (const float *)cpu_row(v, lo + t) + col;                                           \
            const v##W wt = (v##W){0} + w[t];                                                                   \
            for (int i = 0; i < nv; i++) a[i] += wt * *(const v##W##u *)(x + (W) * i);                         \
        }                                                                                                       \
        for (int i = 0; i < nv; i++) memcpy(acc + (W) * i, &a[i], sizeof a[i]);                                 \
    }
ATTN_VEC_KERNELS(4)
ATTN_VEC_KERNELS(8)
ATTN_VEC_KERNELS(16)

/* Sixteen dot products' partial vectors summed at once: a tree of shuffles and adds
 * (45 operations for 16 scores against a full reduction of each). out[i] = sum of v[i]. */
typedef int v16i __attribute__((vector_size(64)));
#if defined(__clang__)
#define SHUF16(a, b, ...) __builtin_shufflevector((a), (b), __VA_ARGS__)
#else
#define SHUF16(a, b, ...) __builtin_shuffle((a), (b), (v16i){__VA_ARGS__})
#endif
ATTN_INLINE void reduce16x16(const v16 *v, float *out) {
    v16 r[8], s[4], u[2];
    for (int p = 0; p < 8; p++) /* [partials of v[2p] | of v[2p+1]], 8 each */
        r[p] = SHUF16(v[2 * p], v[2 * p + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
               SHUF16(v[2 * p], v[2 * p + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    for (int p = 0; p < 4; p++) /* 4 each */
        s[p] = SHUF16(r[2 * p], r[2 * p + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
               SHUF16(r[2 * p], r[2 * p + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    for (int p = 0; p < 2; p++) /* 2 each */
        u[p] = SHUF16(s[2 * p], s[2 * p + 1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29) +
               SHUF16(s[2 * p], s[2 * p + 1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
    const v16 w = SHUF16(u[0], u[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) +
                  SHUF16(u[0], u[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    memcpy(out, &w, sizeof w);
}

/* scores_vec16 with the (position, head) dot products reduced sixteen at a time. */
ATTN_INLINE void scores_vec16_batched(float *restrict sc, const float *restrict q, const wg_tensor *k_cache,
                                      size_t col, int lo, int len, int group, int nv) {
    v16 pend[16];
    float *dst[16], sums[16];
    int k = 0;
    for (int t = 0; t < len; t++) {
        const float *kr = (const float *)cpu_row(k_cache, lo + t) + col;
        v16 kv[256 / 16];
        for (int i = 0; i < nv; i++) kv[i] = *(const v16u *)(kr + 16 * i);
        for (int g = 0; g < group; g++) {
            const float *qg = q + (size_t)g * 16 * (size_t)nv;
            v16 acc = *(const v16u *)qg * kv[0];
            for (int i = 1; i < nv; i++) acc += *(const v16u *)(qg + 16 * i) * kv[i];
            pend[k] = acc;
            dst[k] = sc + (size_t)g * (size_t)len + (size_t)t;
            if (++k == 16) {
                reduce16x16(pend, sums);
                for (int i = 0; i < 16; i++) *dst[i] = sums[i];
                k = 0;
            }
        }
    }
    for (int i = 0; i < k; i++) *dst[i] = hsum16(&pend[i]);
}

/* The scores and the weighted V of hd % 16 == 0, hd <= 256, at vector width vw. */
ATTN_INLINE void scores_vec(int vw, float *restrict sc, const float *restrict q, const wg_tensor *k_cache, size_t col,
                            int lo, int len, int group, int hd) {
    if (vw == 16)
        scores_vec16_batched(sc, q, k_cache, col, lo, len, group, hd / 16);
    else if (vw == 8)
        scores_vec8(sc, q, k_cache, col, lo, len, group, hd / 8);
    else
        scores_vec4(sc, q, k_cache, col, lo, len, group, hd / 4);
}

ATTN_INLINE void weighted_rows_vec(int vw, float *restrict acc, const float *restrict w, const wg_tensor *v, size_t col,
                                   int lo, int len, int hd) {
    if (vw == 16)
        weighted_rows_vec16(acc, w, v, col, lo, len, hd / 16);
    else if (vw == 8)
        weighted_rows_vec8(acc, w, v, col, lo, len, hd / 8);
    else
        weighted_rows_vec4(acc, w, v, col, lo, len, hd / 4);
}
#endif

/* e^x for x <= 0 within 2 ulp, in straight-line code the compiler vectorises:
 * x = k ln2 + f with |f| <= ln2 / 2, e^f by a degree-6 polynomial, 2^k from the exponent bits. */
ATTN_INLINE float exp_nonpos(float x) {
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

/* vw: the vector width of the copy (a constant in each) */
ATTN_INLINE void attention_items(void *arg, int64_t it0, int64_t it1, int tid, int vw) {
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
            scores_vec(vw, sc, q, j->k_cache, col, lo, len, group, 64);
        else if (hd % 16 == 0 && hd <= 256)
            scores_vec(vw, sc, q, j->k_cache, col, lo, len, group, hd);
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
                weighted_rows_vec(vw, acc[g], w, j->v_cache, col, lo, len, 64);
                continue;
            }
            if (hd % 16 == 0 && hd <= 256) {
                weighted_rows_vec(vw, acc[g], w, j->v_cache, col, lo, len, hd);
                continue;
            }
#endif
            for (int t = 0; t < len; t++) axpy_f32(acc[g], w[t], (const float *)cpu_row(j->v_cache, lo + t) + col, hd);
        }
    }
}

/* Merges the chunks of (token, head) items [it0, it1). */
ATTN_INLINE void attention_merge(void *arg, int64_t it0, int64_t it1, int tid, int vw) {
    (void)tid, (void)vw;
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

/* The entry points per level: fn##_scalar, fn##_avx2, fn##_avx512, and fn##_levels. */
#define ATTN_LEVEL(fn, sfx, vw, attr)                                              \
    attr static void fn##sfx(void *arg, int64_t it0, int64_t it1, int tid) {       \
        fn(arg, it0, it1, tid, vw);                                                 \
    }
#if defined(WGLLM_X86_Q8_DOTS)
#define ATTN_LEVELS(fn)                                                                                  \
    ATTN_LEVEL(fn, _scalar, 4, )                                                                         \
    ATTN_LEVEL(fn, _avx2, 8, __attribute__((target("avx2,fma,f16c"))))                                   \
    ATTN_LEVEL(fn, _avx512, 16, __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl"))))      \
    static const wg_range_fn fn##_levels[3] = {fn##_scalar, fn##_avx2, fn##_avx512};
#else
#define ATTN_LEVELS(fn)             \
    ATTN_LEVEL(fn, _scalar, 4, )    \
    static const wg_range_fn fn##_levels[1] = {fn##_scalar};
#endif
ATTN_LEVELS(attention_items)
ATTN_LEVELS(attention_merge)

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
    /* AVX-512 VNNI adds nothing to f32 code: the AVX-512 copy */
    const int n_levels = (int)(sizeof attention_items_levels / sizeof attention_items_levels[0]);
    const int level = c->isa < n_levels ? c->isa : n_levels - 1;
    wg_threadpool_run(c->pool, attention_items_levels[level], &j, items, grain);
    if (j.part) {
        const int64_t heads = (int64_t)n * n_head;
        wg_threadpool_run(c->pool, attention_merge_levels[level], &j, heads, heads < 4 * (int64_t)threads ? heads : heads / (4 * threads));
    }
}
