// Merges the per-split results of attention.wgsl: out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M)
// with M the largest split maximum. One workgroup per (query head, token).

struct Params {
    n_head: u32,
    hd: u32,
    n_split: u32,
    out_stride: u32,
    row0: u32,       // first row of out
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let i = wid.y;
    let base = (i * P.n_head + h) * P.n_split;
    let stride = P.hd + 2u;
    var mx = part[base * stride];
    for (var s = 1u; s < P.n_split; s++) {
        mx = max(mx, part[(base + s) * stride]);
    }
    var l = 0.0;
    var acc = 0.0;
    for (var s = 0u; s < P.n_split; s++) {
        let pb = (base + s) * stride;
        let f = exp(part[pb] - mx);
        l += part[pb + 1u] * f;
        if (li < P.hd) {
            acc += part[pb + 2u + li] * f;
        }
    }
    if (li < P.hd) {
        O[(P.row0 + i) * P.out_stride + h * P.hd + li] = acc / l;
    }
}
