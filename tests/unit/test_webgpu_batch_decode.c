/* Batched decode steps on WebGPU against the CPU backend: B sequences of mixed lengths (1 to
 * 23 positions) decode one token each in one wgllm_eval_batch, B = 1, 8, 9, 16, 24, 33, 64.
 * From 9 tokens on, the step's products take the route the adapter's autotune chose
 * (wgpu_autotune.h); the test forces one: the tiled int8 batch kernels
 * (kernels/matmul_q8_batch*.wgsl: plain, q/k/v, gate/up + SwiGLU), one dispatch each
 * for all the step's tokens, with the tile of the step's size (it checks that they ran and
 * that no other int8 product did); or, with the argument "nt", passes of 8, 16 and 32 tokens
 * through the nt kernels of that width (B = 9, 24, 40 for 8, 40 for the others; it checks that they ran, no other
 * width's did and the prompt kernel did not; the widest also on the q4_k_m mix). Models: Q4_0 and Q8_0, whose widths leave partial row tiles
 * and partial block steps (288 = 4.5 x 64 columns and rows, 96 KV rows, 800 FF rows), and
 * q4_k_m (Q4_K, with Q6_K where the mix gives more bits: the K-quants' 256-element rows; a
 * layer whose v is Q6_K takes q/k/v in three dispatches, the other in one), at one or two
 * step sizes for the latter two (run with --formats: ctest's second entry).
 * Each sequence's logits must match the CPU's within the bound below and give the same
 * greedy id. */
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
#include "quantize/quantize.h"
#include "wgllm.h"

#define MAX_SEQ 64
/* WebGPU's batched step against the same tokens alone on WebGPU (the one-token kernels):
 * only the f32 summation order differs (f32 KV cache); measured 3.2e-7 of the largest
 * logit on lavapipe (Q4_0). The median sequence is held to that bound; any one sequence to
 * FLIP_BOUND, since an element of x on an int8 rounding boundary may round either way
 * after another summation order (measured: one sequence of the Q8_0 and the q4_k_m model
 * moved by 2.7e-3 and 1.1e-3, the rest by at most 4.2e-7), while a wrong weight block, scale
 * or token moves every sequence by O(1e-2 .. 1). */
#define ALONE_BOUND 1e-4
#define FLIP_BOUND 2e-2
/* Against the CPU: both round x to int8 blocks, but a value on a rounding boundary may go
 * either way; on this random model one such value moved one sequence's logits by 1.2e-2
 * (the same with one sequence alone), the others by at most 3e-7. */
#define CPU_BOUND 3e-2
/* The CPU rounds x for the K-quants in blocks of 256 (Q8_K), WebGPU in blocks of 32: the
 * q4_k_m model's logits differ by up to 4.9e-2 (measured; the same with each token alone). */
#define CPU_BOUND_KQ 1e-1

/* A synthetic model of `type` (F32, Q8_0, Q4_0), or of the llama.cpp mix `mix` (quantized
 * from an F32 one) when mix is not NULL. */
static bool write_model(const char *path, const wg_llama_shape *shape, uint32_t type, const char *mix) {
    wg_vocab v;
    char err[512], tmp[300];
    if (!wg_synth_make_vocab(shape->n_vocab, &v, err, sizeof err)) {
        CHECK_MSG(0, "vocab: %s", err);
        return false;
    }
    snprintf(tmp, sizeof tmp, "%s.f32", path);
    wg_llama_write_opts opts = {.type = mix ? WG_TYPE_F32 : type, .n_threads = 2};
    bool ok = wg_synth_write(mix ? tmp : path, shape, &v, 11, &opts, err, sizeof err);
    CHECK_MSG(ok, "synth: %s", err);
    wg_vocab_clear(&v);
    if (ok && mix) {
        const wg_quantize_opts qo = {.n_threads = 2};
        const wg_ftype *ft = wg_ftype_find(mix);
        ok = ft && wg_quantize_file(tmp, path, ft, &qo, err, sizeof err);
        CHECK_MSG(ok, "quantize %s: %s", mix, ft ? err : "unknown type");
        remove(tmp);
    }
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

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The few kind's candidate for the steps under 9 tokens. */
static int g_few = WGB_TUNE_FEW_NT8;

/* lavapipe's subgroups are as wide as its vectors ("llvmpipe (LLVM 15.0.6, 256 bits)": 8
 * lanes), but it reports no smallest subgroup size. With g_claim, the model's adapter states
 * it as a GPU that reports one does, so that the nt kernels built from then on size their
 * workgroup-memory tree for the runs' sums only where that holds their groups' lanes
 * (wgb_q8_nt_wgsl); whether it did is returned. */
static bool g_claim;
static bool claim_min_subgroup(wgllm_model *gpu) {
    wg_adapter_info *a = &wgb_ctx_of(gpu->backend)->gpu->info[wgb_ctx_of(gpu->backend)->dev->adapter_index];
    const char *p = strstr(a->name, " bits)");
    if (!a->subgroup_min_size && strstr(a->name, "llvmpipe") && p) {
        while (p > a->name && p[-1] >= '0' && p[-1] <= '9') p--;
        a->subgroup_min_size = a->subgroup_max_size = (uint32_t)atoi(p) / 32;
    }
    return a->subgroup_min_size >= 8;
}

/* One step of b sequences on both backends; the relative logit errors per sequence against
 * the CPU (cpu[s]) and against WebGPU alone (alone[s]). `kernels`: how many distinct batch
 * kernels the step runs from 9 sequences on the route of the batch tiles. */
static void step(wgllm_model *cpu, wgllm_model *gpu, int b, int route, int kernels, double cpu_bound, double *err_cpu,
                 double *err_alone) {
    wgllm_context *cc[MAX_SEQ] = {0}, *gc[MAX_SEQ] = {0};
    wgllm_context_params cp = wgllm_context_default_params();
    cp.n_ctx = 32;
    char err[256];
    wgllm_token prompt[24], next[MAX_SEQ];
    const wgllm_token *toks[MAX_SEQ];
    int ns[MAX_SEQ];
    for (int i = 0; i < 24; i++) prompt[i] = 3 + (i * 41) % 500;
    /* the prompts too take the step's routes, not this adapter's measured ones: the same
     * caches (and int8 roundings) on every machine */
    wgb_ctx *c = wgb_ctx_of(gpu->backend);
    wgb_autotune_force(c, WGB_TUNE_Q4_0_DECODE, route);
    wgb_autotune_force(c, WGB_TUNE_Q4_0_FEW, g_few);
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
    uint64_t before[WGB_K_COUNT];
    memcpy(before, c->dispatched, sizeof before);
    CHECK(wgllm_eval_batch(cc, toks, ns, b) == WGLLM_OK);
    CHECK(wgllm_eval_batch(gc, toks, ns, b) == WGLLM_OK);
    int batch_kernels = 0, other_int8 = 0, nt = 0, prompt_kernels = 0;
    for (int k = WGB_K_Q8_BATCH; k <= WGB_K_Q8_BATCH_LAST; k++) batch_kernels += c->dispatched[k] != before[k];
    for (int k = WGB_K_Q8_MATVEC; k < WGB_K_Q8_BATCH; k++) other_int8 += c->dispatched[k] != before[k];
    /* the nt kernels of the route's width (under 9 tokens: the few kind's) and of no other */
    const int wide = route == WGB_TUNE_DECODE_NT16       ? 1
                     : route == WGB_TUNE_DECODE_NT32     ? 2
                     : route == WGB_TUNE_DECODE_NT16R4   ? 3
                     : route == WGB_TUNE_DECODE_NT16L8   ? 4
                     : route == WGB_TUNE_DECODE_NT32L8   ? 5
                     : route == WGB_TUNE_DECODE_NT16R4L8 ? 6
                                                         : 0;
    const int width = b >= WGB_Q8_BATCH_MIN_N      ? wide
                      : g_few == WGB_TUNE_FEW_NT8L8   ? 7
                      : g_few == WGB_TUNE_FEW_NT8R4L8 ? 8
                                                      : 0;
    int other_width = 0;
    for (int k = WGB_K_Q8_NT; k < WGB_K_Q8_MATMUL; k++) {
        const bool ran = c->dispatched[k] != before[k];
        const bool ours = ((k - WGB_K_Q8_NT) % (WGB_Q8_NT_WIDTH_COUNT * WGB_Q8F_COUNT)) / WGB_Q8F_COUNT == width;
        nt += ran && ours;
        other_width += ran && !ours;
    }
    for (int k = WGB_K_Q8_MATMUL; k < WGB_K_Q8_BATCH; k++) prompt_kernels += c->dispatched[k] != before[k];
    const bool tiles = b >= WGB_Q8_BATCH_MIN_N && route == WGB_TUNE_DECODE_BATCH;
    CHECK_MSG(batch_kernels == (tiles ? kernels : 0), "%d sequences: %d batch kernels ran", b, batch_kernels);
    CHECK_MSG(!tiles || other_int8 == 0, "%d sequences: %d other int8 kernels ran", b, other_int8);
    CHECK_MSG(tiles || b < 2 || nt > 0, "%d sequences: no nt kernel ran", b);
    CHECK_MSG(prompt_kernels == 0, "%d sequences: the prompt kernel ran", b);
    CHECK_MSG(other_width == 0, "%d sequences: %d nt kernels of another width ran", b, other_width);
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
        err_cpu[s] = d / mx;
        /* ids agree unless the top two are closer than the error */
        int ic = argmax(lc, n_vocab), ig = argmax(lg, n_vocab);
        CHECK_MSG(ic == ig || fabs((double)lc[ic] - lc[ig]) <= 2 * cpu_bound * mx,
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
        err_alone[s] = d / mx;
    }
    free(batched);
    for (int s = 0; s < b; s++) {
        wgllm_context_free(cc[s]);
        wgllm_context_free(gc[s]);
    }
}

/* The steps of one model (failures recorded). */
static void run_model(const char *name, const wg_llama_shape *shape, uint32_t type, const char *mix, int route,
                      int kernels, double cpu_bound, const int *sizes, int n_sizes) {
    const char *how = route == WGB_TUNE_DECODE_NT         ? "nt passes of 8"
                      : route == WGB_TUNE_DECODE_NT16     ? "nt passes of 16"
                      : route == WGB_TUNE_DECODE_NT32     ? "nt passes of 32"
                      : route == WGB_TUNE_DECODE_NT16R4   ? "nt passes of 16, four rows a group"
                      : route == WGB_TUNE_DECODE_NT16L8   ? "nt passes of 16, groups of 8 lanes"
                      : route == WGB_TUNE_DECODE_NT32L8   ? "nt passes of 32, groups of 8 lanes"
                      : route == WGB_TUNE_DECODE_NT16R4L8 ? "nt passes of 16, four rows and 8 lanes a group"
                                                          : "batch tiles";
    char few[160];
    snprintf(few, sizeof few, "%s%s", how,
             g_few == WGB_TUNE_FEW_NT8L8     ? " (2-8 tokens: groups of 8 lanes)"
             : g_few == WGB_TUNE_FEW_NT8R4L8 ? " (2-8 tokens: four rows and 8 lanes a group)"
                                             : "");
    how = few;
    char path[256];
    snprintf(path, sizeof path, "test_webgpu_batch_decode_%d.gguf", (int)getpid());
    if (!write_model(path, shape, type, mix)) return;
    wgllm_model *cpu = load(path, WGLLM_BACKEND_CPU), *gpu = load(path, WGLLM_BACKEND_WEBGPU);
    remove(path);
    char label[256];
    snprintf(label, sizeof label, "%s%s", how,
             g_claim && gpu && claim_min_subgroup(gpu) ? " [smallest subgroup stated: the tree adds runs only]" : "");
    how = label;
    for (int i = 0; cpu && gpu && i < n_sizes; i++) {
        const int b = sizes[i];
        double e_cpu[MAX_SEQ], e_alone[MAX_SEQ];
        for (int s = 0; s < MAX_SEQ; s++) e_cpu[s] = e_alone[s] = NAN; /* a sequence left out fails */
        step(cpu, gpu, b, route, kernels, cpu_bound, e_cpu, e_alone);
        qsort(e_cpu, (size_t)b, sizeof e_cpu[0], cmp_double);
        qsort(e_alone, (size_t)b, sizeof e_alone[0], cmp_double);
        const double worst_cpu = e_cpu[b - 1], med = e_alone[(b - 1) / 2], worst = e_alone[b - 1];
        CHECK_MSG(worst_cpu <= cpu_bound, "%s, %d sequences, %s: logits differ from the CPU's by %.3g", name, b, how,
                  worst_cpu);
        CHECK_MSG(med <= ALONE_BOUND && worst <= FLIP_BOUND,
                  "%s, %d sequences, %s: logits differ from the tokens alone by %.3g (median), %.3g (worst)", name, b,
                  how, med, worst);
        printf("%s, %2d sequences, %s: worst logit error vs the CPU %.3g (bound %.0e), vs alone on WebGPU: median "
               "%.3g (bound %.0e), worst %.3g (bound %.0e)\n", name, b, how, worst_cpu, cpu_bound, med, ALONE_BOUND,
               worst, FLIP_BOUND);
    }
    wgllm_model_free(cpu);
    wgllm_model_free(gpu);
}

/* No argument: the Q4_0 model on the batch tiles; --formats: the Q8_0 and q4_k_m ones (a
 * second ctest entry, so that each run stays short on a loaded machine); nt: the Q4_0 model
 * on passes of 8 through the nt kernels, at a size of each autotune bucket. */
int main(int argc, char **argv) {
    const bool formats = argc > 1 && strcmp(argv[1], "--formats") == 0;
    const bool nt_route = argc > 1 && strcmp(argv[1], "nt") == 0;
    CHECK_MSG(argc == 1 || (argc == 2 && (formats || nt_route)), "usage: %s [--formats | nt]", argv[0]);
    setenv("WGLLM_WEBGPU_KV_F16", "0", 1); /* f32 caches: the comparisons measure the products */
    const wg_llama_shape odd = {288, 800, 2, 9, 3, 512, 256, false, {0}};
    const wg_llama_shape kq = {256, 768, 2, 4, 2, 512, 256, false, {0}}; /* rows of whole super-blocks */
    /* the other formats: fewer sizes (test_webgpu_kquant checks every tile of every format) */
    static const int all[] = {1, 8, 9, 16, 24, 33, 64}, few[] = {12, 40}, one[] = {40}, nt_sizes[] = {9, 24, 40}, few_sizes[] = {2, 5, 8};
    const int batch = WGB_TUNE_DECODE_BATCH;
    /* plain (wo, down), q/k/v and SwiGLU of one tile shape */
    if (nt_route) {
        /* passes of 8 at a size of each autotune bucket; the wider ones at 40 (whole passes and a
         * part), those of 16 on an output head whose last group has rows past the matrix; a
         * K-quant mix on the widest and on four rows a group; groups of 8 lanes (their runs'
         * sums through workgroup memory) likewise */
        const wg_llama_shape odd_vocab = {288, 800, 2, 9, 3, 509, 256, false, {0}};
        run_model("q4_0", &odd, WG_TYPE_Q4_0, NULL, WGB_TUNE_DECODE_NT, 3, CPU_BOUND, nt_sizes,
                  (int)(sizeof nt_sizes / sizeof nt_sizes[0]));
        run_model("q4_0", &odd_vocab, WG_TYPE_Q4_0, NULL, WGB_TUNE_DECODE_NT16, 3, CPU_BOUND, one, 1);
        run_model("q4_0", &odd_vocab, WG_TYPE_Q4_0, NULL, WGB_TUNE_DECODE_NT16R4, 3, CPU_BOUND, one, 1);
        run_model("q4_0", &odd, WG_TYPE_Q4_0, NULL, WGB_TUNE_DECODE_NT32, 3, CPU_BOUND, one, 1);
        run_model("q4_k_m", &kq, 0, "q4_k_m", WGB_TUNE_DECODE_NT16R4, 4, CPU_BOUND_KQ, one, 1);
        run_model("q4_k_m", &kq, 0, "q4_k_m", WGB_TUNE_DECODE_NT32, 4, CPU_BOUND_KQ, one, 1);
        run_model("q4_0", &odd_vocab, WG_TYPE_Q4_0, NULL, WGB_TUNE_DECODE_NT16L8, 3, CPU_BOUND, one, 1);
        run_model("q4_0", &odd_vocab, WG_TYPE_Q4_0, NULL, WGB_TUNE_DECODE_NT16R4L8, 3, CPU_BOUND, one, 1);
        run_model("q4_0", &odd, WG_TYPE_Q4_0, NULL, WGB_TUNE_DECODE_NT32L8, 3, CPU_BOUND, one, 1);
        g_claim = true; /* from here on, where the adapter is lavapipe: the runs' tree */
        run_model("q4_k_m", &kq, 0, "q4_k_m", WGB_TUNE_DECODE_NT32L8, 4, CPU_BOUND_KQ, one, 1);
        run_model("q4_k_m", &kq, 0, "q4_k_m", WGB_TUNE_DECODE_NT16R4L8, 4, CPU_BOUND_KQ, one, 1);
        /* steps of 2-8 tokens: one pass of 8 with groups of 8 lanes (of two rows, of four) */
        g_few = WGB_TUNE_FEW_NT8L8;
        run_model("q4_0", &odd_vocab, WG_TYPE_Q4_0, NULL, WGB_TUNE_DECODE_NT, 3, CPU_BOUND, few_sizes,
                  (int)(sizeof few_sizes / sizeof few_sizes[0]));
        run_model("q4_k_m", &kq, 0, "q4_k_m", WGB_TUNE_DECODE_NT, 4, CPU_BOUND_KQ, few_sizes + 2, 1);
        g_few = WGB_TUNE_FEW_NT8R4L8;
        run_model("q4_0", &odd_vocab, WG_TYPE_Q4_0, NULL, WGB_TUNE_DECODE_NT, 3, CPU_BOUND, few_sizes + 1, 2);
        run_model("q4_k_m", &kq, 0, "q4_k_m", WGB_TUNE_DECODE_NT, 4, CPU_BOUND_KQ, few_sizes + 2, 1);
    } else if (!formats) {
        run_model("q4_0", &odd, WG_TYPE_Q4_0, NULL, batch, 3, CPU_BOUND, all, (int)(sizeof all / sizeof all[0]));
    } else {
        run_model("q8_0", &odd, WG_TYPE_Q8_0, NULL, batch, 3, CPU_BOUND, one, 1);
        /* plain of Q4_K and of Q6_K, SwiGLU of Q4_K, q/k/v of Q4_K (the layer whose v is Q4_K) */
        run_model("q4_k_m", &kq, 0, "q4_k_m", batch, 4, CPU_BOUND_KQ, few, (int)(sizeof few / sizeof few[0]));
    }
    CHECK_DONE();
}
