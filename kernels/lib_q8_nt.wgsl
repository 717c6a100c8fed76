// The shared part of the batched-decode int8 kernels (matvec_q8_nt*.wgsl: quantized rows
// times a few tokens' int8 x, 2 to NT tokens per dispatch). Put in front of such a kernel by
// the host, after the weight format's q8dot_<fmt>.wgsl (see lib_q8_x.wgsl). The kernel
// provides `params` (with k, n and x_tok0), the bindings xq (vec4 words) and xs, and wword
// (lib_q8_mat_io.wgsl or lib_q8_qkv_io.wgsl, shared with the batch tiles, give them).
// TPR, RG and NT (8) are declared in front by the host.
//
// A workgroup is RG groups of TPR threads; a group owns two rows (a pair of rows of one
// matrix, or the same row of two) and its threads split the rows' blocks, so each sum spans
// only TPR threads. Two rows per group (not more) keep enough warps in flight to hide the
// memory latency; the per-token accumulators are named registers, not an indexed array, so
// they are not spilled to local memory. Each thread loads its next blocks before it works on
// the current ones, so the loads overlap the arithmetic.

const WG: u32 = TPR * RG;
const_assert NT == 8u; // the named accumulators of Acc

// Per-token sums of the group's two rows (x: the first, y: the second).
struct Acc {
    a0: vec2<f32>,
    a1: vec2<f32>,
    a2: vec2<f32>,
    a3: vec2<f32>,
    a4: vec2<f32>,
    a5: vec2<f32>,
    a6: vec2<f32>,
    a7: vec2<f32>,
}

// Both rows' contributions of unit u for token tok.
fn tok_dot(b0: Q8W, b1: Q8W, tok: u32, u: u32, nu: u32) -> vec2<f32> {
    let x = q8_x(tok * (params.k / 16u), tok * nu, u);
    return vec2<f32>(q8_dot(b0, x), q8_dot(b1, x));
}

// This thread's share (units t, t + TPR, ...) of row ra of matrix sa and row rb of matrix sb
// for every token.
fn dots(sa: u32, sb: u32, ra: u32, rb: u32, t: u32, live: bool) -> Acc {
    let nu = params.k / 32u;
    let n = params.n;
    let x0 = params.x_tok0;
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
        acc.a0 += tok_dot(blk0, blk1, x0, u, nu);
        if (n > 1u) {
            acc.a1 += tok_dot(blk0, blk1, x0 + 1u, u, nu);
        }
        if (n > 2u) {
            acc.a2 += tok_dot(blk0, blk1, x0 + 2u, u, nu);
        }
        if (n > 3u) {
            acc.a3 += tok_dot(blk0, blk1, x0 + 3u, u, nu);
        }
        if (n > 4u) {
            acc.a4 += tok_dot(blk0, blk1, x0 + 4u, u, nu);
        }
        if (n > 5u) {
            acc.a5 += tok_dot(blk0, blk1, x0 + 5u, u, nu);
        }
        if (n > 6u) {
            acc.a6 += tok_dot(blk0, blk1, x0 + 6u, u, nu);
        }
        if (n > 7u) {
            acc.a7 += tok_dot(blk0, blk1, x0 + 7u, u, nu);
        }
    }
    return acc;
}

fn token_sum(s: Acc, j: u32) -> vec2<f32> {
    var v = s.a0;
    v = select(v, s.a1, j == 1u);
    v = select(v, s.a2, j == 2u);
    v = select(v, s.a3, j == 3u);
    v = select(v, s.a4, j == 4u);
    v = select(v, s.a5, j == 5u);
    v = select(v, s.a6, j == 6u);
    v = select(v, s.a7, j == 7u);
    return v;
}

// token j of group g, lane l: partial[(g * NT + j) * TPR + l], component r = row.
var<workgroup> partial: array<vec2<f32>, RG * NT * TPR>;

// The group's sums by a workgroup-memory tree (every thread of the workgroup calls it).
fn tree_sum(acc: Acc, grp: u32, t: u32) -> Acc {
    let pb = grp * NT * TPR;
    partial[pb + t] = acc.a0;
    partial[pb + TPR + t] = acc.a1;
    partial[pb + 2u * TPR + t] = acc.a2;
    partial[pb + 3u * TPR + t] = acc.a3;
    partial[pb + 4u * TPR + t] = acc.a4;
    partial[pb + 5u * TPR + t] = acc.a5;
    partial[pb + 6u * TPR + t] = acc.a6;
    partial[pb + 7u * TPR + t] = acc.a7;
    for (var half = TPR / 2u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if (t < half) {
            for (var j = 0u; j < NT; j++) {
                partial[pb + j * TPR + t] += partial[pb + j * TPR + t + half];
            }
        }
    }
    workgroupBarrier();
    return Acc(partial[pb], partial[pb + TPR], partial[pb + 2u * TPR], partial[pb + 3u * TPR],
               partial[pb + 4u * TPR], partial[pb + 5u * TPR], partial[pb + 6u * TPR], partial[pb + 7u * TPR]);
}

// The group's sums, in every lane of the group (every thread of the workgroup calls it; sgs:
// the subgroup size, 0 without subgroups). The host keeps one of the two versions.

// SUBGROUPS-BEGIN
// Subgroups of at least TPR lanes hold whole groups (both are aligned runs of
// local_invocation_index): a butterfly of shuffles within 32 lanes sums a group without
// workgroup memory or barriers. Smaller subgroups take the tree.
fn xor_sum(a: Acc, mask: u32) -> Acc {
    return Acc(a.a0 + subgroupShuffleXor(a.a0, mask), a.a1 + subgroupShuffleXor(a.a1, mask),
               a.a2 + subgroupShuffleXor(a.a2, mask), a.a3 + subgroupShuffleXor(a.a3, mask),
               a.a4 + subgroupShuffleXor(a.a4, mask), a.a5 + subgroupShuffleXor(a.a5, mask),
               a.a6 + subgroupShuffleXor(a.a6, mask), a.a7 + subgroupShuffleXor(a.a7, mask));
}

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
