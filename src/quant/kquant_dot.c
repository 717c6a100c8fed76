/* Dot products of K-quant rows with f32 activations. Per super-block the codes
 * are unpacked into 256 signed bytes (simple loops the compiler vectorizes),
 * then each 16- or 32-element group adds d_g * sum(c*x) - m_g * sum(x) into
 * vector lanes: the same value as dequantize-then-dot up to rounding (the
 * scale is applied once per group instead of once per element). GCC/Clang
 * vector types as in dot_vec.c; dot_vec_avx2.c includes this file again for
 * AVX2 + FMA, with WG_DOT_NAME adding the suffix. */
#include "quant/blocks.h"
#include "quant/kquant.h"

#ifndef WG_DOT_NAME
#define WG_DOT_NAME(f) f
#endif

/* ---- unpacking codes (plain C, shared by both builds of this file) ---- */
#ifndef WG_KQUANT_UNPACK_DEFINED
#define WG_KQUANT_UNPACK_DEFINED
static inline void k_unpack_2bit(const uint8_t *qs, int8_t *c) {
    for (int n = 0; n < 2; n++)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) c[128 * n + 32 * j + l] = (int8_t)((qs[32 * n + l] >> (2 * j)) & 3);
}

static inline void k_unpack_q3(const uint8_t *b, int8_t *c) {
    const uint8_t *hmask = b;
    k_unpack_2bit(b + 32, c);
    for (int k = 0; k < 8; k++)
        for (int l = 0; l < 32; l++) c[32 * k + l] = (int8_t)(c[32 * k + l] + 4 * ((hmask[l] >> k) & 1) - 4);
}

static inline void k_unpack_q45(const uint8_t *qs, const uint8_t *qh, int8_t *c) {
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < 32; l++) {
            c[64 * k + l] = (int8_t)(qs[32 * k + l] & 0xF);
            c[64 * k + 32 + l] = (int8_t)(qs[32 * k + l] >> 4);
        }
    if (!qh) return;
    for (int k = 0; k < 8; k++)
        for (int l = 0; l < 32; l++) c[32 * k + l] = (int8_t)(c[32 * k + l] | (((qh[l] >> k) & 1) << 4));
}

static inline void k_unpack_q6(const uint8_t *b, int8_t *c) {
    for (int n = 0; n < 2; n++) {
        const uint8_t *ql = b + 64 * n, *qh = b + 128 + 32 * n;
        for (int l = 0; l < 32; l++) {
            c[128 * n + l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
            c[128 * n + 32 + l] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
            c[128 * n + 64 + l] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            c[128 * n + 96 + l] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}
#endif

#if (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 9)) && defined(__BYTE_ORDER__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__

#if defined(__AVX__)
#define KVL 8
#else
#define KVL 4
#endif
typedef float kvf __attribute__((vector_size(4 * KVL)));
typedef int32_t kvi __attribute__((vector_size(4 * KVL)));
#if KVL == 8
#define K_BYTES_TO_I32(p) ((kvi){(p)[0], (p)[1], (p)[2], (p)[3], (p)[4], (p)[5], (p)[6], (p)[7]})
#else
#define K_BYTES_TO_I32(p) ((kvi){(p)[0], (p)[1], (p)[2], (p)[3]})
#endif

/* acc += dg * sum(c*x) [- mg * sum(x)] over n elements (a multiple of KVL). */
#define K_GROUP(acc, c, x, n, dg, mg, with_min)                                     \
    do {                                                                            \
        kvf s_ = {0}, sx_ = {0};                                                    \
        _Pragma("GCC unroll 8") for (int i_ = 0; i_ < (n); i_ += KVL) {             \
            kvf xv_;                                                                \
            memcpy(&xv_, (x) + i_, sizeof xv_);                                     \
            s_ += __builtin_convertvector(K_BYTES_TO_I32((c) + i_), kvf) * xv_;     \
            if (with_min) sx_ += xv_;                                               \
        }                                                                           \
        (acc) += (dg) * s_;                                                         \
        if (with_min) (acc) -= (mg) * sx_;                                          \
    } while (0)

#define K_HSUM(acc, out)                                \
    do {                                                \
        float a_[KVL];                                  \
        memcpy(a_, &(acc), sizeof a_);                  \
        (out) = 0.0f;                                   \
        for (int l_ = 0; l_ < KVL; l_++) (out) += a_[l_]; \
    } while (0)

#else /* no vector types: one lane */

typedef float kvf;
#define K_GROUP(acc, c, x, n, dg, mg, with_min)                         \
    do {                                                                \
        float s_ = 0, sx_ = 0;                                          \
        for (int i_ = 0; i_ < (n); i_++) {                              \
            s_ += (float)(c)[i_] * (x)[i_];                             \
            sx_ += (x)[i_];                                             \
        }                                                               \
        (acc) += (dg) * s_;                                             \
        if (with_min) (acc) -= (mg) * sx_;                              \
    } while (0)
#define K_HSUM(acc, out) ((out) = (acc))

#endif

float WG_DOT_NAME(wg_q2_k_dot)(const uint8_t *row, const float *x, int64_t nb) {
    kvf acc = {0};
    int8_t c[WG_QK_K];
    for (int64_t ib = 0; ib < nb; ib++, row += WG_Q2_K_BYTES, x += WG_QK_K) {
        const float d = wg_half_to_float(wg_load_le16(row + 80));
        const float dmin = wg_half_to_float(wg_load_le16(row + 82));
        k_unpack_2bit(row + 16, c);
        for (int g = 0; g < 16; g++) {
            const float dg = d * (float)(row[g] & 0xF), mg = dmin * (float)(row[g] >> 4);
            K_GROUP(acc, c + 16 * g, x + 16 * g, 16, dg, mg, 1);
        }
    }
    float out;
    K_HSUM(acc, out);
    return out;
}

float WG_DOT_NAME(wg_q3_k_dot)(const uint8_t *row, const float *x, int64_t nb) {
    kvf acc = {0};
    int8_t c[WG_QK_K];
    for (int64_t ib = 0; ib < nb; ib++, row += WG_Q3_K_BYTES, x += WG_QK_K) {
        const float d = wg_half_to_float(wg_load_le16(row + 108));
        k_unpack_q3(row, c);
        for (int g = 0; g < 16; g++) {
            const float dg = d * (float)wg_k3_scale(g, row + 96);
            K_GROUP(acc, c + 16 * g, x + 16 * g, 16, dg, 0.0f, 0);
        }
    }
    float out;
    K_HSUM(acc, out);
    return out;
}

static inline float WG_DOT_NAME(k45_dot)(const uint8_t *row, const float *x, int64_t nb, int has_qh) {
    kvf acc = {0};
    int8_t c[WG_QK_K];
    const int bytes = has_qh ? WG_Q5_K_BYTES : WG_Q4_K_BYTES;
    for (int64_t ib = 0; ib < nb; ib++, row += bytes, x += WG_QK_K) {
        const float d = wg_half_to_float(wg_load_le16(row));
        const float dmin = wg_half_to_float(wg_load_le16(row + 2));
        k_unpack_q45(row + (has_qh ? 48 : 16), has_qh ? row + 16 : NULL, c);
        for (int g = 0; g < 8; g++) {
            uint8_t sc, m;
            wg_k4_scale_min(g, row + 4, &sc, &m);
            const float dg = d * (float)sc, mg = dmin * (float)m;
            K_GROUP(acc, c + 32 * g, x + 32 * g, 32, dg, mg, 1);
        }
    }
    float out;
    K_HSUM(acc, out);
    return out;
}

float WG_DOT_NAME(wg_q4_k_dot)(const uint8_t *row, const float *x, int64_t nb) {
    return WG_DOT_NAME(k45_dot)(row, x, nb, 0);
}

float WG_DOT_NAME(wg_q5_k_dot)(const uint8_t *row, const float *x, int64_t nb) {
    return WG_DOT_NAME(k45_dot)(row, x, nb, 1);
}

float WG_DOT_NAME(wg_q6_k_dot)(const uint8_t *row, const float *x, int64_t nb) {
    kvf acc = {0};
    int8_t c[WG_QK_K];
    for (int64_t ib = 0; ib < nb; ib++, row += WG_Q6_K_BYTES, x += WG_QK_K) {
        const float d = wg_half_to_float(wg_load_le16(row + 208));
        const int8_t *sc = (const int8_t *)(row + 192);
        k_unpack_q6(row, c);
        for (int g = 0; g < 16; g++) {
            const float dg = d * (float)sc[g];
            K_GROUP(acc, c + 16 * g, x + 16 * g, 16, dg, 0.0f, 0);
        }
    }
    float out;
    K_HSUM(acc, out);
    return out;
}

float WG_DOT_NAME(wg_q8_k_dot)(const uint8_t *row, const float *x, int64_t nb) {
    kvf acc = {0};
    for (int64_t ib = 0; ib < nb; ib++, row += WG_Q8_K_BYTES, x += WG_QK_K) {
        const float d = wg_bits_f32(wg_load_le32(row));
        const int8_t *qs = (const int8_t *)(row + 4);
        for (int g = 0; g < 8; g++) K_GROUP(acc, qs + 32 * g, x + 32 * g, 32, d, 0.0f, 0);
    }
    float out;
    K_HSUM(acc, out);
    return out;
}

#undef KVL
#undef K_BYTES_TO_I32
#undef K_GROUP
#undef K_HSUM
