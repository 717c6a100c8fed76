// Weight format f32. Prepended to a kernel body that declares `W: array<u32>`.
// w_quad needs rows of a multiple of 32 elements; w_elem takes any.

fn w_quad(ro: u32, b: u32, i: u32) -> vec4<f32> {
    let wi = (ro >> 2u) + b * 32u + i * 4u;
    return bitcast<vec4<f32>>(vec4<u32>(W[wi], W[wi + 1u], W[wi + 2u], W[wi + 3u]));
}

fn w_elem(ro: u32, e: u32) -> f32 {
    return bitcast<f32>(W[(ro >> 2u) + e]);
}
