// The shared part of the batched-decode int8 products (matmul_q4_0_q8_batch*.wgsl): Q4_0
// rows times the int8 x of a step of 9 to 64 tokens (several sequences decoding together),
// each weight tile read once for every token of the step. Put in front of such a kernel by
// the host, after lib_q4_0_int8.wgsl. The tile shape comes from the host as constants put
// in front of everything (wgpu_q8_batch.c, defined there once):
//   TM rows x TN tokens per workgroup of 256; each thread sums RT rows x TT tokens.
// The kernel provides `params` (with k and n), the bindings xq (vec4 words) and xs, and
//   fn w_word(sel: u32, i: u32) -> u32   word i of weight matrix sel
//   fn w_rows(sel: u32) -> u32           its rows
//
// As the prompt kernel (matmul_q4_0_q8.wgsl), a step stages KB blocks of the tile's rows and
// tokens in workgroup memory, the weights decoded once into signed bytes, the next step's
// words loaded before this step's arithmetic. Its tiles are smaller, sized for a decode
// step: one token tile holds the whole step, so the weights are read once, and the row tiles
// are small enough to give a big GPU many workgroups.

const KB: u32 = 256u / TM; // blocks per row per step: each thread decodes one block
const TX: u32 = TM / RT;   // threads along the rows (TX * TY = 256)
const TY: u32 = TN / TT;
const XV: u32 = 2u * TN * KB; // x vec4 words staged per step
const XPT: u32 = (XV + 255u) / 256u;

// Half block h of step block b, tile row r: ws[(2 b + h) * TM + r] (neighbouring threads,
// neighbouring rows: no bank conflicts); tokens likewise in xt.
var<workgroup> ws: array<vec4<u32>, 2u * KB * TM>;
var<workgroup> wd: array<f32, KB * TM>;
var<workgroup> xt: array<vec4<u32>, XV>;
var<workgroup> xd: array<f32, KB * TN>;

alias Acc = array<f32, RT * TT>; // row i, token j at [i * TT + j]

// Unsigned nibble bytes q -> the signed bytes q - 8 (as in matmul_q4_0_q8.wgsl).
fn batch_signed(q: vec4<u32>) -> vec4<u32> {
    return (q ^ vec4<u32>(0x08080808u)) | (((~q >> vec4<u32>(3u)) & vec4<u32>(0x01010101u)) * 0xF0u);
}

fn batch_dot32(wl: vec4<u32>, wh: vec4<u32>, xl: vec4<u32>, xh: vec4<u32>) -> i32 {
    return dot4I8Packed(wl.x, xl.x) + dot4I8Packed(wl.y, xl.y) + dot4I8Packed(wl.z, xl.z) +
           dot4I8Packed(wl.w, xl.w) + dot4I8Packed(wh.x, xh.x) + dot4I8Packed(wh.y, xh.y) +
           dot4I8Packed(wh.z, xh.z) + dot4I8Packed(wh.w, xh.w);
}

struct BatchW {
    a: vec4<u32>,
    e: u32,
    g: u32,    // block index within its matrix (its parity picks the alignment)
    live: u32, // 0 past the matrix or past k: stages zeros
}

fn batch_fetch_w(sel: u32, r: u32, b: u32, nb: u32) -> BatchW {
    var raw = BatchW(vec4<u32>(0u), 0u, 0u, 0u);
    if (r < w_rows(sel) && b < nb) {
        let g = r * nb + b;
        let o = q4_0_word(g);
        raw = BatchW(vec4<u32>(w_word(sel, o), w_word(sel, o + 1u), w_word(sel, o + 2u), w_word(sel, o + 3u)),
                     w_word(sel, o + 4u), g, 1u);
    }
    return raw;
}

// Staged x word e of the step starting at block b0: token e / (2 KB), half block e % (2 KB).
fn batch_fetch_x(tok0: u32, e: u32, b0: u32, nb: u32) -> vec4<u32> {
    let t = tok0 + e / (2u * KB);
    let hb = e % (2u * KB);
    if (e < XV && t < params.n && b0 + hb / 2u < nb) {
        return xq[(t * nb + b0) * 2u + hb];
    }
    return vec4<u32>(0u);
}

fn batch_fetch_xd(tok0: u32, e: u32, b0: u32, nb: u32) -> f32 {
    let t = tok0 + e / KB;
    let b = b0 + e % KB;
    if (e < KB * TN && t < params.n && b < nb) {
        return xs[t * nb + b];
    }
    return 0.0;
}

// Sums of the tile whose staged rows 0 .. split - 1 are rows row0 .. of matrix sel_lo and
// rows split .. TM - 1 rows row0 .. of matrix sel_hi, for tokens tok0 .. tok0 + TN - 1.
// Thread li gets rows tx + TX i (i < RT) and tokens TT ty + j (j < TT), tx = li % TX,
// ty = li / TX. Every thread of the workgroup calls it (barriers).
fn batch_tile(sel_lo: u32, sel_hi: u32, split: u32, row0: u32, tok0: u32, li: u32) -> Acc {
    let nb = params.k / 32u;
    let tx = li % TX;
    let ty = li / TX;
    let sr = li / KB; // staging: block sb of tile row sr (neighbours read one row's bytes)
    let sb = li % KB;
    let hi = sr >= split;
    let ssel = select(sel_lo, sel_hi, hi);
    let srow = row0 + select(sr, sr - split, hi);

    var acc: Acc;
    let steps = (nb + KB - 1u) / KB;
    var pw = batch_fetch_w(ssel, srow, sb, nb);
    var px: array<vec4<u32>, XPT>;
    for (var u = 0u; u < XPT; u++) {
        px[u] = batch_fetch_x(tok0, li + 256u * u, 0u, nb);
    }
    var pd = batch_fetch_xd(tok0, li, 0u, nb);
    for (var s = 0u; s < steps; s++) {
        let blk = q4_0_unpack(pw.a.x, pw.a.y, pw.a.z, pw.a.w, pw.e, pw.g);
        let live = pw.live != 0u;
        ws[2u * sb * TM + sr] = select(vec4<u32>(0u), batch_signed(blk.lo), live);
        ws[(2u * sb + 1u) * TM + sr] = select(vec4<u32>(0u), batch_signed(blk.hi), live);
        wd[sb * TM + sr] = select(0.0, blk.d, live);
        for (var u = 0u; u < XPT; u++) {
            let e = li + 256u * u;
            if (e < XV) {
                // token e / (2 KB), half block e % (2 KB) -> xt[(half block) * TN + token]
                xt[(e % (2u * KB)) * TN + e / (2u * KB)] = px[u];
            }
        }
        if (li < KB * TN) {
            xd[(li % KB) * TN + li / KB] = pd;
        }
        workgroupBarrier();
        if (s + 1u < steps) {
            let b0 = (s + 1u) * KB;
            pw = batch_fetch_w(ssel, srow, b0 + sb, nb);
            for (var u = 0u; u < XPT; u++) {
                px[u] = batch_fetch_x(tok0, li + 256u * u, b0, nb);
            }
            pd = batch_fetch_xd(tok0, li, b0, nb);
        }
        for (var b = 0u; b < KB; b++) {
            var xl: array<vec4<u32>, TT>;
            var xh: array<vec4<u32>, TT>;
            var dx: array<f32, TT>;
            for (var j = 0u; j < TT; j++) {
                let t = TT * ty + j;
                xl[j] = xt[2u * b * TN + t];
                xh[j] = xt[(2u * b + 1u) * TN + t];
                dx[j] = xd[b * TN + t];
            }
            for (var i = 0u; i < RT; i++) {
                let r = tx + TX * i;
                let wl = ws[2u * b * TM + r];
                let wh = ws[(2u * b + 1u) * TM + r];
                let d = wd[b * TM + r];
                for (var j = 0u; j < TT; j++) {
                    acc[i * TT + j] += f32(batch_dot32(wl, wh, xl[j], xh[j])) * (d * dx[j]);
                }
            }
        }
        workgroupBarrier();
    }
    return acc;
}
