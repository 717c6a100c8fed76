/* The batched-decode int8 products (wgpu_q8_batch.h): the tile for a step's token count
 * and the three kernels' dispatches. The callers in wgpu_ops.c have checked the operands
 * and made x's int8 copy. */
#include "backend/webgpu/wgpu_q8_batch.h"

#include "backend/webgpu/wgpu_internal.h"

typedef struct {
    int max_n;
    uint32_t tm, tn;
    int rt, tt;
} tile;

#define WGB_Q8_BATCH_CHECK(maxn, tm, tn, rt, tt)                                                           \
    _Static_assert((tm) / (rt) * ((tn) / (tt)) == 256 && (rt) % 2 == 0 && 256 % (tm) == 0 &&               \
                       (2 * (tn) * (256 / (tm))) % 256 == 0 && (tn) * (256 / (tm)) <= 256 && (tn) >= (maxn), \
                   "batched int8 tile " #tm "x" #tn ": not 256 threads, RT odd or staging uneven");
WGB_Q8_BATCH_TILES(WGB_Q8_BATCH_CHECK)
#undef WGB_Q8_BATCH_CHECK

#define WGB_Q8_BATCH_ROW(maxn, tm, tn, rt, tt) {maxn, tm, tn, rt, tt},
static const tile k_tiles[WGB_Q8_BATCH_TILE_COUNT] = {WGB_Q8_BATCH_TILES(WGB_Q8_BATCH_ROW)};
#undef WGB_Q8_BATCH_ROW

#define WGB_Q8_BATCH_WGSL(maxn, tm, tn, rt, tt) \
    "const TM: u32 = " #tm "u;\nconst TN: u32 = " #tn "u;\nconst RT: u32 = " #rt "u;\nconst TT: u32 = " #tt "u;\n",
static const char *const k_prefix[WGB_Q8_BATCH_TILE_COUNT] = {WGB_Q8_BATCH_TILES(WGB_Q8_BATCH_WGSL)};
#undef WGB_Q8_BATCH_WGSL

wgb_q8_batch_kernel wgb_q8_batch_spec(int variant) {
    /* the plain and q/k/v kernels share their parameters and bindings with the nt matvecs */
    static const wgb_q8_batch_kernel modes[WGB_Q8_BATCH_MODES] = {
        {.body = "matmul_q8", .access = "rrrw", .lib = "lib_q8_batch lib_q8_mat_io", .tag = "batch"},
        {.body = "matmul_q8_batch_qkv", .access = "rrrrrwww", .lib = "lib_q8_batch lib_q8_qkv_io"},
        {.body = "matmul_q8_batch_swiglu", .access = "rrrrw", .lib = "lib_q8_batch", .pairs = true},
    };
    wgb_q8_batch_kernel s = modes[variant % WGB_Q8_BATCH_MODES];
    const int t = variant / WGB_Q8_BATCH_MODES;
    s.prefix = k_prefix[t];
    s.rt = k_tiles[t].rt;
    s.tt = k_tiles[t].tt;
    return s;
}

bool wgb_q8_batch_takes(int n) { return n >= WGB_Q8_BATCH_MIN_N && n <= WGB_Q8_BATCH_MAX_N; }

/* The first tile holding all n tokens (else the last, in several token tiles). */
static int tile_for(int n) {
    int t = 0;
    while (t + 1 < WGB_Q8_BATCH_TILE_COUNT && k_tiles[t].max_n < n) t++;
    return t;
}

static void dispatch(wgb_ctx *c, int f, int mode, int n, const void *p, size_t bytes, const wgb_bind *bb, uint64_t rows,
                     bool halves) {
    const int t = tile_for(n);
    const uint64_t per = halves ? k_tiles[t].tm / 2 : k_tiles[t].tm;
    const uint64_t gx = (rows + per - 1) / per, gy = ((uint64_t)n + k_tiles[t].tn - 1) / k_tiles[t].tn;
    if (gx > c->max_groups || gy > c->max_groups) {
        wgb_fail(c, "webgpu backend: batched matmul too large for one dispatch");
        return;
    }
    wgb_dispatch(c, WGB_K_Q8_BATCH + f * WGB_Q8_BATCH_KERNELS + t * WGB_Q8_BATCH_MODES + mode, p, bytes, bb, (uint32_t)gx, (uint32_t)gy);
}

void wgb_q8_batch_matmul(wgb_ctx *c, int f, const wgb_bind *bb, int64_t k, int64_t rows, int64_t y_off, int64_t y_stride,
                         int n, bool accumulate) {
    /* lib_q8_mat_io.wgsl's Params */
    uint32_t p[8] = {(uint32_t)k, (uint32_t)rows, (uint32_t)y_off, accumulate, (uint32_t)n, (uint32_t)y_stride, 0, 0};
    dispatch(c, f, WGB_Q8_BATCH_PLAIN, n, p, sizeof p, bb, (uint64_t)rows, false);
}

void wgb_q8_batch_qkv(wgb_ctx *c, int f, const wgb_bind *bb, int64_t k, int64_t m_q, int64_t m_kv, int n,
                      int64_t q_stride, int64_t kv_stride) {
    const uint64_t tm = k_tiles[tile_for(n)].tm;
    /* the q tiles, then k's and v's: each matrix's rows in whole tiles */
    const uint64_t rows = ((uint64_t)m_q + tm - 1) / tm * tm + 2 * (((uint64_t)m_kv + tm - 1) / tm * tm);
    /* lib_q8_qkv_io.wgsl's Params */
    uint32_t p[8] = {(uint32_t)k, (uint32_t)m_q, (uint32_t)m_kv, (uint32_t)n, (uint32_t)q_stride, (uint32_t)kv_stride,
                     0, 0};
    dispatch(c, f, WGB_Q8_BATCH_QKV, n, p, sizeof p, bb, rows, false);
}

void wgb_q8_batch_swiglu(wgb_ctx *c, int f, const wgb_bind *bb, int64_t k, int64_t m, int n) {
    uint32_t p[4] = {(uint32_t)k, (uint32_t)m, (uint32_t)n, 0};
    dispatch(c, f, WGB_Q8_BATCH_SWIGLU, n, p, sizeof p, bb, (uint64_t)m, true);
}
