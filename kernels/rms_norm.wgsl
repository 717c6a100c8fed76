// RMS norm by groups: group g of row i (d values from element g * d) becomes
// x / sqrt(mean(x^2) + eps) * w, one workgroup per (group, row). A group is the whole row
// (llama's norms) or one head (q/k norm). in_place != 0: the values are read from Y itself
// (X is then unused); each thread reads its elements before it writes them.

struct Params {
    d: u32,          // group length (= w's length)
    x_stride: u32,
    out_stride: u32,
    eps: f32,
    in_place: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> Wn: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

var<workgroup> red: array<f32, 256>;

fn x_at(i: u32) -> f32 {
    if (P.in_place != 0u) {
        return Y[i];
    }
    return X[i];
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let xb = wid.y * P.x_stride + wid.x * P.d;
    var ss = 0.0;
    for (var j = li; j < P.d; j += 256u) {
        let v = x_at(xb + j);
        ss += v * v;
    }
    red[li] = ss;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] += red[li + s];
        }
        workgroupBarrier();
    }
    let scale = 1.0 / sqrt(red[0] / f32(P.d) + P.eps);
    let ob = wid.y * P.out_stride + wid.x * P.d;
    for (var j = li; j < P.d; j += 256u) {
        Y[ob + j] = x_at(xb + j) * scale * Wn[j];
    }
}
