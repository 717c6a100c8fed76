// matvec_q4_0_q8_nt_qkv: q = Wq x, k = Wk x, v = Wv x for a few tokens (2 to NT: the
// batched decode step of several sequences) in one dispatch, as matvec_q4_0_q8_nt.wgsl
// computes each (see there; lib_q4_0_int8.wgsl is put in front): the rows of the three
// matrices are numbered one after the other and a workgroup's 16 rows lie in one matrix
// (the host checks that both row counts are multiples of 16), so it is one grid instead of
// three dispatches.
//
// Bindings: 0 wq, 1 wk, 2 wv; 3 xq (k / 4 words per token, read as vec4s), 4 xs (k / 32
// scales per token), tokens x_tok0 .. x_tok0 + n - 1; 5 q, 6 k, 7 v (token t, row r at
// [t * stride + r]); 8 params.

struct Params {
    k: u32,
    m_q: u32,        // rows of wq
    m_kv: u32,       // rows of wk and of wv
    n: u32,          // tokens, 1 .. NT
    q_stride: u32,
    kv_stride: u32,
    x_tok0: u32,     // first token of x (xq, xs) for this dispatch
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> wq: array<u32>;
@group(0) @binding(1) var<storage, read> wk: array<u32>;
@group(0) @binding(2) var<storage, read> wv: array<u32>;
@group(0) @binding(3) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> xs: array<f32>;
@group(0) @binding(5) var<storage, read_write> yq: array<f32>;
@group(0) @binding(6) var<storage, read_write> yk: array<f32>;
@group(0) @binding(7) var<storage, read_write> yv: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;

// Word o of matrix sel (0 q, 1 k, 2 v); sel is the same for a whole workgroup.
fn wword(sel: u32, o: u32) -> u32 {
    if (sel == 0u) {
        return wq[o];
    }
    if (sel == 1u) {
        return wk[o];
    }
    return wv[o];
}

fn wload(sel: u32, o: u32) -> array<u32, 5> {
    return array<u32, 5>(wword(sel, o), wword(sel, o + 1u), wword(sel, o + 2u), wword(sel, o + 3u), wword(sel, o + 4u));
}

// A workgroup is RG groups of TPR threads; group g owns rows row0 + 2 g, row0 + 2 g + 1 and
// its threads split the rows' blocks, so the final reduction spans only TPR threads.
// Two rows per group (not more) keep enough warps in flight to hide the memory latency;
// the per-token accumulators are named registers, not an indexed array, so they are not
// spilled to local memory. Each thread loads its next blocks' weights before it works on
// the current ones, so the loads overlap the arithmetic.
const TPR: u32 = 32u;
const RG: u32 = 8u;
const WG: u32 = TPR * RG;
const NT: u32 = 8u;

// Per-token sums of both rows (x: row0, y: row0 + 1).
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

// This thread's share (blocks t, t + TPR, ...) of rows row0, row0 + 1 for every token.
fn dots(sel: u32, m: u32, row0: u32, t: u32, live: bool) -> Acc {
    let nb = params.k / 32u;
    let n = params.n;
    let xw = params.k / 4u; // words of one token's xq
    let x0 = params.x_tok0;
    var acc: Acc;
    let r1 = min(row0 + 1u, m - 1u);
    // the first blocks' words, then always one iteration ahead
    var b = t;
    var w0 = array<u32, 5>();
    var w1 = array<u32, 5>();
    if (live && b < nb) {
        w0 = wload(sel, q4_0_word(row0 * nb + b));
        w1 = wload(sel, q4_0_word(r1 * nb + b));
    }
    for (; live && b < nb; b += TPR) {
        let blk0 = q4_0_unpack(w0[0], w0[1], w0[2], w0[3], w0[4], row0 * nb + b);
        let blk1 = q4_0_unpack(w1[0], w1[1], w1[2], w1[3], w1[4], r1 * nb + b);
        let bn = b + TPR;
        if (bn < nb) {
            w0 = wload(sel, q4_0_word(row0 * nb + bn));
            w1 = wload(sel, q4_0_word(r1 * nb + bn));
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

// Thread t < 2 NT of a group writes row row0 + t % 2 of token t / 2 of matrix sel.
fn put(sel: u32, m: u32, row0: u32, t: u32, v: vec2<f32>) {
    let r = t % 2u;
    let j = t / 2u;
    let tok = params.x_tok0 + j; // outputs in the rows of their tokens
    if (j < params.n && row0 + r < m) {
        if (sel == 0u) {
            yq[tok * params.q_stride + row0 + r] = v[r];
        } else if (sel == 1u) {
            yk[tok * params.kv_stride + row0 + r] = v[r];
        } else {
            yv[tok * params.kv_stride + row0 + r] = v[r];
        }
    }
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

// The host keeps one of the two entry points below, as the device has subgroups or not.

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

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32,
        @builtin(subgroup_size) sgs: u32) {
    let grp = li / TPR;
    let t = li % TPR;
    let g = ((wg.x + wg.y * nwg.x) * RG + grp) * 2u; // row over the three matrices
    let sel = select(select(2u, 1u, g < params.m_q + params.m_kv), 0u, g < params.m_q);
    let base = select(select(params.m_q + params.m_kv, params.m_q, sel == 1u), 0u, sel == 0u);
    let m = select(params.m_kv, params.m_q, sel == 0u);
    let row0 = g - base;
    let live = g < params.m_q + 2u * params.m_kv; // not a return: the tree's barriers need every thread
    var s = dots(sel, m, row0, t, live);
    if (sgs >= TPR) {
        for (var mask = TPR / 2u; mask > 0u; mask >>= 1u) {
            s = xor_sum(s, mask);
        }
    } else {
        s = tree_sum(s, grp, t);
    }
    if (live && t < 2u * NT) {
        put(sel, m, row0, t, token_sum(s, t / 2u));
    }
}
// SUBGROUPS-END
// NO-SUBGROUPS-BEGIN
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let grp = li / TPR;
    let t = li % TPR;
    let g = ((wg.x + wg.y * nwg.x) * RG + grp) * 2u;
    let sel = select(select(2u, 1u, g < params.m_q + params.m_kv), 0u, g < params.m_q);
    let base = select(select(params.m_q + params.m_kv, params.m_q, sel == 1u), 0u, sel == 0u);
    let m = select(params.m_kv, params.m_q, sel == 0u);
    let row0 = g - base;
    let live = g < params.m_q + 2u * params.m_kv;
    let s = tree_sum(dots(sel, m, row0, t, live), grp, t);
    if (live && t < 2u * NT) {
        put(sel, m, row0, t, token_sum(s, t / 2u));
    }
}
// NO-SUBGROUPS-END
