/* Q4_K and Q6_K weights repacked sixteen rows at a time (src/quant/q8k_x16.h):
 *  - packing round trip, super-block by super-block, byte for byte;
 *  - every level's kernel (and the backend's matmul, which repacks Q4_K with 16k rows)
 *    against the portable Q8_K dot of each row, for 1..13 tokens, within 1e-5 of the sum
 *    of |terms| (only the f32 order of the scaled super-block sums differs);
 *  - embedding rows of a repacked table: the file's rows dequantized, bit for bit. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "check.h"
#include "quant/kquant.h"
#include "quant/q8k_act.h"
#include "quant/q8k_x16.h"
#include "quant/quant.h"
#include "quant/types.h"

static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static float frand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 40) / 8388608.0 - 1.0); /* [-1, 1) */
}

enum { ROWS = 32, TOK = 13 };

static uint32_t g_type;   /* the type under test */
static size_t g_sb_bytes; /* its super-block bytes */

/* rows of nb super-blocks, quantized from random values of varied magnitude */
static uint8_t *random_rows(int64_t nb) {
    const int64_t n = nb * 256;
    float *f = malloc(sizeof(float) * (size_t)n);
    uint8_t *q = malloc((size_t)ROWS * (size_t)nb * g_sb_bytes);
    for (int r = 0; r < ROWS; r++) {
        for (int64_t i = 0; i < n; i++) f[i] = frand() * (float)(1 + (i / 32) % 5) * (r % 3 ? 1.0f : 0.01f);
        uint8_t *dst = q + (size_t)r * (size_t)nb * g_sb_bytes;
        if (g_type == WG_TYPE_Q4_K) wg_q4_k_quantize(f, dst, nb, NULL);
        else wg_q6_k_quantize(f, dst, nb, NULL);
    }
    free(f);
    return q;
}

/* sum of |w_e * x_e| over a row, from the dequantized values */
static double abs_terms(const uint8_t *row, const wg_q8k_block *x, int64_t nb) {
    float w[256];
    double s = 0.0;
    for (int64_t b = 0; b < nb; b++) {
        wg_dequantize_row(g_type, row + (size_t)b * g_sb_bytes, w, 256);
        for (int e = 0; e < 256; e++) s += fabs((double)w[e] * x[b].d * x[b].qs[e]);
    }
    return s;
}

static void test_kernels(void) {
    const int64_t nbs[] = {1, 3};
    for (size_t k = 0; k < 2; k++) {
        const int64_t nb = nbs[k], n = nb * 256;
        const size_t rb = (size_t)nb * g_sb_bytes;
        uint8_t *q = random_rows(nb);
        uint8_t *packed = malloc(wg_q8k_x16_group_bytes(g_type, n) * (ROWS / 16));
        wg_q8k_x16_pack(g_type, q, packed, n, ROWS);
        int bad = 0;
        for (int r = 0; r < ROWS; r++)
            for (int64_t b = 0; b < nb; b++) {
                uint8_t blk[WG_Q6_K_BYTES];
                wg_q8k_x16_unpack_block(g_type, packed, r, n, b, blk);
                bad += memcmp(blk, q + (size_t)r * rb + (size_t)b * g_sb_bytes, g_sb_bytes) != 0;
            }
        CHECK_MSG(bad == 0, "nb %lld: %d super-blocks unpacked differently", (long long)nb, bad);
        float *xf = malloc(sizeof(float) * (size_t)n);
        wg_q8k_block *x = malloc(sizeof(wg_q8k_block) * (size_t)(nb * TOK));
        for (int t = 0; t < TOK; t++) {
            for (int64_t i = 0; i < n; i++) xf[i] = frand() * (float)(1 + (i / 16) % 3);
            wg_q8k_quantize_row(xf, x + t * nb, n);
        }
        wg_q8k_dot_fn ref;
        CHECK(wg_q8k_kernels(g_type, WG_CPU_ISA_SCALAR, &ref, NULL));
        int levels = 0;
        for (int isa = 0; isa <= (int)wg_cpu_isa_best(); isa++) {
            const wg_q8k_x16_fn f = wg_q8k_x16_kernel(g_type, isa);
            if (!f) continue;
            levels++;
            for (int nt = 1; nt <= TOK; nt += nt < 7 ? 1 : 6) {
                float out[TOK * ROWS];
                for (int g = 0; g < ROWS / 16; g++)
                    f(packed + (size_t)g * wg_q8k_x16_group_bytes(g_type, n), x, nb, nt, nb, out + 16 * g, ROWS);
                int off = 0;
                for (int t = 0; t < nt; t++)
                    for (int r = 0; r < ROWS; r++) {
                        const uint8_t *row = q + (size_t)r * rb;
                        const double want = ref(row, x + t * nb, nb);
                        off += fabs(out[t * ROWS + r] - want) > 1e-5 * abs_terms(row, x + t * nb, nb) + 1e-30;
                    }
                CHECK_MSG(off == 0, "%s nb %lld nt %d: %d of %d outputs off", wg_cpu_isa_name(isa), (long long)nb, nt,
                          off, nt * ROWS);
            }
        }
        CHECK(levels >= 1 && wg_q8k_x16_kernel(g_type, WG_CPU_ISA_SCALAR) != NULL);
        free(xf);
        free(x);
        free(q);
        free(packed);
    }
    CHECK(!wg_q8k_x16_type(WG_TYPE_Q5_K) && wg_q8k_x16_kernel(WG_TYPE_Q5_K, 0) == NULL);
    CHECK(wg_q8k_x16_kernel(g_type, (int)wg_cpu_isa_best() + 1) == NULL);
}

/* The backend repacks a Q4_K weight of 32 rows: matmul and get_rows as above. */
static void test_backend(void) {
    enum { NB = 2, N = 5 };
    const int64_t k = NB * 256;
    uint8_t *q = random_rows(NB);
    char err[256];
#if defined(__wasi__) /* no threads there */
    wg_backend *b = wg_backend_cpu_create(1, err, sizeof err);
#else
    wg_backend *b = wg_backend_cpu_create(2, err, sizeof err);
#endif
    CHECK_MSG(b != NULL, "%s", err);
    if (!b) return;
    wg_tensor *W = b->ops->weight_create(b, g_type, k, ROWS, q, err, sizeof err);
    wg_tensor *X = b->ops->buffer_create(b, k, N, err, sizeof err);
    wg_tensor *Y = b->ops->buffer_create(b, ROWS, N, err, sizeof err);
    wg_tensor *E = b->ops->buffer_create(b, k, 3, err, sizeof err);
    CHECK(W && X && Y && E);
#if defined(__wasm__) /* the backend reads the file's rows there, at every level */
    const bool x16 = false;
#else
    const bool x16 = wg_q8k_x16_kernel(g_type, (int)wg_cpu_isa_best()) != NULL; /* none on aarch64 */
#endif
    CHECK_MSG(b->ops->weight_copied(b, W) == x16, "%s: a weight of 32 rows is repacked where the level has a kernel",
              wg_type_name(g_type));
    float xf[N * NB * 256], y[N * ROWS], e[3 * NB * 256], want[NB * 256];
    for (int i = 0; i < N * k; i++) xf[i] = frand();
    b->ops->write_rows(b, X, 0, N, xf);
    b->ops->matmul(b, W, X, N, Y);
    const int32_t ids[3] = {0, 17, 31};
    b->ops->get_rows(b, W, ids, 3, E);
    CHECK(b->ops->synchronize(b));
    b->ops->read_rows(b, Y, 0, N, y);
    b->ops->read_rows(b, E, 0, 3, e);
    wg_q8k_dot_fn ref;
    wg_q8k_kernels(g_type, WG_CPU_ISA_SCALAR, &ref, NULL);
    int off = 0;
    for (int t = 0; t < N; t++) {
        wg_q8k_block xq[NB];
        wg_q8k_quantize_row(xf + t * k, xq, k);
        for (int r = 0; r < ROWS; r++) {
            const uint8_t *row = q + (size_t)r * NB * g_sb_bytes;
            off += fabs(y[t * ROWS + r] - ref(row, xq, NB)) > 1e-5 * abs_terms(row, xq, NB) + 1e-30;
        }
    }
    CHECK_MSG(off == 0, "backend matmul: %d of %d outputs off", off, N * ROWS);
    for (int i = 0; i < 3; i++) {
        wg_dequantize_row(g_type, q + (size_t)ids[i] * NB * g_sb_bytes, want, k);
        CHECK_MSG(memcmp(e + i * k, want, sizeof want) == 0, "get_rows row %d", ids[i]);
    }
    b->ops->tensor_free(b, W);
    b->ops->tensor_free(b, X);
    b->ops->tensor_free(b, Y);
    b->ops->tensor_free(b, E);
    b->ops->destroy(b);
    free(q);
}

int main(void) {
    unsetenv("WGLLM_CPU_EXACT");
    unsetenv("WGLLM_CPU_ISA");
    const uint32_t types[2] = {WG_TYPE_Q4_K, WG_TYPE_Q6_K};
    for (int i = 0; i < 2; i++) {
        g_type = types[i];
        g_sb_bytes = wg_type_row_bytes(g_type, 256);
        test_kernels();
        test_backend();
    }
    CHECK_DONE();
}
