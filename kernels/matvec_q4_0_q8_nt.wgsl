// matvec_q4_0_q8_nt: Y = W X for a Q4_0 weight matrix and a few tokens (2 to NT) at
// once: the batched decode step of several sequences. Like matvec_q4_0_q8.wgsl (see there
// for the dispatch; lib_q4_0_int8.wgsl, put in front, for the blocks), but each weight block is decoded once and dotted with
// every token's x, so the weights are read once per step instead of once per token; the
// tiled matmul would leave most of the GPU idle at such small batches.
//
// Bindings: 0 w; 1 xq (k / 4 words per token, read as vec4s); 2 xs (k / 32 scales per token), tokens
// x_tok0 .. x_tok0 + n - 1 used;
// 3 y (token j, row r at y[y_off + j * y_stride + r]); 4 params.

struct Params {
    k: u32,
    m: u32,
    y_off: u32,
    accumulate: u32, // != 0: y += W x
    n: u32,          // tokens, 1 .. NT
    y_stride: u32,
    x_tok0: u32,     // first token of x (xq, xs) for this dispatch
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;
// xq as vec4 words: one 16-byte load per half block (fewer, wider loads from the cache)
@group(0) @binding(1) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

// A workgroup is RG groups of TPR threads; group g owns rows row0 + 2 g, row0 + 2 g + 1 and
// its threads split the rows' blocks, so the final reduction spans only TPR threads.
// Two rows per group (not more) keep enough warps in flight to hide the memory latency;
// the per-token accumulators are named registers, not an indexed array, so they are not
// spilled to local memory.
const TPR: u32 = 32u;
const RG: u32 = 8u;
const WG: u32 = TPR * RG;
const NT: u32 = 8u;

// token j of group g, lane l: partial[(g * NT + j) * TPR + l], component r = row.
var<workgroup> partial: array<vec2<f32>, RG * NT * TPR>;

// Both rows' contributions of block b for token tok.
fn tok_dot(b0: Q4Block, b1: Q4Block, tok: u32, b: u32, nb: u32, xw: u32) -> vec2<f32> {
    let xb = (tok * xw + b * 8u) >> 2u;
    let xa = xq[xb];
    let xc = xq[xb + 1u];
    let xsum8 = q8_sum8(xa, xc);
    let s = vec2<i32>(q4_0_dot(b0, xa, xc), q4_0_dot(b1, xa, xc));
    return vec2<f32>(s - vec2<i32>(xsum8)) * (vec2<f32>(b0.d, b1.d) * xs[tok * nb + b]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let grp = li / TPR;
    let t = li % TPR;
    let row0 = ((wg.x + wg.y * nwg.x) * RG + grp) * 2u;
    let nb = params.k / 32u;
    let m = params.m;
    let n = params.n;
    let xw = params.k / 4u; // words of one token's xq
    let live = row0 < m;    // not a return: the barriers below need every thread
    let x0 = params.x_tok0;
    var a0 = vec2<f32>(0.0);
    var a1 = vec2<f32>(0.0);
    var a2 = vec2<f32>(0.0);
    var a3 = vec2<f32>(0.0);
    var a4 = vec2<f32>(0.0);
    var a5 = vec2<f32>(0.0);
    var a6 = vec2<f32>(0.0);
    var a7 = vec2<f32>(0.0);
    for (var b = t; live && b < nb; b += TPR) {
        // The two weight blocks, decoded once for every token.
        let g0 = row0 * nb + b;
        let g1 = min(row0 + 1u, m - 1u) * nb + b;
        let o0 = q4_0_word(g0);
        let o1 = q4_0_word(g1);
        let blk0 = q4_0_unpack(w[o0], w[o0 + 1u], w[o0 + 2u], w[o0 + 3u], w[o0 + 4u], g0);
        let blk1 = q4_0_unpack(w[o1], w[o1 + 1u], w[o1 + 2u], w[o1 + 3u], w[o1 + 4u], g1);
        a0 += tok_dot(blk0, blk1, x0, b, nb, xw);
        if (n > 1u) {
            a1 += tok_dot(blk0, blk1, x0 + 1u, b, nb, xw);
        }
        if (n > 2u) {
            a2 += tok_dot(blk0, blk1, x0 + 2u, b, nb, xw);
        }
        if (n > 3u) {
            a3 += tok_dot(blk0, blk1, x0 + 3u, b, nb, xw);
        }
        if (n > 4u) {
            a4 += tok_dot(blk0, blk1, x0 + 4u, b, nb, xw);
        }
        if (n > 5u) {
            a5 += tok_dot(blk0, blk1, x0 + 5u, b, nb, xw);
        }
        if (n > 6u) {
            a6 += tok_dot(blk0, blk1, x0 + 6u, b, nb, xw);
        }
        if (n > 7u) {
            a7 += tok_dot(blk0, blk1, x0 + 7u, b, nb, xw);
        }
    }
    let pb = grp * NT * TPR;
    partial[pb + t] = a0;
    partial[pb + TPR + t] = a1;
    partial[pb + 2u * TPR + t] = a2;
    partial[pb + 3u * TPR + t] = a3;
    partial[pb + 4u * TPR + t] = a4;
    partial[pb + 5u * TPR + t] = a5;
    partial[pb + 6u * TPR + t] = a6;
    partial[pb + 7u * TPR + t] = a7;
    for (var half = TPR / 2u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if (t < half) {
            for (var j = 0u; j < NT; j++) {
                partial[pb + j * TPR + t] += partial[pb + j * TPR + t + half];
            }
        }
    }
    workgroupBarrier();
    if (live && t < 2u * NT) {
        let r = t % 2u;
        let j = t / 2u;
        if (j < n && row0 + r < m) {
            let o = params.y_off + j * params.y_stride + row0 + r;
            let v = partial[pb + j * TPR][r];
            y[o] = select(v, y[o] + v, params.accumulate != 0u);
        }
    }
}
