/* gguf_open_private: the same outcome as gguf_open for every corpus case and for
 * truncations of a file whose metadata spans several read steps; data read on demand;
 * and no signal, only errors, once the file is truncated under it. */
#include "gguf/gguf.h"
#include "quant/types.h"

#define GGUF_CORPUS_NO_MAIN
#include "../fuzz/make_gguf_corpus.c" /* the byte encoder and the table of valid / broken cases */

#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_tmpdir[64];

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(p, 1, n, f) == n);
    fclose(f);
}

/* Both readers agree: both fail with the same message, or both open. */
static void check_same_outcome(const char *path, const char *what) {
    char e1[512] = "", e2[512] = "";
    gguf_file *a = gguf_open(path, e1, sizeof e1);
    gguf_file *b = gguf_open_private(path, e2, sizeof e2);
    CHECK_MSG((a == NULL) == (b == NULL), "%s: mapped %s, private %s", what, a ? "opened" : e1, b ? "opened" : e2);
    if (!a && !b) CHECK_MSG(strcmp(e1, e2) == 0, "%s: '%s' vs '%s'", what, e1, e2);
    if (a && b) {
        CHECK(gguf_n_kv(a) == gguf_n_kv(b) && gguf_n_tensors(a) == gguf_n_tensors(b));
        CHECK(gguf_data_offset(a) == gguf_data_offset(b));
        CHECK(gguf_is_private(b) && !gguf_is_private(a));
    }
    gguf_close(a);
    gguf_close(b);
}

static void test_corpus_cases(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/case.gguf", g_tmpdir);
    gb b = {0};
    for (size_t i = 0; i < N_CASES; i++) {
        build_case(&b, i);
        write_file(path, b.p, b.len);
        char what[64];
        snprintf(what, sizeof what, "corpus case %zu", i);
        check_same_outcome(path, what);
    }
    free(b.p);
    unlink(path);
}

/* A file whose metadata (a vocabulary of 200,000 strings, about 4 MB) takes several
 * read steps: it and its truncations read as gguf_open reads them. */
static void test_large_metadata(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/big.gguf", g_tmpdir);
    gb b = {0};
    layout l;
    base_opts o = {3, 0, 200000};
    build_base(&b, &l, &o);
    CHECK(l.data_at > (4u << 20) / 2);
    write_file(path, b.p, b.len);
    check_same_outcome(path, "large file");

    char err[512] = "";
    gguf_file *m = gguf_open(path, err, sizeof err);
    gguf_file *f = gguf_open_private(path, err, sizeof err);
    CHECK_MSG(m && f, "%s", err);
    if (m && f) {
        for (int64_t i = 0; i < gguf_n_kv(m); i++) {
            char x[256], y[256];
            gguf_kv_format(m, i, x, sizeof x);
            gguf_kv_format(f, i, y, sizeof y);
            CHECK_MSG(strcmp(x, y) == 0, "kv %lld: '%s' vs '%s'", (long long)i, x, y);
        }
        int64_t k = gguf_find_key(f, "tokenizer.ggml.tokens");
        const char *s1, *s2;
        size_t n1, n2;
        CHECK(gguf_arr_get_str(m, k, 199999, &s1, &n1) && gguf_arr_get_str(f, k, 199999, &s2, &n2));
        CHECK(n1 == n2 && memcmp(s1, s2, n1) == 0 && n2 == strlen("tok199999"));
        for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
            const gguf_tensor_info *tm = gguf_tensor(m, i), *tf = gguf_tensor(f, i);
            CHECK_MSG(gguf_tensor_load(f, tf, err, sizeof err), "%s", err);
            CHECK(tm->nbytes == tf->nbytes && memcmp(tm->data, tf->data, tf->nbytes) == 0);
        }
        CHECK(gguf_detach(f, err, sizeof err));
    }
    gguf_close(m);
    gguf_close(f);

    /* Cuts inside the metadata, past the first read step. */
    for (size_t n = (1u << 20) - 5; n < l.data_at; n += 700001) {
        write_file(path, b.p, n);
        char what[64];
        snprintf(what, sizeof what, "large file cut at %zu", n);
        check_same_outcome(path, what);
    }
    /* A string length pointing far past the end of a large file, at its start. */
    memcpy(b.p + l.kv_value_at[l.kv_arch], &(uint64_t){(uint64_t)b.len - 100}, 8);
    write_file(path, b.p, b.len);
    check_same_outcome(path, "huge string length");
    free(b.p);
    unlink(path);
}

/* A file truncated after open: metadata and loaded tensors stay readable; loading another
 * tensor and detaching report it, with no signal. */
static void test_truncated_after_open(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/weights.gguf", g_tmpdir);
    enum { NE0 = 4096, NE1 = 8 };
    float *w = malloc(sizeof(float) * NE0 * NE1);
    for (int i = 0; i < NE0 * NE1; i++) w[i] = (float)i * 0.5f;
    gguf_writer *wr = gguf_writer_create();
    const int64_t ne[2] = {NE0, NE1};
    CHECK(gguf_writer_set_str(wr, "general.name", "private") && gguf_writer_add_tensor(wr, "w1", WG_TYPE_F32, 2, ne) &&
          gguf_writer_add_tensor(wr, "w2", WG_TYPE_F32, 2, ne) && gguf_writer_begin(wr, path) &&
          gguf_writer_write_tensor(wr, w, sizeof(float) * NE0 * NE1) &&
          gguf_writer_write_tensor(wr, w, sizeof(float) * NE0 * NE1) && gguf_writer_finish(wr));
    gguf_writer_free(wr);

    char err[256] = "";
    gguf_file *f = gguf_open_private(path, err, sizeof err);
    CHECK_MSG(f != NULL, "%s", err);
    if (!f) {
        free(w);
        return;
    }
    const gguf_tensor_info *t1 = gguf_find_tensor(f, "w1"), *t2 = gguf_find_tensor(f, "w2");
    CHECK(gguf_tensor_load(f, t1, err, sizeof err) && memcmp(t1->data, w, t1->nbytes) == 0);
    /* Given back and read again. */
    gguf_tensor_unload(f, t1);
    CHECK(gguf_tensor_load(f, t1, err, sizeof err) && memcmp(t1->data, w, t1->nbytes) == 0);

    CHECK(truncate(path, 0) == 0);
    const char *name;
    size_t len;
    CHECK(gguf_get_str(f, "general.name", &name, &len) && len == 7 && memcmp(name, "private", 7) == 0);
    CHECK(memcmp(t1->data, w, t1->nbytes) == 0);
    CHECK(!gguf_tensor_load(f, t2, err, sizeof err) && strstr(err, "shorter") != NULL);
    CHECK(!gguf_detach(f, err, sizeof err) && strstr(err, "changed") != NULL);
    CHECK(memcmp(t1->data, w, t1->nbytes) == 0);
    CHECK(!gguf_tensor_load(f, t2, err, sizeof err) && strstr(err, "closed") != NULL);
    gguf_close(f);
    unlink(path);
    free(w);
}

int main(void) {
    snprintf(g_tmpdir, sizeof g_tmpdir, "test_gguf_private_XXXXXX");
    if (!mkdtemp(g_tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_corpus_cases();
    test_large_metadata();
    test_truncated_after_open();
    rmdir(g_tmpdir);
    CHECK_DONE();
}
