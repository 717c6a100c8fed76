// Q4_K weights for the int8 products (the interface: lib_q8_x.wgsl; the scales, the
// unit structs and q8_x: lib_k_scales.wgsl, put in front). A super-block of 256
// elements is 144 bytes, all fields word aligned: f16 d, f16 dmin (word 0), 12 bytes of
// 6-bit scales and mins (words 1..3), 128 bytes of nibbles (words 4..35); value
// d * sc * q - dmin * m, one (sc, m) pair per 32-element sub-block. Sub-blocks 2p and 2p + 1
// share 32 bytes of nibbles (low and high). Unit u = 8 sb + 2p + h of a row is 16 of those
// bytes (h: the first or second 16): elements 16h .. 16h + 15 of both sub-blocks, so
// neighbouring units read neighbouring bytes. k is a multiple of 256.

const Q8_WORDS: u32 = 8u;

fn q8_load(sel: u32, row: u32, u: u32, nu: u32) -> array<u32, Q8_WORDS> {
    let wi = ((row * nu + u) >> 3u) * 36u;
    let qi = wi + 4u + 8u * ((u >> 1u) & 3u) + 4u * (u & 1u);
    return array<u32, Q8_WORDS>(wword(sel, wi), wword(sel, wi + 1u), wword(sel, wi + 2u), wword(sel, wi + 3u),
                                wword(sel, qi), wword(sel, qi + 1u), wword(sel, qi + 2u), wword(sel, qi + 3u));
}

fn q8_unpack(w: array<u32, Q8_WORDS>, row: u32, u: u32, nu: u32) -> Q8W {
    let j = 2u * ((u >> 1u) & 3u);
    let sma = k_scale_min(w[1], w[2], w[3], j);
    let smb = k_scale_min(w[1], w[2], w[3], j + 1u);
    let q = vec4<u32>(w[4], w[5], w[6], w[7]);
    let lo4 = vec4<u32>(0x0f0f0f0fu);
    return Q8W(q & lo4, (q >> vec4<u32>(4u)) & lo4, unpack2x16float(w[0]), vec2<i32>(sma.x, smb.x),
               vec2<i32>(sma.y, smb.y));
}

// |sc * sum(q x)| <= 63 * 15 * 127 * 16 and |m * sum(x)| <= 63 * 127 * 16: exact in f32
fn q8_dot(b: Q8W, x: Q8X) -> f32 {
    let qa = i8_dot16(b.qa, x.a);
    let qb = i8_dot16(b.qb, x.b);
    return b.dm.x * (x.da * f32(b.sc.x * qa) + x.db * f32(b.sc.y * qb)) -
           b.dm.y * (x.da * f32(b.mn.x * x.sa) + x.db * f32(b.mn.y * x.sb));
}

// The tiled kernels' blocks (lib_q8_x.wgsl): block b of a row is sub-block j = b % 8 of
// super-block b / 8, the low (j even) or high nibbles of 32 bytes; scale d * sc, min
// dmin * m. Words: 0..3 of the super-block, then its 8 words of nibbles.
const Q8_BLOCK_WORDS: u32 = 12u;
const Q8_BLOCK_SPLIT = false;
const Q8_BLOCK_MIN = true;

fn q8_block_load(sel: u32, row: u32, b: u32, nb: u32) -> array<u32, Q8_BLOCK_WORDS> {
    let wi = ((row * nb + b) >> 3u) * 36u;
    let qi = wi + 4u + 8u * ((b >> 1u) & 3u);
    return array<u32, Q8_BLOCK_WORDS>(wword(sel, wi), wword(sel, wi + 1u), wword(sel, wi + 2u), wword(sel, wi + 3u),
                                      wword(sel, qi), wword(sel, qi + 1u), wword(sel, qi + 2u), wword(sel, qi + 3u),
                                      wword(sel, qi + 4u), wword(sel, qi + 5u), wword(sel, qi + 6u), wword(sel, qi + 7u));
}

fn q8_block(w: array<u32, Q8_BLOCK_WORDS>, row: u32, b: u32, nb: u32) -> I8Block {
    let j = b & 7u;
    let sm = k_scale_min(w[1], w[2], w[3], j);
    let dm = unpack2x16float(w[0]);
    let sh = vec4<u32>(4u * (j & 1u));
    let lo4 = vec4<u32>(0x0f0f0f0fu);
    return I8Block((vec4<u32>(w[4], w[5], w[6], w[7]) >> sh) & lo4, (vec4<u32>(w[8], w[9], w[10], w[11]) >> sh) & lo4,
                   vec2<f32>(dm.x * f32(sm.x)), dm.y * f32(sm.y));
}
