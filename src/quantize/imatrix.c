/* Importance-matrix files (written by `wgllm imatrix`): a GGUF holding, for each
 * weight NAME, NAME.in_sum2 (f32[ne0]: sum over calibration tokens of x_j^2) and
 * NAME.counts (f32[1]: number of tokens). Everything is checked when the file is
 * opened, so a malformed file fails before any output is written. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/types.h"
#include "quantize/quantize.h"

struct wg_imatrix {
    gguf_file *f;
    int64_t n_entries;
};

static bool ends_with(const char *s, const char *suffix, size_t *stem) {
    size_t n = strlen(s), m = strlen(suffix);
    if (n <= m || strcmp(s + n - m, suffix) != 0) return false;
    *stem = n - m;
    return true;
}

static int64_t n_elements(const gguf_tensor_info *t) {
    int64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) n *= t->ne[d];
    return n;
}

static bool all_finite_nonneg(const gguf_tensor_info *t) {
    const int64_t n = n_elements(t);
    for (int64_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, (const char *)t->data + 4 * i, 4);
        if (!(v >= 0.0f) || isinf(v)) return false;
    }
    return true;
}

/* Checks one NAME.in_sum2 / NAME.counts pair. */
static bool check_entry(const gguf_file *f, const gguf_tensor_info *sum, char *err, size_t err_size) {
    size_t stem;
    ends_with(sum->name, ".in_sum2", &stem);
    char cname[512];
    if (stem + sizeof ".counts" > sizeof cname) {
        snprintf(err, err_size, "tensor name '%.60s...' is too long", sum->name);
        return false;
    }
    memcpy(cname, sum->name, stem);
    memcpy(cname + stem, ".counts", sizeof ".counts");
    const gguf_tensor_info *cnt = gguf_find_tensor(f, cname);
    if (!cnt) {
        snprintf(err, err_size, "'%.100s' has no matching '%.100s'", sum->name, cname);
        return false;
    }
    if (sum->type != WG_TYPE_F32 || sum->n_dims != 1 || sum->ne[0] < 1) {
        snprintf(err, err_size, "'%.200s' must be a 1-D f32 tensor", sum->name);
        return false;
    }
    if (cnt->type != WG_TYPE_F32 || n_elements(cnt) != 1) {
        snprintf(err, err_size, "'%.200s' must be an f32 tensor of one element", cname);
        return false;
    }
    float c;
    memcpy(&c, cnt->data, 4);
    if (!(c > 0.0f) || isinf(c)) {
        snprintf(err, err_size, "'%.200s' holds %g tokens (needs a positive count)", cname, (double)c);
        return false;
    }
    if (!all_finite_nonneg(sum)) {
        snprintf(err, err_size, "'%.200s' holds a negative, infinite or NaN value", sum->name);
        return false;
    }
    return true;
}

wg_imatrix *wg_imatrix_open(const char *path, char *err, size_t err_size) {
    char sub[400];
    gguf_file *f = gguf_open(path, sub, sizeof sub);
    if (!f) {
        snprintf(err, err_size, "imatrix %.200s: %s", path, sub);
        return NULL;
    }
    int64_t entries = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor_info *t = gguf_tensor(f, i);
        size_t stem;
        if (ends_with(t->name, ".in_sum2", &stem)) {
            if (!check_entry(f, t, sub, sizeof sub)) {
                snprintf(err, err_size, "imatrix %.200s: %s", path, sub);
                gguf_close(f);
                return NULL;
            }
            entries++;
        } else if (ends_with(t->name, ".counts", &stem)) {
            char sname[512];
            if (stem + sizeof ".in_sum2" > sizeof sname) continue; /* reported as missing below */
            memcpy(sname, t->name, stem);
            memcpy(sname + stem, ".in_sum2", sizeof ".in_sum2");
            if (!gguf_find_tensor(f, sname)) {
                snprintf(err, err_size, "imatrix %.200s: '%.200s' has no matching '%.200s'", path, t->name, sname);
                gguf_close(f);
                return NULL;
            }
        } else {
            snprintf(err, err_size, "imatrix %.200s: unexpected tensor '%.200s' (expected NAME.in_sum2 and NAME.counts)", path,
                     t->name);
            gguf_close(f);
            return NULL;
        }
    }
    if (entries == 0) {
        snprintf(err, err_size, "imatrix %.200s: no NAME.in_sum2 entries", path);
        gguf_close(f);
        return NULL;
    }
    wg_imatrix *m = malloc(sizeof *m);
    if (!m) {
        snprintf(err, err_size, "out of memory");
        gguf_close(f);
        return NULL;
    }
    m->f = f;
    m->n_entries = entries;
    return m;
}

void wg_imatrix_free(wg_imatrix *m) {
    if (!m) return;
    gguf_close(m->f);
    free(m);
}

int64_t wg_imatrix_count(const wg_imatrix *m) { return m ? m->n_entries : 0; }

int wg_imatrix_get(const wg_imatrix *m, const char *name, int64_t ne0, float *out, char *err, size_t err_size) {
    char key[512];
    if (!m || snprintf(key, sizeof key, "%s.in_sum2", name) >= (int)sizeof key) return 0;
    const gguf_tensor_info *sum = gguf_find_tensor(m->f, key);
    if (!sum) return 0;
    if (sum->ne[0] != ne0) {
        snprintf(err, err_size, "imatrix entry '%.200s' has %lld values, the tensor has rows of %lld", key,
                 (long long)sum->ne[0], (long long)ne0);
        return -1;
    }
    snprintf(key, sizeof key, "%s.counts", name);
    const gguf_tensor_info *cnt = gguf_find_tensor(m->f, key);
    float c;
    memcpy(&c, cnt->data, 4);
    for (int64_t j = 0; j < ne0; j++) {
        float v;
        memcpy(&v, (const char *)sum->data + 4 * j, 4);
        out[j] = v / c;
    }
    return 1;
}
