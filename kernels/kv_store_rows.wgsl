// A batched step's KV store: row row0 + i of k and v (a token of some sequence) goes to
// row rows[i].x of that sequence's caches, which start at element rows[i].y (K) and
// rows[i].z (V) of the bound cache arenas (see wgb_kv_arena), k rotated first when
// half_dims > 0 (lib_rope.wgsl is put in front). One workgroup row per token.

struct Params {
    count: u32,     // elements per row (the KV width)
    k_stride: u32,  // row lengths of k and v
    v_stride: u32,
    kv_stride: u32, // cache row length
    row0: u32,      // row of k and v of the first token
    head_dim: u32,
    half_dims: u32, // > 0: k is rotated first (rope_dims / 2 pairs per head, as rope.wgsl)
    freq_scale: f32,
    neox: u32,      // != 0: pairs are halves, as rope.wgsl's neox
    pad0: u32,
    pad1: u32,
    pad2: u32,
    rows: array<vec4<u32>, DECODE_MAX_ROWS>,
    freqs: array<vec4<f32>, ROPE_MAX_PAIRS / 4u>,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> K: array<f32>;
@group(0) @binding(2) var<storage, read> V: array<f32>;
// KVS: the cache's element type, f32 or f16 (declared in front of this file by the host).
@group(0) @binding(3) var<storage, read_write> Kc: array<KVS>;
@group(0) @binding(4) var<storage, read_write> Vc: array<KVS>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let i = wid.y;
    let e = wid.x * 256u + li;
    if (e >= P.count) {
        return;
    }
    let r = P.rows[i];
    let kb = (P.row0 + i) * P.k_stride;
    var kv = K[kb + e];
    let d = e % P.head_dim;
    let rp = rope_pair(d, P.half_dims, P.neox != 0u);
    let j = rp.x;
    if (j < P.half_dims) {
        let cs = cos_sin(f32(r.x) * P.freq_scale * P.freqs[j >> 2u][j & 3u]);
        let mate = kb + e - d + rp.y;
        let odd = rp.z == 1u;
        kv = rope_elem(select(kv, K[mate], odd), select(K[mate], kv, odd), odd, cs);
    }
    Kc[r.y + r.x * P.kv_stride + e] = KVS(kv);
    Vc[r.z + r.x * P.kv_stride + e] = KVS(V[(P.row0 + i) * P.v_stride + e]);
}
