/* Importance-matrix collection through a context's matmul observer (see imatrix.h). */
#include "eval/imatrix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/types.h"

#define IM_NAME_MAX 64

typedef struct im_entry {
    char name[IM_NAME_MAX];
    int64_t ne0;  /* input columns of the weight */
    double *sum2; /* ne0 sums, in double so long runs do not lose small terms */
    int64_t count;
} im_entry;

struct wg_imatrix_collector {
    wgllm_context *ctx; /* the observed context; NULL once detached */
    im_entry *entries;  /* in the order the forward pass first reaches them */
    int n_entries, cap_entries;
    char error[200]; /* first failure while observing */
};

static im_entry *find_or_add(wg_imatrix_collector *im, const char *weight, int64_t ne0) {
    for (int i = im->n_entries - 1; i >= 0; i--) /* the latest layers are the likeliest */
        if (!strcmp(im->entries[i].name, weight)) return &im->entries[i];
    if (strlen(weight) >= IM_NAME_MAX) {
        snprintf(im->error, sizeof im->error, "weight name too long: %.40s...", weight);
        return NULL;
    }
    if (im->n_entries == im->cap_entries) {
        int cap = im->cap_entries ? 2 * im->cap_entries : 64;
        im_entry *p = realloc(im->entries, sizeof *p * (size_t)cap);
        if (!p) return NULL;
        im->entries = p;
        im->cap_entries = cap;
    }
    im_entry *e = &im->entries[im->n_entries];
    *e = (im_entry){.ne0 = ne0};
    snprintf(e->name, sizeof e->name, "%s", weight);
    if (!(e->sum2 = calloc((size_t)ne0, sizeof *e->sum2))) return NULL;
    im->n_entries++;
    return e;
}

static void on_matmul(void *user, const char *weight, const float *x, int n_rows, int64_t row_len) {
    wg_imatrix_collector *im = user;
    if (im->error[0] || n_rows <= 0) return;
    im_entry *e = find_or_add(im, weight, row_len);
    if (!e) {
        if (!im->error[0]) snprintf(im->error, sizeof im->error, "out of memory observing %s", weight);
        return;
    }
    if (row_len != e->ne0) {
        snprintf(im->error, sizeof im->error, "%s: input rows of %lld values for %lld columns", e->name,
                 (long long)row_len, (long long)e->ne0);
        return;
    }
    for (int t = 0; t < n_rows; t++) {
        const float *row = x + (size_t)t * (size_t)row_len;
        for (int64_t j = 0; j < row_len; j++) e->sum2[j] += (double)row[j] * (double)row[j];
    }
    e->count += n_rows;
}

/* ---- lifecycle ---- */
wg_imatrix_collector *wg_imatrix_collector_attach(wgllm_context *c, char *err, size_t err_size) {
    if (!c) {
        snprintf(err, err_size, "no context to observe");
        return NULL;
    }
    wg_imatrix_collector *im = calloc(1, sizeof *im);
    if (!im) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    if (wgllm_context_set_matmul_observer(c, on_matmul, im) != WGLLM_OK) {
        snprintf(err, err_size, "%s", wgllm_context_error(c));
        free(im);
        return NULL;
    }
    im->ctx = c;
    return im;
}

void wg_imatrix_collector_detach(wg_imatrix_collector *im) {
    if (!im || !im->ctx) return;
    wgllm_context_set_matmul_observer(im->ctx, NULL, NULL);
    im->ctx = NULL;
}

void wg_imatrix_collector_free(wg_imatrix_collector *im) {
    if (!im) return;
    wg_imatrix_collector_detach(im);
    for (int i = 0; i < im->n_entries; i++) free(im->entries[i].sum2);
    free(im->entries);
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
        const int64_t ne_sum = e->ne0, ne_count = 1;
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
        float *nb = realloc(buf, sizeof *buf * (size_t)e->ne0);
        if (!nb) {
            gguf_writer_free(w);
            free(buf);
            snprintf(err, err_size, "out of memory");
            return false;
        }
        buf = nb;
        for (int64_t j = 0; j < e->ne0; j++) buf[j] = (float)e->sum2[j];
        const float count = (float)e->count;
        ok = gguf_writer_write_tensor(w, buf, sizeof *buf * (size_t)e->ne0) &&
             gguf_writer_write_tensor(w, &count, sizeof count);
    }
    free(buf);
    ok = ok && gguf_writer_finish(w);
    if (!ok) snprintf(err, err_size, "writing '%s': %s", path, gguf_writer_error(w));
    gguf_writer_free(w);
    return ok;
}
