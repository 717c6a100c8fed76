// What the plain int8 products share (matvec_q8_nt.wgsl: a few tokens per weight read;
// matmul_q8.wgsl: the int8 tiles of prompts and batched decode steps): their parameter
// block and bindings, the weight reader the format's q8dot_<fmt>.wgsl calls, and where a
// result goes. Put in front by the host; the C side fills Params in this order for all three.
//
// Bindings: 0 w; 1 xq (k / 4 words per token, read as vec4s); 2 xs (k / 32 scales per token),
// tokens x_tok0 .. x_tok0 + n - 1 used; 3 y (token j of the dispatch, row r at
// y[y_off + j * y_stride + r]); 4 params.

struct Params {
    k: u32,
    m: u32,          // rows in this weight binding
    y_off: u32,      // output index of the binding's first row (and of the dispatch's first token)
    accumulate: u32, // != 0: y += W x
    n: u32,          // tokens of the dispatch
    y_stride: u32,   // output row stride (all rows of the weight)
    x_tok0: u32,     // first token of x (xq, xs) for this dispatch
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;
// xq as vec4 words: one 16-byte load per half block (fewer, wider loads from the cache)
@group(0) @binding(1) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

fn wword(sel: u32, o: u32) -> u32 {
    return w[o];
}

fn w_rows(sel: u32) -> u32 {
    return params.m;
}

// Row r of the dispatch's token j (the caller checks r < m and j < n).
fn put_y(j: u32, r: u32, v: f32) {
    let o = params.y_off + j * params.y_stride + r;
    y[o] = select(v, y[o] + v, params.accumulate != 0u);
}
