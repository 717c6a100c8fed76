/* Generated WGSL for the int8 kernels' per-thread registers (wgpu_q8_gen.h). */
#include "backend/webgpu/wgpu_q8_gen.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/webgpu/wgpu_pipelines.h"

typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} text;

static void put(text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char line[512];
    const int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (t->failed || n < 0 || (size_t)n >= sizeof line) {
        t->failed = 1;
        return;
    }
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
        char *s = realloc(t->s, cap);
        if (!s) {
            t->failed = 1;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
    memcpy(t->s + t->len, line, (size_t)n + 1);
    t->len += (size_t)n;
}

char *wgb_q8_nt_wgsl(int nt, int rpg, int lanes, unsigned min_subgroup) {
    if (nt < 8 || nt % 8 || nt > 64 || (rpg != 2 && rpg != 4) || WGB_Q8_NT_ROWS % rpg) return NULL;
    /* a run of TPR threads holds TPR / lanes groups, and a workgroup whole runs of them */
    if (lanes < 8 || lanes > WGB_Q8_NT_TPR || WGB_Q8_NT_TPR % lanes || (WGB_Q8_NT_ROWS / rpg) % (WGB_Q8_NT_TPR / lanes))
        return NULL;
    /* subgroups of at least `lanes` sum each run's lanes by shuffles: the tree then only adds runs */
    const int tree_w = min_subgroup >= (unsigned)lanes ? WGB_Q8_NT_TPR / lanes : WGB_Q8_NT_TPR;
    text t = {0};
    put(&t, "const TPR: u32 = %du;\nconst RG: u32 = %du;\nconst NT: u32 = %du;\nconst RPG: u32 = %du;\n"
            "const LANES: u32 = %du;\nconst TREE_W: u32 = %du;\n", WGB_Q8_NT_TPR, WGB_Q8_NT_ROWS / rpg, nt, rpg,
        lanes, tree_w);
    put(&t, "// A group's rows (component i: its row i) and its sums of them.\nalias RowIdx = vec%d<u32>;\n"
            "alias RowSums = vec%d<f32>;\n", rpg, rpg);
    /* the rows of a group: i; nt_swiglu's: row i / 2 of the gate (even i) and up matrix (odd i) */
    put(&t, "const ROW_OFFS = RowIdx(");
    for (int i = 0; i < rpg; i++) put(&t, "%s%du", i ? ", " : "", i);
    put(&t, ");\nconst PAIR_SEL = RowIdx(");
    for (int i = 0; i < rpg; i++) put(&t, "%s%du", i ? ", " : "", i % 2);
    put(&t, ");\nconst PAIR_OFFS = RowIdx(");
    for (int i = 0; i < rpg; i++) put(&t, "%s%du", i ? ", " : "", i / 2);
    put(&t, ");\n\n// The words and the decoded unit of each of the group's rows.\nstruct RowsW {\n");
    for (int i = 0; i < rpg; i++) put(&t, "    w%d: array<u32, Q8_WORDS>,\n", i);
    put(&t, "}\n\nstruct RowsB {\n");
    for (int i = 0; i < rpg; i++) put(&t, "    b%d: Q8W,\n", i);
    put(&t, "}\n\nfn rows_load(sel: RowIdx, row: RowIdx, u: u32, nu: u32) -> RowsW {\n    return RowsW(");
    for (int i = 0; i < rpg; i++) put(&t, "%sq8_load(sel[%d], row[%d], u, nu)", i ? ", " : "", i, i);
    put(&t, ");\n}\n\nfn rows_unpack(w: RowsW, row: RowIdx, u: u32, nu: u32) -> RowsB {\n    return RowsB(");
    for (int i = 0; i < rpg; i++) put(&t, "%sq8_unpack(w.w%d, row[%d], u, nu)", i ? ", " : "", i, i);
    put(&t, ");\n}\n\n// Every row's part of unit u for token tok.\n"
            "fn tok_dot(b: RowsB, tok: u32, u: u32, nu: u32) -> RowSums {\n"
            "    let x = q8_x(tok * (params.k / 16u), tok * nu, u);\n    return RowSums(");
    for (int i = 0; i < rpg; i++) put(&t, "%sq8_dot(b.b%d, x)", i ? ", " : "", i);
    put(&t, ");\n}\n\n// Per-token sums of the group's rows, token j in aj.\nstruct Acc {\n");
    for (int j = 0; j < nt; j++) put(&t, "    a%d: RowSums,\n", j);
    put(&t, "}\n\n// Unit u of the rows times each of the n tokens from x0 on.\n");
    put(&t, "fn acc_tokens(acc: ptr<function, Acc>, b: RowsB, x0: u32, u: u32, nu: u32, n: u32) {\n");
    put(&t, "    (*acc).a0 += tok_dot(b, x0, u, nu);\n");
    for (int j = 1; j < nt; j++)
        put(&t, "    if (n > %du) {\n        (*acc).a%d += tok_dot(b, x0 + %du, u, nu);\n    }\n", j, j, j);
    put(&t, "}\n\nfn token_sum(s: Acc, j: u32) -> RowSums {\n    var v = s.a0;\n");
    for (int j = 1; j < nt; j++) put(&t, "    v = select(v, s.a%d, j == %du);\n", j, j);
    put(&t, "    return v;\n}\n\n");
    /* the tree's chunks of 8 tokens: lib_q8_nt.wgsl's partial holds one chunk a group */
    put(&t, "// Tokens 8 c .. 8 c + 7 of lane t into the group's partial sums (from pb on), and back.\n");
    put(&t, "fn acc_chunk_put(pb: u32, t: u32, a: Acc, c: u32) {\n    switch c {\n");
    for (int c = 0; c < nt / 8; c++) {
        put(&t, "        case %du: {\n", c);
        for (int j = 0; j < 8; j++) put(&t, "            partial[pb + %du * TREE_W + t] = a.a%d;\n", j, 8 * c + j);
        put(&t, "        }\n");
    }
    put(&t, "        default: {}\n    }\n}\n\n");
    put(&t, "fn acc_chunk_take(pb: u32, a: ptr<function, Acc>, c: u32) {\n    switch c {\n");
    for (int c = 0; c < nt / 8; c++) {
        put(&t, "        case %du: {\n", c);
        for (int j = 0; j < 8; j++) put(&t, "            (*a).a%d = partial[pb + %du * TREE_W];\n", 8 * c + j, j);
        put(&t, "        }\n");
    }
    put(&t, "        default: {}\n    }\n}\n\n");
    put(&t, "// SUBGROUPS-BEGIN\nfn xor_sum(a: Acc, mask: u32) -> Acc {\n    var s = a;\n");
    for (int j = 0; j < nt; j++) put(&t, "    s.a%d += subgroupShuffleXor(a.a%d, mask);\n", j, j);
    put(&t, "    return s;\n}\n// SUBGROUPS-END\n");
    if (t.failed) {
        free(t.s);
        return NULL;
    }
    return t.s;
}

/* The vector type of a chunk of w tokens (1, 2 or 4) of scalar s ("f32", "i32", "u32"). */
static const char *vec_of(int w, const char *s, char *buf, size_t size) {
    if (w == 1) snprintf(buf, size, "%s", s);
    else snprintf(buf, size, "vec%d<%s>", w, s);
    return buf;
}

/* `fmt` for each of the chunk's w tokens j0 .. j0 + w - 1, comma-separated; every %d of fmt
 * (up to three) is the token's offset j in the thread's tokens. */
static void put_list(text *t, int j0, int w, const char *fmt) {
    for (int j = j0; j < j0 + w; j++) {
        if (j > j0) put(t, ", ");
        put(t, fmt, j, j, j);
    }
}

/* Field expression of row i, token j. */
static const char *field(char *buf, size_t size, int i, int j, int cw) {
    if (cw == 1) snprintf(buf, size, "a.a%d_%d", i, j);
    else snprintf(buf, size, "a.a%d_%d[%d]", i, j / cw, j % cw);
    return buf;
}

char *wgb_q8_tile_wgsl(int rt, int tt, bool pairs) {
    if (rt < 1 || (tt != 1 && tt != 2 && tt % 4) || tt < 1 || rt * tt > 64 || (pairs && rt % 2)) return NULL;
    const int cw = tt < 4 ? tt : 4, chunks = tt / cw;
    char vf[32], vi[32];
    vec_of(cw, "f32", vf, sizeof vf);
    vec_of(cw, "i32", vi, sizeof vi);
    text t = {0};
    put(&t, "// A thread's sums: row i (tile row tx + TX i), tokens 4c .. of its TT in a<i>_<c>.\nstruct Acc {\n");
    for (int i = 0; i < rt; i++)
        for (int c = 0; c < chunks; c++) put(&t, "    a%d_%d: %s,\n", i, c, vf);
    put(&t, "}\n\n// The thread's TT tokens of one staged block: halves l<j>, h<j>; per chunk the scales\n"
            "// and (formats with mins) the scales times the block's sum.\nstruct XTok {\n");
    for (int j = 0; j < tt; j++) put(&t, "    l%d: vec4<u32>,\n    h%d: vec4<u32>,\n", j, j);
    for (int c = 0; c < chunks; c++) put(&t, "    dx%d: %s,\n    xm%d: %s,\n", c, vf, c, vf);
    put(&t, "}\n\nfn x_tok(b: u32, t: u32) -> XTok {\n    let l = 2u * b * TN + t;\n    let h = (2u * b + 1u) * TN + t;\n"
            "    let d = b * TN + t;\n    var x: XTok;\n");
    for (int j = 0; j < tt; j++) put(&t, "    x.l%d = xt[l + %du];\n    x.h%d = xt[h + %du];\n", j, j, j, j);
    for (int c = 0; c < chunks; c++) {
        put(&t, "    x.dx%d = %s(", c, vf);
        put_list(&t, c * cw, cw, "xd[d + %du]");
        put(&t, ");\n    if (Q8_BLOCK_MIN) {\n        x.xm%d = x.dx%d * %s(%s(", c, c, vf, vi);
        put_list(&t, c * cw, cw, "xsum[l + %du] + xsum[h + %du]");
        put(&t, "));\n    }\n");
    }
    put(&t, "    return x;\n}\n\n// One staged row of block b: its bytes, scales and min.\n"
            "struct WRow {\n    l: vec4<u32>,\n    h: vec4<u32>,\n    d: vec2<f32>,\n    m: f32,\n}\n\n"
            "fn w_row(b: u32, r: u32) -> WRow {\n    var m = 0.0;\n    if (Q8_BLOCK_MIN) {\n"
            "        m = wm[b * TM + r];\n    }\n"
            "    return WRow(ws[2u * b * TM + r], ws[(2u * b + 1u) * TM + r], wd[b * TM + r], m);\n}\n\n");
    /* per chunk: the block's i32 dot products, scaled once (twice for 16-element scales) */
    for (int c = 0; c < chunks; c++) {
        put(&t, "fn chunk%d(w: WRow, x: XTok) -> %s {\n    var v: %s;\n    if (Q8_BLOCK_SPLIT) {\n", c, vf, vf);
        put(&t, "        let lo = %s(", vi);
        put_list(&t, c * cw, cw, "i8_dot16(w.l, x.l%d)");
        put(&t, ");\n        let hi = %s(", vi);
        put_list(&t, c * cw, cw, "i8_dot16(w.h, x.h%d)");
        put(&t, ");\n        v = (%s(lo) * w.d.x + %s(hi) * w.d.y) * x.dx%d;\n    } else {\n", vf, vf, c);
        put(&t, "        v = %s(%s(", vf, vi);
        put_list(&t, c * cw, cw, "i8_dot16(w.l, x.l%d) + i8_dot16(w.h, x.h%d)");
        put(&t, ")) * (w.d.x * x.dx%d);\n    }\n    if (Q8_BLOCK_MIN) {\n        v -= w.m * x.xm%d;\n    }\n"
                "    return v;\n}\n\n", c, c);
    }
    put(&t, "// Staged block b times the thread's rows and tokens, into acc.\n"
            "fn tile_step(acc: ptr<function, Acc>, b: u32, tx: u32, ty: u32) {\n    let x = x_tok(b, TT * ty);\n");
    for (int i = 0; i < rt; i++) {
        put(&t, "    let w%d = w_row(b, tx + %du * TX);\n", i, i);
        for (int c = 0; c < chunks; c++) put(&t, "    (*acc).a%d_%d += chunk%d(w%d, x);\n", i, c, c, i);
    }
    put(&t, "}\n\n");
    /* the results, each a call with constant indices: a loop over an index into the fields
     * would make them an indexed aggregate again */
    char el[64];
    if (!pairs) {
        put(&t, "// The thread's sums through the kernel's acc_put.\nfn tile_store(a: Acc, c: PutCtx) {\n");
        for (int i = 0; i < rt; i++)
            for (int j = 0; j < tt; j++)
                put(&t, "    acc_put(c, %du, %du, %s);\n", i, j, field(el, sizeof el, i, j, cw));
    } else {
        put(&t, "// The thread's rows i and i + RT / 2 (gate and up) through the kernel's pair_put.\n"
                "fn tile_store(a: Acc, c: PutCtx) {\n");
        for (int i = 0; i < rt / 2; i++)
            for (int j = 0; j < tt; j++) {
                char el2[64];
                put(&t, "    pair_put(c, %du, %du, %s, %s);\n", i, j, field(el, sizeof el, i, j, cw),
                    field(el2, sizeof el2, i + rt / 2, j, cw));
            }
    }
    put(&t, "}\n");
    if (t.failed) {
        free(t.s);
        return NULL;
    }
    return t.s;
}
