/* Loading a GGUF of a supported family (model/arch.h): hyper-parameters, tokenizer, and
 * every weight checked for name, shape and type before it is handed to the backend. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/registry.h"
#include "model/host_memory.h"
#include "model/model.h"
#include "quant/quant.h"

wgllm_model_params wgllm_model_default_params(void) {
    wgllm_model_params p = {.backend = WGLLM_BACKEND_AUTO, .n_threads = 0, .device = -1, .vocab_only = false};
    return p;
}

typedef struct loader {
    wgllm_model *m;
    char *err;
    size_t err_size;
    size_t norm_used;    /* floats of m->norm_data handed out */
    bool backend_failed; /* the backend could not take a weight (e.g. out of GPU memory) */
    bool *used;          /* per tensor of the file: read by the loader */
} loader;

/* name of a tensor of the model's family (see model/arch.h) */
static const char *tname(const loader *ld, wg_tensor_role role, int layer, const char *kind, char *buf, size_t size) {
    if (!wg_arch_tensor_name(ld->m->hp.arch, role, layer, kind, buf, size)) snprintf(buf, size, "?");
    return buf;
}

static const gguf_tensor_info *find_checked(loader *ld, const char *name, int64_t ne0, int64_t ne1) {
    const gguf_tensor_info *ti = gguf_find_tensor(ld->m->file, name);
    if (!ti) {
        snprintf(ld->err, ld->err_size, "missing tensor '%s'", name);
        return NULL;
    }
    int64_t got1 = ti->n_dims >= 2 ? ti->ne[1] : 1;
    bool extra_dims = (ti->n_dims >= 3 && ti->ne[2] != 1) || (ti->n_dims >= 4 && ti->ne[3] != 1);
    if (ti->ne[0] != ne0 || got1 != ne1 || extra_dims) {
        snprintf(ld->err, ld->err_size, "tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", name,
                 (long long)ti->ne[0], (long long)got1, (long long)ne0, (long long)ne1);
        return NULL;
    }
    if (!wg_type_supported(ti->type)) {
        const char *tn = wg_type_name(ti->type);
        snprintf(ld->err, ld->err_size, "tensor '%s' has type %s (id %u), which this build does not support", name,
                 tn ? tn : "unknown", ti->type);
        return NULL;
    }
    ld->used[ti - gguf_tensor(ld->m->file, 0)] = true;
    return ti;
}

/* Brings a tensor's bytes into memory (a private copy reads them from the file). */
static bool load_data(loader *ld, const gguf_tensor_info *ti) {
    return gguf_tensor_load(ld->m->file, ti, ld->err, ld->err_size);
}

/* Whether the backend keeps its own copy of weight t (uploaded to a GPU, repacked). */
static bool weight_copied(const loader *ld, const wg_tensor *t) {
    const wg_backend *b = ld->m->backend;
    return b->ops->weight_copied ? b->ops->weight_copied(b, t) : !b->ops->weights_reference_host;
}

/* Once a backend has copied every weight made of a tensor, the tensor's host pages are
 * dropped, so host memory stays small while a large model uploads or is repacked. */
static void drop_host_pages(const loader *ld, const gguf_tensor_info *ti, wg_tensor *const *views, int n) {
    for (int i = 0; i < n; i++)
        if (!weight_copied(ld, views[i])) return;
    gguf_tensor_unload(ld->m->file, ti);
}

/* Rows [row0, row0 + rows) of a loaded 2-D weight, handed to the backend as a weight of
 * their own: fused tensors (rows of q, k and v one after the other) become separate
 * weights, so the rest of the code never sees them. */
static wg_tensor *weight_rows(loader *ld, const char *name, const gguf_tensor_info *ti, int64_t row0, int64_t rows) {
    wg_backend *b = ld->m->backend;
    const size_t rb = wg_type_row_bytes(ti->type, ti->ne[0]);
    char berr[160];
    wg_tensor *t = b->ops->weight_create(b, ti->type, ti->ne[0], rows, (const uint8_t *)ti->data + (size_t)row0 * rb,
                                         berr, sizeof berr);
    if (!t) {
        snprintf(ld->err, ld->err_size, "tensor '%s': %s", name, berr);
        ld->backend_failed = true;
    }
    return t;
}

/* A 2-D weight of shape [ne0, sum of rows[i]] split into n_out weights of rows[i] rows
 * each (n_out == 1: the whole tensor), handed to the backend in its stored format. */
static bool load_split(loader *ld, const char *name, int64_t ne0, const int64_t *rows, int n_out, wg_tensor **out) {
    int64_t total = 0;
    for (int i = 0; i < n_out; i++) total += rows[i];
    const gguf_tensor_info *ti = find_checked(ld, name, ne0, total);
    if (!ti || !load_data(ld, ti)) return false;
    int64_t row0 = 0;
    for (int i = 0; i < n_out; row0 += rows[i], i++)
        if (!(out[i] = weight_rows(ld, name, ti, row0, rows[i]))) return false;
    ld->m->weight_bytes += ti->nbytes;
    drop_host_pages(ld, ti, out, n_out);
    return true;
}

static wg_tensor *load_matrix(loader *ld, const char *name, int64_t ne0, int64_t ne1) {
    wg_tensor *t = NULL;
    return load_split(ld, name, ne0, &ne1, 1, &t) ? t : NULL;
}

/* A one-row f32 weight over n floats of m->norm_data. */
static wg_tensor *f32_weight(loader *ld, const char *name, const float *data, int64_t n) {
    wg_backend *b = ld->m->backend;
    char berr[160];
    wg_tensor *t = b->ops->weight_create(b, WG_TYPE_F32, n, 1, data, berr, sizeof berr);
    if (!t) {
        snprintf(ld->err, ld->err_size, "tensor '%s': %s", name, berr);
        ld->backend_failed = true;
    }
    return t;
}

/* A vector (norm weights, biases) of sum of lens[i] values, converted to f32 whatever its
 * stored type and split into n_out one-row weights (a fused qkv bias holds three). */
static bool load_vector_split(loader *ld, const char *name, const int64_t *lens, int n_out, wg_tensor **out) {
    int64_t n = 0;
    for (int i = 0; i < n_out; i++) n += lens[i];
    const gguf_tensor_info *ti = find_checked(ld, name, n, 1);
    if (!ti || !load_data(ld, ti)) return false;
    float *dst = ld->m->norm_data + ld->norm_used;
    ld->norm_used += (size_t)n;
    if (!wg_dequantize_row(ti->type, ti->data, dst, n)) {
        snprintf(ld->err, ld->err_size, "tensor '%s': cannot convert type %u to f32", name, ti->type);
        return false;
    }
    for (int i = 0; i < n_out; dst += lens[i], i++)
        if (!(out[i] = f32_weight(ld, name, dst, lens[i]))) return false;
    ld->m->weight_bytes += ti->nbytes;
    return true;
}

static wg_tensor *load_vector(loader *ld, const char *name, int64_t n) {
    wg_tensor *t = NULL;
    return load_vector_split(ld, name, &n, 1, &t) ? t : NULL;
}

/* rope_freqs.weight: per-pair divisors of the rotation frequencies (Llama 3 scaling, as
 * llama.cpp's converter writes it). Optional unless rope.scaling.type is llama3. */
static bool load_rope_factors(loader *ld) {
    wgllm_model *m = ld->m;
    const int64_t pairs = m->hp.rope_dims / 2;
    char name[96];
    tname(ld, WG_TENSOR_ROPE_FREQS, 0, "weight", name, sizeof name);
    if (!m->hp.arch->rope_freqs || !gguf_find_tensor(m->file, name)) {
        if (!m->hp.rope_llama3) return true; /* a file that has it anyway is refused as unused */
        snprintf(ld->err, ld->err_size, "llama3 rope scaling needs the tensor '%s'", name);
        return false;
    }
    const gguf_tensor_info *ti = find_checked(ld, name, pairs, 1);
    if (!ti || !load_data(ld, ti)) return false;
    m->rope_factors = malloc(sizeof(float) * (size_t)pairs);
    if (!m->rope_factors) {
        snprintf(ld->err, ld->err_size, "out of memory");
        return false;
    }
    if (!wg_dequantize_row(ti->type, ti->data, m->rope_factors, pairs)) {
        snprintf(ld->err, ld->err_size, "tensor '%s': cannot convert type %u to f32", name, ti->type);
        return false;
    }
    for (int64_t j = 0; j < pairs; j++) {
        if (!(m->rope_factors[j] > 0.0f) || !isfinite(m->rope_factors[j])) {
            snprintf(ld->err, ld->err_size, "tensor '%s': factor %lld is %g (must be positive)", name, (long long)j,
                     (double)m->rope_factors[j]);
            return false;
        }
    }
    return true;
}

/* Attention weights of layer l: q, k, v (separate or fused), their biases and q/k norms. */
static bool load_attention(loader *ld, int l, wg_layer *L) {
    const wg_hparams *hp = &ld->m->hp;
    const wg_arch_features *ft = &ld->m->features;
    const int64_t d = hp->n_embd, dq = (int64_t)hp->n_head * hp->head_dim, dkv = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t rows[3] = {dq, dkv, dkv};
    wg_tensor **w[3] = {&L->wq, &L->wk, &L->wv}, **bias[3] = {&L->bq, &L->bk, &L->bv};
    const wg_tensor_role roles[3] = {WG_TENSOR_ATTN_Q, WG_TENSOR_ATTN_K, WG_TENSOR_ATTN_V};
    char name[96];
    wg_tensor *parts[3] = {0};
    if (ft->fused_qkv) {
        bool ok = load_split(ld, tname(ld, WG_TENSOR_ATTN_QKV, l, "weight", name, sizeof name), d, rows, 3, parts);
        for (int i = 0; i < 3; i++) *w[i] = parts[i];
        if (!ok) return false;
        if (ft->qkv_bias) {
            memset(parts, 0, sizeof parts);
            ok = load_vector_split(ld, tname(ld, WG_TENSOR_ATTN_QKV, l, "bias", name, sizeof name), rows, 3, parts);
            for (int i = 0; i < 3; i++) *bias[i] = parts[i];
            if (!ok) return false;
        }
    } else {
        for (int i = 0; i < 3; i++) {
            if (!(*w[i] = load_matrix(ld, tname(ld, roles[i], l, "weight", name, sizeof name), d, rows[i])))
                return false;
            if (ft->qkv_bias &&
                !(*bias[i] = load_vector(ld, tname(ld, roles[i], l, "bias", name, sizeof name), rows[i])))
                return false;
        }
    }
    if (ft->qk_norm) {
        if (!(L->q_norm =
                  load_vector(ld, tname(ld, WG_TENSOR_ATTN_Q_NORM, l, "weight", name, sizeof name), hp->head_dim)) ||
            !(L->k_norm =
                  load_vector(ld, tname(ld, WG_TENSOR_ATTN_K_NORM, l, "weight", name, sizeof name), hp->head_dim)))
            return false;
    }
    return (L->wo = load_matrix(ld, tname(ld, WG_TENSOR_ATTN_OUT, l, "weight", name, sizeof name), dq, d)) != NULL;
}

/* Feed-forward weights of layer l: gate and up (separate or fused), down. */
static bool load_ffn(loader *ld, int l, wg_layer *L) {
    const wg_hparams *hp = &ld->m->hp;
    const int64_t d = hp->n_embd, ff = hp->n_ff;
    char name[96];
    if (ld->m->features.fused_gate_up) {
        const int64_t rows[2] = {ff, ff};
        wg_tensor *parts[2] = {0};
        bool ok = load_split(ld, tname(ld, WG_TENSOR_FFN_UP, l, "weight", name, sizeof name), d, rows, 2, parts);
        L->w_gate = parts[0];
        L->w_up = parts[1];
        if (!ok) return false;
    } else if (!(L->w_gate = load_matrix(ld, tname(ld, WG_TENSOR_FFN_GATE, l, "weight", name, sizeof name), d, ff)) ||
               !(L->w_up = load_matrix(ld, tname(ld, WG_TENSOR_FFN_UP, l, "weight", name, sizeof name), d, ff))) {
        return false;
    }
    return (L->w_down = load_matrix(ld, tname(ld, WG_TENSOR_FFN_DOWN, l, "weight", name, sizeof name), ff, d)) != NULL;
}

/* Every tensor of the file must have been read: one the loader does not know (an o_proj
 * bias, expert weights, ...) would otherwise be dropped without a word and the model run
 * wrong. llama.cpp refuses such files too. */
static bool all_tensors_used(loader *ld) {
    const gguf_file *f = ld->m->file;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        if (ld->used[i]) continue;
        snprintf(ld->err, ld->err_size, "tensor '%s' is not used by architecture '%s' (unsupported feature)",
                 gguf_tensor(f, i)->name, ld->m->hp.arch->name);
        return false;
    }
    return true;
}

/* The norm and bias vectors copied below are tensors of the file, and every layer has
 * tensors of its own, so a layer count or width the file's tensors cannot hold is refused
 * before allocating: a file of a few KB claiming 2^25 layers would otherwise make the
 * loader ask for gigabytes before it finds the first missing tensor. */
static bool file_holds(loader *ld, int64_t per_layer) {
    const gguf_file *f = ld->m->file;
    const wg_hparams *hp = &ld->m->hp;
    int64_t n = gguf_n_tensors(f);
    if (hp->n_layer > n) {
        snprintf(ld->err, ld->err_size, "block_count %d is more than the file's %lld tensors", hp->n_layer,
                 (long long)n);
        return false;
    }
    double values = 0; /* double: the sum of the file's element counts cannot wrap */
    for (int64_t i = 0; i < n; i++) {
        const gguf_tensor_info *t = gguf_tensor(f, i);
        double ne = 1;
        for (uint32_t j = 0; j < t->n_dims; j++) ne *= (double)t->ne[j];
        values += ne;
    }
    double need = (double)per_layer * hp->n_layer + (double)hp->n_embd;
    if (need > values) {
        snprintf(ld->err, ld->err_size,
                 "%d layers of width %d need %.0f norm and bias values, more than the file's tensors hold (%.0f)",
                 hp->n_layer, hp->n_embd, need, values);
        return false;
    }
    return true;
}

static bool load_all(loader *ld) {
    wgllm_model *m = ld->m;
    const wg_hparams *hp = &m->hp;
    if (!wg_arch_features_resolve(hp->arch, m->file, &m->features, ld->err, ld->err_size)) return false;
    m->tied = m->features.tied_output;
    const int64_t d = hp->n_embd, dq = (int64_t)hp->n_head * hp->head_dim, dkv = (int64_t)hp->n_head_kv * hp->head_dim;
    /* f32 copies: two norms per layer, the biases and q/k norms where the file has them, the output norm */
    const int64_t per_layer =
        2 * d + (m->features.qkv_bias ? dq + 2 * dkv : 0) + (m->features.qk_norm ? 2 * (int64_t)hp->head_dim : 0);
    /* hyper-parameters are at most 2^30 each: the count is checked before it can wrap */
    if ((double)per_layer * hp->n_layer + d > (double)(SIZE_MAX / sizeof(float) / 2)) {
        snprintf(ld->err, ld->err_size, "the norm and bias vectors of %d layers of %lld values do not fit in memory",
                 hp->n_layer, (long long)per_layer);
        return false;
    }
    if (!file_holds(ld, per_layer)) return false;
    m->norm_data = malloc(sizeof(float) * (size_t)(per_layer * hp->n_layer + d));
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->norm_data || !m->layers) {
        snprintf(ld->err, ld->err_size, "out of memory");
        return false;
    }
    char name[96];
    if (!load_rope_factors(ld)) return false;
    if (!(m->tok_embd =
              load_matrix(ld, tname(ld, WG_TENSOR_TOKEN_EMBD, 0, "weight", name, sizeof name), d, hp->n_vocab)))
        return false;
    for (int l = 0; l < hp->n_layer; l++) {
        wg_layer *L = &m->layers[l];
        if (!(L->attn_norm = load_vector(ld, tname(ld, WG_TENSOR_ATTN_NORM, l, "weight", name, sizeof name), d)) ||
            !load_attention(ld, l, L) ||
            !(L->ffn_norm = load_vector(ld, tname(ld, WG_TENSOR_FFN_NORM, l, "weight", name, sizeof name), d)) ||
            !load_ffn(ld, l, L))
            return false;
    }
    if (!(m->out_norm = load_vector(ld, tname(ld, WG_TENSOR_OUTPUT_NORM, 0, "weight", name, sizeof name), d)))
        return false;
    if (m->tied) {
        m->output = m->tok_embd;
    } else if (!(m->output =
                     load_matrix(ld, tname(ld, WG_TENSOR_OUTPUT, 0, "weight", name, sizeof name), d, hp->n_vocab))) {
        return false;
    }
    return all_tensors_used(ld);
}

static bool load_weights(loader *ld) {
    ld->used = calloc((size_t)gguf_n_tensors(ld->m->file) + 1, sizeof *ld->used);
    if (!ld->used) {
        snprintf(ld->err, ld->err_size, "out of memory");
        return false;
    }
    bool ok = load_all(ld);
    free(ld->used);
    ld->used = NULL;
    return ok;
}

/* A private copy on a backend that computes from host memory keeps every weight there:
 * a model that cannot fit is refused now, with the sizes, instead of the process being
 * killed while it reads the file. */
static bool weights_fit(const wgllm_model *m, char *err, size_t err_size) {
    if (!gguf_is_private(m->file) || !m->backend->ops->weights_reference_host) return true;
    uint64_t need = 0;
    for (int64_t i = 0; i < gguf_n_tensors(m->file); i++) need += gguf_tensor(m->file, i)->nbytes;
    const wg_host_memory host = wg_host_memory_query();
    if (need <= host.available) return true;
    char b_need[32], b_avail[32];
    snprintf(err, err_size,
             "the weights need %s of host memory (%llu bytes, read into private memory), but only %s (%llu bytes) "
             "is available (%s)",
             wg_format_bytes(need, b_need, sizeof b_need), (unsigned long long)need,
             wg_format_bytes(host.available, b_avail, sizeof b_avail), (unsigned long long)host.available, host.limit);
    return false;
}

static void free_tensor(wgllm_model *m, wg_tensor *t) {
    if (t) m->backend->ops->tensor_free(m->backend, t);
}

/* Frees every weight and the arrays that hold them; the backend stays. */
static void release_weights(wgllm_model *m) {
    if (m->layers) {
        for (int l = 0; l < m->hp.n_layer; l++) {
            wg_layer *L = &m->layers[l];
            wg_tensor *ts[] = {L->attn_norm, L->wq,     L->wk, L->wv, L->wo, L->ffn_norm, L->w_gate,
                               L->w_up,      L->w_down, L->bq, L->bk, L->bv, L->q_norm,   L->k_norm};
            for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) free_tensor(m, ts[i]);
        }
    }
    if (!m->tied) free_tensor(m, m->output);
    free_tensor(m, m->tok_embd);
    free_tensor(m, m->out_norm);
    free(m->layers);
    free(m->layer_descs);
    free(m->norm_data);
    free(m->rope_factors);
    m->layer_descs = NULL;
    m->layers = NULL;
    m->norm_data = NULL;
    m->rope_factors = NULL;
    m->tok_embd = m->out_norm = m->output = NULL;
    m->tied = false;
    m->weight_bytes = 0;
}

void wgllm_model_free(wgllm_model *m) {
    if (!m) return;
    if (m->backend) {
        wg_acts_free(m, &m->batch_acts);
        release_weights(m);
        m->backend->ops->destroy(m->backend);
    }
    free(m->layers);
    free(m->norm_data);
    wg_tokenizer_free(m->tok);
    gguf_close(m->file);
    pthread_mutex_destroy(&m->eval_lock);
    free(m);
}

wgllm_status wgllm_model_load(const char *path, const wgllm_model_params *params, wgllm_model **out, char *err,
                              size_t err_size) {
    char scratch[8];
    if (!err || err_size == 0) {
        err = scratch;
        err_size = sizeof scratch;
    }
    err[0] = 0;
    if (!out) return WGLLM_ERR_INVALID_ARG;
    *out = NULL;
    if (!path) {
        snprintf(err, err_size, "no model path given");
        return WGLLM_ERR_INVALID_ARG;
    }
    wgllm_model_params p = params ? *params : wgllm_model_default_params();
    wgllm_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, err_size, "out of memory");
        return WGLLM_ERR_NO_MEMORY;
    }
    pthread_mutex_init(&m->eval_lock, NULL);
    char sub[200];
    m->file = p.private_copy ? gguf_open_private(path, sub, sizeof sub) : gguf_open(path, sub, sizeof sub);
    if (!m->file) {
        snprintf(err, err_size, "%s: %s", path, sub);
        wgllm_model_free(m);
        /* gguf_open says "cannot open" for I/O problems; everything else is a format problem. */
        return strstr(sub, "cannot open") || strstr(sub, "cannot read") || strstr(sub, "directory") ? WGLLM_ERR_IO
                                                                                                    : WGLLM_ERR_FORMAT;
    }
    m->tok = wg_tokenizer_from_gguf(m->file, sub, sizeof sub);
    if (!m->tok) {
        snprintf(err, err_size, "%s: tokenizer: %s", path, sub);
        wgllm_model_free(m);
        return WGLLM_ERR_UNSUPPORTED;
    }
    const char *name;
    size_t name_len;
    if (gguf_get_str(m->file, "general.name", &name, &name_len))
        snprintf(m->name, sizeof m->name, "%.*s", (int)(name_len < sizeof m->name ? name_len : sizeof m->name - 1), name);
    if (p.vocab_only) {
        m->hp.n_vocab = wg_tokenizer_n_vocab(m->tok);
        gguf_detach(m->file, sub, sizeof sub); /* the vocabulary is copied: a change no longer matters */
        *out = m;
        return WGLLM_OK;
    }
    if (!wg_hparams_load(m->file, &m->hp, sub, sizeof sub)) {
        snprintf(err, err_size, "%s: %s", path, sub);
        wgllm_model_free(m);
        return WGLLM_ERR_UNSUPPORTED;
    }
    m->hp.n_vocab = wg_tokenizer_n_vocab(m->tok);
    m->backend = wg_backend_create_kind(p.backend, p.n_threads, p.device, m->backend_desc, sizeof m->backend_desc, sub,
                                        sizeof sub);
    if (!m->backend) {
        snprintf(err, err_size, "%s", sub);
        wgllm_model_free(m);
        return WGLLM_ERR_BACKEND;
    }
    if (!weights_fit(m, sub, sizeof sub)) {
        snprintf(err, err_size, "%s: %s", path, sub);
        wgllm_model_free(m);
        return WGLLM_ERR_NO_MEMORY;
    }
    loader ld = {m, sub, sizeof sub, 0, false, NULL};
    bool loaded = load_weights(&ld);
    if (!loaded && ld.backend_failed && p.backend == WGLLM_BACKEND_AUTO && strcmp(m->backend->ops->name, "cpu") != 0) {
        /* The model did not fit on the GPU: AUTO falls back to the CPU and says why. */
        char why[300];
        snprintf(why, sizeof why, "(auto: %.200s)", sub);
        release_weights(m);
        m->backend->ops->destroy(m->backend);
        m->backend = wg_backend_create_kind(WGLLM_BACKEND_CPU, p.n_threads, -1, m->backend_desc,
                                            sizeof m->backend_desc, sub, sizeof sub);
        if (!m->backend) {
            snprintf(err, err_size, "%s", sub);
            wgllm_model_free(m);
            return WGLLM_ERR_BACKEND;
        }
        snprintf(m->backend_desc, sizeof m->backend_desc, "cpu %s", why);
        ld = (loader){m, sub, sizeof sub, 0, false, NULL};
        loaded = weights_fit(m, sub, sizeof sub) && load_weights(&ld);
    }
    loaded = loaded && wg_layer_descs_build(m, sub, sizeof sub);
    if (!loaded) {
        snprintf(err, err_size, "%s: %s", path, sub);
        wgllm_model_free(m);
        return ld.backend_failed                                      ? WGLLM_ERR_BACKEND
               : strstr(sub, "does not support")                      ? WGLLM_ERR_UNSUPPORTED
               : strstr(sub, "host memory")                           ? WGLLM_ERR_NO_MEMORY
               : strstr(sub, "shorter") || strstr(sub, "cannot read") ? WGLLM_ERR_IO
                                                                      : WGLLM_ERR_FORMAT;
    }
    if (!gguf_detach(m->file, sub, sizeof sub)) {
        snprintf(err, err_size, "%s: %s", path, sub);
        wgllm_model_free(m);
        return WGLLM_ERR_IO;
    }
    *out = m;
    return WGLLM_OK;
}

void wgllm_model_get_info(const wgllm_model *m, wgllm_model_info *info) {
    memset(info, 0, sizeof *info);
    const wg_hparams *hp = &m->hp;
    info->n_vocab = hp->n_vocab;
    info->n_ctx_train = hp->n_ctx_train;
    info->n_embd = hp->n_embd;
    info->n_layer = hp->n_layer;
    info->n_head = hp->n_head;
    info->n_head_kv = hp->n_head_kv;
    info->n_ff = hp->n_ff;
    info->head_dim = hp->head_dim;
    info->rope_freq_base = hp->rope_base;
    info->norm_eps = hp->norm_eps;
    info->tied_output = m->tied;
    info->arch = m->hp.arch ? m->hp.arch->name : "";
    info->name = m->name;
    info->backend = m->backend ? m->backend_desc : "none";
    info->weight_bytes = m->weight_bytes;
    if (m->backend && m->backend->ops->device_memory) info->device_memory = m->backend->ops->device_memory(m->backend);
}

int wgllm_n_vocab(const wgllm_model *m) { return m->hp.n_vocab; }
