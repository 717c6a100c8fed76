#include "convert/llama2c.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tokenizer/vocab_load.h"

/* Newer llama2.c exports (export.py --version 1/2) start with this magic ("ak42"). */
#define LLAMA2C_EXPORT_MAGIC 0x616b3432

static int32_t read_i32(const uint8_t *p) {
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

bool wg_llama2c_parse(const void *data, uint64_t file_size, wg_llama2c_layout *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    if (file_size < WG_LLAMA2C_HEADER_BYTES) {
        snprintf(err, err_size, "not a llama2.c checkpoint: %llu bytes, shorter than the %d-byte header",
                 (unsigned long long)file_size, WG_LLAMA2C_HEADER_BYTES);
        return false;
    }
    const uint8_t *p = data;
    int32_t h[7];
    for (int i = 0; i < 7; i++) h[i] = read_i32(p + 4 * i);
    if ((uint32_t)h[0] == LLAMA2C_EXPORT_MAGIC) {
        snprintf(err, err_size, "llama2.c export version %d (magic \"ak42\") is not supported; only the legacy format is",
                 (int)h[1]);
        return false;
    }
    static const char *const names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                                         "seq_len"};
    for (int i = 0; i < 7; i++) {
        int64_t v = h[i];
        if (i == 5 && v < 0) v = -v; /* negative vocab_size: unshared classifier */
        if (v <= 0 || v > WG_LLAMA_MAX_DIM) {
            snprintf(err, err_size, "not a llama2.c checkpoint: header field %s = %d is out of range 1..%d", names[i],
                     (int)h[i], WG_LLAMA_MAX_DIM);
            return false;
        }
    }
    wg_llama_shape *s = &out->shape;
    s->n_embd = h[0];
    s->n_ff = h[1];
    s->n_layer = h[2];
    s->n_head = h[3];
    s->n_head_kv = h[4];
    s->n_vocab = h[5] < 0 ? -h[5] : h[5];
    s->n_ctx = h[6];
    s->tied = h[5] > 0;
    char why[160];
    if (!wg_llama_shape_check(s, why, sizeof why)) {
        snprintf(err, err_size, "not a valid llama2.c checkpoint: %s", why);
        return false;
    }

    /* Every factor is <= 2^20, so no product below exceeds 2^62. */
    uint64_t D = (uint64_t)s->n_embd, H = (uint64_t)s->n_ff, L = (uint64_t)s->n_layer, V = (uint64_t)s->n_vocab;
    uint64_t kv = D / (uint64_t)s->n_head * (uint64_t)s->n_head_kv;
    uint64_t head_size = D / (uint64_t)s->n_head;
    uint64_t o = 0;
    out->token_embedding = o, o += V * D;
    out->rms_att = o, o += L * D;
    out->wq = o, o += L * D * D;
    out->wk = o, o += L * kv * D;
    out->wv = o, o += L * kv * D;
    out->wo = o, o += L * D * D;
    out->rms_ffn = o, o += L * D;
    out->w1 = o, o += L * H * D;
    out->w2 = o, o += L * D * H;
    out->w3 = o, o += L * H * D;
    out->rms_final = o, o += D;
    o += 2 * ((uint64_t)s->n_ctx * head_size / 2); /* freq_cis_real, freq_cis_imag */
    uint64_t shared_floats = o;
    out->wcls = s->tied ? out->token_embedding : o;
    if (!s->tied) o += V * D;
    out->n_floats = o;

    uint64_t expect = WG_LLAMA2C_HEADER_BYTES + o * 4;
    if (file_size != expect) {
        uint64_t other = WG_LLAMA2C_HEADER_BYTES + (s->tied ? shared_floats + V * D : shared_floats) * 4;
        snprintf(err, err_size,
                 "llama2.c checkpoint size mismatch: header (dim %d, hidden %d, layers %d, heads %d, kv_heads %d, "
                 "vocab %d, seq_len %d) needs %llu bytes but the file has %llu%s",
                 (int)h[0], (int)h[1], (int)h[2], (int)h[3], (int)h[4], (int)h[5], (int)h[6],
                 (unsigned long long)expect, (unsigned long long)file_size,
                 file_size == other ? (s->tied ? " (the size of an unshared-classifier file: vocab_size sign wrong?)"
                                               : " (the size of a shared-classifier file: vocab_size sign wrong?)")
                 : file_size < expect ? " (truncated?)" : "");
        return false;
    }
    return true;
}

typedef struct ckpt_source {
    const wg_llama2c_layout *lay;
    const float *w; /* first float after the header */
} ckpt_source;

static void ckpt_fill(void *ctx, const wg_llama_tensor_desc *t, int64_t row0, int64_t n_rows, float *dst) {
    const ckpt_source *src = ctx;
    const wg_llama2c_layout *lay = src->lay;
    uint64_t base = 0;
    switch (t->kind) {
    case WG_LT_TOKEN_EMBD: base = lay->token_embedding; break;
    case WG_LT_ATTN_NORM: base = lay->rms_att; break;
    case WG_LT_ATTN_Q: base = lay->wq; break;
    case WG_LT_ATTN_K: base = lay->wk; break;
    case WG_LT_ATTN_V: base = lay->wv; break;
    case WG_LT_ATTN_OUTPUT: base = lay->wo; break;
    case WG_LT_FFN_NORM: base = lay->rms_ffn; break;
    case WG_LT_FFN_GATE: base = lay->w1; break;
    case WG_LT_FFN_DOWN: base = lay->w2; break;
    case WG_LT_FFN_UP: base = lay->w3; break;
    case WG_LT_OUTPUT_NORM: base = lay->rms_final; break;
    case WG_LT_OUTPUT: base = lay->wcls; break;
    default: return; /* rope_freqs and the other families' tensors: never in a llama2.c shape */
    }
    /* llama2.c stores each matrix as (out, in) row-major: exactly GGUF's ne = {in, out}. */
    uint64_t per_tensor = (uint64_t)t->n_cols * (uint64_t)t->n_rows;
    if (t->layer >= 0) base += (uint64_t)t->layer * per_tensor;
    base += (uint64_t)row0 * (uint64_t)t->n_cols;
    memcpy(dst, src->w + base, (size_t)n_rows * (size_t)t->n_cols * sizeof(float));
}

/* "dir/stories260K.bin" -> "stories260K" */
static void stem(const char *path, char *buf, size_t size) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(buf, size, "%s", b);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
}

bool wg_llama2c_convert(const char *ckpt_path, const char *tokenizer_path, const char *out_path,
                        const wg_llama_write_opts *opts, char *err, size_t err_size) {
    char why[400];
    int fd = open(ckpt_path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, err_size, "cannot open %s: %s", ckpt_path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "%s: not a regular file", ckpt_path);
        close(fd);
        return false;
    }
    uint64_t size = (uint64_t)st.st_size;
    uint8_t header[WG_LLAMA2C_HEADER_BYTES];
    ssize_t got = size >= sizeof header ? pread(fd, header, sizeof header, 0) : 0;
    if (size >= sizeof header && got != (ssize_t)sizeof header) {
        snprintf(err, err_size, "cannot read %s: %s", ckpt_path, got < 0 ? strerror(errno) : "short read");
        close(fd);
        return false;
    }
    wg_llama2c_layout lay;
    if (!wg_llama2c_parse(header, size, &lay, why, sizeof why)) {
        snprintf(err, err_size, "%s: %s", ckpt_path, why);
        close(fd);
        return false;
    }
    if ((uint64_t)(size_t)size != size) {
        snprintf(err, err_size, "%s: too large to map on this system", ckpt_path);
        close(fd);
        return false;
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(err, err_size, "cannot map %s: %s", ckpt_path, strerror(errno));
        return false;
    }

    wg_vocab vocab;
    if (!wg_vocab_load_llama2c(tokenizer_path, &vocab, why, sizeof why)) {
        snprintf(err, err_size, "%s: %s", tokenizer_path, why);
        munmap(map, (size_t)size);
        return false;
    }
    bool ok = true;
    if (vocab.n != lay.shape.n_vocab) {
        snprintf(err, err_size, "%s has %d pieces but the checkpoint's vocab_size is %d", tokenizer_path, (int)vocab.n,
                 (int)lay.shape.n_vocab);
        ok = false;
    }
    if (ok) {
        char name[256];
        stem(ckpt_path, name, sizeof name);
        wg_llama_write_opts o = *opts;
        if (!o.name) o.name = name;
        ckpt_source src = {&lay, (const float *)((const uint8_t *)map + WG_LLAMA2C_HEADER_BYTES)};
        ok = wg_llama_write_gguf(out_path, &lay.shape, &vocab, &o, ckpt_fill, &src, err, err_size);
    }
    wg_vocab_clear(&vocab);
    munmap(map, (size_t)size);
    return ok;
}
