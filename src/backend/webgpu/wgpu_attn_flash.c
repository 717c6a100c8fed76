/* Prompt attention through kernels/attention_flash.wgsl: the query rows of a prompt in tiles
 * that read each K/V tile once for the whole tile (and for all heads of a GQA group), where
 * attention.wgsl re-reads the cache prefix for every query row. On lavapipe (2 cores), a
 * 512-token prompt of a 2-layer model with head_dim 64 and 8 query heads per kv head spent
 * 1.39 s in attention (timestamp queries, WGLLM_WEBGPU_PROFILE=1) against 5.41 s in
 * attention.wgsl (WGLLM_WEBGPU_FLASH_ATTN=0). On an H100 it is slower than attention.wgsl
 * (a 7B pp512 at 1,467 against 2,290 tok/s), so a GPU adapter takes it only when asked. */
#include <math.h>
#include <string.h>

#include "backend/webgpu/wgpu_internal.h"

/* Workgroups that keep a large GPU busy: below this the positions are split over more
 * workgroups (a short prompt after a long history) and the splits merged by
 * attention_combine.wgsl. */
#define FA_BUSY_GROUPS 512u
/* Positions a split takes at least: a split of few tiles would spend its time loading q. */
#define FA_SPLIT_MIN 256u

bool wgb_flash_attention(wgb_ctx *c, wgb_bind qb, int64_t q_stride, wgb_bind kb, wgb_bind vb, bool half,
                         int64_t kv_stride, int pos0, int n, int n_head, int n_head_kv, int head_dim, int window,
                         wg_tensor *out, int row0) {
    const int k = wgb_flash_kernel(head_dim, half);
    if (c->flash_min_tokens == 0 || (uint32_t)n < c->flash_min_tokens || k < 0) return false;
    char err[1024];
    if (!wgb_pipelines_add_flash(c->dev, &c->pl, k, err, sizeof err)) {
        if (!err[0]) return false; /* the device cannot have it */
        wgb_fail(c, "%s", err);
        return true;
    }
    const uint32_t group = (uint32_t)(n_head / n_head_kv);
    const uint64_t rows = (uint64_t)n * group, tiles = (rows + WGB_FA_ROWS - 1) / WGB_FA_ROWS;
    /* positions a workgroup sees at most: a window plus the tokens of its rows, or all */
    uint64_t span = (uint64_t)pos0 + (uint64_t)n;
    if (window > 0 && (uint64_t)window + WGB_FA_ROWS < span) span = (uint64_t)window + WGB_FA_ROWS;
    uint64_t n_split = 1, groups = tiles * (uint64_t)n_head_kv;
    if (groups < FA_BUSY_GROUPS && span > FA_SPLIT_MIN) {
        n_split = (FA_BUSY_GROUPS + groups - 1) / groups;
        if (n_split > span / FA_SPLIT_MIN) n_split = span / FA_SPLIT_MIN;
    }
    if (tiles * n_split > c->max_groups) n_split = 1;
    if (tiles > c->max_groups || rows > UINT32_MAX) return false;

    struct {
        uint32_t n_head, group, n_rows, pos0, q_stride, kv_stride, out_stride, scale, n_split, row0, window, pad0;
    } p = {(uint32_t)n_head, group, (uint32_t)rows, (uint32_t)pos0, (uint32_t)q_stride, (uint32_t)kv_stride,
           (uint32_t)out->ne0, 0, (uint32_t)n_split, (uint32_t)row0, window > 0 ? (uint32_t)window : 0, 0};
    const float scale = 1.0f / sqrtf((float)head_dim);
    memcpy(&p.scale, &scale, sizeof p.scale);
    wgb_bind part;
    const uint64_t part_floats = (uint64_t)n * (uint64_t)n_head * n_split * (uint64_t)(head_dim + 2);
    if (!wgb_scratch(c, WGB_SCRATCH_ATTN, n_split > 1 ? part_floats * 4 : 256, &part)) return true;
    wgb_bind bb[5] = {qb, kb, vb, wgb_act(out), part};
    wgb_dispatch(c, k, &p, sizeof p, bb, (uint32_t)(tiles * n_split), (uint32_t)n_head_kv);
    if (n_split > 1) {
        wgb_bind xq, xs; /* bound, unused: the merge writes no int8 copy here */
        if (!wgb_scratch(c, WGB_SCRATCH_XQ, 4, &xq) || !wgb_scratch(c, WGB_SCRATCH_XS, 4, &xs)) return true;
        uint32_t pc[8] = {(uint32_t)n_head, (uint32_t)head_dim, (uint32_t)n_split, (uint32_t)out->ne0,
                          (uint32_t)row0, 0, 0, 0};
        wgb_bind cb[4] = {part, wgb_act(out), xq, xs};
        wgb_dispatch(c, WGB_K_ATTN_COMBINE, pc, sizeof pc, cb, (uint32_t)n_head, (uint32_t)n);
    }
    return true;
}
