/* libFuzzer target for the GGUF reader: opens the input from memory and, when
 * it is accepted, calls every accessor on every kv and tensor and touches every
 * tensor byte, so any bound the parser failed to check shows up under ASan.
 * Seeds: tests/fuzz/corpus/gguf (made by make_gguf_corpus.c). */
#include "gguf/gguf.h"
#include "quant/types.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) __builtin_trap(); \
    } while (0)

static volatile uint64_t g_sink; /* keeps the reads from being optimised away */

static void touch(const void *p, size_t n) {
    const uint8_t *b = p;
    uint64_t acc = 0;
    for (size_t i = 0; i < n; i++) acc += b[i];
    g_sink += acc;
}

static void exercise_kv(const gguf_file *f, int64_t i) {
    const char *key = gguf_kv_key(f, i);
    REQUIRE(key != NULL);
    REQUIRE(gguf_find_key(f, key) == i); /* keys are unique and NUL-free */
    gguf_vtype t = gguf_kv_type(f, i);
    REQUIRE((unsigned)t < GGUF_VT_COUNT_);
    (void)gguf_vtype_name(t);

    char buf[256];
    gguf_kv_format(f, i, buf, sizeof buf);
    REQUIRE(strlen(buf) < sizeof buf);
    gguf_kv_format(f, i, buf, 7);
    REQUIRE(strlen(buf) < 7);

    uint32_t u32;
    int64_t i64;
    float f32;
    bool b;
    const char *s;
    size_t len;
    (void)gguf_get_u32(f, key, &u32);
    (void)gguf_get_i64(f, key, &i64);
    (void)gguf_get_f32(f, key, &f32);
    (void)gguf_get_bool(f, key, &b);
    if (gguf_get_str(f, key, &s, &len)) touch(s, len);

    int64_t n = gguf_arr_n(f, i);
    if (n < 0) {
        REQUIRE(t != GGUF_VT_ARRAY);
        return;
    }
    REQUIRE(t == GGUF_VT_ARRAY);
    (void)gguf_arr_type(f, i);
    double d;
    for (int64_t j = -1; j <= n; j++) {
        bool in = j >= 0 && j < n;
        if (gguf_arr_get_str(f, i, j, &s, &len)) {
            REQUIRE(in);
            touch(s, len);
        }
        if (gguf_arr_get_i64(f, i, j, &i64)) REQUIRE(in);
        if (gguf_arr_get_f64(f, i, j, &d)) REQUIRE(in);
    }
}

static void exercise_tensor(const gguf_file *f, int64_t i) {
    const gguf_tensor_info *t = gguf_tensor(f, i);
    REQUIRE(t != NULL && t->name != NULL);
    REQUIRE(gguf_find_tensor(f, t->name) == t);
    REQUIRE(t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS);
    REQUIRE(wg_type_name(t->type) != NULL);
    REQUIRE(wg_type_row_bytes(t->type, t->ne[0]) > 0);
    const uint8_t *base = gguf_file_base(f);
    const uint8_t *data = t->data;
    REQUIRE(data >= base + gguf_data_offset(f) && (size_t)(data - base) + t->nbytes <= gguf_file_size(f));
    REQUIRE(t->offset % gguf_alignment(f) == 0);
    touch(t->data, t->nbytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    err[0] = '\0';
    gguf_file *f = gguf_open_memory(data, size, err, sizeof err);
    if (!f) {
        REQUIRE(err[0] != '\0' && strchr(err, '\n') == NULL);
        return 0;
    }
    REQUIRE(gguf_version(f) == 2 || gguf_version(f) == 3);
    uint32_t a = gguf_alignment(f);
    REQUIRE(a != 0 && (a & (a - 1)) == 0);
    for (int64_t i = 0; i < gguf_n_kv(f); i++) exercise_kv(f, i);
    REQUIRE(gguf_kv_key(f, gguf_n_kv(f)) == NULL);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) exercise_tensor(f, i);
    REQUIRE(gguf_tensor(f, gguf_n_tensors(f)) == NULL);
    (void)gguf_find_key(f, "general.architecture");
    (void)gguf_find_tensor(f, "token_embd.weight");
    gguf_close(f);
    return 0;
}
