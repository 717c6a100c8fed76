/* The CPU backend's int8 decode path (src/quant/q8_act.h, cpu_matvec_q8.c):
 *  - x rounded to int8 blocks by llama.cpp's q8_0 rule with an f32 scale (codes,
 *    scales and sums bit for bit against tests/unit/int8_ref.h), inf/NaN shown;
 *  - every kernel level this CPU runs, for each weight type and odd block counts:
 *    bit-exact against the exact integer value where all scales are whole numbers
 *    (every f32 step is then exact), and on random scales within 1e-5 of the sum of
 *    |terms| of a float64 evaluation of the same integer block sums (only the f32
 *    sum of the scaled blocks differs between levels);
 *  - the backend's matmul: int8 by default at every level WGLLM_CPU_ISA allows (from
 *    2 tokens on through the tile of q8_gemm.h, which sums as the scalar kernel),
 *    the f32 path under WGLLM_CPU_EXACT=1, bad values of both refused. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "backend_matmul.h"
#include "check.h"
#include "int8_ref.h"
#include "quant/q8_act.h"
#include "quant/q8_x16.h"
#include "quant/quant.h"
#include "quant/types.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 32);
}
static float frand(void) { return (float)((double)rnd() / 2147483648.0 - 1.0); } /* [-1, 1) */

static const uint32_t k_types[] = {WG_TYPE_Q4_0, WG_TYPE_Q4_1, WG_TYPE_Q5_0, WG_TYPE_Q5_1, WG_TYPE_Q8_0};
enum { N_TYPES = sizeof k_types / sizeof k_types[0] };
static const int k_blocks[] = {1, 2, 3, 5, 8, 33, 96};

static bool has_min(uint32_t t) { return t == WG_TYPE_Q4_1 || t == WG_TYPE_Q5_1; }

static void put_half(uint8_t *p, float v) {
    uint16_t h = wg_f32_to_fp16(v);
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}

/* A row of nb blocks of random codes (q8_0: every byte, -128 included); scales d and
 * minimums m from dm(). */
static void random_row(uint32_t type, uint8_t *row, int nb, float (*dm)(void)) {
    const size_t bytes = wg_type_row_bytes(type, 32);
    for (size_t i = 0; i < bytes * (size_t)nb; i++) row[i] = (uint8_t)rnd();
    for (int b = 0; b < nb; b++) {
        put_half(row + (size_t)b * bytes, dm());
        if (has_min(type)) put_half(row + (size_t)b * bytes + 2, dm());
    }
}

static float small_scale(void) { return frand() * 0.05f; }
static float whole_scale(void) { return (float)((int)(rnd() % 7) - 3); } /* -3 .. 3 */

/* ---- x rounded to blocks ---- */
static void test_quantize(void) {
    enum { N = 32 * 9 };
    float x[N];
    for (int i = 0; i < N; i++) x[i] = frand() * (float)(1 + i % 5);
    for (int j = 0; j < 32; j++) x[32 + j] = 0.0f; /* an all-zero block: d 0, codes 0 */
    for (int j = 0; j < 32; j++) x[64 + j] = (float)(j - 16) * 0.25f; /* steps of 0.25: amax 4 */
    wg_q8_block q[N / 32];
    wg_q8_quantize_row(x, q, N);
    int8_t rq[N];
    float rd[N / 32];
    quantize_x_q8_ref(x, N, rq, rd);
    for (int b = 0; b < N / 32; b++) {
        CHECK_MSG(memcmp(&q[b].d, &rd[b], sizeof(float)) == 0, "block %d: d %g, reference %g", b, (double)q[b].d,
                  (double)rd[b]);
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) {
            CHECK_MSG(q[b].q[j] == rq[b * 32 + j], "block %d code %d: %d, reference %d", b, j, q[b].q[j],
                      rq[b * 32 + j]);
            sum += q[b].q[j];
        }
        CHECK(q[b].sum == sum);
    }
    CHECK(q[1].d == 0.0f && q[1].sum == 0);

    /* inf or NaN in x must not vanish: the products with that block are NaN */
    uint8_t row[34 * 2];
    random_row(WG_TYPE_Q8_0, row, 2, small_scale);
    for (int bad = 0; bad < 2; bad++) {
        float y[64];
        for (int i = 0; i < 64; i++) y[i] = frand();
        y[40] = bad ? NAN : INFINITY;
        wg_q8_block yq[2];
        wg_q8_quantize_row(y, yq, 64);
        for (int isa = 0; isa <= (int)wg_cpu_isa_best(); isa++)
            CHECK_MSG(isnan(wg_q8_dot_kernel(WG_TYPE_Q8_0, isa)(row, yq, 2)), "%s: %s in x gave a number",
                      wg_cpu_isa_name(isa), bad ? "NaN" : "inf");
    }
}

/* Exact value of a row times rounded x: dequantized weights (exact floats) times d * q,
 * in float64, with the sum of |terms| for the error bound. */
static double exact_dot(uint32_t type, const uint8_t *row, const wg_q8_block *xq, int nb, double *abs_sum) {
    float w[32];
    const size_t bytes = wg_type_row_bytes(type, 32);
    double s = 0.0, a = 0.0;
    for (int b = 0; b < nb; b++) {
        wg_dequantize_row(type, row + (size_t)b * bytes, w, 32);
        for (int j = 0; j < 32; j++) {
            const double t = (double)w[j] * (double)xq[b].d * xq[b].q[j];
            s += t;
            a += fabs(t);
        }
    }
    *abs_sum = a;
    return s;
}

static void test_kernels(void) {
    const int best = (int)wg_cpu_isa_best();
    printf("int8 kernel levels run here:");
    for (int isa = 0; isa <= best; isa++) printf(" %s", wg_cpu_isa_name(isa));
    printf("\n");
    for (int t = 0; t < N_TYPES; t++) {
        const uint32_t type = k_types[t];
        for (size_t s = 0; s < sizeof k_blocks / sizeof k_blocks[0]; s++) {
            const int nb = k_blocks[s], n = nb * 32;
            uint8_t *row = malloc(wg_type_row_bytes(type, n));
            float *x = malloc(sizeof(float) * (size_t)n);
            wg_q8_block *xq = malloc(sizeof(wg_q8_block) * (size_t)nb);
            for (int trial = 0; trial < 20; trial++) {
                /* whole numbers: x of amax 127 (d = 1, codes = x), scales -3..3 */
                for (int b = 0; b < nb; b++)
                    for (int j = 0; j < 32; j++) x[b * 32 + j] = j == (int)(rnd() % 32) ? 127.0f : (float)((int)(rnd() % 255) - 127);
                for (int b = 0; b < nb; b++) {
                    bool has127 = false;
                    for (int j = 0; j < 32; j++) has127 |= fabsf(x[b * 32 + j]) == 127.0f;
                    if (!has127) x[b * 32] = -127.0f;
                }
                wg_q8_quantize_row(x, xq, n);
                random_row(type, row, nb, whole_scale);
                double abs_sum;
                const double want = exact_dot(type, row, xq, nb, &abs_sum);
                for (int isa = 0; isa <= best; isa++) {
                    const float got = wg_q8_dot_kernel(type, isa)(row, xq, nb);
                    CHECK_MSG((double)got == want, "%s %s nb %d whole numbers: %.9g, exact %.9g", wg_type_name(type),
                              wg_cpu_isa_name(isa), nb, (double)got, want);
                }
                /* random scales and x */
                for (int i = 0; i < n; i++) x[i] = frand() * (float)(1 + (i / 32) % 4);
                wg_q8_quantize_row(x, xq, n);
                random_row(type, row, nb, small_scale);
                const double ref = exact_dot(type, row, xq, nb, &abs_sum);
                /* the minimum's terms enter as m * dx * sum */
                if (has_min(type))
                    for (int b = 0; b < nb; b++) {
                        const uint8_t *blk = row + (size_t)b * wg_type_row_bytes(type, 32);
                        abs_sum += fabs((double)wg_fp16_to_f32((uint16_t)(blk[2] | blk[3] << 8)) * xq[b].d * xq[b].sum);
                    }
                const float base = wg_q8_dot_kernel(type, WG_CPU_ISA_SCALAR)(row, xq, nb);
                for (int isa = 0; isa <= best; isa++) {
                    const float got = wg_q8_dot_kernel(type, isa)(row, xq, nb);
                    CHECK_MSG(fabs((double)got - ref) <= 1e-5 * abs_sum + 1e-30,
                              "%s %s nb %d: %.9g, float64 %.9g (|terms| %.3g)", wg_type_name(type),
                              wg_cpu_isa_name(isa), nb, (double)got, ref, abs_sum);
                    CHECK_MSG(fabs((double)got - (double)base) <= 2e-5 * abs_sum + 1e-30,
                              "%s %s nb %d: %.9g, scalar %.9g", wg_type_name(type), wg_cpu_isa_name(isa), nb,
                              (double)got, (double)base);
#if defined(__aarch64__) || defined(__wasm__) /* their levels differ from the scalar only in the integer sums */
                    CHECK_MSG(memcmp(&got, &base, sizeof got) == 0, "%s %s nb %d: %.9g, not the scalar's %.9g",
                              wg_type_name(type), wg_cpu_isa_name(isa), nb, (double)got, (double)base);
#endif
                }
            }
            free(row);
            free(x);
            free(xq);
        }
    }
}

/* The x16 layout (q4_0, q8_0 sixteen rows at a time): packing round trip, and every
 * level's kernel for 1..TOK tokens (more than one tile) against the exact sums of each row. */
static void test_x16_kernels(void) {
    enum { TOK = 19 };
    const int best = (int)wg_cpu_isa_best();
    const uint32_t types[] = {WG_TYPE_Q4_0, WG_TYPE_Q8_0};
    CHECK(!wg_x16_type(WG_TYPE_Q4_1) && !wg_x16_type(WG_TYPE_F32) && wg_x16_matmul_kernel(WG_TYPE_Q5_0, 0) == NULL);
    CHECK(wg_x16_matmul_kernel(WG_TYPE_Q4_0, best + 1) == NULL && wg_x16_matmul_kernel(WG_TYPE_Q4_0, -1) == NULL);
    for (int ti = 0; ti < 2; ti++) {
        const uint32_t type = types[ti];
        for (size_t s = 0; s < sizeof k_blocks / sizeof k_blocks[0]; s++) {
            const int nb = k_blocks[s], n = nb * 32;
            const size_t rb = wg_type_row_bytes(type, n);
            uint8_t *rows = malloc(rb * 32), *packed = malloc(rb * 32), *back = malloc(rb);
            float *x = malloc(sizeof(float) * (size_t)n);
            wg_q8_block *xq = malloc(sizeof(wg_q8_block) * (size_t)nb * TOK);
            float out[TOK * 16];
            for (int trial = 0; trial < 4; trial++) {
                const bool whole = trial % 2 == 0;
                for (int r = 0; r < 32; r++) random_row(type, rows + (size_t)r * rb, nb, whole ? whole_scale : small_scale);
                wg_x16_pack(type, rows, packed, n, 32);
                for (int r = 0; r < 32; r++) {
                    wg_x16_unpack_row(type, packed, r, n, back);
                    CHECK_MSG(memcmp(back, rows + (size_t)r * rb, rb) == 0, "%s nb %d: row %d unpacked differs",
                              wg_type_name(type), nb, r);
                }
                for (int t = 0; t < TOK; t++) {
                    for (int i = 0; i < n; i++)
                        x[i] = whole ? (float)((int)(rnd() % 255) - 127) : frand() * (float)(1 + (i / 32) % 4);
                    if (whole) /* amax 127 in every block: d = 1, codes = x */
                        for (int b = 0; b < nb; b++) x[b * 32 + (int)(rnd() % 32)] = 127.0f;
                    wg_q8_quantize_row(x, xq + (size_t)t * (size_t)nb, n);
                }
                for (int isa = 0; isa <= best; isa++) {
                    if (!wg_x16_matmul_kernel(type, isa)) { /* aarch64's levels: rows as stored */
                        CHECK(isa > 0);
                        continue;
                    }
                    for (int nt = 1; nt <= TOK; nt += nt < 10 ? 1 : 9) {
                        for (int g = 0; g < 2; g++) {
                            wg_x16_matmul_kernel(type, isa)(packed + (size_t)g * wg_x16_group_bytes(type, n), xq, nb, nt,
                                                            nb, out, 16);
                            int bad = 0;
                            for (int t = 0; t < nt; t++)
                                for (int i = 0; i < 16; i++) {
                                    double abs_sum;
                                    const double want =
                                        exact_dot(type, rows + (size_t)(16 * g + i) * rb, xq + (size_t)t * (size_t)nb, nb, &abs_sum);
                                    const double got = out[t * 16 + i];
                                    bad += whole ? got != want : fabs(got - want) > 1e-5 * abs_sum + 1e-30;
                                }
                            CHECK_MSG(bad == 0, "x16 %s %s nb %d nt %d %s: %d of %d outputs off", wg_type_name(type),
                                      wg_cpu_isa_name(isa), nb, nt, whole ? "whole numbers" : "random", bad, nt * 16);
                        }
                    }
                }
            }
            free(rows);
            free(packed);
            free(back);
            free(x);
            free(xq);
        }
    }
}

static void test_lookup(void) {
    CHECK(wg_q8_dot_kernel(WG_TYPE_F32, WG_CPU_ISA_SCALAR) == NULL);
    CHECK(wg_q8_dot_kernel(WG_TYPE_Q4_K, WG_CPU_ISA_SCALAR) == NULL);
    CHECK(wg_q8_dot_kernel(WG_TYPE_Q4_0, -1) == NULL);
    CHECK(wg_q8_dot_kernel(WG_TYPE_Q4_0, (int)wg_cpu_isa_best() + 1) == NULL);
    for (int isa = 0; isa < WG_CPU_ISA_COUNT_; isa++) CHECK(wg_cpu_isa_from_name(wg_cpu_isa_name(isa)) == isa);
#if defined(__aarch64__)
    CHECK(wg_cpu_isa_from_name("DotProd") == WG_CPU_ISA_DOTPROD && wg_cpu_isa_from_name("avx2") == -1);
#elif defined(__wasm__)
    CHECK(wg_cpu_isa_from_name("SIMD128") == WG_CPU_ISA_SIMD128 && wg_cpu_isa_from_name("avx2") == -1);
#if defined(__wasm_simd128__)
    CHECK(wg_cpu_isa_best() == WG_CPU_ISA_SIMD128);
#endif
#else
    CHECK(wg_cpu_isa_from_name("AVX2") == WG_CPU_ISA_AVX2);
#endif
    CHECK(wg_cpu_isa_from_name("avx") == -1 && wg_cpu_isa_from_name("") == -1 && wg_cpu_isa_from_name(NULL) == -1);
    CHECK(wg_cpu_isa_name(WG_CPU_ISA_COUNT_) == NULL);
}

/* What the backend's int8 matmul of n tokens gives for row r of q (m rows) and the int8
 * row xq at a level: weights of the x16 types with a multiple of 16 rows are repacked, the
 * rest dotted row by row (one token) or through the tile of q8_gemm.h, which sums as the
 * scalar kernel (test_cpu_q8_gemm.c). */
static float expected_q8(uint32_t type, int level, int n, const uint8_t *q, int64_t k, int64_t m, int64_t r,
                         const wg_q8_block *xq) {
    const size_t rb = wg_type_row_bytes(type, k);
#if defined(__wasm__)
    const bool repacked = false; /* the backend reads the file's rows there */
#else
    const bool repacked = wg_x16_matmul_kernel(type, level) != NULL;
#endif
    if (!wg_x16_type(type) || m % WG_X16_ROWS != 0 || !repacked)
        return wg_q8_dot_kernel(type, n >= 2 ? WG_CPU_ISA_SCALAR : level)(q + (size_t)r * rb, xq, k / 32);
    uint8_t *packed = malloc(WG_X16_ROWS * rb);
    float out[WG_X16_ROWS];
    wg_x16_pack(type, q + (size_t)(r / WG_X16_ROWS) * WG_X16_ROWS * rb, packed, k, WG_X16_ROWS);
    wg_x16_matmul_kernel(type, level)(packed, xq, k / 32, 1, k / 32, out, WG_X16_ROWS);
    free(packed);
    return out[r % WG_X16_ROWS];
}

/* Embedding rows of a repacked table come back as the file's rows dequantized. */
static void test_get_rows_x16(void) {
    enum { K = 32 * 5, M = 48 };
    for (int ti = 0; ti < 2; ti++) {
        const uint32_t type = ti ? WG_TYPE_Q8_0 : WG_TYPE_Q4_0;
        const size_t rb = wg_type_row_bytes(type, K);
        uint8_t q[M * 34 * 5];
        for (int r = 0; r < M; r++) random_row(type, q + (size_t)r * rb, K / 32, small_scale);
        char err[256];
        wg_backend *b = wg_backend_cpu_create(1, err, sizeof err);
        CHECK_MSG(b != NULL, "cpu backend: %s", err);
        if (!b) return;
        wg_tensor *W = b->ops->weight_create(b, type, K, M, q, err, sizeof err);
        wg_tensor *Y = b->ops->buffer_create(b, K, 3, err, sizeof err);
        /* repacked (so copied) where this CPU's level has an x16 kernel; aarch64's keep the rows,
         * and wasm32 keeps them at every level (no second copy of the model there) */
#if defined(__wasm__)
        const bool x16 = false;
#else
        const bool x16 = wg_x16_matmul_kernel(type, (int)wg_cpu_isa_best()) != NULL;
#endif
        CHECK(W && Y && b->ops->weight_copied && b->ops->weight_copied(b, W) == x16);
        const int32_t ids[3] = {0, 17, 47};
        float got[3 * K], want[K];
        if (W && Y) {
            b->ops->get_rows(b, W, ids, 3, Y);
            CHECK(b->ops->synchronize(b));
            b->ops->read_rows(b, Y, 0, 3, got);
            for (int i = 0; i < 3; i++) {
                wg_dequantize_row(type, q + (size_t)ids[i] * rb, want, K);
                CHECK_MSG(memcmp(got + i * K, want, sizeof want) == 0, "%s get_rows row %d", wg_type_name(type), ids[i]);
            }
        }
        b->ops->tensor_free(b, W);
        b->ops->tensor_free(b, Y);
        b->ops->destroy(b);
    }
}

static void test_backend(void) {
    enum { K = 32 * 7, M = 304, N = 9 };
    float x[K * N], out[M * N];
    for (int i = 0; i < K * N; i++) x[i] = frand();
    wg_q8_block xq[N][K / 32];
    for (int i = 0; i < N; i++) wg_q8_quantize_row(x + i * K, xq[i], K);
    for (int t = 0; t < N_TYPES; t++) {
        const uint32_t type = k_types[t];
        const size_t rb = wg_type_row_bytes(type, K);
        uint8_t *q = malloc(rb * M);
        for (int r = 0; r < M; r++) random_row(type, q + (size_t)r * rb, K / 32, small_scale);
        /* 9 tokens: a prompt batch, int8 for every type */
        for (int n = 1; n <= N; n = n < 3 ? n + 1 : N + (n == N)) {
            /* the default and every level: the kernel of that level on the rounded x */
            for (int isa = -1; isa <= (int)wg_cpu_isa_best(); isa++) {
                if (isa < 0) unsetenv("WGLLM_CPU_ISA");
                else setenv("WGLLM_CPU_ISA", wg_cpu_isa_name(isa), 1);
                const int level = isa < 0 ? (int)wg_cpu_isa_best() : isa;
                if (!backend_matmul(type, q, K, M, x, n, out)) continue;
                int bad = 0;
                for (int i = 0; i < n; i++)
                    for (int r = 0; r < M; r++)
                        bad += out[i * M + r] != expected_q8(type, level, n, q, K, M, r, xq[i]);
                CHECK_MSG(bad == 0, "%s n %d WGLLM_CPU_ISA=%s: %d outputs differ from the kernel", wg_type_name(type),
                          n, isa < 0 ? "(unset)" : wg_cpu_isa_name(isa), bad);
            }
            unsetenv("WGLLM_CPU_ISA");
            /* exact mode: the f32 dot of the f32 x, as before int8 existed */
            setenv("WGLLM_CPU_EXACT", "1", 1);
            if (n < N && backend_matmul(type, q, K, M, x, n, out)) {
                int bad = 0;
                for (int i = 0; i < n; i++)
                    for (int r = 0; r < M; r++)
                        bad += out[i * M + r] != wg_vec_dot_f32(type, q + (size_t)r * rb, x + i * K, K);
                CHECK_MSG(bad == 0, "%s n %d WGLLM_CPU_EXACT=1: %d outputs differ from the f32 dot", wg_type_name(type),
                          n, bad);
            }
            unsetenv("WGLLM_CPU_EXACT");
        }
        free(q);
    }
    /* bad values are refused with a message naming the variable */
    const char *bad_env[][2] = {{"WGLLM_CPU_ISA", "avx3"}, {"WGLLM_CPU_EXACT", "yes"}};
    for (int i = 0; i < 2; i++) {
        setenv(bad_env[i][0], bad_env[i][1], 1);
        char err[256] = "";
        wg_backend *b = wg_backend_cpu_create(1, err, sizeof err);
        CHECK_MSG(b == NULL && strstr(err, bad_env[i][0]) != NULL, "%s=%s: %s", bad_env[i][0], bad_env[i][1],
                  b ? "accepted" : err);
        if (b) b->ops->destroy(b);
        unsetenv(bad_env[i][0]);
    }
}

/* --kernels-only: the kernels without the backend (whose 80 backends of two threads each take
 * minutes under qemu; scripts/cross-arm64.sh runs the backend through `wgllm run` instead). */
int main(int argc, char **argv) {
    const bool kernels_only = argc > 1 && strcmp(argv[1], "--kernels-only") == 0;
    unsetenv("WGLLM_CPU_EXACT"); /* this test sets the mode itself */
    unsetenv("WGLLM_CPU_ISA");
    test_quantize();
    test_lookup();
    test_kernels();
    test_x16_kernels();
    if (!kernels_only) {
        test_get_rows_x16();
        test_backend();
    }
    CHECK_DONE();
}
