// matmul_q8_batch_qkv: the q, k and v products of a batched decode step of 9 to 64
// tokens in one dispatch (weights of one int8 format, int8 x): each workgroup takes a row tile of one of
// the three matrices (q's tiles first, then k's, then v's), with lib_q8_batch.wgsl's tiles.
// Rotation and the cache stores follow in decode_attention's dispatches.
//
// Bindings: 0 Wq, 1 Wk, 2 Wv; 3 xq, 4 xs (as in matmul_q8_batch.wgsl); 5 q, 6 k, 7 v
// (token t, row r at [t * stride + r]); 8 params.
// Dispatch: (ceil(m_q / TM) + 2 ceil(m_kv / TM), ceil(n / TN)) workgroups.

struct Params {
    k: u32,
    m_q: u32,
    m_kv: u32,
    n: u32,
    q_stride: u32,
    kv_stride: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> wq: array<u32>;
@group(0) @binding(1) var<storage, read> wk: array<u32>;
@group(0) @binding(2) var<storage, read> wv: array<u32>;
@group(0) @binding(3) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> xs: array<f32>;
@group(0) @binding(5) var<storage, read_write> q: array<f32>;
@group(0) @binding(6) var<storage, read_write> k: array<f32>;
@group(0) @binding(7) var<storage, read_write> v: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;

fn wword(sel: u32, i: u32) -> u32 {
    if (sel == 0u) {
        return wq[i];
    }
    if (sel == 1u) {
        return wk[i];
    }
    return wv[i];
}

fn w_rows(sel: u32) -> u32 {
    return select(params.m_kv, params.m_q, sel == 0u);
}

fn put(sel: u32, r: u32, t: u32, val: f32) {
    if (sel == 0u) {
        q[t * params.q_stride + r] = val;
    } else if (sel == 1u) {
        k[t * params.kv_stride + r] = val;
    } else {
        v[t * params.kv_stride + r] = val;
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let tq = (params.m_q + TM - 1u) / TM;
    let tkv = (params.m_kv + TM - 1u) / TM;
    var sel = 0u;
    var tile = wid.x;
    if (tile >= tq) {
        tile -= tq;
        sel = 1u + tile / tkv;
        tile = tile % tkv;
    }
    let row0 = tile * TM;
    let tok0 = wid.y * TN;
    let acc = batch_tile(sel, sel, TM, row0, tok0, li);
    let m = w_rows(sel);
    for (var i = 0u; i < RT; i++) {
        let r = row0 + li % TX + TX * i;
        for (var j = 0u; j < TT; j++) {
            let t = tok0 + TT * (li / TX) + j;
            if (r < m && t < params.n) {
                put(sel, r, t, acc[i * TT + j]);
            }
        }
    }
}
