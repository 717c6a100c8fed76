/* The quantize driver: plans every tensor's type, copies the metadata (with a
 * new general.file_type), and streams the tensors to the GGUF writer, converting
 * the rows of each one on a thread pool (dequantize to f32, quantize with the
 * tensor's importance weights when an imatrix has them). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/threadpool.h"
#include "gguf/gguf.h"
#include "quant/quant.h"
#include "quantize/quantize.h"

/* llama.cpp's GGML_QNT_VERSION, written with every quantized file. */
#define QUANTIZATION_VERSION 2u

typedef struct convert_job {
    const uint8_t *src;
    uint8_t *dst;
    size_t src_row_bytes, dst_row_bytes;
    int64_t ne0;
    uint32_t src_type, dst_type;
    const float *qw; /* importance per column, or NULL */
    float *rowbuf;   /* ne0 floats per thread */
    int failed;      /* set (racy but only ever 0 -> 1) when a row cannot be converted */
} convert_job;

static void convert_rows(void *arg, int64_t r0, int64_t r1, int tid) {
    convert_job *j = arg;
    float *buf = j->rowbuf + (size_t)tid * (size_t)j->ne0;
    for (int64_t r = r0; r < r1; r++) {
        const void *src = j->src + (size_t)r * j->src_row_bytes;
        void *dst = j->dst + (size_t)r * j->dst_row_bytes;
        if (!wg_dequantize_row(j->src_type, src, buf, j->ne0) ||
            !wg_quantize_row_weighted(j->dst_type, buf, dst, j->ne0, j->qw))
            __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
    }
}

/* Architecture-prefixed hyper-parameters the type choice needs. */
static void plan_model(const gguf_file *f, wg_qplan *p) {
    char arch[64] = "llama";
    const char *s;
    size_t n;
    if (gguf_get_str(f, "general.architecture", &s, &n) && n > 0 && n < sizeof arch) {
        memcpy(arch, s, n);
        arch[n] = 0;
    }
    char key[128];
    uint32_t v = 0, heads = 0, kv_heads = 0;
    snprintf(key, sizeof key, "%s.block_count", arch);
    if (gguf_get_u32(f, key, &v)) p->n_layer = (int)(v > 1000000 ? 1000000 : v);
    snprintf(key, sizeof key, "%s.attention.head_count", arch);
    gguf_get_u32(f, key, &heads);
    snprintf(key, sizeof key, "%s.attention.head_count_kv", arch);
    if (!gguf_get_u32(f, key, &kv_heads)) kv_heads = heads;
    p->n_gqa = kv_heads > 0 ? (int)(heads / kv_heads) : 1;
    p->is_70b = strcmp(arch, "llama") == 0 && p->n_layer == 80;
    p->has_output = gguf_find_tensor(f, "output.weight") != NULL;
    p->n_attn_v = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++)
        if (strstr(gguf_tensor(f, i)->name, "attn_v.weight")) p->n_attn_v++;
}

static void human_size(uint64_t b, char *out, size_t n) {
    if (b >= (1ull << 30))
        snprintf(out, n, "%.2f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(out, n, "%.2f MiB", (double)b / (double)(1ull << 20));
    else
        snprintf(out, n, "%.2f KiB", (double)b / 1024.0);
}

typedef struct session {
    gguf_file *in;
    wg_imatrix *im;
    gguf_writer *w;
    wg_threadpool *pool;
    uint32_t *types;
    float *rowbuf, *qw;
    uint8_t *out;
} session;

static void session_free(session *s) {
    gguf_writer_free(s->w);
    wg_threadpool_free(s->pool);
    wg_imatrix_free(s->im);
    gguf_close(s->in);
    free(s->types);
    free(s->rowbuf);
    free(s->qw);
    free(s->out);
}

static bool fail(session *s, char *err, size_t err_size, const char *msg) {
    if (msg != err) snprintf(err, err_size, "%s", msg);
    session_free(s);
    return false;
}

static int64_t rows_of(const gguf_tensor_info *t) {
    int64_t r = 1;
    for (uint32_t d = 1; d < t->n_dims; d++) r *= t->ne[d];
    return r;
}

/* Converts tensor t to type `to` into s->out (grown as needed); false + err. */
static bool convert_tensor(session *s, const gguf_tensor_info *t, uint32_t to, const float *qw, size_t *out_bytes,
                           char *err, size_t err_size) {
    const int64_t rows = rows_of(t);
    const size_t src_rb = wg_type_row_bytes(t->type, t->ne[0]), dst_rb = wg_type_row_bytes(to, t->ne[0]);
    if (src_rb == 0 || dst_rb == 0) {
        snprintf(err, err_size, "tensor '%.200s': bad row length %lld", t->name, (long long)t->ne[0]);
        return false;
    }
    *out_bytes = dst_rb * (size_t)rows;
    free(s->out);
    s->out = malloc(*out_bytes ? *out_bytes : 1);
    if (!s->out) {
        snprintf(err, err_size, "out of memory for tensor '%.200s' (%zu bytes)", t->name, *out_bytes);
        return false;
    }
    convert_job j = {t->data, s->out, src_rb, dst_rb, t->ne[0], t->type, to, qw, s->rowbuf, 0};
    /* chunks of ~64 KiB of input rows keep every thread busy without much overhead */
    int64_t grain = (int64_t)(65536 / (src_rb + 1)) + 1;
    wg_threadpool_run(s->pool, convert_rows, &j, rows, grain);
    if (j.failed) {
        snprintf(err, err_size, "tensor '%.200s': cannot convert %s to %s", t->name, wg_type_name(t->type), wg_type_name(to));
        return false;
    }
    return true;
}

bool wg_quantize_file(const char *in, const char *out, const wg_ftype *ft, const wg_quantize_opts *o, char *err,
                      size_t err_size) {
    session s = {0};
    char sub[400];
    if (!ft) return fail(&s, err, err_size, "no target type");
    s.in = gguf_open(in, sub, sizeof sub);
    if (!s.in) {
        snprintf(err, err_size, "%.200s: %.190s", in, sub);
        return fail(&s, err, err_size, err);
    }
    if (o->imatrix_path && !(s.im = wg_imatrix_open(o->imatrix_path, err, err_size))) return fail(&s, err, err_size, err);

    wg_qplan plan = {.ft = ft, .pure = o->pure, .has_imatrix = s.im != NULL, .n_layer = 0, .n_gqa = 1};
    plan_model(s.in, &plan);
    const int64_t nt = gguf_n_tensors(s.in);
    s.types = calloc((size_t)(nt > 0 ? nt : 1), sizeof *s.types);
    if (!s.types) return fail(&s, err, err_size, "out of memory");
    int64_t max_ne0 = 1;
    for (int64_t i = 0; i < nt; i++) {
        const gguf_tensor_info *t = gguf_tensor(s.in, i);
        s.types[i] = wg_qplan_quantizable(t->name, t->n_dims) ? wg_qplan_tensor_type(&plan, t->name, t->ne[0], NULL)
                                                               : t->type;
        if (s.types[i] != t->type && !wg_type_supported(t->type)) {
            const char *tn = wg_type_name(t->type);
            snprintf(err, err_size, "tensor '%.200s' has type %s (id %u), which cannot be converted", t->name,
                     tn ? tn : "unknown", t->type);
            return fail(&s, err, err_size, err);
        }
        if (t->ne[0] > max_ne0) max_ne0 = t->ne[0];
    }

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = o->n_threads > 0 ? o->n_threads : (cores > 0 ? (int)(cores > 256 ? 256 : cores) : 1);
    s.pool = wg_threadpool_create(threads);
    s.rowbuf = malloc(sizeof(float) * (size_t)max_ne0 * (size_t)threads);
    s.qw = malloc(sizeof(float) * (size_t)max_ne0);
    s.w = gguf_writer_create();
    if (!s.pool || !s.rowbuf || !s.qw || !s.w) return fail(&s, err, err_size, "out of memory");

    bool ok = true;
    for (int64_t i = 0; ok && i < gguf_n_kv(s.in); i++) {
        const char *k = gguf_kv_key(s.in, i);
        if (!strcmp(k, "general.file_type") || !strcmp(k, "general.quantization_version")) continue;
        ok = gguf_writer_copy_kv(s.w, s.in, i);
    }
    ok = ok && gguf_writer_set_u32(s.w, "general.file_type", (uint32_t)ft->ftype);
    if (ft->base_type != WG_TYPE_F32 && ft->base_type != WG_TYPE_F16 && ft->base_type != WG_TYPE_BF16)
        ok = ok && gguf_writer_set_u32(s.w, "general.quantization_version", QUANTIZATION_VERSION);
    for (int64_t i = 0; ok && i < nt; i++) {
        const gguf_tensor_info *t = gguf_tensor(s.in, i);
        ok = gguf_writer_add_tensor(s.w, t->name, s.types[i], t->n_dims, t->ne);
    }
    ok = ok && gguf_writer_begin(s.w, out);
    if (!ok) {
        snprintf(err, err_size, "%.200s: %.250s", out, gguf_writer_error(s.w));
        return fail(&s, err, err_size, err);
    }

    uint64_t total_in = 0, total_out = 0;
    for (int64_t i = 0; i < nt; i++) {
        const gguf_tensor_info *t = gguf_tensor(s.in, i);
        const uint32_t to = s.types[i];
        const void *data = t->data;
        size_t bytes = (size_t)t->nbytes;
        const char *note = "";
        if (to != t->type) {
            const float *qw = NULL;
            if (s.im && to != WG_TYPE_F32 && to != WG_TYPE_F16 && to != WG_TYPE_BF16) {
                const int got = wg_imatrix_get(s.im, t->name, t->ne[0], s.qw, err, err_size);
                if (got < 0) return fail(&s, err, err_size, err);
                qw = got ? s.qw : NULL;
                note = got ? "  (imatrix)" : "  (no imatrix entry)";
            }
            if (!convert_tensor(&s, t, to, qw, &bytes, err, err_size)) return fail(&s, err, err_size, err);
            data = s.out;
        }
        if (!gguf_writer_write_tensor(s.w, data, bytes)) {
            snprintf(err, err_size, "%.200s: %.250s", out, gguf_writer_error(s.w));
            return fail(&s, err, err_size, err);
        }
        total_in += t->nbytes;
        total_out += bytes;
        if (o->progress) {
            char a[32], b[32], shape[64];
            human_size(t->nbytes, a, sizeof a);
            human_size(bytes, b, sizeof b);
            if (t->n_dims >= 2)
                snprintf(shape, sizeof shape, "[%lld, %lld]", (long long)t->ne[0], (long long)rows_of(t));
            else
                snprintf(shape, sizeof shape, "[%lld]", (long long)t->ne[0]);
            fprintf(o->progress, "[%4lld/%4lld] %-32s %-5s -> %-5s %-14s %10s -> %10s%s\n", (long long)i + 1,
                    (long long)nt, t->name, wg_type_name(t->type), wg_type_name(to), shape, a, b, note);
        }
    }
    if (!gguf_writer_finish(s.w)) {
        snprintf(err, err_size, "%.200s: %.250s", out, gguf_writer_error(s.w));
        return fail(&s, err, err_size, err);
    }
    if (o->progress) {
        char a[32], b[32];
        human_size(total_in, a, sizeof a);
        human_size(total_out, b, sizeof b);
        fprintf(o->progress, "wrote %s (%s): %s -> %s\n", out, ft->name, a, b);
    }
    session_free(&s);
    return true;
}
