#include "convert/hf_llama.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convert/hf_config.h"
#include "convert/hf_spm.h"
#include "convert/hf_tokenizer.h"
#include "convert/safetensors.h"
#include "quant/quant.h"
#include "quant/types.h"
#include "tokenizer/vocab_load.h"

#define PATH_BYTES 4096

typedef struct hf_source {
    const wg_hf_config *cfg;
    const wg_st_tensor **by_index; /* source of GGUF tensor i; NULL for rope_freqs */
    float *rope_factors;           /* head_dim / 2, when the shape has rope_freqs */
} hf_source;

/* Hugging Face name of the tensor GGUF calls t->name (phi3's ffn_up is its fused gate_up_proj). */
static void hf_name(int32_t cfg_arch, const wg_llama_tensor_desc *t, char *buf, size_t size) {
    const char *suffix = NULL;
    switch (t->kind) {
    case WG_LT_TOKEN_EMBD: snprintf(buf, size, "model.embed_tokens.weight"); return;
    case WG_LT_OUTPUT_NORM: snprintf(buf, size, "model.norm.weight"); return;
    case WG_LT_OUTPUT: snprintf(buf, size, "lm_head.weight"); return;
    case WG_LT_ROPE_FREQS:
    case WG_LT_KIND_COUNT: snprintf(buf, size, "(computed)"); return;
    case WG_LT_ATTN_NORM: suffix = "input_layernorm"; break;
    case WG_LT_ATTN_QKV: suffix = "self_attn.qkv_proj"; break;
    case WG_LT_ATTN_Q_NORM: suffix = "self_attn.q_norm"; break;
    case WG_LT_ATTN_K_NORM: suffix = "self_attn.k_norm"; break;
    case WG_LT_ATTN_Q_BIAS: snprintf(buf, size, "model.layers.%d.self_attn.q_proj.bias", t->layer); return;
    case WG_LT_ATTN_K_BIAS: snprintf(buf, size, "model.layers.%d.self_attn.k_proj.bias", t->layer); return;
    case WG_LT_ATTN_V_BIAS: snprintf(buf, size, "model.layers.%d.self_attn.v_proj.bias", t->layer); return;
    case WG_LT_ATTN_Q: suffix = "self_attn.q_proj"; break;
    case WG_LT_ATTN_K: suffix = "self_attn.k_proj"; break;
    case WG_LT_ATTN_V: suffix = "self_attn.v_proj"; break;
    case WG_LT_ATTN_OUTPUT: suffix = "self_attn.o_proj"; break;
    case WG_LT_FFN_NORM: suffix = "post_attention_layernorm"; break;
    case WG_LT_FFN_GATE: suffix = "mlp.gate_proj"; break;
    case WG_LT_FFN_DOWN: suffix = "mlp.down_proj"; break;
    case WG_LT_FFN_UP: suffix = cfg_arch == WG_LLAMA_ARCH_PHI3 ? "mlp.gate_up_proj" : "mlp.up_proj"; break;
    }
    snprintf(buf, size, "model.layers.%d.%s.weight", t->layer, suffix);
}

/* Row r of GGUF's q or k comes from this row of Hugging Face's: inside each head the
 * pair (2j, 2j+1) is (j, j + d/2) of the rotate-half layout. Only llama's files are
 * permuted: qwen2, qwen3 and phi3 rotate halves (NeoX style) in llama.cpp too. */
static int64_t permuted_row(int64_t r, int64_t head_dim) {
    int64_t h = r / head_dim, i = r % head_dim;
    return h * head_dim + (i % 2) * (head_dim / 2) + i / 2;
}

static void read_row(const wg_st_tensor *st, uint64_t first, int64_t n, float *dst) {
    const uint8_t *p = (const uint8_t *)st->data;
    if (st->type == WG_TYPE_F32) {
        memcpy(dst, p + first * 4, (size_t)n * 4);
        return;
    }
    p += first * 2;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
        dst[i] = st->type == WG_TYPE_F16 ? wg_fp16_to_f32(h) : wg_bf16_to_f32(h);
    }
}

static void hf_fill(void *ctx, const wg_llama_tensor_desc *t, int64_t row0, int64_t n_rows, float *dst) {
    const hf_source *src = ctx;
    if (t->kind == WG_LT_ROPE_FREQS) {
        memcpy(dst, src->rope_factors, (size_t)t->n_cols * sizeof(float));
        return;
    }
    const wg_st_tensor *st = src->by_index[t->index];
    bool permute = src->cfg->shape.ext.arch == WG_LLAMA_ARCH_LLAMA && (t->kind == WG_LT_ATTN_Q || t->kind == WG_LT_ATTN_K);
    int64_t head_dim = wg_llama_head_dim(&src->cfg->shape);
    for (int64_t r = 0; r < n_rows; r++) {
        int64_t row = permute ? permuted_row(row0 + r, head_dim) : row0 + r;
        read_row(st, (uint64_t)row * (uint64_t)t->n_cols, t->n_cols, dst + r * t->n_cols);
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Ends with ".rotary_emb.inv_freq": a buffer older checkpoints saved; recomputed, not read. */
static bool ignorable(const char *name) {
    const char *tail = ".rotary_emb.inv_freq";
    size_t n = strlen(name), m = strlen(tail);
    return n >= m && strcmp(name + n - m, tail) == 0;
}

/* Finds every tensor the GGUF needs, checks dtype and shape, and refuses tensors this
 * converter would silently drop (biases, unknown layers). */
static bool resolve_tensors(const wg_st_checkpoint *ck, const wg_hf_config *cfg, const wg_st_tensor **by_index,
                            char *err, size_t err_size) {
    const wg_llama_shape *s = &cfg->shape;
    int n = wg_llama_tensor_count(s);
    char **expected = calloc((size_t)n + 1, sizeof *expected);
    if (!expected) {
        snprintf(err, err_size, "out of memory");
        return false;
    }
    int n_expected = 0;
    bool ok = true;
    for (int i = 0; ok && i < n; i++) {
        wg_llama_tensor_desc t;
        wg_llama_tensor_at(s, i, &t);
        by_index[i] = NULL;
        if (t.kind == WG_LT_ROPE_FREQS) continue;
        char name[96];
        hf_name(s->ext.arch, &t, name, sizeof name);
        const wg_st_tensor *st = wg_st_checkpoint_find(ck, name);
        if (!st) {
            snprintf(err, err_size, "missing tensor '%s'%s", name,
                     t.kind == WG_LT_OUTPUT ? " (and config.json has tie_word_embeddings false)" : "");
            ok = false;
            break;
        }
        if (!wg_st_tensor_readable(st, err, err_size)) {
            ok = false;
            break;
        }
        bool shape_ok = t.is_norm ? st->n_dims == 1 && st->shape[0] == t.n_cols
                                  : st->n_dims == 2 && st->shape[0] == t.n_rows && st->shape[1] == t.n_cols;
        if (!shape_ok) {
            char got[64] = "", *p = got;
            for (int d = 0; d < st->n_dims && p < got + sizeof got - 24; d++)
                p += sprintf(p, "%s%lld", d ? ", " : "", (long long)st->shape[d]);
            if (t.is_norm)
                snprintf(err, err_size, "tensor '%s' has shape [%s], config.json implies [%lld]", name, got,
                         (long long)t.n_cols);
            else
                snprintf(err, err_size, "tensor '%s' has shape [%s], config.json implies [%lld, %lld]", name, got,
                         (long long)t.n_rows, (long long)t.n_cols);
            ok = false;
            break;
        }
        by_index[i] = st;
        if (!(expected[n_expected++] = strdup(name))) {
            snprintf(err, err_size, "out of memory");
            ok = false;
        }
    }
    if (ok && s->tied && !(expected[n_expected++] = strdup("lm_head.weight"))) { /* a tied copy is harmless */
        snprintf(err, err_size, "out of memory");
        ok = false;
    }
    if (ok) qsort(expected, (size_t)n_expected, sizeof *expected, cmp_str);
    for (int f = 0; ok && f < wg_st_checkpoint_n_files(ck); f++) {
        const wg_st_file *file = wg_st_checkpoint_file(ck, f);
        for (int64_t i = 0; ok && i < wg_st_n_tensors(file); i++) {
            const char *name = wg_st_tensor_at(file, i)->name;
            if (ignorable(name) || bsearch(&name, expected, (size_t)n_expected, sizeof *expected, cmp_str)) continue;
            char shown[96];
            wg_st_printable(name, shown, sizeof shown);
            snprintf(err, err_size, "unexpected tensor '%s' (not part of a %d-layer %s)", shown, (int)s->n_layer,
                     cfg->hf_arch);
            ok = false;
        }
    }
    for (int i = 0; i < n_expected; i++) free(expected[i]);
    free(expected);
    return ok;
}

typedef struct json_vocab {
    char json[PATH_BYTES];
    char config[PATH_BYTES]; /* "" when there is no tokenizer_config.json */
    char model_config[PATH_BYTES];
    int32_t n_vocab; /* config.json's vocab_size */
} json_vocab;

static bool json_vocab_kv(void *ctx, gguf_writer *w, char *err, size_t err_size) {
    const json_vocab *jv = ctx;
    return wg_hf_folder_tokenizer_to_gguf(jv->json, jv->config[0] ? jv->config : NULL, jv->model_config, jv->n_vocab, w,
                                          err, err_size);
}

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* "some/dir/Llama-3.2-1B/" -> "Llama-3.2-1B" (through realpath, so "." works too). */
static void folder_name(const char *dir, char *buf, size_t size) {
    char real[PATH_MAX];
    const char *path = realpath(dir, real) ? real : dir;
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && path[start - 1] != '/') start--;
    snprintf(buf, size, "%.*s", (int)(len - start), path + start);
}

/* gguf-py's Metadata.id_to_title, for ASCII: '-' becomes ' ', and a word in lower
 * case that is not a version or number ("v0.1", "7b") gets capitals after each
 * non-letter ("tiny-llama" -> "Tiny Llama"). */
static void id_to_title(const char *id, char *buf, size_t size) {
    size_t n = 0;
    const char *p = id;
    while (*p && n + 1 < size) {
        while (*p == ' ' || *p == '-' || *p == '\t' || *p == '\n' || *p == '\r') p++;
        const char *w = p;
        while (*p && !strchr(" -\t\n\r", *p)) p++;
        if (p == w) break;
        bool lower = false, upper = false;
        for (const char *q = w; q < p; q++) {
            if (*q >= 'a' && *q <= 'z') lower = true;
            if (*q >= 'A' && *q <= 'Z') upper = true;
        }
        bool number = *w >= '0' && *w <= '9';
        if (*w == 'v' && p - w > 1 && w[1] >= '0' && w[1] <= '9') {
            number = true; /* v\d+(\.\d+)*: digits and single dots, ending in a digit */
            for (const char *q = w + 1; q < p && number; q++)
                number = (*q >= '0' && *q <= '9') || (*q == '.' && q + 1 < p && q[1] >= '0' && q[1] <= '9');
        }
        bool title = lower && !upper && !number;
        if (n > 0 && n + 1 < size) buf[n++] = ' ';
        for (const char *q = w; q < p && n + 1 < size; q++) {
            char ch = *q;
            bool after_letter = q > w && (((q[-1] | 0x20) >= 'a' && (q[-1] | 0x20) <= 'z') || (unsigned char)q[-1] >= 0x80);
            if (title && ch >= 'a' && ch <= 'z' && !after_letter) ch = (char)(ch - 32);
            buf[n++] = ch;
        }
    }
    buf[n < size ? n : size - 1] = 0;
}

/* general.name as llama.cpp's converter picks it without --model-name: config.json's
 * "_name_or_path" when it is a model id ("org/name" or "name", not a path), else
 * the folder's name; the part after the '/', as a title. */
static void model_name(const wg_hf_config *cfg, const char *dir, char *buf, size_t size) {
    const char *id = cfg->name_or_path;
    const char *slash = strchr(id, '/');
    char folder[256];
    if (!id[0] || (slash && strchr(slash + 1, '/'))) {
        folder_name(dir, folder, sizeof folder);
        id = folder;
    } else if (slash && !strchr(id, ' ')) {
        id = slash + 1;
    }
    id_to_title(id, buf, size);
    if (!buf[0]) snprintf(buf, size, "%s", id);
}

bool wg_hf_llama_convert(const char *dir, const char *out_path, const wg_llama_write_opts *opts, char *err,
                         size_t err_size) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, err_size, "%s: not a folder", dir);
        return false;
    }
    char path[PATH_BYTES], why[400];
    wg_hf_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!wg_hf_config_load(path, &cfg, why, sizeof why)) {
        snprintf(err, err_size, "%s", why);
        return false;
    }
    const wg_llama_shape *s = &cfg.shape;

    /* tokenizer first: a folder without one fails before any weight is read */
    wg_vocab vocab = {0};
    bool have_vocab = false;
    json_vocab jv = {{0}, {0}, {0}, s->n_vocab};
    wg_llama_write_opts o = *opts;
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    if (is_file(path)) {
        if (!wg_hf_spm_load(dir, &cfg, &vocab, err, err_size)) return false;
        have_vocab = true;
    } else {
        snprintf(jv.json, sizeof jv.json, "%s/tokenizer.json", dir);
        if (!is_file(jv.json)) {
            snprintf(err, err_size, "%s: no tokenizer.model or tokenizer.json", dir);
            return false;
        }
        snprintf(jv.config, sizeof jv.config, "%s/tokenizer_config.json", dir);
        snprintf(jv.model_config, sizeof jv.model_config, "%s/config.json", dir);
        if (!is_file(jv.config)) jv.config[0] = 0;
        o.vocab_kv = json_vocab_kv;
        o.vocab_ctx = &jv;
    }

    wg_st_checkpoint *ck = wg_st_checkpoint_open(dir, err, err_size);
    int n = wg_llama_tensor_count(s);
    hf_source src = {&cfg, calloc((size_t)n, sizeof(const wg_st_tensor *)), NULL};
    int32_t head_dim = wg_llama_head_dim(s);
    if (s->ext.rope_freqs) src.rope_factors = calloc((size_t)head_dim / 2, sizeof(float));
    bool ok = ck != NULL;
    if (ok && (!src.by_index || (s->ext.rope_freqs && !src.rope_factors))) {
        snprintf(err, err_size, "out of memory");
        ok = false;
    }
    ok = ok && resolve_tensors(ck, &cfg, src.by_index, err, err_size);
    if (ok) {
        if (src.rope_factors) wg_hf_llama3_rope_factors(&cfg, src.rope_factors);
        char name[256];
        model_name(&cfg, dir, name, sizeof name);
        if (!o.name) o.name = name;
        o.hf_metadata = true;
        ok = wg_llama_write_gguf(out_path, s, have_vocab ? &vocab : NULL, &o, hf_fill, &src, err, err_size);
    }
    free(src.rope_factors);
    free(src.by_index);
    wg_st_checkpoint_free(ck);
    if (have_vocab) wg_vocab_clear(&vocab);
    return ok;
}
