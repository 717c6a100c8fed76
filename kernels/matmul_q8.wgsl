// matmul_q8: Y = W X for a quantized weight matrix of an int8 format (Q4_0, Q8_0, Q4_K,
// Q5_K, Q6_K) and a batch of tokens (prefill) already rounded to int8 blocks
// (quantize_x_q8.wgsl), with integer dot products as in the int8 matvecs: per block of 32,
// the i32 dot is exact and scaled once by d_w * d_x (two such halves where the format has
// 16-element scales, and minus its min times x's block sum), so the result equals the
// matvec path's up to the f32 summation order. The format comes as its q8dot_<fmt>.wgsl
// (put in front, with lib_q8_x.wgsl): its q8_block_load / q8_block decode one weight block
// into signed bytes and scales, once per workgroup; one kernel for every format.
//
// A workgroup of 256 owns a TM-row x TN-token tile of Y; each thread accumulates RT rows x
// TT tokens (RT * TT / 4 vec4 accumulators). Per step, KB blocks (32 KB columns) of the
// tile's weights and tokens are staged in workgroup memory as int8 words, so the inner loop
// is only dot4I8Packed. The next step's global words are loaded into registers before the
// current step's arithmetic, so their latency is hidden behind it. The shape's constants
// TM, TN, RT, TT and KB are put in front by the host (wgpu_q8_prompt.h, where each shape
// is defined once and checked); the loops over a thread's rows and tokens have constant
// bounds, so the compiler unrolls them and keeps the accumulators in registers.
//
// Parameters and bindings: lib_q8_mat_io.wgsl (put in front).
// Dispatch: (ceil(m / TM), ceil(n / TN)) workgroups.

const TX: u32 = TM / RT; // threads across the rows: thread (tx, ty) has rows tx + TX i
const TG: u32 = TT / 4u; // a thread's tokens as vec4 groups: TT ty + 4 g .. + 3
const XV: u32 = 2u * KB * TN / 256u; // vec4s of x a thread stages per step
const_assert TX * (TN / TT) == 256u && TM % RT == 0u && TT % 4u == 0u; // 256 threads, whole vec4s
const_assert TM * KB == 256u && XV * 256u == 2u * KB * TN && KB * TN <= 256u; // staging: see main

// Half block h (0: elements 0..15, 1: 16..31) of step block b, row r: ws[(2 b + h) * TM + r];
// consecutive rows are consecutive vec4s, so the TX row-threads of a warp read without bank
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

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row0 = wid.x * TM;
    let tok0 = wid.y * TN;
    let nb = params.k / 32u;
    let tx = li % TX;
    let ty = li / TX;
    // Staging: thread li decodes block li % KB of tile row li / KB (neighbours read one
    // row's consecutive bytes), and loads x vec4s q = li + 256 j: vec4 q % (2 KB) of tile
    // token q / (2 KB)'s KB blocks (neighbours read one token's consecutive words).
    let sr = li / KB;
    let sb = li % KB;
    // scales: threads 0 .. KB * TN - 1, token li / KB, block li % KB
    let dt = tok0 + li / KB;
    let has_xd = li < KB * TN;

    var acc: array<vec4<f32>, RT * TG>; // acc[i * TG + g]: row tx + TX i, tokens TT ty + 4 g ..

    let steps = (nb + KB - 1u) / KB;
    var pw = fetch_w(row0 + sr, sb, nb);
    var px: array<vec4<u32>, XV>;
    for (var j = 0u; j < XV; j++) {
        let q = li + 256u * j;
        px[j] = fetch_x(tok0 + q / (2u * KB), (q % (2u * KB)) / 2u, q % 2u, nb);
    }
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
        }
        for (var j = 0u; j < XV; j++) {
            let q = li + 256u * j;
            let o = (q % (2u * KB)) * TN + q / (2u * KB); // half block q % (2 KB), token q / (2 KB)
            xt[o] = px[j];
            if (Q8_BLOCK_MIN) {
                xsum[o] = i8_sum16(px[j]);
            }
        }
        if (has_xd) {
            xd[sb * TN + li / KB] = pd;
        }
        workgroupBarrier();
        if (s + 1u < steps) {
            let b = (s + 1u) * KB;
            pw = fetch_w(row0 + sr, b + sb, nb);
            for (var j = 0u; j < XV; j++) {
                let q = li + 256u * j;
                px[j] = fetch_x(tok0 + q / (2u * KB), b + (q % (2u * KB)) / 2u, q % 2u, nb);
            }
            if (has_xd) {
                pd = fetch_xd(dt, b + sb, nb);
            }
        }
        for (var b = 0u; b < KB; b++) {
            // the thread's TT tokens of block b: both halves, scales, and for the formats
            // with mins dx * the block's sum
            var xl: array<vec4<u32>, TT>;
            var xh: array<vec4<u32>, TT>;
            var dx: array<vec4<f32>, TG>;
            var xm: array<vec4<f32>, TG>;
            for (var j = 0u; j < TT; j++) {
                xl[j] = xt[2u * b * TN + TT * ty + j];
                xh[j] = xt[(2u * b + 1u) * TN + TT * ty + j];
            }
            for (var g = 0u; g < TG; g++) {
                let t = b * TN + TT * ty + 4u * g;
                dx[g] = vec4<f32>(xd[t], xd[t + 1u], xd[t + 2u], xd[t + 3u]);
                if (Q8_BLOCK_MIN) {
                    let l = 2u * b * TN + TT * ty + 4u * g;
                    let h = l + TN;
                    xm[g] = dx[g] * vec4<f32>(vec4<i32>(xsum[l] + xsum[h], xsum[l + 1u] + xsum[h + 1u],
                                                        xsum[l + 2u] + xsum[h + 2u], xsum[l + 3u] + xsum[h + 3u]));
                }
            }
            for (var i = 0u; i < RT; i++) {
                let r = tx + TX * i;
                let wl = ws[2u * b * TM + r];
                let wh = ws[(2u * b + 1u) * TM + r];
                let d = wd[b * TM + r];
                for (var g = 0u; g < TG; g++) {
                    let j = 4u * g;
                    var v: vec4<f32>;
                    if (Q8_BLOCK_SPLIT) {
                        let lo = vec4<i32>(i8_dot16(wl, xl[j]), i8_dot16(wl, xl[j + 1u]), i8_dot16(wl, xl[j + 2u]),
                                           i8_dot16(wl, xl[j + 3u]));
                        let hi = vec4<i32>(i8_dot16(wh, xh[j]), i8_dot16(wh, xh[j + 1u]), i8_dot16(wh, xh[j + 2u]),
                                           i8_dot16(wh, xh[j + 3u]));
                        v = (vec4<f32>(lo) * d.x + vec4<f32>(hi) * d.y) * dx[g];
                    } else {
                        v = vec4<f32>(vec4<i32>(dot32(wl, wh, xl[j], xh[j]), dot32(wl, wh, xl[j + 1u], xh[j + 1u]),
                                                dot32(wl, wh, xl[j + 2u], xh[j + 2u]),
                                                dot32(wl, wh, xl[j + 3u], xh[j + 3u]))) * (d.x * dx[g]);
                    }
                    if (Q8_BLOCK_MIN) {
                        v -= wm[b * TM + r] * xm[g];
                    }
                    acc[i * TG + g] += v;
                }
            }
        }
        workgroupBarrier();
    }
    // Neighbouring threads store neighbouring rows of one token.
    for (var i = 0u; i < RT; i++) {
        for (var g = 0u; g < TG; g++) {
            store_row(row0 + tx + TX * i, tok0 + TT * ty + 4u * g, acc[i * TG + g]);
        }
    }
}
