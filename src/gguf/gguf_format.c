/* Facts shared by the GGUF reader and writer (value-type names and sizes,
 * tensor sizes) and the one-line rendering of metadata values used by
 * `wgllm info` and by the reader's error messages. */
#include "gguf/gguf_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCALAR_STRING_CHARS 60 /* a string value is cut after this many bytes */
#define ARRAY_STRING_CHARS 24  /* each string shown inside an array */
#define ARRAY_SHOWN_STRINGS 4
#define ARRAY_SHOWN_NUMBERS 8

static const char *const k_vtype_names[GGUF_VT_COUNT_] = {
    [GGUF_VT_UINT8] = "u8",    [GGUF_VT_INT8] = "i8",   [GGUF_VT_UINT16] = "u16",  [GGUF_VT_INT16] = "i16",   [GGUF_VT_UINT32] = "u32",
    [GGUF_VT_INT32] = "i32",   [GGUF_VT_FLOAT32] = "f32", [GGUF_VT_BOOL] = "bool", [GGUF_VT_STRING] = "string", [GGUF_VT_ARRAY] = "array",
    [GGUF_VT_UINT64] = "u64",  [GGUF_VT_INT64] = "i64", [GGUF_VT_FLOAT64] = "f64",
};

static const uint8_t k_vtype_sizes[GGUF_VT_COUNT_] = {
    [GGUF_VT_UINT8] = 1,  [GGUF_VT_INT8] = 1,  [GGUF_VT_UINT16] = 2, [GGUF_VT_INT16] = 2,  [GGUF_VT_UINT32] = 4,
    [GGUF_VT_INT32] = 4,  [GGUF_VT_FLOAT32] = 4, [GGUF_VT_BOOL] = 1, [GGUF_VT_UINT64] = 8, [GGUF_VT_INT64] = 8,
    [GGUF_VT_FLOAT64] = 8,
};

const char *gguf_vtype_name(gguf_vtype t) { return (unsigned)t < GGUF_VT_COUNT_ ? k_vtype_names[t] : "unknown"; }

size_t gguf_vtype_size(gguf_vtype t) { return (unsigned)t < GGUF_VT_COUNT_ ? k_vtype_sizes[t] : 0; }

bool gguf_grow(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need < *cap) return true;
    size_t ncap = *cap ? *cap * 2 : 16, bytes;
    if (ncap <= need) ncap = need + 1;
    if (__builtin_mul_overflow(ncap, elem, &bytes)) return false;
    void *n = realloc(*arr, bytes);
    if (!n) return false;
    *arr = n;
    *cap = ncap;
    return true;
}

bool gguf_tensor_nbytes(int64_t block_size, int64_t block_bytes, const int64_t ne[GGUF_MAX_DIMS], uint64_t *nbytes) {
    int64_t n;
    bool overflow = __builtin_mul_overflow(ne[0] / block_size, block_bytes, &n);
    for (int d = 1; d < GGUF_MAX_DIMS; d++) overflow = overflow || __builtin_mul_overflow(n, ne[d], &n);
    if (overflow) return false;
    *nbytes = (uint64_t)n;
    return true;
}

/* A bounded output buffer: appends are cut at the end, always NUL-terminated. */
typedef struct out {
    char *buf;
    size_t cap; /* > 0 */
    size_t len;
} out;

static void put(out *o, const char *s, size_t n) {
    size_t room = o->cap - 1 - o->len;
    if (n > room) n = room;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

/* Cuts n back so that it does not split a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t n) {
    while (n > 0 && ((uint8_t)s[n] & 0xC0) == 0x80) n--;
    return n;
}

size_t gguf_escape(const char *s, size_t n, size_t max_chars, char *out_buf, size_t out_size) {
    if (out_size == 0) return 0;
    out o = {out_buf, out_size, 0};
    o.buf[0] = '\0';
    size_t shown = n;
    if (n > max_chars) shown = utf8_cut(s, max_chars);
    put(&o, "\"", 1);
    for (size_t i = 0; i < shown; i++) {
        uint8_t c = (uint8_t)s[i];
        char esc[8];
        switch (c) {
        case '\n': puts_(&o, "\\n"); break;
        case '\t': puts_(&o, "\\t"); break;
        case '\r': puts_(&o, "\\r"); break;
        case '"': puts_(&o, "\\\""); break;
        case '\\': puts_(&o, "\\\\"); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(esc, sizeof esc, "\\x%02x", c);
                puts_(&o, esc);
            } else {
                put(&o, (const char *)&s[i], 1);
            }
        }
    }
    put(&o, "\"", 1);
    if (shown < n) puts_(&o, "...");
    return o.len;
}

/* Shortest %g form that reads back to the same value, so 1e-05f prints as
 * "1e-05" rather than "9.99999975e-06". */
static void put_real(out *o, double v, bool single) {
    char tmp[40];
    for (int prec = single ? 6 : 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (single ? strtof(tmp, NULL) == (float)v : strtod(tmp, NULL) == v) break;
    }
    puts_(o, tmp);
}

/* One numeric or bool value of type t stored at p (little-endian, unaligned). */
static void put_number(out *o, gguf_vtype t, const uint8_t *p) {
    char tmp[32];
    tmp[0] = '\0';
    switch (t) {
    case GGUF_VT_UINT8: snprintf(tmp, sizeof tmp, "%u", (unsigned)p[0]); break;
    case GGUF_VT_INT8: snprintf(tmp, sizeof tmp, "%d", (int)(int8_t)p[0]); break;
    case GGUF_VT_BOOL: snprintf(tmp, sizeof tmp, "%s", p[0] ? "true" : "false"); break;
    case GGUF_VT_UINT16: { uint16_t v; memcpy(&v, p, sizeof v); snprintf(tmp, sizeof tmp, "%u", (unsigned)v); break; }
    case GGUF_VT_INT16: { int16_t v; memcpy(&v, p, sizeof v); snprintf(tmp, sizeof tmp, "%d", (int)v); break; }
    case GGUF_VT_UINT32: { uint32_t v; memcpy(&v, p, sizeof v); snprintf(tmp, sizeof tmp, "%" PRIu32, v); break; }
    case GGUF_VT_INT32: { int32_t v; memcpy(&v, p, sizeof v); snprintf(tmp, sizeof tmp, "%" PRId32, v); break; }
    case GGUF_VT_UINT64: { uint64_t v; memcpy(&v, p, sizeof v); snprintf(tmp, sizeof tmp, "%" PRIu64, v); break; }
    case GGUF_VT_INT64: { int64_t v; memcpy(&v, p, sizeof v); snprintf(tmp, sizeof tmp, "%" PRId64, v); break; }
    case GGUF_VT_FLOAT32: { float v; memcpy(&v, p, sizeof v); put_real(o, v, true); break; }
    case GGUF_VT_FLOAT64: { double v; memcpy(&v, p, sizeof v); put_real(o, v, false); break; }
    default: snprintf(tmp, sizeof tmp, "?"); break;
    }
    puts_(o, tmp);
}

static void put_string(out *o, const char *s, size_t n, size_t max_chars) {
    char tmp[4 * SCALAR_STRING_CHARS + 8]; /* every byte may become \xNN */
    gguf_escape(s, n, max_chars, tmp, sizeof tmp);
    puts_(o, tmp);
}

static void put_array(out *o, const gguf_file *f, int64_t i) {
    const gguf_kv *kv = &f->kv[i];
    char head[64];
    snprintf(head, sizeof head, "[%s x %" PRIu64 "]", gguf_vtype_name(kv->arr_type), kv->n);
    puts_(o, head);
    uint64_t limit = kv->arr_type == GGUF_VT_STRING ? ARRAY_SHOWN_STRINGS : ARRAY_SHOWN_NUMBERS;
    uint64_t shown = kv->n < limit ? kv->n : limit;
    for (uint64_t j = 0; j < shown; j++) {
        puts_(o, j == 0 ? " " : ", ");
        if (kv->arr_type == GGUF_VT_STRING) {
            const char *s;
            size_t len;
            gguf_arr_get_str(f, i, (int64_t)j, &s, &len);
            put_string(o, s, len, ARRAY_STRING_CHARS);
        } else {
            put_number(o, kv->arr_type, kv->val + j * gguf_vtype_size(kv->arr_type));
        }
    }
    if (shown < kv->n) puts_(o, ", ...");
}

void gguf_kv_format(const gguf_file *f, int64_t i, char *buf, size_t buf_size) {
    if (!buf || buf_size == 0) return;
    out o = {buf, buf_size, 0};
    buf[0] = '\0';
    if (!f || i < 0 || i >= f->n_kv) return;
    const gguf_kv *kv = &f->kv[i];
    if (kv->type == GGUF_VT_ARRAY)
        put_array(&o, f, i);
    else if (kv->type == GGUF_VT_STRING)
        put_string(&o, (const char *)kv->val, (size_t)kv->n, SCALAR_STRING_CHARS);
    else
        put_number(&o, kv->type, kv->val);
}

const char *gguf_str_shown(const char *s, size_t len, char *buf, size_t buf_size) {
    size_t max = buf_size < 44 ? buf_size - 1 : 40, n = 0;
    for (size_t i = 0; i < len && n < max; i++) buf[n++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (len > max && n + 3 < buf_size) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}
