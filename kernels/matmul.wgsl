// Y = W X for a batch of tokens (prefill): a 64-row x 64-token output tile per workgroup,
// 32 columns of W (one quant block) and of X staged in workgroup memory per step, each
// thread accumulating a 4x4 sub-tile in registers. Appended to a weight-format file
// (fmt_*.wgsl) providing w_quad (block-aligned rows) and w_elem (any row length).

struct Params {
    m: u32,          // rows in this weight binding
    n: u32,          // tokens
    k: u32,          // row length (= X row stride)
    row_bytes: u32,
    out_off: u32,    // output index of the binding's first row
    out_stride: u32, // output row stride (all rows of the weight)
    aligned: u32,    // 1: k is a multiple of 32, read whole quads
    pad: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> W: array<u32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 32u;

var<workgroup> Ws: array<f32, 2048>; // [TK][TM]
var<workgroup> Xs: array<f32, 2048>; // [TK][TN]

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.x * TM;
    let tok0 = wid.y * TN;
    let tx = li % 16u;
    let ty = li / 16u;
    // Loader role: tile row (or token) lr, elements 8*lc .. 8*lc+7 of the step.
    let lr = li / 4u;
    let lc = li % 4u;
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = 0.0;
    }
    let nkb = (P.k + TK - 1u) / TK;
    for (var kb = 0u; kb < nkb; kb++) {
        var w0 = vec4<f32>(0.0);
        var w1 = vec4<f32>(0.0);
        let r = row0 + lr;
        if (r < P.m) {
            let ro = r * P.row_bytes;
            if (P.aligned != 0u) {
                w0 = w_quad(ro, kb, lc * 2u);
                w1 = w_quad(ro, kb, lc * 2u + 1u);
            } else {
                for (var c = 0u; c < 4u; c++) {
                    let e = kb * TK + lc * 8u + c;
                    if (e < P.k) {
                        w0[c] = w_elem(ro, e);
                    }
                    if (e + 4u < P.k) {
                        w1[c] = w_elem(ro, e + 4u);
                    }
                }
            }
        }
        let t = tok0 + lr;
        for (var c = 0u; c < 4u; c++) {
            Ws[(lc * 8u + c) * TM + lr] = w0[c];
            Ws[(lc * 8u + 4u + c) * TM + lr] = w1[c];
        }
        for (var c = 0u; c < 8u; c++) {
            let e = kb * TK + lc * 8u + c;
            var v = 0.0;
            if (t < P.n && e < P.k) {
                v = X[t * P.k + e];
            }
            Xs[(lc * 8u + c) * TN + lr] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let a = vec4<f32>(Ws[kk * TM + tx], Ws[kk * TM + tx + 16u], Ws[kk * TM + tx + 32u], Ws[kk * TM + tx + 48u]);
            let bv = vec4<f32>(Xs[kk * TN + ty], Xs[kk * TN + ty + 16u], Xs[kk * TN + ty + 32u], Xs[kk * TN + ty + 48u]);
            for (var j = 0u; j < 4u; j++) {
                acc[j * 4u + 0u] += a.x * bv[j];
                acc[j * 4u + 1u] += a.y * bv[j];
                acc[j * 4u + 2u] += a.z * bv[j];
                acc[j * 4u + 3u] += a.w * bv[j];
            }
        }
        workgroupBarrier();
    }
    for (var j = 0u; j < 4u; j++) {
        let t = tok0 + ty + 16u * j;
        for (var i = 0u; i < 4u; i++) {
            let r = row0 + tx + 16u * i;
            if (r < P.m && t < P.n) {
                Y[P.out_off + t * P.out_stride + r] = acc[j * 4u + i];
            }
        }
    }
}
