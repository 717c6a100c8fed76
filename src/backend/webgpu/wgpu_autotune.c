/* Per-adapter kernel choices (wgpu_autotune.h): the table of choices, their measurement on
 * the device, and the cache file. */
#define _POSIX_C_SOURCE 200809L
#include "backend/webgpu/wgpu_autotune.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/webgpu/wgpu_internal.h"
#include "backend/webgpu/wgpu_kernels.h"
#include "backend/webgpu/wgpu_q8_gen.h"
#include "quant/types.h"

/* The line format and candidate sets; lines of another version are dropped without a warning
 * (measured again). 2: the decode kind's nt16 and nt32. 3: measured after a warm-up (the
 * times of version 2 could be of a GPU at its idle clock). 4: the decode kind's nt16r4. 5: its
 * nt16l8, nt32l8 and nt16r4l8, and the few kind. */
#define TUNE_MAGIC_STEM "wgllm-autotune-"
#define TUNE_MAGIC TUNE_MAGIC_STEM "5"
#define TUNE_MAX_CANDS 8
#define TUNE_FIELDS 11          /* magic, 7 key fields, row, pick, times */
#define TUNE_FIELD_MAX 127      /* bytes of one key field */
#define TUNE_KEY_MAX 1024
#define TUNE_FILE_MAX (256 * 1024) /* a bigger file is not ours (TUNE_ENTRIES_MAX lines of at most ~1 KiB fit) */
#define TUNE_LINE_MAX 2048
#define TUNE_ENTRIES_MAX 192 /* lines kept for other adapters and drivers */
#define TUNE_US_MAX 1e9
/* A candidate must beat the simpler first one by this much (ties: the simpler route). */
#define TUNE_WIN_MARGIN 0.97
#define TUNE_WARM_S 0.3     /* seconds of untimed products before a GPU's measurement */
#define TUNE_WARM_MAX 1000  /* ... but at most this many rounds */

typedef struct wgb_tune_state wgb_tune_state;

/* What one kind chooses between and how it is timed: us[r][cand], microseconds per
 * operation for each of the kind's rows, in table order. */
typedef struct {
    const char *const *cands;
    int n_cands;
    const char *const *kernels; /* sources that decide the timing, hashed into the key; NULL ends */
    bool (*measure)(wgb_ctx *c, wgb_tune_kind kind, double us[][TUNE_MAX_CANDS]);
    bool (*usable)(const wgb_ctx *c, int cand); /* whether the device can run it (NULL: all can) */
} tune_kind;

/* One size range of a kind. `fixed`: the candidate taken without measuring
 * (WGLLM_WEBGPU_AUTOTUNE=0, a failed measurement). */
typedef struct {
    wgb_tune_kind kind;
    const char *name;
    int lo, hi, n; /* tokens it covers, tokens timed */
    int fixed;
} tune_row;

static bool measure_q4_0_decode(wgb_ctx *c, wgb_tune_kind kind, double us[][TUNE_MAX_CANDS]);

#define PROMPT_CAND(name, tm, tn, rt, tt, kb) name,
static const char *const k_prompt_cands[] = {WGB_Q8_PROMPT_TILES(PROMPT_CAND)};
#undef PROMPT_CAND
static const char *const k_prompt_kernels[] = {"matmul_q8", "lib_q8_batch", "lib_q8_mat_io", "q8dot_q4_0", "lib_q8_x",
                                               "lib_q4_0_int8", "quantize_x_q8", NULL};
_Static_assert(WGB_Q8_PROMPT_TILE_COUNT <= TUNE_MAX_CANDS, "more prompt tiles than autotune candidates");

static const char *const k_decode_cands[] = {"nt", "batch", "nt16", "nt32", "nt16r4", "nt16l8", "nt32l8", "nt16r4l8"};
_Static_assert(sizeof k_decode_cands / sizeof k_decode_cands[0] == WGB_TUNE_DECODE_CANDIDATES, "a name a decode candidate");
static const char *const k_decode_kernels[] = {"lib_q8_batch", "matmul_q8", "lib_q8_mat_io", "lib_q8_qkv_io", "lib_q8_nt", "matvec_q8_nt",
                                               "q8dot_q4_0", "lib_q8_x", "quantize_x_q8", NULL};
static const char *const k_few_cands[] = {"nt8", "nt8l8", "nt8r4l8"};
_Static_assert(sizeof k_few_cands / sizeof k_few_cands[0] == WGB_TUNE_FEW_CANDIDATES, "a name a few-token candidate");
static const tune_kind k_kinds[WGB_TUNE_KINDS] = {
    [WGB_TUNE_Q4_0_DECODE] = {k_decode_cands, WGB_TUNE_DECODE_CANDIDATES, k_decode_kernels, measure_q4_0_decode, NULL},
    /* the same measurement: the real op at the rows' token counts, each candidate forced */
    [WGB_TUNE_Q8_PROMPT] = {k_prompt_cands, WGB_Q8_PROMPT_TILE_COUNT, k_prompt_kernels, measure_q4_0_decode,
                            wgb_q8_prompt_fits},
    [WGB_TUNE_Q4_0_FEW] = {k_few_cands, WGB_TUNE_FEW_CANDIDATES, k_decode_kernels, measure_q4_0_decode, NULL},
};

/* Fixed choice: passes of 8, measured 1.1-2.9x faster than the batch tiles at 16 and 32
 * streams of a 7B Q4_0 on an H100 (wgpu-native 29, Vulkan). */
static const tune_row k_rows[] = {
    {WGB_TUNE_Q4_0_DECODE, "q4_0_decode_9_16", 9, 16, 16, WGB_TUNE_DECODE_NT},
    {WGB_TUNE_Q4_0_DECODE, "q4_0_decode_17_32", 17, 32, 32, WGB_TUNE_DECODE_NT},
    {WGB_TUNE_Q4_0_DECODE, "q4_0_decode_33_64", 33, 64, 64, WGB_TUNE_DECODE_NT},
    /* Fixed choice: the tile of the kernel before the autotune (wgpu_q8_prompt.h). The two
     * rows: a short prompt (a chat turn) leaves few token tiles, a long one many. */
    {WGB_TUNE_Q8_PROMPT, "q8_prompt_65_256", 65, 256, 128, 0},
    {WGB_TUNE_Q8_PROMPT, "q8_prompt_257_up", 257, INT_MAX, 512, 0},
    /* Fixed choice: the pass of 8 before the autotune. One row: a pass costs about the same
     * for any count up to its width. */
    {WGB_TUNE_Q4_0_FEW, "q4_0_few_2_8", 2, 8, 8, WGB_TUNE_FEW_NT8},
};
#define N_ROWS ((int)(sizeof k_rows / sizeof k_rows[0]))

enum { MODE_OFF, MODE_ON, MODE_FORCE };

struct wgb_tune_state {
    int mode;
    bool verbose;
    bool resolved[WGB_TUNE_KINDS];
    int pick[N_ROWS];
    int measuring; /* the candidate every pick returns while timing one, else -1 */
    int measured, from_file;
};

/* A parsed cache line. */
typedef struct {
    char key[TUNE_KEY_MAX];
    int row, pick;
    double us[TUNE_MAX_CANDS];
} tune_entry;

static void warn(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "wgllm: webgpu autotune: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
}

/* ------------------------------------------------------------ the key */

/* A key field: control characters (tabs, newlines) become spaces, at most TUNE_FIELD_MAX
 * bytes, "-" when empty. */
static void key_field(char *dst, const char *s) {
    size_t n = 0;
    for (; s && s[n] && n < TUNE_FIELD_MAX; n++) dst[n] = (unsigned char)s[n] < 0x20 || s[n] == 0x7f ? ' ' : s[n];
    if (n == 0) dst[n++] = '-';
    dst[n] = 0;
}

static uint64_t fnv1a(uint64_t h, const char *s) {
    for (; s && *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h ^ 0xff; /* separates "ab","c" from "a","bc" */
}

/* The generated code of a tile thread of rt x tt. */
static uint64_t hash_tile(uint64_t h, int rt, int tt) {
    char *code = wgb_q8_tile_wgsl(rt, tt, false);
    h = fnv1a(h, code);
    free(code);
    return h;
}

/* The kernels of a kind and the tile shapes (their WGSL constants and generated code) in one hash. */
static uint64_t kernels_hash(wgb_tune_kind kind) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *const *k = k_kinds[kind].kernels; *k; k++) h = fnv1a(h, wg_kernel_source(*k));
    for (int v = 0; v < WGB_Q8_BATCH_KERNELS; v++) {
        const wgb_q8_batch_kernel b = wgb_q8_batch_spec(v);
        h = fnv1a(fnv1a(fnv1a(h, b.body), b.prefix), b.lib);
        h = hash_tile(h, b.rt, b.tt);
    }
    for (int t = 0; kind == WGB_TUNE_Q8_PROMPT && t < WGB_Q8_PROMPT_TILE_COUNT; t++) {
        int rt, tt;
        wgb_q8_prompt_thread(t, &rt, &tt);
        h = hash_tile(fnv1a(h, wgb_q8_prompt_prefix(t)), rt, tt);
    }
    char nt[32];
    snprintf(nt, sizeof nt, "%d %d %d", WGB_Q8_NT, WGB_Q8_NT_TPR, WGB_Q8_NT_ROWS);
    h = fnv1a(h, nt);
    /* the generated per-token code of each nt width */
#define HASH_WIDTH(w, r, l)                     \
    {                                           \
        char *acc = wgb_q8_nt_wgsl(w, r, l, 0); \
        h = fnv1a(h, acc);                      \
        free(acc);                              \
    }
    WGB_Q8_NT_WIDTHS(HASH_WIDTH)
#undef HASH_WIDTH
    return h;
}

static void make_key(char *key, const wgb_tune_adapter *a, wgb_tune_kind kind) {
    char f[4][TUNE_FIELD_MAX + 1];
    key_field(f[0], a->backend);
    key_field(f[1], a->architecture);
    key_field(f[2], a->name);
    key_field(f[3], a->driver);
    snprintf(key, TUNE_KEY_MAX, "%s\t0x%04x\t0x%04x\t%s\t%s\t%s\t%016llx", f[0], a->vendor_id, a->device_id, f[1],
             f[2], f[3], (unsigned long long)kernels_hash(kind));
}

/* ------------------------------------------------------------ the file */

bool wgb_autotune_path(char *buf, size_t size) {
    const char *f = getenv("WGLLM_WEBGPU_AUTOTUNE_FILE");
    int n;
    if (f && *f) {
        n = snprintf(buf, size, "%s", f);
    } else {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (xdg && xdg[0] == '/') n = snprintf(buf, size, "%s/wgllm/webgpu-autotune.tsv", xdg);
        else if (home && home[0] == '/') n = snprintf(buf, size, "%s/.cache/wgllm/webgpu-autotune.tsv", home);
        else return false;
    }
    return n > 0 && (size_t)n < size;
}

static int row_index(const char *name) {
    for (int r = 0; r < N_ROWS; r++)
        if (!strcmp(k_rows[r].name, name)) return r;
    return -1;
}

static int cand_index(wgb_tune_kind kind, const char *name, size_t len) {
    for (int i = 0; i < k_kinds[kind].n_cands; i++)
        if (strlen(k_kinds[kind].cands[i]) == len && !strncmp(k_kinds[kind].cands[i], name, len)) return i;
    return -1;
}

/* Lower-case hex digits, min..max of them. */
static bool is_hex(const char *s, size_t min, size_t max) {
    const size_t n = strspn(s, "0123456789abcdef");
    return !s[n] && n >= min && n <= max;
}

/* "nt=12.5,batch=30" in the kind's candidate order, each finite and in range. */
static bool parse_times(wgb_tune_kind kind, const char *s, double *us) {
    const tune_kind *k = &k_kinds[kind];
    for (int i = 0; i < k->n_cands; i++) {
        const char *eq = strchr(s, '=');
        if (!eq || cand_index(kind, s, (size_t)(eq - s)) != i) return false;
        char *end;
        errno = 0;
        us[i] = strtod(eq + 1, &end);
        if (errno || end == eq + 1 || !isfinite(us[i]) || us[i] < 0 || us[i] > TUNE_US_MAX) return false;
        if (*end != (i + 1 < k->n_cands ? ',' : '\0')) return false;
        s = end + 1;
    }
    return true;
}

/* One line (NUL-terminated copy, no newline) into e; false when malformed. */
static bool parse_line(char *line, tune_entry *e) {
    char *f[TUNE_FIELDS];
    int n = 0;
    for (char *p = line;; p++) {
        if (n == TUNE_FIELDS) return false;
        f[n++] = p;
        p = strchr(p, '\t');
        if (!p) break;
        *p = 0;
    }
    if (n != TUNE_FIELDS || strcmp(f[0], TUNE_MAGIC)) return false;
    for (int i = 1; i <= 7; i++) {
        if (!f[i][0] || strlen(f[i]) > TUNE_FIELD_MAX) return false;
        for (const char *p = f[i]; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) return false;
    }
    if (strncmp(f[2], "0x", 2) || !is_hex(f[2] + 2, 1, 8) || strncmp(f[3], "0x", 2) || !is_hex(f[3] + 2, 1, 8) ||
        !is_hex(f[7], 16, 16))
        return false;
    e->row = row_index(f[8]);
    if (e->row < 0) return false;
    const wgb_tune_kind kind = k_rows[e->row].kind;
    e->pick = cand_index(kind, f[9], strlen(f[9]));
    if (e->pick < 0 || !parse_times(kind, f[10], e->us)) return false;
    snprintf(e->key, sizeof e->key, "%s\t%s\t%s\t%s\t%s\t%s\t%s", f[1], f[2], f[3], f[4], f[5], f[6], f[7]);
    return true;
}

/* The well-formed lines of the file (NULL when there are none, it is missing or not ours);
 * one warning for whatever was dropped. */
static tune_entry *cache_read(const char *path, int *count) {
    *count = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) warn("ignoring %s: %s", path, errno == ELOOP ? "a symbolic link" : strerror(errno));
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    tune_entry *es = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > TUNE_FILE_MAX) {
        warn("ignoring %s: %s", path, S_ISREG(st.st_mode) ? "too large" : "not a regular file");
        goto done;
    }
    buf = malloc(TUNE_FILE_MAX + 1);
    es = calloc(TUNE_ENTRIES_MAX, sizeof *es);
    if (!buf || !es) goto done;
    size_t len = 0;
    for (ssize_t got; len <= TUNE_FILE_MAX && (got = read(fd, buf + len, TUNE_FILE_MAX + 1 - len)) != 0;) {
        if (got < 0) {
            if (errno == EINTR) continue;
            break;
        }
        len += (size_t)got;
    }
    if (len > TUNE_FILE_MAX) { /* grew since fstat */
        warn("ignoring %s: %s", path, "too large");
        goto done;
    }
    int bad = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(buf + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - buf) : len, n = end - at;
        char line[TUNE_LINE_MAX];
        const bool other_version = n > strlen(TUNE_MAGIC) && !strncmp(buf + at, TUNE_MAGIC_STEM, strlen(TUNE_MAGIC_STEM)) &&
                                   (strncmp(buf + at, TUNE_MAGIC, strlen(TUNE_MAGIC)) || buf[at + strlen(TUNE_MAGIC)] != '\t');
        if (n > 0 && buf[at] != '#' && !other_version) {
            if (n >= sizeof line || memchr(buf + at, 0, n) || *count >= TUNE_ENTRIES_MAX) {
                bad++;
            } else {
                memcpy(line, buf + at, n);
                line[n] = 0;
                if (parse_line(line, &es[*count])) ++*count;
                else bad++;
            }
        }
        at = end + 1;
    }
    if (bad) {
        char what[64];
        snprintf(what, sizeof what, "%d malformed line%s", bad, bad > 1 ? "s" : "");
        warn("ignoring %s of %s", what, path);
    }
done:
    close(fd);
    free(buf);
    if (!*count) {
        free(es);
        es = NULL;
    }
    return es;
}

#ifdef __wasi__
/* A wasm build keeps no cache file: wasi-libc has no mkstemp or fchmod, and a page's files
 * live in memory only. The choices are measured again at each load. */
static bool cache_write(const char *path, const tune_entry *es, int n) {
    (void)path, (void)es, (void)n;
    return false;
}
#else
static bool write_all(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

/* The default path's folders (not the override's). */
static void make_dirs(const char *path) {
    const char *f = getenv("WGLLM_WEBGPU_AUTOTUNE_FILE");
    if (f && *f) return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) return;
    *slash = 0;
    slash = strrchr(dir, '/'); /* .../.cache, then .../.cache/wgllm */
    if (slash && slash != dir) {
        *slash = 0;
        mkdir(dir, 0700);
        *slash = '/';
    }
    mkdir(dir, 0700);
}

/* Replaces the file by es[0..n) (temporary file, then rename). */
static bool cache_write(const char *path, const tune_entry *es, int n) {
    make_dirs(path);
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp) return false;
    int fd = mkstemp(tmp);
    if (fd < 0) return false;
    bool ok = fchmod(fd, 0644) == 0;
    static const char head[] = "# wgllm WebGPU kernel choices per adapter (measured; delete to measure again)\n";
    ok = ok && write_all(fd, head, sizeof head - 1);
    for (int i = 0; ok && i < n; i++) {
        const tune_kind *k = &k_kinds[k_rows[es[i].row].kind];
        char line[TUNE_LINE_MAX + 64], *p = line;
        const char *end = line + sizeof line;
        p += snprintf(p, (size_t)(end - p), "%s\t%s\t%s\t%s\t", TUNE_MAGIC, es[i].key, k_rows[es[i].row].name,
                      k->cands[es[i].pick]);
        for (int j = 0; j < k->n_cands && p < end; j++)
            p += snprintf(p, (size_t)(end - p), "%s%s=%.1f", j ? "," : "", k->cands[j], es[i].us[j]);
        ok = p < end - 1 && (*p++ = '\n', write_all(fd, line, (size_t)(p - line)));
    }
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) == 0) return true;
    const int e = errno;
    unlink(tmp);
    errno = e;
    return false;
}
#endif

/* ------------------------------------------------------------ choosing */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}


static wgb_tune_state *state_of(wgb_ctx *c) {
    if (c->tune) return c->tune;
    wgb_tune_state *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    const char *v = getenv("WGLLM_WEBGPU_AUTOTUNE");
    t->mode = v && !strcmp(v, "0") ? MODE_OFF : v && !strcmp(v, "force") ? MODE_FORCE : MODE_ON;
    t->verbose = v && !strcmp(v, "verbose");
    t->measuring = -1;
    c->tune = t;
    return t;
}

static void adapter_of(const wgb_ctx *c, wgb_tune_adapter *a) {
    const wg_adapter_info *i = &c->gpu->info[c->dev->adapter_index];
    *a = (wgb_tune_adapter){wg_backend_type_name(i->backend), i->name, i->architecture, i->description, i->vendor_id,
                            i->device_id};
}

static void say(const wgb_tune_state *t, const char *how, int r, const double *us) {
    if (!t->verbose) return;
    const tune_kind *k = &k_kinds[k_rows[r].kind];
    fprintf(stderr, "wgllm: webgpu autotune: %s %s: %s (", how, k_rows[r].name, k->cands[t->pick[r]]);
    for (int j = 0; j < k->n_cands; j++) fprintf(stderr, "%s%s %.1f us", j ? ", " : "", k->cands[j], us[j]);
    fprintf(stderr, ")\n");
}

/* Times the kind's rows and writes them to the file with the other lines kept. */
static void measure_and_store(wgb_ctx *c, wgb_tune_state *t, wgb_tune_kind kind, const char *key, const char *path,
                              tune_entry *old, int n_old) {
    double us[N_ROWS][TUNE_MAX_CANDS] = {{0}};
    if (c->failed || c->dev->lost) return; /* keep the fixed choices */
    /* the recorded work first, so that it is neither timed nor counted: its failure is the model's */
    char err[256];
    wgb_flush(c);
    if (!wg_device_finish(c->dev, err, sizeof err)) wgb_fail(c, "%s", err);
    if (c->failed) return;
    const double t0 = now_s();
    if (!k_kinds[kind].measure(c, kind, us)) {
        if (c->failed && !c->dev->lost) { /* the measurement's own failure: the model goes on */
            warn("measuring failed (%s%s); fixed choices", c->error, "");
            c->failed = false;
            c->error[0] = 0;
        }
        return;
    }
    t->measured++;
    if (t->verbose) fprintf(stderr, "wgllm: webgpu autotune: measuring took %.0f ms\n", (now_s() - t0) * 1e3);
    /* the rows of this kind, in table order, into us[0..] */
    int i = 0;
    for (int r = 0; r < N_ROWS; r++) {
        if (k_rows[r].kind != kind) continue;
        int best = 0;
        for (int j = 1; j < k_kinds[kind].n_cands; j++)
            if (us[i][j] < us[i][best] * TUNE_WIN_MARGIN) best = j;
        t->pick[r] = best;
        say(t, "measured", r, us[i]);
        i++;
    }
    if (!path) return;
    /* the file: other adapters' and kinds' lines, then these */
    tune_entry *es = calloc(TUNE_ENTRIES_MAX + N_ROWS, sizeof *es);
    if (!es) return;
    int n = 0;
    for (int e = 0; e < n_old; e++)
        if (k_rows[old[e].row].kind != kind || strcmp(old[e].key, key)) es[n++] = old[e];
    int mine = 0; /* this kind's rows */
    for (int r = 0; r < N_ROWS; r++) mine += k_rows[r].kind == kind;
    if (n > TUNE_ENTRIES_MAX - mine) { /* the oldest go */
        memmove(es, es + (n - (TUNE_ENTRIES_MAX - mine)), sizeof *es * (size_t)(TUNE_ENTRIES_MAX - mine));
        n = TUNE_ENTRIES_MAX - mine;
    }
    i = 0;
    for (int r = 0; r < N_ROWS; r++) {
        if (k_rows[r].kind != kind) continue;
        snprintf(es[n].key, sizeof es[n].key, "%s", key);
        es[n].row = r;
        es[n].pick = t->pick[r];
        memcpy(es[n].us, us[i++], sizeof es[n].us);
        n++;
    }
    errno = 0;
    if (!cache_write(path, es, n))
        warn("cannot write %s: %s (the choices are not kept)", path, errno ? strerror(errno) : "error");
    free(es);
}

static void resolve(wgb_ctx *c, wgb_tune_state *t, wgb_tune_kind kind) {
    t->resolved[kind] = true;
    for (int r = 0; r < N_ROWS; r++)
        if (k_rows[r].kind == kind) t->pick[r] = k_rows[r].fixed;
    if (t->mode == MODE_OFF) return;
    wgb_tune_adapter a;
    adapter_of(c, &a);
    char key[TUNE_KEY_MAX], path[4096];
    make_key(key, &a, kind);
    const bool have_path = wgb_autotune_path(path, sizeof path);
    int n_old = 0;
    tune_entry *old = have_path ? cache_read(path, &n_old) : NULL;
    if (t->mode != MODE_FORCE) {
        int found = 0, want = 0, pick[N_ROWS];
        for (int r = 0; r < N_ROWS; r++) {
            if (k_rows[r].kind != kind) continue;
            want++;
            for (int e = 0; e < n_old; e++)
                if (old[e].row == r && !strcmp(old[e].key, key)) {
                    pick[r] = old[e].pick;
                    found++;
                    break;
                }
        }
        if (found == want) {
            t->from_file++;
            for (int r = 0; r < N_ROWS; r++) {
                if (k_rows[r].kind != kind) continue;
                t->pick[r] = pick[r];
                for (int e = 0; e < n_old; e++)
                    if (old[e].row == r && !strcmp(old[e].key, key)) say(t, "cached", r, old[e].us);
            }
            free(old);
            return;
        }
    }
    measure_and_store(c, t, kind, key, have_path ? path : NULL, old, n_old);
    free(old);
}

int wgb_autotune_pick(wgb_ctx *c, wgb_tune_kind kind, int n) {
    int row = -1;
    for (int r = 0; r < N_ROWS && row < 0; r++)
        if (k_rows[r].kind == kind && n >= k_rows[r].lo && n <= k_rows[r].hi) row = r;
    if (row < 0) return 0;
    wgb_tune_state *t = state_of(c);
    if (!t) return k_rows[row].fixed;
    if (t->measuring >= 0) return t->measuring;
    if (!t->resolved[kind]) resolve(c, t, kind);
    return t->pick[row];
}

void wgb_autotune_free(wgb_ctx *c) {
    free(c->tune);
    c->tune = NULL;
}

void wgb_autotune_force(wgb_ctx *c, wgb_tune_kind kind, int pick) {
    wgb_tune_state *t = state_of(c);
    if (!t || pick < 0 || pick >= k_kinds[kind].n_cands) return;
    t->resolved[kind] = true;
    for (int r = 0; r < N_ROWS; r++)
        if (k_rows[r].kind == kind) t->pick[r] = pick;
}

void wgb_autotune_counts(const wgb_ctx *c, int *measured, int *from_file) {
    *measured = c->tune ? c->tune->measured : 0;
    *from_file = c->tune ? c->tune->from_file : 0;
}

int wgb_autotune_print(FILE *out, const wgb_tune_adapter *a) {
    char path[4096];
    int n_es = 0, printed = 0;
    tune_entry *es = wgb_autotune_path(path, sizeof path) ? cache_read(path, &n_es) : NULL;
    for (int kind = 0; kind < WGB_TUNE_KINDS && es; kind++) {
        char key[TUNE_KEY_MAX];
        make_key(key, a, (wgb_tune_kind)kind);
        for (int e = 0; e < n_es; e++) {
            if ((int)k_rows[es[e].row].kind != kind || strcmp(es[e].key, key)) continue;
            const tune_kind *k = &k_kinds[kind];
            fprintf(out, "  autotune      %s: %s (", k_rows[es[e].row].name, k->cands[es[e].pick]);
            for (int j = 0; j < k->n_cands; j++) fprintf(out, "%s%s %.1f us", j ? ", " : "", k->cands[j], es[e].us[j]);
            fprintf(out, ")\n");
            printed++;
        }
    }
    free(es);
    return printed;
}

/* ------------------------------------------------------------ measuring */


/* A device buffer with `bytes` of host data, as a one-part tensor of the backend. */
static wg_tensor *synth_tensor(wgb_ctx *c, uint32_t type, int64_t ne0, int64_t ne1, const void *data, size_t bytes,
                               bool weight) {
    wg_tensor *t = wgb_tensor_new(type, ne0, ne1, 1);
    if (!t) return NULL;
    wgb_tensor *wt = wgb_t(t);
    char err[256];
    wgb_part *p = &wt->parts[0];
    p->bind.buf = wg_buffer_create(c->dev, bytes, "autotune operand", err, sizeof err);
    if (!p->bind.buf || !wg_buffer_write(c->dev, p->bind.buf, 0, data, bytes, err, sizeof err)) {
        if (p->bind.buf) wg_buffer_free(c->dev, p->bind.buf);
        free(t);
        wgb_fail(c, "%s", err);
        return NULL;
    }
    p->bind.id = ++c->next_id;
    p->bind.size = wgb_round_up(bytes, 4);
    p->rows = ne1;
    wt->weight = weight;
    wt->row_bytes = weight ? wg_type_row_bytes(type, ne0) : (size_t)ne0 * 4;
    return t;
}

static void synth_free(wgb_ctx *c, wg_tensor *t) {
    if (!t) return;
    wgb_purge_bind_groups(c, wgb_t(t)->parts[0].bind.id);
    wg_buffer_free(c->dev, wgb_t(t)->parts[0].bind.buf);
    free(t);
}

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Q4_0 products y = W x of the rows' token counts through the real op, once with each
 * candidate forced; the best of a few repetitions. Weights of a 7B's FFN shape, three of them (bigger than the L2 caches
 * of today's GPUs, so each pass reads them from memory); on a CPU adapter (lavapipe) a
 * small shape, so the measurement stays short. */
static bool measure_q4_0_decode(wgb_ctx *c, wgb_tune_kind kind, double us[][TUNE_MAX_CANDS]) {
    wgb_tune_state *t = c->tune;
    const bool cpu = c->gpu->info[c->dev->adapter_index].type == WGPUAdapterType_CPU;
    const int64_t k = cpu ? 256 : 4096;
    int64_t m = cpu ? 256 : 11008;
    const int n_w = cpu ? 1 : 3, inner = cpu ? 1 : 4, reps = cpu ? 2 : 3;
    const size_t rb = wg_type_row_bytes(WG_TYPE_Q4_0, k);
    if ((uint64_t)m * rb > c->binding_max) m = (int64_t)(c->binding_max / rb);
    int n_max = 1;
    for (int r = 0; r < N_ROWS; r++)
        if (k_rows[r].kind == kind && k_rows[r].n > n_max) n_max = k_rows[r].n;
    char err[256];
    if (!c->pl.q8_built[WGB_Q8F_Q4_0] && !wgb_pipelines_add_q8(c->dev, &c->pl, WGB_Q8F_Q4_0, err, sizeof err)) {
        wgb_fail(c, "%s", err);
        return false;
    }
    const size_t wbytes = (size_t)m * rb, xbytes = (size_t)n_max * (size_t)k * 4, ybytes = (size_t)n_max * (size_t)m * 4;
    size_t hbytes = wbytes > xbytes ? wbytes : xbytes;
    if (ybytes > hbytes) hbytes = ybytes;
    uint8_t *host = malloc(hbytes);
    wg_tensor *w[3] = {0}, *x = NULL, *y = NULL;
    bool ok = host != NULL;
    uint32_t seed = 12345;
    for (size_t b = 0; ok && b < wbytes; b += 18) { /* f16 scale 2^-7..2^-6, random nibbles */
        const uint32_t s = 0x2000 | (lcg(&seed) & 0x3ff);
        host[b] = (uint8_t)s;
        host[b + 1] = (uint8_t)(s >> 8);
        for (int j = 2; j < 18; j++) host[b + j] = (uint8_t)lcg(&seed);
    }
    for (int i = 0; ok && i < n_w; i++) /* the same bytes in separate buffers: each is read from memory */
        ok = (w[i] = synth_tensor(c, WG_TYPE_Q4_0, k, m, host, wbytes, true)) != NULL;
    if (ok) {
        float *xf = (float *)host;
        for (size_t i = 0; i < xbytes / 4; i++) xf[i] = (float)(lcg(&seed) & 0xffff) / 32768.0f - 1.0f;
        x = synth_tensor(c, WG_TYPE_F32, k, n_max, host, xbytes, false);
        memset(host, 0, ybytes);
        y = x ? synth_tensor(c, WG_TYPE_F32, m, n_max, host, ybytes, false) : NULL;
        ok = x && y;
    }
    free(host);
    wg_backend b = {NULL, c};
    /* A GPU fresh from idle runs at a fraction of its clock for a while under load: products
     * first, untimed, for TUNE_WARM_S of wall time (timed cold, the candidates measured first on
     * an H100 took 3-5x their warm time, and a choice once written is kept). */
    const double w0 = now_s();
    for (int n = 0; ok && !cpu && n < TUNE_WARM_MAX && now_s() - w0 < TUNE_WARM_S; n++) {
        for (int q = 0; q < n_w; q++) wgb_op_matmul(&b, w[q], x, n_max, y);
        wgb_flush(c);
        ok = wg_device_finish(c->dev, err, sizeof err) && !c->failed;
    }
    /* GPU time from timestamp queries around each submitted pass where the device has them
     * (and no profiling runs already), else wall time around submit and wait */
    wgb_profile *prof = malloc(sizeof *prof);
    bool stamps = false;
    if (prof) {
        *prof = c->prof;
        stamps = !prof->mode && c->dev->features.timestamp_query && wgb_profile_open(c, 2);
        if (!stamps) c->prof = *prof;
    }
    int i = 0;
    for (int r = 0; ok && r < N_ROWS; r++) {
        if (k_rows[r].kind != kind) continue;
        for (int cand = 0; ok && cand < k_kinds[kind].n_cands; cand++) {
            if (k_kinds[kind].usable && !k_kinds[kind].usable(c, cand)) { /* never chosen */
                us[i][cand] = TUNE_US_MAX;
                continue;
            }
            t->measuring = cand;
            double best = INFINITY;
            for (int rep = 0; ok && rep <= reps; rep++) { /* rep 0 warms up */
                const double t0 = now_s(), ns0 = c->prof.ns[WGB_K_COUNT];
                for (int j = 0; j < inner; j++)
                    for (int q = 0; q < n_w; q++) wgb_op_matmul(&b, w[q], x, k_rows[r].n, y);
                wgb_flush(c); /* with timestamps: waits for them */
                ok = wg_device_finish(c->dev, err, sizeof err) && !c->failed;
                const double dt = stamps && c->prof.mode ? (c->prof.ns[WGB_K_COUNT] - ns0) * 1e-9 : now_s() - t0;
                if (rep > 0 && dt < best) best = dt;
            }
            us[i][cand] = best * 1e6 / (inner * n_w);
        }
        i++;
    }
    t->measuring = -1;
    if (stamps) {
        wgb_profile_destroy(c);
        c->prof = *prof;
    }
    free(prof);
    if (!ok && !c->failed) wgb_fail(c, "%s", err);
    for (int q = 0; q < n_w; q++) synth_free(c, w[q]);
    synth_free(c, x);
    synth_free(c, y);
    wgb_q8_forget_all(c); /* the int8 x in scratch is the measurement's now */
    return ok;
}
