/* Writer and bounds-checked reader of the KL-divergence base file (see kl_file.h). */
#include "eval/kl_file.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Log-probabilities are <= 0; the slack absorbs float rounding of a near-certain token. */
#define WG_KL_MAX_LOGPROB 1e-3f

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

uint64_t wg_kl_ids_hash(const wgllm_token *ids, int64_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    uint8_t b[8];
    for (int64_t i = 0; i < n; i++) {
        put_u32(b, (uint32_t)ids[i]);
        for (int k = 0; k < 4; k++) h = (h ^ b[k]) * 0x100000001b3ull;
    }
    put_u64(b, (uint64_t)n);
    for (int k = 0; k < 8; k++) h = (h ^ b[k]) * 0x100000001b3ull;
    return h;
}

bool wg_kl_header_decode(const uint8_t *buf, size_t len, uint64_t file_size, wg_kl_header *h, char *err,
                         size_t err_size) {
    if (len < WG_KL_HEADER_BYTES || file_size < WG_KL_HEADER_BYTES) {
        snprintf(err, err_size, "not a KL base file: shorter than its %d-byte header", WG_KL_HEADER_BYTES);
        return false;
    }
    if (memcmp(buf, "WGKL", 4) != 0) {
        snprintf(err, err_size, "not a KL base file (bad magic)");
        return false;
    }
    h->version = get_u32(buf + 4);
    h->n_vocab = get_u32(buf + 8);
    h->ctx = get_u32(buf + 12);
    h->stride = get_u32(buf + 16);
    uint32_t reserved = get_u32(buf + 20);
    h->n_text = get_u64(buf + 24);
    h->n_scored = get_u64(buf + 32);
    h->ids_hash = get_u64(buf + 40);
    if (h->version != WG_KL_VERSION) {
        snprintf(err, err_size, "KL base file version %u is not supported (expected %d)", h->version, WG_KL_VERSION);
        return false;
    }
    if (h->n_vocab == 0 || h->n_vocab > WG_KL_MAX_VOCAB) {
        snprintf(err, err_size, "KL base file: vocabulary size %u out of range", h->n_vocab);
        return false;
    }
    if (h->ctx < 2 || h->ctx > (1u << 30) || h->stride < 1 || h->stride >= h->ctx || reserved != 0) {
        snprintf(err, err_size, "KL base file: bad window (ctx %u, stride %u)", h->ctx, h->stride);
        return false;
    }
    if (h->n_text < 2 || h->n_scored != h->n_text - 1) {
        snprintf(err, err_size, "KL base file: %llu scored rows for a text of %llu tokens",
                 (unsigned long long)h->n_scored, (unsigned long long)h->n_text);
        return false;
    }
    /* n_vocab < 2^24 and 4 bytes each: a row is < 2^26 bytes, so rows * row_bytes overflows only past this. */
    const uint64_t row_bytes = (uint64_t)h->n_vocab * 4u;
    if (h->n_scored > (UINT64_MAX - WG_KL_HEADER_BYTES) / row_bytes ||
        WG_KL_HEADER_BYTES + h->n_scored * row_bytes != file_size) {
        snprintf(err, err_size, "KL base file: size %llu bytes does not match its header (%llu rows of %u)",
                 (unsigned long long)file_size, (unsigned long long)h->n_scored, h->n_vocab);
        return false;
    }
    return true;
}

/* ---- writer ---- */
struct wg_kl_writer {
    FILE *f;
    char *path, *tmp;
    wg_kl_header h;
    uint64_t rows;
    uint8_t *buf; /* one row, little-endian */
    bool failed;
};

static void writer_free(wg_kl_writer *w, bool remove_tmp) {
    if (!w) return;
    if (w->f) fclose(w->f);
    if (remove_tmp && w->tmp) remove(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w->buf);
    free(w);
}

wg_kl_writer *wg_kl_writer_open(const char *path, const wg_kl_header *h, char *err, size_t err_size) {
    if (h->n_vocab == 0 || h->n_vocab > WG_KL_MAX_VOCAB) {
        snprintf(err, err_size, "vocabulary size %u out of range for a KL base file", h->n_vocab);
        return NULL;
    }
    wg_kl_writer *w = calloc(1, sizeof *w);
    size_t n = strlen(path);
    if (w) {
        w->path = malloc(n + 1);
        w->tmp = malloc(n + 5);
        w->buf = malloc((size_t)h->n_vocab * 4u);
    }
    if (!w || !w->path || !w->tmp || !w->buf) {
        snprintf(err, err_size, "out of memory");
        writer_free(w, false);
        return NULL;
    }
    memcpy(w->path, path, n + 1);
    snprintf(w->tmp, n + 5, "%s.tmp", path);
    w->h = *h;
    w->h.version = WG_KL_VERSION;
    if (!(w->f = fopen(w->tmp, "wb"))) {
        snprintf(err, err_size, "cannot write '%s': %s", w->tmp, strerror(errno));
        writer_free(w, false);
        return NULL;
    }
    uint8_t hb[WG_KL_HEADER_BYTES] = {'W', 'G', 'K', 'L'};
    put_u32(hb + 4, w->h.version);
    put_u32(hb + 8, w->h.n_vocab);
    put_u32(hb + 12, w->h.ctx);
    put_u32(hb + 16, w->h.stride);
    put_u64(hb + 24, w->h.n_text);
    put_u64(hb + 32, w->h.n_scored);
    put_u64(hb + 40, w->h.ids_hash);
    if (fwrite(hb, 1, sizeof hb, w->f) != sizeof hb) w->failed = true;
    return w;
}

bool wg_kl_writer_row(wg_kl_writer *w, const float *logprobs) {
    if (w->failed) return false;
    for (uint32_t i = 0; i < w->h.n_vocab; i++) {
        uint32_t bits;
        memcpy(&bits, &logprobs[i], 4);
        put_u32(w->buf + 4 * (size_t)i, bits);
    }
    if (fwrite(w->buf, 4, w->h.n_vocab, w->f) != w->h.n_vocab) w->failed = true;
    w->rows++;
    return !w->failed;
}

bool wg_kl_writer_close(wg_kl_writer *w, char *err, size_t err_size) {
    bool ok = !w->failed;
    if (!ok) snprintf(err, err_size, "writing '%s' failed", w->tmp);
    if (ok && w->rows != w->h.n_scored) {
        snprintf(err, err_size, "KL base file: %llu rows written, header says %llu", (unsigned long long)w->rows,
                 (unsigned long long)w->h.n_scored);
        ok = false;
    }
    int rc = fclose(w->f);
    w->f = NULL;
    if (ok && rc != 0) {
        snprintf(err, err_size, "writing '%s' failed", w->tmp);
        ok = false;
    }
    if (ok && rename(w->tmp, w->path) != 0) {
        snprintf(err, err_size, "cannot rename '%s' to '%s': %s", w->tmp, w->path, strerror(errno));
        ok = false;
    }
    writer_free(w, !ok);
    return ok;
}

void wg_kl_writer_abort(wg_kl_writer *w) { writer_free(w, true); }

/* ---- reader ---- */
struct wg_kl_reader {
    FILE *f;
    wg_kl_header h;
    uint64_t rows_read;
    uint8_t *buf;
};

wg_kl_reader *wg_kl_reader_from_stream(FILE *f, uint64_t size, const char *name, char *err, size_t err_size) {
    uint8_t hb[WG_KL_HEADER_BYTES];
    size_t got = fread(hb, 1, sizeof hb, f);
    char sub[200];
    wg_kl_header h;
    if (!wg_kl_header_decode(hb, got, size, &h, sub, sizeof sub)) {
        snprintf(err, err_size, "%s: %s", name, sub);
        fclose(f);
        return NULL;
    }
    wg_kl_reader *r = calloc(1, sizeof *r);
    uint8_t *buf = r ? malloc((size_t)h.n_vocab * 4u) : NULL;
    if (!r || !buf) {
        snprintf(err, err_size, "out of memory");
        free(r);
        fclose(f);
        return NULL;
    }
    r->f = f;
    r->h = h;
    r->buf = buf;
    return r;
}

wg_kl_reader *wg_kl_reader_open(const char *path, char *err, size_t err_size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "'%s' is not a regular file", path);
        fclose(f);
        return NULL;
    }
    return wg_kl_reader_from_stream(f, (uint64_t)st.st_size, path, err, err_size);
}

const wg_kl_header *wg_kl_reader_header(const wg_kl_reader *r) { return &r->h; }

bool wg_kl_reader_row(wg_kl_reader *r, float *out, char *err, size_t err_size) {
    if (r->rows_read >= r->h.n_scored) {
        snprintf(err, err_size, "KL base file: no row %llu (it holds %llu)", (unsigned long long)r->rows_read,
                 (unsigned long long)r->h.n_scored);
        return false;
    }
    if (fread(r->buf, 4, r->h.n_vocab, r->f) != r->h.n_vocab) {
        snprintf(err, err_size, "KL base file: cannot read row %llu", (unsigned long long)r->rows_read);
        return false;
    }
    for (uint32_t i = 0; i < r->h.n_vocab; i++) {
        uint32_t bits = get_u32(r->buf + 4 * (size_t)i);
        memcpy(&out[i], &bits, 4);
        if (!isfinite(out[i]) || out[i] > WG_KL_MAX_LOGPROB) {
            snprintf(err, err_size, "KL base file: row %llu holds %g, not a log-probability",
                     (unsigned long long)r->rows_read, (double)out[i]);
            return false;
        }
    }
    r->rows_read++;
    return true;
}

void wg_kl_reader_free(wg_kl_reader *r) {
    if (!r) return;
    fclose(r->f);
    free(r->buf);
    free(r);
}
