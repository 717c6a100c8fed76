// dst[dst_off + i] = src[src_off + i] for i < count (copy_rows, and staging of aliased operands).

struct Params {
    count: u32,
    src_off: u32,
    dst_off: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> S: array<f32>;
@group(0) @binding(2) var<storage, read_write> D: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = (wid.y * nwg.x + wid.x) * 256u + li;
    if (idx < P.count) {
        D[P.dst_off + idx] = S[P.src_off + idx];
    }
}
