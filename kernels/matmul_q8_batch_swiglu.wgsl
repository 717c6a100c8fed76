// matmul_q8_batch_swiglu: the feed-forward's first half for a batched decode step of 9
// to 64 tokens (weights of one int8 format, int8 x): y[t][r] = silu(Wg[r] . x[t]) * (Wu[r] . x[t]). A
// workgroup's tile (lib_q8_batch.wgsl) holds TM / 2 rows of Wg and the same rows of Wu, so
// the thread that sums a gate row also sums its up row (RT is even) and no gate or up buffer
// is written.
//
// Bindings: 0 Wg, 1 Wu; 2 xq, 3 xs (as in matmul_q8.wgsl); 4 y (token t, row r at
// y[t * m + r]); 5 params.
// Dispatch: (ceil(m / (TM / 2)), ceil(n / TN)) workgroups.

struct Params {
    k: u32,
    m: u32,
    n: u32,
    pad0: u32,
}

@group(0) @binding(0) var<storage, read> wg_: array<u32>;
@group(0) @binding(1) var<storage, read> wu_: array<u32>;
@group(0) @binding(2) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> xs: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

fn wword(sel: u32, i: u32) -> u32 {
    if (sel == 0u) {
        return wg_[i];
    }
    return wu_[i];
}

fn w_rows(sel: u32) -> u32 {
    return params.m;
}

// The thread's gate row i (i < RT / 2) and the same row of Wu (its row i + RT / 2), token j.
fn pair_put(c: PutCtx, i: u32, j: u32, g: f32, u: f32) {
    let r = c.row0 + c.tx + TX * i;
    let t = c.tok0 + TT * c.ty + j;
    if (r < params.m && t < params.n) {
        y[t * params.m + r] = g / (1.0 + exp(-g)) * u;
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let half = TM / 2u;
    let row0 = wid.x * half;
    let tok0 = wid.y * TN;
    tile_store(batch_tile(0u, 1u, half, row0, tok0, li), put_ctx(row0, tok0, li, 0u));
}
