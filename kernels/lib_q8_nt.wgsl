// The shared part of the batched-decode int8 kernels (matvec_q8_nt*.wgsl: quantized rows
// times a few tokens' int8 x, 2 to NT tokens per dispatch). Put in front of such a kernel by
// the host, after the weight format's q8dot_<fmt>.wgsl (see lib_q8_x.wgsl). The kernel
// provides `params` (with k, n and x_tok0), the bindings xq (vec4 words) and xs, and wword
// (lib_q8_mat_io.wgsl or lib_q8_qkv_io.wgsl, shared with the batch tiles, give them).
// The host also puts in front, for the kernel's width NT (8, 16 or 32 tokens; wgpu_q8_gen.c):
// TPR, RG, NT and RPG, and the per-row and per-token code: the group's rows (RowIdx,
// RowSums, rows_load, rows_unpack, tok_dot), struct Acc (a named RowSums per token, so the
// sums stay in registers, not in local memory as an indexed array may), acc_tokens,
// token_sum, acc_chunk_put / acc_chunk_take and xor_sum.
//
// A workgroup is RG groups of TPR threads; a group owns RPG rows (rows of one matrix, or
// rows of two) and its threads split the rows' blocks, so each sum spans only TPR threads.
// Each x word a thread loads serves all the group's rows: more rows a group read less x
// (which the wide kernels wait on), fewer keep more warps in flight to hide the memory
// latency (the host picks RPG per width). Each thread loads its next blocks before it works
// on the current ones, so the loads overlap the arithmetic. A decoded unit meets the x of
// all the dispatch's tokens: the wider the kernel, the fewer times a step reads its weights.

const WG: u32 = TPR * RG;

// This thread's share (units t, t + TPR, ...) of the group's rows (row i: row[i] of matrix
// sel[i]) for every token.
fn dots(sel: RowIdx, row: RowIdx, t: u32, live: bool) -> Acc {
    let nu = params.k / 32u;
    var acc: Acc;
    // the first units' words, then always one iteration ahead
    var u = t;
    var w: RowsW;
    if (live && u < nu) {
        w = rows_load(sel, row, u, nu);
    }
    for (; live && u < nu; u += TPR) {
        let b = rows_unpack(w, row, u, nu);
        let un = u + TPR;
        if (un < nu) {
            w = rows_load(sel, row, un, nu);
        }
        acc_tokens(&acc, b, params.x_tok0, u, nu, params.n);
    }
    return acc;
}

// Lane l's sum of token 8 c + j of group g (chunk c): partial[(g * 8 + j) * TPR + l],
// component i = row i. One chunk of 8 tokens at a time: 16 KiB for 16 rows of 32 lanes.
var<workgroup> partial: array<RowSums, RG * 8u * TPR>;

// The group's sums by a workgroup-memory tree, 8 tokens at a time (every thread of the
// workgroup calls it).
fn tree_sum(acc: Acc, grp: u32, t: u32) -> Acc {
    let pb = grp * 8u * TPR;
    var s = acc;
    for (var c = 0u; c < NT / 8u; c++) {
        workgroupBarrier(); // the previous chunk is read
        acc_chunk_put(pb, t, acc, c);
        for (var half = TPR / 2u; half > 0u; half >>= 1u) {
            workgroupBarrier();
            if (t < half) {
                for (var j = 0u; j < 8u; j++) {
                    partial[pb + j * TPR + t] += partial[pb + j * TPR + t + half];
                }
            }
        }
        workgroupBarrier();
        acc_chunk_take(pb, &s, c);
    }
    return s;
}

// The group's sums, in every lane of the group (every thread of the workgroup calls it; sgs:
// the subgroup size, 0 without subgroups). The host keeps one of the two versions.

// SUBGROUPS-BEGIN
// Subgroups of at least TPR lanes hold whole groups (both are aligned runs of
// local_invocation_index): a butterfly of shuffles within 32 lanes sums a group without
// workgroup memory or barriers. Smaller subgroups take the tree.
fn group_sums(acc: Acc, grp: u32, t: u32, sgs: u32) -> Acc {
    if (sgs < TPR) {
        return tree_sum(acc, grp, t);
    }
    var s = acc;
    for (var mask = TPR / 2u; mask > 0u; mask >>= 1u) {
        s = xor_sum(s, mask);
    }
    return s;
}
// SUBGROUPS-END
// NO-SUBGROUPS-BEGIN
fn group_sums(acc: Acc, grp: u32, t: u32, sgs: u32) -> Acc {
    return tree_sum(acc, grp, t);
}
// NO-SUBGROUPS-END
