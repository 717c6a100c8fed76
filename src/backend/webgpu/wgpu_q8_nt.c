/* The generated per-token part of the nt kernels (wgpu_q8_nt.h). */
#include "backend/webgpu/wgpu_q8_nt.h"

#include <stdarg.h>
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

char *wgb_q8_nt_wgsl(int nt) {
    if (nt < 8 || nt % 8 || nt > 64) return NULL;
    text t = {0};
    put(&t, "const TPR: u32 = %du;\nconst RG: u32 = %du;\nconst NT: u32 = %du;\n", WGB_Q8_NT_TPR, WGB_Q8_NT_RG, nt);
    put(&t, "// Per-token sums of the group's two rows (x: the first, y: the second), token j in aj.\nstruct Acc {\n");
    for (int j = 0; j < nt; j++) put(&t, "    a%d: vec2<f32>,\n", j);
    put(&t, "}\n\n// Unit u of both rows times each of the n tokens from x0 on.\n");
    put(&t, "fn acc_tokens(acc: ptr<function, Acc>, b0: Q8W, b1: Q8W, x0: u32, u: u32, nu: u32, n: u32) {\n");
    put(&t, "    (*acc).a0 += tok_dot(b0, b1, x0, u, nu);\n");
    for (int j = 1; j < nt; j++)
        put(&t, "    if (n > %du) {\n        (*acc).a%d += tok_dot(b0, b1, x0 + %du, u, nu);\n    }\n", j, j, j);
    put(&t, "}\n\nfn token_sum(s: Acc, j: u32) -> vec2<f32> {\n    var v = s.a0;\n");
    for (int j = 1; j < nt; j++) put(&t, "    v = select(v, s.a%d, j == %du);\n", j, j);
    put(&t, "    return v;\n}\n\n");
    /* the tree's chunks of 8 tokens: lib_q8_nt.wgsl's partial holds one chunk a group */
    put(&t, "// Tokens 8 c .. 8 c + 7 of lane t into the group's partial sums (from pb on), and back.\n");
    put(&t, "fn acc_chunk_put(pb: u32, t: u32, a: Acc, c: u32) {\n    switch c {\n");
    for (int c = 0; c < nt / 8; c++) {
        put(&t, "        case %du: {\n", c);
        for (int j = 0; j < 8; j++) put(&t, "            partial[pb + %du * TPR + t] = a.a%d;\n", j, 8 * c + j);
        put(&t, "        }\n");
    }
    put(&t, "        default: {}\n    }\n}\n\n");
    put(&t, "fn acc_chunk_take(pb: u32, a: ptr<function, Acc>, c: u32) {\n    switch c {\n");
    for (int c = 0; c < nt / 8; c++) {
        put(&t, "        case %du: {\n", c);
        for (int j = 0; j < 8; j++) put(&t, "            (*a).a%d = partial[pb + %du * TPR];\n", 8 * c + j, j);
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
