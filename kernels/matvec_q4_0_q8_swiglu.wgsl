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
@group(0) @binding(3) var<storage, read> xq: array<vec4<u32>>; // 16-byte loads
@group(0) @binding(4) var<storage, read> xs: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

// A workgroup is RG groups of TPR threads; group g owns rows row0 + ROWS g .. + ROWS - 1 of
// both matrices, its threads splitting the blocks, so each reduction spans TPR threads.
const TPR: u32 = 32u;
const RG: u32 = 4u;
const WG: u32 = TPR * RG;
const ROWS: u32 = 4u;

// group g, lane l: gate sums in partial[(2 g) * TPR + l], up sums in partial[(2 g + 1) * TPR + l]
var<workgroup> partial: array<vec4<f32>, 2u * RG * TPR>;

// Integer dot product of one Q4_0 block (its 5 words starting at the block's first
// word; `odd`: the block starts 2 bytes into w0) with 32 int8 x (8 words).
fn block_dot(w0: u32, w1: u32, w2: u32, w3: u32, w4: u32, odd: bool, xa: vec4<u32>, xc: vec4<u32>) -> vec2<f32> {
    let dw2 = unpack2x16float(w0);
    let dw = select(dw2.x, dw2.y, odd);
    let q0 = select((w0 >> 16u) | (w1 << 16u), w1, odd);
    let q1 = select((w1 >> 16u) | (w2 << 16u), w2, odd);
    let q2 = select((w2 >> 16u) | (w3 << 16u), w3, odd);
    let q3 = select((w3 >> 16u) | (w4 << 16u), w4, odd);
    let lo = 0x0f0f0f0fu;
    let s = dot4I8Packed(q0 & lo, xa.x) + dot4I8Packed(q1 & lo, xa.y) +
            dot4I8Packed(q2 & lo, xa.z) + dot4I8Packed(q3 & lo, xa.w) +
            dot4I8Packed((q0 >> 4u) & lo, xc.x) + dot4I8Packed((q1 >> 4u) & lo, xc.y) +
            dot4I8Packed((q2 >> 4u) & lo, xc.z) + dot4I8Packed((q3 >> 4u) & lo, xc.w);
    return vec2<f32>(f32(s), dw);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wgid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let grp = li / TPR;
    let t = li % TPR;
    let row0 = ((wgid.x + wgid.y * nwg.x) * RG + grp) * ROWS;
    let nb = params.k / 32u;
    let m = params.m;
    let live = row0 < m; // not a return: the barriers below need every thread
    var accg = vec4<f32>(0.0);
    var accu = vec4<f32>(0.0);
    let ones = 0x01010101u;
    for (var b = t; live && b < nb; b += TPR) {
        let xa = xq[b * 2u];
        let xc = xq[b * 2u + 1u];
        let xsum8 = f32(8 * (dot4I8Packed(xa.x, ones) + dot4I8Packed(xa.y, ones) + dot4I8Packed(xa.z, ones) +
                             dot4I8Packed(xa.w, ones) + dot4I8Packed(xc.x, ones) + dot4I8Packed(xc.y, ones) +
                             dot4I8Packed(xc.z, ones) + dot4I8Packed(xc.w, ones)));
        let dx = xs[b];
        for (var r = 0u; r < ROWS; r++) {
            let row = min(row0 + r, m - 1u);
            let g = row * nb + b;
            let base = (g * 9u) >> 1u;
            let odd = (g & 1u) == 1u;
            let sg = block_dot(wg_[base], wg_[base + 1u], wg_[base + 2u], wg_[base + 3u], wg_[base + 4u], odd, xa, xc);
            let su = block_dot(wu_[base], wu_[base + 1u], wu_[base + 2u], wu_[base + 3u], wu_[base + 4u], odd, xa, xc);
            accg[r] += (sg.x - xsum8) * (sg.y * dx);
            accu[r] += (su.x - xsum8) * (su.y * dx);
        }
    }
    let pg = 2u * grp * TPR;
    partial[pg + t] = accg;
    partial[pg + TPR + t] = accu;
    for (var half = TPR / 2u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if (t < half) {
            partial[pg + t] += partial[pg + t + half];
            partial[pg + TPR + t] += partial[pg + TPR + t + half];
        }
    }
    workgroupBarrier();
    if (live && t < ROWS && row0 + t < m) {
        let gsum = partial[pg][t];
        let usum = partial[pg + TPR][t];
        y[row0 + t] = gsum / (1.0 + exp(-gsum)) * usum;
    }
}
