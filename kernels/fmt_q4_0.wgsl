// Weight format q4_0 (18-byte blocks: f16 d, 16 bytes of nibbles; value (q - 8) * d).
// Prepended to a kernel body that declares `W: array<u32>` (the weight binding).
// Blocks start at even byte offsets, so a half never straddles two words.

fn w_u16(byte: u32) -> u32 {
    return (W[byte >> 2u] >> ((byte & 2u) * 8u)) & 0xffffu;
}

fn w_half(byte: u32) -> f32 {
    return unpack2x16float(w_u16(byte)).x;
}

// 4 bytes at an even offset, from one or two words without branching.
fn w_u32(byte: u32) -> u32 {
    let i = byte >> 2u;
    let s = (byte & 2u) * 8u;
    return (W[i] >> s) | ((W[i + 1u] << 1u) << (31u - s));
}

fn nib4(w: u32, sh: u32) -> vec4<f32> {
    return vec4<f32>((vec4<u32>(w) >> vec4<u32>(sh, sh + 8u, sh + 16u, sh + 24u)) & vec4<u32>(15u));
}

// Elements 4i .. 4i+3 of block b.
fn w_quad(ro: u32, b: u32, i: u32) -> vec4<f32> {
    let o = ro + b * 18u;
    let q = w_u32(o + 2u + 4u * (i & 3u));
    return (nib4(q, (i >> 2u) * 4u) - 8.0) * w_half(o);
}

fn w_elem(ro: u32, e: u32) -> f32 {
    let o = ro + (e >> 5u) * 18u;
    let j = e & 31u;
    let byte = o + 2u + (j & 15u);
    let q = (W[byte >> 2u] >> ((byte & 3u) * 8u + (j >> 4u) * 4u)) & 15u;
    return (f32(q) - 8.0) * w_half(o);
}
