/* Batched decode steps on WebGPU against the CPU backend: B sequences of mixed lengths (1 to
 * 23 positions) decode one token each in one wgllm_eval_batch, B = 1, 8, 9, 16, 24, 33, 64.
 * From 9 tokens on, the step's products take the route the adapter's autotune chose
 * (wgpu_autotune.h); the test forces one: the tiled int8 batch kernels
 * (kernels/matmul_q4_0_q8_batch*.wgsl: plain, q/k/v, gate/up + SwiGLU), one dispatch each
 * for all the step's tokens, with the tile of the step's size; or, with the argument "nt",
 * passes of 8 tokens through the nt kernels (B = 9, 24, 40). It checks which ran.
 * The model's widths leave partial row tiles and partial block steps (288 = 4.5 x 64
 * columns and rows, 96 KV rows, 800 FF rows). Each sequence's logits must match the CPU's
 * within the bound below and give the same greedy id. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/webgpu/wgpu_autotune.h"
#include "backend/webgpu/wgpu_internal.h"
#include "check.h"
#include "convert/synth.h"
#include "model/model.h"
#include "quant/types.h"
#include "wgllm.h"

#define MAX_SEQ 64
/* WebGPU's batched step against the same tokens alone on WebGPU (the one-token kernels):
 * only the f32 summation order differs (f32 KV cache); measured 3.2e-7 of the largest
 * logit on lavapipe. */
#define ALONE_BOUND 1e-4
/* Against the CPU: both round x to int8 blocks, but a value on a rounding boundary may go
 * either way; on this random model one such value moved one sequence's logits by 1.2e-2
 * (the same with one sequence alone), the others by at most 3e-7. */
#define CPU_BOUND 3e-2

static bool write_model(const char *path) {
    const wg_llama_shape shape = {288, 800, 2, 9, 3, 512, 256, false, {0}};
    wg_vocab v;
    char err[512];
    if (!wg_synth_make_vocab(shape.n_vocab, &v, err, sizeof err)) {
        CHECK_MSG(0, "vocab: %s", err);
        return false;
    }
    wg_llama_write_opts opts = {.type = WG_TYPE_Q4_0, .n_threads = 2};
    bool ok = wg_synth_write(path, &shape, &v, 11, &opts, err, sizeof err);
    CHECK_MSG(ok, "synth: %s", err);
    wg_vocab_clear(&v);
    return ok;
}

static wgllm_model *load(const char *path, wgllm_backend_kind kind) {
    wgllm_model_params mp = wgllm_model_default_params();
    mp.backend = kind;
    mp.n_threads = 2;
    wgllm_model *m = NULL;
    char err[512];
    if (wgllm_model_load(path, &mp, &m, err, sizeof err) != WGLLM_OK) CHECK_MSG(0, "load: %s", err);
    return m;
}

static int argmax(const float *l, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    return best;
}

/* One step of b sequences on both backends; the worst relative logit errors against the
 * CPU (vs[0]) and against WebGPU alone (vs[1]). */
static void step(wgllm_model *cpu, wgllm_model *gpu, int b, int route, double vs[2]) {
    wgllm_context *cc[MAX_SEQ] = {0}, *gc[MAX_SEQ] = {0};
    wgllm_context_params cp = wgllm_context_default_params();
    cp.n_ctx = 32;
    char err[256];
    wgllm_token prompt[24], next[MAX_SEQ];
    const wgllm_token *toks[MAX_SEQ];
    int ns[MAX_SEQ];
    for (int i = 0; i < 24; i++) prompt[i] = 3 + (i * 41) % 500;
    for (int s = 0; s < b; s++) {
        CHECK(wgllm_context_create(cpu, &cp, &cc[s], err, sizeof err) == WGLLM_OK);
        CHECK(wgllm_context_create(gpu, &cp, &gc[s], err, sizeof err) == WGLLM_OK);
        if (!cc[s] || !gc[s]) return;
        const int len = 1 + (s * 7) % 23; /* mixed lengths */
        CHECK(wgllm_eval(cc[s], prompt + s % 2, len, false) == WGLLM_OK);
        CHECK(wgllm_eval(gc[s], prompt + s % 2, len, false) == WGLLM_OK);
        next[s] = 3 + (s * 13) % 500;
        toks[s] = &next[s];
        ns[s] = 1;
    }
    wgb_ctx *c = wgb_ctx_of(gpu->backend);
    wgb_autotune_force(c, WGB_TUNE_Q4_0_DECODE, route);
    uint64_t before[WGB_K_COUNT];
    memcpy(before, c->dispatched, sizeof before);
    CHECK(wgllm_eval_batch(cc, toks, ns, b) == WGLLM_OK);
    CHECK(wgllm_eval_batch(gc, toks, ns, b) == WGLLM_OK);
    int batch_kernels = 0;
    for (int k = WGB_K_Q8_BATCH; k <= WGB_K_Q8_BATCH_LAST; k++) batch_kernels += c->dispatched[k] != before[k];
    /* plain (wo, down), q/k/v and SwiGLU of one tile shape; or none, the nt kernels in
     * passes of 8 tokens (and never the prompt kernel) */
    const bool tiles = b >= WGB_Q8_BATCH_MIN_N && route == WGB_TUNE_DECODE_BATCH;
    CHECK_MSG(batch_kernels == (tiles ? 3 : 0), "%d sequences: %d batch kernels ran", b, batch_kernels);
    const int f = WGB_Q8F_Q4_0;
    const uint64_t nt = c->dispatched[WGB_K_Q8_NT + f] - before[WGB_K_Q8_NT + f] +
                        c->dispatched[WGB_K_Q8_NT_SWIGLU + f] - before[WGB_K_Q8_NT_SWIGLU + f] +
                        c->dispatched[WGB_K_Q8_NT_QKV + f] - before[WGB_K_Q8_NT_QKV + f];
    CHECK_MSG((nt > 0) == (b > 1 && !tiles), "%d sequences: %llu nt dispatches", b, (unsigned long long)nt);
    CHECK_MSG(c->dispatched[WGB_K_MATMUL_Q4_0_Q8] == before[WGB_K_MATMUL_Q4_0_Q8], "%d sequences: prompt kernel ran",
              b);
    const int n_vocab = wgllm_n_vocab(cpu);
    float *batched = malloc(sizeof(float) * (size_t)n_vocab);
    for (int s = 0; s < b && batched; s++) {
        const float *lc = wgllm_get_logits(cc[s], 0), *lg = wgllm_get_logits(gc[s], 0);
        CHECK(lc && lg);
        if (!lc || !lg) break;
        double d = 0, mx = 0;
        for (int i = 0; i < n_vocab; i++) {
            d = fmax(d, fabs((double)lc[i] - lg[i]));
            mx = fmax(mx, fabs((double)lc[i]));
        }
        vs[0] = fmax(vs[0], d / mx);
        /* ids agree unless the top two are closer than the error */
        int ic = argmax(lc, n_vocab), ig = argmax(lg, n_vocab);
        CHECK_MSG(ic == ig || fabs((double)lc[ic] - lc[ig]) <= 2 * CPU_BOUND * mx,
                  "%d sequences: sequence %d greedy id %d on the CPU, %d on WebGPU", b, s, ic, ig);
        /* the same token alone on WebGPU */
        memcpy(batched, lg, sizeof(float) * (size_t)n_vocab);
        wgllm_context_truncate(gc[s], wgllm_context_n_past(gc[s]) - 1);
        CHECK(wgllm_eval(gc[s], &next[s], 1, false) == WGLLM_OK);
        lg = wgllm_get_logits(gc[s], 0);
        CHECK(lg != NULL);
        if (!lg) break;
        d = 0;
        for (int i = 0; i < n_vocab; i++) d = fmax(d, fabs((double)batched[i] - lg[i]));
        vs[1] = fmax(vs[1], d / mx);
    }
    free(batched);
    for (int s = 0; s < b; s++) {
        wgllm_context_free(cc[s]);
        wgllm_context_free(gc[s]);
    }
}

int main(int argc, char **argv) {
    char path[256];
    snprintf(path, sizeof path, "test_webgpu_batch_decode_%d.gguf", (int)getpid());
    if (!write_model(path)) CHECK_DONE();
    setenv("WGLLM_WEBGPU_KV_F16", "0", 1); /* f32 caches: the comparisons measure the products */
    wgllm_model *cpu = load(path, WGLLM_BACKEND_CPU), *gpu = load(path, WGLLM_BACKEND_WEBGPU);
    remove(path);
    if (!cpu || !gpu) {
        wgllm_model_free(cpu);
        wgllm_model_free(gpu);
        CHECK_DONE();
    }
    /* argument "nt": the nt passes at a size of each autotune bucket, else the batch tiles at
     * every size (two ctest entries, each well under a minute under ASan) */
    static const int batch_sizes[] = {1, 8, 9, 16, 24, 33, 64}, nt_sizes[] = {9, 24, 40};
    const bool nt_route = argc > 1 && !strcmp(argv[1], "nt");
    const int route = nt_route ? WGB_TUNE_DECODE_NT : WGB_TUNE_DECODE_BATCH;
    const int *sizes = nt_route ? nt_sizes : batch_sizes;
    const size_t n_sizes = nt_route ? sizeof nt_sizes / sizeof nt_sizes[0] : sizeof batch_sizes / sizeof batch_sizes[0];
    const char *how = nt_route ? "nt passes" : "batch tiles";
    for (size_t i = 0; i < n_sizes; i++) {
        double e[2] = {0, 0};
        const int n = sizes[i];
        step(cpu, gpu, n, route, e);
        CHECK_MSG(e[0] <= CPU_BOUND, "%d sequences, %s: logits differ from the CPU's by %.3g", n, how, e[0]);
        CHECK_MSG(e[1] <= ALONE_BOUND, "%d sequences, %s: logits differ from the tokens alone by %.3g", n, how, e[1]);
        printf("%2d sequences, %s: worst logit error vs the CPU %.3g (bound %.0e), vs alone on WebGPU %.3g (bound "
               "%.0e)\n",
               n, how, e[0], CPU_BOUND, e[1], ALONE_BOUND);
    }
    wgllm_model_free(cpu);
    wgllm_model_free(gpu);
    CHECK_DONE();
}
