// y = W x for one token (decode): memory-bound, so each weight byte is read once.
// A workgroup of 256 threads computes 8 rows; the 32 threads of a row take a quarter of a
// block each (4 threads per block, 8 blocks per step), so that neighbouring threads read
// neighbouring bytes of W and of x; the partial sums are reduced in workgroup memory.
// Needs rows of a multiple of 32 elements. Appended to a weight-format file
// (fmt_<type>.wgsl) and its block dot product (dot_<type>.wgsl):
// w_dot(row_byte_offset, block, quarter, x_vec4_index), which reads x through xv.

struct Params {
    m: u32,          // rows in this weight binding
    nb: u32,         // 32-element blocks per row
    row_bytes: u32,
    out_off: u32,    // output index of the binding's first row
    accumulate: u32, // != 0: Y += W x (a residual add fused into the product)
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> W: array<u32>;
@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

const TPR: u32 = MATVEC_TPR;         // threads per row (shapes: put in front by the host)
const RPW: u32 = MATVEC_WG / TPR;    // rows per workgroup

var<workgroup> red: array<f32, MATVEC_WG>;

fn xv(i: u32) -> vec4<f32> {
    return X[i];
}

@compute @workgroup_size(MATVEC_WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = (wid.y * nwg.x + wid.x) * RPW + li / TPR;
    let lane = li % TPR;
    var acc = 0.0;
    if (r < P.m) {
        let ro = r * P.row_bytes;
        for (var it = lane; it < P.nb * 4u; it += TPR) {
            let b = it >> 2u;
            acc += w_dot(ro, b, it & 3u, b * 8u);
        }
    }
    red[li] = acc;
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            red[li] += red[li + s];
        }
        workgroupBarrier();
    }
    if (lane == 0u && r < P.m) {
        let o = P.out_off + r;
        Y[o] = select(red[li], Y[o] + red[li], P.accumulate != 0u);
    }
}
