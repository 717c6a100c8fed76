// What the q/k/v int8 products share (matvec_q8_nt_qkv.wgsl: a few tokens per weight read;
// matmul_q8_batch_qkv.wgsl: the batch tiles): their parameter block and bindings, the three
// matrices behind the one weight reader the format's q8dot_<fmt>.wgsl calls, how a dispatch's
// grid is split over them, and where a result goes. Put in front by the host; the C side
// fills Params in this order for both.
//
// Bindings: 0 wq, 1 wk, 2 wv; 3 xq (k / 4 words per token, read as vec4s), 4 xs (k / 32
// scales per token), tokens x_tok0 .. x_tok0 + n - 1; 5 q, 6 k, 7 v (token t, row r at
// [t * stride + r]); 8 params.

struct Params {
    k: u32,
    m_q: u32,        // rows of wq
    m_kv: u32,       // rows of wk and of wv
    n: u32,          // tokens of the dispatch
    q_stride: u32,
    kv_stride: u32,
    x_tok0: u32,     // first token of x (xq, xs) for this dispatch
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> wq: array<u32>;
@group(0) @binding(1) var<storage, read> wk: array<u32>;
@group(0) @binding(2) var<storage, read> wv: array<u32>;
@group(0) @binding(3) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> xs: array<f32>;
@group(0) @binding(5) var<storage, read_write> yq: array<f32>;
@group(0) @binding(6) var<storage, read_write> yk: array<f32>;
@group(0) @binding(7) var<storage, read_write> yv: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;

// Word o of matrix sel (0 q, 1 k, 2 v); sel is the same for a whole workgroup.
fn wword(sel: u32, o: u32) -> u32 {
    if (sel == 0u) {
        return wq[o];
    }
    if (sel == 1u) {
        return wk[o];
    }
    return wv[o];
}

fn w_rows(sel: u32) -> u32 {
    return select(params.m_kv, params.m_q, sel == 0u);
}

// Piece i of a grid over q's rows, then k's, then v's, in pieces of `unit` rows, each
// matrix's rows in whole pieces: (the matrix, the piece's first row in it).
fn qkv_locate(i: u32, unit: u32) -> vec2<u32> {
    let pq = (params.m_q + unit - 1u) / unit;
    let pkv = (params.m_kv + unit - 1u) / unit;
    if (i < pq) {
        return vec2<u32>(0u, i * unit);
    }
    let j = i - pq;
    return vec2<u32>(1u + j / pkv, (j % pkv) * unit);
}

// Row r of token t (of x) of matrix sel (the caller checks r against its rows).
fn qkv_put(sel: u32, t: u32, r: u32, v: f32) {
    if (sel == 0u) {
        yq[t * params.q_stride + r] = v;
    } else if (sel == 1u) {
        yk[t * params.kv_stride + r] = v;
    } else {
        yv[t * params.kv_stride + r] = v;
    }
}
