/* GGUF v2/v3 reader: parses and validates the header, the metadata and the
 * tensor infos of a file mapped read-only (or a caller buffer). Values stay in
 * the mapping; only keys, tensor names and a string-array index are copied.
 * Every read goes through the parser's bounds checks and memcpy, so hostile or
 * unaligned input can never cause an over-read. */
#include "gguf/gguf_internal.h"
#include "quant/types.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Smallest possible encodings, used to reject counts the file cannot hold
 * before anything is allocated for them. */
#define MIN_KV_BYTES 13     /* key length (8) + empty key + type (4) + a u8 value */
#define MIN_TENSOR_BYTES 32 /* name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8) */
#define HEADER_BYTES 24     /* magic, version, n_tensors, n_kv */

typedef struct parser {
    const uint8_t *base;
    size_t size;
    size_t pos;
    size_t seen; /* end of the furthest byte looked at (a partly read buffer: see gguf_parse) */
    char *err;
    size_t err_size;
} parser;

static void vset_err(char *err, size_t err_size, const char *fmt, va_list ap) {
    if (err && err_size > 0) vsnprintf(err, err_size, fmt, ap);
}

static void set_err(char *err, size_t err_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t err_size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset_err(err, err_size, fmt, ap);
    va_end(ap);
}

/* Records why the file is rejected; returns false for `return fail(...)`. */
static bool fail(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(parser *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset_err(p->err, p->err_size, fmt, ap);
    va_end(ap);
    return false;
}

static size_t remaining(const parser *p) { return p->size - p->pos; }

static void saw(parser *p, size_t end) {
    if (end > p->seen) p->seen = end;
}

static bool read_u32(parser *p, uint32_t *v) {
    if (remaining(p) < sizeof *v) return false;
    saw(p, p->pos + sizeof *v);
    memcpy(v, p->base + p->pos, sizeof *v);
    p->pos += sizeof *v;
    return true;
}

static bool read_u64(parser *p, uint64_t *v) {
    if (remaining(p) < sizeof *v) return false;
    saw(p, p->pos + sizeof *v);
    memcpy(v, p->base + p->pos, sizeof *v);
    p->pos += sizeof *v;
    return true;
}

/* ---- name index (FNV-1a, linear probing) ---- */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static bool index_init(gguf_name_index *ix, int64_t n) {
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2) cap *= 2;
    ix->slots = malloc(cap * sizeof *ix->slots);
    if (!ix->slots) return false;
    memset(ix->slots, 0xff, cap * sizeof *ix->slots); /* all -1 */
    ix->mask = cap - 1;
    return true;
}

/* names(i) is the NUL-terminated name of entry i; the query is name[0..len). */
typedef const char *(*name_of_fn)(const gguf_file *f, int64_t i);

static const char *kv_name(const gguf_file *f, int64_t i) { return f->kv[i].key; }
static const char *tensor_name(const gguf_file *f, int64_t i) { return f->tensors[i].name; }

static bool name_equals(const char *stored, const char *q, size_t len) {
    return strncmp(stored, q, len) == 0 && stored[len] == '\0';
}

static int64_t index_find(const gguf_file *f, const gguf_name_index *ix, name_of_fn name_of, const char *q, size_t len) {
    if (!ix->slots) return -1;
    for (uint64_t s = hash_bytes(q, len) & ix->mask;; s = (s + 1) & ix->mask) {
        int64_t i = ix->slots[s];
        if (i < 0) return -1;
        if (name_equals(name_of(f, i), q, len)) return i;
    }
}

/* Inserts entry i; returns the index of an equal name already present, or -1. */
static int64_t index_insert(const gguf_file *f, gguf_name_index *ix, name_of_fn name_of, int64_t i) {
    const char *q = name_of(f, i);
    size_t len = strlen(q);
    for (uint64_t s = hash_bytes(q, len) & ix->mask;; s = (s + 1) & ix->mask) {
        int64_t j = ix->slots[s];
        if (j < 0) {
            ix->slots[s] = i;
            return -1;
        }
        if (name_equals(name_of(f, j), q, len)) return j;
    }
}

/* ---- metadata ---- */

/* Key as shown in messages: quoted, escaped, shortened. */
typedef struct shown_name {
    char s[4 * 48 + 8]; /* room for every byte escaped as \xNN */
} shown_name;

static shown_name show(const uint8_t *s, size_t n) {
    shown_name r;
    gguf_escape((const char *)s, n, 48, r.s, sizeof r.s);
    return r;
}

static shown_name show_str(const char *s) { return show((const uint8_t *)s, strlen(s)); }

static bool parse_string_array(parser *p, gguf_kv *kv, int64_t i, const char *key) {
    uint64_t n = kv->n;
    if (n > remaining(p) / 8)
        return fail(p, "truncated file in kv %" PRId64 " %s value: %" PRIu64 " strings need at least %" PRIu64 " bytes, %zu remain", i,
                    key, n, n * 8, remaining(p));
    uint64_t *off = malloc(n ? n * sizeof *off : 1);
    if (!off) return fail(p, "out of memory indexing kv %" PRId64 " %s (%" PRIu64 " strings)", i, key, n);
    kv->str_off = off;
    for (uint64_t j = 0; j < n; j++) {
        uint64_t len;
        off[j] = p->pos;
        if (!read_u64(p, &len))
            return fail(p, "truncated file in kv %" PRId64 " %s value (string %" PRIu64 " of %" PRIu64 ")", i, key, j, n);
        if (len > remaining(p))
            return fail(p, "kv %" PRId64 " %s: string %" PRIu64 " length %" PRIu64 " goes beyond the end of the file (%zu bytes remain)", i,
                        key, j, len, remaining(p));
        p->pos += len;
    }
    return true;
}

static bool parse_array(parser *p, gguf_kv *kv, int64_t i, const char *key) {
    uint32_t et;
    uint64_t n;
    if (!read_u32(p, &et) || !read_u64(p, &n)) return fail(p, "truncated file in kv %" PRId64 " %s value (array header)", i, key);
    if (et == GGUF_VT_ARRAY) return fail(p, "kv %" PRId64 " %s: arrays of arrays are not supported", i, key);
    if (et >= GGUF_VT_COUNT_) return fail(p, "kv %" PRId64 " %s: unknown metadata value type %u (array element)", i, key, et);
    kv->arr_type = (gguf_vtype)et;
    kv->n = n;
    kv->val = p->base + p->pos;
    if (et == GGUF_VT_STRING) return parse_string_array(p, kv, i, key);
    uint64_t bytes;
    if (__builtin_mul_overflow(n, (uint64_t)gguf_vtype_size(kv->arr_type), &bytes) || bytes > remaining(p))
        return fail(p, "truncated file in kv %" PRId64 " %s value: %" PRIu64 " elements of %s do not fit in the %zu bytes left", i, key, n,
                    gguf_vtype_name(kv->arr_type), remaining(p));
    p->pos += bytes;
    return true;
}

static bool parse_value(parser *p, gguf_kv *kv, int64_t i, const char *key) {
    uint32_t t;
    if (!read_u32(p, &t)) return fail(p, "truncated file in kv %" PRId64 " %s value type", i, key);
    if (t >= GGUF_VT_COUNT_) return fail(p, "kv %" PRId64 " %s: unknown metadata value type %u", i, key, t);
    kv->type = (gguf_vtype)t;
    if (t == GGUF_VT_ARRAY) return parse_array(p, kv, i, key);
    if (t == GGUF_VT_STRING) {
        uint64_t len;
        if (!read_u64(p, &len)) return fail(p, "truncated file in kv %" PRId64 " %s value (string length)", i, key);
        if (len > remaining(p))
            return fail(p, "kv %" PRId64 " %s: string length %" PRIu64 " goes beyond the end of the file (%zu bytes remain)", i, key, len,
                        remaining(p));
        kv->n = len;
        kv->val = p->base + p->pos;
        p->pos += len;
        return true;
    }
    size_t sz = gguf_vtype_size(kv->type);
    if (remaining(p) < sz) return fail(p, "truncated file in kv %" PRId64 " %s value", i, key);
    kv->val = p->base + p->pos;
    p->pos += sz;
    return true;
}

/* Reads a name (key or tensor name): u64 length then bytes, no NUL inside. */
static bool parse_name(parser *p, const char *what, int64_t i, const char *label, const uint8_t **s, uint64_t *len) {
    if (!read_u64(p, len)) return fail(p, "truncated file in %s %" PRId64 " %s length", what, i, label);
    if (*len > remaining(p))
        return fail(p, "%s %" PRId64 ": %s length %" PRIu64 " goes beyond the end of the file (%zu bytes remain)", what, i, label, *len,
                    remaining(p));
    *s = p->base + p->pos;
    saw(p, p->pos + *len);
    if (memchr(*s, 0, *len)) return fail(p, "%s %" PRId64 ": %s %s contains a NUL byte", what, i, label, show(*s, *len).s);
    p->pos += *len;
    return true;
}

/* Arrays grow as entries are read, so memory tracks what the file holds rather
 * than what a corrupt header claims. */
static bool parse_kvs(parser *p, gguf_file *f, uint64_t n_kv) {
    size_t cap = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (!gguf_grow((void **)&f->kv, &cap, (size_t)i, sizeof *f->kv)) return fail(p, "out of memory reading kv %" PRIu64, i);
        gguf_kv *kv = &f->kv[i];
        memset(kv, 0, sizeof *kv);
        f->n_kv = (int64_t)i + 1; /* counted now so cleanup frees its string index */
        const uint8_t *key = NULL;
        if (!parse_name(p, "kv", (int64_t)i, "key", &key, &kv->key_len)) return false;
        kv->key = (const char *)key; /* replaced by the arena copy later */
        if (!parse_value(p, kv, (int64_t)i, show(key, kv->key_len).s)) return false;
    }
    return true;
}

/* ---- tensors ---- */

static bool parse_tensor(parser *p, gguf_tensor_info *t, uint64_t *name_len, int64_t i) {
    const uint8_t *name = NULL;
    if (!parse_name(p, "tensor info", i, "name", &name, name_len)) return false;
    t->name = (const char *)name; /* replaced by the arena copy later */
    shown_name nm = show(name, *name_len);
    if (!read_u32(p, &t->n_dims)) return fail(p, "truncated file in tensor info %" PRId64 " %s (n_dims)", i, nm.s);
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
        return fail(p, "tensor %" PRId64 " %s: %u dimensions (must be 1..%d)", i, nm.s, t->n_dims, GGUF_MAX_DIMS);
    int64_t n_elems = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d >= t->n_dims) continue;
        uint64_t v;
        if (!read_u64(p, &v)) return fail(p, "truncated file in tensor info %" PRId64 " %s (dimensions)", i, nm.s);
        if (v == 0 || v > INT64_MAX)
            return fail(p, "tensor %" PRId64 " %s: dimension %u is %" PRId64 " (must be positive)", i, nm.s, d, (int64_t)v);
        t->ne[d] = (int64_t)v;
        if (__builtin_mul_overflow(n_elems, t->ne[d], &n_elems))
            return fail(p, "tensor %" PRId64 " %s: element count overflows (dimension %u)", i, nm.s, d);
    }
    if (!read_u32(p, &t->type) || !read_u64(p, &t->offset))
        return fail(p, "truncated file in tensor info %" PRId64 " %s (type and offset)", i, nm.s);
    int64_t bs, bb;
    if (!wg_type_traits(t->type, &bs, &bb)) return fail(p, "tensor %" PRId64 " %s: unknown tensor type id %u", i, nm.s, t->type);
    if (t->ne[0] % bs != 0)
        return fail(p, "tensor %" PRId64 " %s: ne[0] = %" PRId64 " is not a multiple of the %s block size %" PRId64, i, nm.s, t->ne[0],
                    wg_type_name(t->type), bs);
    if (!gguf_tensor_nbytes(bs, bb, t->ne, &t->nbytes)) return fail(p, "tensor %" PRId64 " %s: data size overflows", i, nm.s);
    return true;
}

typedef struct span {
    uint64_t begin, end;
    int64_t tensor;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->tensor < y->tensor ? -1 : (x->tensor > y->tensor);
}

/* Places every tensor in the data section: aligned, inside the file, disjoint. */
static bool check_tensor_data(parser *p, gguf_file *f) {
    if (f->n_tensors == 0) return true;
    if (f->data_offset >= f->size)
        return fail(p, "truncated file in tensor data: the data section starts at byte %" PRIu64 " but the file has %zu bytes",
                    f->data_offset, f->size);
    uint64_t data_size = f->size - f->data_offset;
    span *spans = malloc((size_t)f->n_tensors * sizeof *spans);
    if (!spans) return fail(p, "out of memory checking %" PRId64 " tensors", f->n_tensors);
    bool ok = true;
    for (int64_t i = 0; i < f->n_tensors && ok; i++) {
        gguf_tensor_info *t = &f->tensors[i];
        if (t->offset % f->alignment != 0)
            ok = fail(p, "tensor %" PRId64 " %s: offset %" PRIu64 " is misaligned (not a multiple of the alignment %u)", i,
                      show_str(t->name).s, t->offset, f->alignment);
        else if (t->offset >= data_size)
            ok = fail(p, "tensor %" PRId64 " %s: data offset %" PRIu64 " is outside the file (the data section has %" PRIu64 " bytes)", i,
                      show_str(t->name).s, t->offset, data_size);
        else if (t->nbytes > data_size - t->offset)
            ok = fail(p, "truncated file in tensor data: tensor %" PRId64 " %s needs %" PRIu64 " bytes at data offset %" PRIu64
                      " but the data section has only %" PRIu64, i, show_str(t->name).s, t->nbytes, t->offset, data_size);
        if (!ok) break;
        t->data = f->base + f->data_offset + t->offset;
        spans[i] = (span){t->offset, t->offset + t->nbytes, i};
    }
    if (ok) {
        qsort(spans, (size_t)f->n_tensors, sizeof *spans, span_cmp);
        for (int64_t i = 1; i < f->n_tensors && ok; i++) {
            if (spans[i].begin < spans[i - 1].end) {
                ok = fail(p, "overlapping tensors %s and %s (data bytes [%" PRIu64 ", %" PRIu64 ") and [%" PRIu64 ", %" PRIu64 "))",
                          show_str(f->tensors[spans[i - 1].tensor].name).s, show_str(f->tensors[spans[i].tensor].name).s,
                          spans[i - 1].begin, spans[i - 1].end, spans[i].begin, spans[i].end);
            }
        }
    }
    free(spans);
    return ok;
}

static bool parse_tensors(parser *p, gguf_file *f, uint64_t n_tensors, uint64_t **name_lens) {
    size_t cap = 0, len_cap = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        if (!gguf_grow((void **)&f->tensors, &cap, (size_t)i, sizeof *f->tensors) ||
            !gguf_grow((void **)name_lens, &len_cap, (size_t)i, sizeof **name_lens))
            return fail(p, "out of memory reading tensor info %" PRIu64, i);
        memset(&f->tensors[i], 0, sizeof f->tensors[i]);
        if (!parse_tensor(p, &f->tensors[i], &(*name_lens)[i], (int64_t)i)) return false;
        f->n_tensors = (int64_t)i + 1;
    }
    return true;
}

/* ---- names: copy into one arena, index, reject duplicates ---- */

static bool copy_names(parser *p, gguf_file *f, const uint64_t *tensor_name_lens) {
    size_t total = 0;
    for (int64_t i = 0; i < f->n_kv; i++) total += f->kv[i].key_len + 1;
    for (int64_t i = 0; i < f->n_tensors; i++) total += tensor_name_lens[i] + 1;
    f->names = malloc(total ? total : 1);
    if (!f->names) return fail(p, "out of memory copying names (%zu bytes)", total);
    char *dst = f->names;
    for (int64_t i = 0; i < f->n_kv; i++) {
        memcpy(dst, f->kv[i].key, f->kv[i].key_len);
        dst[f->kv[i].key_len] = '\0';
        f->kv[i].key = dst;
        dst += f->kv[i].key_len + 1;
    }
    for (int64_t i = 0; i < f->n_tensors; i++) {
        memcpy(dst, f->tensors[i].name, tensor_name_lens[i]);
        dst[tensor_name_lens[i]] = '\0';
        f->tensors[i].name = dst;
        dst += tensor_name_lens[i] + 1;
    }
    return true;
}

static bool index_names(parser *p, gguf_file *f) {
    if (!index_init(&f->key_index, f->n_kv) || !index_init(&f->tensor_index, f->n_tensors))
        return fail(p, "out of memory indexing names");
    for (int64_t i = 0; i < f->n_kv; i++) {
        int64_t j = index_insert(f, &f->key_index, kv_name, i);
        if (j >= 0)
            return fail(p, "duplicate key %s (kv %" PRId64 " and kv %" PRId64 ")", show_str(f->kv[i].key).s, j, i);
    }
    for (int64_t i = 0; i < f->n_tensors; i++) {
        int64_t j = index_insert(f, &f->tensor_index, tensor_name, i);
        if (j >= 0)
            return fail(p, "duplicate tensor name %s (tensors %" PRId64 " and %" PRId64 ")", show_str(f->tensors[i].name).s, j, i);
    }
    return true;
}

/* ---- header ---- */

static bool parse_header(parser *p, gguf_file *f, uint64_t *n_tensors, uint64_t *n_kv) {
    if (p->size < 4) return fail(p, "file too small for a GGUF header (%zu bytes, need %d)", p->size, HEADER_BYTES);
    saw(p, 4);
    if (memcmp(p->base, GGUF_MAGIC, 4) != 0)
        return fail(p, "bad magic %s: not a GGUF file (expected \"GGUF\")", show(p->base, 4).s);
    p->pos = 4;
    if (!read_u32(p, &f->version)) return fail(p, "file too small for a GGUF header (%zu bytes, need %d)", p->size, HEADER_BYTES);
    if (f->version == 1)
        return fail(p, "unsupported GGUF version 1 (obsolete 32-bit counts; only versions 2 and 3 are read: re-convert the model)");
    if (f->version != 2 && f->version != 3) {
        uint32_t swapped = __builtin_bswap32(f->version);
        return fail(p, "unsupported GGUF version %u (%s)", f->version,
                    swapped >= 1 && swapped <= 3 ? "a big-endian file? only little-endian files are read" : "only versions 2 and 3 are read");
    }
    if (!read_u64(p, n_tensors) || !read_u64(p, n_kv))
        return fail(p, "file too small for a GGUF header (%zu bytes, need %d)", p->size, HEADER_BYTES);
    uint64_t left = remaining(p);
    if (*n_kv > left / MIN_KV_BYTES || *n_tensors > left / MIN_TENSOR_BYTES ||
        *n_kv * MIN_KV_BYTES + *n_tensors * MIN_TENSOR_BYTES > left)
        return fail(p, "absurd counts: %" PRIu64 " tensors and %" PRIu64 " metadata entries cannot fit in a file of %zu bytes", *n_tensors,
                    *n_kv, p->size);
    return true;
}

static bool read_alignment(parser *p, gguf_file *f) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t i = gguf_find_key(f, "general.alignment");
    if (i < 0) return true;
    const gguf_kv *kv = &f->kv[i];
    if (kv->type != GGUF_VT_UINT32)
        return fail(p, "invalid alignment: general.alignment has type %s (must be u32)", gguf_vtype_name(kv->type));
    uint32_t a;
    memcpy(&a, kv->val, sizeof a);
    if (a == 0 || (a & (a - 1)) != 0 || a > GGUF_MAX_ALIGNMENT)
        return fail(p, "invalid alignment %u: general.alignment must be a power of two in 1..%u", a, GGUF_MAX_ALIGNMENT);
    f->alignment = a;
    return true;
}

static bool parse_file(parser *p, gguf_file *f) {
    uint64_t n_tensors = 0, n_kv = 0;
    if (!parse_header(p, f, &n_tensors, &n_kv) || !parse_kvs(p, f, n_kv)) return false;
    uint64_t *name_lens = NULL;
    bool ok = parse_tensors(p, f, n_tensors, &name_lens) && copy_names(p, f, name_lens) && index_names(p, f) && read_alignment(p, f);
    free(name_lens);
    if (!ok) return false;
    uint64_t a = f->alignment;
    f->data_offset = (p->pos + a - 1) / a * a; /* pos <= size and a <= 2^24: cannot overflow */
    return check_tensor_data(p, f);
}

/* ---- open / close ---- */

gguf_file *gguf_parse(const void *data, size_t size, size_t *seen, char *err, size_t err_size) {
    if (seen) *seen = 0;
    if (!data && size > 0) {
        set_err(err, err_size, "no data");
        return NULL;
    }
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        set_err(err, err_size, "out of memory");
        return NULL;
    }
    static const uint8_t empty[1];
    f->base = data ? data : empty;
    f->size = size;
    f->fd = -1;
    parser p = {f->base, size, 0, 0, err, err_size};
    bool ok = parse_file(&p, f);
    saw(&p, p.pos);
    if (seen) *seen = p.seen;
    if (!ok) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

gguf_file *gguf_open_memory(const void *data, size_t size, char *err, size_t err_size) {
    return gguf_parse(data, size, NULL, err, err_size);
}

int gguf_open_regular(const char *path, struct stat *st, char *err, size_t err_size) {
    if (!path) {
        set_err(err, err_size, "no path given");
        return -1;
    }
    /* O_NONBLOCK: opening a FIFO or a device must not wait for a writer (a reload named
     * one would hang); the check below then refuses anything but a regular file, for which
     * the flag changes nothing. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        set_err(err, err_size, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    bool ok = false;
    if (fstat(fd, st) != 0)
        set_err(err, err_size, "cannot stat '%s': %s", path, strerror(errno));
    else if (!S_ISREG(st->st_mode))
        set_err(err, err_size, "'%s' is %s, not a regular file", path, S_ISDIR(st->st_mode) ? "a directory" : "special");
    else if ((uint64_t)st->st_size > SIZE_MAX)
        set_err(err, err_size, "'%s' is too large for this machine's address space", path);
    else if ((uint64_t)st->st_size < HEADER_BYTES)
        set_err(err, err_size, "file too small for a GGUF header (%lld bytes, need %d)", (long long)st->st_size,
                HEADER_BYTES);
    else
        ok = true;
    if (!ok) {
        close(fd);
        return -1;
    }
    return fd;
}

gguf_file *gguf_open(const char *path, char *err, size_t err_size) {
    struct stat st;
    int fd = gguf_open_regular(path, &st, err, err_size);
    if (fd < 0) return NULL;
    const size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd); /* the mapping keeps the file alive */
    if (map == MAP_FAILED) {
        set_err(err, err_size, "cannot map '%s': %s", path, strerror(map_errno));
        return NULL;
    }
    gguf_file *f = gguf_open_memory(map, size, err, err_size);
    if (!f) {
        munmap(map, size);
        return NULL;
    }
    f->mapping = map;
    return f;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    for (int64_t i = 0; i < f->n_kv; i++) free((void *)f->kv[i].str_off);
    free(f->kv);
    free(f->tensors);
    free(f->names);
    free(f->key_index.slots);
    free(f->tensor_index.slots);
    free(f->loaded);
    if (f->fd >= 0) close(f->fd);
    if (f->mapping) munmap(f->mapping, f->size);
    free(f);
}

/* ---- file accessors ---- */

uint32_t gguf_version(const gguf_file *f) { return f->version; }
uint32_t gguf_alignment(const gguf_file *f) { return f->alignment; }
uint64_t gguf_data_offset(const gguf_file *f) { return f->data_offset; }
size_t gguf_file_size(const gguf_file *f) { return f->size; }
const void *gguf_file_base(const gguf_file *f) { return f->base; }

/* ---- metadata accessors ---- */

int64_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }

int64_t gguf_find_key(const gguf_file *f, const char *key) {
    if (!key) return -1;
    return index_find(f, &f->key_index, kv_name, key, strlen(key));
}

static const gguf_kv *kv_at(const gguf_file *f, int64_t i) { return i >= 0 && i < f->n_kv ? &f->kv[i] : NULL; }

const char *gguf_kv_key(const gguf_file *f, int64_t i) {
    const gguf_kv *kv = kv_at(f, i);
    return kv ? kv->key : NULL;
}

gguf_vtype gguf_kv_type(const gguf_file *f, int64_t i) {
    const gguf_kv *kv = kv_at(f, i);
    return kv ? kv->type : GGUF_VT_COUNT_;
}

/* An integer of any width, kept exact: signed types in s, unsigned in u. */
typedef struct integer {
    bool is_signed;
    int64_t s;
    uint64_t u;
} integer;

static bool load_integer(gguf_vtype t, const uint8_t *p, integer *out) {
    out->is_signed = true;
    out->s = 0;
    out->u = 0;
    switch (t) {
    case GGUF_VT_UINT8: { uint8_t v; memcpy(&v, p, sizeof v); out->u = v; out->is_signed = false; return true; }
    case GGUF_VT_UINT16: { uint16_t v; memcpy(&v, p, sizeof v); out->u = v; out->is_signed = false; return true; }
    case GGUF_VT_UINT32: { uint32_t v; memcpy(&v, p, sizeof v); out->u = v; out->is_signed = false; return true; }
    case GGUF_VT_UINT64: { uint64_t v; memcpy(&v, p, sizeof v); out->u = v; out->is_signed = false; return true; }
    case GGUF_VT_INT8: { int8_t v; memcpy(&v, p, sizeof v); out->s = v; return true; }
    case GGUF_VT_INT16: { int16_t v; memcpy(&v, p, sizeof v); out->s = v; return true; }
    case GGUF_VT_INT32: { int32_t v; memcpy(&v, p, sizeof v); out->s = v; return true; }
    case GGUF_VT_INT64: { int64_t v; memcpy(&v, p, sizeof v); out->s = v; return true; }
    default: return false;
    }
}

static bool integer_to_i64(integer v, int64_t *out) {
    if (v.is_signed) {
        *out = v.s;
        return true;
    }
    if (v.u > INT64_MAX) return false;
    *out = (int64_t)v.u;
    return true;
}

static bool load_double(gguf_vtype t, const uint8_t *p, double *out) {
    if (t == GGUF_VT_FLOAT32) {
        float v;
        memcpy(&v, p, sizeof v);
        *out = v;
        return true;
    }
    if (t == GGUF_VT_FLOAT64) {
        memcpy(out, p, sizeof *out);
        return true;
    }
    integer v;
    if (!load_integer(t, p, &v)) return false;
    *out = v.is_signed ? (double)v.s : (double)v.u;
    return true;
}

static const gguf_kv *scalar_kv(const gguf_file *f, const char *key) {
    const gguf_kv *kv = kv_at(f, gguf_find_key(f, key));
    return kv && kv->type != GGUF_VT_ARRAY && kv->type != GGUF_VT_STRING ? kv : NULL;
}

bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    const gguf_kv *kv = scalar_kv(f, key);
    integer v;
    if (!kv || !load_integer(kv->type, kv->val, &v)) return false;
    if (v.is_signed ? (v.s < 0 || v.s > UINT32_MAX) : v.u > UINT32_MAX) return false;
    *out = v.is_signed ? (uint32_t)v.s : (uint32_t)v.u;
    return true;
}

bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out) {
    const gguf_kv *kv = scalar_kv(f, key);
    integer v;
    return kv && load_integer(kv->type, kv->val, &v) && integer_to_i64(v, out);
}

bool gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    const gguf_kv *kv = scalar_kv(f, key);
    double d;
    if (!kv || !load_double(kv->type, kv->val, &d)) return false;
    if (isfinite(d) && fabs(d) > FLT_MAX) return false;
    *out = (float)d;
    return true;
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_kv *kv = scalar_kv(f, key);
    if (!kv || kv->type != GGUF_VT_BOOL) return false;
    *out = kv->val[0] != 0;
    return true;
}

bool gguf_get_str(const gguf_file *f, const char *key, const char **s, size_t *len) {
    const gguf_kv *kv = kv_at(f, gguf_find_key(f, key));
    if (!kv || kv->type != GGUF_VT_STRING) return false;
    *s = (const char *)kv->val;
    *len = (size_t)kv->n;
    return true;
}

/* ---- array accessors ---- */

static const gguf_kv *array_kv(const gguf_file *f, int64_t i, int64_t idx) {
    const gguf_kv *kv = kv_at(f, i);
    if (!kv || kv->type != GGUF_VT_ARRAY || idx < 0 || (uint64_t)idx >= kv->n) return NULL;
    return kv;
}

int64_t gguf_arr_n(const gguf_file *f, int64_t i) {
    const gguf_kv *kv = kv_at(f, i);
    return kv && kv->type == GGUF_VT_ARRAY ? (int64_t)kv->n : -1;
}

gguf_vtype gguf_arr_type(const gguf_file *f, int64_t i) {
    const gguf_kv *kv = kv_at(f, i);
    return kv && kv->type == GGUF_VT_ARRAY ? kv->arr_type : GGUF_VT_COUNT_;
}

bool gguf_arr_get_i64(const gguf_file *f, int64_t i, int64_t idx, int64_t *out) {
    const gguf_kv *kv = array_kv(f, i, idx);
    integer v;
    if (!kv || kv->arr_type == GGUF_VT_STRING) return false;
    const uint8_t *p = kv->val + (size_t)idx * gguf_vtype_size(kv->arr_type);
    return load_integer(kv->arr_type, p, &v) && integer_to_i64(v, out);
}

bool gguf_arr_get_f64(const gguf_file *f, int64_t i, int64_t idx, double *out) {
    const gguf_kv *kv = array_kv(f, i, idx);
    if (!kv || kv->arr_type == GGUF_VT_STRING || kv->arr_type == GGUF_VT_BOOL) return false;
    return load_double(kv->arr_type, kv->val + (size_t)idx * gguf_vtype_size(kv->arr_type), out);
}

bool gguf_arr_get_str(const gguf_file *f, int64_t i, int64_t idx, const char **s, size_t *len) {
    const gguf_kv *kv = array_kv(f, i, idx);
    if (!kv || kv->arr_type != GGUF_VT_STRING) return false;
    uint64_t at = kv->str_off[idx], n;
    memcpy(&n, f->base + at, sizeof n);
    *s = (const char *)f->base + at + sizeof n;
    *len = (size_t)n;
    return true;
}

/* ---- tensor accessors ---- */

int64_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }

const gguf_tensor_info *gguf_tensor(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor_info *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (!name) return NULL;
    int64_t i = index_find(f, &f->tensor_index, tensor_name, name, strlen(name));
    return i >= 0 ? &f->tensors[i] : NULL;
}
