// Rotates pairs of the first rope_dims of every head of row i, adjacent (x[2j], x[2j+1]) or
// with neox halves (x[j], x[j + rope_dims / 2]), by angle (position * freq_scale) * freq[j],
// in place; the position of row i is pos0 + i,
// or pos[i] with per_row (a batch of sequences, each at its own position, i < 32). The inverse frequencies come
// from the host (same arithmetic as the CPU backend); one thread per pair.

struct Params {
    n_heads: u32,
    head_dim: u32,
    half_dims: u32,  // rope_dims / 2
    pos0: u32,
    stride: u32,     // row length of x
    count: u32,      // n * n_heads * half_dims
    freq_scale: f32,
    row0: u32,       // first row of x
    per_row: u32,    // != 0: row i is at position pos[i]
    neox: u32,       // != 0: pairs are halves (x[j], x[j + half_dims])
    pad1: u32,
    pad2: u32,
    freqs: array<vec4<f32>, ROPE_MAX_PAIRS / 4u>,
    pos: array<vec4<u32>, ROPE_MAX_ROWS / 4u>,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> X: array<f32>;

// cos_sin and rope_elem: lib_rope.wgsl, put in front by the host.

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = (wid.y * nwg.x + wid.x) * 256u + li;
    if (idx >= P.count) {
        return;
    }
    let j = idx % P.half_dims;
    let h = (idx / P.half_dims) % P.n_heads;
    let i = idx / (P.half_dims * P.n_heads);
    var at = P.pos0 + i;
    if (P.per_row != 0u) {
        at = P.pos[i >> 2u][i & 3u];
    }
    let pos = f32(at) * P.freq_scale;
    let cs = cos_sin(pos * P.freqs[j >> 2u][j & 3u]);
    let hb = (P.row0 + i) * P.stride + h * P.head_dim;
    var o = hb + 2u * j;
    var o2 = o + 1u;
    if (P.neox != 0u) {
        o = hb + j;
        o2 = o + P.half_dims;
    }
    let a = X[o];
    let b = X[o2];
    X[o] = rope_elem(a, b, false, cs);
    X[o2] = rope_elem(a, b, true, cs);
}
