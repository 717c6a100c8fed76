// The shared part of the batched-decode int8 kernels (matvec_q8_nt*.wgsl: quantized rows
// times a few tokens' int8 x, 2 to NT tokens per dispatch). Put in front of such a kernel by
// the host, after the weight format's q8dot_<fmt>.wgsl (see lib_q8_x.wgsl). The kernel
// provides `params` (with k, n and x_tok0), the bindings xq (vec4 words) and xs, and wword
// (lib_q8_mat_io.wgsl or lib_q8_qkv_io.wgsl, shared with the batch tiles, give them).
// The host also puts in front, for the kernel's width NT (8, 16 or 32 tokens; wgpu_q8_gen.c):
// TPR, RG, NT, RPG, LANES and TREE_W, and the per-row and per-token code: the group's rows
// (RowIdx, RowSums, rows_load, rows_unpack, tok_dot), struct Acc (a named RowSums per token,
// so the sums stay in registers, not in local memory as an indexed array may), acc_tokens,
// token_sum, acc_chunk_put / acc_chunk_take and xor_sum.
//
// A workgroup is RG groups of TPR threads; a group owns RPG rows (rows of one matrix, or
// rows of two) and its threads split the rows' blocks, so each sum spans only TPR threads.
// Each x word a thread loads serves all the group's rows: more rows a group read less x
// (which the wide kernels wait on), fewer keep more warps in flight to hide the memory
// latency (the host picks RPG per width). Each thread loads its next blocks before it works
// on the current ones, so the loads overlap the arithmetic. A decoded unit meets the x of
// all the dispatch's tokens: the wider the kernel, the fewer times a step reads its weights.
//
// Where the threads sit (group_place): with LANES = TPR a group is one run of TPR threads.
// With fewer, a run of TPR threads holds TPR / LANES groups of LANES threads side by side,
// each walking the same units of its own rows: in a subgroup they load the same x words in
// one instruction, so the run reads x once for all their rows. A group's TPR threads then
// span TPR / LANES such runs, whose partial sums meet in workgroup memory at the end.

const WG: u32 = TPR * RG;
const GROUPS_A_RUN: u32 = TPR / LANES;

// Thread li's group in the workgroup and its place t in the group (its units: t, t + TPR, ...).
fn group_place(li: u32) -> vec2<u32> {
    let blk = li / (TPR * GROUPS_A_RUN); // GROUPS_A_RUN groups over as many runs
    let r = li % (TPR * GROUPS_A_RUN);
    let run = r / TPR;
    let lane = r % TPR;
    return vec2<u32>(blk * GROUPS_A_RUN + lane / LANES, run * LANES + lane % LANES);
}

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

// Partial sum l of token 8 c + j of group g (chunk c): partial[(g * 8 + j) * TREE_W + l],
// component i = row i. One chunk of 8 tokens at a time: 16 KiB for 16 rows of 32 lanes where
// the tree may sum every thread (TREE_W = TPR), a fraction where it only adds runs.
var<workgroup> partial: array<RowSums, RG * 8u * TREE_W>;

// The sum of n partial sums of the group (n a power of two; the thread holding partial i < n
// passes i, the others n or more) by a workgroup-memory tree, 8 tokens at a time. Every
// thread of the workgroup calls it and gets its group's sums.
fn tree_sum(acc: Acc, grp: u32, i: u32, n: u32) -> Acc {
    let pb = grp * 8u * TREE_W;
    var s = acc;
    for (var c = 0u; c < NT / 8u; c++) {
        workgroupBarrier(); // the previous chunk is read
        if (i < n) {
            acc_chunk_put(pb, i, acc, c);
        }
        for (var half = n / 2u; half > 0u; half >>= 1u) {
            workgroupBarrier();
            if (i < half) {
                for (var j = 0u; j < 8u; j++) {
                    partial[pb + j * TREE_W + i] += partial[pb + j * TREE_W + i + half];
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
// Subgroups of at least LANES lanes hold a group's threads of one run whole (both are aligned
// runs of local_invocation_index): a butterfly of shuffles sums them without workgroup memory
// or barriers, and the tree only adds the runs' sums (none when LANES = TPR). Smaller
// subgroups take the tree for every thread (the host sizes it for that, TREE_W = TPR, unless
// the device's smallest subgroup holds LANES).
fn group_sums(acc: Acc, grp: u32, t: u32, sgs: u32) -> Acc {
    if (sgs < LANES && TREE_W == TPR) {
        return tree_sum(acc, grp, t, TPR);
    }
    var s = acc;
    for (var mask = LANES / 2u; mask > 0u; mask >>= 1u) {
        s = xor_sum(s, mask);
    }
    if (GROUPS_A_RUN == 1u) {
        return s;
    }
    return tree_sum(s, grp, select(TPR, t / LANES, t % LANES == 0u), TPR / LANES);
}
// SUBGROUPS-END
// NO-SUBGROUPS-BEGIN
fn group_sums(acc: Acc, grp: u32, t: u32, sgs: u32) -> Acc {
    return tree_sum(acc, grp, t, TPR);
}
// NO-SUBGROUPS-END
