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

fn w_elem_or0(ro: u32, e: u32) -> f32 {
    if (e < P.k) {
        return w_elem(ro, e);
    }
    return 0.0;
}

// Rows r, r + 16, r + 32, r + 48 of token t.
fn store(r: u32, t: u32, v: vec4<f32>) {
    if (t >= P.n) {
        return;
    }
    let o = P.out_off + t * P.out_stride;
    if (r < P.m) {
        Y[o + r] = v.x;
    }
    if (r + 16u < P.m) {
        Y[o + r + 16u] = v.y;
    }
    if (r + 32u < P.m) {
        Y[o + r + 32u] = v.z;
    }
    if (r + 48u < P.m) {
        Y[o + r + 48u] = v.w;
    }
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.x * TM;
    let tok0 = wid.y * TN;
    let tx = li % 16u;
    let ty = li / 16u;
    // Loader role: tile row (or token) lr, elements 8*lc .. 8*lc+7 of the step.
    let lr = li / 4u;
    let lc = li % 4u;
    // acc_j: rows tx + 16 i (i = component) of token ty + 16 j. Plain vectors, not an
    // array: arrays indexed in loops may end up in slow local memory.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
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
                let e = kb * TK + lc * 8u;
                w0 = vec4<f32>(w_elem_or0(ro, e), w_elem_or0(ro, e + 1u), w_elem_or0(ro, e + 2u), w_elem_or0(ro, e + 3u));
                w1 = vec4<f32>(w_elem_or0(ro, e + 4u), w_elem_or0(ro, e + 5u), w_elem_or0(ro, e + 6u), w_elem_or0(ro, e + 7u));
            }
        }
        let t = tok0 + lr;
        let ws = lc * 8u * TM + lr;
        Ws[ws] = w0.x;
        Ws[ws + TM] = w0.y;
        Ws[ws + 2u * TM] = w0.z;
        Ws[ws + 3u * TM] = w0.w;
        Ws[ws + 4u * TM] = w1.x;
        Ws[ws + 5u * TM] = w1.y;
        Ws[ws + 6u * TM] = w1.z;
        Ws[ws + 7u * TM] = w1.w;
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
            acc0 += a * bv.x;
            acc1 += a * bv.y;
            acc2 += a * bv.z;
            acc3 += a * bv.w;
        }
        workgroupBarrier();
    }
    store(row0 + tx, tok0 + ty, acc0);
    store(row0 + tx, tok0 + ty + 16u, acc1);
    store(row0 + tx, tok0 + ty + 32u, acc2);
    store(row0 + tx, tok0 + ty + 48u, acc3);
}
