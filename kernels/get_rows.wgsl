// out[out_row0 + i] = dequantized row ids[i] of the table binding (embedding lookup).
// One workgroup per id. Appended to a weight-format file (fmt_*.wgsl) providing w_elem.

struct Params {
    ne0: u32,        // row length
    row_bytes: u32,
    out_row0: u32,
    n_ids: u32,
    out_stride: u32, // output row length
    pad0: u32,
    pad1: u32,
    pad2: u32,
    ids: array<vec4<u32>, GET_ROWS_MAX_IDS / 4u>, // row indices relative to the binding's first row
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> W: array<u32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let i = wid.x;
    if (i >= P.n_ids) {
        return;
    }
    let ro = P.ids[i >> 2u][i & 3u] * P.row_bytes;
    let base = (P.out_row0 + i) * P.out_stride;
    for (var e = li; e < P.ne0; e += 256u) {
        Y[base + e] = w_elem(ro, e);
    }
}
