/* safetensors reader: header parsing edge cases from memory, element reads, and
 * checkpoint folders (single file, sharded index, bad indexes) on disk. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "convert/safetensors.h"
#include "quant/quant.h"
#include "quant/types.h"

/* 8-byte length + header + data, in buf; returns the size. */
static size_t make_file(uint8_t *buf, size_t cap, const char *header, const void *data, size_t data_len) {
    size_t h = strlen(header);
    if (8 + h + data_len > cap) abort();
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    if (data_len) memcpy(buf + 8 + h, data, data_len);
    return 8 + h + data_len;
}

static uint8_t g_buf[4096];
static char g_err[256];

/* Opens header+data from memory; NULL on failure with g_err set. */
static wg_st_file *open_mem(const char *header, const void *data, size_t data_len) {
    size_t n = make_file(g_buf, sizeof g_buf, header, data, data_len);
    g_err[0] = 0;
    return wg_st_open_memory(g_buf, n, g_err, sizeof g_err);
}

static void expect_fail(const char *header, size_t data_len, const char *needle) {
    static const uint8_t zeros[512];
    wg_st_file *f = open_mem(header, zeros, data_len);
    CHECK_MSG(f == NULL, "accepted: %s", header);
    CHECK_MSG(strstr(g_err, needle) != NULL, "error '%s' lacks '%s' (header %s)", g_err, needle, header);
    CHECK(strchr(g_err, '\n') == NULL);
    wg_st_close(f);
}

static void test_valid(void) {
    float a[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    uint8_t data[24 + 4 + 4];
    memcpy(data, a, 24);
    uint16_t h[2] = {wg_f32_to_fp16(0.5f), wg_f32_to_fp16(-3.0f)};
    uint16_t bf[2] = {wg_f32_to_bf16(2.0f), wg_f32_to_bf16(-0.25f)};
    memcpy(data + 24, h, 4);
    memcpy(data + 28, bf, 4);
    wg_st_file *f = open_mem("{\"__metadata__\":{\"format\":\"pt\"},"
                             "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                             "\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[24,28]},"
                             "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[28,32]}}   ",
                             data, sizeof data);
    CHECK_MSG(f != NULL, "%s", g_err);
    if (!f) return;
    CHECK(wg_st_n_tensors(f) == 3); /* __metadata__ is not a tensor */
    const wg_st_tensor *w = wg_st_find(f, "w");
    CHECK(w && w->type == WG_TYPE_F32 && w->n_dims == 2 && w->shape[0] == 2 && w->shape[1] == 3);
    CHECK(w && w->n_elements == 6 && w->nbytes == 24 && strcmp(w->dtype, "F32") == 0);
    for (int i = 0; w && i < 6; i++) CHECK(wg_st_get_f32(w, (uint64_t)i) == a[i]);
    const wg_st_tensor *t = wg_st_find(f, "h");
    CHECK(t && t->type == WG_TYPE_F16 && wg_st_get_f32(t, 0) == 0.5f && wg_st_get_f32(t, 1) == -3.0f);
    t = wg_st_find(f, "b");
    CHECK(t && t->type == WG_TYPE_BF16 && wg_st_get_f32(t, 0) == 2.0f && wg_st_get_f32(t, 1) == -0.25f);
    CHECK(wg_st_find(f, "__metadata__") == NULL && wg_st_find(f, "x") == NULL);
    CHECK(wg_st_tensor_at(f, 3) == NULL && wg_st_tensor_at(f, -1) == NULL);
    char err[128];
    CHECK(wg_st_tensor_readable(w, err, sizeof err));
    wg_st_close(f);
}

static void test_edge_shapes(void) {
    /* a scalar (no dims) and an empty tensor (a zero dim) are legal */
    float one = 4.0f;
    wg_st_file *f = open_mem("{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                             "\"e\":{\"dtype\":\"F16\",\"shape\":[0,5],\"data_offsets\":[4,4]}}",
                             &one, 4);
    CHECK_MSG(f != NULL, "%s", g_err);
    if (f) {
        const wg_st_tensor *s = wg_st_find(f, "s"), *e = wg_st_find(f, "e");
        CHECK(s && s->n_dims == 0 && s->n_elements == 1 && wg_st_get_f32(s, 0) == 4.0f);
        CHECK(e && e->n_elements == 0 && e->nbytes == 0);
    }
    wg_st_close(f);
    /* other dtypes parse (sizes checked) but are not readable */
    f = open_mem("{\"i\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", g_buf, 16);
    CHECK_MSG(f != NULL, "%s", g_err);
    if (f) {
        char err[160];
        CHECK(!wg_st_tensor_readable(wg_st_find(f, "i"), err, sizeof err));
        CHECK(strstr(err, "dtype I64") != NULL);
    }
    wg_st_close(f);
    /* an empty header object: no tensors */
    f = open_mem("{}", NULL, 0);
    CHECK(f != NULL && wg_st_n_tensors(f) == 0);
    wg_st_close(f);
}

static void test_bad_headers(void) {
    /* the length prefix */
    g_err[0] = 0;
    CHECK(wg_st_open_memory("\x02\0\0", 3, g_err, sizeof g_err) == NULL && strstr(g_err, "8-byte"));
    uint8_t b[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    CHECK(wg_st_open_memory(b, 10, g_err, sizeof g_err) == NULL && strstr(g_err, "header length"));
    uint8_t c[10] = {3, 0, 0, 0, 0, 0, 0, 0, '{', '}'}; /* one byte past the end */
    CHECK(wg_st_open_memory(c, 10, g_err, sizeof g_err) == NULL && strstr(g_err, "header length"));
    uint8_t d[9] = {1, 0, 0, 0, 0, 0, 0, 0, '{'};
    CHECK(wg_st_open_memory(d, 9, g_err, sizeof g_err) == NULL && strstr(g_err, "header length"));
    /* the JSON */
    expect_fail("[1,2]", 0, "not a JSON object");
    expect_fail("{\"a\":1", 0, "not a JSON object");
    expect_fail("{} x", 0, "trailing");
    expect_fail("{\"a\":1}", 0, "not an object");
    expect_fail("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "needs dtype");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "needs dtype");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "needs dtype");
    expect_fail("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "needs dtype");
    expect_fail("{\"a\":{\"dtype\":\"Q4_0\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype");
    /* shapes */
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "non-negative");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "non-negative");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, "non-negative");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 4, "non-negative");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
                "overflow");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,2],\"data_offsets\":[0,4]}}", 4,
                "non-negative"); /* above 2^53: not exactly representable */
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                "dimensions");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "needs 8");
    expect_fail("{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "needs 16");
    /* data_offsets */
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 4, "outside");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, "begin <= end");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "two integers");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, "two integers");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, "two integers");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551616]}}", 4,
                "two integers");
    /* names: control characters never reach the one-line message */
    expect_fail("{\"a\\nb\\u0007\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 4, "'a?b?'");
    /* names */
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                4, "twice");
}

/* ---- checkpoint folders ---- */

static char g_dir[256];

static void write_bytes(const char *name, const void *p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fwrite(p, 1, n, f);
    fclose(f);
}

static void write_st(const char *name, const char *header, size_t data_len) {
    static const uint8_t zeros[256];
    size_t n = make_file(g_buf, sizeof g_buf, header, zeros, data_len);
    write_bytes(name, g_buf, n);
}

static void remove_file(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    unlink(path);
}

static wg_st_checkpoint *open_dir(void) {
    g_err[0] = 0;
    return wg_st_checkpoint_open(g_dir, g_err, sizeof g_err);
}

static void test_checkpoints(void) {
    const char *tmp = getenv("TMPDIR");
    /* TMPDIR, else the working directory (the build folder under ctest) */
    snprintf(g_dir, sizeof g_dir, "%s/wgllm-st-XXXXXX", tmp && *tmp ? tmp : ".");
    if (!mkdtemp(g_dir)) {
        CHECK_MSG(0, "mkdtemp failed");
        return;
    }
    /* empty folder */
    wg_st_checkpoint *c = open_dir();
    CHECK(c == NULL && strstr(g_err, "no model.safetensors"));

    /* single file */
    write_st("model.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    c = open_dir();
    CHECK_MSG(c != NULL, "%s", g_err);
    if (c) CHECK(wg_st_checkpoint_n_files(c) == 1 && wg_st_checkpoint_find(c, "x") && !wg_st_checkpoint_find(c, "y"));
    wg_st_checkpoint_free(c);
    remove_file("model.safetensors");

    /* two shards through an index (the index wins over a stray model.safetensors) */
    write_st("a.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    write_st("b.safetensors", "{\"y\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4);
    const char *index = "{\"metadata\":{\"total_size\":8},\"weight_map\":{\"x\":\"a.safetensors\",\"y\":\"b.safetensors\"}}";
    write_bytes("model.safetensors.index.json", index, strlen(index));
    c = open_dir();
    CHECK_MSG(c != NULL, "%s", g_err);
    if (c) {
        CHECK(wg_st_checkpoint_n_files(c) == 2);
        const wg_st_tensor *y = wg_st_checkpoint_find(c, "y");
        CHECK(y && y->type == WG_TYPE_F16 && wg_st_checkpoint_find(c, "x"));
        CHECK(wg_st_checkpoint_file(c, 2) == NULL && wg_st_checkpoint_file(c, 0) != NULL);
    }
    wg_st_checkpoint_free(c);

    static const struct {
        const char *index, *needle;
    } bad[] = {
        {"{\"weight_map\":{\"x\":\"../a.safetensors\"}}", "not a file name"},
        {"{\"weight_map\":{\"x\":\"sub/a.safetensors\"}}", "not a file name"},
        {"{\"weight_map\":{\"x\":7}}", "not a file name"},
        {"{\"weight_map\":{\"x\":\"\"}}", "not a file name"},
        {"{\"weight_map\":{}}", "weight_map"},
        {"{\"weights\":{}}", "weight_map"},
        {"{\"weight_map\":", "not valid JSON"},
        {"{\"weight_map\":{\"x\":\"missing.safetensors\"}}", "cannot open"},
        {"{\"weight_map\":{\"x\":\"b.safetensors\"}}", "as the index says"},
        {"{\"weight_map\":{\"x\":\"a.safetensors\",\"z\":\"c.safetensors\"}}", "two shards"},
    };
    /* c holds x again: a tensor in two shards */
    write_st("c.safetensors",
             "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
             4);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_bytes("model.safetensors.index.json", bad[i].index, strlen(bad[i].index));
        c = open_dir();
        CHECK_MSG(c == NULL && strstr(g_err, bad[i].needle), "index %s: got '%s'", bad[i].index, g_err);
        CHECK(strchr(g_err, '\n') == NULL);
        wg_st_checkpoint_free(c);
    }
    /* a shard that is not a safetensors file names itself */
    write_bytes("a.safetensors", "hello", 5);
    write_bytes("model.safetensors.index.json", index, strlen(index));
    c = open_dir();
    CHECK(c == NULL && strstr(g_err, "a.safetensors:"));
    wg_st_checkpoint_free(c);

    const char *names[] = {"a.safetensors", "b.safetensors", "c.safetensors", "model.safetensors.index.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) remove_file(names[i]);
    rmdir(g_dir);
}

int main(void) {
    test_valid();
    test_edge_shapes();
    test_bad_headers();
    test_checkpoints();
    CHECK_DONE();
}
