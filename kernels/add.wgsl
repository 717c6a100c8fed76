// x += y, element-wise (residual connection); with y_len > 0, y is one row of y_len values
// added to every row of x (a bias).

struct Params {
    count: u32,
    y_len: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> X: array<f32>;
@group(0) @binding(2) var<storage, read> Yv: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = (wid.y * nwg.x + wid.x) * 256u + li;
    if (idx < P.count) {
        var yi = idx;
        if (P.y_len != 0u) {
            yi = idx % P.y_len;
        }
        X[idx] = X[idx] + Yv[yi];
    }
}
