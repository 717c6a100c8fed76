/* The CPU backend's int8 prompt matmul (src/quant/q8_gemm.h, cpu_matvec_q8.c):
 *  - x rounded at every level bit for bit as wg_q8_quantize_row does (ties, zero,
 *    tiny and inf/NaN blocks included);
 *  - every kernel level this CPU runs, for each weight type, bit for bit the scalar
 *    dot kernel for every (row, token), on random scales: row counts and token
 *    counts that do not fill a tile, block counts past one decoded stretch, and
 *    nothing written outside the output;
 *  - the backend's matmul for n in {1, 2, 3, 4, 5, 7, 8, 9, 17, 64} at every level:
 *    from 2 tokens on, each token's row is exactly what that token gives in any other
 *    batch of 2 or more (the scalar kernel); one token takes the level's dot kernel,
 *    whose integer block sums are the same (within f32 rounding of the sum). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "backend_matmul.h"
#include "check.h"
#include "quant/q8_act.h"
#include "quant/q8_gemm.h"
#include "quant/quant.h"
#include "quant/types.h"

static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 32);
}
static float frand(void) { return (float)((double)rnd() / 2147483648.0 - 1.0); } /* [-1, 1) */

static const uint32_t k_types[] = {WG_TYPE_Q4_0, WG_TYPE_Q4_1, WG_TYPE_Q5_0, WG_TYPE_Q5_1, WG_TYPE_Q8_0};
enum { N_TYPES = sizeof k_types / sizeof k_types[0] };

static bool has_min(uint32_t t) { return t == WG_TYPE_Q4_1 || t == WG_TYPE_Q5_1; }

static void put_half(uint8_t *p, float v) {
    uint16_t h = wg_f32_to_fp16(v);
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}

/* rows of nb blocks: random codes (q8_0: every byte), random scales and minimums */
static uint8_t *random_rows(uint32_t type, int rows, int nb) {
    const size_t bytes = wg_type_row_bytes(type, 32);
    uint8_t *w = malloc(bytes * (size_t)nb * (size_t)rows);
    for (size_t i = 0; i < bytes * (size_t)nb * (size_t)rows; i++) w[i] = (uint8_t)rnd();
    for (int b = 0; b < nb * rows; b++) {
        put_half(w + (size_t)b * bytes, frand() * 0.05f);
        if (has_min(type)) put_half(w + (size_t)b * bytes + 2, frand() * 0.05f);
    }
    return w;
}

static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ---- x rounded to blocks ---- */
static void test_quantize(void) {
    enum { NB = 12, N = 32 * NB };
    float x[N];
    for (int trial = 0; trial < 50; trial++) {
        for (int i = 0; i < N; i++) x[i] = frand() * (float)(1 + i % 7) * (trial % 2 ? 1e3f : 1e-2f);
        for (int j = 0; j < 32; j++) x[32 + j] = 0.0f;                       /* all zero: d 0 */
        for (int j = 0; j < 32; j++) x[64 + j] = (float)(j - 16) + 0.5f;     /* exact ties, amax 16.5 */
        for (int j = 0; j < 32; j++) x[96 + j] = j == 0 ? 127.0f : (float)(j - 16) + 0.5f; /* d = 1: ties */
        for (int j = 0; j < 32; j++) x[128 + j] = (float)(j - 16) * 1e-44f; /* subnormal: 1 / d overflows */
        x[160 + trial % 32] = trial % 3 ? INFINITY : NAN;                    /* inf or NaN */
        x[192 + trial % 32] = -INFINITY;
        x[224 + trial % 32] = -0.0f;
        wg_q8_block ref[NB], got[NB];
        wg_q8_quantize_row(x, ref, N);
        for (int isa = 0; isa <= (int)wg_cpu_isa_best(); isa++) {
            memset(got, 0x55, sizeof got);
            wg_q8_quantize_kernel(isa)(x, got, N);
            for (int b = 0; b < NB; b++)
                CHECK_MSG(memcmp(&got[b], &ref[b], sizeof ref[b]) == 0,
                          "%s trial %d block %d: d %g sum %d, wg_q8_quantize_row d %g sum %d", wg_cpu_isa_name(isa),
                          trial, b, (double)got[b].d, got[b].sum, (double)ref[b].d, ref[b].sum);
        }
    }
    CHECK(wg_q8_quantize_kernel(-1) == NULL && wg_q8_quantize_kernel((int)wg_cpu_isa_best() + 1) == NULL);
}

/* ---- the kernels against the scalar dot, (row, token) by (row, token) ---- */
static void test_kernels(void) {
    /* tiles of 8 or 16 rows by 4, 6 or 8 tokens: full, partial and a partial last one */
    static const int k_rows[] = {1, 7, 8, 9, 12, 17, 23, 40};
    static const int k_n[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 17};
    static const int k_nb[] = {1, 2, 3, 33, 70};
    enum { PAD = 3 }; /* out has ldo = rows + PAD: the gap must stay untouched */
    const float guard = -12345.5f;
    for (int t = 0; t < N_TYPES; t++) {
        const uint32_t type = k_types[t];
        const wg_q8_dot_fn ref = wg_q8_dot_kernel(type, WG_CPU_ISA_SCALAR);
        for (size_t a = 0; a < sizeof k_nb / sizeof k_nb[0]; a++) {
            const int nb = k_nb[a];
            const size_t rb = wg_type_row_bytes(type, (int64_t)nb * 32);
            const int nmax = 17;
            float *x = malloc(sizeof(float) * (size_t)nb * 32 * nmax);
            wg_q8_block *xq = malloc(sizeof(wg_q8_block) * (size_t)nb * nmax);
            for (int i = 0; i < nb * 32 * nmax; i++) x[i] = frand() * (float)(1 + (i / 32) % 5);
            for (int i = 0; i < nmax; i++) wg_q8_quantize_row(x + (size_t)i * nb * 32, xq + (size_t)i * nb, nb * 32);
            for (size_t rr = 0; rr < sizeof k_rows / sizeof k_rows[0]; rr++) {
                const int rows = k_rows[rr], ldo = rows + PAD;
                uint8_t *w = random_rows(type, rows, nb);
                float *want = malloc(sizeof(float) * (size_t)rows * nmax);
                for (int i = 0; i < nmax; i++)
                    for (int r = 0; r < rows; r++)
                        want[i * rows + r] = ref(w + (size_t)r * rb, xq + (size_t)i * nb, nb);
                float *out = malloc(sizeof(float) * (size_t)ldo * nmax);
                for (size_t nn = 0; nn < sizeof k_n / sizeof k_n[0]; nn++) {
                    const int n = k_n[nn];
                    for (int isa = 0; isa <= (int)wg_cpu_isa_best(); isa++) {
                        for (int i = 0; i < ldo * nmax; i++) out[i] = guard;
                        wg_q8_gemm_kernel(type, isa)(w, rb, rows, xq, nb, n, out, ldo);
                        int bad = 0, spill = 0;
                        for (int i = 0; i < nmax; i++)
                            for (int r = 0; r < ldo; r++) {
                                const float o = out[i * ldo + r];
                                if (i < n && r < rows) bad += !same_bits(o, want[i * rows + r]);
                                else spill += !same_bits(o, guard);
                            }
                        CHECK_MSG(bad == 0 && spill == 0, "%s %s rows %d n %d nb %d: %d outputs differ from the scalar dot, %d written outside",
                                  wg_type_name(type), wg_cpu_isa_name(isa), rows, n, nb, bad, spill);
                    }
                }
                free(out);
                free(want);
                free(w);
            }
            free(x);
            free(xq);
        }
    }
    CHECK(wg_q8_gemm_kernel(WG_TYPE_F32, WG_CPU_ISA_SCALAR) == NULL);
    CHECK(wg_q8_gemm_kernel(WG_TYPE_Q4_K, WG_CPU_ISA_SCALAR) == NULL);
    CHECK(wg_q8_gemm_kernel(WG_TYPE_Q4_0, -1) == NULL);
    CHECK(wg_q8_gemm_kernel(WG_TYPE_Q4_0, (int)wg_cpu_isa_best() + 1) == NULL);
}

static void test_backend(void) {
    static const int k_n[] = {1, 2, 3, 4, 5, 7, 8, 9, 17, 64};
    enum { K = 32 * 9, M = 203, NMAX = 64 };
    float *x = malloc(sizeof(float) * K * NMAX), *out = malloc(sizeof(float) * M * NMAX);
    wg_q8_block *xq = malloc(sizeof(wg_q8_block) * (K / 32) * NMAX);
    for (int i = 0; i < K * NMAX; i++) x[i] = frand() * 2.0f;
    for (int i = 0; i < NMAX; i++) wg_q8_quantize_row(x + i * K, xq + i * (K / 32), K);
    for (int t = 0; t < N_TYPES; t++) {
        const uint32_t type = k_types[t];
        const size_t rb = wg_type_row_bytes(type, K);
        uint8_t *q = random_rows(type, M, K / 32);
        for (size_t nn = 0; nn < sizeof k_n / sizeof k_n[0]; nn++) {
            const int n = k_n[nn];
            for (int isa = 0; isa <= (int)wg_cpu_isa_best(); isa++) {
                setenv("WGLLM_CPU_ISA", wg_cpu_isa_name(isa), 1);
                if (!backend_matmul(type, q, K, M, x, n, out)) continue;
                int bad = 0;
                double worst = 0.0, top = 0.0;
                for (int i = 0; i < n; i++)
                    for (int r = 0; r < M; r++) {
                        const uint8_t *row = q + (size_t)r * rb;
                        const float o = out[i * M + r];
                        if (n >= 2) { /* the tile: the scalar kernel's steps, whatever the batch */
                            bad += !same_bits(o, wg_q8_dot_kernel(type, WG_CPU_ISA_SCALAR)(row, xq + i * (K / 32), K / 32));
                        } else {
                            bad += !same_bits(o, wg_q8_dot_kernel(type, isa)(row, xq, K / 32));
                            /* one token alone vs in a batch: same integer sums, f32 order aside */
                            const float s = wg_q8_dot_kernel(type, WG_CPU_ISA_SCALAR)(row, xq, K / 32);
                            worst = fmax(worst, fabs((double)o - (double)s));
                            top = fmax(top, fabs((double)s));
                        }
                    }
                CHECK_MSG(bad == 0, "%s n %d WGLLM_CPU_ISA=%s: %d outputs differ from the kernel", wg_type_name(type), n,
                          wg_cpu_isa_name(isa), bad);
                CHECK_MSG(worst <= 1e-5 * top, "%s WGLLM_CPU_ISA=%s: one token differs from a batch's row by %.3g of %.3g",
                          wg_type_name(type), wg_cpu_isa_name(isa), worst, top);
            }
            unsetenv("WGLLM_CPU_ISA");
            /* exact mode: the f32 dot of the f32 x */
            setenv("WGLLM_CPU_EXACT", "1", 1);
            if (backend_matmul(type, q, K, M, x, n, out)) {
                double worst = 0.0, top = 0.0;
                for (int i = 0; i < n; i++)
                    for (int r = 0; r < M; r++) {
                        const float want = wg_vec_dot_f32(type, q + (size_t)r * rb, x + i * K, K);
                        worst = fmax(worst, fabs((double)out[i * M + r] - (double)want));
                        top = fmax(top, fabs((double)want));
                    }
                /* the f32 batch path (4+ tokens) sums dequantized rows in its own order */
                CHECK_MSG(worst <= 1e-5 * top, "%s n %d WGLLM_CPU_EXACT=1: %.3g of %.3g from the f32 dot",
                          wg_type_name(type), n, worst, top);
            }
            unsetenv("WGLLM_CPU_EXACT");
        }
        free(q);
    }
    free(x);
    free(out);
    free(xq);
}

int main(void) {
    unsetenv("WGLLM_CPU_EXACT"); /* this test sets the mode itself */
    unsetenv("WGLLM_CPU_ISA");
    test_quantize();
    test_kernels();
    test_backend();
    CHECK_DONE();
}
