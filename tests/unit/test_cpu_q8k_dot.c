/* The CPU backend's K-quant int8 path (src/quant/q8k_act.h, cpu_matmul_q8k.c):
 *  - x rounded to Q8_K blocks: d = amax / 127, codes rounded half away from zero,
 *    bsums the sums of 16 codes, inf/NaN shown as NaN; every level's quantizer
 *    byte for byte the portable one;
 *  - every kernel level this CPU runs, for Q2_K .. Q6_K and 1..several super-blocks:
 *    bit-identical to the scalar level (the integer super-block sums are exact and
 *    the f32 steps the same), exactly the float64 value where all scales are whole
 *    numbers and the sums small, and within 1e-5 of the sum of |terms| of a float64
 *    evaluation otherwise;
 *  - the tile (rows x tokens, odd counts) bit-identical to the dot kernel;
 *  - the backend's matmul for batches 1..17 and past one tile: the kernels at every level WGLLM_CPU_ISA
 *    allows, the f32 path under WGLLM_CPU_EXACT=1. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "backend_matmul.h"
#include "check.h"
#include "quant/q8k_act.h"
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

static const uint32_t k_types[] = {WG_TYPE_Q2_K, WG_TYPE_Q3_K, WG_TYPE_Q4_K, WG_TYPE_Q5_K, WG_TYPE_Q6_K};
enum { N_TYPES = sizeof k_types / sizeof k_types[0] };
static const int k_blocks[] = {1, 2, 3, 5, 8};
enum { MAX_BLOCK_BYTES = 210 }; /* q6_k */

static void put_half(uint8_t *p, float v) {
    uint16_t h = wg_f32_to_fp16(v);
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}

/* Offsets of the f16 scale d and minimum dmin (-1: none) in a super-block. */
static void scale_offsets(uint32_t type, int *d, int *dmin) {
    switch (type) {
    case WG_TYPE_Q2_K: *d = 80, *dmin = 82; break;
    case WG_TYPE_Q3_K: *d = 108, *dmin = -1; break;
    case WG_TYPE_Q4_K:
    case WG_TYPE_Q5_K: *d = 0, *dmin = 2; break;
    default: *d = 208, *dmin = -1; break; /* q6_k */
    }
}

/* A row of nb super-blocks of random bytes (codes and sub-block scales of every
 * value), with d and dmin from dm(). small_subscales keeps the 6-bit / 8-bit
 * sub-block scales small, so that integer sums stay below 2^24 (exact in f32). */
static void random_row(uint32_t type, uint8_t *row, int nb, float (*dm)(void), bool small_subscales) {
    const size_t bytes = wg_type_row_bytes(type, 256);
    int od, om;
    scale_offsets(type, &od, &om);
    for (size_t i = 0; i < bytes * (size_t)nb; i++) row[i] = (uint8_t)rnd();
    for (int b = 0; b < nb; b++) {
        uint8_t *blk = row + (size_t)b * bytes;
        if (small_subscales) {
            if (type == WG_TYPE_Q4_K || type == WG_TYPE_Q5_K)
                for (int i = 0; i < 12; i++) blk[4 + i] &= 0x03; /* every 6-bit scale and min <= 3 */
            if (type == WG_TYPE_Q6_K)
                for (int i = 0; i < 16; i++) blk[192 + i] = (uint8_t)(int8_t)((int)(rnd() % 17) - 8);
        }
        put_half(blk + od, dm());
        if (om >= 0) put_half(blk + om, dm());
    }
}

static float small_scale(void) { return frand() * 0.05f; }
static float whole_scale(void) { return (float)((int)(rnd() % 7) - 3); } /* -3 .. 3 */

/* x of amax 127 per super-block: d = 1 and codes = x. */
static void whole_x(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = (float)((int)(rnd() % 255) - 127);
    for (int b = 0; b < n / 256; b++) x[b * 256 + (int)(rnd() % 256)] = rnd() % 2 ? 127.0f : -127.0f;
}

/* ---- x rounded to Q8_K blocks ---- */
static void test_quantize(void) {
    enum { N = 256 * 3 };
    static float x[N];
    for (int i = 0; i < N; i++) x[i] = frand() * (float)(1 + i % 5);
    for (int j = 0; j < 256; j++) x[256 + j] = 0.0f; /* an all-zero block: d 0, codes 0 */
    /* d = 1 and every other value halfway between two codes: ties go away from zero */
    for (int j = 0; j < 256; j++) x[512 + j] = (float)(j % 254) - 126.5f;
    x[512] = 127.0f;
    wg_q8k_block q[N / 256];
    wg_q8k_quantize_row(x, q, N);
    for (int b = 0; b < N / 256; b++) {
        float amax = 0.0f;
        for (int j = 0; j < 256; j++) amax = fmaxf(amax, fabsf(x[b * 256 + j]));
        const float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        CHECK_MSG(q[b].d == d, "block %d: d %g, want %g", b, (double)q[b].d, (double)d);
        int bad = 0;
        for (int j = 0; j < 256; j++) bad += q[b].qs[j] != (int)roundf(x[b * 256 + j] * id);
        CHECK_MSG(bad == 0, "block %d: %d codes differ", b, bad);
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += q[b].qs[16 * g + j];
            CHECK_MSG(q[b].bsums[g] == s, "block %d bsum %d: %d, want %d", b, g, q[b].bsums[g], s);
        }
    }
    CHECK(q[1].d == 0.0f);
    CHECK(q[2].d == 1.0f && q[2].qs[1] == -126 && q[2].qs[2] == -125 && q[2].qs[128] == 2 && q[2].qs[253] == 127);

    /* inf or NaN in x must not vanish: the products with that block are NaN */
    uint8_t row[MAX_BLOCK_BYTES * 2];
    for (int bad = 0; bad < 2; bad++) {
        static float y[512];
        for (int i = 0; i < 512; i++) y[i] = frand();
        y[300] = bad ? NAN : INFINITY;
        wg_q8k_block yq[2];
        wg_q8k_quantize_row(y, yq, 512);
        for (int t = 0; t < N_TYPES; t++) {
            random_row(k_types[t], row, 2, small_scale, false);
            for (int isa = 0; isa <= (int)wg_cpu_isa_best(); isa++) {
                wg_q8k_dot_fn dot;
                CHECK(wg_q8k_kernels(k_types[t], isa, &dot, NULL));
                CHECK_MSG(isnan(dot(row, yq, 2)), "%s %s: %s in x gave a number", wg_type_name(k_types[t]),
                          wg_cpu_isa_name(isa), bad ? "NaN" : "inf");
            }
        }
    }
}

/* Every level's quantizer gives the portable one's bytes: random magnitudes, ties at
 * every code, zeros, -0, subnormals, huge values, and blocks with inf or NaN. */
static void test_quantizers(void) {
    enum { NB = 9, N = 256 * NB };
    static float x[N];
    for (int i = 0; i < N; i++) x[i] = frand() * (float)(1 + i % 7) * (i % 11 ? 1.0f : 1e-3f);
    for (int j = 0; j < 256; j++) x[256 + j] = (float)(j % 254) - 126.5f; /* ties: d = 1 after x[256] */
    x[256] = 127.0f;
    for (int j = 0; j < 256; j++) x[512 + j] = j % 2 ? -0.0f : 0.0f;
    for (int j = 0; j < 256; j++) x[768 + j] = frand() * 1e-40f; /* subnormal */
    for (int j = 0; j < 256; j++) x[1024 + j] = frand() * 3e38f;
    x[1280 + 7] = INFINITY;
    x[1536 + 100] = -INFINITY;
    x[1536 + 200] = NAN;
    x[1792 + 255] = NAN;
    /* scaled ties: amax 254 gives d = 2, so odd integers land halfway */
    for (int j = 0; j < 256; j++) x[2048 + j] = (float)((int)(rnd() % 255) - 127) * (j ? 1.0f : 2.0f);
    static wg_q8k_block want[NB], got[NB];
    wg_q8k_quantize_row(x, want, N);
    CHECK(wg_q8k_quantizer(WG_CPU_ISA_SCALAR) == wg_q8k_quantize_row);
    CHECK(wg_q8k_quantizer((int)wg_cpu_isa_best() + 1) == NULL && wg_q8k_quantizer(-1) == NULL);
    for (int isa = 0; isa <= (int)wg_cpu_isa_best(); isa++) {
        const wg_q8k_quantize_fn f = wg_q8k_quantizer(isa);
        CHECK(f != NULL);
        if (!f) continue;
        memset(got, 0x5a, sizeof got);
        f(x, got, N);
        for (int b = 0; b < NB; b++) {
            const bool same_d = memcmp(&got[b].d, &want[b].d, sizeof(float)) == 0;
            CHECK_MSG(same_d && memcmp(got[b].qs, want[b].qs, 256) == 0 &&
                          memcmp(got[b].bsums, want[b].bsums, sizeof want[b].bsums) == 0,
                      "%s: block %d differs from the portable quantizer", wg_cpu_isa_name(isa), b);
        }
    }
    CHECK(isinf(want[5].d) && isnan(want[6].d) && isnan(want[7].d) && want[5].qs[0] == 0);
}

/* The exact value of a row times rounded x in float64 (dequantized weights are exact
 * floats), and in *abs_sum the sum of |terms| of the scale part and of the minimum
 * part taken apart (the kernels round each once per super-block). */
static double exact_dot(uint32_t type, const uint8_t *row, const wg_q8k_block *xq, int nb, double *abs_sum) {
    const size_t bytes = wg_type_row_bytes(type, 256);
    int od, om;
    scale_offsets(type, &od, &om);
    float w[256], wd[256], wm[256];
    uint8_t blk[MAX_BLOCK_BYTES];
    double s = 0.0, a = 0.0;
    for (int b = 0; b < nb; b++) {
        const uint8_t *src = row + (size_t)b * bytes;
        wg_dequantize_row(type, src, w, 256);
        memcpy(blk, src, bytes);
        if (om >= 0) put_half(blk + om, 0.0f);
        wg_dequantize_row(type, blk, wd, 256); /* the scale part alone */
        memcpy(blk, src, bytes);
        put_half(blk + od, 0.0f);
        wg_dequantize_row(type, blk, wm, 256); /* the minimum part alone (0 without one) */
        for (int j = 0; j < 256; j++) {
            const double dq = (double)xq[b].d * xq[b].qs[j];
            s += (double)w[j] * dq;
            a += fabs((double)wd[j] * dq) + fabs((double)wm[j] * dq);
        }
    }
    *abs_sum = a;
    return s;
}

static wg_q8k_dot_fn dot_of(uint32_t type, int isa) {
    wg_q8k_dot_fn dot = NULL;
    CHECK(wg_q8k_kernels(type, isa, &dot, NULL) && dot != NULL);
    return dot;
}

static void test_kernels(void) {
    const int best = (int)wg_cpu_isa_best();
    printf("Q8_K kernel levels run here:");
    for (int isa = 0; isa <= best; isa++) printf(" %s", wg_cpu_isa_name(isa));
    printf("\n");
    for (int t = 0; t < N_TYPES; t++) {
        const uint32_t type = k_types[t];
        for (size_t s = 0; s < sizeof k_blocks / sizeof k_blocks[0]; s++) {
            const int nb = k_blocks[s], n = nb * 256;
            uint8_t *row = malloc(wg_type_row_bytes(type, n));
            float *x = malloc(sizeof(float) * (size_t)n);
            wg_q8k_block *xq = malloc(sizeof(wg_q8k_block) * (size_t)nb);
            for (int trial = 0; trial < 10; trial++) {
                /* whole numbers, small sums: every f32 step exact */
                whole_x(x, n);
                wg_q8k_quantize_row(x, xq, n);
                random_row(type, row, nb, whole_scale, true);
                double abs_sum;
                const double want = exact_dot(type, row, xq, nb, &abs_sum);
                for (int isa = 0; isa <= best; isa++) {
                    const float got = dot_of(type, isa)(row, xq, nb);
                    CHECK_MSG((double)got == want, "%s %s nb %d whole numbers: %.9g, exact %.9g", wg_type_name(type),
                              wg_cpu_isa_name(isa), nb, (double)got, want);
                }
                /* random bytes (every sub-block scale), random scales and x */
                for (int i = 0; i < n; i++) x[i] = frand() * (float)(1 + (i / 256) % 4);
                wg_q8k_quantize_row(x, xq, n);
                random_row(type, row, nb, small_scale, false);
                const double ref = exact_dot(type, row, xq, nb, &abs_sum);
                const float base = dot_of(type, WG_CPU_ISA_SCALAR)(row, xq, nb);
                CHECK_MSG(fabs((double)base - ref) <= 1e-5 * abs_sum + 1e-30, "%s nb %d: %.9g, float64 %.9g (|terms| %.3g)",
                          wg_type_name(type), nb, (double)base, ref, abs_sum);
                for (int isa = 1; isa <= best; isa++) {
                    const float got = dot_of(type, isa)(row, xq, nb);
                    CHECK_MSG(memcmp(&got, &base, sizeof got) == 0, "%s %s nb %d: %.9g, scalar %.9g", wg_type_name(type),
                              wg_cpu_isa_name(isa), nb, (double)got, (double)base);
                }
            }
            free(row);
            free(x);
            free(xq);
        }
    }
}

/* Tiles of every shape up to R x T, at every level, against that level's dot. */
static void test_tile(void) {
    enum { NB = 3, ROWS = WG_Q8K_TILE_R + 1, TOKENS = WG_Q8K_TILE_T + 3 };
    static float x[TOKENS][NB * 256];
    wg_q8k_block xq[TOKENS][NB];
    for (int t = 0; t < TOKENS; t++) {
        for (int i = 0; i < NB * 256; i++) x[t][i] = frand();
        wg_q8k_quantize_row(x[t], xq[t], NB * 256);
    }
    float out[WG_Q8K_TILE_T * 7];
    const size_t ldo = 7;
    for (int ty = 0; ty < N_TYPES; ty++) {
        const uint32_t type = k_types[ty];
        const size_t rb = wg_type_row_bytes(type, NB * 256);
        uint8_t *w = malloc(rb * ROWS);
        for (int r = 0; r < ROWS; r++) random_row(type, w + (size_t)r * rb, NB, small_scale, false);
        for (int isa = 0; isa <= (int)wg_cpu_isa_best(); isa++) {
            wg_q8k_dot_fn dot;
            wg_q8k_tile_fn tile;
            CHECK(wg_q8k_kernels(type, isa, &dot, &tile));
            int bad = 0, tiles = 0;
            for (int nr = 1; nr <= WG_Q8K_TILE_R; nr++)
                for (int nt = 1; nt <= WG_Q8K_TILE_T; nt++)
                    for (int nbk = 1; nbk <= NB; nbk += NB - 1) {
                        const int r0 = ROWS - nr, t0 = TOKENS - nt; /* the last rows and tokens */
                        for (size_t i = 0; i < sizeof out / sizeof out[0]; i++) out[i] = -1.0f;
                        tile(w + (size_t)r0 * rb, rb, nr, xq[t0], NB, nt, nbk, out, ldo);
                        tiles++;
                        for (int t = 0; t < nt; t++)
                            for (int r = 0; r < nr; r++) {
                                const float want = dot(w + (size_t)(r0 + r) * rb, xq[t0 + t], nbk);
                                bad += memcmp(&out[(size_t)t * ldo + (size_t)r], &want, sizeof want) != 0;
                            }
                        /* nothing written outside the tile */
                        for (int t = 0; t < WG_Q8K_TILE_T; t++)
                            for (int r = 0; r < (int)ldo; r++)
                                if (t >= nt || r >= nr) bad += out[(size_t)t * ldo + (size_t)r] != -1.0f;
                    }
            CHECK_MSG(bad == 0, "%s %s: %d of %d tiles' values differ from the dot kernel", wg_type_name(type),
                      wg_cpu_isa_name(isa), bad, tiles);
        }
        free(w);
    }
}

static void test_lookup(void) {
    CHECK(!wg_q8k_kernels(WG_TYPE_F32, WG_CPU_ISA_SCALAR, NULL, NULL));
    CHECK(!wg_q8k_kernels(WG_TYPE_Q4_0, WG_CPU_ISA_SCALAR, NULL, NULL));
    CHECK(!wg_q8k_kernels(WG_TYPE_Q8_K, WG_CPU_ISA_SCALAR, NULL, NULL));
    CHECK(!wg_q8k_kernels(WG_TYPE_Q4_K, -1, NULL, NULL));
    CHECK(!wg_q8k_kernels(WG_TYPE_Q4_K, (int)wg_cpu_isa_best() + 1, NULL, NULL));
    for (int t = 0; t < N_TYPES; t++) CHECK(wg_q8k_kernels(k_types[t], WG_CPU_ISA_SCALAR, NULL, NULL));
}

static void test_backend(void) {
    /* rows not a multiple of the tile's, 3 super-blocks */
    enum { K = 256 * 3, M = 4 * 9 + 3, NMAX = WG_Q8K_TILE_T + 8 };
    /* NMAX: more tokens than one tile holds, not a multiple of it */
    static const int k_batches[] = {1, 2, 3, 4, 5, 8, 17, NMAX};
    static float x[K * NMAX], out[M * NMAX];
    for (int i = 0; i < K * NMAX; i++) x[i] = frand();
    static wg_q8k_block xq[NMAX][K / 256];
    for (int i = 0; i < NMAX; i++) wg_q8k_quantize_row(x + i * K, xq[i], K);
    for (int t = 0; t < N_TYPES; t++) {
        const uint32_t type = k_types[t];
        const size_t rb = wg_type_row_bytes(type, K);
        uint8_t *q = malloc(rb * M);
        for (int r = 0; r < M; r++) random_row(type, q + (size_t)r * rb, K / 256, small_scale, false);
        const wg_q8k_dot_fn ref = dot_of(type, WG_CPU_ISA_SCALAR);
        for (size_t bi = 0; bi < sizeof k_batches / sizeof k_batches[0]; bi++) {
            const int n = k_batches[bi];
            /* the default and every level: the same bits as the scalar kernel */
            for (int isa = -1; isa <= (int)wg_cpu_isa_best(); isa++) {
                if (isa < 0) unsetenv("WGLLM_CPU_ISA");
                else setenv("WGLLM_CPU_ISA", wg_cpu_isa_name(isa), 1);
                if (!backend_matmul(type, q, K, M, x, n, out)) continue;
                int bad = 0;
                for (int i = 0; i < n; i++)
                    for (int r = 0; r < M; r++) {
                        const float want = ref(q + (size_t)r * rb, xq[i], K / 256);
                        bad += memcmp(&out[i * M + r], &want, sizeof want) != 0;
                    }
                CHECK_MSG(bad == 0, "%s n %d WGLLM_CPU_ISA=%s: %d outputs differ from the kernel", wg_type_name(type), n,
                          isa < 0 ? "(unset)" : wg_cpu_isa_name(isa), bad);
            }
            unsetenv("WGLLM_CPU_ISA");
            /* exact mode: the f32 path on the f32 x */
            setenv("WGLLM_CPU_EXACT", "1", 1);
            if (backend_matmul(type, q, K, M, x, n, out)) {
                int bad = 0;
                for (int i = 0; i < n; i++)
                    for (int r = 0; r < M; r++) {
                        const float want = wg_vec_dot_f32(type, q + (size_t)r * rb, x + i * K, K);
                        /* batches of 4+ dot the expanded f32 row: the same sum up to rounding */
                        static float wr[K];
                        wg_dequantize_row(type, q + (size_t)r * rb, wr, K);
                        double abs_sum = 0.0;
                        for (int j = 0; j < K; j++) abs_sum += fabs((double)wr[j] * x[i * K + j]);
                        bad += n < 4 ? out[i * M + r] != want : fabs((double)out[i * M + r] - want) > 1e-5 * abs_sum;
                    }
                CHECK_MSG(bad == 0, "%s n %d WGLLM_CPU_EXACT=1: %d outputs differ from the f32 dot", wg_type_name(type),
                          n, bad);
            }
            unsetenv("WGLLM_CPU_EXACT");
        }
        free(q);
    }
}

int main(void) {
    unsetenv("WGLLM_CPU_EXACT"); /* this test sets the mode itself */
    unsetenv("WGLLM_CPU_ISA");
    test_quantize();
    test_quantizers();
    test_lookup();
    test_kernels();
    test_tile();
    test_backend();
    CHECK_DONE();
}
