// matmul_q4_0_q8: Y = W X for a Q4_0 weight matrix and a batch of tokens (prefill, larger
// batched steps) already rounded to int8 blocks (quantize_x_q8.wgsl), with integer dot
// products as in the int8 matvecs: per block, sum((q - 8) x) is exact in i32 and scaled
// once by d_w * d_x, so the result equals the matvec path's up to the f32 summation order.
//
// A workgroup of 256 owns a 128-row x 64-token tile of Y; each thread accumulates 8 rows x
// 4 tokens (8 vec4 accumulators, one per row). Per step, KB = 2 blocks (64 columns) of the
// tile's weights and tokens are staged in workgroup memory as int8 words: the weights are
// decoded once per step here, with the nibbles turned into signed bytes, so the inner loop
// is only dot4I8Packed. The next step's global words are loaded into registers before the
// current step's arithmetic, so their latency is hidden behind it.
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

const TM: u32 = Q8MM_TM; // the host's shapes, put in front
const TN: u32 = Q8MM_TN;
const_assert TM == 128u && TN == 64u; // the thread layout below: 16 x 16 threads of 8 rows x 4 tokens
const KB: u32 = 2u; // blocks per step

// Half block h (0: elements 0..15, 1: 16..31) of step block b, row r: ws[(2 b + h) * TM + r];
// consecutive rows are consecutive vec4s, so the 16 row-threads of a warp read without bank
// conflicts. Tokens likewise in xt. 8 KiB + 1 KiB + 4 KiB + 0.5 KiB.
var<workgroup> ws: array<vec4<u32>, 2u * KB * TM>;
var<workgroup> wd: array<f32, KB * TM>;
var<workgroup> xt: array<vec4<u32>, 2u * KB * TN>;
var<workgroup> xd: array<f32, KB * TN>;

// Unsigned nibble bytes q -> the signed bytes q - 8: flipping bit 3 gives q - 8 for q >= 8
// and q + 8 for q < 8, where setting the top 4 bits subtracts the missing 16.
fn signed_nibbles(q: vec4<u32>) -> vec4<u32> {
    return (q ^ vec4<u32>(0x08080808u)) | (((~q >> vec4<u32>(3u)) & vec4<u32>(0x01010101u)) * 0xF0u);
}

fn dot32(wl: vec4<u32>, wh: vec4<u32>, xl: vec4<u32>, xh: vec4<u32>) -> i32 {
    return dot4I8Packed(wl.x, xl.x) + dot4I8Packed(wl.y, xl.y) + dot4I8Packed(wl.z, xl.z) +
           dot4I8Packed(wl.w, xl.w) + dot4I8Packed(wh.x, xh.x) + dot4I8Packed(wh.y, xh.y) +
           dot4I8Packed(wh.z, xh.z) + dot4I8Packed(wh.w, xh.w);
}

// One weight block's raw words, as loaded a step ahead.
struct WRaw {
    a: vec4<u32>,
    e: u32,
    g: u32,    // block index within the binding (its parity picks the alignment)
    live: u32, // 0 past the matrix: stages zeros
}

fn fetch_w(r: u32, b: u32, nb: u32) -> WRaw {
    var raw = WRaw(vec4<u32>(0u), 0u, 0u, 0u);
    if (r < params.m && b < nb) {
        let g = r * nb + b;
        let o = q4_0_word(g);
        raw = WRaw(vec4<u32>(w[o], w[o + 1u], w[o + 2u], w[o + 3u]), w[o + 4u], g, 1u);
    }
    return raw;
}

fn fetch_x(t: u32, b: u32, h: u32, nb: u32) -> vec4<u32> {
    if (t < params.n && b < nb) {
        return xq[(t * nb + b) * 2u + h];
    }
    return vec4<u32>(0u);
}

fn fetch_xd(t: u32, b: u32, nb: u32) -> f32 {
    if (t < params.n && b < nb) {
        return xs[t * nb + b];
    }
    return 0.0;
}

fn put_y(o: u32, v: f32) {
    if (params.accumulate != 0u) {
        y[o] += v;
    } else {
        y[o] = v;
    }
}

// Row r of tokens t .. t + 3.
fn store_row(r: u32, t: u32, v: vec4<f32>) {
    if (r >= params.m) {
        return;
    }
    let o = params.y_off + t * params.y_stride + r;
    if (t < params.n) {
        put_y(o, v.x);
    }
    if (t + 1u < params.n) {
        put_y(o + params.y_stride, v.y);
    }
    if (t + 2u < params.n) {
        put_y(o + 2u * params.y_stride, v.z);
    }
    if (t + 3u < params.n) {
        put_y(o + 3u * params.y_stride, v.w);
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row0 = wid.x * TM;
    let tok0 = wid.y * TN;
    let nb = params.k / 32u;
    let tx = li % 16u; // rows tx + 16 i, i = 0..7
    let ty = li / 16u; // tokens 4 ty .. 4 ty + 3
    // Staging: thread li decodes block li % KB of tile row li / KB (neighbours read one
    // row's consecutive bytes) and loads vec4 li % 4 of tile token li / 4's two blocks.
    let sr = li / KB;
    let sb = li % KB;
    let st = li / 4u;
    let sq = li % 4u;
    // scales: threads 0 .. KB * TN - 1, token li / KB, block li % KB
    let dt = tok0 + li / KB;
    let has_xd = li < KB * TN;

    var a0 = vec4<f32>(0.0); // a<i>: row tx + 16 i, tokens 4 ty .. 4 ty + 3
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);

    let steps = (nb + KB - 1u) / KB;
    var pw = fetch_w(row0 + sr, sb, nb);
    var px = fetch_x(tok0 + st, sq / 2u, sq % 2u, nb);
    var pd = 0.0;
    if (has_xd) {
        pd = fetch_xd(dt, sb, nb);
    }
    for (var s = 0u; s < steps; s++) {
        let blk = q4_0_unpack(pw.a.x, pw.a.y, pw.a.z, pw.a.w, pw.e, pw.g);
        let live = pw.live != 0u;
        ws[2u * sb * TM + sr] = select(vec4<u32>(0u), signed_nibbles(blk.lo), live);
        ws[(2u * sb + 1u) * TM + sr] = select(vec4<u32>(0u), signed_nibbles(blk.hi), live);
        wd[sb * TM + sr] = select(0.0, blk.d, live);
        xt[sq * TN + st] = px;
        if (has_xd) {
            xd[sb * TN + li / KB] = pd;
        }
        workgroupBarrier();
        if (s + 1u < steps) {
            let b = (s + 1u) * KB;
            pw = fetch_w(row0 + sr, b + sb, nb);
            px = fetch_x(tok0 + st, b + sq / 2u, sq % 2u, nb);
            if (has_xd) {
                pd = fetch_xd(dt, b + sb, nb);
            }
        }
        for (var b = 0u; b < KB; b++) {
            let t = 4u * ty;
            let xl0 = xt[2u * b * TN + t];
            let xh0 = xt[(2u * b + 1u) * TN + t];
            let xl1 = xt[2u * b * TN + t + 1u];
            let xh1 = xt[(2u * b + 1u) * TN + t + 1u];
            let xl2 = xt[2u * b * TN + t + 2u];
            let xh2 = xt[(2u * b + 1u) * TN + t + 2u];
            let xl3 = xt[2u * b * TN + t + 3u];
            let xh3 = xt[(2u * b + 1u) * TN + t + 3u];
            let dx = vec4<f32>(xd[b * TN + t], xd[b * TN + t + 1u], xd[b * TN + t + 2u], xd[b * TN + t + 3u]);
            let lo = 2u * b * TM + tx;
            let hi = (2u * b + 1u) * TM + tx;
            let di = b * TM + tx;
            // One row of the sub-tile: its block times the 4 tokens' blocks.
            var wl = ws[lo];
            var wh = ws[hi];
            a0 += vec4<f32>(vec4<i32>(dot32(wl, wh, xl0, xh0), dot32(wl, wh, xl1, xh1), dot32(wl, wh, xl2, xh2),
                                      dot32(wl, wh, xl3, xh3))) * (wd[di] * dx);
            wl = ws[lo + 16u];
            wh = ws[hi + 16u];
            a1 += vec4<f32>(vec4<i32>(dot32(wl, wh, xl0, xh0), dot32(wl, wh, xl1, xh1), dot32(wl, wh, xl2, xh2),
                                      dot32(wl, wh, xl3, xh3))) * (wd[di + 16u] * dx);
            wl = ws[lo + 32u];
            wh = ws[hi + 32u];
            a2 += vec4<f32>(vec4<i32>(dot32(wl, wh, xl0, xh0), dot32(wl, wh, xl1, xh1), dot32(wl, wh, xl2, xh2),
                                      dot32(wl, wh, xl3, xh3))) * (wd[di + 32u] * dx);
            wl = ws[lo + 48u];
            wh = ws[hi + 48u];
            a3 += vec4<f32>(vec4<i32>(dot32(wl, wh, xl0, xh0), dot32(wl, wh, xl1, xh1), dot32(wl, wh, xl2, xh2),
                                      dot32(wl, wh, xl3, xh3))) * (wd[di + 48u] * dx);
            wl = ws[lo + 64u];
            wh = ws[hi + 64u];
            a4 += vec4<f32>(vec4<i32>(dot32(wl, wh, xl0, xh0), dot32(wl, wh, xl1, xh1), dot32(wl, wh, xl2, xh2),
                                      dot32(wl, wh, xl3, xh3))) * (wd[di + 64u] * dx);
            wl = ws[lo + 80u];
            wh = ws[hi + 80u];
            a5 += vec4<f32>(vec4<i32>(dot32(wl, wh, xl0, xh0), dot32(wl, wh, xl1, xh1), dot32(wl, wh, xl2, xh2),
                                      dot32(wl, wh, xl3, xh3))) * (wd[di + 80u] * dx);
            wl = ws[lo + 96u];
            wh = ws[hi + 96u];
            a6 += vec4<f32>(vec4<i32>(dot32(wl, wh, xl0, xh0), dot32(wl, wh, xl1, xh1), dot32(wl, wh, xl2, xh2),
                                      dot32(wl, wh, xl3, xh3))) * (wd[di + 96u] * dx);
            wl = ws[lo + 112u];
            wh = ws[hi + 112u];
            a7 += vec4<f32>(vec4<i32>(dot32(wl, wh, xl0, xh0), dot32(wl, wh, xl1, xh1), dot32(wl, wh, xl2, xh2),
                                      dot32(wl, wh, xl3, xh3))) * (wd[di + 112u] * dx);
        }
        workgroupBarrier();
    }
    // Neighbouring threads store neighbouring rows of one token.
    let r = row0 + tx;
    let t = tok0 + 4u * ty;
    store_row(r, t, a0);
    store_row(r + 16u, t, a1);
    store_row(r + 32u, t, a2);
    store_row(r + 48u, t, a3);
    store_row(r + 64u, t, a4);
    store_row(r + 80u, t, a5);
    store_row(r + 96u, t, a6);
    store_row(r + 112u, t, a7);
}
