// matmul_q8_batch: Y = W X for a weight matrix of an int8 format and the int8 x of a batched decode
// step of 9 to 64 tokens (several sequences decoding together): the tiles of
// lib_q8_batch.wgsl (put in front, with the format's q8dot_<fmt>.wgsl), each weight tile read once for
// all the step's tokens. Same results as the nt matvecs and the prompt kernel up to the f32
// summation order: per block, the i32 dot product scaled once by d_w * d_x.
//
// Bindings: 0 w; 1 xq (k / 4 words per token, read as vec4s); 2 xs (k / 32 scales per token);
// 3 y (token t, row r at y[y_off + t * y_stride + r]); 4 params.
// Dispatch: (ceil(m / TM), ceil(n / TN)) workgroups.

struct Params {
    k: u32,
    m: u32,          // rows in this weight binding
    n: u32,          // tokens
    accumulate: u32, // != 0: y += W x
    y_off: u32,      // output index of the binding's first row
    y_stride: u32,   // output row stride (all rows of the weight)
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

fn wword(sel: u32, i: u32) -> u32 {
    return w[i];
}

fn w_rows(sel: u32) -> u32 {
    return params.m;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row0 = wid.x * TM;
    let tok0 = wid.y * TN;
    let acc = batch_tile(0u, 0u, TM, row0, tok0, li);
    for (var i = 0u; i < RT; i++) {
        let r = row0 + li % TX + TX * i;
        for (var j = 0u; j < TT; j++) {
            let t = tok0 + TT * (li / TX) + j;
            if (r < params.m && t < params.n) {
                let o = params.y_off + t * params.y_stride + r;
                let v = acc[i * TT + j];
                y[o] = select(v, y[o] + v, params.accumulate != 0u);
            }
        }
    }
}
