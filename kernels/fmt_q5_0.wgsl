// Weight format q5_0 (22-byte blocks: f16 d, u32 qh, 16 bytes of nibbles; value (q - 16) * d).
// Element j < 16: low nibble of byte j, 5th bit = bit j of qh; element j + 16: high nibble,
// bit j + 16. Prepended to a kernel body that declares `W: array<u32>`.

fn w_u16(byte: u32) -> u32 {
    return (W[byte >> 2u] >> ((byte & 2u) * 8u)) & 0xffffu;
}

fn w_half(byte: u32) -> f32 {
    return unpack2x16float(w_u16(byte)).x;
}

fn w_u32(byte: u32) -> u32 {
    let i = byte >> 2u;
    let s = (byte & 2u) * 8u;
    return (W[i] >> s) | ((W[i + 1u] << 1u) << (31u - s));
}

// Codes of 4 elements: nibbles at shift sh of word w, 5th bits from h (4 bits).
fn q5x4(w: u32, sh: u32, h: u32) -> vec4<f32> {
    let lo = (vec4<u32>(w) >> vec4<u32>(sh, sh + 8u, sh + 16u, sh + 24u)) & vec4<u32>(15u);
    let hi = ((vec4<u32>(h) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u)) << vec4<u32>(4u);
    return vec4<f32>(lo | hi);
}

fn w_quad(ro: u32, b: u32, i: u32) -> vec4<f32> {
    let o = ro + b * 22u;
    let qh = w_u32(o + 2u);
    let q = w_u32(o + 6u + 4u * (i & 3u));
    return (q5x4(q, (i >> 2u) * 4u, qh >> (4u * i)) - 16.0) * w_half(o);
}

fn w_elem(ro: u32, e: u32) -> f32 {
    let o = ro + (e >> 5u) * 22u;
    let j = e & 31u;
    let byte = o + 6u + (j & 15u);
    let lo = (W[byte >> 2u] >> ((byte & 3u) * 8u + (j >> 4u) * 4u)) & 15u;
    let hi = ((w_u32(o + 2u) >> j) & 1u) << 4u;
    return (f32(lo | hi) - 16.0) * w_half(o);
}
