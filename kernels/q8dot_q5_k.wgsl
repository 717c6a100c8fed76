// Q5_K weights for the int8 products (the interface: lib_q8_x.wgsl; the scales, the unit
// structs and q8_x: lib_k_scales.wgsl, put in front). A super-block of 256 elements is 176
// bytes, all fields word aligned: f16 d, f16 dmin (word 0), 12 bytes of 6-bit scales and mins
// (words 1..3), 32 bytes of fifth bits qh (words 4..11: bit j of byte l is element l of
// sub-block j), 128 bytes of nibbles (words 12..43, as Q4_K's); value d * sc * q - dmin * m.
// Units as in q8dot_q4_k.wgsl: u = 8 sb + 2p + h is elements 16h .. 16h + 15 of sub-blocks 2p
// and 2p + 1, 16 bytes of nibbles and the 16 qh bytes of the same elements. k is a multiple
// of 256.

const Q8_WORDS: u32 = 12u;

fn q8_load(sel: u32, row: u32, u: u32, nu: u32) -> array<u32, Q8_WORDS> {
    let wi = ((row * nu + u) >> 3u) * 44u;
    let hi = wi + 4u + 4u * (u & 1u);
    let qi = wi + 12u + 8u * ((u >> 1u) & 3u) + 4u * (u & 1u);
    return array<u32, Q8_WORDS>(wword(sel, wi), wword(sel, wi + 1u), wword(sel, wi + 2u), wword(sel, wi + 3u),
                                wword(sel, hi), wword(sel, hi + 1u), wword(sel, hi + 2u), wword(sel, hi + 3u),
                                wword(sel, qi), wword(sel, qi + 1u), wword(sel, qi + 2u), wword(sel, qi + 3u));
}

fn q8_unpack(w: array<u32, Q8_WORDS>, row: u32, u: u32, nu: u32) -> Q8W {
    let j = 2u * ((u >> 1u) & 3u);
    let sma = k_scale_min(w[1], w[2], w[3], j);
    let smb = k_scale_min(w[1], w[2], w[3], j + 1u);
    let qh = vec4<u32>(w[4], w[5], w[6], w[7]);
    let q = vec4<u32>(w[8], w[9], w[10], w[11]);
    let lo4 = vec4<u32>(0x0f0f0f0fu);
    let bit = vec4<u32>(0x01010101u);
    let qa = (q & lo4) | (((qh >> vec4<u32>(j)) & bit) << vec4<u32>(4u));
    let qb = ((q >> vec4<u32>(4u)) & lo4) | (((qh >> vec4<u32>(j + 1u)) & bit) << vec4<u32>(4u));
    return Q8W(qa, qb, unpack2x16float(w[0]), vec2<i32>(sma.x, smb.x), vec2<i32>(sma.y, smb.y));
}

// |sc * sum(q x)| <= 63 * 31 * 127 * 16 and |m * sum(x)| <= 63 * 127 * 16: exact in f32
fn q8_dot(b: Q8W, x: Q8X) -> f32 {
    let qa = i8_dot16(b.qa, x.a);
    let qb = i8_dot16(b.qb, x.b);
    return b.dm.x * (x.da * f32(b.sc.x * qa) + x.db * f32(b.sc.y * qb)) -
           b.dm.y * (x.da * f32(b.mn.x * x.sa) + x.db * f32(b.mn.y * x.sb));
}

// The tiled kernels' blocks (lib_q8_x.wgsl): block b of a row is sub-block j = b % 8 of
// super-block b / 8: the nibbles as Q4_K's, the fifth bits bit j of the 32 qh bytes. Words:
// 0..3 of the super-block, its 8 words of qh, its 8 words of nibbles.
const Q8_BLOCK_WORDS: u32 = 20u;
const Q8_BLOCK_SPLIT = false;
const Q8_BLOCK_MIN = true;

fn q8_block_load(sel: u32, row: u32, b: u32, nb: u32) -> array<u32, Q8_BLOCK_WORDS> {
    let wi = ((row * nb + b) >> 3u) * 44u;
    let qi = wi + 12u + 8u * ((b >> 1u) & 3u);
    return array<u32, Q8_BLOCK_WORDS>(wword(sel, wi), wword(sel, wi + 1u), wword(sel, wi + 2u), wword(sel, wi + 3u),
                                      wword(sel, wi + 4u), wword(sel, wi + 5u), wword(sel, wi + 6u), wword(sel, wi + 7u),
                                      wword(sel, wi + 8u), wword(sel, wi + 9u), wword(sel, wi + 10u), wword(sel, wi + 11u),
                                      wword(sel, qi), wword(sel, qi + 1u), wword(sel, qi + 2u), wword(sel, qi + 3u),
                                      wword(sel, qi + 4u), wword(sel, qi + 5u), wword(sel, qi + 6u), wword(sel, qi + 7u));
}

fn q8_block(w: array<u32, Q8_BLOCK_WORDS>, row: u32, b: u32, nb: u32) -> I8Block {
    let j = b & 7u;
    let sm = k_scale_min(w[1], w[2], w[3], j);
    let dm = unpack2x16float(w[0]);
    let sh = vec4<u32>(4u * (j & 1u));
    let lo4 = vec4<u32>(0x0f0f0f0fu);
    let bit = vec4<u32>(0x01010101u);
    let hj = vec4<u32>(j);
    let lo = ((vec4<u32>(w[12], w[13], w[14], w[15]) >> sh) & lo4) |
             (((vec4<u32>(w[4], w[5], w[6], w[7]) >> hj) & bit) << vec4<u32>(4u));
    let hi = ((vec4<u32>(w[16], w[17], w[18], w[19]) >> sh) & lo4) |
             (((vec4<u32>(w[8], w[9], w[10], w[11]) >> hj) & bit) << vec4<u32>(4u));
    return I8Block(lo, hi, vec2<f32>(dm.x * f32(sm.x)), dm.y * f32(sm.y));
}
