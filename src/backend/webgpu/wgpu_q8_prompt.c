/* The int8 prompt tiles (wgpu_q8_prompt.h): their shapes, the pick of one per product and
 * its dispatch. The caller in wgpu_ops.c has checked the operands and made x's int8 copy. */
#include "backend/webgpu/wgpu_q8_prompt.h"

#include "backend/webgpu/wgpu_autotune.h"
#include "backend/webgpu/wgpu_internal.h"

#define WGB_Q8_PROMPT_CHECK(name, tm, tn, rt, tt, kb)                                                        \
    _Static_assert((tm) % (rt) == 0 && (tn) % (tt) == 0 && (tm) / (rt) * ((tn) / (tt)) == 256 &&              \
                       (tt) % 4 == 0 && (tm) * (kb) == 256 && (2 * (kb) * (tn)) % 256 == 0 && (kb) * (tn) <= 256, \
                   "int8 prompt tile " name ": not 256 threads, or staging uneven");
WGB_Q8_PROMPT_TILES(WGB_Q8_PROMPT_CHECK)
#undef WGB_Q8_PROMPT_CHECK

typedef struct {
    const char *name, *prefix;
    uint32_t tm, tn, wg_bytes;
    int rt, tt;
} tile;

/* workgroup memory of lib_q8_batch.wgsl: per staged row and block two vec4s of bytes, a vec2
 * of scales and a min (44 bytes); per token and block two vec4s, a scale and two sums */
#define WGB_Q8_PROMPT_ROW(name, tm, tn, rt, tt, kb)                                                              \
    {name,                                                                                                       \
     "const TM: u32 = " #tm "u;\nconst TN: u32 = " #tn "u;\nconst RT: u32 = " #rt "u;\nconst TT: u32 = " #tt    \
     "u;\n",                                                                                                    \
     tm, tn, 44u * (kb) * ((tm) + (tn)), rt, tt},
static const tile k_tiles[WGB_Q8_PROMPT_TILE_COUNT] = {WGB_Q8_PROMPT_TILES(WGB_Q8_PROMPT_ROW)};
#undef WGB_Q8_PROMPT_ROW

static bool valid(int t) { return t >= 0 && t < WGB_Q8_PROMPT_TILE_COUNT; }

const char *wgb_q8_prompt_prefix(int t) { return valid(t) ? k_tiles[t].prefix : NULL; }
void wgb_q8_prompt_thread(int t, int *rt, int *tt) {
    *rt = valid(t) ? k_tiles[t].rt : 0;
    *tt = valid(t) ? k_tiles[t].tt : 0;
}
const char *wgb_q8_prompt_name(int t) { return valid(t) ? k_tiles[t].name : "?"; }
uint32_t wgb_q8_prompt_wg_bytes(int t) { return valid(t) ? k_tiles[t].wg_bytes : UINT32_MAX; }
int wgb_q8_prompt_kernel(int f, int t) { return WGB_K_Q8_MATMUL + f * WGB_Q8_PROMPT_TILE_COUNT + t; }

bool wgb_q8_prompt_fits(const wgb_ctx *c, int t) {
    return t == 0 || (valid(t) && k_tiles[t].wg_bytes <= c->dev->limits.max_compute_workgroup_storage_size);
}

int wgb_q8_prompt_tile(wgb_ctx *c, int f, int n) {
    const int t = wgb_autotune_pick(c, WGB_TUNE_Q8_PROMPT, n);
    if (t <= 0 || !valid(t) || !wgb_q8_prompt_fits(c, t)) return 0;
    if (c->pl.k[wgb_q8_prompt_kernel(f, t)].pipe) return t;
    char err[1024];
    if (!wgb_pipelines_add_q8_prompt(c->dev, &c->pl, f, t, err, sizeof err)) {
        wgb_fail(c, "%s", err);
        return 0;
    }
    return t;
}

void wgb_q8_prompt_matmul(wgb_ctx *c, int f, int t, const wgb_bind *bb, int64_t k, int64_t rows, int64_t y_off,
                          int64_t y_stride, int n, bool accumulate) {
    if (!valid(t)) t = 0;
    /* lib_q8_mat_io.wgsl's Params */
    uint32_t p[8] = {(uint32_t)k, (uint32_t)rows, (uint32_t)y_off, accumulate, (uint32_t)n, (uint32_t)y_stride, 0, 0};
    const uint64_t gx = ((uint64_t)rows + k_tiles[t].tm - 1) / k_tiles[t].tm;
    const uint64_t gy = ((uint64_t)n + k_tiles[t].tn - 1) / k_tiles[t].tn;
    if (gx > c->max_groups || gy > c->max_groups) {
        wgb_fail(c, "webgpu backend: matmul too large for one dispatch");
        return;
    }
    wgb_dispatch(c, wgb_q8_prompt_kernel(f, t), p, sizeof p, bb, (uint32_t)gx, (uint32_t)gy);
}
