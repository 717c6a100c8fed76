/* The prompt attention kernel (kernels/attention_flash.wgsl) on WebGPU (CI: lavapipe):
 *   1. the backend's attention op with the kernel taking every step (threshold 1), against
 *      a double-precision reference over the caches as stored, for 1 to 300 tokens (tile
 *      multiples and not), prompts after earlier tokens (pos0 > 0), rows from row0 > 0,
 *      GQA groups 1, 2, 4 and 8, head_dim 64 and 128, sliding windows, positions split over
 *      workgroups (a short prompt after a long history, merged by attention_combine.wgsl),
 *      each over an f16 and an f32 KV cache; the test checks the kernel (and the merge)
 *      ran. Bound: max |got - ref| / max |ref| <= 1e-4, as tests/unit/test_backend_ops.c
 *      holds attention (lavapipe: at most 7.7e-7, f32 sums in another order);
 *   2. the default threshold: a step of WGB_FA_ROWS tokens takes the kernel, a decode step
 *      (one token) and a short step keep attention.wgsl;
 *   3. end to end: a model with head_dim 128 and 4 query heads per kv head (f32 weights, f32
 *      KV cache) evaluates a prompt in two steps (the second after the first's positions)
 *      through the kernel, and its logits for every prompt token match the CPU backend's
 *      within 1e-4 of the largest (lavapipe: 2.7e-6); greedy decoding after it gives the
 *      CPU's ids. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/registry.h"
#include "backend/webgpu/wgpu_internal.h"
#include "check.h"
#include "convert/synth.h"
#include "model/model.h"
#include "quant/types.h"
#include "wgllm.h"

#define BOUND 1e-4
#define E2E_BOUND 1e-4

static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static float frand(void) { /* uniform in [-1, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) / 4503599627370496.0 - 1.0);
}

static float *rand_vec(size_t n, float scale) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; v && i < n; i++) v[i] = frand() * scale;
    return v;
}

typedef struct {
    int n_head, n_head_kv, hd, pos0, n, window, row0;
} shape;

/* Query rows i (position pos0 + i) over the caches as stored. */
static void attention_ref(const float *q, int64_t q_stride, const float *kc, const float *vc, int64_t kv_stride,
                          const shape *s, double *out) {
    double *sc = malloc(sizeof(double) * (size_t)(s->pos0 + s->n));
    for (int i = 0; sc && i < s->n; i++)
        for (int h = 0; h < s->n_head; h++) {
            const int p = s->pos0 + i, kvh = h / (s->n_head / s->n_head_kv);
            const int t0 = s->window > 0 && p - s->window + 1 > 0 ? p - s->window + 1 : 0;
            const float *qi = q + (size_t)i * (size_t)q_stride + (size_t)h * (size_t)s->hd;
            double mx = -INFINITY, sum = 0;
            for (int t = t0; t <= p; t++) {
                const float *kt = kc + (size_t)t * (size_t)kv_stride + (size_t)kvh * (size_t)s->hd;
                double d = 0;
                for (int e = 0; e < s->hd; e++) d += (double)qi[e] * kt[e];
                sc[t] = d / sqrt((double)s->hd);
                if (sc[t] > mx) mx = sc[t];
            }
            for (int t = t0; t <= p; t++) sum += sc[t] = exp(sc[t] - mx);
            double *o = out + (size_t)i * (size_t)q_stride + (size_t)h * (size_t)s->hd;
            for (int e = 0; e < s->hd; e++) o[e] = 0;
            for (int t = t0; t <= p; t++) {
                const float *vt = vc + (size_t)t * (size_t)kv_stride + (size_t)kvh * (size_t)s->hd;
                for (int e = 0; e < s->hd; e++) o[e] += sc[t] / sum * vt[e];
            }
        }
    free(sc);
}

static wg_tensor *act(wg_backend *b, int64_t ne0, int64_t ne1, const float *data) {
    char err[256];
    wg_tensor *t = b->ops->buffer_create(b, ne0, ne1, err, sizeof err);
    CHECK_MSG(t != NULL, "buffer_create: %s", err);
    if (t && data) b->ops->write_rows(b, t, 0, ne1, data);
    return t;
}

static float *read_back(wg_backend *b, const wg_tensor *t, int64_t rows) {
    float *v = calloc((size_t)(t->ne0 * rows), sizeof(float));
    if (v) b->ops->read_rows(b, t, 0, rows, v);
    return v;
}

/* The attention op on shape s over f16 (half) or f32 caches: the relative error against
 * the reference; *kernel: the attention kernels that ran (bit 0: flash, 1: the merge of
 * splits, 2: attention.wgsl). */
static double run_case(wg_backend *b, const shape *s, bool half, int *kernels) {
    wgb_ctx *c = wgb_ctx_of(b);
    c->kv_f16 = half; /* for the caches made below */
    const int64_t qd = (int64_t)s->n_head * s->hd, kvd = (int64_t)s->n_head_kv * s->hd, ctx_len = s->pos0 + s->n + 3;
    const int rows = s->row0 + s->n;
    float *q = rand_vec((size_t)(qd * rows), 3.0f); /* a sharp softmax */
    float *k = rand_vec((size_t)(kvd * ctx_len), 1.0f), *v = rand_vec((size_t)(kvd * ctx_len), 1.0f);
    char err[256];
    wg_tensor *Q = act(b, qd, rows, q), *O = act(b, qd, rows, NULL);
    wg_tensor *Kc = b->ops->kv_cache_create(b, kvd, ctx_len, 0, err, sizeof err);
    wg_tensor *Vc = b->ops->kv_cache_create(b, kvd, ctx_len, 1, err, sizeof err);
    double *ref = calloc((size_t)(qd * s->n), sizeof(double));
    double e = INFINITY;
    *kernels = 0;
    if (Q && O && Kc && Vc && ref) {
        CHECK_MSG(wgb_t(Kc)->half == half, "cache precision: asked %s", half ? "f16" : "f32");
        b->ops->write_rows(b, Kc, 0, ctx_len, k);
        b->ops->write_rows(b, Vc, 0, ctx_len, v);
        uint64_t before[WGB_K_COUNT];
        memcpy(before, c->dispatched, sizeof before);
        b->ops->attention(b, Q, Kc, Vc, s->pos0, s->n, s->n_head, s->n_head_kv, s->hd, s->window, O, s->row0);
        CHECK_MSG(b->ops->synchronize(b), "backend error: %s", b->ops->error(b));
        const int fk = wgb_flash_kernel(s->hd, half);
        if (fk >= 0 && c->dispatched[fk] > before[fk]) *kernels |= 1;
        if (c->dispatched[WGB_K_ATTN_COMBINE] > before[WGB_K_ATTN_COMBINE]) *kernels |= 2;
        const int old = half ? WGB_K_ATTENTION_F16 : WGB_K_ATTENTION;
        if (c->dispatched[old] > before[old]) *kernels |= 4;
        float *kc = read_back(b, Kc, ctx_len), *vc = read_back(b, Vc, ctx_len), *got = read_back(b, O, rows);
        if (kc && vc && got) {
            attention_ref(q + (size_t)s->row0 * (size_t)qd, qd, kc, vc, kvd, s, ref);
            double num = 0, den = 0;
            for (int64_t i = 0; i < qd * s->n; i++) {
                const double d = fabs((double)got[(size_t)(s->row0 * qd + i)] - ref[i]);
                if (!(d <= num)) num = d; /* NaN wins */
                if (fabs(ref[i]) > den) den = fabs(ref[i]);
            }
            e = den > 0 ? num / den : num;
        }
        free(kc);
        free(vc);
        free(got);
    }
    wg_tensor *ts[4] = {Q, O, Kc, Vc};
    for (int i = 0; i < 4; i++)
        if (ts[i]) b->ops->tensor_free(b, ts[i]);
    free(q);
    free(k);
    free(v);
    free(ref);
    return e;
}

static void test_kernel(wg_backend *b) {
    wgb_ctx *c = wgb_ctx_of(b);
    const bool f16_dev = c->pl.f16;
    CHECK_MSG(f16_dev, "the device has no shader-f16: the f16 cache variant would go untested");
    for (int hd = 64; hd <= 128; hd *= 2)
        for (int h = 0; h < 2; h++) {
            const int k = wgb_flash_kernel(hd, h);
            char err[1024] = "";
            CHECK_MSG(k >= 0 && wgb_pipelines_add_flash(c->dev, &c->pl, k, err, sizeof err),
                      "no flash kernel for head_dim %d, %s cache: %s", hd, h ? "f16" : "f32", err);
        }
    c->flash_min_tokens = 1; /* every step through the kernel */
    static const shape cases[] = {
        {8, 8, 64, 0, 1, 0, 0},       /* one token, group 1 */
        {8, 2, 64, 0, 37, 0, 0},      /* group 4, a tile and a bit */
        {16, 2, 128, 0, 300, 0, 0},   /* group 8, 300 tokens */
        {4, 4, 128, 100, 45, 0, 0},   /* after 100 earlier tokens */
        {8, 1, 64, 250, 7, 0, 2},     /* group 8, a few tokens after 250, rows from 2 */
        {4, 2, 128, 3, 96, 0, 0},     /* group 2, three tiles exactly */
        {4, 4, 64, 900, 33, 0, 0},    /* few workgroups, a long history: split positions */
        {8, 2, 128, 40, 70, 24, 1},   /* sliding window */
        {2, 2, 64, 600, 50, 550, 0},  /* window over split positions */
        {32, 4, 64, 0, 64, 0, 0},     /* TinyLlama's heads */
    };
    double worst = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int half = 1; half >= 0; half--) {
            const shape *s = &cases[i];
            int kernels;
            const double e = run_case(b, s, half, &kernels);
            printf("  heads=%2d/%d hd=%3d pos0=%3d n=%3d window=%3d row0=%d %s cache: rel. error %.3g%s\n",
                   s->n_head, s->n_head_kv, s->hd, s->pos0, s->n, s->window, s->row0, half ? "f16" : "f32", e,
                   kernels & 2 ? " (split positions)" : "");
            CHECK_MSG(e <= BOUND, "heads=%d/%d hd=%d pos0=%d n=%d window=%d %s: rel. error %.3g above %.0e",
                      s->n_head, s->n_head_kv, s->hd, s->pos0, s->n, s->window, half ? "f16" : "f32", e, BOUND);
            CHECK_MSG((kernels & 5) == 1, "case %zu: the flash kernel did not take the step (kernels %d)", i, kernels);
            if (s->pos0 >= 600) CHECK_MSG(kernels & 2, "case %zu: positions were not split", i);
            if (!(e <= worst)) worst = e;
        }
    printf("flash attention: worst relative error %.3g (bound %.0e)\n", worst, BOUND);
}

/* The default threshold: on a CPU adapter WGB_FA_ROWS tokens take the kernel, fewer (decode)
 * do not; on a GPU the kernel is off unless WGLLM_WEBGPU_FLASH_ATTN asks (slower there). The
 * threshold itself is then checked on any adapter. */
static void test_threshold(wg_backend *b, uint32_t dflt) {
    wgb_ctx *c = wgb_ctx_of(b);
    const bool cpu = c->gpu->info[c->dev->adapter_index].type == WGPUAdapterType_CPU;
    CHECK_MSG(dflt == (cpu ? WGB_FA_ROWS : 0), "default threshold %u on a %s adapter, expected %d", dflt,
              cpu ? "CPU" : "GPU", cpu ? WGB_FA_ROWS : 0);
    c->flash_min_tokens = WGB_FA_ROWS;
    const shape s[3] = {{4, 4, 64, 10, WGB_FA_ROWS, 0, 0}, {4, 4, 64, 10, 1, 0, 0}, {4, 4, 64, 10, 5, 0, 0}};
    for (int i = 0; i < 3; i++) {
        int kernels;
        const double e = run_case(b, &s[i], true, &kernels);
        CHECK_MSG(e <= BOUND, "threshold case %d: rel. error %.3g", i, e);
        CHECK_MSG(i == 0 ? (kernels & 5) == 1 : (kernels & 5) == 4, "%d tokens: kernels %d", s[i].n, kernels);
    }
}

/* ---- end to end ---- */
static bool write_model(const char *path) {
    /* head_dim 512 / 4 = 128, 4 query heads per kv head */
    const wg_llama_shape shape = {512, 256, 2, 4, 1, 300, 256, false, {0}};
    wg_vocab v;
    char err[512];
    if (!wg_synth_make_vocab(shape.n_vocab, &v, err, sizeof err)) {
        CHECK_MSG(0, "vocab: %s", err);
        return false;
    }
    wg_llama_write_opts opts = {.type = WG_TYPE_F32, .n_threads = 2};
    bool ok = wg_synth_write(path, &shape, &v, 5, &opts, err, sizeof err);
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

/* Worst relative error of the n rows of logits of g against those of c. */
static double logits_err(wgllm_context *cc, wgllm_context *gc, int n, int n_vocab) {
    double worst = 0;
    for (int r = 0; r < n; r++) {
        const float *lc = wgllm_get_logits(cc, r), *lg = wgllm_get_logits(gc, r);
        CHECK(lc && lg);
        if (!lc || !lg) return INFINITY;
        double d = 0, mx = 0;
        for (int i = 0; i < n_vocab; i++) {
            const double x = fabs((double)lc[i] - lg[i]);
            if (!(x <= d)) d = x;
            mx = fmax(mx, fabs((double)lc[i]));
        }
        if (!(d / mx <= worst)) worst = d / mx;
    }
    return worst;
}

static void test_end_to_end(void) {
    char path[256];
    snprintf(path, sizeof path, "test_webgpu_flash_attention_%d.gguf", (int)getpid());
    if (!write_model(path)) return;
    wgllm_model *cpu = load(path, WGLLM_BACKEND_CPU), *gpu = load(path, WGLLM_BACKEND_WEBGPU);
    remove(path);
    wgllm_context *cc = NULL, *gc = NULL;
    wgllm_context_params cp = wgllm_context_default_params();
    cp.n_ctx = 160;
    char err[256];
    if (cpu && gpu) {
        CHECK(wgllm_context_create(cpu, &cp, &cc, err, sizeof err) == WGLLM_OK);
        CHECK(wgllm_context_create(gpu, &cp, &gc, err, sizeof err) == WGLLM_OK);
    }
    if (cc && gc) {
        wgb_ctx *c = wgb_ctx_of(gpu->backend);
        const int fk = wgb_flash_kernel(128, false);
        CHECK(fk >= 0);
        const uint64_t before = fk >= 0 ? c->dispatched[fk] : 0;
        wgllm_token prompt[105];
        for (int i = 0; i < 105; i++) prompt[i] = 3 + (i * 37) % 290;
        const int n_vocab = wgllm_n_vocab(cpu);
        /* 60 tokens, then 45 after them */
        double e = 0;
        for (int part = 0; part < 2; part++) {
            const wgllm_token *t = prompt + (part ? 60 : 0);
            const int n = part ? 45 : 60;
            CHECK(wgllm_eval(cc, t, n, true) == WGLLM_OK);
            CHECK(wgllm_eval(gc, t, n, true) == WGLLM_OK);
            e = fmax(e, logits_err(cc, gc, n, n_vocab));
        }
        /* two steps of two layers */
        CHECK_MSG(fk >= 0 && c->dispatched[fk] - before == 4, "the flash kernel ran %d times, expected 4",
                  fk >= 0 ? (int)(c->dispatched[fk] - before) : -1);
        printf("end to end: prompt logits, worst relative error against the CPU %.3g (bound %.0e)\n", e, E2E_BOUND);
        CHECK_MSG(e <= E2E_BOUND, "prompt logits: relative error %.3g above %.0e", e, E2E_BOUND);
        for (int i = 0; i < 8; i++) {
            const wgllm_token ic = wgllm_greedy(cc), ig = wgllm_greedy(gc);
            CHECK_MSG(ic == ig && ic >= 0, "greedy step %d: CPU %d, WebGPU %d", i, ic, ig);
            if (ic != ig || ic < 0) break;
            CHECK(wgllm_eval(cc, &ic, 1, false) == WGLLM_OK);
            CHECK(wgllm_eval(gc, &ig, 1, false) == WGLLM_OK);
        }
    }
    wgllm_context_free(cc);
    wgllm_context_free(gc);
    wgllm_model_free(cpu);
    wgllm_model_free(gpu);
}

int main(void) {
    char desc[128], err[1024] = "";
    wg_backend *b = wg_backend_create_kind(WGLLM_BACKEND_WEBGPU, 2, -1, desc, sizeof desc, err, sizeof err);
    CHECK_MSG(b != NULL, "no WebGPU backend: %s", err);
    if (b) {
        const uint32_t dflt = wgb_ctx_of(b)->flash_min_tokens;
        test_kernel(b);
        test_threshold(b, dflt);
        b->ops->destroy(b);
    }
    setenv("WGLLM_WEBGPU_KV_F16", "0", 1); /* the model's caches in f32 */
    char fa[16];
    snprintf(fa, sizeof fa, "%d", WGB_FA_ROWS);
    setenv("WGLLM_WEBGPU_FLASH_ATTN", fa, 1); /* the kernel on any adapter (a GPU's default is off) */
    test_end_to_end();
    CHECK_DONE();
}
