/* GGUF reader and writer: hand-encoded files (valid and each kind of damage),
 * the two reference models, and writer -> reader round trips. */
#include "gguf/gguf.h"
#include "quant/types.h"

#define GGUF_CORPUS_NO_MAIN
#include "../fuzz/make_gguf_corpus.c" /* the byte encoder and the table of valid / broken cases */

#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_tmpdir[64];

static void tmp_path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", g_tmpdir, name); }

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Opens bytes from an exactly-sized heap copy, so sanitizers see any over-read. */
static gguf_file *open_copy(const gb *b, void **copy, char *err, size_t err_size) {
    *copy = malloc(b->len ? b->len : 1);
    memcpy(*copy, b->p, b->len);
    return gguf_open_memory(*copy, b->len, err, err_size);
}

static bool str_eq(const char *s, size_t len, const char *want) { return len == strlen(want) && memcmp(s, want, len) == 0; }

/* ---- hand-encoded cases ---- */

static void test_corpus_cases(void) {
    gb b = {0};
    for (size_t i = 0; i < N_CASES; i++) {
        build_case(&b, i);
        char err[512] = "";
        void *copy;
        gguf_file *f = open_copy(&b, &copy, err, sizeof err);
        const corpus_case *c = &k_cases[i];
        if (c->expect) {
            CHECK_MSG(f == NULL, "case %zu (%s) opened but should fail with '%s'", i, c->seed ? c->seed : "-", c->expect);
            CHECK_MSG(strstr(err, c->expect) != NULL, "case %zu: error '%s' lacks '%s'", i, err, c->expect);
            CHECK_MSG(strchr(err, '\n') == NULL, "case %zu: error is not one line", i);
        } else {
            CHECK_MSG(f != NULL, "case %zu (%s) failed: %s", i, c->seed, err);
        }
        gguf_close(f);
        free(copy);
    }
    free(b.p);
}

static void test_truncated_everywhere(void) {
    /* Every proper prefix of a valid file must fail cleanly (and never over-read). */
    gb b = {0};
    layout l;
    base_opts o = {3, 0, 5};
    build_base(&b, &l, &o);
    int failures = 0;
    for (size_t n = 0; n < b.len; n++) {
        gb cut = {b.p, n, n};
        void *copy;
        char err[256] = "";
        gguf_file *f = open_copy(&cut, &copy, err, sizeof err);
        /* the last bytes are tensor padding: the file is whole once c's data ends */
        bool whole = n >= l.data_at + l.t_offset[2] + k_base_tensors[2].nbytes;
        if ((f != NULL) != whole || (!f && err[0] == '\0')) failures++;
        gguf_close(f);
        free(copy);
    }
    CHECK_MSG(failures == 0, "%d prefixes misjudged", failures);
    free(b.p);
}

static void test_base_values(void) {
    gb b = {0};
    layout l;
    base_opts o = {3, 0, 40};
    build_base(&b, &l, &o);
    void *copy;
    char err[256] = "";
    gguf_file *f = open_copy(&b, &copy, err, sizeof err);
    CHECK_MSG(f != NULL, "base file: %s", err);
    if (!f) return;
    CHECK(gguf_version(f) == 3);
    CHECK(gguf_alignment(f) == 32);
    CHECK(gguf_n_kv(f) == l.n_kv);
    CHECK(gguf_n_tensors(f) == 3);
    CHECK(gguf_data_offset(f) == l.data_at);
    CHECK(gguf_file_size(f) == b.len);
    CHECK(gguf_file_base(f) == copy);

    uint32_t u32 = 0;
    int64_t i64 = 0;
    float f32 = 0;
    bool bl = false;
    const char *s = NULL;
    size_t len = 0;
    CHECK(gguf_get_u32(f, "test.u8", &u32) && u32 == 200);
    CHECK(!gguf_get_u32(f, "test.i8", &u32));
    CHECK(gguf_get_i64(f, "test.i8", &i64) && i64 == -100);
    CHECK(gguf_get_u32(f, "test.u16", &u32) && u32 == 60000);
    CHECK(gguf_get_i64(f, "test.i16", &i64) && i64 == -30000);
    CHECK(gguf_get_u32(f, "test.u32", &u32) && u32 == 4000000000u);
    CHECK(gguf_get_i64(f, "test.u32", &i64) && i64 == 4000000000);
    CHECK(gguf_get_i64(f, "test.i32", &i64) && i64 == -2000000000);
    CHECK(!gguf_get_u32(f, "test.i32", &u32));
    CHECK(gguf_get_f32(f, "test.f32", &f32) && f32 == 0.5f);
    CHECK(gguf_get_f32(f, "test.u16", &f32) && f32 == 60000.0f);
    CHECK(!gguf_get_i64(f, "test.f32", &i64));
    CHECK(gguf_get_bool(f, "test.bool", &bl) && bl);
    CHECK(!gguf_get_bool(f, "test.u8", &bl));
    CHECK(!gguf_get_u32(f, "test.bool", &u32));
    CHECK(!gguf_get_u32(f, "test.u64", &u32));
    CHECK(gguf_get_i64(f, "test.u64", &i64) && i64 == (1ll << 40) + 1);
    CHECK(gguf_get_i64(f, "test.i64", &i64) && i64 == -(1ll << 40));
    CHECK(!gguf_get_f32(f, "test.f64", &f32)); /* 1e300 does not fit a float */
    CHECK(gguf_get_str(f, "general.architecture", &s, &len) && str_eq(s, len, "llama"));
    CHECK(gguf_get_str(f, "test.str", &s, &len) && str_eq(s, len, "tab\there \"quoted\"\x01"));
    CHECK(!gguf_get_str(f, "test.u32", &s, &len));
    CHECK(!gguf_get_u32(f, "general.architecture", &u32));
    CHECK(!gguf_get_u32(f, "missing.key", &u32));
    CHECK(gguf_find_key(f, "test.u") == -1);   /* a prefix is not a match */
    CHECK(gguf_find_key(f, "test.u88") == -1); /* nor an extension */
    CHECK(gguf_find_key(f, "test.U8") == -1);  /* exact bytes */
    CHECK(gguf_find_key(f, "test.u8") == 1);
    CHECK(strcmp(gguf_kv_key(f, 1), "test.u8") == 0);
    CHECK(gguf_kv_key(f, -1) == NULL && gguf_kv_key(f, l.n_kv) == NULL);
    CHECK(gguf_kv_type(f, 1) == GGUF_VT_UINT8 && gguf_kv_type(f, 99) == GGUF_VT_COUNT_);

    int64_t tok = gguf_find_key(f, "tokenizer.ggml.tokens");
    CHECK(tok == l.kv_tokens && gguf_kv_type(f, tok) == GGUF_VT_ARRAY);
    CHECK(gguf_arr_n(f, tok) == 40 && gguf_arr_type(f, tok) == GGUF_VT_STRING);
    CHECK(gguf_arr_get_str(f, tok, 1, &s, &len) && str_eq(s, len, "<s>"));
    CHECK(gguf_arr_get_str(f, tok, 39, &s, &len) && str_eq(s, len, "tok39"));
    CHECK(!gguf_arr_get_str(f, tok, 40, &s, &len) && !gguf_arr_get_str(f, tok, -1, &s, &len));
    CHECK(!gguf_arr_get_i64(f, tok, 0, &i64));
    int64_t sc = gguf_find_key(f, "tokenizer.ggml.scores");
    double d = 0;
    CHECK(gguf_arr_type(f, sc) == GGUF_VT_FLOAT32);
    CHECK(gguf_arr_get_f64(f, sc, 5, &d) && d == -5.0);
    CHECK(!gguf_arr_get_i64(f, sc, 5, &i64) && !gguf_arr_get_str(f, sc, 5, &s, &len));
    int64_t a16 = gguf_find_key(f, "test.arr_i16");
    CHECK(gguf_arr_get_i64(f, a16, 1, &i64) && i64 == -2);
    CHECK(gguf_arr_get_f64(f, a16, 2, &d) && d == 3.0);
    int64_t a64 = gguf_find_key(f, "test.arr_u64");
    CHECK(!gguf_arr_get_i64(f, a64, 0, &i64)); /* UINT64_MAX does not fit */
    CHECK(gguf_arr_get_f64(f, a64, 0, &d) && d == 18446744073709551615.0);
    CHECK(gguf_arr_get_i64(f, a64, 1, &i64) && i64 == 7);
    int64_t ab = gguf_find_key(f, "test.arr_bool");
    CHECK(gguf_arr_type(f, ab) == GGUF_VT_BOOL && gguf_arr_n(f, ab) == 2);
    int64_t ae = gguf_find_key(f, "test.arr_empty");
    CHECK(gguf_arr_n(f, ae) == 0 && !gguf_arr_get_i64(f, ae, 0, &i64));
    CHECK(gguf_arr_n(f, 1) == -1 && gguf_arr_type(f, 1) == GGUF_VT_COUNT_);

    for (int i = 0; i < 3; i++) {
        const gguf_tensor_info *t = gguf_tensor(f, i);
        CHECK(t != NULL && strcmp(t->name, k_base_tensors[i].name) == 0);
        if (!t) continue;
        CHECK(t->type == k_base_tensors[i].type && t->n_dims == k_base_tensors[i].n_dims);
        CHECK(memcmp(t->ne, k_base_tensors[i].ne, sizeof t->ne) == 0);
        CHECK(t->offset == l.t_offset[i] && t->nbytes == k_base_tensors[i].nbytes);
        CHECK((const uint8_t *)t->data == (const uint8_t *)copy + l.data_at + l.t_offset[i]);
        CHECK(gguf_find_tensor(f, t->name) == t);
        int bad = 0;
        for (uint64_t k = 0; k < t->nbytes; k++) {
            if (i == 0) {
                float v;
                memcpy(&v, (const uint8_t *)t->data + k / 4 * 4, 4);
                bad += v != base_a_value((int)(k / 4));
            } else {
                bad += ((const uint8_t *)t->data)[k] != base_byte(i, k);
            }
        }
        CHECK_MSG(bad == 0, "tensor %d: %d bytes differ", i, bad);
    }
    CHECK(gguf_tensor(f, 3) == NULL && gguf_tensor(f, -1) == NULL);
    CHECK(gguf_find_tensor(f, "d") == NULL && gguf_find_tensor(f, "") == NULL);

    char buf[256];
    gguf_kv_format(f, gguf_find_key(f, "test.str"), buf, sizeof buf);
    CHECK_MSG(strcmp(buf, "\"tab\\there \\\"quoted\\\"\\x01\"") == 0, "got %s", buf);
    gguf_kv_format(f, gguf_find_key(f, "test.i8"), buf, sizeof buf);
    CHECK(strcmp(buf, "-100") == 0);
    gguf_kv_format(f, gguf_find_key(f, "test.f32"), buf, sizeof buf);
    CHECK(strcmp(buf, "0.5") == 0);
    gguf_kv_format(f, gguf_find_key(f, "test.f64"), buf, sizeof buf);
    CHECK(strcmp(buf, "1e+300") == 0);
    gguf_kv_format(f, gguf_find_key(f, "test.bool"), buf, sizeof buf);
    CHECK(strcmp(buf, "true") == 0);
    gguf_kv_format(f, gguf_find_key(f, "test.u64"), buf, sizeof buf);
    CHECK(strcmp(buf, "1099511627777") == 0);
    gguf_kv_format(f, tok, buf, sizeof buf);
    CHECK_MSG(strcmp(buf, "[string x 40] \"<unk>\", \"<s>\", \"</s>\", \"tok3\", ...") == 0, "got %s", buf);
    gguf_kv_format(f, a16, buf, sizeof buf);
    CHECK_MSG(strcmp(buf, "[i16 x 3] 1, -2, 3") == 0, "got %s", buf);
    gguf_kv_format(f, ab, buf, sizeof buf);
    CHECK_MSG(strcmp(buf, "[bool x 2] false, true") == 0, "got %s", buf);
    gguf_kv_format(f, ae, buf, sizeof buf);
    CHECK_MSG(strcmp(buf, "[u32 x 0]") == 0, "got %s", buf);
    gguf_kv_format(f, tok, buf, 10); /* cut to the buffer, still terminated */
    CHECK(strlen(buf) == 9 && memcmp(buf, "[string x", 9) == 0);
    gguf_kv_format(f, 999, buf, sizeof buf);
    CHECK(buf[0] == '\0');
    CHECK(strcmp(gguf_vtype_name(GGUF_VT_FLOAT64), "f64") == 0 && strcmp(gguf_vtype_name(GGUF_VT_STRING), "string") == 0);

    gguf_close(f);
    free(copy);
    free(b.p);
}

static void test_other_layouts(void) {
    gb b = {0};
    layout l;
    char err[256] = "";
    void *copy;
    base_opts o = {2, 64, 300};
    build_base(&b, &l, &o);
    gguf_file *f = open_copy(&b, &copy, err, sizeof err);
    CHECK_MSG(f != NULL, "v2: %s", err);
    if (f) {
        CHECK(gguf_version(f) == 2 && gguf_alignment(f) == 64);
        CHECK(gguf_data_offset(f) % 64 == 0 && gguf_data_offset(f) == l.data_at);
        CHECK(gguf_tensor(f, 2)->offset == 192);
        CHECK(gguf_arr_n(f, gguf_find_key(f, "tokenizer.ggml.tokens")) == 300);
        gguf_close(f);
    }
    free(copy);

    /* A known type this build cannot compute with still opens: the loader reports it. */
    o = (base_opts){3, 0, 4};
    build_base(&b, &l, &o);
    m_type_unsupported(&b, &l);
    f = open_copy(&b, &copy, err, sizeof err);
    CHECK_MSG(f != NULL, "unsupported type: %s", err);
    if (f) {
        CHECK(gguf_tensor(f, 0)->type == WG_TYPE_I32 && !wg_type_supported(WG_TYPE_I32));
        gguf_close(f);
    }
    free(copy);

    /* Header only: no metadata, no tensors, no padding. */
    b.len = 0;
    gb_bytes(&b, "GGUF", 4);
    gb_u32(&b, 3);
    gb_u64(&b, 0);
    gb_u64(&b, 0);
    f = open_copy(&b, &copy, err, sizeof err);
    CHECK_MSG(f != NULL && gguf_n_kv(f) == 0 && gguf_n_tensors(f) == 0, "empty gguf: %s", err);
    CHECK(gguf_find_key(f, "x") == -1 && gguf_find_tensor(f, "x") == NULL);
    gguf_close(f);
    free(copy);
    free(b.p);

    CHECK(gguf_open_memory(NULL, 0, err, sizeof err) == NULL && strstr(err, "too small"));
    gguf_close(NULL);
}

/* ---- files on disk ---- */

static void test_open_errors(void) {
    char path[256], err[512];
    tmp_path(path, sizeof path, "missing.gguf");
    CHECK(gguf_open(path, err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "cannot open") && strstr(err, "No such file"), "got %s", err);
    CHECK(gguf_open(g_tmpdir, err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "is a directory") != NULL, "got %s", err);
    tmp_path(path, sizeof path, "empty.gguf");
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (fp) fclose(fp);
    CHECK(gguf_open(path, err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "file too small for a GGUF header (0 bytes") != NULL, "got %s", err);
    CHECK(gguf_open(path, NULL, 0) == NULL); /* no error buffer is fine */
    unlink(path);
    /* A FIFO is refused at once: opening it must not wait for a writer (the alarm ends the
     * test if it does). */
    tmp_path(path, sizeof path, "fifo.gguf");
    CHECK(mkfifo(path, 0600) == 0);
    alarm(20);
    CHECK(gguf_open(path, err, sizeof err) == NULL);
    alarm(0);
    CHECK_MSG(strstr(err, "not a regular file") != NULL, "got %s", err);
    unlink(path);

    /* A mapped file goes through the same checks as memory. */
    gb b = {0};
    layout l;
    base_opts o = {3, 0, 3};
    build_base(&b, &l, &o);
    m_overlap(&b, &l);
    tmp_path(path, sizeof path, "overlap.gguf");
    fp = fopen(path, "wb");
    CHECK(fp && fwrite(b.p, 1, b.len, fp) == b.len);
    if (fp) fclose(fp);
    CHECK(gguf_open(path, err, sizeof err) == NULL && strstr(err, "overlapping tensors"));
    unlink(path);
    free(b.p);
}

static void check_model(const char *file, uint32_t n_layers, uint32_t n_heads, int64_t n_tensors, uint64_t data_offset,
                        float first_embd) {
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/models/%s", check_shared_dir(), file);
    gguf_file *f = gguf_open(path, err, sizeof err);
    CHECK_MSG(f != NULL, "%s: %s", path, err);
    if (!f) return;
    uint32_t u = 0;
    const char *s;
    size_t len;
    float eps = 0;
    CHECK(gguf_version(f) == 3 && gguf_alignment(f) == 32);
    CHECK(gguf_n_kv(f) == 25 && gguf_n_tensors(f) == n_tensors);
    CHECK(gguf_get_str(f, "general.architecture", &s, &len) && str_eq(s, len, "llama"));
    CHECK(gguf_get_u32(f, "llama.block_count", &u) && u == n_layers);
    CHECK(gguf_get_u32(f, "llama.attention.head_count", &u) && u == n_heads);
    CHECK(gguf_get_u32(f, "llama.attention.head_count_kv", &u) && u == 4);
    CHECK(gguf_get_u32(f, "llama.embedding_length", &u) && u == 64);
    CHECK(gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps) && eps == 1e-5f);
    int64_t tok = gguf_find_key(f, "tokenizer.ggml.tokens");
    CHECK(gguf_arr_n(f, tok) == 512 && gguf_arr_type(f, tok) == GGUF_VT_STRING);
    CHECK(gguf_arr_get_str(f, tok, 1, &s, &len) && str_eq(s, len, "<s>"));
    char buf[128];
    gguf_kv_format(f, tok, buf, sizeof buf);
    CHECK_MSG(strncmp(buf, "[string x 512] \"<unk>\", \"<s>\", \"</s>\"", 37) == 0, "got %s", buf);
    int64_t tt = gguf_find_key(f, "tokenizer.ggml.token_type");
    int64_t v = 0;
    CHECK(gguf_arr_type(f, tt) == GGUF_VT_INT32 && gguf_arr_get_i64(f, tt, 0, &v) && v == 2);

    const gguf_tensor_info *t = gguf_find_tensor(f, "token_embd.weight");
    CHECK(t != NULL);
    if (t) {
        CHECK(t->type == 0 && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 512 && t->nbytes == 64 * 512 * 4);
        CHECK(gguf_data_offset(f) + t->offset == data_offset); /* as gguf-py reports it */
        float mine, theirs = 0;
        memcpy(&mine, t->data, 4);
        FILE *fp = fopen(path, "rb");
        CHECK(fp && fseek(fp, (long)(gguf_data_offset(f) + t->offset), SEEK_SET) == 0 && fread(&theirs, 4, 1, fp) == 1);
        if (fp) fclose(fp);
        CHECK(mine == theirs);
        CHECK_NEAR(mine, first_embd, 1e-7);
    }
    uint64_t total = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) total += gguf_tensor(f, i)->nbytes;
    CHECK(total <= gguf_file_size(f) - gguf_data_offset(f));
    gguf_close(f);
}

/* ---- writer ---- */

static void fill(uint8_t *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((i * 131 + seed * 7 + (i >> 8)) & 0xff);
}

typedef struct wt {
    const char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
} wt;

static const wt k_wtensors[] = {
    {"token_embd.weight", WG_TYPE_F32, 2, {8, 3, 1, 1}},
    {"blk.0.attn_q.weight", WG_TYPE_Q4_0, 2, {64, 3, 1, 1}},
    {"h", WG_TYPE_F16, 1, {5, 1, 1, 1}},
    {"k4", WG_TYPE_Q8_0, 4, {32, 2, 2, 1}},
    {"bytes", WG_TYPE_I8, 1, {7, 1, 1, 1}},
};
#define N_WT (sizeof k_wtensors / sizeof k_wtensors[0])

static size_t wt_bytes(const wt *t) { return wg_type_row_bytes(t->type, t->ne[0]) * (size_t)(t->ne[1] * t->ne[2] * t->ne[3]); }

static bool write_roundtrip_file(const char *path, uint32_t alignment) {
    gguf_writer *w = gguf_writer_create();
    bool ok = gguf_writer_set_str(w, "general.architecture", "llama") && gguf_writer_set_u32(w, "test.u32", 7) &&
              gguf_writer_set_i32(w, "test.i32", -5) && gguf_writer_set_u64(w, "test.u64", 1ull << 50) &&
              gguf_writer_set_f32(w, "test.f32", 1.5f) && gguf_writer_set_bool(w, "test.bool", false) &&
              gguf_writer_set_str(w, "test.str", "h\xc3\xa9llo\n") && gguf_writer_set_u32(w, "test.u32", 8); /* last wins */
    if (alignment) ok = ok && gguf_writer_set_u32(w, "general.alignment", alignment);
    const uint8_t u8s[] = {1, 255};
    const int8_t i8s[] = {-1, 127};
    const uint16_t u16s[] = {65535, 2};
    const int16_t i16s[] = {-32768, 3};
    const uint32_t u32s[] = {4294967295u, 4};
    const int32_t i32s[] = {-7, 5};
    const float f32s[] = {0.25f, -6.5f};
    const uint8_t bools[] = {1, 0};
    const uint64_t u64s[] = {1ull << 63, 6};
    const int64_t i64s[] = {INT64_MIN, 7};
    const double f64s[] = {0.1, -8};
    ok = ok && gguf_writer_set_arr(w, "arr.u8", GGUF_VT_UINT8, u8s, 2) && gguf_writer_set_arr(w, "arr.i8", GGUF_VT_INT8, i8s, 2) &&
         gguf_writer_set_arr(w, "arr.u16", GGUF_VT_UINT16, u16s, 2) && gguf_writer_set_arr(w, "arr.i16", GGUF_VT_INT16, i16s, 2) &&
         gguf_writer_set_arr(w, "arr.u32", GGUF_VT_UINT32, u32s, 2) && gguf_writer_set_arr(w, "arr.i32", GGUF_VT_INT32, i32s, 2) &&
         gguf_writer_set_arr(w, "arr.f32", GGUF_VT_FLOAT32, f32s, 2) && gguf_writer_set_arr(w, "arr.bool", GGUF_VT_BOOL, bools, 2) &&
         gguf_writer_set_arr(w, "arr.u64", GGUF_VT_UINT64, u64s, 2) && gguf_writer_set_arr(w, "arr.i64", GGUF_VT_INT64, i64s, 2) &&
         gguf_writer_set_arr(w, "arr.f64", GGUF_VT_FLOAT64, f64s, 2) && gguf_writer_set_arr(w, "arr.empty", GGUF_VT_UINT32, NULL, 0);
    const char *strs[] = {"<unk>", "", "tab\there", "\xe2\x96\x81the", "last"};
    ok = ok && gguf_writer_set_arr_str(w, "arr.str", strs, 5);
    for (size_t i = 0; i < N_WT; i++)
        ok = ok && gguf_writer_add_tensor(w, k_wtensors[i].name, k_wtensors[i].type, k_wtensors[i].n_dims, k_wtensors[i].ne);
    ok = ok && gguf_writer_begin(w, path);
    for (size_t i = 0; i < N_WT && ok; i++) {
        size_t n = wt_bytes(&k_wtensors[i]);
        uint8_t *data = malloc(n);
        fill(data, n, (uint32_t)i);
        ok = gguf_writer_write_tensor(w, data, n);
        free(data);
    }
    ok = ok && gguf_writer_finish(w);
    CHECK_MSG(ok, "writer: %s", gguf_writer_error(w));
    CHECK(strcmp(gguf_writer_error(w), "") == 0);
    gguf_writer_free(w);
    return ok;
}

static void check_roundtrip_file(const char *path, uint32_t alignment) {
    char err[512] = "";
    gguf_file *f = gguf_open(path, err, sizeof err);
    CHECK_MSG(f != NULL, "round trip: %s", err);
    if (!f) return;
    CHECK(gguf_version(f) == 3 && gguf_alignment(f) == alignment);
    CHECK(gguf_n_kv(f) == 20 + (alignment != 32));
    CHECK(gguf_data_offset(f) % alignment == 0 && gguf_file_size(f) % alignment == 0);
    uint32_t u = 0;
    int64_t v = 0;
    float x = 0;
    bool b = true;
    const char *s;
    size_t len;
    double d;
    CHECK(gguf_get_u32(f, "test.u32", &u) && u == 8);
    CHECK(gguf_kv_type(f, gguf_find_key(f, "test.u32")) == GGUF_VT_UINT32);
    CHECK(gguf_get_i64(f, "test.i32", &v) && v == -5 && gguf_kv_type(f, gguf_find_key(f, "test.i32")) == GGUF_VT_INT32);
    CHECK(gguf_get_i64(f, "test.u64", &v) && v == 1ll << 50 && gguf_kv_type(f, gguf_find_key(f, "test.u64")) == GGUF_VT_UINT64);
    CHECK(gguf_get_f32(f, "test.f32", &x) && x == 1.5f);
    CHECK(gguf_get_bool(f, "test.bool", &b) && !b);
    CHECK(gguf_get_str(f, "test.str", &s, &len) && str_eq(s, len, "h\xc3\xa9llo\n"));
    static const struct {
        const char *key;
        gguf_vtype type;
        double v0, v1;
    } arrs[] = {
        {"arr.u8", GGUF_VT_UINT8, 1, 255},        {"arr.i8", GGUF_VT_INT8, -1, 127},
        {"arr.u16", GGUF_VT_UINT16, 65535, 2},    {"arr.i16", GGUF_VT_INT16, -32768, 3},
        {"arr.u32", GGUF_VT_UINT32, 4294967295.0, 4}, {"arr.i32", GGUF_VT_INT32, -7, 5},
        {"arr.f32", GGUF_VT_FLOAT32, 0.25, -6.5}, {"arr.u64", GGUF_VT_UINT64, 9223372036854775808.0, 6},
        {"arr.i64", GGUF_VT_INT64, -9223372036854775808.0, 7}, {"arr.f64", GGUF_VT_FLOAT64, 0.1, -8},
    };
    for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) {
        int64_t k = gguf_find_key(f, arrs[i].key);
        CHECK_MSG(gguf_arr_type(f, k) == arrs[i].type && gguf_arr_n(f, k) == 2, "%s", arrs[i].key);
        CHECK_MSG(gguf_arr_get_f64(f, k, 0, &d) && d == arrs[i].v0, "%s[0]", arrs[i].key);
        CHECK_MSG(gguf_arr_get_f64(f, k, 1, &d) && d == arrs[i].v1, "%s[1]", arrs[i].key);
    }
    CHECK(gguf_arr_get_i64(f, gguf_find_key(f, "arr.i64"), 0, &v) && v == INT64_MIN);
    int64_t kb = gguf_find_key(f, "arr.bool");
    CHECK(gguf_arr_type(f, kb) == GGUF_VT_BOOL && gguf_arr_n(f, kb) == 2);
    CHECK(gguf_arr_n(f, gguf_find_key(f, "arr.empty")) == 0);
    int64_t ks = gguf_find_key(f, "arr.str");
    const char *want[] = {"<unk>", "", "tab\there", "\xe2\x96\x81the", "last"};
    CHECK(gguf_arr_n(f, ks) == 5 && gguf_arr_type(f, ks) == GGUF_VT_STRING);
    for (int i = 0; i < 5; i++) CHECK_MSG(gguf_arr_get_str(f, ks, i, &s, &len) && str_eq(s, len, want[i]), "arr.str[%d]", i);

    CHECK(gguf_n_tensors(f) == (int64_t)N_WT);
    for (size_t i = 0; i < N_WT; i++) {
        const gguf_tensor_info *t = gguf_tensor(f, (int64_t)i);
        const wt *e = &k_wtensors[i];
        CHECK(strcmp(t->name, e->name) == 0 && t->type == e->type && t->n_dims == e->n_dims);
        CHECK(memcmp(t->ne, e->ne, sizeof t->ne) == 0);
        CHECK_MSG(t->nbytes == wt_bytes(e), "%s nbytes %llu", e->name, (unsigned long long)t->nbytes);
        CHECK(t->offset % alignment == 0);
        uint8_t *data = malloc(t->nbytes);
        fill(data, t->nbytes, (uint32_t)i);
        CHECK_MSG(memcmp(data, t->data, t->nbytes) == 0, "%s data", e->name);
        free(data);
    }
    CHECK(gguf_tensor(f, 1)->nbytes == 3 * 36); /* q4_0: 2 blocks of 18 bytes per 64-wide row */
    gguf_close(f);
}

static void test_writer_roundtrip(void) {
    char path[256], tmp[300];
    tmp_path(path, sizeof path, "roundtrip.gguf");
    if (write_roundtrip_file(path, 0)) check_roundtrip_file(path, 32);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(!file_exists(tmp)); /* renamed away */
    /* Writing over an existing file replaces it. */
    if (write_roundtrip_file(path, 64)) check_roundtrip_file(path, 64);
    unlink(path);
}

static void test_writer_vocab(void) {
    /* A Llama-sized vocabulary: the string index must make every lookup direct. */
    enum { N = 32000 };
    char path[256];
    tmp_path(path, sizeof path, "vocab.gguf");
    char(*words)[16] = malloc(sizeof(*words) * N);
    const char **strs = malloc(sizeof(*strs) * N);
    for (int i = 0; i < N; i++) {
        snprintf(words[i], sizeof words[i], "w%d", i * 7);
        strs[i] = words[i];
    }
    gguf_writer *w = gguf_writer_create();
    bool ok = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, N) && gguf_writer_begin(w, path) && gguf_writer_finish(w);
    CHECK_MSG(ok, "%s", gguf_writer_error(w));
    gguf_writer_free(w);
    char err[256] = "";
    gguf_file *f = gguf_open(path, err, sizeof err);
    CHECK_MSG(f != NULL, "%s", err);
    if (f) {
        int64_t k = gguf_find_key(f, "tokenizer.ggml.tokens");
        CHECK(gguf_arr_n(f, k) == N && gguf_n_tensors(f) == 0);
        int bad = 0;
        for (int i = N - 1; i >= 0; i -= 1) {
            const char *s;
            size_t len;
            bad += !(gguf_arr_get_str(f, k, i, &s, &len) && str_eq(s, len, words[i]));
        }
        CHECK(bad == 0);
        gguf_close(f);
    }
    unlink(path);
    free(words);
    free((void *)strs);
}

static void test_writer_errors(void) {
    char path[256], tmp[300], err[256];
    tmp_path(path, sizeof path, "bad.gguf");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    const int64_t ne33[] = {33, 2}, ne64[] = {64, 2}, ne0[] = {0};

    gguf_writer *w = gguf_writer_create();
    CHECK(!gguf_writer_add_tensor(w, "q", WG_TYPE_Q4_0, 2, ne33));
    CHECK(strstr(gguf_writer_error(w), "block size 32") != NULL);
    CHECK(!gguf_writer_set_u32(w, "x", 1)); /* sticky */
    CHECK(strstr(gguf_writer_error(w), "block size 32") != NULL);
    gguf_writer_free(w);

    w = gguf_writer_create();
    CHECK(!gguf_writer_add_tensor(w, "q", 4, 2, ne64) && strstr(gguf_writer_error(w), "unknown tensor type id 4"));
    gguf_writer_free(w);
    w = gguf_writer_create();
    CHECK(!gguf_writer_add_tensor(w, "q", 0, 1, ne0) && strstr(gguf_writer_error(w), "dimension 0 is 0"));
    gguf_writer_free(w);
    w = gguf_writer_create();
    CHECK(!gguf_writer_add_tensor(w, "q", 0, 5, ne64) && strstr(gguf_writer_error(w), "5 dimensions"));
    gguf_writer_free(w);
    w = gguf_writer_create();
    CHECK(gguf_writer_add_tensor(w, "q", 0, 2, ne64) && !gguf_writer_add_tensor(w, "q", 0, 2, ne64));
    CHECK(strstr(gguf_writer_error(w), "duplicate tensor name 'q'") != NULL);
    gguf_writer_free(w);
    w = gguf_writer_create();
    CHECK(!gguf_writer_set_arr(w, "a", GGUF_VT_STRING, "x", 1) && strstr(gguf_writer_error(w), "not a fixed-size type"));
    gguf_writer_free(w);
    w = gguf_writer_create();
    CHECK(gguf_writer_set_u32(w, "general.alignment", 48) && !gguf_writer_begin(w, path));
    CHECK(strstr(gguf_writer_error(w), "power of two") != NULL && !file_exists(tmp));
    gguf_writer_free(w);

    /* Wrong data size: nothing reaches the target, the temporary file is removed. */
    w = gguf_writer_create();
    CHECK(gguf_writer_add_tensor(w, "t", WG_TYPE_F32, 2, ne64) && gguf_writer_begin(w, path));
    CHECK(file_exists(tmp));
    CHECK(!gguf_writer_set_u32(w, "late", 1) && strstr(gguf_writer_error(w), "after gguf_writer_begin"));
    CHECK(!gguf_writer_write_tensor(w, err, 10));
    CHECK(!gguf_writer_finish(w));
    CHECK(!file_exists(tmp) && !file_exists(path));
    gguf_writer_free(w);

    w = gguf_writer_create();
    float data[128] = {0};
    CHECK(gguf_writer_add_tensor(w, "t", WG_TYPE_F32, 2, ne64) && gguf_writer_begin(w, path));
    CHECK(!gguf_writer_finish(w) && strstr(gguf_writer_error(w), "only 0 of 1 tensors"));
    gguf_writer_free(w);
    CHECK(!file_exists(tmp) && !file_exists(path));

    /* An abandoned writer leaves nothing behind. */
    w = gguf_writer_create();
    CHECK(gguf_writer_add_tensor(w, "t", WG_TYPE_F32, 2, ne64) && gguf_writer_begin(w, path) && gguf_writer_write_tensor(w, data, sizeof data));
    CHECK(!gguf_writer_write_tensor(w, data, sizeof data) && strstr(gguf_writer_error(w), "more tensors"));
    gguf_writer_free(w);
    w = gguf_writer_create();
    CHECK(gguf_writer_begin(w, path) && file_exists(tmp));
    gguf_writer_free(w);
    CHECK(!file_exists(tmp) && !file_exists(path));

    char bad_dir[300];
    tmp_path(bad_dir, sizeof bad_dir, "no/such/dir.gguf");
    w = gguf_writer_create();
    CHECK(!gguf_writer_begin(w, bad_dir) && strstr(gguf_writer_error(w), "cannot create"));
    gguf_writer_free(w);
    CHECK(!gguf_writer_set_u32(NULL, "x", 1) && gguf_writer_error(NULL) != NULL);
}

static void test_long_string_format(void) {
    char path[256], long_str[200], err[256] = "", buf[256];
    tmp_path(path, sizeof path, "long.gguf");
    for (int i = 0; i < 150; i++) long_str[i] = (char)('a' + i % 26);
    long_str[150] = '\0';
    gguf_writer *w = gguf_writer_create();
    CHECK(gguf_writer_set_str(w, "long", long_str) && gguf_writer_begin(w, path) && gguf_writer_finish(w));
    gguf_writer_free(w);
    gguf_file *f = gguf_open(path, err, sizeof err);
    CHECK_MSG(f != NULL, "%s", err);
    if (f) {
        gguf_kv_format(f, 0, buf, sizeof buf);
        CHECK_MSG(strlen(buf) == 1 + 60 + 1 + 3 && buf[0] == '"' && strncmp(buf + 1, long_str, 60) == 0 && strcmp(buf + 61, "\"...") == 0,
                  "got %s", buf);
        gguf_close(f);
    }
    unlink(path);
}

int main(void) {
    snprintf(g_tmpdir, sizeof g_tmpdir, "test_gguf_XXXXXX");
    if (!mkdtemp(g_tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_corpus_cases();
    test_truncated_everywhere();
    test_base_values();
    test_other_layouts();
    test_open_errors();
    check_model("stories260K-f32.gguf", 5, 8, 48, 14400, -0.29474878f);
    check_model("aidreams260K-f32.gguf", 4, 4, 39, 13984, 0.108048834f);
    test_writer_roundtrip();
    test_writer_vocab();
    test_writer_errors();
    test_long_string_format();
    rmdir(g_tmpdir);
    CHECK_DONE();
}
