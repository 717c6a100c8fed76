// The shared part of the batched-decode int8 kernels (matvec_q8_nt*.wgsl: quantized rows
// times a few tokens' int8 x, 2 to NT tokens per dispatch). Put in front of such a kernel by
// the host, after the weight format's q8dot_<fmt>.wgsl (see lib_q8_x.wgsl). The kernel
// provides `params` (with k, n and x_tok0), the bindings xq (vec4 words) and xs, and wword
// (lib_q8_mat_io.wgsl or lib_q8_qkv_io.wgsl, shared with the batch tiles, give them).
// The host also puts in front, for the kernel's width NT (8, 16 or 32 tokens; wgpu_q8_gen.c):
// TPR, RG and NT, and the per-token code: struct Acc (a named vec2 per token, so the sums
// stay in registers, not in local memory as an indexed array may), acc_tokens, token_sum,
// acc_chunk_put / acc_chunk_take and xor_sum.
//
// A workgroup is RG groups of TPR threads; a group owns two rows (a pair of rows of one
// matrix, or the same row of two) and its threads split the rows' blocks, so each sum spans
// only TPR threads. Two rows per group (not more) keep enough warps in flight to hide the
// memory latency. Each thread loads its next blocks before it works on the current ones, so
// the loads overlap the arithmetic. A decoded unit meets the x of all the dispatch's
// tokens: the wider the kernel, the fewer times a step reads its weights.

const WG: u32 = TPR * RG;

// Both rows' contributions of unit u for token tok.
fn tok_dot(b0: Q8W, b1: Q8W, tok: u32, u: u32, nu: u32) -> vec2<f32> {
    let x = q8_x(tok * (params.k / 16u), tok * nu, u);
    return vec2<f32>(q8_dot(b0, x), q8_dot(b1, x));
}

// This thread's share (units t, t + TPR, ...) of row ra of matrix sa and row rb of matrix sb
// for every token.
fn dots(sa: u32, sb: u32, ra: u32, rb: u32, t: u32, live: bool) -> Acc {
    let nu = params.k / 32u;
    var acc: Acc;
    // the first units' words, then always one iteration ahead
    var u = t;
    var w0 = array<u32, Q8_WORDS>();
    var w1 = array<u32, Q8_WORDS>();
    if (live && u < nu) {
        w0 = q8_load(sa, ra, u, nu);
        w1 = q8_load(sb, rb, u, nu);
    }
    for (; live && u < nu; u += TPR) {
        let blk0 = q8_unpack(w0, ra, u, nu);
        let blk1 = q8_unpack(w1, rb, u, nu);
        let un = u + TPR;
        if (un < nu) {
            w0 = q8_load(sa, ra, un, nu);
            w1 = q8_load(sb, rb, un, nu);
        }
        acc_tokens(&acc, blk0, blk1, params.x_tok0, u, nu, params.n);
    }
    return acc;
}

// Lane l's sum of token 8 c + j of group g (chunk c): partial[(g * 8 + j) * TPR + l],
// component r = row. One chunk of 8 tokens at a time: 16 KiB for 8 groups of 32.
var<workgroup> partial: array<vec2<f32>, RG * 8u * TPR>;

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
