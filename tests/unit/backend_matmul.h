/* For the CPU int8 tests: one matmul of n tokens on a fresh CPU backend made under the
 * current environment (WGLLM_CPU_ISA, WGLLM_CPU_EXACT), its failure counted by check.h. */
#ifndef WGLLM_TEST_BACKEND_MATMUL_H
#define WGLLM_TEST_BACKEND_MATMUL_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/cpu/cpu_backend.h"
#include "check.h"

/* wasm32-wasi has no threads: the backend runs on the calling one there */
#if defined(__wasi__)
#define TEST_CPU_THREADS 1
#else
#define TEST_CPU_THREADS 2
#endif

static bool backend_matmul(uint32_t type, const uint8_t *q, int64_t k, int64_t m, const float *x, int n, float *out) {
    char err[256];
    wg_backend *b = wg_backend_cpu_create(TEST_CPU_THREADS, err, sizeof err);
    CHECK_MSG(b != NULL, "cpu backend: %s", err);
    if (!b) return false;
    wg_tensor *W = b->ops->weight_create(b, type, k, m, q, err, sizeof err);
    wg_tensor *X = b->ops->buffer_create(b, k, n, err, sizeof err);
    wg_tensor *Y = b->ops->buffer_create(b, m, n, err, sizeof err);
    bool ok = W && X && Y;
    if (ok) {
        b->ops->write_rows(b, X, 0, n, x);
        b->ops->matmul(b, W, X, n, Y);
        ok = b->ops->synchronize(b);
        b->ops->read_rows(b, Y, 0, n, out);
    }
    b->ops->tensor_free(b, W);
    b->ops->tensor_free(b, X);
    b->ops->tensor_free(b, Y);
    b->ops->destroy(b);
    CHECK(ok);
    return ok;
}

#endif
