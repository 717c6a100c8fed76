// matvec_q4_0_q8_nt: Y = W X for a Q4_0 weight matrix and a few tokens (2 to NT) at
// once: the batched decode step of several sequences. Like matvec_q4_0_q8.wgsl (see there
// for the Q4_0 layout and int8 x), but each weight block is decoded once and dotted with
// every token's x, so the weights are read once per step instead of once per token; the
// tiled matmul would leave most of the GPU idle at such small batches.
//
// Bindings: 0 w; 1 xq (k / 4 words per token); 2 xs (k / 32 scales per token), tokens
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
@group(0) @binding(1) var<storage, read> xq: array<u32>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

const WG: u32 = 128u;
const ROWS: u32 = 4u;
const NT: u32 = 8u;

var<workgroup> partial: array<f32, WG * ROWS * NT>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
    let row0 = (wg.x + wg.y * nwg.x) * ROWS;
    if (row0 >= params.m) {
        return;
    }
    let nb = params.k / 32u;
    let m = params.m;
    let n = params.n;
    let xw = params.k / 4u; // words of one token's xq
    var acc: array<f32, ROWS * NT>;
    for (var i = 0u; i < ROWS * NT; i++) {
        acc[i] = 0.0;
    }
    let ones = 0x01010101u;
    let lo = 0x0f0f0f0fu;
    for (var b = t; b < nb; b += WG) {
        for (var r = 0u; r < ROWS; r++) {
            let row = min(row0 + r, m - 1u);
            let g = row * nb + b;
            let base = (g * 9u) >> 1u;
            let w0 = w[base];
            let w1 = w[base + 1u];
            let w2 = w[base + 2u];
            let w3 = w[base + 3u];
            let w4 = w[base + 4u];
            let odd = (g & 1u) == 1u;
            let dw2 = unpack2x16float(w0);
            let dw = select(dw2.x, dw2.y, odd);
            let q0 = select((w0 >> 16u) | (w1 << 16u), w1, odd);
            let q1 = select((w1 >> 16u) | (w2 << 16u), w2, odd);
            let q2 = select((w2 >> 16u) | (w3 << 16u), w3, odd);
            let q3 = select((w3 >> 16u) | (w4 << 16u), w4, odd);
            for (var j = 0u; j < NT; j++) {
                if (j < n) {
                    let xb = (params.x_tok0 + j) * xw + b * 8u;
                    let x0 = xq[xb];
                    let x1 = xq[xb + 1u];
                    let x2 = xq[xb + 2u];
                    let x3 = xq[xb + 3u];
                    let x4 = xq[xb + 4u];
                    let x5 = xq[xb + 5u];
                    let x6 = xq[xb + 6u];
                    let x7 = xq[xb + 7u];
                    let xsum8 = 8 * (dot4I8Packed(x0, ones) + dot4I8Packed(x1, ones) + dot4I8Packed(x2, ones) +
                                     dot4I8Packed(x3, ones) + dot4I8Packed(x4, ones) + dot4I8Packed(x5, ones) +
                                     dot4I8Packed(x6, ones) + dot4I8Packed(x7, ones));
                    let s = dot4I8Packed(q0 & lo, x0) + dot4I8Packed(q1 & lo, x1) +
                            dot4I8Packed(q2 & lo, x2) + dot4I8Packed(q3 & lo, x3) +
                            dot4I8Packed((q0 >> 4u) & lo, x4) + dot4I8Packed((q1 >> 4u) & lo, x5) +
                            dot4I8Packed((q2 >> 4u) & lo, x6) + dot4I8Packed((q3 >> 4u) & lo, x7);
                    acc[r * NT + j] += f32(s - xsum8) * (dw * xs[(params.x_tok0 + j) * nb + b]);
                }
            }
        }
    }
    for (var i = 0u; i < ROWS * NT; i++) {
        partial[i * WG + t] = acc[i];
    }
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if (t < half) {
            for (var i = 0u; i < ROWS * NT; i++) {
                partial[i * WG + t] += partial[i * WG + t + half];
            }
        }
    }
    workgroupBarrier();
    if (t < ROWS * NT) {
        let r = t / NT;
        let j = t % NT;
        if (j < n && row0 + r < m) {
            let o = params.y_off + j * params.y_stride + row0 + r;
            let v = partial[t * WG];
            y[o] = select(v, y[o] + v, params.accumulate != 0u);
        }
    }
}
