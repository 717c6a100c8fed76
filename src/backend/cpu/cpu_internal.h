/* Shared between the CPU backend's files; not part of the backend seam. */
#ifndef WGLLM_BACKEND_CPU_INTERNAL_H
#define WGLLM_BACKEND_CPU_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "backend/backend.h"
#include "util/threadpool.h"

typedef struct cpu_tensor {
    void *data;
    size_t row_bytes;
    bool owned;
    bool x16; /* a weight repacked sixteen rows at a time (quant/q8_x16.h): cpu_row does not apply */
} cpu_tensor;

typedef struct cpu_ctx {
    wg_threadpool *pool;
    float *scratch; /* per-thread attention scores, grown on demand */
    size_t scratch_floats;
    float *rowbuf; /* per-thread dequantized weight rows for batched matmul */
    size_t rowbuf_floats;
    bool exact;  /* WGLLM_CPU_EXACT=1: f32 activations everywhere (llama2.c's arithmetic) */
    int isa;     /* wg_cpu_isa of the int8 kernels (WGLLM_CPU_ISA caps it) */
    struct wg_q8_block *xq; /* the int8 rows of x of the current matmul, grown on demand */
    size_t xq_blocks;
    bool failed; /* an op could not run; reported by synchronize */
    char error[128];
} cpu_ctx;

static inline void *cpu_row(const wg_tensor *t, int64_t row) {
    const cpu_tensor *ct = t->impl;
    return (char *)ct->data + (size_t)row * ct->row_bytes;
}

static inline bool cpu_is_x16(const wg_tensor *t) { return ((const cpu_tensor *)t->impl)->x16; }

int cpu_online_count(void);

/* Records an op's failure for synchronize (the first one). */
void cpu_fail(wg_backend *b, const char *msg);

void cpu_op_get_rows(wg_backend *b, const wg_tensor *table, const int32_t *ids, int n, wg_tensor *out);
void cpu_op_copy_rows(wg_backend *b, const wg_tensor *src, int64_t src_row0, int n, wg_tensor *dst,
                      int64_t dst_row0);
void cpu_op_rms_norm(wg_backend *b, const wg_tensor *x, const wg_tensor *w, float eps, int n, wg_tensor *out);
void cpu_op_matmul(wg_backend *b, const wg_tensor *w, const wg_tensor *x, int n, wg_tensor *out);
/* The matmul on int8 x (cpu_matvec_q8.c), any batch size: false, having done nothing,
 * where it does not apply (exact mode, a weight type without int8 kernel, no memory). */
bool cpu_matmul_q8(wg_backend *b, const wg_tensor *w, const wg_tensor *x, int n, wg_tensor *out);
/* Reads WGLLM_CPU_EXACT and WGLLM_CPU_ISA into c; false + message for a bad value. */
bool cpu_arith_from_env(cpu_ctx *c, char *err, size_t err_size);
void cpu_op_rope(wg_backend *b, wg_tensor *x, int n, int n_heads, int head_dim, const wg_rope *rope, int pos0,
                 int row0);
bool cpu_op_rope_rows(wg_backend *b, wg_tensor *x, int n, int n_heads, int head_dim, const wg_rope *rope,
                      const int32_t *pos);
void cpu_op_kv_store(wg_backend *b, wg_tensor *k_cache, wg_tensor *v_cache, const wg_tensor *k,
                     const wg_tensor *v, int pos0, int n, int row0);
void cpu_op_attention(wg_backend *b, const wg_tensor *q, const wg_tensor *k_cache, const wg_tensor *v_cache,
                      int pos0, int n, int n_head, int n_head_kv, int head_dim, int window, wg_tensor *out,
                      int row0);
void cpu_op_swiglu(wg_backend *b, const wg_tensor *gate, const wg_tensor *up, int n, wg_tensor *out);
void cpu_op_add(wg_backend *b, wg_tensor *x, const wg_tensor *y, int n);

#endif
