/* K-quant quantizers: llama.cpp's quantize_row_*_K_ref without importance
 * weights, its quantize_row_*_K_impl with them (layouts in kquant.h, scale
 * searches in kquant_solvers.c). Also the weighted variants of the 32-element
 * formats and q8_k, the activation format of ggml's K-quant dot products. */
#include <math.h>
#include <string.h>

#include "quant/blocks.h"
#include "quant/kquant.h"
#include "quant/quant.h"

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* Packs 2-bit codes L[256] into q2_k/q3_k's qs[64]. */
static void pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < WG_QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

/* ---- q2_k ---- */

/* Codes of each 16-group for its final (rounded) scale and min. */
static void q2_k_requantize(const float *x, const uint8_t *b, uint8_t *L) {
    const float dd = wg_half_to_float(wg_load_le16(b + 80));
    const float dm = wg_half_to_float(wg_load_le16(b + 82));
    for (int j = 0; j < WG_QK_K / 16; j++) {
        const float d = dd * (float)(b[j] & 0xF);
        if (d == 0.0f) continue;
        const float m = dm * (float)(b[j] >> 4);
        for (int ii = 0; ii < 16; ii++) {
            const int l = wg_nearest_int((x[16 * j + ii] + m) / d);
            L[16 * j + ii] = (uint8_t)imax(0, imin(3, l));
        }
    }
}

static void q2_k_block_ref(const float *x, uint8_t *b) {
    uint8_t L[WG_QK_K], Laux[16];
    float weights[16], mins[16], scales[16];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < WG_QK_K / 16; j++) {
        for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
        scales[j] = wg_make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, 1);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    uint8_t *scl = b;
    if (max_scale > 0) {
        const float iscale = 15.f / max_scale;
        for (int j = 0; j < 16; j++) scl[j] = (uint8_t)wg_nearest_int(iscale * scales[j]);
        wg_store_le16(b + 80, wg_f32_to_fp16(max_scale / 15.f));
    } else {
        memset(scl, 0, 16);
        wg_store_le16(b + 80, wg_f32_to_fp16(0.f));
    }
    if (max_min > 0) {
        const float iscale = 15.f / max_min;
        for (int j = 0; j < 16; j++) scl[j] = (uint8_t)(scl[j] | (wg_nearest_int(iscale * mins[j]) << 4));
        wg_store_le16(b + 82, wg_f32_to_fp16(max_min / 15.f));
    } else {
        wg_store_le16(b + 82, wg_f32_to_fp16(0.f));
    }
    q2_k_requantize(x, b, L);
    pack_2bit(L, b + 16);
}

static void q2_k_block_weighted(const float *x, uint8_t *b, const float *qw) {
    uint8_t L[WG_QK_K], Laux[16], Ls[16], Lm[16];
    float mins[16], scales[16], sw[16], weight[16];
    memset(sw, 0, sizeof sw);
    float sumx2 = 0;
    for (int j = 0; j < WG_QK_K; j++) sumx2 += x[j] * x[j];
    const float sigma2 = sumx2 / WG_QK_K;
    for (int j = 0; j < WG_QK_K / 16; j++) {
        for (int l = 0; l < 16; l++) weight[l] = qw[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
        for (int l = 0; l < 16; l++) sw[j] += weight[l];
        scales[j] = wg_make_qkx3_quants(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36, 0);
    }
    const float dm = wg_make_qp_quants(16, 15, scales, Ls, sw);
    const float mm = wg_make_qp_quants(16, 15, mins, Lm, sw);
    wg_store_le16(b + 80, wg_f32_to_fp16(dm));
    wg_store_le16(b + 82, wg_f32_to_fp16(mm));
    for (int j = 0; j < 16; j++) b[j] = (uint8_t)(Ls[j] | (Lm[j] << 4));
    q2_k_requantize(x, b, L);
    pack_2bit(L, b + 16);
}

void wg_q2_k_quantize(const float *src, uint8_t *dst, int64_t nb, const float *qw) {
    for (int64_t i = 0; i < nb; i++, src += WG_QK_K, dst += WG_Q2_K_BYTES) {
        if (qw)
            q2_k_block_weighted(src, dst, qw + i * WG_QK_K);
        else
            q2_k_block_ref(src, dst);
    }
}

/* ---- q3_k ---- */

/* Writes 6-bit scale l (0..63) number j into the 12-byte array (zeroed first). */
static void k3_put_scale(uint8_t *s, int j, int l) {
    if (j < 8)
        s[j] = (uint8_t)(l & 0xF);
    else
        s[j - 8] = (uint8_t)(s[j - 8] | ((l & 0xF) << 4));
    l >>= 4;
    s[j % 4 + 8] = (uint8_t)(s[j % 4 + 8] | (l << (2 * (j / 4))));
}

/* Final codes for the stored scales, then hmask and qs. */
static void q3_k_finish(const float *x, uint8_t *b, int8_t *L) {
    const uint8_t *s = b + 96;
    const float dd = wg_half_to_float(wg_load_le16(b + 108));
    for (int j = 0; j < WG_QK_K / 16; j++) {
        const float d = dd * (float)wg_k3_scale(j, s);
        if (d == 0.0f) continue;
        for (int ii = 0; ii < 16; ii++) {
            const int l = wg_nearest_int(x[16 * j + ii] / d);
            L[16 * j + ii] = (int8_t)(imax(-4, imin(3, l)) + 4);
        }
    }
    uint8_t *hmask = b;
    memset(hmask, 0, 32);
    uint8_t U[WG_QK_K];
    for (int j = 0; j < WG_QK_K; j++) {
        int l = L[j];
        if (l > 3) {
            hmask[j % 32] = (uint8_t)(hmask[j % 32] | (1u << (j / 32)));
            l -= 4;
        }
        U[j] = (uint8_t)(l & 3);
    }
    pack_2bit(U, b + 32);
}

static void q3_k_block_ref(const float *x, uint8_t *b) {
    int8_t L[WG_QK_K];
    float scales[16];
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; j++) {
        scales[j] = wg_make_q3_quants(16, 4, x + 16 * j, L + 16 * j, 1);
        const float scale = fabsf(scales[j]);
        if (scale > amax) {
            amax = scale;
            max_scale = scales[j];
        }
    }
    uint8_t *s = b + 96;
    memset(s, 0, 12);
    if (max_scale != 0.0f) {
        const float iscale = -32.f / max_scale;
        for (int j = 0; j < 16; j++) {
            /* ggml stores the rounded value in an int8_t first */
            const int8_t l8 = (int8_t)wg_nearest_int(iscale * scales[j]);
            k3_put_scale(s, j, imax(-32, imin(31, l8)) + 32);
        }
        wg_store_le16(b + 108, wg_f32_to_fp16(1 / iscale));
    } else {
        wg_store_le16(b + 108, wg_f32_to_fp16(0.f));
    }
    q3_k_finish(x, b, L);
}

static void q3_k_block_weighted(const float *x, uint8_t *b, const float *qw) {
    int8_t L[WG_QK_K], Ls[16];
    float scales[16], weight[16], sw[16];
    float sumx2 = 0;
    for (int j = 0; j < WG_QK_K; j++) sumx2 += x[j] * x[j];
    const float sigma2 = 2 * sumx2 / WG_QK_K;
    for (int j = 0; j < 16; j++) {
        if (qw) {
            for (int l = 0; l < 16; l++) weight[l] = qw[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
        } else {
            for (int l = 0; l < 16; l++) weight[l] = x[16 * j + l] * x[16 * j + l];
        }
        float sumw = 0;
        for (int l = 0; l < 16; l++) sumw += weight[l];
        sw[j] = sumw;
        scales[j] = wg_make_qx_quants(16, 4, x + 16 * j, L + 16 * j, 1, weight);
    }
    uint8_t *s = b + 96;
    memset(s, 0, 12);
    const float d_block = wg_make_qx_quants(16, 32, scales, Ls, 1, sw);
    for (int j = 0; j < 16; j++) k3_put_scale(s, j, Ls[j]);
    wg_store_le16(b + 108, wg_f32_to_fp16(d_block));
    q3_k_finish(x, b, L);
}

void wg_q3_k_quantize(const float *src, uint8_t *dst, int64_t nb, const float *qw) {
    for (int64_t i = 0; i < nb; i++, src += WG_QK_K, dst += WG_Q3_K_BYTES) {
        if (qw)
            q3_k_block_weighted(src, dst, qw + i * WG_QK_K);
        else
            q3_k_block_ref(src, dst);
    }
}

/* ---- q4_k and q5_k (same scales, 4 or 5 bits of code) ---- */

static void k4_put_scales(uint8_t *s, int j, uint8_t ls, uint8_t lm) {
    if (j < 4) {
        s[j] = ls;
        s[j + 4] = lm;
    } else {
        s[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
        s[j - 4] = (uint8_t)(s[j - 4] | ((ls >> 4) << 6));
        s[j] = (uint8_t)(s[j] | ((lm >> 4) << 6));
    }
}

/* Final codes (0..nmax) for the stored scales, then packing. */
static void k45_finish(const float *x, uint8_t *b, uint8_t *L, int nmax) {
    const float dd = wg_half_to_float(wg_load_le16(b));
    const float dmin = wg_half_to_float(wg_load_le16(b + 2));
    for (int j = 0; j < WG_QK_K / 32; j++) {
        uint8_t sc, m;
        wg_k4_scale_min(j, b + 4, &sc, &m);
        const float d = dd * (float)sc;
        if (d == 0.0f) continue;
        const float dm = dmin * (float)m;
        for (int ii = 0; ii < 32; ii++) {
            const int l = wg_nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)imax(0, imin(nmax, l));
        }
    }
    if (nmax == 15) {
        uint8_t *q = b + 16;
        for (int j = 0; j < WG_QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        return;
    }
    uint8_t *qh = b + 16, *ql = b + 48;
    memset(qh, 0, 32);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < WG_QK_K; n += 64, ql += 32) {
        for (int j = 0; j < 32; j++) {
            int l1 = L[n + j], l2 = L[n + j + 32];
            if (l1 > 15) {
                l1 -= 16;
                qh[j] |= m1;
            }
            if (l2 > 15) {
                l2 -= 16;
                qh[j] |= m2;
            }
            ql[j] = (uint8_t)(l1 | (l2 << 4));
        }
        m1 = (uint8_t)(m1 << 2);
        m2 = (uint8_t)(m2 << 2);
    }
}

/* llama.cpp's search parameters: q4_k (-1, 0.1, 20), q5_k (-0.5, 0.1, 15). */
static void k45_block_ref(const float *x, uint8_t *b, int nmax) {
    uint8_t L[WG_QK_K], Laux[32];
    float weights[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    const float rmin = nmax == 15 ? -1.f : -0.5f;
    const int nstep = nmax == 15 ? 20 : 15;
    for (int j = 0; j < WG_QK_K / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = wg_make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, 0);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t *s = b + 4;
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)wg_nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)wg_nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        k4_put_scales(s, j, ls, lm);
    }
    wg_store_le16(b, wg_f32_to_fp16(max_scale / 63.f));
    wg_store_le16(b + 2, wg_f32_to_fp16(max_min / 63.f));
    k45_finish(x, b, L, nmax);
}

static void k45_block_weighted(const float *x, uint8_t *b, int nmax, const float *qw) {
    uint8_t L[WG_QK_K], Laux[32], Ls[8], Lm[8];
    float weights[32], sw[8], mins[8], scales[8];
    float sum_x2 = 0;
    for (int l = 0; l < WG_QK_K; l++) sum_x2 += x[l] * x[l];
    const float sigma2 = 2 * sum_x2 / WG_QK_K;
    const float av_x = sqrtf(sigma2);
    for (int j = 0; j < WG_QK_K / 32; j++) {
        if (qw) {
            for (int l = 0; l < 32; l++) weights[l] = qw[32 * j + l] * sqrtf(sigma2 + x[32 * j + l] * x[32 * j + l]);
        } else {
            for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        }
        float sumw = 0;
        for (int l = 0; l < 32; l++) sumw += weights[l];
        sw[j] = sumw;
        scales[j] = wg_make_qkx3_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36, 0);
    }
    const float d_block = wg_make_qp_quants(8, 63, scales, Ls, sw);
    const float m_block = wg_make_qp_quants(8, 63, mins, Lm, sw);
    uint8_t *s = b + 4;
    for (int j = 0; j < 8; j++) {
        const uint8_t ls = Ls[j] < 63 ? Ls[j] : 63, lm = Lm[j] < 63 ? Lm[j] : 63;
        k4_put_scales(s, j, ls, lm);
    }
    wg_store_le16(b, wg_f32_to_fp16(d_block));
    wg_store_le16(b + 2, wg_f32_to_fp16(m_block));
    k45_finish(x, b, L, nmax);
}

void wg_q4_k_quantize(const float *src, uint8_t *dst, int64_t nb, const float *qw) {
    for (int64_t i = 0; i < nb; i++, src += WG_QK_K, dst += WG_Q4_K_BYTES) {
        if (qw)
            k45_block_weighted(src, dst, 15, qw + i * WG_QK_K);
        else
            k45_block_ref(src, dst, 15);
    }
}

void wg_q5_k_quantize(const float *src, uint8_t *dst, int64_t nb, const float *qw) {
    for (int64_t i = 0; i < nb; i++, src += WG_QK_K, dst += WG_Q5_K_BYTES) {
        if (qw)
            k45_block_weighted(src, dst, 31, qw + i * WG_QK_K);
        else
            k45_block_ref(src, dst, 31);
    }
}

/* ---- q6_k: the ref and weighted quantizers differ only in make_qx_quants' weights ---- */

static void q6_k_block(const float *x, uint8_t *b, const float *qw) {
    int8_t L[WG_QK_K];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ib++) {
        const float scale = wg_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1, qw ? qw + 16 * ib : NULL);
        scales[ib] = scale;
        const float abs_scale = fabsf(scale);
        if (abs_scale > max_abs_scale) {
            max_abs_scale = abs_scale;
            max_scale = scale;
        }
    }
    if (!(max_abs_scale >= 1e-15f)) {
        memset(b, 0, WG_Q6_K_BYTES);
        return;
    }
    const float iscale = -128.f / max_scale;
    wg_store_le16(b + 208, wg_f32_to_fp16(1 / iscale));
    int8_t *sc = (int8_t *)(b + 192);
    for (int ib = 0; ib < 16; ib++) sc[ib] = (int8_t)imin(127, wg_nearest_int(iscale * scales[ib]));
    const float dd = wg_half_to_float(wg_load_le16(b + 208));
    for (int j = 0; j < 16; j++) {
        const float d = dd * (float)sc[j];
        if (d == 0.0f) continue;
        for (int ii = 0; ii < 16; ii++) {
            const int l = wg_nearest_int(x[16 * j + ii] / d);
            L[16 * j + ii] = (int8_t)(imax(-32, imin(31, l)) + 32);
        }
    }
    uint8_t *ql = b, *qh = b + 128;
    for (int j = 0; j < WG_QK_K; j += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; l++) {
            const int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
            const int q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
            ql[l] = (uint8_t)(q1 | (q3 << 4));
            ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                              ((L[j + l + 96] >> 4) << 6));
        }
    }
}

void wg_q6_k_quantize(const float *src, uint8_t *dst, int64_t nb, const float *qw) {
    for (int64_t i = 0; i < nb; i++, src += WG_QK_K, dst += WG_Q6_K_BYTES)
        q6_k_block(src, dst, qw ? qw + i * WG_QK_K : NULL);
}

/* ---- q8_k: d = max/-127 from the signed extreme, codes clamped at 127 ---- */

void wg_q8_k_quantize(const float *src, uint8_t *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += WG_QK_K, dst += WG_Q8_K_BYTES) {
        float max = 0, amax = 0;
        for (int j = 0; j < WG_QK_K; j++) {
            const float ax = fabsf(src[j]);
            if (ax > amax) {
                amax = ax;
                max = src[j];
            }
        }
        if (amax == 0.0f) {
            memset(dst, 0, WG_Q8_K_BYTES);
            continue;
        }
        const float iscale = -127.f / max;
        int8_t *qs = (int8_t *)(dst + 4);
        for (int j = 0; j < WG_QK_K; j++) qs[j] = (int8_t)imax(-128, imin(127, wg_nearest_int(iscale * src[j])));
        for (int j = 0; j < WG_QK_K / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++) sum += qs[j * 16 + ii];
            wg_store_le16(dst + 260 + 2 * j, (uint16_t)(int16_t)sum);
        }
        wg_store_le32(dst, wg_f32_bits(1 / iscale));
    }
}

/* ---- weighted 32-element formats (llama.cpp's quantize_row_q4_0_impl etc.) ---- */

/* weight[j] = qw[j] * sqrt(sigma2 + x[j]^2), sigma2 = mean square of the row. */
static float row_sigma2(const float *x, int64_t n) {
    float sum_x2 = 0;
    for (int64_t j = 0; j < n; j++) sum_x2 += x[j] * x[j];
    return sum_x2 / (float)n;
}

static void block_weights(const float *xb, const float *qw, float sigma2, float *w) {
    for (int j = 0; j < WG_QK; j++) w[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
}

static void pack_q5_bits(const uint8_t *L, uint8_t *qs, uint8_t *qh4) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
        qh |= (uint32_t)((L[j] & 0x10u) >> 4) << j;
        qh |= (uint32_t)((L[j + 16] & 0x10u) >> 4) << (j + 16);
    }
    wg_store_le32(qh4, qh);
}

void wg_q4_0_quantize_weighted(const float *x, uint8_t *y, int64_t n, const float *qw) {
    const float sigma2 = row_sigma2(x, n);
    float w[WG_QK];
    int8_t L[WG_QK];
    for (int64_t ib = 0; ib < n / WG_QK; ib++, y += WG_Q4_0_BYTES) {
        const float *xb = x + WG_QK * ib;
        block_weights(xb, qw + WG_QK * ib, sigma2, w);
        const float d = wg_make_qx_quants(WG_QK, 8, xb, L, 1, w);
        wg_store_le16(y, wg_f32_to_fp16(d));
        for (int j = 0; j < 16; j++) y[2 + j] = (uint8_t)(L[j] | (L[j + 16] << 4));
    }
}

void wg_q5_0_quantize_weighted(const float *x, uint8_t *y, int64_t n, const float *qw) {
    const float sigma2 = row_sigma2(x, n);
    float w[WG_QK];
    int8_t L[WG_QK];
    for (int64_t ib = 0; ib < n / WG_QK; ib++, y += WG_Q5_0_BYTES) {
        const float *xb = x + WG_QK * ib;
        block_weights(xb, qw + WG_QK * ib, sigma2, w);
        const float d = wg_make_qx_quants(WG_QK, 16, xb, L, 1, w);
        wg_store_le16(y, wg_f32_to_fp16(d));
        pack_q5_bits((const uint8_t *)L, y + 6, y + 2);
    }
}

void wg_q4_1_quantize_weighted(const float *x, uint8_t *y, int64_t n, const float *qw) {
    const float sigma2 = row_sigma2(x, n);
    float w[WG_QK], min;
    uint8_t L[WG_QK], Laux[WG_QK];
    for (int64_t ib = 0; ib < n / WG_QK; ib++, y += WG_Q4_1_BYTES) {
        const float *xb = x + WG_QK * ib;
        block_weights(xb, qw + WG_QK * ib, sigma2, w);
        const float d = wg_make_qkx3_quants(WG_QK, 15, xb, w, L, &min, Laux, -0.9f, 0.05f, 36, 0);
        wg_store_le16(y, wg_f32_to_fp16(d));
        wg_store_le16(y + 2, wg_f32_to_fp16(-min));
        for (int j = 0; j < 16; j++) y[4 + j] = (uint8_t)(L[j] | (L[j + 16] << 4));
    }
}

void wg_q5_1_quantize_weighted(const float *x, uint8_t *y, int64_t n, const float *qw) {
    const float sigma2 = row_sigma2(x, n);
    float w[WG_QK], min;
    uint8_t L[WG_QK], Laux[WG_QK];
    for (int64_t ib = 0; ib < n / WG_QK; ib++, y += WG_Q5_1_BYTES) {
        const float *xb = x + WG_QK * ib;
        block_weights(xb, qw + WG_QK * ib, sigma2, w);
        const float d = wg_make_qkx3_quants(WG_QK, 31, xb, w, L, &min, Laux, -0.9f, 0.05f, 36, 0);
        wg_store_le16(y, wg_f32_to_fp16(d));
        wg_store_le16(y + 2, wg_f32_to_fp16(-min));
        pack_q5_bits(L, y + 8, y + 4);
    }
}
