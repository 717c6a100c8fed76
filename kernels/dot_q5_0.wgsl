// Part j (0..3) of the dot product of block b of a q5_0 row at byte ro with x[4 xo .. 4 xo + 32):
// the elements 4j..4j+3 and 16+4j..16+4j+3. Reads x through xv(i) (vec4 i of x), which the kernel
// body provides. Put after fmt_q5_0.wgsl, before matvec.wgsl.

fn w_dot(ro: u32, b: u32, j: u32, xo: u32) -> f32 {
    let o = ro + b * 22u;
    let qh = w_u32(o + 2u);
    let q = w_u32(o + 6u + 4u * j);
    let s = dot(q5x4(q, 0u, qh >> (4u * j)) - 16.0, xv(xo + j)) + dot(q5x4(q, 4u, qh >> (16u + 4u * j)) - 16.0, xv(xo + j + 4u));
    return w_half(o) * s;
}
