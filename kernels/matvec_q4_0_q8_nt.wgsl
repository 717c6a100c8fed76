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

// A workgroup is RG groups of TPR threads; group g owns rows row0 + ROWS g .. + ROWS - 1 and
// its threads split the row's blocks, so the final reduction spans only TPR threads.
const TPR: u32 = 32u;
const RG: u32 = 4u;
const WG: u32 = TPR * RG;
const ROWS: u32 = 4u;
const NT: u32 = 8u;

// token j of group g, lane l: partial[(g * NT + j) * TPR + l], component r = row.
var<workgroup> partial: array<vec4<f32>, RG * NT * TPR>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let grp = li / TPR;
    let t = li % TPR;
    let row0 = ((wg.x + wg.y * nwg.x) * RG + grp) * ROWS;
    let nb = params.k / 32u;
    let m = params.m;
    let n = params.n;
    let xw = params.k / 4u; // words of one token's xq
    let live = row0 < m;    // not a return: the barriers below need every thread
    var acc: array<vec4<f32>, NT>;
    for (var j = 0u; j < NT; j++) {
        acc[j] = vec4<f32>(0.0);
    }
    let ones = 0x01010101u;
    let lo = 0x0f0f0f0fu;
    for (var b = t; live && b < nb; b += TPR) {
        // The ROWS weight blocks, decoded once: low and high nibbles as packed bytes.
        var wl: array<vec4<u32>, ROWS>;
        var wh: array<vec4<u32>, ROWS>;
        var wd: vec4<f32>;
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
            wd[r] = select(dw2.x, dw2.y, odd);
            let q = vec4<u32>(select((w0 >> 16u) | (w1 << 16u), w1, odd), select((w1 >> 16u) | (w2 << 16u), w2, odd),
                              select((w2 >> 16u) | (w3 << 16u), w3, odd), select((w3 >> 16u) | (w4 << 16u), w4, odd));
            wl[r] = q & vec4<u32>(lo);
            wh[r] = (q >> vec4<u32>(4u)) & vec4<u32>(lo);
        }
        for (var j = 0u; j < NT; j++) {
            if (j < n) {
                let tok = params.x_tok0 + j;
                let xb = tok * xw + b * 8u;
                let xa = vec4<u32>(xq[xb], xq[xb + 1u], xq[xb + 2u], xq[xb + 3u]);
                let xc = vec4<u32>(xq[xb + 4u], xq[xb + 5u], xq[xb + 6u], xq[xb + 7u]);
                let xsum8 = 8 * (dot4I8Packed(xa.x, ones) + dot4I8Packed(xa.y, ones) + dot4I8Packed(xa.z, ones) +
                                 dot4I8Packed(xa.w, ones) + dot4I8Packed(xc.x, ones) + dot4I8Packed(xc.y, ones) +
                                 dot4I8Packed(xc.z, ones) + dot4I8Packed(xc.w, ones));
                var s: vec4<i32>;
                for (var r = 0u; r < ROWS; r++) {
                    s[r] = dot4I8Packed(wl[r].x, xa.x) + dot4I8Packed(wl[r].y, xa.y) + dot4I8Packed(wl[r].z, xa.z) +
                           dot4I8Packed(wl[r].w, xa.w) + dot4I8Packed(wh[r].x, xc.x) + dot4I8Packed(wh[r].y, xc.y) +
                           dot4I8Packed(wh[r].z, xc.z) + dot4I8Packed(wh[r].w, xc.w);
                }
                acc[j] += vec4<f32>(s - vec4<i32>(xsum8)) * (wd * xs[tok * nb + b]);
            }
        }
    }
    let pb = grp * NT * TPR;
    for (var j = 0u; j < NT; j++) {
        partial[pb + j * TPR + t] = acc[j];
    }
    for (var half = TPR / 2u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if (t < half) {
            for (var j = 0u; j < NT; j++) {
                partial[pb + j * TPR + t] += partial[pb + j * TPR + t + half];
            }
        }
    }
    workgroupBarrier();
    if (live && t < ROWS * NT) {
        let r = t % ROWS;
        let j = t / ROWS;
        if (j < n && row0 + r < m) {
            let o = params.y_off + j * params.y_stride + row0 + r;
            let v = partial[pb + j * TPR][r];
            y[o] = select(v, y[o] + v, params.accumulate != 0u);
        }
    }
}
