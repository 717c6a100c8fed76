// The int8 tiles: rows of an int8 weight format times int8 x, each weight tile decoded
// once per workgroup into signed bytes in workgroup memory and used by all the tile's
// tokens. Two users put it in front of their kernels (matmul_q8_batch*.wgsl), with the
// format's q8dot_<fmt>.wgsl and lib_q8_x.wgsl, whose q8_block_load / q8_block decode a
// weight block:
//   - batched decode steps of 9 to 64 tokens (wgpu_q8_batch.c): one token tile holds the
//     whole step, so the weights are read once, and the row tiles are small enough to give
//     a big GPU many workgroups;
//   - prompts (wgpu_q8_prompt.c): bigger tiles, the shape picked per adapter by the autotune.
// The tile shape comes from the host as constants put in front of everything:
//   TM rows x TN tokens per workgroup of 256; each thread sums RT rows x TT tokens,
// and with it the thread's generated registers and their arithmetic (struct Acc, tile_step,
// tile_store: wgb_q8_tile_wgsl, wgpu_q8_gen.c). tile_store hands each sum (or gate/up pair)
// to the kernel's acc_put (pair_put) with the thread's place in a PutCtx.
// The kernel provides (the plain and q/k/v ones through lib_q8_mat_io.wgsl and
// lib_q8_qkv_io.wgsl, which the nt matvecs share) `params` (with k and n), the bindings xq
// (vec4 words) and xs, and
//   fn wword(sel: u32, i: u32) -> u32    word i of weight matrix sel
//   fn w_rows(sel: u32) -> u32           its rows
//
// A step stages KB blocks of the tile's rows and tokens in workgroup memory; the next
// step's words are loaded into registers before this step's arithmetic, so their latency
// hides behind it.

const KB: u32 = 256u / TM; // blocks per row per step: each thread decodes one block
const TX: u32 = TM / RT;   // threads along the rows (TX * TY = 256)
const TY: u32 = TN / TT;
const XV: u32 = 2u * TN * KB; // x vec4 words staged per step
const XPT: u32 = (XV + 255u) / 256u;

// Half block h of step block b, tile row r: ws[(2 b + h) * TM + r] (neighbouring threads,
// neighbouring rows: no bank conflicts); tokens likewise in xt, and in xsum the i32 sums of
// the staged x half blocks (for the formats with mins).
var<workgroup> ws: array<vec4<u32>, 2u * KB * TM>;
var<workgroup> wd: array<vec2<f32>, KB * TM>;
var<workgroup> wm: array<f32, KB * TM>;
var<workgroup> xt: array<vec4<u32>, XV>;
var<workgroup> xsum: array<i32, XV>;
var<workgroup> xd: array<f32, KB * TN>;

// Where a thread's sums go: row row0 + tx + TX i, token tok0 + TT ty + j of matrix sel.
struct PutCtx {
    row0: u32,
    tok0: u32,
    tx: u32,
    ty: u32,
    sel: u32,
}

fn put_ctx(row0: u32, tok0: u32, li: u32, sel: u32) -> PutCtx {
    return PutCtx(row0, tok0, li % TX, li / TX, sel);
}

struct BatchW {
    a: array<u32, Q8_BLOCK_WORDS>,
    row: u32,
    b: u32,
    live: bool, // false past the matrix or past k: stages zeros
}

fn batch_fetch_w(sel: u32, r: u32, b: u32, nb: u32) -> BatchW {
    var raw = BatchW(array<u32, Q8_BLOCK_WORDS>(), r, b, false);
    if (r < w_rows(sel) && b < nb) {
        raw.a = q8_block_load(sel, r, b, nb);
        raw.live = true;
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
        for (var u = 0u; u < XPT; u++) {
            let e = li + 256u * u;
            if (e < XV) {
                // token e / (2 KB), half block e % (2 KB) -> xt[(half block) * TN + token]
                let o = (e % (2u * KB)) * TN + e / (2u * KB);
                xt[o] = px[u];
                if (Q8_BLOCK_MIN) {
                    xsum[o] = i8_sum16(px[u]);
                }
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
            tile_step(&acc, b, tx, ty);
        }
        workgroupBarrier();
    }
    return acc;
}
