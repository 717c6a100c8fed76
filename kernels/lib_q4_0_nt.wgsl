// The shared part of the batched-decode int8 kernels (matvec_q4_0_q8_nt*.wgsl: Q4_0 rows
// times a few tokens' int8 x, 2 to NT tokens per dispatch). Put in front of such a kernel by
// the host, after lib_q4_0_int8.wgsl. The kernel provides `params` (with k, n and x_tok0),
// the bindings xq (vec4 words) and xs, and
//   fn load_w(sel: u32, which: u32, g: u32) -> array<u32, 5>
// the 5 words holding Q4_0 block g of its first (which = 0) or second source of rows (sel:
// a choice of matrices that is the same for a whole workgroup, where the kernel has one).
//
// A workgroup is RG groups of TPR threads; a group owns two rows (a pair of rows of one
// matrix, or the same row of two) and its threads split the rows' blocks, so each sum spans
// only TPR threads. Two rows per group (not more) keep enough warps in flight to hide the
// memory latency; the per-token accumulators are named registers, not an indexed array, so
// they are not spilled to local memory. Each thread loads its next blocks before it works on
// the current ones, so the loads overlap the arithmetic.

const TPR: u32 = 32u;
const RG: u32 = 8u;
const WG: u32 = TPR * RG;
const NT: u32 = 8u;

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

// Both rows' contributions of block b for token tok.
fn tok_dot(b0: Q4Block, b1: Q4Block, tok: u32, b: u32, nb: u32, xw: u32) -> vec2<f32> {
    let xb = (tok * xw + b * 8u) >> 2u;
    let xa = xq[xb];
    let xc = xq[xb + 1u];
    let xsum8 = q8_sum8(xa, xc);
    let s = vec2<i32>(q4_0_dot(b0, xa, xc), q4_0_dot(b1, xa, xc));
    return vec2<f32>(s - vec2<i32>(xsum8)) * (vec2<f32>(b0.d, b1.d) * xs[tok * nb + b]);
}

// This thread's share (blocks t, t + TPR, ...) of rows ra (from source 0) and rb (source 1)
// for every token.
fn dots(sel: u32, ra: u32, rb: u32, t: u32, live: bool) -> Acc {
    let nb = params.k / 32u;
    let n = params.n;
    let xw = params.k / 4u; // words of one token's xq
    let x0 = params.x_tok0;
    var acc: Acc;
    // the first blocks' words, then always one iteration ahead
    var b = t;
    var w0 = array<u32, 5>();
    var w1 = array<u32, 5>();
    if (live && b < nb) {
        w0 = load_w(sel, 0u, ra * nb + b);
        w1 = load_w(sel, 1u, rb * nb + b);
    }
    for (; live && b < nb; b += TPR) {
        let blk0 = q4_0_unpack(w0[0], w0[1], w0[2], w0[3], w0[4], ra * nb + b);
        let blk1 = q4_0_unpack(w1[0], w1[1], w1[2], w1[3], w1[4], rb * nb + b);
        let bn = b + TPR;
        if (bn < nb) {
            w0 = load_w(sel, 0u, ra * nb + bn);
            w1 = load_w(sel, 1u, rb * nb + bn);
        }
        acc.a0 += tok_dot(blk0, blk1, x0, b, nb, xw);
        if (n > 1u) {
            acc.a1 += tok_dot(blk0, blk1, x0 + 1u, b, nb, xw);
        }
        if (n > 2u) {
            acc.a2 += tok_dot(blk0, blk1, x0 + 2u, b, nb, xw);
        }
        if (n > 3u) {
            acc.a3 += tok_dot(blk0, blk1, x0 + 3u, b, nb, xw);
        }
        if (n > 4u) {
            acc.a4 += tok_dot(blk0, blk1, x0 + 4u, b, nb, xw);
        }
        if (n > 5u) {
            acc.a5 += tok_dot(blk0, blk1, x0 + 5u, b, nb, xw);
        }
        if (n > 6u) {
            acc.a6 += tok_dot(blk0, blk1, x0 + 6u, b, nb, xw);
        }
        if (n > 7u) {
            acc.a7 += tok_dot(blk0, blk1, x0 + 7u, b, nb, xw);
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
