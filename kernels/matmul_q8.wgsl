// matmul_q8: Y = W X for a quantized weight matrix of an int8 format (Q4_0, Q8_0, Q4_K,
// Q5_K, Q6_K) and a batch of tokens (prefill) already rounded to int8 blocks
// (quantize_x_q8.wgsl), with integer dot products as in the int8 matvecs: per block of 32,
// the i32 dot is exact and scaled once by d_w * d_x (two such halves where the format has
// 16-element scales, and minus its min times x's block sum), so the result equals the
// matvec path's up to the f32 summation order. The format comes as its q8dot_<fmt>.wgsl
// (put in front, with lib_q8_x.wgsl): its q8_block_load / q8_block decode one weight block
// into signed bytes and scales, once per workgroup; one kernel for every format.
//
// A workgroup of 256 owns a 128-row x 64-token tile of Y; each thread accumulates 8 rows x
// 4 tokens (8 vec4 accumulators, one per row). Per step, KB = 2 blocks (64 columns) of the
// tile's weights and tokens are staged in workgroup memory as int8 words, so the inner loop
// is only dot4I8Packed. The next step's global words are loaded into registers before the
// current step's arithmetic, so their latency is hidden behind it.
//
// Parameters and bindings: lib_q8_mat_io.wgsl (put in front).
// Dispatch: (ceil(m / TM), ceil(n / TN)) workgroups.


const TM: u32 = Q8MM_TM; // the host's shapes, put in front
const TN: u32 = Q8MM_TN;
const_assert TM == 128u && TN == 64u; // the thread layout below: 16 x 16 threads of 8 rows x 4 tokens
const KB: u32 = 2u; // blocks per step

// Half block h (0: elements 0..15, 1: 16..31) of step block b, row r: ws[(2 b + h) * TM + r];
// consecutive rows are consecutive vec4s, so the 16 row-threads of a warp read without bank
// conflicts. Tokens likewise in xt; xsum: the i32 sum of each staged x half block (for the
// formats with mins).
var<workgroup> ws: array<vec4<u32>, 2u * KB * TM>;
var<workgroup> wd: array<vec2<f32>, KB * TM>;
var<workgroup> wm: array<f32, KB * TM>;
var<workgroup> xt: array<vec4<u32>, 2u * KB * TN>;
var<workgroup> xd: array<f32, KB * TN>;
var<workgroup> xsum: array<i32, 2u * KB * TN>;

fn dot32(wl: vec4<u32>, wh: vec4<u32>, xl: vec4<u32>, xh: vec4<u32>) -> i32 {
    return i8_dot16(wl, xl) + i8_dot16(wh, xh);
}

// One weight block's raw words, as loaded a step ahead.
struct WRaw {
    a: array<u32, Q8_BLOCK_WORDS>,
    row: u32,
    b: u32,
    live: bool, // false past the matrix: stages zeros
}

fn fetch_w(r: u32, b: u32, nb: u32) -> WRaw {
    var raw = WRaw(array<u32, Q8_BLOCK_WORDS>(), r, b, false);
    if (r < params.m && b < nb) {
        raw.a = q8_block_load(0u, r, b, nb);
        raw.live = true;
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

// Row r of tokens t .. t + 3.
fn store_row(r: u32, t: u32, v: vec4<f32>) {
    if (r >= params.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        if (t + j < params.n) {
            put_y(t + j, r, v[j]);
        }
    }
}

// A thread's 4 tokens of one step block.
struct XTok {
    l0: vec4<u32>,
    h0: vec4<u32>,
    l1: vec4<u32>,
    h1: vec4<u32>,
    l2: vec4<u32>,
    h2: vec4<u32>,
    l3: vec4<u32>,
    h3: vec4<u32>,
    dx: vec4<f32>,
    xm: vec4<f32>, // dx * the block's sum (formats with mins)
}

fn x_tok(b: u32, t: u32) -> XTok {
    let l = 2u * b * TN + t;
    let h = (2u * b + 1u) * TN + t;
    let dx = vec4<f32>(xd[b * TN + t], xd[b * TN + t + 1u], xd[b * TN + t + 2u], xd[b * TN + t + 3u]);
    var xm = vec4<f32>(0.0);
    if (Q8_BLOCK_MIN) {
        xm = dx * vec4<f32>(vec4<i32>(xsum[l] + xsum[h], xsum[l + 1u] + xsum[h + 1u], xsum[l + 2u] + xsum[h + 2u],
                                      xsum[l + 3u] + xsum[h + 3u]));
    }
    return XTok(xt[l], xt[h], xt[l + 1u], xt[h + 1u], xt[l + 2u], xt[h + 2u], xt[l + 3u], xt[h + 3u], dx, xm);
}

// Staged row r's block b times the 4 tokens' blocks.
fn row_dot(b: u32, r: u32, x: XTok) -> vec4<f32> {
    let wl = ws[2u * b * TM + r];
    let wh = ws[(2u * b + 1u) * TM + r];
    let d = wd[b * TM + r];
    var v: vec4<f32>;
    if (Q8_BLOCK_SPLIT) {
        let lo = vec4<i32>(i8_dot16(wl, x.l0), i8_dot16(wl, x.l1), i8_dot16(wl, x.l2), i8_dot16(wl, x.l3));
        let hi = vec4<i32>(i8_dot16(wh, x.h0), i8_dot16(wh, x.h1), i8_dot16(wh, x.h2), i8_dot16(wh, x.h3));
        v = (vec4<f32>(lo) * d.x + vec4<f32>(hi) * d.y) * x.dx;
    } else {
        v = vec4<f32>(vec4<i32>(dot32(wl, wh, x.l0, x.h0), dot32(wl, wh, x.l1, x.h1), dot32(wl, wh, x.l2, x.h2),
                                dot32(wl, wh, x.l3, x.h3))) * (d.x * x.dx);
    }
    if (Q8_BLOCK_MIN) {
        v -= wm[b * TM + r] * x.xm;
    }
    return v;
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
        var blk = I8Block(vec4<u32>(0u), vec4<u32>(0u), vec2<f32>(0.0), 0.0);
        if (pw.live) {
            blk = q8_block(pw.a, pw.row, pw.b, nb);
        }
        ws[2u * sb * TM + sr] = blk.lo;
        ws[(2u * sb + 1u) * TM + sr] = blk.hi;
        wd[sb * TM + sr] = blk.d;
        if (Q8_BLOCK_MIN) {
            wm[sb * TM + sr] = blk.m;
            xsum[sq * TN + st] = i8_sum16(px);
        }
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
            let x = x_tok(b, 4u * ty);
            a0 += row_dot(b, tx, x);
            a1 += row_dot(b, tx + 16u, x);
            a2 += row_dot(b, tx + 32u, x);
            a3 += row_dot(b, tx + 48u, x);
            a4 += row_dot(b, tx + 64u, x);
            a5 += row_dot(b, tx + 80u, x);
            a6 += row_dot(b, tx + 96u, x);
            a7 += row_dot(b, tx + 112u, x);
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
