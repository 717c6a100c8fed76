// The feed-forward's first half for one token, Q4_0 weights x int8 activations:
// y[r] = silu(Wg[r] . x) * (Wu[r] . x). Gate and up rows are computed by the same
// workgroup, so the SwiGLU needs no extra dispatch and no gate/up buffers.
// x comes from quantize_x_q8.wgsl or rms_norm_q8.wgsl; the block decoding is that of
// matvec_q4_0_q8.wgsl (see there for the Q4_0 layout and the dispatch shape).
//
// Bindings: 0 params { k, m, pad, pad }; 1 Wg, 2 Wu (rows of k / 32 Q4_0 blocks, row 0 at
// byte 0 of the binding); 3 xq, 4 xs; 5 y (m floats).

struct Params {
    k: u32,
    m: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> wg_: array<u32>;
@group(0) @binding(2) var<storage, read> wu_: array<u32>;
@group(0) @binding(3) var<storage, read> xq: array<u32>;
@group(0) @binding(4) var<storage, read> xs: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

const WG: u32 = 128u;
const ROWS: u32 = 4u;

var<workgroup> partial: array<f32, WG * ROWS * 2u>;

// Integer dot product of one Q4_0 block (its 5 words starting at the block's first
// word; `odd`: the block starts 2 bytes into w0) with 32 int8 x (8 words).
fn block_dot(w0: u32, w1: u32, w2: u32, w3: u32, w4: u32, odd: bool, x: array<u32, 8>) -> vec2<f32> {
    let dw2 = unpack2x16float(w0);
    let dw = select(dw2.x, dw2.y, odd);
    let q0 = select((w0 >> 16u) | (w1 << 16u), w1, odd);
    let q1 = select((w1 >> 16u) | (w2 << 16u), w2, odd);
    let q2 = select((w2 >> 16u) | (w3 << 16u), w3, odd);
    let q3 = select((w3 >> 16u) | (w4 << 16u), w4, odd);
    let lo = 0x0f0f0f0fu;
    let s = dot4I8Packed(q0 & lo, x[0]) + dot4I8Packed(q1 & lo, x[1]) +
            dot4I8Packed(q2 & lo, x[2]) + dot4I8Packed(q3 & lo, x[3]) +
            dot4I8Packed((q0 >> 4u) & lo, x[4]) + dot4I8Packed((q1 >> 4u) & lo, x[5]) +
            dot4I8Packed((q2 >> 4u) & lo, x[6]) + dot4I8Packed((q3 >> 4u) & lo, x[7]);
    return vec2<f32>(f32(s), dw);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wgid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
    let row0 = (wgid.x + wgid.y * nwg.x) * ROWS;
    if (row0 >= params.m) {
        return;
    }
    let nb = params.k / 32u;
    let m = params.m;
    var accg: array<f32, ROWS>;
    var accu: array<f32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        accg[r] = 0.0;
        accu[r] = 0.0;
    }
    for (var b = t; b < nb; b += WG) {
        var x: array<u32, 8>;
        let ones = 0x01010101u;
        var xsum = 0;
        for (var i = 0u; i < 8u; i++) {
            x[i] = xq[b * 8u + i];
            xsum += dot4I8Packed(x[i], ones);
        }
        let xsum8 = f32(8 * xsum);
        let dx = xs[b];
        for (var r = 0u; r < ROWS; r++) {
            let row = min(row0 + r, m - 1u);
            let g = row * nb + b;
            let base = (g * 9u) >> 1u;
            let odd = (g & 1u) == 1u;
            let sg = block_dot(wg_[base], wg_[base + 1u], wg_[base + 2u], wg_[base + 3u], wg_[base + 4u], odd, x);
            let su = block_dot(wu_[base], wu_[base + 1u], wu_[base + 2u], wu_[base + 3u], wu_[base + 4u], odd, x);
            accg[r] += (sg.x - xsum8) * (sg.y * dx);
            accu[r] += (su.x - xsum8) * (su.y * dx);
        }
    }
    for (var r = 0u; r < ROWS; r++) {
        partial[r * WG + t] = accg[r];
        partial[(ROWS + r) * WG + t] = accu[r];
    }
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if (t < half) {
            for (var r = 0u; r < 2u * ROWS; r++) {
                partial[r * WG + t] += partial[r * WG + t + half];
            }
        }
    }
    if (t < ROWS && row0 + t < m) {
        let gsum = partial[t * WG];
        let usum = partial[(ROWS + t) * WG];
        y[row0 + t] = gsum / (1.0 + exp(-gsum)) * usum;
    }
}
