/* Importance-matrix collection through an observing backend (see imatrix.h). */
#include "eval/imatrix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "model/model.h"
#include "quant/types.h"

#define IM_NAME_MAX 64

typedef struct im_entry {
    const wg_tensor *w;
    char name[IM_NAME_MAX];
    double *sum2; /* w->ne0 sums, in double so long runs do not lose small terms */
    int64_t count;
} im_entry;

struct wg_imatrix_collector {
    wg_backend self;     /* the observer installed as m->backend */
    wg_backend_ops ops;  /* forwarding table; flags copied from the inner backend */
    wg_backend *inner;   /* the model's own backend */
    wgllm_model *model;  /* NULL once detached */
    im_entry *entries;
    int n_entries;
    float *rows; /* scratch for input rows read back */
    size_t rows_cap;
    char error[200]; /* first failure while observing */
};

static wg_backend *inner_of(const wg_backend *b) { return ((const wg_imatrix_collector *)b->ctx)->inner; }

/* ---- observed op ---- */
static void obs_matmul(wg_backend *b, const wg_tensor *w, const wg_tensor *x, int n, wg_tensor *out) {
    wg_imatrix_collector *im = b->ctx;
    wg_backend *in = im->inner;
    im_entry *e = NULL;
    for (int i = 0; i < im->n_entries && !e; i++)
        if (im->entries[i].w == w) e = &im->entries[i];
    if (e && n > 0 && !im->error[0]) {
        const size_t need = (size_t)n * (size_t)x->ne0;
        if (x->ne0 < w->ne0) {
            snprintf(im->error, sizeof im->error, "%s: input rows of %lld values for %lld columns", e->name,
                     (long long)x->ne0, (long long)w->ne0);
        } else if (need > im->rows_cap) {
            float *p = realloc(im->rows, need * sizeof *p);
            if (!p) snprintf(im->error, sizeof im->error, "out of memory reading matmul inputs");
            else {
                im->rows = p;
                im->rows_cap = need;
            }
        }
        if (!im->error[0]) {
            in->ops->read_rows(in, x, 0, n, im->rows);
            for (int t = 0; t < n; t++) {
                const float *row = im->rows + (size_t)t * (size_t)x->ne0;
                for (int64_t j = 0; j < w->ne0; j++) e->sum2[j] += (double)row[j] * (double)row[j];
            }
            e->count += n;
        }
    }
    in->ops->matmul(in, w, x, n, out);
}

/* ---- forwarded ops ---- */
static void fwd_destroy(wg_backend *b) { inner_of(b)->ops->destroy(inner_of(b)); }
static wg_tensor *fwd_weight_create(wg_backend *b, uint32_t type, int64_t ne0, int64_t ne1, const void *data,
                                    char *err, size_t err_size) {
    return inner_of(b)->ops->weight_create(inner_of(b), type, ne0, ne1, data, err, err_size);
}
static wg_tensor *fwd_buffer_create(wg_backend *b, int64_t ne0, int64_t ne1, char *err, size_t err_size) {
    return inner_of(b)->ops->buffer_create(inner_of(b), ne0, ne1, err, err_size);
}
static void fwd_tensor_free(wg_backend *b, wg_tensor *t) { inner_of(b)->ops->tensor_free(inner_of(b), t); }
static void fwd_write_rows(wg_backend *b, wg_tensor *t, int64_t row0, int64_t n, const float *src) {
    inner_of(b)->ops->write_rows(inner_of(b), t, row0, n, src);
}
static void fwd_read_rows(wg_backend *b, const wg_tensor *t, int64_t row0, int64_t n, float *dst) {
    inner_of(b)->ops->read_rows(inner_of(b), t, row0, n, dst);
}
static void fwd_get_rows(wg_backend *b, const wg_tensor *table, const int32_t *ids, int n, wg_tensor *out) {
    inner_of(b)->ops->get_rows(inner_of(b), table, ids, n, out);
}
static void fwd_copy_rows(wg_backend *b, const wg_tensor *src, int64_t src_row0, int n, wg_tensor *dst,
                          int64_t dst_row0) {
    inner_of(b)->ops->copy_rows(inner_of(b), src, src_row0, n, dst, dst_row0);
}
static void fwd_rms_norm(wg_backend *b, const wg_tensor *x, const wg_tensor *w, float eps, int n, wg_tensor *out) {
    inner_of(b)->ops->rms_norm(inner_of(b), x, w, eps, n, out);
}
static void fwd_rope(wg_backend *b, wg_tensor *x, int n, int n_heads, int head_dim, int rope_dims, int pos0,
                     float freq_base, float freq_scale, const float *freq_factors, int row0) {
    inner_of(b)->ops->rope(inner_of(b), x, n, n_heads, head_dim, rope_dims, pos0, freq_base, freq_scale, freq_factors,
                           row0);
}
static void fwd_kv_store(wg_backend *b, wg_tensor *k_cache, wg_tensor *v_cache, const wg_tensor *k,
                         const wg_tensor *v, int pos0, int n, int row0) {
    inner_of(b)->ops->kv_store(inner_of(b), k_cache, v_cache, k, v, pos0, n, row0);
}
static void fwd_attention(wg_backend *b, const wg_tensor *q, const wg_tensor *k_cache, const wg_tensor *v_cache,
                          int pos0, int n, int n_head, int n_head_kv, int head_dim, wg_tensor *out, int row0) {
    inner_of(b)->ops->attention(inner_of(b), q, k_cache, v_cache, pos0, n, n_head, n_head_kv, head_dim, out, row0);
}
static void fwd_swiglu(wg_backend *b, const wg_tensor *gate, const wg_tensor *up, int n, wg_tensor *out) {
    inner_of(b)->ops->swiglu(inner_of(b), gate, up, n, out);
}
static void fwd_add(wg_backend *b, wg_tensor *x, const wg_tensor *y, int n) {
    inner_of(b)->ops->add(inner_of(b), x, y, n);
}
static int32_t fwd_argmax(wg_backend *b, const wg_tensor *x, int64_t row) {
    return inner_of(b)->ops->argmax(inner_of(b), x, row);
}
static bool fwd_synchronize(wg_backend *b) { return inner_of(b)->ops->synchronize(inner_of(b)); }
static const char *fwd_error(const wg_backend *b) { return inner_of(b)->ops->error(inner_of(b)); }
static uint64_t fwd_device_memory(const wg_backend *b) { return inner_of(b)->ops->device_memory(inner_of(b)); }

/* ---- lifecycle ---- */
static bool add_entry(wg_imatrix_collector *im, const wg_tensor *w, const char *name, char *err, size_t err_size) {
    im_entry *e = &im->entries[im->n_entries];
    e->w = w;
    snprintf(e->name, sizeof e->name, "%s", name);
    if (!(e->sum2 = calloc((size_t)w->ne0, sizeof *e->sum2))) {
        snprintf(err, err_size, "out of memory");
        return false;
    }
    im->n_entries++;
    return true;
}

static bool build_table(wg_imatrix_collector *im, const wgllm_model *m, char *err, size_t err_size) {
    const int n_layer = m->hp.n_layer;
    if (!(im->entries = calloc((size_t)n_layer * 7 + 1, sizeof *im->entries))) {
        snprintf(err, err_size, "out of memory");
        return false;
    }
    static const char *const suffix[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    for (int l = 0; l < n_layer; l++) {
        const wg_layer *L = &m->layers[l];
        const wg_tensor *ws[7] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
        for (int k = 0; k < 7; k++) {
            char name[IM_NAME_MAX];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, suffix[k]);
            if (!add_entry(im, ws[k], name, err, err_size)) return false;
        }
    }
    return add_entry(im, m->output, m->tied ? "token_embd.weight" : "output.weight", err, err_size);
}

wg_imatrix_collector *wg_imatrix_collector_attach(wgllm_model *m, char *err, size_t err_size) {
    if (!m || !m->backend || !m->layers) {
        snprintf(err, err_size, "the model has no weights to observe");
        return NULL;
    }
    wg_imatrix_collector *im = calloc(1, sizeof *im);
    if (!im) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    if (!build_table(im, m, err, err_size)) {
        wg_imatrix_collector_free(im);
        return NULL;
    }
    const wg_backend_ops *io = m->backend->ops;
    im->ops = (wg_backend_ops){
        .name = io->name,
        .weights_reference_host = io->weights_reference_host,
        .destroy = fwd_destroy,
        .weight_create = fwd_weight_create,
        .buffer_create = fwd_buffer_create,
        .tensor_free = fwd_tensor_free,
        .write_rows = fwd_write_rows,
        .read_rows = fwd_read_rows,
        .get_rows = fwd_get_rows,
        .copy_rows = fwd_copy_rows,
        .rms_norm = fwd_rms_norm,
        .matmul = obs_matmul,
        .rope = fwd_rope,
        .kv_store = fwd_kv_store,
        .attention = fwd_attention,
        .swiglu = fwd_swiglu,
        .add = fwd_add,
        .argmax = io->argmax ? fwd_argmax : NULL,
        .synchronize = fwd_synchronize,
        .error = fwd_error,
        .device_memory = io->device_memory ? fwd_device_memory : NULL,
    };
    im->self.ops = &im->ops;
    im->self.ctx = im;
    im->inner = m->backend;
    im->model = m;
    m->backend = &im->self;
    return im;
}

void wg_imatrix_collector_detach(wg_imatrix_collector *im) {
    if (!im || !im->model) return;
    if (im->model->backend == &im->self) im->model->backend = im->inner;
    im->model = NULL;
}

void wg_imatrix_collector_free(wg_imatrix_collector *im) {
    if (!im) return;
    wg_imatrix_collector_detach(im);
    for (int i = 0; i < im->n_entries; i++) free(im->entries[i].sum2);
    free(im->entries);
    free(im->rows);
    free(im);
}

int wg_imatrix_collector_n_entries(const wg_imatrix_collector *im) { return im->n_entries; }
int64_t wg_imatrix_collector_entry_count(const wg_imatrix_collector *im, int i) {
    return i >= 0 && i < im->n_entries ? im->entries[i].count : -1;
}

/* ---- output ---- */
bool wg_imatrix_collector_write(const wg_imatrix_collector *im, const char *path, uint32_t chunk_count, uint32_t chunk_size,
                      const char *const *datasets, size_t n_datasets, char *err, size_t err_size) {
    if (im->error[0]) {
        snprintf(err, err_size, "collecting the importance matrix failed: %s", im->error);
        return false;
    }
    gguf_writer *w = gguf_writer_create();
    if (!w) {
        snprintf(err, err_size, "out of memory");
        return false;
    }
    bool ok = gguf_writer_set_str(w, "general.type", "imatrix") &&
              gguf_writer_set_u32(w, "imatrix.chunk_count", chunk_count) &&
              gguf_writer_set_u32(w, "imatrix.chunk_size", chunk_size) &&
              gguf_writer_set_arr_str(w, "imatrix.datasets", datasets, n_datasets);
    char name[IM_NAME_MAX + 16];
    for (int i = 0; ok && i < im->n_entries; i++) {
        const im_entry *e = &im->entries[i];
        if (e->count == 0) continue;
        const int64_t ne_sum = e->w->ne0, ne_count = 1;
        snprintf(name, sizeof name, "%s.in_sum2", e->name);
        ok = gguf_writer_add_tensor(w, name, WG_TYPE_F32, 1, &ne_sum);
        snprintf(name, sizeof name, "%s.counts", e->name);
        ok = ok && gguf_writer_add_tensor(w, name, WG_TYPE_F32, 1, &ne_count);
    }
    ok = ok && gguf_writer_begin(w, path);
    float *buf = NULL;
    for (int i = 0; ok && i < im->n_entries; i++) {
        const im_entry *e = &im->entries[i];
        if (e->count == 0) continue;
        float *nb = realloc(buf, sizeof *buf * (size_t)e->w->ne0);
        if (!nb) {
            gguf_writer_free(w);
            free(buf);
            snprintf(err, err_size, "out of memory");
            return false;
        }
        buf = nb;
        for (int64_t j = 0; j < e->w->ne0; j++) buf[j] = (float)e->sum2[j];
        const float count = (float)e->count;
        ok = gguf_writer_write_tensor(w, buf, sizeof *buf * (size_t)e->w->ne0) &&
             gguf_writer_write_tensor(w, &count, sizeof count);
    }
    free(buf);
    ok = ok && gguf_writer_finish(w);
    if (!ok) snprintf(err, err_size, "writing '%s': %s", path, gguf_writer_error(w));
    gguf_writer_free(w);
    return ok;
}
