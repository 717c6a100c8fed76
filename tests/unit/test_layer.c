/* A layer step on every backend of this build: the backend's `layer` op (where it has one)
 * against wg_layer_compose on the same backend (the primitive ops; same arithmetic up to
 * f32 rounding: bound 1e-4, max|diff| / max|value| of the residual stream), and both
 * against wg_layer_compose on the CPU backend (bound 5e-2: a GPU rounds the activations of
 * Q4_0 products to int8 blocks; a wrong bias, norm, rotation, window or row is O(1)).
 *
 * Layers: Q4_0 weights (so WebGPU's fused Q4_0 kernels apply), 2 heads of 128 over one KV
 * head, wider than the model (256 vs 128, as some Qwen3 sizes); plain (Llama), with q/k/v biases (Qwen2), with per-head q/k norms (Qwen3), NeoX
 * rotation of part of each head, and a sliding window of 4 positions (Mistral). Steps, in
 * order, on the same caches: a 5-token prompt; one decoding token (WebGPU: q/k/v, rope and
 * store in one kernel); three sequences of 1, 3 and 1 rows (WebGPU: stores and attention
 * of all rows at once); two sequences of 40 and 30 rows (more rows than that takes). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/layer.h"
#include "backend/registry.h"
#include "check.h"
#include "quant/quant.h"
#include "quant/types.h"

#define N_EMBD 128
#define N_HEAD 2
#define N_HEAD_KV 1
#define HEAD_DIM 128
#define N_FF 256
#define N_CTX 64
#define N_SEQ 3
#define ROWS 80
#define BOUND_SAME 1e-4
#define BOUND_CPU 5e-2

#define TEST_RAND_SEED 0x853c49e6748fea9bull
#include "test_rand.h"

typedef struct {
    const char *name;
    bool bias, qk_norm, neox;
    int rope_dims, window;
} variant;

/* Host copies of one layer's weights: Q4_0 matrices, f32 vectors. */
typedef struct {
    uint8_t *wq, *wk, *wv, *wo, *w_gate, *w_up, *w_down;
    float attn_norm[N_EMBD], ffn_norm[N_EMBD], bq[N_HEAD * HEAD_DIM], bk[N_HEAD_KV * HEAD_DIM],
        bv[N_HEAD_KV * HEAD_DIM], q_norm[HEAD_DIM], k_norm[HEAD_DIM];
} host_layer;

static uint8_t *q4_matrix(int64_t k, int64_t m) {
    const size_t rb = wg_type_row_bytes(WG_TYPE_Q4_0, k);
    uint8_t *w = malloc(rb * (size_t)m);
    float row[N_FF];
    for (int64_t r = 0; r < m; r++) {
        for (int64_t i = 0; i < k; i++) row[i] = frand() / sqrtf((float)k) * 1.7f;
        CHECK(wg_quantize_row(WG_TYPE_Q4_0, row, w + (size_t)r * rb, k));
    }
    return w;
}

static void fill(float *v, int n, float center, float spread) {
    for (int i = 0; i < n; i++) v[i] = center + spread * frand();
}

static void host_layer_make(host_layer *h) {
    const int qd = N_HEAD * HEAD_DIM, kvd = N_HEAD_KV * HEAD_DIM;
    h->wq = q4_matrix(N_EMBD, qd);
    h->wk = q4_matrix(N_EMBD, kvd);
    h->wv = q4_matrix(N_EMBD, kvd);
    h->wo = q4_matrix(qd, N_EMBD);
    h->w_gate = q4_matrix(N_EMBD, N_FF);
    h->w_up = q4_matrix(N_EMBD, N_FF);
    h->w_down = q4_matrix(N_FF, N_EMBD);
    fill(h->attn_norm, N_EMBD, 1.0f, 0.1f);
    fill(h->ffn_norm, N_EMBD, 1.0f, 0.1f);
    fill(h->bq, qd, 0.0f, 1.0f);
    fill(h->bk, kvd, 0.0f, 1.0f);
    fill(h->bv, kvd, 0.0f, 1.0f);
    fill(h->q_norm, HEAD_DIM, 1.0f, 0.5f);
    fill(h->k_norm, HEAD_DIM, 1.0f, 0.5f);
}

static void host_layer_free(host_layer *h) {
    free(h->wq), free(h->wk), free(h->wv), free(h->wo), free(h->w_gate), free(h->w_up), free(h->w_down);
}

/* A layer on one backend: weights, caches of N_SEQ sequences, activations. */
typedef struct {
    wg_backend *b;
    bool use_layer_op; /* the backend's layer op where it has one, else wg_layer_compose */
    wg_layer_desc d;
    wg_tensor *w[14];
    int n_w;
    wg_tensor *k_cache[N_SEQ], *v_cache[N_SEQ];
    wg_layer_acts a;
} runner;

static const wg_tensor *upload(runner *r, uint32_t type, int64_t k, int64_t m, const void *data) {
    char err[256] = "";
    wg_tensor *t = r->b->ops->weight_create(r->b, type, k, m, data, err, sizeof err);
    CHECK_MSG(t != NULL, "weight_create: %s", err);
    r->w[r->n_w++] = t;
    return t;
}

static bool runner_make(runner *r, wg_backend *b, bool use_layer_op, const host_layer *h, const variant *v) {
    memset(r, 0, sizeof *r);
    r->b = b;
    r->use_layer_op = use_layer_op;
    const int qd = N_HEAD * HEAD_DIM, kvd = N_HEAD_KV * HEAD_DIM;
    wg_layer_desc *d = &r->d;
    *d = (wg_layer_desc){.index = 1, .n_embd = N_EMBD, .n_head = N_HEAD, .n_head_kv = N_HEAD_KV,
                         .head_dim = HEAD_DIM, .n_ff = N_FF, .norm_eps = 1e-5f,
                         .rope = {.dims = v->rope_dims, .neox = v->neox, .base = 10000.0f, .scale = 1.0f},
                         .swa_window = v->window};
    d->attn_norm = upload(r, WG_TYPE_F32, N_EMBD, 1, h->attn_norm);
    d->ffn_norm = upload(r, WG_TYPE_F32, N_EMBD, 1, h->ffn_norm);
    d->wq = upload(r, WG_TYPE_Q4_0, N_EMBD, qd, h->wq);
    d->wk = upload(r, WG_TYPE_Q4_0, N_EMBD, kvd, h->wk);
    d->wv = upload(r, WG_TYPE_Q4_0, N_EMBD, kvd, h->wv);
    d->wo = upload(r, WG_TYPE_Q4_0, qd, N_EMBD, h->wo);
    d->w_gate = upload(r, WG_TYPE_Q4_0, N_EMBD, N_FF, h->w_gate);
    d->w_up = upload(r, WG_TYPE_Q4_0, N_EMBD, N_FF, h->w_up);
    d->w_down = upload(r, WG_TYPE_Q4_0, N_FF, N_EMBD, h->w_down);
    if (v->bias) {
        d->bq = upload(r, WG_TYPE_F32, qd, 1, h->bq);
        d->bk = upload(r, WG_TYPE_F32, kvd, 1, h->bk);
        d->bv = upload(r, WG_TYPE_F32, kvd, 1, h->bv);
    }
    if (v->qk_norm) {
        d->q_norm = upload(r, WG_TYPE_F32, HEAD_DIM, 1, h->q_norm);
        d->k_norm = upload(r, WG_TYPE_F32, HEAD_DIM, 1, h->k_norm);
    }
    char err[256] = "";
    for (int s = 0; s < N_SEQ; s++) {
        wg_tensor *(*mk)(wg_backend *, int64_t, int64_t, int, char *, size_t) = b->ops->kv_cache_create;
        r->k_cache[s] = mk ? mk(b, kvd, N_CTX, 0, err, sizeof err) : b->ops->buffer_create(b, kvd, N_CTX, err, sizeof err);
        r->v_cache[s] = mk ? mk(b, kvd, N_CTX, 1, err, sizeof err) : b->ops->buffer_create(b, kvd, N_CTX, err, sizeof err);
        CHECK_MSG(r->k_cache[s] && r->v_cache[s], "cache: %s", err);
        if (!r->k_cache[s] || !r->v_cache[s]) return false;
    }
    bool ok = wg_layer_acts_create(b, d, ROWS, &r->a, err, sizeof err) &&
              (use_layer_op || wg_layer_acts_for_compose(b, &r->a, err, sizeof err));
    CHECK_MSG(ok, "activations: %s", err);
    CHECK(r->a.up != NULL || (use_layer_op && b->ops->layer && b->ops->layer_without_up));
    for (int i = 0; i < r->n_w; i++) ok = ok && r->w[i];
    return ok;
}

static void runner_free(runner *r) {
    wg_layer_acts_free(r->b, &r->a);
    for (int s = 0; s < N_SEQ; s++) {
        if (r->k_cache[s]) r->b->ops->tensor_free(r->b, r->k_cache[s]);
        if (r->v_cache[s]) r->b->ops->tensor_free(r->b, r->v_cache[s]);
    }
    for (int i = 0; i < r->n_w; i++)
        if (r->w[i]) r->b->ops->tensor_free(r->b, r->w[i]);
}

/* One step: x (n rows) in, the residual stream after the layer out. */
static bool runner_step(runner *r, const int *seq, const int *rows, const int *pos0, int n_seqs, const float *x,
                        float *out) {
    wg_layer_seq seqs[N_SEQ];
    int32_t pos[ROWS];
    int n = 0;
    for (int i = 0; i < n_seqs; i++) {
        seqs[i] = (wg_layer_seq){.row0 = n, .n = rows[i], .pos0 = pos0[i], .k_cache = r->k_cache[seq[i]],
                                 .v_cache = r->v_cache[seq[i]]};
        for (int j = 0; j < rows[i]; j++) pos[n + j] = pos0[i] + j;
        n += rows[i];
    }
    const wg_layer_step step = {.n = n, .n_seqs = n_seqs, .seqs = seqs, .pos = pos};
    wg_backend *b = r->b;
    b->ops->write_rows(b, r->a.x, 0, n, x);
    if (r->use_layer_op && b->ops->layer) b->ops->layer(b, &r->d, &step, &r->a);
    else wg_layer_compose(b, &r->d, &step, &r->a);
    b->ops->read_rows(b, r->a.x, 0, n, out);
    const bool ok = b->ops->synchronize(b);
    CHECK_MSG(ok, "%s: %s", b->ops->name, b->ops->error(b));
    return ok;
}

static double rel_err(const float *a, const float *b, size_t n) {
    double md = 0.0, mb = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= md)) md = d; /* NaN propagates */
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
    }
    return mb > 0 ? md / mb : md;
}

static void run_variant(wg_backend *b, wg_backend *cpu, const host_layer *h, const variant *v) {
    runner fused, composed, ref;
    bool ok = runner_make(&fused, b, true, h, v) && runner_make(&composed, b, false, h, v) &&
              runner_make(&ref, cpu, false, h, v);
    static const struct {
        int n_seqs, seq[N_SEQ], rows[N_SEQ], pos0[N_SEQ];
    } steps[] = {
        {1, {0}, {5}, {0}},                      /* a prompt */
        {1, {0}, {1}, {5}},                      /* one decoding token */
        {3, {0, 1, 2}, {1, 3, 1}, {6, 0, 0}},    /* several sequences */
        {2, {1, 2}, {40, 30}, {3, 1}},           /* long chunks */
    };
    float *x = malloc(sizeof(float) * ROWS * N_EMBD), *o[3];
    for (int i = 0; i < 3; i++) o[i] = malloc(sizeof(float) * ROWS * N_EMBD);
    double worst_same = 0, worst_cpu = 0;
    for (size_t s = 0; ok && s < sizeof steps / sizeof steps[0]; s++) {
        int n = 0;
        for (int i = 0; i < steps[s].n_seqs; i++) n += steps[s].rows[i];
        for (int i = 0; i < n * N_EMBD; i++) x[i] = frand();
        ok = runner_step(&fused, steps[s].seq, steps[s].rows, steps[s].pos0, steps[s].n_seqs, x, o[0]) &&
             runner_step(&composed, steps[s].seq, steps[s].rows, steps[s].pos0, steps[s].n_seqs, x, o[1]) &&
             runner_step(&ref, steps[s].seq, steps[s].rows, steps[s].pos0, steps[s].n_seqs, x, o[2]);
        if (!ok) break;
        const size_t len = (size_t)n * N_EMBD;
        const double same = rel_err(o[0], o[1], len), vs_cpu = fmax(rel_err(o[0], o[2], len), rel_err(o[1], o[2], len));
        CHECK_MSG(same <= BOUND_SAME, "%s, %s, step %zu: layer op vs compose %.3g", b->ops->name, v->name, s, same);
        CHECK_MSG(vs_cpu <= BOUND_CPU, "%s, %s, step %zu: vs the CPU %.3g", b->ops->name, v->name, s, vs_cpu);
        worst_same = fmax(worst_same, same);
        worst_cpu = fmax(worst_cpu, vs_cpu);
    }
    CHECK_MSG(ok, "%s, %s: a step failed", b->ops->name, v->name);
    printf("%s, %s: layer op vs compose %.3g, vs the CPU %.3g\n", b->ops->name, v->name, worst_same, worst_cpu);
    free(x);
    for (int i = 0; i < 3; i++) free(o[i]);
    runner_free(&fused);
    runner_free(&composed);
    runner_free(&ref);
}

int main(void) {
    static const variant variants[] = {
        {"plain", false, false, false, HEAD_DIM, 0},
        {"q/k/v biases", true, false, false, HEAD_DIM, 0},
        {"q/k norm, NeoX rotation", false, true, true, HEAD_DIM, 0},
        {"partial NeoX rotation, biases", true, false, true, HEAD_DIM / 2, 0},
        {"sliding window 4", false, false, false, HEAD_DIM, 4},
    };
    host_layer h;
    host_layer_make(&h);
    char err[512] = "", desc[320];
    wg_backend *cpu = wg_backend_cpu_create(2, err, sizeof err);
    CHECK_MSG(cpu != NULL, "%s", err);
    /* every backend of this build */
    CHECK(wg_backend_registry_count() >= 1);
    for (int k = 0; cpu && k < wg_backend_registry_count(); k++) {
        wg_backend *b = wg_backend_create_kind(wg_backend_registry_kind(k), 2, -1, desc, sizeof desc, err, sizeof err);
        CHECK_MSG(b != NULL, "backend %s: %s", wg_backend_registry_name(k), err);
        if (!b) continue;
        for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) run_variant(b, cpu, &h, &variants[v]);
        b->ops->destroy(b);
    }
    if (cpu) cpu->ops->destroy(cpu);
    host_layer_free(&h);
    CHECK_DONE();
}
