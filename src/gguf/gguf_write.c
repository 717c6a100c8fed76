/* Streaming GGUF v3 writer. Metadata and tensor infos are kept in memory (each
 * value already encoded as GGUF bytes); tensor data is streamed straight to a
 * temporary file that replaces the target only once everything was written. */
#include "gguf/gguf_internal.h"
#include "quant/types.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WRITE_BUFFER_BYTES (1u << 20)

typedef struct wkv {
    char *key;
    uint8_t *blob; /* value type (u32) followed by the encoded value */
    size_t blob_len;
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes;
    uint64_t offset; /* in the data section; set by gguf_writer_begin */
} wtensor;

typedef enum wstate { WS_BUILDING, WS_WRITING, WS_DONE } wstate;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;

    wstate state;
    FILE *fp;
    char *fp_buf;
    char *path;
    char *tmp_path;
    uint32_t alignment;
    size_t next_tensor;
    uint64_t data_pos; /* bytes of the data section written so far */

    bool failed;
    char err[256];
};

/* Records the first error, drops the temporary file, and returns false. */
static bool wfail(gguf_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool wfail(gguf_writer *w, const char *fmt, ...) {
    if (!w->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->err, sizeof w->err, fmt, ap);
        va_end(ap);
        w->failed = true;
    }
    if (w->fp) {
        fclose(w->fp);
        w->fp = NULL;
        unlink(w->tmp_path);
    }
    return false;
}

static bool usable(gguf_writer *w, bool building) {
    if (!w || w->failed) return false;
    if (building && w->state != WS_BUILDING) return wfail(w, "metadata and tensor infos cannot change after gguf_writer_begin");
    return true;
}

gguf_writer *gguf_writer_create(void) {
    gguf_writer *w = calloc(1, sizeof *w);
    if (w) w->alignment = GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    if (w->fp) {
        fclose(w->fp);
        unlink(w->tmp_path);
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].blob);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w->fp_buf);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

const char *gguf_writer_error(const gguf_writer *w) {
    if (!w) return "no writer (out of memory?)";
    return w->failed ? w->err : "";
}

/* ---- metadata ---- */

/* Stores an encoded value under key (replacing an older one); owns blob. */
static bool set_blob(gguf_writer *w, const char *key, uint8_t *blob, size_t len) {
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].blob);
            w->kv[i].blob = blob;
            w->kv[i].blob_len = len;
            return true;
        }
    }
    char *k = strdup(key);
    if (!k || !gguf_grow((void **)&w->kv, &w->cap_kv, w->n_kv, sizeof *w->kv)) {
        free(k);
        free(blob);
        return wfail(w, "out of memory storing key '%s'", key);
    }
    w->kv[w->n_kv++] = (wkv){k, blob, len};
    return true;
}

/* Allocates a blob of 4 + payload bytes starting with the value type. */
static uint8_t *new_blob(gguf_writer *w, const char *key, gguf_vtype type, size_t payload, size_t *len) {
    if (__builtin_add_overflow(payload, 4, len)) {
        wfail(w, "value of '%s' is too large", key);
        return NULL;
    }
    uint8_t *b = malloc(*len);
    if (!b) {
        wfail(w, "out of memory storing '%s'", key);
        return NULL;
    }
    uint32_t t = type;
    memcpy(b, &t, 4);
    return b;
}

static bool check_key(gguf_writer *w, const char *key) {
    if (!usable(w, true)) return false;
    if (!key || !*key) return wfail(w, "metadata key is empty");
    return true;
}

static bool set_scalar(gguf_writer *w, const char *key, gguf_vtype type, const void *v) {
    if (!check_key(w, key)) return false;
    size_t len, sz = gguf_vtype_size(type);
    uint8_t *b = new_blob(w, key, type, sz, &len);
    if (!b) return false;
    memcpy(b + 4, v, sz);
    return set_blob(w, key, b, len);
}

bool gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) { return set_scalar(w, key, GGUF_VT_UINT32, &v); }
bool gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) { return set_scalar(w, key, GGUF_VT_INT32, &v); }
bool gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) { return set_scalar(w, key, GGUF_VT_UINT64, &v); }
bool gguf_writer_set_f32(gguf_writer *w, const char *key, float v) { return set_scalar(w, key, GGUF_VT_FLOAT32, &v); }

bool gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return set_scalar(w, key, GGUF_VT_BOOL, &b);
}

bool gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    if (!check_key(w, key)) return false;
    if (!v) return wfail(w, "NULL string for key '%s'", key);
    uint64_t n = strlen(v);
    size_t len;
    uint8_t *b = new_blob(w, key, GGUF_VT_STRING, 8 + n, &len);
    if (!b) return false;
    memcpy(b + 4, &n, 8);
    memcpy(b + 12, v, n);
    return set_blob(w, key, b, len);
}

bool gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype elem_type, const void *data, size_t n) {
    if (!check_key(w, key)) return false;
    size_t esz = gguf_vtype_size(elem_type), bytes, len;
    if (esz == 0) return wfail(w, "array '%s': element type %s is not a fixed-size type", key, gguf_vtype_name(elem_type));
    if (n > 0 && !data) return wfail(w, "array '%s': no data", key);
    if (__builtin_mul_overflow(n, esz, &bytes) || bytes > SIZE_MAX - 12) return wfail(w, "array '%s' is too large", key);
    uint8_t *b = new_blob(w, key, GGUF_VT_ARRAY, 12 + bytes, &len);
    if (!b) return false;
    uint32_t et = elem_type;
    uint64_t count = n;
    memcpy(b + 4, &et, 4);
    memcpy(b + 8, &count, 8);
    if (bytes) memcpy(b + 16, data, bytes);
    return set_blob(w, key, b, len);
}

bool gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs, size_t n) {
    if (!check_key(w, key)) return false;
    if (n > 0 && !strs) return wfail(w, "string array '%s': no strings", key);
    size_t payload = 12;
    for (size_t i = 0; i < n; i++) {
        if (!strs[i]) return wfail(w, "string array '%s': element %zu is NULL", key, i);
        if (__builtin_add_overflow(payload, 8 + strlen(strs[i]), &payload)) return wfail(w, "string array '%s' is too large", key);
    }
    size_t len;
    uint8_t *b = new_blob(w, key, GGUF_VT_ARRAY, payload, &len);
    if (!b) return false;
    uint32_t et = GGUF_VT_STRING;
    uint64_t count = n;
    memcpy(b + 4, &et, 4);
    memcpy(b + 8, &count, 8);
    uint8_t *p = b + 16;
    for (size_t i = 0; i < n; i++) {
        uint64_t sl = strlen(strs[i]);
        memcpy(p, &sl, 8);
        memcpy(p + 8, strs[i], sl);
        p += 8 + sl;
    }
    return set_blob(w, key, b, len);
}

/* Copies kv i of f byte for byte: every value type, strings with any bytes. */
bool gguf_writer_copy_kv(gguf_writer *w, const gguf_file *f, int64_t i) {
    if (!f || i < 0 || i >= f->n_kv) return wfail(w, "metadata copy: no kv %lld", (long long)i);
    const gguf_kv *kv = &f->kv[i];
    if (!check_key(w, kv->key)) return false;
    const uint8_t *from;
    size_t bytes;
    if (kv->type == GGUF_VT_STRING) {
        from = kv->val - 8; /* the length prefix */
        bytes = 8 + (size_t)kv->n;
    } else if (kv->type == GGUF_VT_ARRAY) {
        from = kv->val - 12; /* element type and count */
        if (kv->arr_type == GGUF_VT_STRING) { /* up to the end of the last string */
            uint64_t end = (uint64_t)(kv->val - f->base);
            if (kv->n) {
                uint64_t last = kv->str_off[kv->n - 1], len;
                memcpy(&len, f->base + last, 8);
                end = last + 8 + len;
            }
            bytes = (size_t)(end - (uint64_t)(from - f->base));
        } else {
            size_t esz = gguf_vtype_size(kv->arr_type);
            if (esz == 0) return wfail(w, "metadata copy: array '%s' has elements of type %u", kv->key, kv->arr_type);
            bytes = 12 + (size_t)kv->n * esz;
        }
    } else {
        from = kv->val;
        bytes = gguf_vtype_size(kv->type);
        if (bytes == 0) return wfail(w, "metadata copy: '%s' has value type %u", kv->key, kv->type);
    }
    size_t len;
    uint8_t *b = new_blob(w, kv->key, kv->type, bytes, &len);
    if (!b) return false;
    memcpy(b + 4, from, bytes);
    return set_blob(w, kv->key, b, len);
}

/* ---- tensor infos ---- */

bool gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne) {
    if (!usable(w, true)) return false;
    if (!name || !*name) return wfail(w, "tensor name is empty");
    int64_t bs, bb;
    if (!wg_type_traits(type, &bs, &bb)) return wfail(w, "tensor '%s': unknown tensor type id %u", name, type);
    if (n_dims == 0 || n_dims > GGUF_MAX_DIMS || !ne)
        return wfail(w, "tensor '%s': %u dimensions (must be 1..%d)", name, n_dims, GGUF_MAX_DIMS);
    wtensor t = {.type = type, .n_dims = n_dims, .ne = {1, 1, 1, 1}};
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] <= 0) return wfail(w, "tensor '%s': dimension %u is %" PRId64 " (must be positive)", name, d, ne[d]);
        t.ne[d] = ne[d];
    }
    if (t.ne[0] % bs != 0)
        return wfail(w, "tensor '%s': ne[0] = %" PRId64 " is not a multiple of the %s block size %" PRId64, name, t.ne[0],
                     wg_type_name(type), bs);
    if (!gguf_tensor_nbytes(bs, bb, t.ne, &t.nbytes)) return wfail(w, "tensor '%s': data size overflows", name);
    /* Linear scan: writers handle hundreds of tensors, not millions. */
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) return wfail(w, "duplicate tensor name '%s'", name);
    t.name = strdup(name);
    if (!t.name || !gguf_grow((void **)&w->t, &w->cap_t, w->n_t, sizeof *w->t)) {
        free(t.name);
        return wfail(w, "out of memory adding tensor '%s'", name);
    }
    w->t[w->n_t++] = t;
    return true;
}

/* ---- output ---- */

static bool put_bytes(gguf_writer *w, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, w->fp) != n) return wfail(w, "write to '%s' failed: %s", w->tmp_path, strerror(errno));
    return true;
}

static bool put_u32(gguf_writer *w, uint32_t v) { return put_bytes(w, &v, sizeof v); }
static bool put_u64(gguf_writer *w, uint64_t v) { return put_bytes(w, &v, sizeof v); }

static bool put_zeros(gguf_writer *w, uint64_t n) {
    static const uint8_t zeros[256];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (!put_bytes(w, zeros, k)) return false;
        n -= k;
    }
    return true;
}

static uint64_t pad_to(uint64_t pos, uint64_t a) { return (a - pos % a) % a; }

/* Alignment from general.alignment (must be a u32 power of two) or the default. */
static bool choose_alignment(gguf_writer *w) {
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        uint32_t type, a = 0;
        memcpy(&type, w->kv[i].blob, 4);
        if (type == GGUF_VT_UINT32) memcpy(&a, w->kv[i].blob + 4, 4);
        if (a == 0 || (a & (a - 1)) != 0 || a > GGUF_MAX_ALIGNMENT)
            return wfail(w, "general.alignment must be a u32 power of two in 1..%u", GGUF_MAX_ALIGNMENT);
        w->alignment = a;
    }
    return true;
}

static bool place_tensors(gguf_writer *w) {
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        if (__builtin_add_overflow(off, w->t[i].nbytes, &off) || __builtin_add_overflow(off, pad_to(off, w->alignment), &off))
            return wfail(w, "tensor data is too large");
    }
    return true;
}

static bool write_header(gguf_writer *w) {
    bool ok = put_bytes(w, GGUF_MAGIC, 4) && put_u32(w, 3) && put_u64(w, w->n_t) && put_u64(w, w->n_kv);
    uint64_t pos = 24;
    for (size_t i = 0; ok && i < w->n_kv; i++) {
        uint64_t kl = strlen(w->kv[i].key);
        ok = put_u64(w, kl) && put_bytes(w, w->kv[i].key, kl) && put_bytes(w, w->kv[i].blob, w->kv[i].blob_len);
        pos += 8 + kl + w->kv[i].blob_len;
    }
    for (size_t i = 0; ok && i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        uint64_t nl = strlen(t->name);
        ok = put_u64(w, nl) && put_bytes(w, t->name, nl) && put_u32(w, t->n_dims);
        for (uint32_t d = 0; ok && d < t->n_dims; d++) ok = put_u64(w, (uint64_t)t->ne[d]);
        ok = ok && put_u32(w, t->type) && put_u64(w, t->offset);
        pos += 8 + nl + 4 + 8 * (uint64_t)t->n_dims + 4 + 8;
    }
    return ok && put_zeros(w, pad_to(pos, w->alignment));
}

bool gguf_writer_begin(gguf_writer *w, const char *path) {
    if (!usable(w, true)) return false;
    if (!path || !*path) return wfail(w, "no output path");
    if (!choose_alignment(w) || !place_tensors(w)) return false;
    size_t n = strlen(path) + 32;
    w->path = strdup(path);
    w->tmp_path = malloc(n);
    w->fp_buf = malloc(WRITE_BUFFER_BYTES);
    if (!w->path || !w->tmp_path || !w->fp_buf) return wfail(w, "out of memory");
    snprintf(w->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    w->fp = fopen(w->tmp_path, "wb");
    if (!w->fp) return wfail(w, "cannot create '%s': %s", w->tmp_path, strerror(errno));
    setvbuf(w->fp, w->fp_buf, _IOFBF, WRITE_BUFFER_BYTES);
    w->state = WS_WRITING;
    return write_header(w);
}

bool gguf_writer_write_tensor(gguf_writer *w, const void *data, size_t nbytes) {
    if (!usable(w, false)) return false;
    if (w->state != WS_WRITING) return wfail(w, "gguf_writer_write_tensor called outside begin/finish");
    if (w->next_tensor >= w->n_t) return wfail(w, "more tensors written than the %zu added", w->n_t);
    const wtensor *t = &w->t[w->next_tensor];
    if (nbytes != t->nbytes)
        return wfail(w, "tensor '%s': %zu bytes given, its info needs %" PRIu64, t->name, nbytes, t->nbytes);
    if (!data && nbytes) return wfail(w, "tensor '%s': no data", t->name);
    if (!put_zeros(w, t->offset - w->data_pos) || !put_bytes(w, data, nbytes)) return false;
    w->data_pos = t->offset + nbytes;
    w->next_tensor++;
    return true;
}

bool gguf_writer_finish(gguf_writer *w) {
    if (!usable(w, false)) return false;
    if (w->state != WS_WRITING) return wfail(w, "gguf_writer_finish called without gguf_writer_begin");
    if (w->next_tensor != w->n_t) return wfail(w, "only %zu of %zu tensors were written", w->next_tensor, w->n_t);
    if (!put_zeros(w, pad_to(w->data_pos, w->alignment))) return false;
    if (fflush(w->fp) != 0 || fsync(fileno(w->fp)) != 0) return wfail(w, "cannot flush '%s': %s", w->tmp_path, strerror(errno));
    FILE *fp = w->fp;
    w->fp = NULL;
    if (fclose(fp) != 0) {
        unlink(w->tmp_path);
        return wfail(w, "cannot close '%s': %s", w->tmp_path, strerror(errno));
    }
    if (rename(w->tmp_path, w->path) != 0) {
        int e = errno;
        unlink(w->tmp_path);
        return wfail(w, "cannot rename '%s' to '%s': %s", w->tmp_path, w->path, strerror(e));
    }
    w->state = WS_DONE;
    return true;
}
