// Y = W X for a batch of tokens (prefill, batched decode): a 128-row x 64-token output
// tile per workgroup of 256. Per step, one quant block (32 columns) of 128 W rows and of
// 64 X rows is dequantized into workgroup memory; each thread then accumulates an 8-row x
// 4-token sub-tile in registers, reading 3 vec4s of workgroup memory per 32 FMAs.
// The next step's weights and tokens are fetched into registers before this step's
// arithmetic, so their load latency is hidden behind it (w_fetch / w_unpack come from a
// matmul_fetch_*.wgsl file; formats whose fetch cannot be split decode at fetch time).
// Appended to a weight-format file (fmt_*.wgsl) providing w_quad (block-aligned rows) and
// w_elem (any row length).

struct Params {
    m: u32,          // rows in this weight binding
    n: u32,          // tokens
    k: u32,          // row length (= X row stride)
    row_bytes: u32,
    out_off: u32,    // output index of the binding's first row
    out_stride: u32, // output row stride (all rows of the weight)
    aligned: u32,    // 1: k is a multiple of 32, read whole quads
    accumulate: u32, // != 0: Y += W X (a residual add fused into the product)
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> W: array<u32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

const TM: u32 = MATMUL_TM; // the host's shapes, put in front
const TN: u32 = MATMUL_TN;
const_assert TM == 128u && TN == 64u; // the thread layout below: 16 x 16 threads of 8 rows x 4 tokens
const TK: u32 = 32u;

// Ws[kk * TM / 4 + r / 4][r % 4] = W[row0 + r][k0 + kk]; Xs likewise with tokens.
var<workgroup> Ws: array<vec4<f32>, TK * TM / 4u>;
var<workgroup> Xs: array<vec4<f32>, TK * TN / 4u>;

fn w_elem_or0(ro: u32, e: u32) -> f32 {
    if (e < P.k) {
        return w_elem(ro, e);
    }
    return 0.0;
}

// Elements 4 q .. 4 q + 3 of block kb of weight row r (zeros past the matrix).
fn load_w(r: u32, kb: u32, q: u32) -> vec4<f32> {
    if (r >= P.m) {
        return vec4<f32>(0.0);
    }
    let ro = r * P.row_bytes;
    if (P.aligned != 0u) {
        return w_quad(ro, kb, q);
    }
    let g = kb * TK + 4u * q;
    return vec4<f32>(w_elem_or0(ro, g), w_elem_or0(ro, g + 1u), w_elem_or0(ro, g + 2u), w_elem_or0(ro, g + 3u));
}

fn x_or0(t: u32, e: u32) -> f32 {
    if (t < P.n && e < P.k) {
        return X[t * P.k + e];
    }
    return 0.0;
}

fn put_y(o: u32, v: f32) {
    if (P.accumulate != 0u) {
        Y[o] += v;
    } else {
        Y[o] = v;
    }
}

// Rows r .. r + 3 of token t.
fn store4(r: u32, t: u32, v: vec4<f32>) {
    if (t >= P.n) {
        return;
    }
    let o = P.out_off + t * P.out_stride + r;
    if (r < P.m) {
        put_y(o, v.x);
    }
    if (r + 1u < P.m) {
        put_y(o + 1u, v.y);
    }
    if (r + 2u < P.m) {
        put_y(o + 2u, v.z);
    }
    if (r + 3u < P.m) {
        put_y(o + 3u, v.w);
    }
}

fn put_w(kk: u32, r: u32, v: vec4<f32>) {
    Ws[kk * (TM / 4u) + (r >> 2u)][r & 3u] = v.x;
    Ws[(kk + 1u) * (TM / 4u) + (r >> 2u)][r & 3u] = v.y;
    Ws[(kk + 2u) * (TM / 4u) + (r >> 2u)][r & 3u] = v.z;
    Ws[(kk + 3u) * (TM / 4u) + (r >> 2u)][r & 3u] = v.w;
}

fn put_x(kk: u32, t: u32, v: f32) {
    Xs[kk * (TN / 4u) + (t >> 2u)][t & 3u] = v;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.x * TM;
    let tok0 = wid.y * TN;
    let tx = li % 16u; // rows 4 tx .. 4 tx + 3 and 64 + 4 tx .. 64 + 4 tx + 3
    let ty = li / 16u; // tokens 4 ty .. 4 ty + 3
    // W loader: tile row wr, elements 16 wc .. 16 wc + 15; X loader: token xr, elements
    // xc, xc + 4, ..., xc + 28 (the 4 loaders of a token read 16 contiguous bytes at a time).
    let wr = li >> 1u;
    let wc = li & 1u;
    let xr = li >> 2u;
    let xc = li & 3u;
    let xt = tok0 + xr;
    var a00 = vec4<f32>(0.0); // a<token j><row half h>
    var a01 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0);
    var a11 = vec4<f32>(0.0);
    var a20 = vec4<f32>(0.0);
    var a21 = vec4<f32>(0.0);
    var a30 = vec4<f32>(0.0);
    var a31 = vec4<f32>(0.0);
    let nkb = (P.k + TK - 1u) / TK;
    // the next step's part of the tiles, in registers
    var pw = w_fetch(row0 + wr, 0u, wc);
    var px0 = x_or0(xt, xc);
    var px1 = x_or0(xt, xc + 4u);
    var px2 = x_or0(xt, xc + 8u);
    var px3 = x_or0(xt, xc + 12u);
    var px4 = x_or0(xt, xc + 16u);
    var px5 = x_or0(xt, xc + 20u);
    var px6 = x_or0(xt, xc + 24u);
    var px7 = x_or0(xt, xc + 28u);
    for (var kb = 0u; kb < nkb; kb++) {
        let e = wc * 16u;
        put_w(e, wr, w_unpack(pw, wc, 0u));
        put_w(e + 4u, wr, w_unpack(pw, wc, 1u));
        put_w(e + 8u, wr, w_unpack(pw, wc, 2u));
        put_w(e + 12u, wr, w_unpack(pw, wc, 3u));
        put_x(xc, xr, px0);
        put_x(xc + 4u, xr, px1);
        put_x(xc + 8u, xr, px2);
        put_x(xc + 12u, xr, px3);
        put_x(xc + 16u, xr, px4);
        put_x(xc + 20u, xr, px5);
        put_x(xc + 24u, xr, px6);
        put_x(xc + 28u, xr, px7);
        workgroupBarrier();
        if (kb + 1u < nkb) {
            pw = w_fetch(row0 + wr, kb + 1u, wc);
            let xe = (kb + 1u) * TK + xc;
            px0 = x_or0(xt, xe);
            px1 = x_or0(xt, xe + 4u);
            px2 = x_or0(xt, xe + 8u);
            px3 = x_or0(xt, xe + 12u);
            px4 = x_or0(xt, xe + 16u);
            px5 = x_or0(xt, xe + 20u);
            px6 = x_or0(xt, xe + 24u);
            px7 = x_or0(xt, xe + 28u);
        }
        for (var kk = 0u; kk < TK; kk++) {
            let w0 = Ws[kk * (TM / 4u) + tx];
            let w1 = Ws[kk * (TM / 4u) + 16u + tx];
            let b = Xs[kk * (TN / 4u) + ty];
            a00 += w0 * b.x;
            a01 += w1 * b.x;
            a10 += w0 * b.y;
            a11 += w1 * b.y;
            a20 += w0 * b.z;
            a21 += w1 * b.z;
            a30 += w0 * b.w;
            a31 += w1 * b.w;
        }
        workgroupBarrier();
    }
    let ra = row0 + 4u * tx;
    let rb = row0 + 64u + 4u * tx;
    let t0 = tok0 + 4u * ty;
    store4(ra, t0, a00);
    store4(rb, t0, a01);
    store4(ra, t0 + 1u, a10);
    store4(rb, t0 + 1u, a11);
    store4(ra, t0 + 2u, a20);
    store4(rb, t0 + 2u, a21);
    store4(ra, t0 + 3u, a30);
    store4(rb, t0 + 3u, a31);
}
