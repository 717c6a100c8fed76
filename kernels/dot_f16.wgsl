// Part j (0..3) of the dot product of block b of a f16 row at byte ro with x[4 xo .. 4 xo + 32):
// the elements 8j..8j+7. Reads x through xv(i) (vec4 i of x), which the kernel body provides.
// Put after fmt_f16.wgsl, before matvec.wgsl.

fn w_dot(ro: u32, b: u32, j: u32, xo: u32) -> f32 {
    return dot(w_quad(ro, b, 2u * j), xv(xo + 2u * j)) + dot(w_quad(ro, b, 2u * j + 1u), xv(xo + 2u * j + 1u));
}
