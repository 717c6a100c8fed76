/* Generated WGSL for the int8 kernels' per-thread registers. WGSL cannot give a struct or a
 * call sequence a length from a constant, and an array of accumulators indexed in a loop may
 * live in local memory instead of registers (an H100 ran such a tile 33-57% slower), so each
 * shape gets named fields and unrolled calls, written here once:
 *   - the nt kernels (kernels/lib_q8_nt.wgsl): the per-token sums of a width of NT tokens;
 *   - the int8 tiles (kernels/lib_q8_batch.wgsl): a thread's RT rows x TT tokens. */
#ifndef WGLLM_WGPU_Q8_GEN_H
#define WGLLM_WGPU_Q8_GEN_H

#include <stdbool.h>

/* The WGSL text for nt tokens (a multiple of 8) of rpg rows a group (2 or 4), whose threads
 * sit `lanes` (8, 16 or 32) side by side in a run of WGB_Q8_NT_TPR: the rows' types and loads
 * (RowIdx, RowSums, RowsW, RowsB, rows_load, rows_unpack, tok_dot), struct Acc, acc_tokens,
 * token_sum, the chunked workgroup-memory sums and (between the SUBGROUPS markers) xor_sum,
 * plus the constants TPR, RG, NT, RPG, LANES, TREE_W, ROW_OFFS, PAIR_SEL and PAIR_OFFS.
 * min_subgroup: the device's smallest subgroup where the kernel takes its subgroup variant,
 * else 0; where it holds `lanes`, the workgroup-memory tree is sized for the runs' sums only
 * (workgroup memory takes from the L1 cache on some GPUs). A malloc'ed string, NULL when out
 * of memory or the shape is not one of those. */
char *wgb_q8_nt_wgsl(int nt, int rpg, int lanes, unsigned min_subgroup);

/* The WGSL text of an int8 tile thread of rt rows x tt tokens (tt 1, 2 or a multiple of 4,
 * rt * tt <= 64): struct Acc (row i, tokens 4c .. 4c + 3 in field a<i>_<c>), tile_step (one
 * staged block's products into the accumulators) and tile_store(a: Acc, c: PutCtx), which
 * hands each sum to the kernel's fn acc_put(c, i, j, v) or, with pairs (rt even: gate rows
 * i < rt / 2, up rows i + rt / 2), each gate/up pair to fn pair_put(c, i, j, g, u). A
 * malloc'ed string, NULL when out of memory or the shape is not one of those. */
char *wgb_q8_tile_wgsl(int rt, int tt, bool pairs);

#endif
