/* The WebGPU backend's layer steps issue the kernels they issued when the model code chose
 * the fusions itself: on a plain Llama model with Q4_0 weights (9 layers, 8 heads of 32,
 * 4 KV heads), the dispatches per kernel and the command buffers of
 *   - a decode step of one sequence (q/k/v + rope + store fused, SwiGLU fused),
 *   - queued greedy steps (no flush every few layers),
 *   - a decode step of three sequences (q/k/v in one product, rotation, stores and
 *     attention of all rows at once),
 *   - a 40-token prompt (the batch-sized tiled products, q/k/v and gate/up fused),
 *   - a step of two 40-token prompts (more rows than the batched attention takes),
 *   - decode steps of 8, 16, 32 and 64 sequences (9 dispatches a layer for each: before the
 *     batch-sized tiles, 13 for 16 and 21 for 32, 8 tokens per product dispatch)
 * equal the counts recorded before the fusions moved behind the backend seam. The f16
 * and f32 variants of a kernel count as one (devices differ in shader-f16). Also: a step of
 * a context with a matmul observer (the primitive ops) shows every product's input and gives
 * the logits of the fused layer. Then a decode step of the same model in Q8_0, Q4_K_M and
 * Q5_K_M (Q6_K attn_v and ffn_down in layers 0, 3, 6, 7, 8, Q6_K output): the same 7
 * dispatches a layer as Q4_0, through the int8 kernels of their formats (q/k/v of Q4_K or
 * Q5_K with a Q6_K v in one). A one-token step quantizes no activation apart: the norms,
 * attention and the gate/up kernel write the int8 copies their products read. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/webgpu/wgpu_autotune.h"
#include "backend/webgpu/wgpu_internal.h"
#include "check.h"
#include "convert/synth.h"
#include "model/model.h"
#include "quantize/quantize.h"
#include "quant/types.h"
#include "wgllm.h"

typedef struct {
    const char *kernel;
    int calls;
} expect;

typedef struct {
    const char *what;
    int submits; /* < 0: not checked */
    expect e[16];
} scenario;

/* The counts per kernel since the last call, as "name=calls" sorted by kernel index. */
static void take_counts(wgb_ctx *c, uint64_t *last, uint64_t *last_submits, int *calls, int *submits) {
    for (int k = 0; k < WGB_K_COUNT; k++) {
        calls[k] = (int)(c->dispatched[k] - last[k]);
        last[k] = c->dispatched[k];
    }
    *submits = (int)(c->submitted - *last_submits);
    *last_submits = c->submitted;
}

/* A kernel's label without an "_f16" suffix. */
static void base_label(const char *label, char *out, size_t size) {
    snprintf(out, size, "%s", label);
    size_t n = strlen(out);
    if (n > 4 && strcmp(out + n - 4, "_f16") == 0) out[n - 4] = 0;
}

static void check_counts(wgb_ctx *c, const scenario *sc, const int *calls, int submits) {
    char got[2048] = "", name[64];
    size_t used = 0;
    int total_expected = 0, total = 0;
    for (int k = 0; k < WGB_K_COUNT; k++) {
        if (!calls[k]) continue;
        total += calls[k];
        base_label(c->pl.k[k].label, name, sizeof name);
        used += (size_t)snprintf(got + used, sizeof got - used, "%s=%d ", name, calls[k]);
        if (used >= sizeof got) used = sizeof got - 1;
    }
    for (const expect *e = sc->e; e->kernel; e++) {
        int n = 0;
        for (int k = 0; k < WGB_K_COUNT; k++) {
            base_label(c->pl.k[k].label, name, sizeof name);
            if (strcmp(name, e->kernel) == 0) n += calls[k];
        }
        total_expected += e->calls;
        CHECK_MSG(n == e->calls, "%s: %s dispatched %d times, expected %d (got: %s)", sc->what, e->kernel, n, e->calls,
                  got);
    }
    CHECK_MSG(total == total_expected, "%s: %d dispatches, expected %d (got: %s)", sc->what, total, total_expected,
              got);
    if (sc->submits >= 0)
        CHECK_MSG(submits == sc->submits, "%s: %d command buffers, expected %d", sc->what, submits, sc->submits);
    printf("%s: %d dispatches, %d command buffers: %s\n", sc->what, total, submits, got);
}

static bool write_model_as(const char *path, uint32_t type) {
    const wg_llama_shape shape = {256, 768, 9, 8, 4, 512, 1024, false, {0}};
    wg_vocab v;
    char err[512];
    if (!wg_synth_make_vocab(shape.n_vocab, &v, err, sizeof err)) {
        CHECK_MSG(0, "vocab: %s", err);
        return false;
    }
    wg_llama_write_opts opts = {.type = type, .n_threads = 2};
    bool ok = wg_synth_write(path, &shape, &v, 7, &opts, err, sizeof err);
    CHECK_MSG(ok, "synth: %s", err);
    wg_vocab_clear(&v);
    return ok;
}

static bool write_model(const char *path) { return write_model_as(path, WG_TYPE_Q4_0); }

static bool on_token(wgllm_token t, void *user) { return true; }

/* A decode step of one sequence (after a 5-token prompt) of the model at path, against sc. */
static void check_decode(const char *path, const scenario *sc) {
    wgllm_model_params mp = wgllm_model_default_params();
    mp.backend = WGLLM_BACKEND_WEBGPU;
    wgllm_model *m = NULL;
    wgllm_context *ctx = NULL;
    char err[512];
    if (wgllm_model_load(path, &mp, &m, err, sizeof err) != WGLLM_OK) {
        CHECK_MSG(0, "%s: WebGPU model load: %s", sc->what, err);
        return;
    }
    CHECK(wgllm_context_create(m, NULL, &ctx, err, sizeof err) == WGLLM_OK);
    wgb_ctx *c = wgb_ctx_of(m->backend);
    /* the route whose kernels are counted below, with nothing measured (a measurement here
     * would add its own dispatches and command buffers): the batch tiles for 9-64 tokens,
     * the prompt tiles' first shape, whole-run groups for 2-8 tokens */
    wgb_autotune_force(c, WGB_TUNE_Q4_0_DECODE, WGB_TUNE_DECODE_BATCH);
    wgb_autotune_force(c, WGB_TUNE_Q8_PROMPT, 0);
    wgb_autotune_force(c, WGB_TUNE_Q4_0_FEW, WGB_TUNE_FEW_NT8);
    uint64_t last[WGB_K_COUNT] = {0}, last_submits = 0;
    int calls[WGB_K_COUNT], submits;
    const wgllm_token prompt[6] = {3, 40, 77, 114, 151, 188};
    if (ctx) {
        CHECK(wgllm_eval(ctx, prompt, 5, false) == WGLLM_OK);
        take_counts(c, last, &last_submits, calls, &submits);
        CHECK(wgllm_eval(ctx, prompt + 5, 1, false) == WGLLM_OK);
        take_counts(c, last, &last_submits, calls, &submits);
        check_counts(c, sc, calls, submits);
        wgllm_context_free(ctx);
    }
    wgllm_model_free(m);
}

/* Decode steps of Q8_0, Q4_K_M and Q5_K_M files of the same shape. */
static void check_other_formats(void) {
    char f32[256], path[256], err[512] = "";
    snprintf(path, sizeof path, "test_webgpu_layer_dispatches_q8_%d.gguf", (int)getpid());
    if (write_model_as(path, WG_TYPE_Q8_0)) {
        static const scenario q8 = {"decode, one sequence, q8_0", 3, {{"get_rows_q8_0", 1},
{"copy", 1},
{"matvec_q8_0_q8", 19},
{"rms_norm_q8", 19},
{"matvec_q8_0_q8_swiglu", 9},
{"attention", 9},
{"matvec_q8_0_q8_qkv", 9}, {NULL, 0}}};
        check_decode(path, &q8);
    }
    remove(path);
    snprintf(f32, sizeof f32, "test_webgpu_layer_dispatches_f32_%d.gguf", (int)getpid());
    snprintf(path, sizeof path, "test_webgpu_layer_dispatches_q4km_%d.gguf", (int)getpid());
    const wg_quantize_opts qo = {.n_threads = 2};
    const bool have_f32 = write_model_as(f32, WG_TYPE_F32);
    bool ok = have_f32 && wg_quantize_file(f32, path, wg_ftype_find("q4_k_m"), &qo, err, sizeof err);
    CHECK_MSG(ok, "q4_k_m: %s", err);
    if (ok) {
        static const scenario q4km = {"decode, one sequence, q4_k_m", 3, {{"get_rows_q4_k", 1},
{"copy", 1},
{"matvec_q4_k_q8", 13},
{"matvec_q6_k_q8", 6},
{"rms_norm_q8", 19},
{"matvec_q4_k_q8_swiglu", 9},
{"attention", 9},
{"matvec_q4_k_q8_qkv", 4},
{"matvec_q4_k_q8_qkv_v_q6_k", 5}, {NULL, 0}}};
        check_decode(path, &q4km);
    }
    remove(path);
    ok = have_f32 && wg_quantize_file(f32, path, wg_ftype_find("q5_k_m"), &qo, err, sizeof err);
    CHECK_MSG(ok, "q5_k_m: %s", err);
    if (ok) {
        static const scenario q5km = {"decode, one sequence, q5_k_m", 3, {{"get_rows_q5_k", 1},
{"copy", 1},
{"matvec_q5_k_q8", 13},
{"matvec_q6_k_q8", 6},
{"rms_norm_q8", 19},
{"matvec_q5_k_q8_swiglu", 9},
{"attention", 9},
{"matvec_q5_k_q8_qkv", 4},
{"matvec_q5_k_q8_qkv_v_q6_k", 5}, {NULL, 0}}};
        check_decode(path, &q5km);
    }
    remove(f32);
    remove(path);
}

typedef struct {
    int calls, rows_ffn_down; /* products announced; rows of blk.8.ffn_down's input */
    double sum_down;           /* sum of blk.8.ffn_down's input (after SwiGLU) */
} observed;

static void on_matmul(void *user, const char *weight, const float *x, int n_rows, int64_t row_len) {
    observed *o = user;
    o->calls++;
    if (strcmp(weight, "blk.8.ffn_down.weight") != 0) return;
    o->rows_ffn_down += n_rows;
    for (int64_t i = 0; i < n_rows * row_len; i++) o->sum_down += x[i];
}

int main(void) {
    char path[256];
    snprintf(path, sizeof path, "test_webgpu_layer_dispatches_%d.gguf", (int)getpid());
    if (!write_model(path)) CHECK_DONE();
    wgllm_model_params mp = wgllm_model_default_params();
    mp.backend = WGLLM_BACKEND_WEBGPU;
    wgllm_model *m = NULL;
    char err[512];
    if (wgllm_model_load(path, &mp, &m, err, sizeof err) != WGLLM_OK) {
        remove(path);
        fprintf(stderr, "cannot load on WebGPU: %s\n", err);
        CHECK_MSG(0, "WebGPU model load: %s", err);
        CHECK_DONE();
    }
    remove(path);
    wgb_ctx *c = wgb_ctx_of(m->backend);
    /* the route whose kernels are counted below, with nothing measured (a measurement here
     * would add its own dispatches and command buffers): the batch tiles for 9-64 tokens,
     * the prompt tiles' first shape, whole-run groups for 2-8 tokens */
    wgb_autotune_force(c, WGB_TUNE_Q4_0_DECODE, WGB_TUNE_DECODE_BATCH);
    wgb_autotune_force(c, WGB_TUNE_Q8_PROMPT, 0);
    wgb_autotune_force(c, WGB_TUNE_Q4_0_FEW, WGB_TUNE_FEW_NT8);
    uint64_t last[WGB_K_COUNT] = {0}, last_submits = 0;
    int calls[WGB_K_COUNT], submits;
    wgllm_context *ctx[3] = {NULL};
    for (int i = 0; i < 3; i++) CHECK(wgllm_context_create(m, NULL, &ctx[i], err, sizeof err) == WGLLM_OK);
    wgllm_token prompt[80];
    for (int i = 0; i < 80; i++) prompt[i] = 3 + (i * 37) % 500;

    /* one sequence: a prompt, then one token */
    CHECK(wgllm_eval(ctx[0], prompt, 5, false) == WGLLM_OK);
    take_counts(c, last, &last_submits, calls, &submits);
    CHECK(wgllm_eval(ctx[0], prompt + 5, 1, false) == WGLLM_OK);
    take_counts(c, last, &last_submits, calls, &submits);
    static const scenario decode1 = {"decode, one sequence", 3, {{"get_rows_q4_0", 1},
{"copy", 1},
{"matvec_q4_0_q8", 19},
{"rms_norm_q8", 19},
{"matvec_q4_0_q8_swiglu", 9},
{"attention", 9},
{"matvec_q4_0_q8_qkv", 9}, {NULL, 0}}};
    check_counts(c, &decode1, calls, submits);

    /* queued greedy steps: 3 tokens, each step but the first queued behind the last */
    CHECK(wgllm_generate_greedy(ctx[0], 3, on_token, NULL, false) == 3);
    take_counts(c, last, &last_submits, calls, &submits);
    static const scenario greedy = {"greedy, 3 tokens", 3, {{"get_rows_q4_0", 2},
{"copy", 2},
{"argmax", 3},
{"matvec_q4_0_q8", 38},
{"rms_norm_q8", 38},
{"matvec_q4_0_q8_swiglu", 18},
{"attention", 18},
{"matvec_q4_0_q8_qkv", 18}, {NULL, 0}}};
    check_counts(c, &greedy, calls, submits);

    /* three sequences decoding together */
    CHECK(wgllm_eval(ctx[1], prompt, 7, false) == WGLLM_OK);
    CHECK(wgllm_eval(ctx[2], prompt, 3, false) == WGLLM_OK);
    take_counts(c, last, &last_submits, calls, &submits);
    const wgllm_token *toks[3] = {prompt + 10, prompt + 11, prompt + 12};
    const int ns[3] = {1, 1, 1};
    CHECK(wgllm_eval_batch(ctx, toks, ns, 3) == WGLLM_OK);
    take_counts(c, last, &last_submits, calls, &submits);
    static const scenario batch3 = {"decode, three sequences", 3, {{"get_rows_q4_0", 1},
{"copy", 6},
{"quantize_x_q8", 9},
{"rms_norm_q8", 19},
{"matvec_q4_0_q8_nt", 19},
{"attention", 9},
{"kv_store_rows", 9},
{"matvec_q4_0_q8_nt_swiglu", 9},
{"matvec_q4_0_q8_nt_qkv", 9}, {NULL, 0}}};
    check_counts(c, &batch3, calls, submits);

    /* a prompt of 40 tokens on a fresh sequence */
    wgllm_context_truncate(ctx[1], 0);
    CHECK(wgllm_eval(ctx[1], prompt, 40, false) == WGLLM_OK);
    take_counts(c, last, &last_submits, calls, &submits);
    static const scenario prompt40 = {"prompt, 40 tokens", 5, {{"get_rows_q4_0", 1},
{"rope", 18},
{"copy", 1},
{"quantize_x_q8", 18},
{"matvec_q4_0_q8", 1},
{"rms_norm_q8", 19},
{"kv_store", 9},
{"attention", 9},
{"matmul_q4_0_q8_batch", 18},
{"matmul_q4_0_q8_batch_qkv", 9},
{"matmul_q4_0_q8_batch_swiglu", 9}, {NULL, 0}}};
    check_counts(c, &prompt40, calls, submits);

    /* two prompts of 40 tokens in one step */
    wgllm_context_truncate(ctx[1], 0);
    wgllm_context_truncate(ctx[2], 0);
    const wgllm_token *toks2[2] = {prompt, prompt + 40};
    const int ns2[2] = {40, 40};
    CHECK(wgllm_eval_batch(ctx + 1, toks2, ns2, 2) == WGLLM_OK);
    take_counts(c, last, &last_submits, calls, &submits);
    /* 4 command buffers: the first step with 65 rows or more (the prompt kernel's gate and up
     * scratch made, not grown: growing flushes) */
    static const scenario batch80 = {"two prompts, 80 rows", 4, {{"get_rows_q4_0", 1},
{"rope", 36},
{"swiglu", 9},
{"copy", 4},
{"quantize_x_q8", 18},
{"rms_norm_q8", 19},
{"matvec_q4_0_q8_nt", 1},
{"kv_store", 18},
{"attention", 18},
{"matmul_q4_0_q8", 63}, {NULL, 0}}};
    check_counts(c, &batch80, calls, submits);

    /* 8, 16, 32 and 64 sequences decoding together: from 9 on, each product is one tiled
     * int8 dispatch for all the step's tokens (kernels/matmul_q8_batch*.wgsl), and the
     * stores and attention of up to 64 rows one dispatch each, so a layer takes as many
     * dispatches as with 8 */
    {
        static const scenario streams[4] = {
            {"decode, 8 sequences", 3, {{"get_rows_q4_0", 1},
{"copy", 16},
{"quantize_x_q8", 9},
{"rms_norm_q8", 19},
{"matvec_q4_0_q8_nt", 19},
{"attention", 9},
{"kv_store_rows", 9},
{"matvec_q4_0_q8_nt_swiglu", 9},
{"matvec_q4_0_q8_nt_qkv", 9}, {NULL, 0}}},
            {"decode, 16 sequences", 3, {{"get_rows_q4_0", 1},
{"copy", 32},
{"quantize_x_q8", 9},
{"rms_norm_q8", 19},
{"matmul_q4_0_q8_batch", 19},
{"attention", 9},
{"kv_store_rows", 9},
{"matmul_q4_0_q8_batch_swiglu", 9},
{"matmul_q4_0_q8_batch_qkv", 9}, {NULL, 0}}},
            {"decode, 32 sequences", 3, {{"get_rows_q4_0", 1},
{"copy", 64},
{"quantize_x_q8", 9},
{"rms_norm_q8", 19},
{"matmul_q4_0_q8_batch", 19},
{"attention", 9},
{"kv_store_rows", 9},
{"matmul_q4_0_q8_batch_swiglu", 9},
{"matmul_q4_0_q8_batch_qkv", 9}, {NULL, 0}}},
            {"decode, 64 sequences", 3, {{"get_rows_q4_0", 1},
{"copy", 128},
{"quantize_x_q8", 9},
{"rms_norm_q8", 19},
{"matmul_q4_0_q8_batch", 19},
{"attention", 9},
{"kv_store_rows", 9},
{"matmul_q4_0_q8_batch_swiglu", 9},
{"matmul_q4_0_q8_batch_qkv", 9}, {NULL, 0}}},
        };
        wgllm_context *many[64] = {NULL};
        wgllm_context_params cp = wgllm_context_default_params();
        cp.n_ctx = 16;
        const wgllm_token *mt[64];
        int mn[64];
        for (int i = 0; i < 64; i++) {
            CHECK(wgllm_context_create(m, &cp, &many[i], err, sizeof err) == WGLLM_OK);
            CHECK(many[i] && wgllm_eval(many[i], prompt + i, 1 + i % 5, false) == WGLLM_OK);
            mt[i] = prompt + i % 40 + 40;
            mn[i] = 1;
        }
        take_counts(c, last, &last_submits, calls, &submits);
        for (int i = 0; i < 4; i++) {
            CHECK(wgllm_eval_batch(many, mt, mn, 8 << i) == WGLLM_OK);
            take_counts(c, last, &last_submits, calls, &submits);
            check_counts(c, &streams[i], calls, submits);
        }
        for (int i = 0; i < 64; i++) wgllm_context_free(many[i]);
    }

    /* A context with a matmul observer: its steps run the primitive ops (wg_layer_compose,
     * with the n_ff buffer the fused layer goes without), see every product's input and give
     * the logits of the fused layer. */
    wgllm_context_truncate(ctx[0], 0);
    wgllm_context_truncate(ctx[1], 0);
    CHECK(wgllm_eval(ctx[0], prompt, 6, false) == WGLLM_OK);
    const float *l0 = wgllm_get_logits(ctx[0], 0);
    float *plain = l0 ? malloc(sizeof(float) * 512) : NULL;
    if (plain) memcpy(plain, l0, sizeof(float) * 512);
    observed o = {0};
    CHECK(wgllm_context_set_matmul_observer(ctx[1], on_matmul, &o) == WGLLM_OK);
    CHECK(wgllm_eval(ctx[1], prompt, 6, false) == WGLLM_OK);
    const float *l1 = wgllm_get_logits(ctx[1], 0);
    CHECK_MSG(o.calls == 9 * 7 + 1, "%d products observed, expected %d", o.calls, 9 * 7 + 1);
    CHECK(o.rows_ffn_down == 6 && o.sum_down != 0.0);
    double md = 0, mx = 0;
    for (int i = 0; plain && l1 && i < 512; i++) {
        md = fmax(md, fabs((double)plain[i] - l1[i]));
        mx = fmax(mx, fabs((double)plain[i]));
    }
    CHECK_MSG(plain && l1 && md <= 1e-4 * mx, "observed logits differ by %.3g (max %.3g)", md, mx);
    printf("observed step: %d products, logits within %.3g of the fused layer's\n", o.calls, mx > 0 ? md / mx : md);
    free(plain);

    for (int i = 0; i < 3; i++) wgllm_context_free(ctx[i]);
    wgllm_model_free(m);
    check_other_formats();
    CHECK_DONE();
}
