/* Batched decode steps of 9 to 64 tokens (several sequences decoding together) with weights
 * of an int8 format (WGB_Q8F_*): tiled int8 products that read each weight tile once for every token of the step
 * (kernels/lib_q8_batch.wgsl and its three kernels: the plain product, q/k/v in one
 * dispatch, gate/up + SwiGLU). Below 9 tokens the nt matvecs take one pass; above 64 the
 * prompt kernel's bigger tiles fill the GPU.
 *
 * The tile shapes are defined here once: each becomes WGSL constants put in front of the
 * kernels (wgb_q8_batch_prefix) and sizes the dispatches. */
#ifndef WGLLM_WGPU_Q8_BATCH_H
#define WGLLM_WGPU_Q8_BATCH_H

#include <stdbool.h>
#include <stdint.h>

#define WGB_Q8_BATCH_MIN_N 9
#define WGB_Q8_BATCH_MAX_N 64

/* X(max tokens, TM rows, TN tokens, RT rows per thread, TT tokens per thread), by rising
 * max tokens: a step takes the first tile whose TN holds all its tokens, so the weights are
 * read once. (TM / RT) * (TN / TT) = 256 threads; RT even (the SwiGLU kernel pairs a thread's
 * gate and up rows); 256 / TM blocks a step. Smaller steps get narrower row tiles: more
 * workgroups on a big GPU where the work per tile is small. */
#define WGB_Q8_BATCH_TILES(X) \
    X(16, 32, 16, 2, 1)       \
    X(32, 64, 32, 4, 2)       \
    X(64, 64, 64, 4, 4)

enum { WGB_Q8_BATCH_PLAIN, WGB_Q8_BATCH_QKV, WGB_Q8_BATCH_SWIGLU, WGB_Q8_BATCH_MODES };

#define WGB_Q8_BATCH_COUNT_TILE(maxn, tm, tn, rt, tt) +1
enum { WGB_Q8_BATCH_TILE_COUNT = 0 WGB_Q8_BATCH_TILES(WGB_Q8_BATCH_COUNT_TILE) };
#undef WGB_Q8_BATCH_COUNT_TILE
/* kernels of one int8 format: WGB_K_Q8_BATCH + format * WGB_Q8_BATCH_KERNELS + tile * WGB_Q8_BATCH_MODES + mode
 * (wgpu_pipelines.h) */
#define WGB_Q8_BATCH_KERNELS (WGB_Q8_BATCH_TILE_COUNT * WGB_Q8_BATCH_MODES)

/* How kernel `variant` (0 .. WGB_Q8_BATCH_KERNELS - 1) of a format is built. */
typedef struct {
    const char *body, *access; /* kernel file; storage access string */
    const char *prefix, *lib;  /* the WGSL constants of its tile; its libraries */
    const char *tag;           /* label suffix (the plain product: matmul_q4_0_q8_batch), or NULL */
    int rt, tt;                /* a thread's rows and tokens (its generated code: wgb_q8_tile_wgsl) */
    bool pairs;                /* the gate/up kernel: its sums stored as gate/up pairs */
} wgb_q8_batch_kernel;
wgb_q8_batch_kernel wgb_q8_batch_spec(int variant);

struct wgb_ctx;
struct wgb_bind;

/* Whether a step of n tokens takes these kernels. */
bool wgb_q8_batch_takes(int n);
/* The products of weights of int8 format f (WGB_Q8F_*; the format's kernels built):
 * y (+)= W x for one weight binding: bb = {w, xq, xs, y}; rows of the binding, written at
 * y[y_off + t * y_stride + r]. */
void wgb_q8_batch_matmul(struct wgb_ctx *c, int f, const struct wgb_bind *bb, int64_t k, int64_t rows, int64_t y_off,
                         int64_t y_stride, int n, bool accumulate);
/* q, k, v = Wq x, Wk x, Wv x: bb = {Wq, Wk, Wv, xq, xs, q, k, v}. */
void wgb_q8_batch_qkv(struct wgb_ctx *c, int f, const struct wgb_bind *bb, int64_t k, int64_t m_q, int64_t m_kv, int n,
                      int64_t q_stride, int64_t kv_stride);
/* y = silu(Wg x) * (Wu x), packed rows of m: bb = {Wg, Wu, xq, xs, y}. */
void wgb_q8_batch_swiglu(struct wgb_ctx *c, int f, const struct wgb_bind *bb, int64_t k, int64_t m, int n);

#endif
