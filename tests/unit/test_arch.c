/* The architecture table (model/arch.h) and loading through it: every family's entry, key
 * and tensor names; a Phi-3 file whose fused attn_qkv (with its bias) and ffn_up are split
 * at load into row views that hold exactly the rows of q, k, v, gate and up, in q8_0 (rows
 * that start at unaligned offsets) and f32, on the CPU and on WebGPU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "model/model.h"
#include "quant/quant.h"

enum { D = 64, N_HEAD = 4, N_KV = 2, HD = 16, DQ = N_HEAD * HD, DKV = N_KV * HD, FF = 96, N_LAYER = 2, VOCAB = 7 };

static void test_table(void) {
    static const char *const names[] = {"llama", "qwen2", "qwen3", "phi3"};
    const bool neox[] = {false, true, true, true};
    for (int i = 0; i < 4; i++) {
        const wg_arch *a = wg_arch_find(names[i], strlen(names[i]));
        CHECK_MSG(a && !strcmp(a->name, names[i]) && !strcmp(a->prefix, names[i]), "%s", names[i]);
        if (!a) continue;
        CHECK(a->rope_neox == neox[i]);
        CHECK(strstr(wg_arch_supported_list(), names[i]) != NULL);
        CHECK(a->output == WG_OPTIONAL); /* tied output everywhere */
        CHECK(!a->embd_scale && !a->logit_softcap);
        char buf[96];
        for (int r = 0; r < WG_TENSOR_COUNT_; r++)
            CHECK_MSG(wg_arch_tensor_name(a, (wg_tensor_role)r, 31, "weight", buf, sizeof buf), "%s role %d", a->name,
                      r);
    }
    const wg_arch *llama = wg_arch_find("llama", 5), *qwen2 = wg_arch_find("qwen2", 5),
                  *qwen3 = wg_arch_find("qwen3", 5), *phi3 = wg_arch_find("phi3", 4);
    if (!llama || !qwen2 || !qwen3 || !phi3) return;
    CHECK(llama->sliding_window && llama->rope_freqs && llama->qkv_bias == WG_OPTIONAL &&
          llama->fused_qkv == WG_ABSENT);
    CHECK(qwen2->qkv_bias == WG_REQUIRED && qwen2->qk_norm == WG_ABSENT && !qwen2->sliding_window);
    CHECK(qwen3->qk_norm == WG_REQUIRED && qwen3->qkv_bias == WG_OPTIONAL);
    CHECK(phi3->fused_qkv == WG_OPTIONAL && phi3->fused_gate_up == WG_REQUIRED && phi3->sliding_window &&
          phi3->longrope_factors && !phi3->rope_freqs);
    CHECK(!wg_arch_find("llam", 4) && !wg_arch_find("llama ", 6) && !wg_arch_find("Llama", 5) &&
          !wg_arch_find("gpt2", 4) && !wg_arch_find("", 0) && !wg_arch_find(NULL, 0));
    CHECK(wg_arch_find("phi3-extra", 4) == phi3); /* a length, not a C string */

    char buf[96];
    CHECK(wg_arch_key(qwen3, "attention.key_length", buf, sizeof buf) && !strcmp(buf, "qwen3.attention.key_length"));
    CHECK(!wg_arch_key(qwen3, "attention.key_length", buf, 10));
    CHECK(wg_arch_tensor_name(phi3, WG_TENSOR_ATTN_QKV, 7, "bias", buf, sizeof buf) &&
          !strcmp(buf, "blk.7.attn_qkv.bias"));
    CHECK(wg_arch_tensor_name(llama, WG_TENSOR_ROPE_FREQS, 3, "weight", buf, sizeof buf) &&
          !strcmp(buf, "rope_freqs.weight"));
    CHECK(wg_arch_tensor_name(qwen3, WG_TENSOR_ATTN_K_NORM, 0, "weight", buf, sizeof buf) &&
          !strcmp(buf, "blk.0.attn_k_norm.weight"));
    CHECK(!wg_arch_tensor_name(qwen3, WG_TENSOR_ATTN_K_NORM, 0, "weight", buf, 12));
    CHECK(!wg_arch_tensor_name(qwen3, WG_TENSOR_COUNT_, 0, "weight", buf, sizeof buf));
}

static float value(int tensor, int r, int c) {
    return (float)(tensor + 1) * 0.01f * (float)((r * 37 + c * 11) % 23 - 11);
}

/* A tensor's bytes: rows of `type` (f32 or q8_0), value(tensor, r, c). */
static void *make_rows(int tensor, uint32_t type, int64_t ne0, int64_t ne1, size_t *bytes) {
    const size_t rb = wg_type_row_bytes(type, ne0);
    uint8_t *data = malloc(rb * (size_t)ne1);
    float *row = malloc(sizeof(float) * (size_t)ne0);
    for (int64_t r = 0; r < ne1; r++) {
        for (int64_t c = 0; c < ne0; c++) row[c] = value(tensor, (int)r, (int)c);
        wg_quantize_row(type, row, data + (size_t)r * rb, ne0);
    }
    free(row);
    *bytes = rb * (size_t)ne1;
    return data;
}

typedef struct {
    char name[64];
    uint32_t type;
    int64_t ne0, ne1;
    int n_dims;
} spec;

static int specs_of_model(spec *s) {
    int n = 0;
#define ADD(nm, ty, a, b, dims)                                                                                        \
    (snprintf(s[n].name, sizeof s[n].name, "%s", nm), s[n].type = ty, s[n].ne0 = a, s[n].ne1 = b, s[n].n_dims = dims,  \
     n++)
    ADD("token_embd.weight", WG_TYPE_F32, D, VOCAB, 2);
    for (int l = 0; l < N_LAYER; l++) {
        const uint32_t t = l == 0 ? WG_TYPE_Q8_0 : WG_TYPE_F32;
        char nm[64];
#define LADD(suffix, ty, a, b, dims) (snprintf(nm, sizeof nm, "blk.%d.%s", l, suffix), ADD(nm, ty, a, b, dims))
        LADD("attn_norm.weight", WG_TYPE_F32, D, 1, 1);
        LADD("attn_qkv.weight", t, D, DQ + 2 * DKV, 2);
        LADD("attn_qkv.bias", WG_TYPE_F32, DQ + 2 * DKV, 1, 1);
        LADD("attn_output.weight", t, DQ, D, 2);
        LADD("ffn_norm.weight", WG_TYPE_F32, D, 1, 1);
        LADD("ffn_up.weight", t, D, 2 * FF, 2);
        LADD("ffn_down.weight", t, FF, D, 2);
#undef LADD
    }
    ADD("output_norm.weight", WG_TYPE_F32, D, 1, 1);
#undef ADD
    return n;
}

static bool write_phi3(const char *path) {
    static const char *const toks[VOCAB] = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "c"};
    const float scores[VOCAB] = {0};
    const int32_t types[VOCAB] = {2, 3, 3, 1, 1, 1, 1};
    gguf_writer *w = gguf_writer_create();
    bool ok = gguf_writer_set_str(w, "general.architecture", "phi3") &&
              gguf_writer_set_u32(w, "phi3.context_length", 64) && gguf_writer_set_u32(w, "phi3.embedding_length", D) &&
              gguf_writer_set_u32(w, "phi3.block_count", N_LAYER) &&
              gguf_writer_set_u32(w, "phi3.feed_forward_length", FF) &&
              gguf_writer_set_u32(w, "phi3.attention.head_count", N_HEAD) &&
              gguf_writer_set_u32(w, "phi3.attention.head_count_kv", N_KV) &&
              gguf_writer_set_u32(w, "phi3.rope.dimension_count", 12) &&
              gguf_writer_set_f32(w, "phi3.attention.layer_norm_rms_epsilon", 1e-5f) &&
              gguf_writer_set_u32(w, "phi3.attention.sliding_window", 16) &&
              gguf_writer_set_str(w, "tokenizer.ggml.model", "llama") &&
              gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, VOCAB) &&
              gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, scores, VOCAB) &&
              gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, types, VOCAB);
    spec s[32];
    const int n = specs_of_model(s);
    for (int i = 0; ok && i < n; i++) {
        const int64_t ne[2] = {s[i].ne0, s[i].ne1};
        ok = gguf_writer_add_tensor(w, s[i].name, s[i].type, (uint32_t)s[i].n_dims, ne);
    }
    ok = ok && gguf_writer_begin(w, path);
    for (int i = 0; ok && i < n; i++) {
        size_t bytes;
        void *data = make_rows(i, s[i].type, s[i].ne0, s[i].ne1, &bytes);
        ok = gguf_writer_write_tensor(w, data, bytes);
        free(data);
    }
    ok = ok && gguf_writer_finish(w);
    CHECK_MSG(ok, "gguf writer: %s", gguf_writer_error(w));
    gguf_writer_free(w);
    return ok;
}

static int spec_index(const char *name) {
    spec s[32];
    const int n = specs_of_model(s);
    for (int i = 0; i < n; i++)
        if (!strcmp(s[i].name, name)) return i;
    return -1;
}

/* The view t holds rows row0.. of the file tensor `name`, as the file stores them. */
static void check_view(wg_backend *b, const wg_tensor *t, const char *name, int64_t row0, int64_t rows,
                       const char *what) {
    const int idx = spec_index(name);
    spec s[32];
    specs_of_model(s);
    CHECK_MSG(t && idx >= 0 && t->ne0 == s[idx].ne0 && t->ne1 == rows, "%s: %s shape", what, name);
    if (!t || idx < 0 || t->ne0 != s[idx].ne0 || t->ne1 != rows) return;
    size_t bytes;
    uint8_t *file_rows = make_rows(idx, s[idx].type, s[idx].ne0, s[idx].ne1, &bytes);
    const size_t rb = wg_type_row_bytes(s[idx].type, s[idx].ne0);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)rows);
    for (int64_t i = 0; i < rows; i++) ids[i] = (int32_t)i;
    char err[160];
    wg_tensor *out = b->ops->buffer_create(b, t->ne0, rows, err, sizeof err);
    float *got = malloc(sizeof(float) * (size_t)(t->ne0 * rows)), *want = malloc(sizeof(float) * (size_t)t->ne0);
    b->ops->get_rows(b, t, ids, (int)rows, out);
    b->ops->read_rows(b, out, 0, rows, got);
    CHECK_MSG(b->ops->synchronize(b), "%s: synchronize", what);
    int bad = 0;
    for (int64_t r = 0; r < rows; r++) {
        wg_dequantize_row(s[idx].type, file_rows + (size_t)(row0 + r) * rb, want, t->ne0);
        for (int64_t c = 0; c < t->ne0; c++) bad += got[r * t->ne0 + c] != want[c];
    }
    CHECK_MSG(bad == 0, "%s: %s rows %lld..%lld: %d values differ", what, name, (long long)row0,
              (long long)(row0 + rows - 1), bad);
    b->ops->tensor_free(b, out);
    free(got);
    free(want);
    free(ids);
    free(file_rows);
}

static void test_phi3_split(const char *path, wgllm_backend_kind kind, const char *what) {
    wgllm_model_params mp = wgllm_model_default_params();
    mp.backend = kind;
    mp.n_threads = 2;
    wgllm_model *m = NULL;
    char err[512];
    if (wgllm_model_load(path, &mp, &m, err, sizeof err) != WGLLM_OK) {
        CHECK_MSG(0, "%s: %s", what, err);
        return;
    }
    const wg_hparams *hp = &m->hp;
    CHECK(hp->arch == wg_arch_find("phi3", 4) && hp->rope_neox && hp->swa_window == 16 && hp->rope_dims == 12 &&
          hp->head_dim == HD);
    CHECK(m->features.fused_qkv && m->features.fused_gate_up && m->features.qkv_bias && !m->features.qk_norm &&
          m->features.tied_output && m->tied && m->output == m->tok_embd);
    wgllm_model_info info;
    wgllm_model_get_info(m, &info);
    CHECK(!strcmp(info.arch, "phi3"));
    for (int l = 0; l < N_LAYER; l++) {
        const wg_layer *L = &m->layers[l];
        char qkv[64], bias[64], up[64];
        snprintf(qkv, sizeof qkv, "blk.%d.attn_qkv.weight", l);
        snprintf(bias, sizeof bias, "blk.%d.attn_qkv.bias", l);
        snprintf(up, sizeof up, "blk.%d.ffn_up.weight", l);
        check_view(m->backend, L->wq, qkv, 0, DQ, what);
        check_view(m->backend, L->wk, qkv, DQ, DKV, what);
        check_view(m->backend, L->wv, qkv, DQ + DKV, DKV, what);
        check_view(m->backend, L->w_gate, up, 0, FF, what);
        check_view(m->backend, L->w_up, up, FF, FF, what);
        CHECK(L->q_norm == NULL && L->k_norm == NULL);
        /* the bias is one f32 row per projection, the slices of the fused bias */
        const wg_tensor *bs[3] = {L->bq, L->bk, L->bv};
        const int64_t off[3] = {0, DQ, DQ + DKV}, len[3] = {DQ, DKV, DKV};
        for (int i = 0; i < 3; i++) {
            CHECK_MSG(bs[i] && bs[i]->ne0 == len[i] && bs[i]->ne1 == 1 && bs[i]->type == WG_TYPE_F32, "%s bias %d",
                      what, i);
            if (!bs[i] || bs[i]->ne0 != len[i] || bs[i]->ne1 != 1) continue;
            wg_tensor *out = m->backend->ops->buffer_create(m->backend, len[i], 1, err, sizeof err);
            float got[DQ];
            m->backend->ops->get_rows(m->backend, bs[i], (const int32_t[]){0}, 1, out);
            m->backend->ops->read_rows(m->backend, out, 0, 1, got);
            int bad = 0;
            for (int64_t c = 0; c < len[i]; c++) bad += got[c] != value(spec_index(bias), 0, (int)(off[i] + c));
            CHECK_MSG(bad == 0, "%s: %s slice %d: %d values differ", what, bias, i, bad);
            m->backend->ops->tensor_free(m->backend, out);
        }
    }
    /* and the model runs (the numbers of the new families are tested against transformers elsewhere) */
    wgllm_context_params cp = wgllm_context_default_params();
    cp.n_ctx = 16;
    wgllm_context *c = NULL;
    CHECK_MSG(wgllm_context_create(m, &cp, &c, err, sizeof err) == WGLLM_OK, "%s: %s", what, err);
    if (c) {
        const wgllm_token ids[] = {1, 4, 5, 6};
        CHECK(wgllm_eval(c, ids, 4, false) == WGLLM_OK);
        wgllm_context_free(c);
    }
    printf("%s: fused qkv, qkv bias and gate/up split into the right rows\n", what);
    wgllm_model_free(m);
}

int main(void) {
    test_table();
    char dir[64], path[128];
    snprintf(dir, sizeof dir, "test_arch_XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/phi3.gguf", dir);
    if (write_phi3(path)) {
        test_phi3_split(path, WGLLM_BACKEND_CPU, "cpu");
#ifdef WGLLM_HAVE_WEBGPU_BACKEND
        test_phi3_split(path, WGLLM_BACKEND_WEBGPU, "webgpu");
#endif
    }
    remove(path);
    rmdir(dir);
    CHECK_DONE();
}
