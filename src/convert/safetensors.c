#include "convert/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "convert/json_file.h"
#include "quant/quant.h"
#include "quant/types.h"

struct wg_st_file {
    void *map; /* NULL for wg_st_open_memory */
    size_t map_size;
    int64_t n;
    wg_st_tensor *tensors;
};

/* Element sizes of the safetensors dtypes; only F32, F16 and BF16 convert. */
static const struct {
    const char *name;
    uint32_t bytes;
    uint32_t type;
} k_dtypes[] = {
    {"F32", 4, WG_TYPE_F32}, {"F16", 2, WG_TYPE_F16}, {"BF16", 2, WG_TYPE_BF16}, {"F64", 8, UINT32_MAX},
    {"I64", 8, UINT32_MAX},  {"U64", 8, UINT32_MAX},  {"I32", 4, UINT32_MAX},   {"U32", 4, UINT32_MAX},
    {"I16", 2, UINT32_MAX},  {"U16", 2, UINT32_MAX},  {"I8", 1, UINT32_MAX},    {"U8", 1, UINT32_MAX},
    {"BOOL", 1, UINT32_MAX}, {"F8_E4M3", 1, UINT32_MAX}, {"F8_E5M2", 1, UINT32_MAX},
};

void wg_st_printable(const char *s, char *out, size_t out_size) {
    size_t n = 0;
    for (; s && s[n] && n < 80 && n + 1 < out_size; n++) {
        unsigned char c = (unsigned char)s[n];
        out[n] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (out_size) out[n < out_size ? n : out_size - 1] = 0;
}

static void free_tensors(wg_st_tensor *t, int64_t n) {
    for (int64_t i = 0; t && i < n; i++) free((char *)t[i].name);
    free(t);
}

void wg_st_close(wg_st_file *f) {
    if (!f) return;
    free_tensors(f->tensors, f->n);
    if (f->map) munmap(f->map, f->map_size);
    free(f);
}

/* A JSON number that is a whole value in [0, 2^53]: exactly representable. */
static bool json_u64(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || d != (double)(uint64_t)d) return false;
    *out = (uint64_t)d;
    return true;
}

/* Fills *t from one header entry; data_size is the byte count after the header. */
static bool parse_entry(const cJSON *e, const uint8_t *data, uint64_t data_size, wg_st_tensor *t, char *err,
                        size_t err_size) {
    char name[96];
    wg_st_printable(e->string, name, sizeof name);
    if (!cJSON_IsObject(e)) {
        snprintf(err, err_size, "tensor '%s': header entry is not an object", name);
        return false;
    }
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs)) {
        snprintf(err, err_size, "tensor '%s': header entry needs dtype, shape and data_offsets", name);
        return false;
    }
    uint32_t elem = 0;
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++) {
        if (strcmp(dtype->valuestring, k_dtypes[i].name) == 0) {
            elem = k_dtypes[i].bytes;
            t->type = k_dtypes[i].type;
            snprintf(t->dtype, sizeof t->dtype, "%s", k_dtypes[i].name);
        }
    }
    if (elem == 0) {
        char dt[24];
        wg_st_printable(dtype->valuestring, dt, sizeof dt);
        snprintf(err, err_size, "tensor '%s': unknown dtype '%s'", name, dt);
        return false;
    }
    int n_dims = cJSON_GetArraySize(shape);
    if (n_dims > WG_ST_MAX_DIMS) {
        snprintf(err, err_size, "tensor '%s': %d dimensions (at most %d)", name, n_dims, WG_ST_MAX_DIMS);
        return false;
    }
    t->n_dims = n_dims;
    uint64_t count = 1;
    int d = 0;
    for (const cJSON *s = shape->child; s; s = s->next, d++) {
        uint64_t v;
        if (!json_u64(s, &v) || v > INT64_MAX) {
            snprintf(err, err_size, "tensor '%s': shape entries must be non-negative integers", name);
            return false;
        }
        t->shape[d] = (int64_t)v;
        if (v != 0 && count > UINT64_MAX / v) {
            snprintf(err, err_size, "tensor '%s': shape overflows", name);
            return false;
        }
        count *= v;
    }
    uint64_t begin, end;
    if (cJSON_GetArraySize(offs) != 2 || !json_u64(offs->child, &begin) || !json_u64(offs->child->next, &end) ||
        begin > end) {
        snprintf(err, err_size, "tensor '%s': data_offsets must be two integers [begin, end] with begin <= end",
                 name);
        return false;
    }
    if (end > data_size) {
        snprintf(err, err_size, "tensor '%s': data_offsets [%llu, %llu] outside the %llu data bytes of the file",
                 name, (unsigned long long)begin, (unsigned long long)end, (unsigned long long)data_size);
        return false;
    }
    if (count > UINT64_MAX / elem || count * elem != end - begin) {
        snprintf(err, err_size, "tensor '%s': %llu bytes in data_offsets but shape x %s needs %llu", name,
                 (unsigned long long)(end - begin), t->dtype,
                 count > UINT64_MAX / elem ? 0ull : (unsigned long long)(count * elem));
        return false;
    }
    t->n_elements = count;
    t->nbytes = end - begin;
    t->data = data + begin;
    return true;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(((const wg_st_tensor *)a)->name, ((const wg_st_tensor *)b)->name);
}

/* Parses the header of a mapped file into f->tensors (sorted by name). */
static bool parse_file(wg_st_file *f, const uint8_t *base, size_t size, char *err, size_t err_size) {
    if (size < 8) {
        snprintf(err, err_size, "not a safetensors file: %zu bytes, shorter than the 8-byte header length", size);
        return false;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | base[i];
    if (hlen < 2 || hlen > WG_ST_MAX_HEADER || hlen > size - 8) {
        snprintf(err, err_size, "not a safetensors file: header length %llu does not fit the file of %zu bytes",
                 (unsigned long long)hlen, size);
        return false;
    }
    const char *text = (const char *)base + 8;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)hlen, &end, false);
    if (root && end) { /* the writer pads with spaces */
        while (end < text + hlen && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t')) end++;
    }
    if (!root || !cJSON_IsObject(root) || end != text + hlen) {
        snprintf(err, err_size, "safetensors header is not a JSON object%s", root ? " (trailing bytes)" : "");
        cJSON_Delete(root);
        return false;
    }
    const uint8_t *data = base + 8 + hlen;
    uint64_t data_size = size - 8 - hlen;
    int64_t n = 0;
    for (const cJSON *e = root->child; e; e = e->next)
        if (strcmp(e->string, "__metadata__") != 0) n++;
    f->tensors = calloc((size_t)(n ? n : 1), sizeof *f->tensors);
    if (!f->tensors) {
        snprintf(err, err_size, "out of memory");
        cJSON_Delete(root);
        return false;
    }
    bool ok = true;
    for (const cJSON *e = root->child; ok && e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        wg_st_tensor *t = &f->tensors[f->n];
        ok = parse_entry(e, data, data_size, t, err, err_size);
        if (ok && !(t->name = strdup(e->string))) {
            snprintf(err, err_size, "out of memory");
            ok = false;
        }
        if (ok) f->n++;
    }
    cJSON_Delete(root);
    if (!ok) return false;
    qsort(f->tensors, (size_t)f->n, sizeof *f->tensors, cmp_names);
    for (int64_t i = 1; i < f->n; i++) {
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0) {
            char name[96];
            wg_st_printable(f->tensors[i].name, name, sizeof name);
            snprintf(err, err_size, "tensor '%s' appears twice in the header", name);
            return false;
        }
    }
    return true;
}

wg_st_file *wg_st_open_memory(const void *data, size_t size, char *err, size_t err_size) {
    wg_st_file *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    if (!parse_file(f, data, size, err, err_size)) {
        wg_st_close(f);
        return NULL;
    }
    return f;
}

wg_st_file *wg_st_open(const char *path, char *err, size_t err_size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_size < 8 || (uint64_t)st.st_size > SIZE_MAX) {
        snprintf(err, err_size, "%s: not a safetensors file (%lld bytes)", path, (long long)st.st_size);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(err, err_size, "cannot map %s: %s", path, strerror(errno));
        return NULL;
    }
    wg_st_file *f = calloc(1, sizeof *f);
    if (!f) {
        munmap(map, size);
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    f->map = map;
    f->map_size = size;
    char why[300];
    if (!parse_file(f, map, size, why, sizeof why)) {
        snprintf(err, err_size, "%s: %s", path, why);
        wg_st_close(f);
        return NULL;
    }
    return f;
}

int64_t wg_st_n_tensors(const wg_st_file *f) { return f->n; }

const wg_st_tensor *wg_st_tensor_at(const wg_st_file *f, int64_t i) {
    return i >= 0 && i < f->n ? &f->tensors[i] : NULL;
}

const wg_st_tensor *wg_st_find(const wg_st_file *f, const char *name) {
    wg_st_tensor key = {.name = name};
    return f->n ? bsearch(&key, f->tensors, (size_t)f->n, sizeof key, cmp_names) : NULL;
}

bool wg_st_tensor_readable(const wg_st_tensor *t, char *err, size_t err_size) {
    if (t->type == WG_TYPE_F32 || t->type == WG_TYPE_F16 || t->type == WG_TYPE_BF16) return true;
    char name[96];
    wg_st_printable(t->name, name, sizeof name);
    snprintf(err, err_size, "tensor '%s' has dtype %s, which is not supported (F32, F16 or BF16)", name, t->dtype);
    return false;
}

float wg_st_get_f32(const wg_st_tensor *t, uint64_t i) {
    const uint8_t *p = (const uint8_t *)t->data;
    if (t->type == WG_TYPE_F32) {
        float v;
        memcpy(&v, p + i * 4, 4);
        return v;
    }
    uint16_t h = (uint16_t)(p[i * 2] | p[i * 2 + 1] << 8);
    return t->type == WG_TYPE_F16 ? wg_fp16_to_f32(h) : wg_bf16_to_f32(h);
}

/* ---- checkpoints ---- */

struct wg_st_checkpoint {
    int n_files;
    wg_st_file **files;
};

void wg_st_checkpoint_free(wg_st_checkpoint *c) {
    if (!c) return;
    for (int i = 0; i < c->n_files; i++) wg_st_close(c->files[i]);
    free(c->files);
    free(c);
}

int wg_st_checkpoint_n_files(const wg_st_checkpoint *c) { return c->n_files; }

const wg_st_file *wg_st_checkpoint_file(const wg_st_checkpoint *c, int i) {
    return i >= 0 && i < c->n_files ? c->files[i] : NULL;
}

const wg_st_tensor *wg_st_checkpoint_find(const wg_st_checkpoint *c, const char *name) {
    for (int i = 0; i < c->n_files; i++) {
        const wg_st_tensor *t = wg_st_find(c->files[i], name);
        if (t) return t;
    }
    return NULL;
}

static bool add_file(wg_st_checkpoint *c, const char *path, char *err, size_t err_size) {
    wg_st_file **grown = realloc(c->files, sizeof *grown * (size_t)(c->n_files + 1));
    if (!grown) {
        snprintf(err, err_size, "out of memory");
        return false;
    }
    c->files = grown;
    wg_st_file *f = wg_st_open(path, err, err_size);
    if (!f) return false;
    c->files[c->n_files++] = f;
    return true;
}

/* A shard name from the index must be a plain file name inside the folder. */
static bool plain_file_name(const char *s) {
    size_t n = strlen(s);
    return n > 0 && n < 256 && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Opens every distinct shard of the index's weight_map, checks each listed tensor is
 * where the index says and that no name is in two shards. */
static bool open_index(wg_st_checkpoint *c, const char *dir, const char *index_path, char *err, size_t err_size) {
    char why[400];
    cJSON *root = wg_json_load_file(index_path, 64u << 20, why, sizeof why);
    if (!root) {
        snprintf(err, err_size, "%s", why);
        return false;
    }
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    bool ok = cJSON_IsObject(map) && map->child;
    if (!ok) snprintf(err, err_size, "%s: no \"weight_map\" object of tensor names to files", index_path);
    /* shard names in first-seen order; the checkpoint's files follow the same order */
    const char **shards = NULL;
    int n_shards = 0;
    for (const cJSON *e = ok ? map->child : NULL; ok && e; e = e->next) {
        if (!cJSON_IsString(e) || !plain_file_name(e->valuestring)) {
            char name[96];
            wg_st_printable(e->string, name, sizeof name);
            snprintf(err, err_size, "%s: weight_map entry '%s' is not a file name in the folder", index_path, name);
            ok = false;
            break;
        }
        int s = 0;
        while (s < n_shards && strcmp(shards[s], e->valuestring) != 0) s++;
        if (s == n_shards) {
            const char **grown = realloc(shards, sizeof *grown * (size_t)(n_shards + 1));
            char path[4096];
            if (!grown) {
                snprintf(err, err_size, "out of memory");
                ok = false;
                break;
            }
            shards = grown;
            shards[n_shards++] = e->valuestring;
            snprintf(path, sizeof path, "%s/%s", dir, e->valuestring);
            ok = add_file(c, path, err, err_size);
        }
        if (ok && !wg_st_find(c->files[s], e->string)) {
            char name[96], file[96];
            wg_st_printable(e->string, name, sizeof name);
            wg_st_printable(e->valuestring, file, sizeof file);
            snprintf(err, err_size, "%s: tensor '%s' is not in %s as the index says", index_path, name, file);
            ok = false;
        }
    }
    for (int a = 0; ok && a < c->n_files; a++) {
        for (int64_t i = 0; ok && i < wg_st_n_tensors(c->files[a]); i++) {
            const char *name = wg_st_tensor_at(c->files[a], i)->name;
            for (int b = a + 1; ok && b < c->n_files; b++) {
                if (wg_st_find(c->files[b], name)) {
                    char nm[96], fa[96], fb[96];
                    wg_st_printable(name, nm, sizeof nm);
                    wg_st_printable(shards[a], fa, sizeof fa);
                    wg_st_printable(shards[b], fb, sizeof fb);
                    snprintf(err, err_size, "tensor '%s' is in two shards (%s and %s)", nm, fa, fb);
                    ok = false;
                }
            }
        }
    }
    free(shards);
    cJSON_Delete(root);
    return ok;
}

wg_st_checkpoint *wg_st_checkpoint_open(const char *dir, char *err, size_t err_size) {
    wg_st_checkpoint *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    char path[4096];
    struct stat st;
    bool ok;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (stat(path, &st) == 0) {
        ok = open_index(c, dir, path, err, err_size);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (stat(path, &st) != 0) {
            snprintf(err, err_size, "%s: no model.safetensors or model.safetensors.index.json", dir);
            ok = false;
        } else {
            ok = add_file(c, path, err, err_size);
        }
    }
    if (!ok) {
        wg_st_checkpoint_free(c);
        return NULL;
    }
    return c;
}
