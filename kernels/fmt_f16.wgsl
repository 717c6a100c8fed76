// Weight format f16 (IEEE half). Prepended to a kernel body that declares `W: array<u32>`.
// w_quad needs rows of a multiple of 32 elements (word-aligned rows); w_elem takes any.

fn w_quad(ro: u32, b: u32, i: u32) -> vec4<f32> {
    let wi = (ro >> 2u) + b * 16u + i * 2u;
    return vec4<f32>(unpack2x16float(W[wi]), unpack2x16float(W[wi + 1u]));
}

fn w_elem(ro: u32, e: u32) -> f32 {
    let byte = ro + e * 2u;
    return unpack2x16float((W[byte >> 2u] >> ((byte & 2u) * 8u)) & 0xffffu).x;
}
