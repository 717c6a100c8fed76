/* CPU backend: tensors in host memory, ops parallelised over a thread pool.
 * Weights reference the caller's (mmapped) bytes when suitably aligned, so a
 * model file is never copied. */
#include "backend/cpu/cpu_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/cpu/cpu_internal.h"
#include "quant/q8_x16.h"
#include "quant/q8k_x16.h"
#include "quant/types.h"
#include "util/cpu_topology.h"

static void cpu_destroy(wg_backend *b) {
    if (!b) return;
    cpu_ctx *c = b->ctx;
    if (c) {
        wg_threadpool_free(c->pool);
        free(c->scratch);
        free(c->rowbuf);
        free(c->xq);
        free(c->xqk);
        free(c);
    }
    free(b);
}

static wg_tensor *tensor_new(uint32_t type, int64_t ne0, int64_t ne1) {
    wg_tensor *t = calloc(1, sizeof *t + sizeof(cpu_tensor));
    if (!t) return NULL;
    t->type = type;
    t->ne0 = ne0;
    t->ne1 = ne1;
    t->impl = (char *)t + sizeof *t;
    return t;
}

/* Asks the kernel to reclaim the whole pages of [p, p + n): a hint that keeps the bytes
 * (pages of a mapped file are read again if touched), for source bytes the backend has
 * copied and will not read again. */
static void release_pages(const void *p, size_t n) {
#if defined(MADV_PAGEOUT) && !defined(__wasi__) /* WASI declares madvise but has none */
    const long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    const uintptr_t begin = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    const uintptr_t end = ((uintptr_t)p + n) & ~((uintptr_t)page - 1);
    if (end > begin) madvise((void *)begin, end - begin, MADV_PAGEOUT);
#else
    (void)p;
    (void)n;
#endif
}

/* Memory for a repacked weight. Decode streams every weight once per token; with 4 KiB
 * pages that is a TLB miss per page, and under virtualisation each miss is a two-level
 * walk. Large weights are therefore 2 MiB aligned and offered to transparent huge pages
 * (the common "madvise" setting gives them only on request). */
static void *weight_alloc(size_t n) {
    n = (n + 63) & ~(size_t)63;
#if defined(MADV_HUGEPAGE) && !defined(__wasi__)
    const size_t huge = (size_t)2 << 20;
    if (n >= huge) {
        void *p = NULL;
        if (posix_memalign(&p, huge, n) != 0) return NULL;
        madvise(p, (n + 4095) & ~(size_t)4095, MADV_HUGEPAGE); /* a hint: if refused, pages stay small */
        return p;
    }
#endif
    return aligned_alloc(64, n);
}

static wg_tensor *cpu_weight_create(wg_backend *b, uint32_t type, int64_t ne0, int64_t ne1, const void *data,
                                    char *err, size_t err_size) {
    size_t row_bytes = wg_type_row_bytes(type, ne0);
    if (row_bytes == 0 || ne1 <= 0) {
        snprintf(err, err_size, "cpu backend: bad weight shape [%lld, %lld] for type %u", (long long)ne0,
                 (long long)ne1, type);
        return NULL;
    }
    wg_tensor *t = tensor_new(type, ne0, ne1);
    if (!t) {
        snprintf(err, err_size, "cpu backend: out of memory");
        return NULL;
    }
    cpu_tensor *ct = t->impl;
    ct->row_bytes = row_bytes;
    const cpu_ctx *c = b->ctx;
    /* The int8 kernels read q4_0, q8_0 (and q4_k where the level has a kernel for it) sixteen
     * rows at a time from a repacked copy (the model loader then drops the file's pages of
     * it); the exact path keeps the file's rows. */
    const bool x16 = wg_x16_type(type) && ne0 % 32 == 0 && wg_x16_matmul_kernel(type, c->isa);
    const bool x16k = wg_q8k_x16_type(type) && ne0 % 256 == 0 && wg_q8k_x16_kernel(type, c->isa);
    if (!c->exact && (x16 || x16k) && ne1 % WG_X16_ROWS == 0) {
        const size_t total = x16 ? row_bytes * (size_t)ne1
                                 : wg_q8k_x16_group_bytes(type, ne0) * (size_t)(ne1 / WG_X16_ROWS);
        void *packed = weight_alloc(total);
        if (!packed) {
            free(t);
            snprintf(err, err_size, "cpu backend: out of memory repacking a %zu-byte weight", total);
            return NULL;
        }
        /* In slices, each slice's source pages released as soon as it is packed, so that
         * memory does not hold a large tensor twice while it is repacked. */
        const int64_t slice = 256; /* rows */
        const size_t packed_rows = total / (size_t)ne1 * WG_X16_ROWS; /* bytes of 16 packed rows */
        for (int64_t r0 = 0; r0 < ne1; r0 += slice) {
            const int64_t rows = ne1 - r0 < slice ? ne1 - r0 : slice;
            const uint8_t *src = (const uint8_t *)data + (size_t)r0 * row_bytes;
            uint8_t *dst = (uint8_t *)packed + (size_t)(r0 / WG_X16_ROWS) * packed_rows;
            if (x16) wg_x16_pack(type, src, dst, ne0, rows);
            else wg_q8k_x16_pack(type, src, dst, ne0, rows);
            release_pages(src, (size_t)rows * row_bytes);
        }
        ct->data = packed;
        ct->owned = true;
        ct->x16 = true;
        return t;
    }
    /* f32 rows are read as floats: copy data that is not 4-byte aligned. */
    if (((uintptr_t)data & 3u) != 0) {
        size_t total = row_bytes * (size_t)ne1;
        void *copy = malloc(total);
        if (!copy) {
            free(t);
            snprintf(err, err_size, "cpu backend: out of memory copying a %zu-byte weight", total);
            return NULL;
        }
        memcpy(copy, data, total);
        ct->data = copy;
        ct->owned = true;
    } else {
        ct->data = (void *)data;
    }
    return t;
}

static wg_tensor *cpu_buffer_create(wg_backend *b, int64_t ne0, int64_t ne1, char *err, size_t err_size) {
    if (ne0 <= 0 || ne1 <= 0 || (uint64_t)ne0 > SIZE_MAX / sizeof(float) / (uint64_t)ne1) {
        snprintf(err, err_size, "cpu backend: bad buffer shape [%lld, %lld]", (long long)ne0, (long long)ne1);
        return NULL;
    }
    wg_tensor *t = tensor_new(WG_TYPE_F32, ne0, ne1);
    float *data = t ? calloc((size_t)ne0 * (size_t)ne1, sizeof(float)) : NULL;
    if (!data) {
        free(t);
        snprintf(err, err_size, "cpu backend: out of memory for a [%lld, %lld] buffer", (long long)ne0,
                 (long long)ne1);
        return NULL;
    }
    /* calloc only reserves large blocks: touch every page so the memory is committed now
     * (a KV cache that does not fit fails at start, not at some later token). */
    const size_t bytes = (size_t)ne0 * (size_t)ne1 * sizeof(float);
    const long page = sysconf(_SC_PAGESIZE);
    for (size_t i = 0; page > 0 && i < bytes; i += (size_t)page) ((volatile char *)data)[i] = 0;
    cpu_tensor *ct = t->impl;
    ct->data = data;
    ct->owned = true;
    ct->row_bytes = (size_t)ne0 * sizeof(float);
    return t;
}

static void cpu_tensor_free(wg_backend *b, wg_tensor *t) {
    if (!t) return;
    cpu_tensor *ct = t->impl;
    if (ct->owned) free(ct->data);
    free(t);
}

static void cpu_write_rows(wg_backend *b, wg_tensor *t, int64_t row0, int64_t n, const float *src) {
    memcpy(cpu_row(t, row0), src, (size_t)n * (size_t)t->ne0 * sizeof(float));
}

static void cpu_read_rows(wg_backend *b, const wg_tensor *t, int64_t row0, int64_t n, float *dst) {
    memcpy(dst, cpu_row(t, row0), (size_t)n * (size_t)t->ne0 * sizeof(float));
}

static bool cpu_weight_copied(const wg_backend *b, const wg_tensor *t) { return ((const cpu_tensor *)t->impl)->owned; }

static bool cpu_synchronize(wg_backend *b) {
    cpu_ctx *c = b->ctx;
    bool ok = !c->failed;
    c->failed = false;
    return ok;
}

static const char *cpu_error(const wg_backend *b) { return ((const cpu_ctx *)b->ctx)->error; }

static const wg_backend_ops k_cpu_ops = {
    .name = "cpu",
    .weights_reference_host = true,
    .host_memory = true,
    .destroy = cpu_destroy,
    .weight_create = cpu_weight_create,
    .weight_copied = cpu_weight_copied,
    .buffer_create = cpu_buffer_create,
    .tensor_free = cpu_tensor_free,
    .write_rows = cpu_write_rows,
    .read_rows = cpu_read_rows,
    .get_rows = cpu_op_get_rows,
    .copy_rows = cpu_op_copy_rows,
    .rms_norm = cpu_op_rms_norm,
    .matmul = cpu_op_matmul,
    .rope = cpu_op_rope,
    .kv_store = cpu_op_kv_store,
    .attention = cpu_op_attention,
    .swiglu = cpu_op_swiglu,
    .add = cpu_op_add,
    .synchronize = cpu_synchronize,
    .error = cpu_error,
};

wg_backend *wg_backend_cpu_create(int n_threads, char *err, size_t err_size) {
    if (n_threads <= 0) n_threads = wg_cpu_default_threads();
    wg_backend *b = calloc(1, sizeof *b);
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!b || !c) {
        free(b);
        free(c);
        snprintf(err, err_size, "cpu backend: out of memory");
        return NULL;
    }
    if (!cpu_arith_from_env(c, err, err_size)) {
        free(b);
        free(c);
        return NULL;
    }
    c->pool = wg_threadpool_create(n_threads);
    if (!c->pool) {
        free(b);
        free(c);
        snprintf(err, err_size, "cpu backend: cannot start %d threads", n_threads);
        return NULL;
    }
    b->ops = &k_cpu_ops;
    b->ctx = c;
    return b;
}
