// Weight format bf16 (the high half of an f32). Prepended to a kernel body that declares
// `W: array<u32>`. w_quad needs rows of a multiple of 32 elements; w_elem takes any.

fn bf2(w: u32) -> vec2<f32> {
    return bitcast<vec2<f32>>(vec2<u32>(w << 16u, w & 0xffff0000u));
}

fn w_quad(ro: u32, b: u32, i: u32) -> vec4<f32> {
    let wi = (ro >> 2u) + b * 16u + i * 2u;
    return vec4<f32>(bf2(W[wi]), bf2(W[wi + 1u]));
}

fn w_elem(ro: u32, e: u32) -> f32 {
    let byte = ro + e * 2u;
    return bitcast<f32>(((W[byte >> 2u] >> ((byte & 2u) * 8u)) & 0xffffu) << 16u);
}
