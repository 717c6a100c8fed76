// Part j (0..3) of the dot product of block b of a q8_0 row at byte ro with x[4 xo .. 4 xo + 32):
// the elements 8j..8j+7. Reads x through xv(i) (vec4 i of x), which the kernel body provides.
// Put after fmt_q8_0.wgsl, before matvec.wgsl.

fn w_dot(ro: u32, b: u32, j: u32, xo: u32) -> f32 {
    let o = ro + b * 34u;
    let s = dot(i8x4(w_u32(o + 2u + 8u * j)), xv(xo + 2u * j)) + dot(i8x4(w_u32(o + 6u + 8u * j)), xv(xo + 2u * j + 1u));
    return w_half(o) * s;
}
