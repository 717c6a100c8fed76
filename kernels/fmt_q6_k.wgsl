// Weight format q6_k (210-byte super-blocks of 256 elements: 128 bytes of low nibbles ql,
// 64 bytes of 2-bit high parts qh, 16 signed 8-bit scales, f16 d; value
// d * sc * (q - 32), one scale per 16 elements). Element l of 32-element sub-block j
// (h = j / 4 selects the 128-element half): low nibble of ql[64h + 32(j & 1) + l]
// (the high nibble when j & 2), high bits 2(j & 3) of qh[32h + l]. "Block b" of the
// kernel bodies is sub-block b % 8 of super-block b / 8. Super-blocks start at even
// byte offsets (210 bytes), so fields are read from halves of words, never whole words.
// Prepended to a kernel body that declares `W: array<u32>`.

fn w_u16(byte: u32) -> u32 {
    return (W[byte >> 2u] >> ((byte & 2u) * 8u)) & 0xffffu;
}

// 4 bytes at an even offset, from one or two words without branching.
fn w_u32(byte: u32) -> u32 {
    let i = byte >> 2u;
    let s = (byte & 2u) * 8u;
    return (W[i] >> s) | ((W[i + 1u] << 1u) << (31u - s));
}

// d * scale of the 16 elements g of the super-block at byte o (signed byte 192 + g).
fn k6_ds(o: u32, g: u32) -> f32 {
    let byte = o + 192u + g;
    let sc = bitcast<i32>(W[byte >> 2u] << (24u - (byte & 3u) * 8u)) >> 24u;
    return unpack2x16float(w_u16(o + 208u)).x * f32(sc);
}

// Codes minus 32 of elements 4i .. 4i+3 of sub-block j of the super-block at byte o.
fn k6_codes(o: u32, j: u32, i: u32) -> vec4<f32> {
    let h = j >> 2u;
    let ls = 4u * ((j >> 1u) & 1u);
    let hs = 2u * (j & 3u);
    let lo = (vec4<u32>(w_u32(o + 64u * h + 32u * (j & 1u) + 4u * i)) >> vec4<u32>(ls, ls + 8u, ls + 16u, ls + 24u)) & vec4<u32>(15u);
    let hi = (vec4<u32>(w_u32(o + 128u + 32u * h + 4u * i)) >> vec4<u32>(hs, hs + 8u, hs + 16u, hs + 24u)) & vec4<u32>(3u);
    return vec4<f32>(vec4<i32>(lo | (hi << vec4<u32>(4u))) - vec4<i32>(32));
}

// Elements 4i .. 4i+3 of block b.
fn w_quad(ro: u32, b: u32, i: u32) -> vec4<f32> {
    let o = ro + (b >> 3u) * 210u;
    let j = b & 7u;
    return k6_codes(o, j, i) * k6_ds(o, 2u * j + (i >> 2u));
}

fn w_elem(ro: u32, e: u32) -> f32 {
    let o = ro + (e >> 8u) * 210u;
    let j = (e >> 5u) & 7u;
    let l = e & 31u;
    let h = j >> 2u;
    let lb = o + 64u * h + 32u * (j & 1u) + l;
    let hb = o + 128u + 32u * h + l;
    let lo = (W[lb >> 2u] >> ((lb & 3u) * 8u + 4u * ((j >> 1u) & 1u))) & 15u;
    let hi = (W[hb >> 2u] >> ((hb & 3u) * 8u + 2u * (j & 3u))) & 3u;
    return f32(i32(lo | (hi << 4u)) - 32) * k6_ds(o, (e >> 4u) & 15u);
}
