/* The WebGPU autotune (wgpu_autotune.h) on this machine's adapter: the first need measures
 * and writes the cache file, a second backend reads it without measuring, `force` measures
 * again, 0 takes the fixed choices and touches no file. Hostile cache files (garbage, a huge
 * line, NUL bytes, wrong field counts, numbers out of range, a symbolic link or a folder in
 * the file's place, no writable folder, no HOME) are ignored with one warning: the backend
 * measures, goes on, and rewrites a file of its own where it can. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/webgpu/wgpu_autotune.h"
#include "backend/webgpu/wgpu_backend.h"
#include "backend/webgpu/wgpu_internal.h"
#include "check.h"

static char g_dir[256], g_file[300], g_err_path[300];

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(data, 1, n, f) == n);
    fclose(f);
}

/* The file's contents (NUL-terminated; caller frees), NULL if unreadable. */
static char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 20);
    *n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    return buf;
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; p && (p = strstr(p, what)) != NULL; p += strlen(what)) n++;
    return n;
}

/* Runs the first choice of a fresh state (the backend's choices forgotten), with stderr
 * going to a file; returns the stderr text (caller frees). */
static char *first_pick(wgb_ctx *c, int *measured, int *from_file, int *pick) {
    wgb_autotune_free(c);
    fflush(stderr);
    int saved = dup(2);
    FILE *e = fopen(g_err_path, "w");
    CHECK(e != NULL && saved >= 0);
    if (!e || saved < 0) return NULL;
    dup2(fileno(e), 2);
    *pick = wgb_autotune_pick(c, WGB_TUNE_Q4_0_DECODE, 16);
    /* the other rows come with the first, and sizes outside them take the first candidate */
    int p24 = wgb_autotune_pick(c, WGB_TUNE_Q4_0_DECODE, 24), p40 = wgb_autotune_pick(c, WGB_TUNE_Q4_0_DECODE, 40);
    CHECK(p24 >= 0 && p24 < WGB_TUNE_DECODE_CANDIDATES && p40 >= 0 && p40 < WGB_TUNE_DECODE_CANDIDATES);
    CHECK(wgb_autotune_pick(c, WGB_TUNE_Q4_0_DECODE, 8) == 0 && wgb_autotune_pick(c, WGB_TUNE_Q4_0_DECODE, 65) == 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(e);
    wgb_autotune_counts(c, measured, from_file);
    CHECK_MSG(!c->failed, "backend failed: %s", c->error);
    size_t n;
    return read_file(g_err_path, &n);
}

/* A valid three-line file of this adapter, as the backend wrote it. */
static char *g_valid;
static size_t g_valid_n;

/* `rest_valid`: the file still holds every choice (only other lines are bad), so nothing
 * is measured or rewritten. */
static void check_file(wgb_ctx *c, const char *what, const void *data, size_t n, bool expect_warning,
                       bool rest_valid) {
    remove(g_file);
    write_file(g_file, data, n);
    int measured, from_file, pick;
    char *err = first_pick(c, &measured, &from_file, &pick);
    CHECK_MSG(measured == !rest_valid && from_file == rest_valid, "%s: measured %d, from the file %d", what, measured,
              from_file);
    const int warnings = count(err, "webgpu autotune:");
    CHECK_MSG(warnings == (expect_warning ? 1 : 0), "%s: %d warnings: %s", what, warnings, err ? err : "");
    free(err);
    if (rest_valid) {
        printf("%s: ignored with one warning, the other lines read\n", what);
        return;
    }
    /* rewritten: the next state reads it */
    err = first_pick(c, &measured, &from_file, &pick);
    CHECK_MSG(measured == 0 && from_file == 1, "%s, rewritten: measured %d, from the file %d", what, measured,
              from_file);
    CHECK_MSG(count(err, "webgpu autotune:") == 0, "%s, rewritten: %s", what, err ? err : "");
    free(err);
    printf("%s: ignored%s, measured, rewritten\n", what, expect_warning ? " with one warning" : "");
}

static void check_hostile(wgb_ctx *c, const char *what, const void *data, size_t n, bool expect_warning) {
    check_file(c, what, data, n, expect_warning, false);
}

/* The valid file with line `line` (0-2) changed by replacing `from` by `to`; dropped with one
 * warning, or silently (`warn` false: a line of another version of the file). */
static void check_line_edit_warn(wgb_ctx *c, const char *what, int line, const char *from, const char *to, bool warn) {
    char *s = calloc(1, g_valid_n + strlen(to) + 1);
    const char *p = g_valid;
    for (int i = 0; i <= line; i++) p = strchr(p, '\n') + 1; /* skip the comment line and earlier lines */
    const char *hit = strstr(p, from);
    const char *eol = strchr(p, '\n');
    CHECK_MSG(hit && hit < eol, "%s: '%s' not in line %d", what, from, line);
    if (hit && hit < eol) {
        size_t a = (size_t)(hit - g_valid);
        memcpy(s, g_valid, a);
        memcpy(s + a, to, strlen(to));
        strcpy(s + a + strlen(to), hit + strlen(from));
        check_hostile(c, what, s, strlen(s), warn);
    }
    free(s);
}

static void check_line_edit(wgb_ctx *c, const char *what, int line, const char *from, const char *to) {
    check_line_edit_warn(c, what, line, from, to, true);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "test_webgpu_autotune_%d", (int)getpid());
    CHECK(mkdir(g_dir, 0700) == 0);
    snprintf(g_file, sizeof g_file, "%s/tune.tsv", g_dir);
    snprintf(g_err_path, sizeof g_err_path, "%s/stderr.txt", g_dir);
    setenv("WGLLM_WEBGPU_AUTOTUNE_FILE", g_file, 1);
    char err[512] = "";
    wg_backend *g = wg_backend_webgpu_create(-1, err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    if (!g) CHECK_DONE();
    wgb_ctx *c = wgb_ctx_of(g);
    int measured, from_file, pick, pick0;
    struct stat st;

    /* 0: the fixed choice (the nt passes), no file */
    setenv("WGLLM_WEBGPU_AUTOTUNE", "0", 1);
    free(first_pick(c, &measured, &from_file, &pick));
    CHECK(measured == 0 && from_file == 0 && pick == WGB_TUNE_DECODE_NT);
    CHECK_MSG(stat(g_file, &st) != 0, "WGLLM_WEBGPU_AUTOTUNE=0 wrote the file");

    /* the first need measures and writes the file, the next reads it */
    setenv("WGLLM_WEBGPU_AUTOTUNE", "verbose", 1);
    char *e = first_pick(c, &measured, &from_file, &pick0);
    CHECK_MSG(measured == 1 && from_file == 0, "first: measured %d, from the file %d", measured, from_file);
    CHECK_MSG(count(e, "measured q4_0_decode_") == 3, "first: %s", e ? e : "");
    free(e);
    CHECK(stat(g_file, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0644);
    g_valid = read_file(g_file, &g_valid_n);
    CHECK(g_valid && count(g_valid, "wgllm-autotune-5\t") == 3 && count(g_valid, "\n") == 4);
    if (!g_valid) CHECK_DONE();
    {
        char e2[512] = "";
        wg_backend *g2 = wg_backend_webgpu_create(-1, e2, sizeof e2);
        CHECK_MSG(g2 != NULL, "%s", e2);
        if (g2) {
            e = first_pick(wgb_ctx_of(g2), &measured, &from_file, &pick);
            CHECK_MSG(measured == 0 && from_file == 1 && pick == pick0, "second backend: measured %d, from the file %d",
                      measured, from_file);
            CHECK_MSG(count(e, "cached q4_0_decode_") == 3, "second: %s", e ? e : "");
            free(e);
            g2->ops->destroy(g2);
        }
    }
    /* what `wgllm devices` prints */
    {
        const wg_adapter_info *i = &c->gpu->info[c->dev->adapter_index];
        wgb_tune_adapter a = {wg_backend_type_name(i->backend), i->name, i->architecture, i->description,
                              i->vendor_id, i->device_id};
        char *text = NULL;
        size_t tn = 0;
        FILE *m = open_memstream(&text, &tn);
        CHECK(wgb_autotune_print(m, &a) == 3);
        fclose(m);
        CHECK_MSG(count(text, "  autotune      q4_0_decode_") == 3, "%s", text ? text : "");
        free(text);
        a.device_id ^= 1; /* another adapter: nothing cached */
        m = open_memstream(&text, &tn);
        CHECK(wgb_autotune_print(m, &a) == 0);
        fclose(m);
        free(text);
    }
    /* force: measured again */
    setenv("WGLLM_WEBGPU_AUTOTUNE", "force", 1);
    free(first_pick(c, &measured, &from_file, &pick));
    CHECK(measured == 1 && from_file == 0);
    setenv("WGLLM_WEBGPU_AUTOTUNE", "1", 1);

    /* the prompt tiles' kind: its two rows measured at its first need and written next to
     * the decode kind's lines, read by the next state; 0: the fixed tile (0) */
    {
        wgb_autotune_free(c);
        const int p65 = wgb_autotune_pick(c, WGB_TUNE_Q8_PROMPT, 65), pbig = wgb_autotune_pick(c, WGB_TUNE_Q8_PROMPT, 5000);
        wgb_autotune_counts(c, &measured, &from_file);
        CHECK_MSG(measured == 1 && from_file == 0 && !c->failed, "prompt kind: measured %d, from the file %d: %s",
                  measured, from_file, c->error);
        CHECK(p65 >= 0 && p65 < WGB_Q8_PROMPT_TILE_COUNT && pbig >= 0 && pbig < WGB_Q8_PROMPT_TILE_COUNT);
        CHECK(wgb_autotune_pick(c, WGB_TUNE_Q8_PROMPT, 64) == 0);
        size_t n;
        char *s = read_file(g_file, &n);
        CHECK_MSG(count(s, "\tq8_prompt_") == 2 && count(s, "\tq4_0_decode_") == 3, "%s", s ? s : "");
        free(s);
        wgb_autotune_free(c);
        CHECK(wgb_autotune_pick(c, WGB_TUNE_Q8_PROMPT, 200) == p65 && wgb_autotune_pick(c, WGB_TUNE_Q8_PROMPT, 257) == pbig);
        wgb_autotune_counts(c, &measured, &from_file);
        CHECK_MSG(measured == 0 && from_file == 1, "prompt kind, again: measured %d, from the file %d", measured,
                  from_file);
        setenv("WGLLM_WEBGPU_AUTOTUNE", "0", 1);
        wgb_autotune_free(c);
        CHECK(wgb_autotune_pick(c, WGB_TUNE_Q8_PROMPT, 65) == 0 && wgb_autotune_pick(c, WGB_TUNE_Q8_PROMPT, 5000) == 0);
        setenv("WGLLM_WEBGPU_AUTOTUNE", "1", 1);
        printf("prompt tiles: measured (%s for 65-256 tokens, %s for more), cached, 0: the fixed tile\n",
               wgb_q8_prompt_name(p65), wgb_q8_prompt_name(pbig));
    }
    /* the few kind (2-8 tokens): its row measured at its first need next to the others' lines,
     * read by the next state; sizes outside it take the first candidate */
    {
        wgb_autotune_free(c);
        const int p8 = wgb_autotune_pick(c, WGB_TUNE_Q4_0_FEW, 8);
        wgb_autotune_counts(c, &measured, &from_file);
        CHECK_MSG(measured == 1 && from_file == 0 && !c->failed, "few kind: measured %d, from the file %d: %s", measured,
                  from_file, c->error);
        CHECK(p8 >= 0 && p8 < WGB_TUNE_FEW_CANDIDATES && wgb_autotune_pick(c, WGB_TUNE_Q4_0_FEW, 2) == p8);
        CHECK(wgb_autotune_pick(c, WGB_TUNE_Q4_0_FEW, 1) == 0 && wgb_autotune_pick(c, WGB_TUNE_Q4_0_FEW, 9) == 0);
        size_t n;
        char *s = read_file(g_file, &n);
        CHECK_MSG(count(s, "\tq4_0_few_2_8\t") == 1 && count(s, "\tq4_0_decode_") == 3 && count(s, "\tq8_prompt_") == 2,
                  "%s", s ? s : "");
        free(s);
        wgb_autotune_free(c);
        CHECK(wgb_autotune_pick(c, WGB_TUNE_Q4_0_FEW, 5) == p8);
        wgb_autotune_counts(c, &measured, &from_file);
        CHECK_MSG(measured == 0 && from_file == 1, "few kind, again: measured %d, from the file %d", measured, from_file);
        printf("few tokens: measured (candidate %d), cached\n", p8);
    }

    /* hostile files */
    check_hostile(c, "garbage", "hello\nworld\n\t\t\t\n", strlen("hello\nworld\n\t\t\t\n"), true);
    check_hostile(c, "empty", "", 0, false);
    {
        const size_t big = 300 * 1024; /* over the file limit */
        char *s = malloc(big);
        memset(s, 'a', big);
        check_hostile(c, "a 300 KiB file", s, big, true);
        char *l = malloc(g_valid_n + 5000); /* a long line under the file limit, then the valid lines */
        memset(l, 'b', 5000);
        l[4999] = '\n';
        memcpy(l + 5000, g_valid, g_valid_n);
        check_file(c, "a 5000-byte line", l, g_valid_n + 5000, true, true);
        free(l);
        free(s);
    }
    {
        char *s = malloc(g_valid_n);
        memcpy(s, g_valid, g_valid_n);
        *(strchr(s, '\n') + 20) = 0; /* a NUL in the first line of choices */
        check_hostile(c, "a NUL byte", s, g_valid_n, true);
        free(s);
    }
    check_line_edit(c, "a field missing", 0, "\tq4_0_decode_9_16", "");
    check_line_edit(c, "a field too many", 0, "\tq4_0_decode_9_16", "\tq4_0_decode_9_16\textra");
    check_line_edit(c, "an unknown row", 0, "q4_0_decode_9_16", "q4_0_decode_1_99");
    check_line_edit(c, "an unknown choice", 1, "q4_0_decode_17_32\t", "q4_0_decode_17_32\tfastest\t");
    check_line_edit(c, "a time out of range", 2, ",batch=", ",batch=1e300,x=");
    check_line_edit(c, "a negative time", 2, "nt=", "nt=-");
    check_line_edit(c, "a time not a number", 2, "nt=", "nt=nan");
    check_line_edit(c, "a bad vendor id", 0, "\t0x", "\t0xZZ");
    check_line_edit(c, "another magic", 1, "wgllm-autotune-5", "xgllm-autotune-5");
    check_line_edit_warn(c, "another version's line", 1, "wgllm-autotune-5", "wgllm-autotune-4", false);
    {
        /* another adapter's lines are kept, bad lines dropped */
        char other[512];
        snprintf(other, sizeof other,
                 "wgllm-autotune-5\tvulkan\t0x10de\t0x2330\t-\tNVIDIA H100\t580.159.04\t0123456789abcdef\t"
                 "q4_0_decode_9_16\tnt\tnt=10.0,batch=20.0,nt16=30.0,nt32=40.0,nt16r4=50.0,nt16l8=60.0,nt32l8=70.0,nt16r4l8=80.0\nnot a line\n");
        check_hostile(c, "another adapter's line and a bad one", other, strlen(other), true);
        size_t n;
        char *s = read_file(g_file, &n);
        CHECK_MSG(count(s, "NVIDIA H100") == 1 && count(s, "not a line") == 0 && count(s, "\n") == 5, "%s",
                  s ? s : "");
        free(s);
    }
    {
        /* more lines than are kept: the first 192 read, the newest 189 of them kept next to ours */
        const char *line = "wgllm-autotune-5\tvulkan\t0x10de\t0x2330\t-\tGPU %03d\t1.0\t0123456789abcdef\t"
                           "q4_0_decode_9_16\tnt\tnt=10.0,batch=20.0,nt16=30.0,nt32=40.0,nt16r4=50.0,nt16l8=60.0,nt32l8=70.0,nt16r4l8=80.0\n";
        char *many = malloc(300 * 256), *p = many;
        for (int i = 0; i < 300; i++) p += sprintf(p, line, i);
        check_hostile(c, "300 lines", many, (size_t)(p - many), true);
        size_t n;
        char *s = read_file(g_file, &n);
        CHECK_MSG(count(s, "\n") == 1 + 192 && count(s, "GPU 003\t") == 1 && count(s, "GPU 002\t") == 0 &&
                      count(s, "GPU 191\t") == 1 && count(s, "GPU 192\t") == 0,
                  "300 lines: %d lines kept", count(s, "\n"));
        free(s);
        free(many);
    }
    {
        /* a symbolic link in the file's place: not followed, replaced by a file */
        char target[320];
        snprintf(target, sizeof target, "%s/target.tsv", g_dir);
        write_file(target, g_valid, g_valid_n);
        remove(g_file);
        CHECK(symlink("target.tsv", g_file) == 0);
        char *err_text = first_pick(c, &measured, &from_file, &pick);
        CHECK_MSG(measured == 1 && count(err_text, "webgpu autotune:") == 1, "symlink: measured %d: %s", measured,
                  err_text ? err_text : "");
        free(err_text);
        CHECK(lstat(g_file, &st) == 0 && S_ISREG(st.st_mode));
        size_t n;
        char *t = read_file(target, &n);
        CHECK(t && n == g_valid_n && !memcmp(t, g_valid, n)); /* the target untouched */
        free(t);
        remove(target);
        printf("a symbolic link: ignored with one warning, replaced\n");
    }
    {
        /* a folder in the file's place: measured each time, never cached */
        remove(g_file);
        CHECK(mkdir(g_file, 0700) == 0);
        for (int i = 0; i < 2; i++) {
            char *err_text = first_pick(c, &measured, &from_file, &pick);
            CHECK_MSG(measured == 1 && from_file == 0 && count(err_text, "webgpu autotune:") == 2,
                      "folder: measured %d: %s", measured, err_text ? err_text : "");
            free(err_text);
        }
        rmdir(g_file);
        printf("a folder: ignored, measured, not cached\n");
    }
    {
        /* a file in a folder that does not exist; then no HOME at all */
        char missing[320];
        snprintf(missing, sizeof missing, "%s/none/tune.tsv", g_dir);
        setenv("WGLLM_WEBGPU_AUTOTUNE_FILE", missing, 1);
        char *err_text = first_pick(c, &measured, &from_file, &pick);
        CHECK_MSG(measured == 1 && count(err_text, "cannot write") == 1, "missing folder: %s", err_text ? err_text : "");
        free(err_text);
        unsetenv("WGLLM_WEBGPU_AUTOTUNE_FILE");
        char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
        char *xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
        unsetenv("HOME");
        unsetenv("XDG_CACHE_HOME");
        char path[64];
        CHECK(!wgb_autotune_path(path, sizeof path));
        err_text = first_pick(c, &measured, &from_file, &pick);
        CHECK_MSG(measured == 1 && count(err_text, "webgpu autotune:") == 0, "no HOME: %s", err_text ? err_text : "");
        free(err_text);
        if (home) setenv("HOME", home, 1);
        if (xdg) setenv("XDG_CACHE_HOME", xdg, 1);
        free(home);
        free(xdg);
        printf("no folder, no HOME: measured, not cached, no failure\n");
    }
    CHECK_MSG(g->ops->synchronize(g), "%s", g->ops->error(g));
    g->ops->destroy(g);
    free(g_valid);
    remove(g_file);
    remove(g_err_path);
    rmdir(g_dir);
    CHECK_DONE();
}
