// matvec_q4_0_q8_nt: Y = W X for a Q4_0 weight matrix and a few tokens (2 to NT) at
// once: the batched decode step of several sequences. Like matvec_q4_0_q8.wgsl (see there
// for the Q4_0 layout and int8 x), but each weight block is decoded once and dotted with
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

struct Block2 {
    l0: vec4<u32>, // low nibbles of row 0 (elements 0..15 as bytes)
    h0: vec4<u32>, // high nibbles of row 0 (elements 16..31)
    l1: vec4<u32>,
    h1: vec4<u32>,
    d: vec2<f32>,  // the rows' scales
}

// Block b of a row: its 16 nibble bytes as 4 words, and its scale in *d.
fn nibbles(row: u32, b: u32, nb: u32, d: ptr<function, f32>) -> vec4<u32> {
    let g = row * nb + b;
    let base = (g * 9u) >> 1u;
    let w0 = w[base];
    let w1 = w[base + 1u];
    let w2 = w[base + 2u];
    let w3 = w[base + 3u];
    let w4 = w[base + 4u];
    let odd = (g & 1u) == 1u;
    let dw2 = unpack2x16float(w0);
    *d = select(dw2.x, dw2.y, odd);
    return vec4<u32>(select((w0 >> 16u) | (w1 << 16u), w1, odd), select((w1 >> 16u) | (w2 << 16u), w2, odd),
                     select((w2 >> 16u) | (w3 << 16u), w3, odd), select((w3 >> 16u) | (w4 << 16u), w4, odd));
}

// Both rows' contributions of block b for token tok.
fn tok_dot(blk: Block2, tok: u32, b: u32, nb: u32, xw: u32) -> vec2<f32> {
    let ones = 0x01010101u;
    let xb = (tok * xw + b * 8u) >> 2u;
    let xa = xq[xb];
    let xc = xq[xb + 1u];
    let xsum8 = 8 * (dot4I8Packed(xa.x, ones) + dot4I8Packed(xa.y, ones) + dot4I8Packed(xa.z, ones) +
                     dot4I8Packed(xa.w, ones) + dot4I8Packed(xc.x, ones) + dot4I8Packed(xc.y, ones) +
                     dot4I8Packed(xc.z, ones) + dot4I8Packed(xc.w, ones));
    let s0 = dot4I8Packed(blk.l0.x, xa.x) + dot4I8Packed(blk.l0.y, xa.y) + dot4I8Packed(blk.l0.z, xa.z) +
             dot4I8Packed(blk.l0.w, xa.w) + dot4I8Packed(blk.h0.x, xc.x) + dot4I8Packed(blk.h0.y, xc.y) +
             dot4I8Packed(blk.h0.z, xc.z) + dot4I8Packed(blk.h0.w, xc.w);
    let s1 = dot4I8Packed(blk.l1.x, xa.x) + dot4I8Packed(blk.l1.y, xa.y) + dot4I8Packed(blk.l1.z, xa.z) +
             dot4I8Packed(blk.l1.w, xa.w) + dot4I8Packed(blk.h1.x, xc.x) + dot4I8Packed(blk.h1.y, xc.y) +
             dot4I8Packed(blk.h1.z, xc.z) + dot4I8Packed(blk.h1.w, xc.w);
    return vec2<f32>(vec2<i32>(s0, s1) - vec2<i32>(xsum8)) * (blk.d * xs[tok * nb + b]);
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
    let lo = vec4<u32>(0x0f0f0f0fu);
    for (var b = t; live && b < nb; b += TPR) {
        // The two weight blocks, decoded once: low and high nibbles as packed bytes.
        var d0: f32;
        var d1: f32;
        let q0 = nibbles(row0, b, nb, &d0);
        let q1 = nibbles(min(row0 + 1u, m - 1u), b, nb, &d1);
        let blk = Block2(q0 & lo, (q0 >> vec4<u32>(4u)) & lo, q1 & lo, (q1 >> vec4<u32>(4u)) & lo, vec2<f32>(d0, d1));
        a0 += tok_dot(blk, x0, b, nb, xw);
        if (n > 1u) {
            a1 += tok_dot(blk, x0 + 1u, b, nb, xw);
        }
        if (n > 2u) {
            a2 += tok_dot(blk, x0 + 2u, b, nb, xw);
        }
        if (n > 3u) {
            a3 += tok_dot(blk, x0 + 3u, b, nb, xw);
        }
        if (n > 4u) {
            a4 += tok_dot(blk, x0 + 4u, b, nb, xw);
        }
        if (n > 5u) {
            a5 += tok_dot(blk, x0 + 5u, b, nb, xw);
        }
        if (n > 6u) {
            a6 += tok_dot(blk, x0 + 6u, b, nb, xw);
        }
        if (n > 7u) {
            a7 += tok_dot(blk, x0 + 7u, b, nb, xw);
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
