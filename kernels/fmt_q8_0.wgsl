// Weight format q8_0 (34-byte blocks: f16 d, 32 signed bytes; value q * d).
// Prepended to a kernel body that declares `W: array<u32>`. Blocks start at even offsets.

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

// The 4 signed bytes of w, sign-extended.
fn i8x4(w: u32) -> vec4<f32> {
    return vec4<f32>((vec4<i32>(bitcast<i32>(w)) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
}

fn w_quad(ro: u32, b: u32, i: u32) -> vec4<f32> {
    let o = ro + b * 34u;
    return i8x4(w_u32(o + 2u + 4u * i)) * w_half(o);
}

fn w_elem(ro: u32, e: u32) -> f32 {
    let o = ro + (e >> 5u) * 34u;
    let byte = o + 2u + (e & 31u);
    let v = bitcast<i32>(W[byte >> 2u] << (24u - (byte & 3u) * 8u)) >> 24u;
    return f32(v) * w_half(o);
}
