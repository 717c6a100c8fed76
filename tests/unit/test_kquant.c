/* Tests of the K-quant formats (src/quant/kquant_*.c): hand-built blocks with
 * known scales, mins and codes against exact values; quantize -> dequantize
 * error bounds on random rows; importance weights; dot products against a
 * double-precision dot of the dequantized row; degenerate input. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "quant/kquant.h"
#include "quant/quant.h"

static uint32_t rng_next(uint32_t *s) {
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* Uniform in [-1, 1). */
static float rng_unit(uint32_t *s) { return (float)((double)(rng_next(s) >> 8) / 8388608.0 - 1.0); }

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void check_block(uint32_t type, const uint8_t *bytes, const float *want) {
    float got[256];
    CHECK(wg_dequantize_row(type, bytes, got, 256));
    int bad = 0;
    for (int i = 0; i < 256; i++)
        if (got[i] != want[i] && bad++ < 4)
            fprintf(stderr, "%s element %d: got %.9g want %.9g\n", wg_type_name(type), i, (double)got[i],
                    (double)want[i]);
    CHECK_MSG(bad == 0, "%s: %d elements differ", wg_type_name(type), bad);
}

/* ---- (1) hand-built blocks ----
 * Each block is packed following the byte layout of ggml-common.h as written out
 * in llama.cpp's quantizers (loops over 128/64-element halves), and the
 * expected values come from the scales and codes chosen here, with a few
 * elements also spelled out as literal numbers. Scales are powers of two or
 * small integers so every value is exact. */

static void test_hand_q2_k(void) {
    uint8_t b[84] = {0};
    float want[256];
    /* group g: scale (g % 15) + 1, min g % 4; d = 0.5 (0x3800), dmin = 0.25 (0x3400) */
    for (int g = 0; g < 16; g++) b[g] = (uint8_t)(((g % 15) + 1) | ((g % 4) << 4));
    put16(b + 80, 0x3800);
    put16(b + 82, 0x3400);
    /* code of element e: (e / 7) % 4; qs[32h + l] holds elements 128h + l + 32k at bits 2k */
    uint8_t L[256];
    for (int e = 0; e < 256; e++) L[e] = (uint8_t)((e / 7) % 4);
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++)
            b[16 + 32 * h + l] = (uint8_t)(L[128 * h + l] | (L[128 * h + l + 32] << 2) | (L[128 * h + l + 64] << 4) |
                                           (L[128 * h + l + 96] << 6));
    for (int e = 0; e < 256; e++) {
        const int g = e / 16;
        want[e] = 0.5f * (float)((g % 15) + 1) * (float)L[e] - 0.25f * (float)(g % 4);
    }
    /* e = 0: code 0, group 0 (scale 1, min 0) -> 0;  e = 37: code 1, group 2 (scale 3, min 2) -> 1.5 - 0.5;
     * e = 255: code (36 % 4 = 0), group 15 (scale 1, min 3) -> -0.75 */
    CHECK(want[0] == 0.0f && want[37] == 1.0f && want[255] == -0.75f);
    check_block(WG_TYPE_Q2_K, b, want);
}

static void test_hand_q3_k(void) {
    uint8_t b[110] = {0};
    float want[256];
    /* 6-bit scales s_g = g * 4 - 30 + 32 stored: low 4 bits in nibbles of bytes 0..7,
     * high 2 bits in bytes 8..11 (group g: byte 8 + g % 4, bits 2 * (g / 4)) */
    int sc[16];
    for (int g = 0; g < 16; g++) {
        sc[g] = g * 4 - 30;
        const int l = sc[g] + 32;
        if (g < 8)
            b[96 + g] = (uint8_t)(l & 0xF);
        else
            b[96 + g - 8] |= (uint8_t)((l & 0xF) << 4);
        b[96 + 8 + g % 4] |= (uint8_t)((l >> 4) << (2 * (g / 4)));
    }
    put16(b + 108, 0x3400); /* d = 0.25 */
    /* signed code of element e in -4..3: ((e * 5) % 8) - 4; low 2 bits in qs as q2_k,
     * the 3rd bit (set when code >= 0) in hmask[e % 32] bit e / 32 */
    int q[256];
    uint8_t low[256];
    for (int e = 0; e < 256; e++) {
        q[e] = (e * 5) % 8 - 4;
        const int u = q[e] + 4;
        low[e] = (uint8_t)(u & 3);
        if (u > 3) b[e % 32] |= (uint8_t)(1 << (e / 32));
    }
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++)
            b[32 + 32 * h + l] = (uint8_t)(low[128 * h + l] | (low[128 * h + l + 32] << 2) |
                                           (low[128 * h + l + 64] << 4) | (low[128 * h + l + 96] << 6));
    for (int e = 0; e < 256; e++) want[e] = 0.25f * (float)sc[e / 16] * (float)q[e];
    /* e = 0: code -4, scale -30 -> 30;  e = 255: code 1275 % 8 - 4 = -1, scale 30 -> -7.5 */
    CHECK(want[0] == 30.0f && want[255] == -7.5f);
    check_block(WG_TYPE_Q3_K, b, want);
}

/* Packs 8 scales and 8 mins (6 bits) into q4_k/q5_k's 12 bytes. */
static void pack_k4_scales(uint8_t *s, const int *sc, const int *mn) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
    }
}

static void test_hand_q45_k(int five) {
    uint8_t b[176] = {0};
    float want[256];
    int sc[8], mn[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = 63 - 7 * j; /* 63, 56, ..., 14: high bits exercised */
        mn[j] = 9 * j;      /* 0, 9, ..., 63 */
    }
    put16(b, 0x2c00);     /* d = 1/16 */
    put16(b + 2, 0x3000); /* dmin = 1/8 */
    pack_k4_scales(b + 4, sc, mn);
    const int nmax = five ? 31 : 15;
    int q[256];
    for (int e = 0; e < 256; e++) q[e] = (e * 11 + 3) % (nmax + 1);
    uint8_t *qs = b + (five ? 48 : 16), *qh = b + 16;
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < 32; l++) qs[32 * k + l] = (uint8_t)((q[64 * k + l] & 15) | ((q[64 * k + 32 + l] & 15) << 4));
    if (five)
        for (int e = 0; e < 256; e++)
            if (q[e] & 16) qh[e % 32] |= (uint8_t)(1 << (e / 32));
    for (int e = 0; e < 256; e++) {
        const int j = e / 32;
        want[e] = 0.0625f * (float)sc[j] * (float)q[e] - 0.125f * (float)mn[j];
    }
    /* e = 0: code 3, scale 63, min 0 -> 189/16; e = 255 (group 7: scale 14, min 63):
     * q4: (2808 % 16 = 8) -> 7 - 7.875 = -0.875; q5: (2808 % 32 = 24) -> 21 - 7.875 */
    CHECK(want[0] == 11.8125f);
    CHECK(want[255] == (five ? 13.125f : -0.875f));
    check_block(five ? WG_TYPE_Q5_K : WG_TYPE_Q4_K, b, want);
}

static void test_hand_q6_k(void) {
    uint8_t b[210] = {0};
    float want[256];
    int8_t sc[16];
    for (int g = 0; g < 16; g++) sc[g] = (int8_t)(g * 17 - 128); /* -128 .. 127 */
    memcpy(b + 192, sc, 16);
    put16(b + 208, 0x2400); /* d = 1/64 */
    int u[256];
    for (int e = 0; e < 256; e++) u[e] = (e * 13 + 5) % 64;
    for (int h = 0; h < 2; h++) {
        uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
        const int *L = u + 128 * h;
        for (int l = 0; l < 32; l++) {
            ql[l] = (uint8_t)((L[l] & 15) | ((L[l + 64] & 15) << 4));
            ql[l + 32] = (uint8_t)((L[l + 32] & 15) | ((L[l + 96] & 15) << 4));
            qh[l] = (uint8_t)((L[l] >> 4) | ((L[l + 32] >> 4) << 2) | ((L[l + 64] >> 4) << 4) | ((L[l + 96] >> 4) << 6));
        }
    }
    for (int e = 0; e < 256; e++) want[e] = 0.015625f * (float)sc[e / 16] * (float)(u[e] - 32);
    /* e = 0: code 5 - 32 = -27, scale -128 -> 54;  e = 255: (3320 % 64 = 56) - 32 = 24, scale 127 -> 47.625 */
    CHECK(want[0] == 54.0f && want[255] == 47.625f);
    check_block(WG_TYPE_Q6_K, b, want);
}

static void test_hand_q8_k(void) {
    uint8_t b[292] = {0};
    float want[256];
    const float d = -0.375f;
    memcpy(b, &d, 4); /* little-endian hosts only run this test meaningfully */
    for (int e = 0; e < 256; e++) {
        b[4 + e] = (uint8_t)(e - 128);
        want[e] = d * (float)(int8_t)(e - 128);
    }
    CHECK(want[0] == 48.0f && want[255] == -47.625f);
    check_block(WG_TYPE_Q8_K, b, want);
}

/* ---- (2) round trips on random rows ----
 * Relative RMS error bounds, rms(x - deq(q(x))) / rms(x), for x uniform in
 * [-1, 1). A b-bit code over a group's range R has step R / (2^b - 1) and an
 * error of about step / sqrt(12); each group (16 or 32 values) spans nearly the
 * full range 2, and rms(x) = 1/sqrt(3), so the error is about 1 / (2^b - 1):
 * q2_k 0.33, q3_k 0.14, q4_k 0.067, q5_k 0.032, q6_k 0.016, q8_k 0.0039
 * (8 bits, symmetric: 1/254 * ... ~ 0.0023). The bounds below allow 25% for
 * the 4/6/8-bit scales (and q3/q6's symmetric codes losing one level on one
 * side); the least-squares scale searches only make the error smaller. */
/* Second bound: rows of sums of three uniforms (rms 1) where 1 value in 97 is
 * 20x larger. A group holding such an outlier gets a step up to 20x wider, so
 * the error of groups of 16/32 grows by up to 2x overall; q8_k's one scale covers
 * 256 values, so every block carries an outlier: step ~ 60/127, error
 * ~ 0.14 / rms(x) ~ 2.3 ~ 0.06 at worst (half of that typical, so 0.04). */
typedef struct {
    uint32_t type;
    double bound, outlier_bound;
} round_trip_case;

static const round_trip_case k_cases[] = {
    {WG_TYPE_Q2_K, 0.42, 0.84},   {WG_TYPE_Q3_K, 0.18, 0.36},  {WG_TYPE_Q4_K, 0.085, 0.17},
    {WG_TYPE_Q5_K, 0.042, 0.084}, {WG_TYPE_Q6_K, 0.021, 0.042}, {WG_TYPE_Q8_K, 0.005, 0.04},
};
enum { N_CASES = sizeof k_cases / sizeof k_cases[0], ROW = 1024 };

static double rel_rms(const float *x, const float *y, int n) {
    double e = 0, s = 0;
    for (int i = 0; i < n; i++) {
        e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        s += (double)x[i] * x[i];
    }
    return sqrt(e / s);
}

static void test_round_trip(void) {
    static float x[ROW], y[ROW];
    static uint8_t q[ROW / 256 * 292];
    uint32_t seed = 12345;
    for (int i = 0; i < ROW; i++) x[i] = rng_unit(&seed);
    for (int c = 0; c < N_CASES; c++) {
        const uint32_t t = k_cases[c].type;
        CHECK(wg_type_row_bytes(t, ROW) <= sizeof q);
        CHECK(wg_quantize_row(t, x, q, ROW));
        CHECK(wg_dequantize_row(t, q, y, ROW));
        const double r = rel_rms(x, y, ROW);
        CHECK_MSG(r <= k_cases[c].bound, "%s: relative rms error %.4f > %.4f", wg_type_name(t), r, k_cases[c].bound);
        /* quantizing the dequantized row again must land on (almost) the same values */
        static float y2[ROW];
        static uint8_t q2[ROW / 256 * 292];
        CHECK(wg_quantize_row(t, y, q2, ROW) && wg_dequantize_row(t, q2, y2, ROW));
        CHECK_MSG(rel_rms(y, y2, ROW) <= k_cases[c].bound, "%s: second round trip", wg_type_name(t));
    }
    /* Gaussian-like data with outliers (sum of uniforms, a few values x20) */
    for (int i = 0; i < ROW; i++) {
        x[i] = rng_unit(&seed) + rng_unit(&seed) + rng_unit(&seed);
        if (i % 97 == 0) x[i] *= 20.0f;
    }
    for (int c = 0; c < N_CASES; c++) {
        const uint32_t t = k_cases[c].type;
        CHECK(wg_quantize_row(t, x, q, ROW) && wg_dequantize_row(t, q, y, ROW));
        const double r = rel_rms(x, y, ROW);
        CHECK_MSG(r <= k_cases[c].outlier_bound, "%s (outliers): %.4f", wg_type_name(t), r);
    }
}

/* Importance weights: the weighted error on heavily weighted columns must not
 * be worse than the unweighted quantizer's (llama.cpp's reason for imatrix). */
static void test_importance(void) {
    static float x[ROW], y0[ROW], y1[ROW], qw[ROW];
    static uint8_t q[ROW / 256 * 292];
    uint32_t seed = 777;
    for (int i = 0; i < ROW; i++) {
        x[i] = rng_unit(&seed);
        qw[i] = i % 8 == 0 ? 100.0f : 0.01f;
    }
    const uint32_t types[] = {WG_TYPE_Q2_K, WG_TYPE_Q3_K, WG_TYPE_Q4_K, WG_TYPE_Q5_K, WG_TYPE_Q6_K,
                              WG_TYPE_Q4_0, WG_TYPE_Q4_1, WG_TYPE_Q5_0, WG_TYPE_Q5_1};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const uint32_t t = types[k];
        CHECK(wg_quantize_row_weighted(t, x, q, ROW, NULL) && wg_dequantize_row(t, q, y0, ROW));
        CHECK(wg_quantize_row_weighted(t, x, q, ROW, qw) && wg_dequantize_row(t, q, y1, ROW));
        double e0 = 0, e1 = 0;
        for (int i = 0; i < ROW; i++) {
            e0 += qw[i] * ((double)x[i] - y0[i]) * ((double)x[i] - y0[i]);
            e1 += qw[i] * ((double)x[i] - y1[i]) * ((double)x[i] - y1[i]);
        }
        CHECK_MSG(e1 < e0, "%s: weighted error %.5g not below unweighted %.5g", wg_type_name(t), e1, e0);
    }
    /* NULL weights give exactly the reference quantizer's bytes */
    static uint8_t a[ROW / 256 * 292], b[ROW / 256 * 292];
    for (int c = 0; c < N_CASES; c++) {
        const uint32_t t = k_cases[c].type;
        const size_t n = wg_type_row_bytes(t, ROW);
        CHECK(wg_quantize_row(t, x, a, ROW) && wg_quantize_row_weighted(t, x, b, ROW, NULL));
        CHECK(memcmp(a, b, n) == 0);
    }
}

/* ---- (3) dot products ----
 * The kernel sums d_g * sum(c*x) - m_g * sum(x) per group in f32, while the
 * reference dots the dequantized values (d_g*c - m_g) in double. Every value's
 * magnitude is at most |w_i| + 2 max|w| (|m_g| <= max|w| since a code of 0
 * gives -m_g), each of the ~n/8 + 32 sequential f32 additions it meets adds at
 * most one rounding of 2^-24, so |dot - ref| <= (n/8 + 40) 2^-24 sum |x_i|(|w_i| + 2 max|w|). */
static void test_dot(void) {
    static float x[ROW], w[ROW], v[ROW];
    static uint8_t q[ROW / 256 * 292];
    uint32_t seed = 99;
    for (int trial = 0; trial < 3; trial++) {
        for (int i = 0; i < ROW; i++) {
            w[i] = rng_unit(&seed) * (trial == 2 ? 1000.0f : 1.0f);
            v[i] = rng_unit(&seed) + (trial == 1 ? 0.5f : 0.0f); /* trial 1: biased activations */
        }
        for (int c = 0; c < N_CASES; c++) {
            const uint32_t t = k_cases[c].type;
            CHECK(wg_quantize_row(t, w, q, ROW) && wg_dequantize_row(t, q, x, ROW));
            double ref = 0, mag = 0, wmax = 0;
            for (int i = 0; i < ROW; i++) wmax = fmax(wmax, fabs(x[i]));
            for (int i = 0; i < ROW; i++) {
                ref += (double)x[i] * v[i];
                mag += fabs(v[i]) * (fabs(x[i]) + 2 * wmax);
            }
            const double tol = (ROW / 8 + 40) * 0x1p-24 * mag;
            const float got = wg_vec_dot_f32(t, q, v, ROW);
            CHECK_MSG(fabs(got - ref) <= tol, "%s trial %d: dot %.9g ref %.9g tol %.3g", wg_type_name(t), trial,
                      (double)got, ref, tol);
            /* the portable kernel too (the dispatcher may have picked the AVX2 one) */
            float port = NAN;
            switch (t) {
            case WG_TYPE_Q2_K: port = wg_q2_k_dot(q, v, ROW / 256); break;
            case WG_TYPE_Q3_K: port = wg_q3_k_dot(q, v, ROW / 256); break;
            case WG_TYPE_Q4_K: port = wg_q4_k_dot(q, v, ROW / 256); break;
            case WG_TYPE_Q5_K: port = wg_q5_k_dot(q, v, ROW / 256); break;
            case WG_TYPE_Q6_K: port = wg_q6_k_dot(q, v, ROW / 256); break;
            case WG_TYPE_Q8_K: port = wg_q8_k_dot(q, v, ROW / 256); break;
            }
            CHECK_MSG(fabs(port - ref) <= tol, "%s portable: %.9g vs %.9g", wg_type_name(t), (double)port, ref);
        }
    }
}

/* ---- (4) degenerate rows ---- */
static void test_degenerate(void) {
    static float x[512], y[512];
    static uint8_t q[2 * 292];
    for (int c = 0; c < N_CASES; c++) {
        const uint32_t t = k_cases[c].type;
        memset(x, 0, sizeof x);
        CHECK(wg_quantize_row(t, x, q, 512) && wg_dequantize_row(t, q, y, 512));
        int zero = 1;
        for (int i = 0; i < 512; i++) zero &= y[i] == 0.0f;
        CHECK_MSG(zero, "%s: zero row", wg_type_name(t));
        /* constant row: exact or close (min types keep it via the min or scale) */
        for (int i = 0; i < 512; i++) x[i] = 0.75f;
        CHECK(wg_quantize_row(t, x, q, 512) && wg_dequantize_row(t, q, y, 512));
        CHECK_MSG(rel_rms(x, y, 512) < 0.02, "%s: constant row %.4f", wg_type_name(t), rel_rms(x, y, 512));
        /* NaN and infinities: no crash, whatever the codes */
        x[3] = NAN;
        x[300] = INFINITY;
        x[301] = -INFINITY;
        CHECK(wg_quantize_row(t, x, q, 512));
        CHECK(wg_dequantize_row(t, q, y, 512));
        /* row lengths that are not whole super-blocks are refused */
        CHECK(!wg_quantize_row(t, x, q, 500));
        CHECK(!wg_dequantize_row(t, q, y, 128));
        CHECK(isnan(wg_vec_dot_f32(t, q, y, 100)));
        CHECK(wg_type_supported(t));
    }
    int64_t bs = 0, bb = 0;
    CHECK(wg_type_traits(WG_TYPE_Q4_K, &bs, &bb) && bs == 256 && bb == 144);
    CHECK(wg_type_from_name("Q6_K") == WG_TYPE_Q6_K);
}

int main(void) {
    test_hand_q2_k();
    test_hand_q3_k();
    test_hand_q45_k(0);
    test_hand_q45_k(1);
    test_hand_q6_k();
    test_hand_q8_k();
    test_round_trip();
    test_importance();
    test_dot();
    test_degenerate();
    CHECK_DONE();
}
