/* The WebGPU backend's ops: each checks its operands, fills the kernel's parameter block
 * (the struct Params of kernels/<name>.wgsl, field for field) and records dispatches. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/webgpu/wgpu_autotune.h"
#include "backend/webgpu/wgpu_internal.h"
#include "quant/types.h"

#define MATVEC_ROWS_PER_GROUP ((uint64_t)WGB_MATVEC_WG / WGB_MATVEC_TPR)
/* Rows a workgroup of the int8 kernels (their shapes: wgpu_pipelines.h) */
#define Q8_MATVEC_ROWS ((uint64_t)WGB_Q8_ROWS)                /* matvec_q8, matvec_q8_qkv */
#define Q8_SWIGLU_ROWS ((uint64_t)WGB_Q8_SW_RG * WGB_Q8_ROWS) /* matvec_q8_swiglu: whole int8 blocks */
_Static_assert(WGB_Q8_SW_RG * WGB_Q8_ROWS % 32 == 0, "matvec_q8_swiglu writes whole int8 blocks of its rows");
#define Q8_NT_ROWS ((uint64_t)WGB_Q8_NT_ROWS)                /* matvec_q8_nt, matvec_q8_nt_qkv */
#define Q8_NT_SWIGLU_ROWS ((uint64_t)WGB_Q8_NT_ROWS / 2)       /* matvec_q8_nt_swiglu: of each matrix */
/* From this many tokens on, the products on int8 x use the tiled kernel, below it the
 * matvecs (which read the weights once per 8 tokens). The tiled kernel's 64-token tiles
 * need many tokens to fill a big GPU: at 16 tokens it ran at 0.43x of two nt passes on an
 * H200 (7B shapes, 248 vs 572 tok/s for 16 streams). */
#define Q8_MATMUL_MIN_TOKENS 33
#define ATTN_SPLIT ((uint32_t)WGB_ATTN_WG) /* positions per split: one chunk of kernels/attention.wgsl */
#define ATTN_BUSY_PAIRS 256      /* (token, head) pairs that keep the GPU busy without splits */

static uint64_t groups_of(uint64_t items, uint64_t per_group) { return (items + per_group - 1) / per_group; }

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* An activation in one binding. Outputs split over several (output_create) are taken
 * only where is_out is asked: matmul's out, copy_rows and argmax. */
static bool is_act(const wg_tensor *t) { return t && !wgb_t(t)->weight && wgb_t(t)->n_parts == 1; }
static bool is_out(const wg_tensor *t) { return t && !wgb_t(t)->weight; }

/* An operand `in` bound next to the output buffer `out` would be bound twice in one
 * dispatch (read-only and read-write), which WebGPU forbids: copy it to scratch first. */
static bool unaliased(wgb_ctx *c, int slot, const wg_tensor *in, const wg_tensor *out, wgb_bind *res) {
    *res = wgb_act(in);
    if (res->id != wgb_act(out).id) return true;
    uint64_t count = res->size / 4;
    wgb_bind s;
    if (!wgb_scratch(c, slot, res->size, &s)) return false;
    uint32_t p[4] = {(uint32_t)count, 0, 0, 0};
    wgb_bind bb[2] = {*res, s};
    wgb_dispatch_linear(c, WGB_K_COPY, p, sizeof p, bb, groups_of(count, 256));
    *res = s;
    return true;
}

/* Rows [0, n) of an activation with at least `len` elements per row? */
static bool fits(wgb_ctx *c, const wg_tensor *t, int64_t n, int64_t row_len, const char *op) {
    if (!is_act(t) || n < 0 || n > t->ne1 || row_len > t->ne0) {
        wgb_fail(c, "webgpu backend: %s: operand shape [%lld, %lld] too small for %lld rows of %lld", op,
                 t ? (long long)t->ne0 : 0LL, t ? (long long)t->ne1 : 0LL, (long long)n, (long long)row_len);
        return false;
    }
    return true;
}

void wgb_op_get_rows(wg_backend *b, const wg_tensor *table, const int32_t *ids, int n, wg_tensor *out) {
    wgb_ctx *c = wgb_ctx_of(b);
    const wgb_tensor *tt = wgb_t(table);
    int fmt = wgb_format_of(table->type);
    if (!tt->weight || fmt < 0) {
        wgb_fail(c, "webgpu backend: get_rows needs a weight table");
        return;
    }
    if (!fits(c, out, n, table->ne0, "get_rows")) return;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= table->ne1) {
            wgb_fail(c, "webgpu backend: get_rows: id %d outside [0, %lld)", ids[i], (long long)table->ne1);
            return;
        }
    }
    /* Consecutive ids that fall in the same binding share a dispatch. */
    for (int i = 0; i < n;) {
        int part = 0;
        while (ids[i] >= tt->parts[part].row0 + tt->parts[part].rows) part++;
        const wgb_part *p = &tt->parts[part];
        struct {
            uint32_t ne0, row_bytes, out_row0, n_ids, out_stride, pad[3];
            uint32_t ids[WGB_GET_ROWS_MAX_IDS];
        } prm;
        memset(&prm, 0, sizeof prm);
        prm.ne0 = (uint32_t)table->ne0;
        prm.row_bytes = (uint32_t)tt->row_bytes;
        prm.out_row0 = (uint32_t)i;
        prm.out_stride = (uint32_t)out->ne0;
        int j = i;
        while (j < n && j - i < WGB_GET_ROWS_MAX_IDS && ids[j] >= p->row0 && ids[j] < p->row0 + p->rows) {
            prm.ids[j - i] = (uint32_t)(ids[j] - p->row0);
            j++;
        }
        prm.n_ids = (uint32_t)(j - i);
        wgb_bind bb[2] = {p->bind, wgb_act(out)};
        wgb_dispatch(c, WGB_K_GET_ROWS + fmt, &prm, sizeof prm, bb, prm.n_ids, 1);
        i = j;
    }
}

/* count floats from `from` (at element so) to `to` (at element dof); through scratch when
 * both are one buffer (a memmove). */
static void copy_words(wgb_ctx *c, wgb_bind from, uint64_t so, wgb_bind to, uint64_t dof, uint64_t count) {
    if (from.id == to.id) {
        wgb_bind s;
        if (!wgb_scratch(c, 0, count * 4, &s)) return;
        uint32_t p[4] = {(uint32_t)count, (uint32_t)so, 0, 0};
        wgb_bind bb[2] = {from, s};
        wgb_dispatch_linear(c, WGB_K_COPY, p, sizeof p, bb, groups_of(count, 256));
        from = s;
        so = 0;
    }
    uint32_t p[4] = {(uint32_t)count, (uint32_t)so, (uint32_t)dof, 0};
    wgb_bind bb[2] = {from, to};
    wgb_dispatch_linear(c, WGB_K_COPY, p, sizeof p, bb, groups_of(count, 256));
}

void wgb_op_copy_rows(wg_backend *b, const wg_tensor *src, int64_t src_row0, int n, wg_tensor *dst,
                      int64_t dst_row0) {
    wgb_ctx *c = wgb_ctx_of(b);
    if (n <= 0) return;
    if (!is_out(src) || !is_out(dst) || src_row0 < 0 || dst_row0 < 0 || src_row0 + n > src->ne1 ||
        (uint64_t)n * (uint64_t)src->ne0 > (uint64_t)(dst->ne1 - dst_row0) * (uint64_t)dst->ne0) {
        wgb_fail(c, "webgpu backend: copy_rows outside its tensors");
        return;
    }
    if (wgb_t(src)->n_parts == 1 && wgb_t(dst)->n_parts == 1) { /* rows of src->ne0 packed in dst */
        copy_words(c, wgb_act(src), (uint64_t)src_row0 * (uint64_t)src->ne0, wgb_act(dst),
                   (uint64_t)dst_row0 * (uint64_t)dst->ne0, (uint64_t)n * (uint64_t)src->ne0);
        return;
    }
    if (src->ne0 != dst->ne0) {
        wgb_fail(c, "webgpu backend: copy_rows between split tensors of other row lengths");
        return;
    }
    /* a split output: runs of rows that stay in one part of each */
    for (int64_t k, sl = 0, dl = 0; n > 0; src_row0 += k, dst_row0 += k, n -= (int)k) {
        const wgb_part *sp = wgb_part_of(src, src_row0, &sl), *dp = wgb_part_of(dst, dst_row0, &dl);
        k = n;
        if (k > sp->rows - sl) k = sp->rows - sl;
        if (k > dp->rows - dl) k = dp->rows - dl;
        copy_words(c, sp->bind, (uint64_t)sl * (uint64_t)src->ne0, dp->bind, (uint64_t)dl * (uint64_t)dst->ne0,
                   (uint64_t)k * (uint64_t)src->ne0);
    }
}

void wgb_op_rms_norm(wg_backend *b, const wg_tensor *x, const wg_tensor *w, float eps, int n, wg_tensor *out) {
    wgb_ctx *c = wgb_ctx_of(b);
    if (n <= 0) return;
    if (!fits(c, x, n, x->ne0, "rms_norm") || !fits(c, out, n, x->ne0, "rms_norm")) return;
    /* an f32 vector, as a weight or an activation, whose length divides the row */
    if (w->type != WG_TYPE_F32 || w->ne0 <= 0 || x->ne0 % w->ne0 != 0 || (!wgb_t(w)->weight && !is_act(w))) {
        wgb_fail(c, "webgpu backend: rms_norm weight must be f32 of a length dividing %lld", (long long)x->ne0);
        return;
    }
    const int64_t groups = x->ne0 / w->ne0;
    if ((uint32_t)n > c->max_groups || (uint64_t)groups > c->max_groups) {
        wgb_fail(c, "webgpu backend: rms_norm of %d rows exceeds the dispatch limit", n);
        return;
    }
    const bool in_place = x == out;
    wgb_bind xb, wb;
    if (wgb_t(w)->weight) wb = wgb_t(w)->parts[0].bind;
    else if (!unaliased(c, 1, w, out, &wb)) return;
    if (c->q4_int8 && x->ne0 % 32 == 0 && out->ne0 == x->ne0 && groups == 1 && !in_place) {
        /* also leave out's int8 copy for the Q4_0 products that follow */
        if (!unaliased(c, 0, x, out, &xb)) return;
        wgb_bind xq, xs;
        const int64_t k = x->ne0;
        if (!wgb_scratch(c, WGB_SCRATCH_XQ, (uint64_t)k * (uint64_t)n, &xq) ||
            !wgb_scratch(c, WGB_SCRATCH_XS, (uint64_t)k / 8 * (uint64_t)n, &xs))
            return;
        uint32_t p[4] = {(uint32_t)k, f32_bits(eps), 0, 0};
        wgb_bind bb[5] = {xb, wb, wgb_act(out), xq, xs};
        bool was_failed = c->failed;
        wgb_dispatch(c, WGB_K_RMS_NORM_Q8, p, sizeof p, bb, (uint32_t)groups_of((uint64_t)k / 4, 256), (uint32_t)n);
        c->q8[WGB_Q8_SLOT_X] = (wgb_q8_tag){was_failed || c->failed || c->dev->lost ? 0 : wgb_act(out).id, k, n};
        return;
    }
    /* in place: the kernel reads Y itself; X gets the (read-only) weight, never read */
    if (in_place) xb = wb;
    else if (!unaliased(c, 0, x, out, &xb)) return;
    struct {
        uint32_t d, x_stride, out_stride, eps, in_place, pad[3];
    } p = {(uint32_t)w->ne0, (uint32_t)x->ne0, (uint32_t)out->ne0, f32_bits(eps), in_place, {0, 0, 0}};
    wgb_bind bb[3] = {xb, wb, wgb_act(out)};
    wgb_dispatch(c, WGB_K_RMS_NORM, &p, sizeof p, bb, (uint32_t)groups, (uint32_t)n);
}

/* n rows of x as int8 blocks of 32 (one f32 scale each) in scratch, made once while x
 * stays unchanged (see wgb_q8_tag): the q, k, v (and gate, up) matmuls of a layer share
 * it. Found in slot HIDDEN where hidden_ok (the gate/up kernel made it there), else made
 * in slot X (XQ/XS). */
static bool ensure_q8_in(wgb_ctx *c, wgb_bind xb, int64_t k, int n, bool hidden_ok, wgb_bind *xq, wgb_bind *xs) {
    const wgb_q8_tag *h = &c->q8[WGB_Q8_SLOT_HIDDEN];
    if (hidden_ok && h->id == xb.id && h->k == k && h->n == n)
        return wgb_scratch(c, WGB_SCRATCH_XQ_H, (uint64_t)k * (uint64_t)n, xq) &&
               wgb_scratch(c, WGB_SCRATCH_XS_H, (uint64_t)k / 8 * (uint64_t)n, xs);
    if (!wgb_scratch(c, WGB_SCRATCH_XQ, (uint64_t)k * (uint64_t)n, xq) ||
        !wgb_scratch(c, WGB_SCRATCH_XS, (uint64_t)k / 8 * (uint64_t)n, xs))
        return false;
    const wgb_q8_tag *t = &c->q8[WGB_Q8_SLOT_X];
    if (t->id != xb.id || t->k != k || t->n != n) {
        uint32_t p[4] = {(uint32_t)k, (uint32_t)n, 0, 0}; /* k, n, x_off */
        wgb_bind bb[3] = {xb, *xq, *xs};
        bool was_failed = c->failed;
        wgb_dispatch_linear(c, WGB_K_QUANTIZE_X_Q8, p, sizeof p, bb,
                            groups_of((uint64_t)k / 4 * (uint64_t)n, WGB_Q8_QUANT_WG));
        /* cache only what was surely recorded */
        c->q8[WGB_Q8_SLOT_X] = (wgb_q8_tag){was_failed || c->failed || c->dev->lost ? 0 : xb.id, k, n};
    }
    return true;
}

static bool ensure_q8(wgb_ctx *c, wgb_bind xb, int64_t k, int n, wgb_bind *xq, wgb_bind *xs) {
    return ensure_q8_in(c, xb, k, n, true, xq, xs);
}

/* How the int8 products of a step go (decode_route): the batch tiles, nothing chosen (one
 * token, a prompt: nt passes of 8 where they run), or passes through the nt kernels of a
 * width index (WGB_Q8_NT_WIDTHS) >= 0. */
enum { ROUTE_TILES = -2, ROUTE_NONE = -1 };
#define NT_TOKENS(w, r, l) w,
static const int k_nt_tokens[WGB_Q8_NT_WIDTH_COUNT] = {WGB_Q8_NT_WIDTHS(NT_TOKENS)};
#undef NT_TOKENS
/* the widths: passes of 8 (the first candidate of both kinds), then the decode kind's
 * candidates after the batch tiles, then the few kind's others */
_Static_assert(1 + ((int)WGB_TUNE_DECODE_CANDIDATES - 2) + ((int)WGB_TUNE_FEW_CANDIDATES - 1) ==
                   (int)WGB_Q8_NT_WIDTH_COUNT,
               "an nt width for each nt candidate");
#define NT_FEW_FIRST ((int)WGB_TUNE_DECODE_CANDIDATES - 1) /* the width of the few kind's second */

/* The nt width a route passes through (8 tokens for the others). */
static int nt_width(int route) { return route >= 0 ? route : 0; }

/* The route of the int8 products of a step of n tokens with weights of int8 format f (-1:
 * none): a batched decode step of 9-64 tokens takes the batch tiles or passes of 8, 16 or 32
 * tokens, and one of 2-8 tokens a pass of 8 in one of its group layouts, as measured on this
 * adapter (wgpu_autotune.h). The wider nt kernels are built here at their first use. */
static int decode_route(wgb_ctx *c, int f, int n) {
    /* the kernels' loops are shared by every int8 format: Q4_0's timing decides for all */
    if (f < 0 || n < 2 || n > WGB_Q8_BATCH_MAX_N) return ROUTE_NONE;
    int width = 0;
    if (n <= WGB_Q8_NT) {
        const int pick = wgb_autotune_pick(c, WGB_TUNE_Q4_0_FEW, n);
        width = pick > 0 && pick < WGB_TUNE_FEW_CANDIDATES ? NT_FEW_FIRST + pick - 1 : 0;
    } else if (wgb_q8_batch_takes(n)) {
        const int pick = wgb_autotune_pick(c, WGB_TUNE_Q4_0_DECODE, n);
        if (pick == WGB_TUNE_DECODE_BATCH) return ROUTE_TILES;
        width = pick > WGB_TUNE_DECODE_BATCH && pick < WGB_TUNE_DECODE_CANDIDATES ? pick - WGB_TUNE_DECODE_BATCH : 0;
    } else {
        return ROUTE_NONE;
    }
    char err[256];
    if (width && !wgb_pipelines_add_nt(c->dev, &c->pl, f, width, err, sizeof err)) {
        wgb_fail(c, "%s", err);
        return 0;
    }
    return width;
}

/* Quantized weights (int8 format f) times x rounded to int8 blocks, as llama.cpp does it:
 * integer dot products, so only the weights' bits are read at full width. One token: the
 * int8 matvec; a few (several sequences decoding together): the nt matvec, 8 (or 16 or 32,
 * as the autotune chose) tokens per weight read; from Q8_MATMUL_MIN_TOKENS on (prompts): the
 * tiled int8 matmul. */
static void q8_products(wgb_ctx *c, const wgb_tensor *wt, int f, int64_t k, int64_t m, wgb_bind xb, int n,
                        wgb_bind ob, bool accumulate) {
    const int route = decode_route(c, f, n); /* before ensure_q8: a first choice may measure */
    const bool prompt = n >= Q8_MATMUL_MIN_TOKENS && route == ROUTE_NONE;
    const int tile = prompt ? wgb_q8_prompt_tile(c, f, n) : 0; /* likewise */
    wgb_bind xq, xs;
    if (!ensure_q8(c, xb, k, n, &xq, &xs)) return;
    for (int i = 0; i < wt->n_parts; i++) {
        const wgb_part *part = &wt->parts[i];
        wgb_bind bb[4] = {part->bind, xq, xs, ob};
        if (route == ROUTE_TILES) { /* a batched decode step: the weights read once */
            wgb_q8_batch_matmul(c, f, bb, k, part->rows, part->row0, m, n, accumulate);
            continue;
        }
        if (prompt) { /* the prompt tiles, in the shape this adapter's autotune chose */
            wgb_q8_prompt_matmul(c, f, tile, bb, k, part->rows, part->row0, m, n, accumulate);
            continue;
        }
        if (n == 1) {
            uint32_t p[4] = {(uint32_t)k, (uint32_t)part->rows, (uint32_t)part->row0, accumulate}; /* k, m, y_off */
            wgb_dispatch_linear(c, WGB_K_Q8_MATVEC + f, p, sizeof p, bb,
                                groups_of((uint64_t)part->rows, Q8_MATVEC_ROWS));
            continue;
        }
        const int wi = nt_width(route), w = k_nt_tokens[wi];
        for (int t0 = 0; t0 < n; t0 += w) {
            int nt = n - t0 < w ? n - t0 : w;
            uint32_t p[8] = {(uint32_t)k, (uint32_t)part->rows, (uint32_t)(part->row0 + (int64_t)t0 * m), accumulate,
                             (uint32_t)nt, (uint32_t)m, (uint32_t)t0, 0}; /* ..., n, y_stride, x_tok0 */
            wgb_dispatch_linear(c, WGB_K_Q8_NT + wi * WGB_Q8F_COUNT + f, p, sizeof p, bb,
                                groups_of((uint64_t)part->rows, Q8_NT_ROWS));
        }
    }
}

/* The int8 format (WGB_Q8F_*) in which n rows of x times w go on int8 x (q8_products), or -1:
 * a weight format with int8 kernels and rows of whole units. The int8 products read x
 * through scratch, so x may be the output buffer. */
static int q8_format(const wgb_ctx *c, const wg_tensor *w) {
    const int f = wgb_q8_format_of(w->type);
    if (!c->q4_int8 || f < 0 || !c->pl.q8_built[f] || w->ne0 % wgb_q8_row_multiple(f)) return -1;
    return f;
}

/* Checks a matmul's operands: w a weight with kernels, x and out big enough for n rows. */
static bool matmul_ok(wgb_ctx *c, const wg_tensor *w, wgb_bind xb, int n, wgb_bind ob) {
    if (!wgb_t(w)->weight || wgb_format_of(w->type) < 0) {
        wgb_fail(c, "webgpu backend: matmul needs a weight");
        return false;
    }
    if ((uint64_t)n * (uint64_t)w->ne0 > xb.size / 4 || (uint64_t)n * (uint64_t)w->ne1 > ob.size / 4) {
        wgb_fail(c, "webgpu backend: matmul operands too small for [%lld, %lld] x %d", (long long)w->ne0,
                 (long long)w->ne1, n);
        return false;
    }
    return true;
}

/* out = W x, or out += W x. x rows of k floats, out rows of m floats, packed (as on the CPU).
 * x must not be the buffer of out, except on int8 x (q8_format). Otherwise the per-format
 * matvec for one token, else the f32 tiled matmul
 * (kernels/matmul.wgsl, decoding the weights into workgroup memory). */
static void matmul_into(wgb_ctx *c, const wg_tensor *w, wgb_bind xb, int n, wgb_bind ob, bool accumulate) {
    const wgb_tensor *wt = wgb_t(w);
    const int fmt = wgb_format_of(w->type);
    const int64_t k = w->ne0, m = w->ne1;
    const bool blocks = k % 32 == 0;
    const int f8 = q8_format(c, w);
    if (f8 >= 0) {
        q8_products(c, wt, f8, k, m, xb, n, ob, accumulate);
        return;
    }
    for (int i = 0; i < wt->n_parts; i++) {
        const wgb_part *p = &wt->parts[i];
        wgb_bind bb[3] = {p->bind, xb, ob};
        if (n == 1 && blocks) {
            uint32_t prm[8] = {(uint32_t)p->rows, (uint32_t)(k / 32), (uint32_t)wt->row_bytes, (uint32_t)p->row0,
                               accumulate, 0, 0, 0};
            wgb_dispatch_linear(c, WGB_K_MATVEC + fmt, prm, sizeof prm, bb,
                                groups_of((uint64_t)p->rows, MATVEC_ROWS_PER_GROUP));
        } else {
            uint32_t prm[8] = {(uint32_t)p->rows, (uint32_t)n,         (uint32_t)k,  (uint32_t)wt->row_bytes,
                               (uint32_t)p->row0, (uint32_t)m, blocks ? 1u : 0u, accumulate};
            uint64_t gx = groups_of((uint64_t)p->rows, WGB_MATMUL_TM), gy = groups_of((uint64_t)n, WGB_MATMUL_TN);
            if (gx > c->max_groups || gy > c->max_groups) {
                wgb_fail(c, "webgpu backend: matmul too large for one dispatch");
                return;
            }
            wgb_dispatch(c, WGB_K_MATMUL + fmt, prm, sizeof prm, bb, (uint32_t)gx, (uint32_t)gy);
        }
    }
}

/* out split over bindings (output_create): each part's rows from the same rows of x. The
 * kernels read x from the start of its binding, so the rows of later parts are copied to
 * scratch first (a small copy next to the product: x has k floats a row, out m). */
static void matmul_split_out(wgb_ctx *c, const wg_tensor *w, const wg_tensor *x, int n, wg_tensor *out,
                             bool accumulate) {
    const wgb_tensor *ot = wgb_t(out);
    const uint64_t k = (uint64_t)w->ne0;
    if (!wgb_t(w)->weight || wgb_format_of(w->type) < 0 || out->ne0 != w->ne1 || n > out->ne1 ||
        (uint64_t)n * k > wgb_act(x).size / 4) {
        wgb_fail(c, "webgpu backend: matmul operands do not fit [%lld, %lld] x %d", (long long)w->ne0,
                 (long long)w->ne1, n);
        return;
    }
    for (int i = 0; i < ot->n_parts && ot->parts[i].row0 < n; i++) {
        const wgb_part *p = &ot->parts[i];
        const int rows = (int)(n - p->row0 < p->rows ? n - p->row0 : p->rows);
        wgb_bind xb = wgb_act(x);
        if (p->row0 > 0) {
            wgb_bind s;
            if (!wgb_scratch(c, WGB_SCRATCH_ALIAS0, (uint64_t)rows * k * 4, &s)) return;
            copy_words(c, xb, (uint64_t)p->row0 * k, s, 0, (uint64_t)rows * k);
            xb = s;
        }
        matmul_into(c, w, xb, rows, p->bind, accumulate);
    }
}

static void matmul_op(wg_backend *b, const wg_tensor *w, const wg_tensor *x, int n, wg_tensor *out,
                      bool accumulate) {
    wgb_ctx *c = wgb_ctx_of(b);
    if (n <= 0) return;
    if (!is_act(x) || !is_out(out)) {
        wgb_fail(c, "webgpu backend: matmul of a weight");
        return;
    }
    if (wgb_t(out)->n_parts > 1) {
        matmul_split_out(c, w, x, n, out, accumulate);
        return;
    }
    if (!matmul_ok(c, w, wgb_act(x), n, wgb_act(out))) return;
    wgb_bind xb = wgb_act(x);
    if (q8_format(c, w) < 0 && !unaliased(c, 0, x, out, &xb)) return;
    matmul_into(c, w, xb, n, wgb_act(out), accumulate);
}

void wgb_op_matmul(wg_backend *b, const wg_tensor *w, const wg_tensor *x, int n, wg_tensor *out) {
    matmul_op(b, w, x, n, out, false);
}

void wgb_op_matmul_add(wg_backend *b, const wg_tensor *w, const wg_tensor *x, int n, wg_tensor *out) {
    matmul_op(b, w, x, n, out, true);
}

/* A few tokens' q, k, v products with weights of one int8 format in one dispatch (the
 * batched decode step); false, recording nothing, where matvec_q8_nt_qkv.wgsl does not apply. */
bool wgb_op_matmul_qkv(wg_backend *b, const wg_tensor *wq, const wg_tensor *wk, const wg_tensor *wv,
                       const wg_tensor *x, int n, wg_tensor *q, wg_tensor *k, wg_tensor *v) {
    wgb_ctx *c = wgb_ctx_of(b);
    const bool decode = wgb_q8_batch_takes(n);
    if (n < 2 || (n >= Q8_MATMUL_MIN_TOKENS && !decode) || !is_act(x) || !is_act(q) || !is_act(k) || !is_act(v)) return false;
    const int64_t kd = wq->ne0, m_q = wq->ne1, m_kv = wk->ne1;
    const int f = q8_format(c, wq);
    const int route = decode_route(c, f, n);
    const bool batch = route == ROUTE_TILES;
    if (f < 0 || q8_format(c, wk) != f || q8_format(c, wv) != f || wk->ne0 != kd || wv->ne0 != kd ||
        wv->ne1 != m_kv || (!batch && ((n >= Q8_MATMUL_MIN_TOKENS && !decode) || m_q % (int64_t)Q8_NT_ROWS || m_kv % (int64_t)Q8_NT_ROWS)) ||
        wgb_t(wq)->n_parts != 1 ||
        wgb_t(wk)->n_parts != 1 || wgb_t(wv)->n_parts != 1 || x->ne0 < kd || x->ne1 < n || q->ne0 < m_q ||
        k->ne0 < m_kv || v->ne0 != k->ne0 || q->ne1 < n || k->ne1 < n || v->ne1 < n)
        return false;
    const uint64_t qid = wgb_act(q).id, kid = wgb_act(k).id, vid = wgb_act(v).id;
    if (qid == kid || qid == vid || kid == vid) return false;
    wgb_bind xq, xs;
    if (!ensure_q8(c, wgb_act(x), kd, n, &xq, &xs)) return true; /* failure recorded */
    wgb_bind bb[8] = {wgb_t(wq)->parts[0].bind, wgb_t(wk)->parts[0].bind, wgb_t(wv)->parts[0].bind, xq, xs,
                      wgb_act(q), wgb_act(k), wgb_act(v)};
    if (batch) {
        wgb_q8_batch_qkv(c, f, bb, kd, m_q, m_kv, n, q->ne0, k->ne0);
        return true;
    }
    const int wi = nt_width(route), w = k_nt_tokens[wi];
    for (int t0 = 0; t0 < n; t0 += w) {
        int nt = n - t0 < w ? n - t0 : w;
        uint32_t p[8] = {(uint32_t)kd, (uint32_t)m_q, (uint32_t)m_kv, (uint32_t)nt,
                         (uint32_t)q->ne0, (uint32_t)k->ne0, (uint32_t)t0, 0};
        wgb_dispatch_linear(c, WGB_K_Q8_NT_QKV + wi * WGB_Q8F_COUNT + f, p, sizeof p, bb,
                            groups_of((uint64_t)(m_q + 2 * m_kv), Q8_NT_ROWS));
    }
    return true;
}

void wgb_op_matmul_swiglu(wg_backend *b, const wg_tensor *w_gate, const wg_tensor *w_up, const wg_tensor *x, int n,
                          wg_tensor *out) {
    wgb_ctx *c = wgb_ctx_of(b);
    if (n <= 0) return;
    const int64_t k = w_gate->ne0, m = w_gate->ne1;
    if (!is_act(x) || !is_act(out) || w_up->ne0 != k || w_up->ne1 != m) {
        wgb_fail(c, "webgpu backend: matmul_swiglu operands do not match");
        return;
    }
    if (!matmul_ok(c, w_gate, wgb_act(x), n, wgb_act(out)) || !matmul_ok(c, w_up, wgb_act(x), n, wgb_act(out)))
        return;
    const wgb_tensor *gt = wgb_t(w_gate), *ut = wgb_t(w_up);
    const int f = q8_format(c, w_gate); /* gate and up of one int8 format: fused */
    if (n == 1 && f >= 0 && q8_format(c, w_up) == f && gt->n_parts == 1 && ut->n_parts == 1 &&
        wgb_act(x).id != wgb_act(out).id) {
        /* out's int8 copy too, in slot HIDDEN (x's is read from slot X in the same
         * dispatch), for the down product: whole blocks of 32 rows a workgroup */
        const bool q8_out = m % 32 == 0;
        wgb_bind xq, xs, hq, hs;
        if (!ensure_q8_in(c, wgb_act(x), k, 1, false, &xq, &xs) ||
            !wgb_scratch(c, WGB_SCRATCH_XQ_H, q8_out ? (uint64_t)m : 4, &hq) ||
            !wgb_scratch(c, WGB_SCRATCH_XS_H, q8_out ? (uint64_t)m / 8 : 4, &hs))
            return;
        uint32_t p[4] = {(uint32_t)k, (uint32_t)m, q8_out, 0};
        wgb_bind bb[7] = {gt->parts[0].bind, ut->parts[0].bind, xq, xs, wgb_act(out), hq, hs};
        bool was_failed = c->failed;
        wgb_dispatch_linear(c, WGB_K_Q8_SWIGLU + f, p, sizeof p, bb, groups_of((uint64_t)m, Q8_SWIGLU_ROWS));
        if (q8_out) /* cache only what was surely recorded */
            c->q8[WGB_Q8_SLOT_HIDDEN] =
                (wgb_q8_tag){was_failed || c->failed || c->dev->lost ? 0 : wgb_act(out).id, m, 1};
        return;
    }
    const int route = decode_route(c, f, n);
    const bool batch = route == ROUTE_TILES;
    if ((n < Q8_MATMUL_MIN_TOKENS || route != ROUTE_NONE) && f >= 0 && q8_format(c, w_up) == f && gt->n_parts == 1 &&
        ut->n_parts == 1) {
        /* a batched decode step: gate and up rows together, 9-64 tokens in one tile of
         * tokens where the adapter's choice says so, else 8 at a time */
        wgb_bind xq, xs;
        if (!ensure_q8(c, wgb_act(x), k, n, &xq, &xs)) return;
        wgb_bind bb[5] = {gt->parts[0].bind, ut->parts[0].bind, xq, xs, wgb_act(out)};
        if (batch) {
            wgb_q8_batch_swiglu(c, f, bb, k, m, n);
            return;
        }
        const int wi = nt_width(route), w = k_nt_tokens[wi];
        for (int t0 = 0; t0 < n; t0 += w) {
            int nt = n - t0 < w ? n - t0 : w;
            uint32_t p[8] = {(uint32_t)k, (uint32_t)m, (uint32_t)((int64_t)t0 * m), (uint32_t)nt,
                             (uint32_t)m, (uint32_t)t0, 0, 0}; /* k, m, y_off, n, y_stride, x_tok0 */
            wgb_dispatch_linear(c, WGB_K_Q8_NT_SWIGLU + wi * WGB_Q8F_COUNT + f, p, sizeof p, bb,
                                groups_of((uint64_t)m, Q8_NT_SWIGLU_ROWS));
        }
        return;
    }
    /* general case: both products into scratch, then the element-wise SwiGLU */
    uint64_t bytes = (uint64_t)n * (uint64_t)m * 4;
    wgb_bind gb, ub, xb;
    if (!wgb_scratch(c, WGB_SCRATCH_GATE, bytes, &gb) || !wgb_scratch(c, WGB_SCRATCH_UP, bytes, &ub)) return;
    xb = wgb_act(x);
    matmul_into(c, w_gate, xb, n, gb, false);
    matmul_into(c, w_up, xb, n, ub, false);
    uint32_t p[4] = {(uint32_t)((uint64_t)n * (uint64_t)m), 0, 0, 0};
    wgb_bind bb[3] = {gb, ub, wgb_act(out)};
    wgb_dispatch_linear(c, WGB_K_SWIGLU, p, sizeof p, bb, groups_of((uint64_t)n * (uint64_t)m, 256));
}

/* rope's inverse frequencies, in the CPU backend's expression so both rotate by the same
 * f32 angles; computed once per (base, dims, factors), not for every layer and step. */
static const float *rope_freqs(wgb_ctx *c, const wg_rope *rope) {
    const int rope_dims = rope->dims;
    if (c->rope_dims != rope_dims || memcmp(&c->rope_base, &rope->base, sizeof rope->base) != 0 ||
        c->rope_factors != rope->factors) {
        for (int j = 0; j < rope_dims / 2; j++) {
            c->rope_freqs[j] = 1.0f / powf(rope->base, (float)(2 * j) / (float)rope_dims);
            if (rope->factors) c->rope_freqs[j] /= rope->factors[j];
        }
        c->rope_dims = rope_dims;
        c->rope_base = rope->base;
        c->rope_factors = rope->factors;
    }
    return c->rope_freqs;
}

/* A rotation the kernels take: dims even, 0 < dims <= head_dim, at most WGB_ROPE_MAX_PAIRS pairs. */
static bool rope_ok(const wg_rope *rope, int head_dim) {
    return rope && rope->dims > 0 && rope->dims % 2 == 0 && rope->dims / 2 <= WGB_ROPE_MAX_PAIRS && rope->dims <= head_dim;
}

/* rope of rows row0 .. row0 + n - 1, row i at position pos0 + i, or at pos[i] when pos is
 * given (n <= WGB_ROPE_MAX_ROWS then). */
static void rope_dispatch(wgb_ctx *c, wg_tensor *x, int n, int n_heads, int head_dim, const wg_rope *rope, int pos0,
                          const int32_t *pos, int row0) {
    if (row0 < 0 || !fits(c, x, (int64_t)row0 + n, (int64_t)n_heads * head_dim, "rope")) return;
    if (!rope_ok(rope, head_dim) || pos0 < 0) {
        wgb_fail(c, "webgpu backend: rope of %d dims (head_dim %d) is not supported (even, at most %d)",
                 rope ? rope->dims : 0, head_dim, 2 * WGB_ROPE_MAX_PAIRS);
        return;
    }
    const int pairs = rope->dims / 2;
    struct {
        uint32_t n_heads, head_dim, half_dims, pos0, stride, count, freq_scale, row0;
        uint32_t per_row, neox, pad[2];
        float freqs[WGB_ROPE_MAX_PAIRS];
        uint32_t pos[WGB_ROPE_MAX_ROWS];
    } p;
    memset(&p, 0, sizeof p);
    p.n_heads = (uint32_t)n_heads;
    p.head_dim = (uint32_t)head_dim;
    p.half_dims = (uint32_t)pairs;
    p.pos0 = (uint32_t)pos0;
    p.stride = (uint32_t)x->ne0;
    p.count = (uint32_t)n * (uint32_t)n_heads * (uint32_t)pairs;
    p.freq_scale = f32_bits(rope->scale);
    p.row0 = (uint32_t)row0;
    p.per_row = pos != NULL;
    p.neox = rope->neox;
    for (int i = 0; pos && i < n; i++) p.pos[i] = (uint32_t)pos[i];
    memcpy(p.freqs, rope_freqs(c, rope), sizeof(float) * (size_t)pairs);
    wgb_bind bb[1] = {wgb_act(x)};
    wgb_dispatch_linear(c, WGB_K_ROPE, &p, sizeof p, bb, groups_of(p.count, 256));
}

void wgb_op_rope(wg_backend *b, wg_tensor *x, int n, int n_heads, int head_dim, const wg_rope *rope, int pos0,
                 int row0) {
    if (n <= 0) return;
    rope_dispatch(wgb_ctx_of(b), x, n, n_heads, head_dim, rope, pos0, NULL, row0);
}

bool wgb_op_rope_rows(wg_backend *b, wg_tensor *x, int n, int n_heads, int head_dim, const wg_rope *rope,
                      const int32_t *pos) {
    if (n <= 0 || n > WGB_ROPE_MAX_ROWS || !pos || !rope_ok(rope, head_dim)) return false;
    for (int i = 0; i < n; i++)
        if (pos[i] < 0) return false;
    rope_dispatch(wgb_ctx_of(b), x, n, n_heads, head_dim, rope, 0, pos, 0);
    return true;
}

void wgb_op_kv_store(wg_backend *b, wg_tensor *k_cache, wg_tensor *v_cache, const wg_tensor *k,
                     const wg_tensor *v, int pos0, int n, int row0) {
    wgb_ctx *c = wgb_ctx_of(b);
    if (n <= 0) return;
    if (row0 < 0 || !fits(c, k, (int64_t)row0 + n, k->ne0, "kv_store") ||
        !fits(c, v, (int64_t)row0 + n, v->ne0, "kv_store") || pos0 < 0 ||
        !fits(c, k_cache, (int64_t)pos0 + n, k->ne0, "kv_store") ||
        !fits(c, v_cache, (int64_t)pos0 + n, v->ne0, "kv_store"))
        return;
    uint32_t p[8] = {(uint32_t)(n * k->ne0),          (uint32_t)(n * v->ne0),          (uint32_t)(pos0 * k_cache->ne0),
                     (uint32_t)(pos0 * v_cache->ne0), (uint32_t)(row0 * k->ne0), (uint32_t)(row0 * v->ne0), 0, 0};
    const bool half = wgb_t(k_cache)->half;
    if (half != wgb_t(v_cache)->half) {
        wgb_fail(c, "webgpu backend: kv_store needs k and v caches of one precision");
        return;
    }
    wgb_bind bb[4] = {wgb_act(k), wgb_act(v), wgb_act(k_cache), wgb_act(v_cache)};
    uint64_t count = p[0] > p[1] ? p[0] : p[1];
    wgb_dispatch_linear(c, half ? WGB_K_KV_STORE_F16 : WGB_K_KV_STORE, p, sizeof p, bb, groups_of(count, 256));
}

/* A weight of int8 format f in one binding, of `rows` rows of k. */
static bool q8_single(const wgb_ctx *c, const wg_tensor *w, int f, int64_t k, int64_t rows) {
    return w && wgb_t(w)->weight && q8_format(c, w) == f && wgb_t(w)->n_parts == 1 && w->ne0 == k && w->ne1 == rows;
}

/* Decode (one token) with q, k, v weights of int8 formats on int8 x (q and k of one format, v
 * of it or another the kernel has, wgb_qkv_format_of): the three products,
 * the rotary embedding of q and k and the store of k and v at cache row pos0, in one
 * dispatch (kernels/matvec_q8_qkv.wgsl) instead of six. False, recording nothing, where that
 * kernel does not apply; the model then calls matmul, rope and kv_store. */
bool wgb_op_qkv_rope_store(wg_backend *b, const wg_tensor *wq, const wg_tensor *wk, const wg_tensor *wv,
                           const wg_tensor *x, int n_head, int n_head_kv, int head_dim, const wg_rope *rope,
                           int pos0, wg_tensor *q_out, wg_tensor *k_cache, wg_tensor *v_cache) {
    wgb_ctx *c = wgb_ctx_of(b);
    if (!c->q4_int8 || !wq || !is_act(x) || !is_act(q_out) || !is_act(k_cache) || !is_act(v_cache)) return false;
    const int64_t k = wq->ne0, m_q = (int64_t)n_head * head_dim, m_kv = (int64_t)n_head_kv * head_dim;
    const int f = q8_format(c, wq), fv = wv ? q8_format(c, wv) : -1, fqkv = wgb_qkv_format_of(f, fv);
    if (n_head <= 0 || n_head_kv <= 0 || head_dim <= 0 || head_dim % WGB_Q8_ROWS || k <= 0 || fqkv < 0 ||
        x->ne0 < k || x->ne1 < 1 || !q8_single(c, wq, f, k, m_q) || !q8_single(c, wk, f, k, m_kv) ||
        !q8_single(c, wv, fv, k, m_kv))
        return false;
    /* neox: the kernel's row slots take pairs two at a time (matvec_q8_qkv.wgsl) */
    if (!rope_ok(rope, head_dim) || (rope->neox && rope->dims % 4) || pos0 < 0) return false;
    const int pairs = rope->dims / 2;
    if (q_out->ne0 < m_q || q_out->ne1 < 1 || k_cache->ne0 < m_kv || v_cache->ne0 < m_kv || pos0 >= k_cache->ne1 ||
        pos0 >= v_cache->ne1)
        return false;
    const bool half = wgb_t(k_cache)->half;
    const int kern = WGB_K_Q8_QKV + WGB_QKV_VARIANTS * fqkv + (half ? WGB_QKV_F16 : 0) + (rope->neox ? WGB_QKV_NEOX : 0);
    const uint64_t qid = wgb_act(q_out).id, kid = wgb_act(k_cache).id, vid = wgb_act(v_cache).id;
    if (half != wgb_t(v_cache)->half || !c->pl.k[kern].pipe || qid == kid || qid == vid || kid == vid) return false;

    wgb_bind xq, xs;
    if (!ensure_q8(c, wgb_act(x), k, 1, &xq, &xs)) return true; /* failure recorded */
    struct {
        uint32_t k, m_q, m_kv, head_dim, half_dims, pos, freq_scale, k_dst, v_dst, pad[3];
        float freqs[WGB_ROPE_MAX_PAIRS];
    } p;
    memset(&p, 0, sizeof p);
    p.k = (uint32_t)k;
    p.m_q = (uint32_t)m_q;
    p.m_kv = (uint32_t)m_kv;
    p.head_dim = (uint32_t)head_dim;
    p.half_dims = (uint32_t)pairs;
    p.pos = (uint32_t)pos0;
    p.freq_scale = f32_bits(rope->scale);
    p.k_dst = (uint32_t)((int64_t)pos0 * k_cache->ne0);
    p.v_dst = (uint32_t)((int64_t)pos0 * v_cache->ne0);
    memcpy(p.freqs, rope_freqs(c, rope), sizeof(float) * (size_t)pairs);
    wgb_bind bb[8] = {wgb_t(wq)->parts[0].bind, wgb_t(wk)->parts[0].bind, wgb_t(wv)->parts[0].bind, xq, xs,
                      wgb_act(q_out), wgb_act(k_cache), wgb_act(v_cache)};
    wgb_dispatch_linear(c, kern, &p, sizeof p, bb, (uint64_t)(m_q + 2 * m_kv) / Q8_MATVEC_ROWS);
    return true;
}

/* The attention kernel (and its split merge) for n query rows from row0; rows == NULL:
 * row i at position pos0 + i over the caches bound at kb, vb; else row i at rows[i][0]
 * over caches starting at elements rows[i][1], rows[i][2] of kb, vb, and q rotated first
 * as rope says (NULL: not; freqs: its inverse frequencies). n_pos: positions of the
 * longest row. window > 0: each row attends to its last `window` positions. q8: also
 * write out as int8 blocks for the matvec after it. */
static void attention_dispatch(wgb_ctx *c, wgb_bind qb, int64_t q_stride, wgb_bind kb, wgb_bind vb, bool half,
                               int64_t kv_stride, int pos0, int n, int n_head, int n_head_kv, int head_dim,
                               int window, wg_tensor *out, int row0, const uint32_t (*rows)[4], uint32_t n_pos,
                               bool q8, const wg_rope *rope, const float *freqs) {
    const int64_t qd = (int64_t)n_head * head_dim;
    /* Few (token, head) pairs cannot fill the GPU: split the positions over workgroups
     * and merge the splits in a second dispatch. */
    const uint32_t span = window > 0 && (uint32_t)window < n_pos ? (uint32_t)window : n_pos; /* per row, at most */
    uint32_t n_split = (int64_t)n * n_head >= ATTN_BUSY_PAIRS ? 1 : (span + ATTN_SPLIT - 1) / ATTN_SPLIT;
    if ((uint64_t)n_head * n_split > c->max_groups) n_split = 1;
    wgb_bind xq, xs;
    const uint64_t q8_rows = (uint64_t)row0 + (uint64_t)n;
    if (!wgb_scratch(c, WGB_SCRATCH_XQ, q8 ? (uint64_t)qd * q8_rows : 4, &xq) ||
        !wgb_scratch(c, WGB_SCRATCH_XS, q8 ? (uint64_t)qd / 8 * q8_rows : 4, &xs))
        return;
    struct {
        uint32_t n_head, group, hd, pos0, q_stride, kv_stride, out_stride, scale, n_split, split_len, row0, q8;
        uint32_t per_row, half_dims, freq_scale, window, neox, pad[3];
        uint32_t rows[WGB_DECODE_MAX_ROWS][4];
        float freqs[WGB_ROPE_MAX_PAIRS];
    } p;
    memset(&p, 0, sizeof p);
    p.n_head = (uint32_t)n_head;
    p.group = (uint32_t)(n_head / n_head_kv);
    p.hd = (uint32_t)head_dim;
    p.pos0 = (uint32_t)pos0;
    p.q_stride = (uint32_t)q_stride;
    p.kv_stride = (uint32_t)kv_stride;
    p.out_stride = (uint32_t)out->ne0;
    p.scale = f32_bits(1.0f / sqrtf((float)head_dim));
    p.n_split = n_split;
    p.split_len = n_split == 1 ? span : ATTN_SPLIT;
    p.window = window > 0 ? (uint32_t)window : 0;
    p.row0 = (uint32_t)row0;
    p.q8 = q8 && n_split == 1;
    p.per_row = rows != NULL;
    if (rows) memcpy(p.rows, rows, sizeof(uint32_t) * 4 * (size_t)n);
    if (rows && rope) { /* q rotated in the kernel (rows give the positions) */
        p.half_dims = (uint32_t)(rope->dims / 2);
        p.freq_scale = f32_bits(rope->scale);
        p.neox = rope->neox;
        memcpy(p.freqs, freqs, sizeof(float) * (size_t)(rope->dims / 2));
    }
    wgb_bind part;
    uint64_t part_floats = (uint64_t)n * (uint64_t)n_head * n_split * (uint64_t)(head_dim + 2);
    if (!wgb_scratch(c, WGB_SCRATCH_ATTN, n_split > 1 ? part_floats * 4 : 256, &part)) return;
    wgb_bind bb[7] = {qb, kb, vb, wgb_act(out), part, xq, xs};
    bool was_failed = c->failed;
    wgb_dispatch(c, half ? WGB_K_ATTENTION_F16 : WGB_K_ATTENTION, &p, sizeof p, bb, (uint32_t)n_head * n_split,
                 (uint32_t)n);
    if (n_split > 1) {
        uint32_t pc[8] = {(uint32_t)n_head, (uint32_t)head_dim, n_split, (uint32_t)out->ne0, (uint32_t)row0, q8, 0, 0};
        wgb_bind cb[4] = {part, wgb_act(out), xq, xs};
        wgb_dispatch(c, WGB_K_ATTN_COMBINE, pc, sizeof pc, cb, (uint32_t)n_head, (uint32_t)n);
    }
    if (q8) { /* cache only what was surely recorded */
        c->q8[WGB_Q8_SLOT_X] = (wgb_q8_tag){was_failed || c->failed || c->dev->lost ? 0 : wgb_act(out).id, qd, n};
    }
}

void wgb_op_attention(wg_backend *b, const wg_tensor *q, const wg_tensor *k_cache, const wg_tensor *v_cache,
                      int pos0, int n, int n_head, int n_head_kv, int head_dim, int window, wg_tensor *out,
                      int row0) {
    wgb_ctx *c = wgb_ctx_of(b);
    if (n <= 0) return;
    if (window < 0) {
        wgb_fail(c, "webgpu backend: attention window %d", window);
        return;
    }
    if (head_dim <= 0 || head_dim > WGB_ATTN_WG || n_head <= 0 || n_head_kv <= 0 || n_head % n_head_kv) {
        wgb_fail(c, "webgpu backend: attention with %d heads, %d kv heads, head_dim %d is not supported "
                 "(head_dim <= %d)", n_head, n_head_kv, head_dim, WGB_ATTN_WG);
        return;
    }
    int64_t qd = (int64_t)n_head * head_dim, kvd = (int64_t)n_head_kv * head_dim;
    if (row0 < 0 || !fits(c, q, (int64_t)row0 + n, qd, "attention") || !fits(c, out, (int64_t)row0 + n, qd, "attention") ||
        pos0 < 0 ||
        !fits(c, k_cache, (int64_t)pos0 + n, kvd, "attention") || !fits(c, v_cache, (int64_t)pos0 + n, kvd, "attention"))
        return;
    if ((uint32_t)n_head > c->max_groups || (uint32_t)n > c->max_groups) {
        wgb_fail(c, "webgpu backend: attention too large for one dispatch");
        return;
    }
    if (k_cache->ne0 != v_cache->ne0 || wgb_t(k_cache)->half != wgb_t(v_cache)->half) {
        wgb_fail(c, "webgpu backend: attention needs k and v caches of the same row length");
        return;
    }
    if (head_dim % 4 || k_cache->ne0 % 4) {
        wgb_fail(c, "webgpu backend: attention needs head_dim and the cache row length in multiples of 4");
        return;
    }
    wgb_bind qb;
    if (!unaliased(c, 0, q, out, &qb)) return;
    if (wgb_flash_attention(c, qb, q->ne0, wgb_act(k_cache), wgb_act(v_cache), wgb_t(k_cache)->half, k_cache->ne0,
                            pos0, n, n_head, n_head_kv, head_dim, window, out, row0))
        return;
    /* Decode: out also as int8 blocks, so the int8 matvec after it (wo) needs no quantize
     * dispatch (ensure_q8 finds it made). */
    const bool q8 = n == 1 && row0 == 0 && c->q4_int8 && head_dim % 32 == 0 && out->ne0 == qd;
    attention_dispatch(c, qb, q->ne0, wgb_act(k_cache), wgb_act(v_cache), wgb_t(k_cache)->half, k_cache->ne0, pos0,
                       n, n_head, n_head_kv, head_dim, window, out, row0, NULL, (uint32_t)pos0 + (uint32_t)n, q8,
                       NULL, NULL);
}

/* An arena's whole buffer as one binding. */
static wgb_bind arena_bind(const wgb_kv_arena *a) {
    return (wgb_bind){.buf = a->buf, .id = a->id, .offset = 0, .size = (uint64_t)a->cap * a->slot_bytes};
}

/* The caches of a batched decode step, checked: activations of one precision and row
 * length, each in its arena, all K caches in one arena and all V caches in another, each
 * long enough for its position. False (nothing recorded) otherwise. */
static bool decode_caches_ok(wg_tensor *const *k_caches, wg_tensor *const *v_caches, const int32_t *pos, int n,
                             int64_t kvd) {
    const wgb_tensor *k0 = wgb_t(k_caches[0]), *v0 = wgb_t(v_caches[0]);
    if (!k0->arena || !v0->arena || k0->arena == v0->arena) return false;
    for (int i = 0; i < n; i++) {
        const wg_tensor *kc = k_caches[i], *vc = v_caches[i];
        if (!is_act(kc) || !is_act(vc) || wgb_t(kc)->arena != k0->arena || wgb_t(vc)->arena != v0->arena) return false;
        if (kc->ne0 != k_caches[0]->ne0 || vc->ne0 != kc->ne0 || kc->ne0 < kvd || kc->ne0 % 4 ||
            wgb_t(kc)->half != k0->half || wgb_t(vc)->half != k0->half)
            return false;
        if (pos[i] < 0 || pos[i] >= kc->ne1 || pos[i] >= vc->ne1) return false;
        for (int j = 0; j < i; j++) /* a sequence's rows: one cache pair, distinct positions */
            if ((k_caches[j] == kc) != (v_caches[j] == vc) || (k_caches[j] == kc && pos[j] == pos[i])) return false;
    }
    return true;
}

bool wgb_op_decode_attention(wg_backend *b, const wg_tensor *q, const wg_tensor *k, const wg_tensor *v,
                             wg_tensor *const *k_caches, wg_tensor *const *v_caches, const int32_t *pos, int n,
                             int n_head, int n_head_kv, int head_dim, const wg_rope *rope, int window,
                             wg_tensor *out) {
    wgb_ctx *c = wgb_ctx_of(b);
    if (n <= 0 || n > WGB_DECODE_MAX_BATCH || !k_caches || !v_caches || !pos || window < 0) return false;
    if (rope && rope->dims == 0) rope = NULL;
    if (rope && !rope_ok(rope, head_dim)) return false;
    const int pairs = rope ? rope->dims / 2 : 0;
    if (head_dim <= 0 || head_dim > WGB_ATTN_WG || head_dim % 4 || n_head <= 0 || n_head_kv <= 0 ||
        n_head % n_head_kv || (uint32_t)n_head > c->max_groups)
        return false;
    const int64_t qd = (int64_t)n_head * head_dim, kvd = (int64_t)n_head_kv * head_dim;
    if (!is_act(q) || !is_act(k) || !is_act(v) || !is_act(out) || q->ne1 < n || k->ne1 < n || v->ne1 < n ||
        out->ne1 < n || q->ne0 < qd || out->ne0 < qd || k->ne0 < kvd || v->ne0 < kvd)
        return false;
    if (!decode_caches_ok(k_caches, v_caches, pos, n, kvd)) return false;
    const wgb_tensor *k0 = wgb_t(k_caches[0]), *v0 = wgb_t(v_caches[0]);
    const bool half = k0->half;
    const uint64_t esize = half ? 2 : 4;
    const wgb_bind kb = arena_bind(k0->arena), vb = arena_bind(v0->arena);
    wgb_bind qb;
    if (!unaliased(c, 0, q, out, &qb)) return true; /* failure recorded */
    const bool q8 = c->q4_int8 && head_dim % 32 == 0 && out->ne0 == qd;
    const float *freqs = pairs ? rope_freqs(c, rope) : NULL;
    wgb_bind xq, xs; /* sized for every row first: the chunks below write their rows of it */
    if (q8 && (!wgb_scratch(c, WGB_SCRATCH_XQ, (uint64_t)qd * (uint64_t)n, &xq) ||
               !wgb_scratch(c, WGB_SCRATCH_XS, (uint64_t)qd / 8 * (uint64_t)n, &xs)))
        return true;
    /* Chunks of rows in order: a sequence's later rows attend to the earlier ones, which
     * the earlier chunks (or this chunk's store, before its attention) have stored. */
    for (int r0 = 0; r0 < n; r0 += WGB_DECODE_MAX_ROWS) {
        const int nr = n - r0 < WGB_DECODE_MAX_ROWS ? n - r0 : WGB_DECODE_MAX_ROWS;
        /* each row's position and the first element of its sequence's caches in the
         * arenas (a multiple of 4: slots start at the storage offset alignment) */
        uint32_t rows[WGB_DECODE_MAX_ROWS][4];
        uint32_t max_pos = 0;
        for (int i = 0; i < nr; i++) {
            rows[i][0] = (uint32_t)pos[r0 + i];
            rows[i][1] = (uint32_t)(wgb_act(k_caches[r0 + i]).offset / esize);
            rows[i][2] = (uint32_t)(wgb_act(v_caches[r0 + i]).offset / esize);
            rows[i][3] = 0;
            if (rows[i][0] > max_pos) max_pos = rows[i][0];
        }
        struct {
            uint32_t count, k_stride, v_stride, kv_stride, row0, head_dim, half_dims, freq_scale, neox, pad[3];
            uint32_t rows[WGB_DECODE_MAX_ROWS][4];
            float freqs[WGB_ROPE_MAX_PAIRS];
        } ps;
        memset(&ps, 0, sizeof ps);
        ps.count = (uint32_t)kvd;
        ps.k_stride = (uint32_t)k->ne0;
        ps.v_stride = (uint32_t)v->ne0;
        ps.kv_stride = (uint32_t)k_caches[0]->ne0;
        ps.row0 = (uint32_t)r0;
        ps.head_dim = (uint32_t)head_dim;
        ps.half_dims = (uint32_t)pairs;
        ps.freq_scale = f32_bits(rope ? rope->scale : 0.0f);
        ps.neox = rope && rope->neox;
        if (freqs) memcpy(ps.freqs, freqs, sizeof(float) * (size_t)pairs);
        memcpy(ps.rows, rows, sizeof(uint32_t) * 4 * (size_t)nr);
        wgb_bind sb[4] = {wgb_act(k), wgb_act(v), kb, vb};
        wgb_dispatch(c, half ? WGB_K_KV_STORE_ROWS_F16 : WGB_K_KV_STORE_ROWS, &ps, sizeof ps, sb,
                     (uint32_t)groups_of((uint64_t)kvd, 256), (uint32_t)nr);
        for (int i = 0; i < nr; i++) { /* attention reads the caches as vec4s */
            rows[i][1] /= 4;
            rows[i][2] /= 4;
        }
        attention_dispatch(c, qb, q->ne0, kb, vb, half, k_caches[0]->ne0, 0, nr, n_head, n_head_kv, head_dim, window,
                           out, r0, rows, max_pos + 1, q8, rope, freqs);
    }
    if (q8 && c->q8[WGB_Q8_SLOT_X].id == wgb_act(out).id) c->q8[WGB_Q8_SLOT_X].n = n; /* every chunk wrote its rows */
    return true;
}

void wgb_op_swiglu(wg_backend *b, const wg_tensor *gate, const wg_tensor *up, int n, wg_tensor *out) {
    wgb_ctx *c = wgb_ctx_of(b);
    if (n <= 0) return;
    uint64_t count = (uint64_t)n * (uint64_t)gate->ne0;
    if (!is_act(gate) || !is_act(up) || !is_act(out) || count > wgb_act(gate).size / 4 ||
        count > wgb_act(up).size / 4 || count > wgb_act(out).size / 4) {
        wgb_fail(c, "webgpu backend: swiglu operands too small");
        return;
    }
    wgb_bind gb, ub;
    if (!unaliased(c, 0, gate, out, &gb) || !unaliased(c, 1, up, out, &ub)) return;
    uint32_t p[4] = {(uint32_t)count, 0, 0, 0};
    wgb_bind bb[3] = {gb, ub, wgb_act(out)};
    wgb_dispatch_linear(c, WGB_K_SWIGLU, p, sizeof p, bb, groups_of(count, 256));
}

void wgb_op_add(wg_backend *b, wg_tensor *x, const wg_tensor *y, int n) {
    wgb_ctx *c = wgb_ctx_of(b);
    if (n <= 0) return;
    uint64_t count = (uint64_t)n * (uint64_t)x->ne0;
    /* y of one row (a bias, possibly an f32 weight): added to each row of x */
    const bool bcast = y && y->ne1 == 1;
    const bool y_ok = bcast ? y->type == WG_TYPE_F32 && y->ne0 == x->ne0 && (is_act(y) || wgb_t(y)->n_parts == 1)
                            : is_act(y) && count <= wgb_act(y).size / 4;
    if (!is_act(x) || !y_ok || count > wgb_act(x).size / 4) {
        wgb_fail(c, "webgpu backend: add operands too small");
        return;
    }
    wgb_bind yb;
    if (wgb_t(y)->weight) yb = wgb_t(y)->parts[0].bind;
    else if (!unaliased(c, 0, y, x, &yb)) return;
    uint32_t p[4] = {(uint32_t)count, bcast ? (uint32_t)x->ne0 : 0u, 0, 0};
    wgb_bind bb[2] = {wgb_act(x), yb};
    wgb_dispatch_linear(c, WGB_K_ADD, p, sizeof p, bb, groups_of(count, 256));
}

int32_t wgb_op_argmax(wg_backend *b, const wg_tensor *x, int64_t row) {
    wgb_ctx *c = wgb_ctx_of(b);
    int64_t local;
    const wgb_part *part = is_out(x) ? wgb_part_of(x, row, &local) : NULL;
    if (!part) {
        wgb_fail(c, "webgpu backend: argmax of row %lld outside the tensor", (long long)row);
        return -1;
    }
    uint32_t p[4] = {(uint32_t)(local * x->ne0), (uint32_t)x->ne0, 0, 0};
    wgb_bind bb[2] = {part->bind, c->argmax_out};
    wgb_dispatch(c, WGB_K_ARGMAX, p, sizeof p, bb, 1, 1);
    uint32_t r = 0;
    if (!wgb_read(c, &c->argmax_out, 0, &r, sizeof r) || c->failed) return -1;
    return r < (uint32_t)x->ne0 ? (int32_t)r : -1;
}

bool wgb_op_argmax_rows(wg_backend *b, const wg_tensor *const *x, int n, int32_t *out) {
    wgb_ctx *c = wgb_ctx_of(b);
    /* results in argmax_out after the id slots of wgpu_greedy.c */
    const int first = WGB_ID_SLOTS * WGB_SLOT_IDS, cap = WGB_ARGMAX_IDS;
    if (n <= 0 || n > cap) return false;
    for (int i = 0; i < n; i++)
        if (!is_out(x[i]) || x[i]->ne1 < 1) return false;
    for (int i = 0; i < n; i++) {
        uint32_t p[4] = {0, (uint32_t)x[i]->ne0, (uint32_t)(first + i), 0};
        wgb_bind bb[2] = {wgb_act(x[i]), c->argmax_out}; /* row 0: in the first part */
        wgb_dispatch(c, WGB_K_ARGMAX, p, sizeof p, bb, 1, 1);
    }
    uint32_t r[WGB_ARGMAX_IDS];
    const bool ok = wgb_read(c, &c->argmax_out, (uint64_t)first * 4, r, (uint64_t)n * 4) && !c->failed;
    for (int i = 0; i < n; i++) out[i] = ok && r[i] < (uint32_t)x[i]->ne0 ? (int32_t)r[i] : -1;
    return true;
}
