// matvec_q4_0_q8_nt_swiglu: the feed-forward's first half for a few tokens (2 to NT: the
// batched decode step of several sequences), Q4_0 weights x int8 activations:
// y[j][r] = silu(Wg[r] . x[j]) * (Wu[r] . x[j]). As matvec_q4_0_q8_nt.wgsl (see there), but
// each group owns one row of both matrices, so the SwiGLU needs no gate and up buffers and
// no extra dispatch. lib_q4_0_int8.wgsl is put in front of this file.
//
// Bindings: 0 params; 1 Wg, 2 Wu (rows of k / 32 Q4_0 blocks); 3 xq (k / 4 words per token,
// read as vec4s), 4 xs (k / 32 scales per token), tokens x_tok0 .. x_tok0 + n - 1;
// 5 y (token j, row r at y[y_off + j * y_stride + r]).

struct Params {
    k: u32,
    m: u32,
    y_off: u32,
    n: u32,          // tokens, 1 .. NT
    y_stride: u32,
    x_tok0: u32,     // first token of x (xq, xs) for this dispatch
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> wg_: array<u32>;
@group(0) @binding(2) var<storage, read> wu_: array<u32>;
@group(0) @binding(3) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> xs: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

// A workgroup is RG groups of TPR threads; group g owns row RG wg + g of both matrices
// (two blocks per step, as matvec_q4_0_q8_nt.wgsl: more would cost occupancy); its threads
// split the blocks, and the group's sums are made with subgroup shuffles (subgroups of at
// least TPR lanes) or a workgroup-memory tree.
const TPR: u32 = 32u;
const RG: u32 = 8u;
const WG: u32 = TPR * RG;
const NT: u32 = 8u;

// per token: (gate, up) of the group's row
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

fn tok_dot(b0: Q4Block, b1: Q4Block, tok: u32, b: u32, nb: u32, xw: u32) -> vec2<f32> {
    let xb = (tok * xw + b * 8u) >> 2u;
    let xa = xq[xb];
    let xc = xq[xb + 1u];
    let xsum8 = q8_sum8(xa, xc);
    let s = vec2<i32>(q4_0_dot(b0, xa, xc), q4_0_dot(b1, xa, xc));
    return vec2<f32>(s - vec2<i32>(xsum8)) * (vec2<f32>(b0.d, b1.d) * xs[tok * nb + b]);
}

fn load_g(g: u32) -> array<u32, 5> {
    let o = q4_0_word(g);
    return array<u32, 5>(wg_[o], wg_[o + 1u], wg_[o + 2u], wg_[o + 3u], wg_[o + 4u]);
}

fn load_u(g: u32) -> array<u32, 5> {
    let o = q4_0_word(g);
    return array<u32, 5>(wu_[o], wu_[o + 1u], wu_[o + 2u], wu_[o + 3u], wu_[o + 4u]);
}

fn unpack5(a: array<u32, 5>, g: u32) -> Q4Block {
    return q4_0_unpack(a[0], a[1], a[2], a[3], a[4], g);
}

// This thread's share (blocks t, t + TPR, ...) for every token; the next blocks' words are
// loaded before the current ones are used.
fn dots(row: u32, t: u32, live: bool) -> Acc {
    let nb = params.k / 32u;
    let n = params.n;
    let xw = params.k / 4u;
    let x0 = params.x_tok0;
    var acc: Acc;
    var b = t;
    var w0 = array<u32, 5>();
    var w1 = array<u32, 5>();
    if (live && b < nb) {
        w0 = load_g(row * nb + b);
        w1 = load_u(row * nb + b);
    }
    for (; live && b < nb; b += TPR) {
        let blk0 = unpack5(w0, row * nb + b);
        let blk1 = unpack5(w1, row * nb + b);
        let bn = b + TPR;
        if (bn < nb) {
            w0 = load_g(row * nb + bn);
            w1 = load_u(row * nb + bn);
        }
        acc.a0 += tok_dot(blk0, blk1, x0, b, nb, xw);
        if (n > 1u) { acc.a1 += tok_dot(blk0, blk1, x0 + 1u, b, nb, xw); }
        if (n > 2u) { acc.a2 += tok_dot(blk0, blk1, x0 + 2u, b, nb, xw); }
        if (n > 3u) { acc.a3 += tok_dot(blk0, blk1, x0 + 3u, b, nb, xw); }
        if (n > 4u) { acc.a4 += tok_dot(blk0, blk1, x0 + 4u, b, nb, xw); }
        if (n > 5u) { acc.a5 += tok_dot(blk0, blk1, x0 + 5u, b, nb, xw); }
        if (n > 6u) { acc.a6 += tok_dot(blk0, blk1, x0 + 6u, b, nb, xw); }
        if (n > 7u) { acc.a7 += tok_dot(blk0, blk1, x0 + 7u, b, nb, xw); }
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

// Thread t < NT of a group writes its row of token t.
fn put(row: u32, t: u32, v: vec2<f32>) {
    if (t < params.n && row < params.m) {
        let g = v.x;
        y[params.y_off + t * params.y_stride + row] = g / (1.0 + exp(-g)) * v.y;
    }
}

var<workgroup> partial: array<vec2<f32>, RG * NT * TPR>;

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

// SUBGROUPS-BEGIN
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
    let row = (wg.x + wg.y * nwg.x) * RG + grp;
    let live = row < params.m;
    var s = dots(row, t, live);
    if (sgs >= TPR) {
        for (var mask = TPR / 2u; mask > 0u; mask >>= 1u) {
            s = xor_sum(s, mask);
        }
    } else {
        s = tree_sum(s, grp, t);
    }
    if (live && t < NT) {
        put(row, t, token_sum(s, t));
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
    let row = (wg.x + wg.y * nwg.x) * RG + grp;
    let live = row < params.m;
    let s = tree_sum(dots(row, t, live), grp, t);
    if (live && t < NT) {
        put(row, t, token_sum(s, t));
    }
}
// NO-SUBGROUPS-END
