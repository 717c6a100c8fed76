/* The dot kernels of wg_vec_dot_f32 in GCC/Clang vector types. Plain C loops
 * over small arrays are not vectorized reliably (GCC -O3 unrolls them, then
 * gives up), so the vectors are written out: VL floats a vector, 8 when the
 * target has AVX, else 4 (SSE2, NEON), since wider vectors emulated on narrow
 * registers are slow. Each kernel keeps 8 lanes (lane = element index % 8) and
 * adds in the same order as its reference in q4.c, q5.c, q8.c and
 * float_rows.c; only fused multiply-adds may change the last bits. Other
 * compilers, and big-endian hosts (rows are little-endian), use the references.
 * Vectors never cross a function boundary: their calling convention depends on
 * the target flags. */
#include "quant/blocks.h"

/* dot_vec_avx2.c includes this file again with WG_DOT_NAME adding a suffix. */
#ifndef WG_DOT_NAME
#define WG_DOT_NAME(f) f
#endif

#if (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 9)) && defined(__BYTE_ORDER__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__

#if defined(__AVX__)
#define VL 8
#else
#define VL 4
#endif
#define NV (8 / VL)   /* vectors that hold the 8 lanes */
#define NC (WG_QK / VL) /* vectors in one block */
/* Loops over chunks must unroll so that chunk numbers become constants (which
 * nibble, which lanes); GCC -O2 would not do it on its own. */
#define UNROLL _Pragma("GCC unroll 8")

typedef float vf __attribute__((vector_size(4 * VL)));
typedef int32_t vi __attribute__((vector_size(4 * VL)));
typedef uint32_t vu __attribute__((vector_size(4 * VL)));
typedef uint16_t vu16 __attribute__((vector_size(2 * VL)));

/* VL bytes widened to int32 lanes (signedness from p's type). Written as an
 * initializer because GCC turns this into one widening load (pmovzx/pmovsx)
 * but scalarizes __builtin_convertvector from a byte vector. */
#if VL == 8
#define BYTES_TO_I32(p) ((vi){(p)[0], (p)[1], (p)[2], (p)[3], (p)[4], (p)[5], (p)[6], (p)[7]})
#else
#define BYTES_TO_I32(p) ((vi){(p)[0], (p)[1], (p)[2], (p)[3]})
#endif

/* Statement macros rather than functions, see above. memcpy: any alignment. */
#define LOAD(dst, p) memcpy(&(dst), (p), sizeof(dst))
#define TO_F32(v) __builtin_convertvector((v), vf)

static inline float f32_at(const uint8_t *row, int64_t i) {
    float w;
    memcpy(&w, row + 4 * i, sizeof w);
    return w;
}

static inline float hsum(const vf acc[NV]) {
    float a[8];
    memcpy(a, acc, sizeof a);
    return wg_sum8(a);
}

/* 4-bit codes of elements c*VL .. c*VL+VL-1: low nibbles of the first 16 bytes,
 * then their high nibbles. */
#define NIBBLES(dst, qs, c)                                   \
    do {                                                      \
        (dst) = BYTES_TO_I32((qs) + ((c) * VL) % 16);         \
        (dst) = (c) * VL < 16 ? ((dst) & 15) : ((dst) >> 4); \
    } while (0)

/* 5th bits of elements c*VL .. c*VL+VL-1 (bits of qh), as 0 or 16. */
#define HIGH_BITS(dst, qh, c)                                                     \
    do {                                                                          \
        const vu qhv_ = (vu){0} + (qh);                                           \
        vu bit_;                                                                  \
        UNROLL for (int l_ = 0; l_ < VL; l_++) bit_[l_] = 1u << ((c) * VL + l_);  \
        (dst) = (vi)((qhv_ & bit_) != 0) & 16;                                    \
    } while (0)

/* s[lanes] = sum over the block of q * x, chunks in element order. QCHUNK(q, c)
 * must set the float vector q to the codes of chunk c. */
#define BLOCK_SUM(s, x, QCHUNK)                     \
    do {                                            \
        UNROLL for (int v_ = 0; v_ < NV; v_++) s[v_] = (vf){0}; \
        UNROLL for (int c_ = 0; c_ < NC; c_++) {    \
            vf q_, x_;                              \
            QCHUNK(q_, c_);                         \
            LOAD(x_, (x) + c_ * VL);                \
            s[c_ % NV] += q_ * x_;                  \
        }                                           \
    } while (0)

float WG_DOT_NAME(wg_q4_0_dot)(const uint8_t *row, const float *x, int64_t nb) {
    vf acc[NV] = {{0}};
    for (int64_t ib = 0; ib < nb; ib++, row += WG_Q4_0_BYTES, x += WG_QK) {
        const float d = wg_half_to_float(wg_load_le16(row));
        const uint8_t *qs = row + 2;
#define Q4_0_CHUNK(q, c)        \
    do {                        \
        vi n_;                  \
        NIBBLES(n_, qs, c);     \
        (q) = TO_F32(n_ - 8);   \
    } while (0)
        vf s[NV];
        BLOCK_SUM(s, x, Q4_0_CHUNK);
        UNROLL for (int v = 0; v < NV; v++) acc[v] += d * s[v];
    }
    return hsum(acc);
}

/* q4_1 and q5_1 values as the dequantizer makes them: q*d, then + m. */
float WG_DOT_NAME(wg_q4_1_dot)(const uint8_t *row, const float *x, int64_t nb) {
    vf acc[NV] = {{0}};
    for (int64_t ib = 0; ib < nb; ib++, row += WG_Q4_1_BYTES, x += WG_QK) {
        const float d = wg_half_to_float(wg_load_le16(row));
        const float m = wg_half_to_float(wg_load_le16(row + 2));
        const uint8_t *qs = row + 4;
#define Q4_1_CHUNK(q, c)          \
    do {                          \
        vi n_;                    \
        NIBBLES(n_, qs, c);       \
        (q) = TO_F32(n_) * d;     \
        (q) += m;                 \
    } while (0)
        vf s[NV];
        BLOCK_SUM(s, x, Q4_1_CHUNK);
        UNROLL for (int v = 0; v < NV; v++) acc[v] += s[v];
    }
    return hsum(acc);
}

float WG_DOT_NAME(wg_q5_0_dot)(const uint8_t *row, const float *x, int64_t nb) {
    vf acc[NV] = {{0}};
    for (int64_t ib = 0; ib < nb; ib++, row += WG_Q5_0_BYTES, x += WG_QK) {
        const float d = wg_half_to_float(wg_load_le16(row));
        const uint32_t qh = wg_load_le32(row + 2);
        const uint8_t *qs = row + 6;
#define Q5_0_CHUNK(q, c)              \
    do {                              \
        vi n_, h_;                    \
        NIBBLES(n_, qs, c);           \
        HIGH_BITS(h_, qh, c);         \
        (q) = TO_F32((n_ | h_) - 16); \
    } while (0)
        vf s[NV];
        BLOCK_SUM(s, x, Q5_0_CHUNK);
        UNROLL for (int v = 0; v < NV; v++) acc[v] += d * s[v];
    }
    return hsum(acc);
}

float WG_DOT_NAME(wg_q5_1_dot)(const uint8_t *row, const float *x, int64_t nb) {
    vf acc[NV] = {{0}};
    for (int64_t ib = 0; ib < nb; ib++, row += WG_Q5_1_BYTES, x += WG_QK) {
        const float d = wg_half_to_float(wg_load_le16(row));
        const float m = wg_half_to_float(wg_load_le16(row + 2));
        const uint32_t qh = wg_load_le32(row + 4);
        const uint8_t *qs = row + 8;
#define Q5_1_CHUNK(q, c)             \
    do {                             \
        vi n_, h_;                   \
        NIBBLES(n_, qs, c);          \
        HIGH_BITS(h_, qh, c);        \
        (q) = TO_F32(n_ | h_) * d;   \
        (q) += m;                    \
    } while (0)
        vf s[NV];
        BLOCK_SUM(s, x, Q5_1_CHUNK);
        UNROLL for (int v = 0; v < NV; v++) acc[v] += s[v];
    }
    return hsum(acc);
}

float WG_DOT_NAME(wg_q8_0_dot)(const uint8_t *row, const float *x, int64_t nb) {
    vf acc[NV] = {{0}};
    for (int64_t ib = 0; ib < nb; ib++, row += WG_Q8_0_BYTES, x += WG_QK) {
        const float d = wg_half_to_float(wg_load_le16(row));
        const uint8_t *qs = row + 2;
#define Q8_0_CHUNK(q, c)            \
    do {                            \
        const int8_t *b_ = (const int8_t *)qs + (c) * VL; \
        (q) = TO_F32(BYTES_TO_I32(b_)); \
    } while (0)
        vf s[NV];
        BLOCK_SUM(s, x, Q8_0_CHUNK);
        UNROLL for (int v = 0; v < NV; v++) acc[v] += d * s[v];
    }
    return hsum(acc);
}

/* Element-wise rows: vectors over whole groups of 8, then the reference's
 * scalar tail into the same lanes. DECODE(w, i) sets the float vector w to
 * row elements i .. i+VL-1. */
#define ROW_DOT(row, x, n, DECODE, SCALAR)                                      \
    do {                                                                        \
        vf acc_[NV] = {{0}};                                                    \
        int64_t i_ = 0;                                                         \
        for (; i_ + 8 <= (n); i_ += 8) {                                        \
            UNROLL for (int v_ = 0; v_ < NV; v_++) {                            \
                vf w_, x_;                                                      \
                DECODE(w_, i_ + v_ * VL);                                       \
                LOAD(x_, (x) + i_ + v_ * VL);                                   \
                acc_[v_] += w_ * x_;                                            \
            }                                                                   \
        }                                                                       \
        float a_[8];                                                            \
        memcpy(a_, acc_, sizeof a_);                                            \
        for (int k_ = 0; i_ + k_ < (n); k_++) a_[k_] += SCALAR(i_ + k_) * (x)[i_ + k_]; \
        return wg_sum8(a_);                                                     \
    } while (0)

float WG_DOT_NAME(wg_f32_dot)(const uint8_t *row, const float *x, int64_t n) {
#define F32_DECODE(w, i) LOAD(w, row + 4 * (i))
#define F32_SCALAR(i) f32_at(row, i)
    ROW_DOT(row, x, n, F32_DECODE, F32_SCALAR);
}

float WG_DOT_NAME(wg_bf16_dot)(const uint8_t *row, const float *x, int64_t n) {
#define BF16_DECODE(w, i)                                          \
    do {                                                           \
        vu16 h_;                                                   \
        LOAD(h_, row + 2 * (i));                                   \
        const vu bits_ = __builtin_convertvector(h_, vu) << 16;   \
        memcpy(&(w), &bits_, sizeof(w));                           \
    } while (0)
#define BF16_SCALAR(i) wg_bf16_bits_to_float(wg_load_le16(row + 2 * (i)))
    ROW_DOT(row, x, n, BF16_DECODE, BF16_SCALAR);
}

/* Halves decoded as wg_half_to_float does, with masks in place of selects. */
float WG_DOT_NAME(wg_f16_dot)(const uint8_t *row, const float *x, int64_t n) {
#define F16_DECODE(w, i)                                                         \
    do {                                                                         \
        vu16 h16_;                                                               \
        LOAD(h16_, row + 2 * (i));                                               \
        const vu h_ = __builtin_convertvector(h16_, vu);                         \
        const vu em_ = h_ & 0x7fffu;                                             \
        vu normal_ = (em_ << 13) + ((127u - 15u) << 23);                         \
        normal_ += (vu)(em_ >= 0x7c00u) & ((128u - 16u) << 23);                  \
        const vf sub_f_ = __builtin_convertvector((vi)em_, vf) * 0x1p-24f;       \
        vu sub_;                                                                 \
        memcpy(&sub_, &sub_f_, sizeof sub_);                                     \
        const vu is_sub_ = (vu)(em_ < 0x400u);                                   \
        const vu bits_ = ((h_ & 0x8000u) << 16) | (sub_ & is_sub_) | (normal_ & ~is_sub_); \
        memcpy(&(w), &bits_, sizeof(w));                                         \
    } while (0)
#define F16_SCALAR(i) wg_half_to_float(wg_load_le16(row + 2 * (i)))
    ROW_DOT(row, x, n, F16_DECODE, F16_SCALAR);
}

/* Four dot products of one f32 row with four vectors x, x + stride, ... : the row
 * is loaded once for all four, and four independent accumulators hide the
 * latency of the multiply-adds (the batched matmul's inner loop). */
void WG_DOT_NAME(wg_f32_dot4)(const float *w, const float *x, int64_t stride, int64_t n, float out[4]) {
    vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    const float *x1 = x + stride, *x2 = x1 + stride, *x3 = x2 + stride;
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        vf wv, v0, v1, v2, v3;
        LOAD(wv, w + i);
        LOAD(v0, x + i);
        LOAD(v1, x1 + i);
        LOAD(v2, x2 + i);
        LOAD(v3, x3 + i);
        a0 += wv * v0;
        a1 += wv * v1;
        a2 += wv * v2;
        a3 += wv * v3;
    }
    float s[4] = {0, 0, 0, 0};
    for (int l = 0; l < VL; l++) {
        s[0] += a0[l];
        s[1] += a1[l];
        s[2] += a2[l];
        s[3] += a3[l];
    }
    for (; i < n; i++) {
        s[0] += w[i] * x[i];
        s[1] += w[i] * x1[i];
        s[2] += w[i] * x2[i];
        s[3] += w[i] * x3[i];
    }
    memcpy(out, s, sizeof s);
}

#else /* no vector types: the references */

float wg_q4_0_dot(const uint8_t *row, const float *x, int64_t nb) { return wg_q4_0_dot_ref(row, x, nb); }
float wg_q4_1_dot(const uint8_t *row, const float *x, int64_t nb) { return wg_q4_1_dot_ref(row, x, nb); }
float wg_q5_0_dot(const uint8_t *row, const float *x, int64_t nb) { return wg_q5_0_dot_ref(row, x, nb); }
float wg_q5_1_dot(const uint8_t *row, const float *x, int64_t nb) { return wg_q5_1_dot_ref(row, x, nb); }
float wg_q8_0_dot(const uint8_t *row, const float *x, int64_t nb) { return wg_q8_0_dot_ref(row, x, nb); }
float wg_f32_dot(const uint8_t *row, const float *x, int64_t n) { return wg_f32_dot_ref(row, x, n); }
float wg_f16_dot(const uint8_t *row, const float *x, int64_t n) { return wg_f16_dot_ref(row, x, n); }
float wg_bf16_dot(const uint8_t *row, const float *x, int64_t n) { return wg_bf16_dot_ref(row, x, n); }
void wg_f32_dot4(const float *w, const float *x, int64_t stride, int64_t n, float out[4]) {
    for (int t = 0; t < 4; t++) {
        float s = 0.0f;
        for (int64_t i = 0; i < n; i++) s += w[i] * x[t * stride + i];
        out[t] = s;
    }
}

#endif
