// Appends n rows of k and v to the caches at row pos0 (offsets in floats from the host).

struct Params {
    k_count: u32,
    v_count: u32,
    k_dst: u32,
    v_dst: u32,
    k_src: u32,
    v_src: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> K: array<f32>;
@group(0) @binding(2) var<storage, read> V: array<f32>;
// KVS: the cache's element type, f32 or f16 (declared in front of this file by the host).
@group(0) @binding(3) var<storage, read_write> Kc: array<KVS>;
@group(0) @binding(4) var<storage, read_write> Vc: array<KVS>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = (wid.y * nwg.x + wid.x) * 256u + li;
    if (idx < P.k_count) {
        Kc[P.k_dst + idx] = KVS(K[P.k_src + idx]);
    }
    if (idx < P.v_count) {
        Vc[P.v_dst + idx] = KVS(V[P.v_src + idx]);
    }
}
