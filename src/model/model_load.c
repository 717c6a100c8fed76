/* Loading a llama GGUF: hyper-parameters, tokenizer, and every weight checked
 * for name, shape and type before it is handed to the backend. */
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
} loader;

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
    return ti;
}

/* Brings a tensor's bytes into memory (a private copy reads them from the file). */
static bool load_data(loader *ld, const gguf_tensor_info *ti) {
    return gguf_tensor_load(ld->m->file, ti, ld->err, ld->err_size);
}

/* Once a backend has copied a weight (to a GPU), its host pages are dropped, so host
 * memory stays small while a large model uploads. */
static void drop_host_pages(const loader *ld, const gguf_tensor_info *ti) {
    if (ld->m->backend->ops->weights_reference_host) return;
    gguf_tensor_unload(ld->m->file, ti);
}

/* A 2-D weight handed to the backend in its stored format. */
static wg_tensor *load_matrix(loader *ld, const char *name, int64_t ne0, int64_t ne1) {
    const gguf_tensor_info *ti = find_checked(ld, name, ne0, ne1);
    if (!ti || !load_data(ld, ti)) return NULL;
    wg_backend *b = ld->m->backend;
    char berr[160];
    wg_tensor *t = b->ops->weight_create(b, ti->type, ne0, ne1, ti->data, berr, sizeof berr);
    if (!t) {
        snprintf(ld->err, ld->err_size, "tensor '%s': %s", name, berr);
        ld->backend_failed = true;
        return NULL;
    }
    ld->m->weight_bytes += ti->nbytes;
    drop_host_pages(ld, ti);
    return t;
}

/* A norm vector, converted to f32 whatever its stored type. */
static wg_tensor *load_vector(loader *ld, const char *name, int64_t n) {
    const gguf_tensor_info *ti = find_checked(ld, name, n, 1);
    if (!ti || !load_data(ld, ti)) return NULL;
    float *dst = ld->m->norm_data + ld->norm_used;
    ld->norm_used += (size_t)n;
    if (!wg_dequantize_row(ti->type, ti->data, dst, n)) {
        snprintf(ld->err, ld->err_size, "tensor '%s': cannot convert type %u to f32", name, ti->type);
        return NULL;
    }
    wg_backend *b = ld->m->backend;
    char berr[160];
    wg_tensor *t = b->ops->weight_create(b, WG_TYPE_F32, n, 1, dst, berr, sizeof berr);
    if (!t) {
        snprintf(ld->err, ld->err_size, "tensor '%s': %s", name, berr);
        ld->backend_failed = true;
    }
    ld->m->weight_bytes += ti->nbytes;
    return t;
}

/* rope_freqs.weight: per-pair divisors of the rotation frequencies (Llama 3 scaling, as
 * llama.cpp's converter writes it). Optional unless llama.rope.scaling.type is llama3. */
static bool load_rope_factors(loader *ld) {
    wgllm_model *m = ld->m;
    const int64_t pairs = m->hp.rope_dims / 2;
    if (!gguf_find_tensor(m->file, "rope_freqs.weight")) {
        if (!m->hp.rope_llama3) return true;
        snprintf(ld->err, ld->err_size, "llama3 rope scaling needs the tensor 'rope_freqs.weight'");
        return false;
    }
    const gguf_tensor_info *ti = find_checked(ld, "rope_freqs.weight", pairs, 1);
    if (!ti || !load_data(ld, ti)) return false;
    m->rope_factors = malloc(sizeof(float) * (size_t)pairs);
    if (!m->rope_factors) {
        snprintf(ld->err, ld->err_size, "out of memory");
        return false;
    }
    if (!wg_dequantize_row(ti->type, ti->data, m->rope_factors, pairs)) {
        snprintf(ld->err, ld->err_size, "tensor 'rope_freqs.weight': cannot convert type %u to f32", ti->type);
        return false;
    }
    for (int64_t j = 0; j < pairs; j++) {
        if (!(m->rope_factors[j] > 0.0f) || !isfinite(m->rope_factors[j])) {
            snprintf(ld->err, ld->err_size, "tensor 'rope_freqs.weight': factor %lld is %g (must be positive)",
                     (long long)j, (double)m->rope_factors[j]);
            return false;
        }
    }
    return true;
}

static bool load_weights(loader *ld) {
    wgllm_model *m = ld->m;
    const wg_hparams *hp = &m->hp;
    const int64_t d = hp->n_embd, dq = (int64_t)hp->n_head * hp->head_dim, dkv = (int64_t)hp->n_head_kv * hp->head_dim;
    m->norm_data = malloc(sizeof(float) * (size_t)d * (size_t)(2 * hp->n_layer + 1));
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->norm_data || !m->layers) {
        snprintf(ld->err, ld->err_size, "out of memory");
        return false;
    }
    if (!load_rope_factors(ld)) return false;
    if (!(m->tok_embd = load_matrix(ld, "token_embd.weight", d, hp->n_vocab))) return false;
    char name[96];
    for (int l = 0; l < hp->n_layer; l++) {
        wg_layer *L = &m->layers[l];
#define LAYER_TENSOR(field, suffix, loadexpr)                      \
    snprintf(name, sizeof name, "blk.%d.%s.weight", l, suffix);     \
    if (!(L->field = (loadexpr))) return false;
        LAYER_TENSOR(attn_norm, "attn_norm", load_vector(ld, name, d))
        LAYER_TENSOR(wq, "attn_q", load_matrix(ld, name, d, dq))
        LAYER_TENSOR(wk, "attn_k", load_matrix(ld, name, d, dkv))
        LAYER_TENSOR(wv, "attn_v", load_matrix(ld, name, d, dkv))
        LAYER_TENSOR(wo, "attn_output", load_matrix(ld, name, dq, d))
        LAYER_TENSOR(ffn_norm, "ffn_norm", load_vector(ld, name, d))
        LAYER_TENSOR(w_gate, "ffn_gate", load_matrix(ld, name, d, hp->n_ff))
        LAYER_TENSOR(w_up, "ffn_up", load_matrix(ld, name, d, hp->n_ff))
        LAYER_TENSOR(w_down, "ffn_down", load_matrix(ld, name, hp->n_ff, d))
#undef LAYER_TENSOR
    }
    if (!(m->out_norm = load_vector(ld, "output_norm.weight", d))) return false;
    if (gguf_find_tensor(m->file, "output.weight")) {
        if (!(m->output = load_matrix(ld, "output.weight", d, hp->n_vocab))) return false;
    } else {
        m->output = m->tok_embd; /* tied embeddings */
        m->tied = true;
    }
    return true;
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
            wg_tensor *ts[] = {L->attn_norm, L->wq, L->wk, L->wv, L->wo, L->ffn_norm, L->w_gate, L->w_up, L->w_down};
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
    loader ld = {m, sub, sizeof sub, 0, false};
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
        ld = (loader){m, sub, sizeof sub, 0, false};
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
    info->name = m->name;
    info->backend = m->backend ? m->backend_desc : "none";
    info->weight_bytes = m->weight_bytes;
    if (m->backend && m->backend->ops->device_memory) info->device_memory = m->backend->ops->device_memory(m->backend);
}

int wgllm_n_vocab(const wgllm_model *m) { return m->hp.n_vocab; }
