// Weight format f32. Prepended to a kernel body that declares `W: array<u32>`.
// w_dot / w_quad need rows of a multiple of 32 elements; w_elem takes any.

fn w_quad(ro: u32, b: u32, i: u32) -> vec4<f32> {
    let wi = (ro >> 2u) + b * 32u + i * 4u;
    return bitcast<vec4<f32>>(vec4<u32>(W[wi], W[wi + 1u], W[wi + 2u], W[wi + 3u]));
}

fn w_dot(ro: u32, b: u32, x: array<vec4<f32>, 8>) -> f32 {
    var s = 0.0;
    for (var i = 0u; i < 8u; i++) {
        s += dot(w_quad(ro, b, i), x[i]);
    }
    return s;
}

fn w_elem(ro: u32, e: u32) -> f32 {
    return bitcast<f32>(W[(ro >> 2u) + e]);
}
