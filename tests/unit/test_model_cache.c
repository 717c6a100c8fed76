/* Shared-memory model cache: XXH64 against the reference implementation's values, then the
 * cache's life cycle (fresh copy, reuse, corrupted / truncated / partial / stale entries rebuilt,
 * hard links on one filesystem, one-line errors). */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "server/model_cache.h"

#define SRC_SIZE (9 * 1024 * 1024 + 123) /* several copy chunks plus a tail */

static void check_xxh64(void) {
    /* Values from the reference xxHash library (seed 0 and seed 0x9E3779B1). */
    CHECK(wg_xxh64("", 0, 0) == 0xef46db3751d8e999ULL);
    CHECK(wg_xxh64("a", 1, 0) == 0xd24ec4f1a98c6e5bULL);
    CHECK(wg_xxh64("abc", 3, 0) == 0x44bc2cf5ad770999ULL);
    CHECK(wg_xxh64("", 0, 0x9E3779B1) == 0xac75fda2929b17efULL);
    CHECK(wg_xxh64("abc", 3, 0x9E3779B1) == 0x1318df30094a85fdULL);
    const char *s37 = "0123456789abcdef0123456789abcdef01234";
    CHECK(wg_xxh64(s37, 37, 0) == 0x3f889232c2743804ULL);
    CHECK(wg_xxh64(s37, 37, 0x9E3779B1) == 0x636abd6706fa692bULL);
    uint8_t big[773];
    for (int i = 0; i < 768; i++) big[i] = (uint8_t)(i & 255);
    memcpy(big + 768, "xyz12", 5);
    CHECK(wg_xxh64(big, sizeof big, 0) == 0x9b7d50c047818b1bULL);
    CHECK(wg_xxh64(big, sizeof big, 0x9E3779B1) == 0x83fdf74c4c9187afULL);
    /* Streaming in uneven pieces gives the one-shot value. */
    wg_xxh64_state st;
    wg_xxh64_init(&st, 0);
    size_t pieces[] = {1, 2, 30, 31, 33, 64, 5, 607};
    size_t off = 0;
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        wg_xxh64_update(&st, big + off, pieces[i]);
        off += pieces[i];
    }
    CHECK(off == sizeof big);
    CHECK(wg_xxh64_digest(&st) == 0x9b7d50c047818b1bULL);
}

static uint8_t *make_bytes(size_t n, uint32_t seed) {
    uint8_t *b = malloc(n);
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        b[i] = (uint8_t)x;
    }
    return b;
}

static void write_file(const char *path, const uint8_t *b, size_t n, time_t mtime) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n);
    if (f) fclose(f);
    struct timespec ts[2] = {{.tv_sec = mtime}, {.tv_sec = mtime}};
    CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
}

static int file_equals(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint8_t *got = malloc(n + 1);
    size_t r = fread(got, 1, n + 1, f);
    fclose(f);
    int ok = r == n && memcmp(got, b, n) == 0;
    free(got);
    return ok;
}

static void corrupt_byte(const char *path, long off) {
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

/* Resolves without hard links (source and cache share a filesystem here); returns the action. */
static int resolve_copy(const char *dir, const char *src, char *out, size_t out_size) {
    wg_model_cache_options o = {.allow_hardlink = 0};
    wg_model_cache_action a = (wg_model_cache_action)-1;
    char err[512] = "";
    int rc = wg_model_cache_resolve_opts(dir, src, &o, &a, out, out_size, err, sizeof err);
    CHECK_MSG(rc == 0, "resolve failed: %s", err);
    return rc == 0 ? (int)a : -1;
}

int main(void) {
    check_xxh64();

    char root[] = "./model-cache-test-XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    char src[512], dir[512], out[1024], out2[1024], meta[1100], partial[1100];
    snprintf(src, sizeof src, "%s/model.gguf", root);
    snprintf(dir, sizeof dir, "%s/cache", root);
    uint8_t *a = make_bytes(SRC_SIZE, 7), *b = make_bytes(SRC_SIZE, 8);
    write_file(src, a, SRC_SIZE, 1700000000);

    /* fresh copy */
    CHECK(resolve_copy(dir, src, out, sizeof out) == WG_MODEL_CACHE_COPIED);
    CHECK(strstr(out, "/cache/") != NULL && strlen(out) > 5 && !strcmp(out + strlen(out) - 5, ".gguf"));
    CHECK(file_equals(out, a, SRC_SIZE));
    snprintf(meta, sizeof meta, "%.*s.meta", (int)(strlen(out) - 5), out);
    snprintf(partial, sizeof partial, "%.*s.partial", (int)(strlen(out) - 5), out);
    CHECK(access(meta, F_OK) == 0);
    CHECK(access(partial, F_OK) != 0);

    /* reuse: same path, nothing copied */
    CHECK(resolve_copy(dir, src, out2, sizeof out2) == WG_MODEL_CACHE_REUSED);
    CHECK(!strcmp(out, out2));
    /* the plain API reuses it too */
    char err[512];
    CHECK(wg_model_cache_resolve(dir, src, out2, sizeof out2, err, sizeof err) == 0 && !strcmp(out, out2));

    /* one flipped byte in the cached file: detected, rebuilt */
    corrupt_byte(out, SRC_SIZE / 2);
    CHECK(!file_equals(out, a, SRC_SIZE));
    CHECK(resolve_copy(dir, src, out2, sizeof out2) == WG_MODEL_CACHE_COPIED);
    CHECK(file_equals(out, a, SRC_SIZE));

    /* truncated cached file: rebuilt */
    CHECK(truncate(out, SRC_SIZE / 3) == 0);
    CHECK(resolve_copy(dir, src, out2, sizeof out2) == WG_MODEL_CACHE_COPIED);
    CHECK(file_equals(out, a, SRC_SIZE));

    /* killed between publishing the data and the sidecar: no sidecar, rebuilt */
    CHECK(unlink(meta) == 0);
    CHECK(resolve_copy(dir, src, out2, sizeof out2) == WG_MODEL_CACHE_COPIED);

    /* a garbage or truncated sidecar is never trusted */
    FILE *f = fopen(meta, "wb");
    fputs("wgllm-model-cache 1\nsize 12", f);
    fclose(f);
    CHECK(resolve_copy(dir, src, out2, sizeof out2) == WG_MODEL_CACHE_COPIED);
    CHECK(resolve_copy(dir, src, out2, sizeof out2) == WG_MODEL_CACHE_REUSED);

    /* killed mid-copy: a stale .partial and no entry; the next start copies afresh */
    CHECK(unlink(meta) == 0 && unlink(out) == 0);
    write_file(partial, a, SRC_SIZE / 4, 1700000000);
    CHECK(resolve_copy(dir, src, out2, sizeof out2) == WG_MODEL_CACHE_COPIED);
    CHECK(file_equals(out, a, SRC_SIZE));
    CHECK(access(partial, F_OK) != 0);

    /* source changed (new content, new mtime): rebuilt with the new content */
    write_file(src, b, SRC_SIZE, 1700000100);
    CHECK(resolve_copy(dir, src, out2, sizeof out2) == WG_MODEL_CACHE_COPIED);
    CHECK(file_equals(out, b, SRC_SIZE));
    /* source of another size with the old mtime: rebuilt too */
    write_file(src, a, SRC_SIZE - 1, 1700000100);
    CHECK(resolve_copy(dir, src, out2, sizeof out2) == WG_MODEL_CACHE_COPIED);
    CHECK(file_equals(out, a, SRC_SIZE - 1));

    /* same filesystem with links allowed: a hard link of the source */
    char dir2[600], out3[1024];
    snprintf(dir2, sizeof dir2, "%s/cache-linked", root);
    wg_model_cache_options lo = {.allow_hardlink = 1};
    wg_model_cache_action act;
    CHECK(wg_model_cache_resolve_opts(dir2, src, &lo, &act, out3, sizeof out3, err, sizeof err) == 0);
    CHECK(act == WG_MODEL_CACHE_LINKED);
    struct stat s1, s2;
    CHECK(stat(src, &s1) == 0 && stat(out3, &s2) == 0 && s1.st_ino == s2.st_ino);
    CHECK(wg_model_cache_resolve_opts(dir2, src, &lo, &act, out3, sizeof out3, err, sizeof err) == 0);
    CHECK(act == WG_MODEL_CACHE_REUSED);

    /* errors: one line, no entry */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope.gguf", root);
    err[0] = '\0';
    CHECK(wg_model_cache_resolve(dir, missing, out2, sizeof out2, err, sizeof err) == -1);
    CHECK(strstr(err, "nope.gguf") != NULL && strchr(err, '\n') == NULL);
    CHECK(wg_model_cache_resolve(dir, root, out2, sizeof out2, err, sizeof err) == -1);
    CHECK(strstr(err, "not a regular file") != NULL);
    CHECK(wg_model_cache_resolve(src, src, out2, sizeof out2, err, sizeof err) == -1); /* dir is a file */
    CHECK(wg_model_cache_resolve(dir, src, out2, 8, err, sizeof err) == -1);            /* tiny out buffer */
    CHECK(wg_model_cache_resolve("", src, out2, sizeof out2, err, sizeof err) == -1);

    free(a);
    free(b);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    CHECK_DONE();
}
