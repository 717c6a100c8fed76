// out[i] = x[i] / sqrt(mean(x[i]^2) + eps) * w, one workgroup per row.

struct Params {
    d: u32,          // row length
    x_stride: u32,
    out_stride: u32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> Wn: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let xb = wid.x * P.x_stride;
    var ss = 0.0;
    for (var j = li; j < P.d; j += 256u) {
        let v = X[xb + j];
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
    let ob = wid.x * P.out_stride;
    for (var j = li; j < P.d; j += 256u) {
        Y[ob + j] = X[xb + j] * scale * Wn[j];
    }
}
