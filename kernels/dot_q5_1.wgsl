// Part j (0..3) of the dot product of block b of a q5_1 row at byte ro with x[4 xo .. 4 xo + 32):
// the elements 4j..4j+3 and 16+4j..16+4j+3. Reads x through xv(i) (vec4 i of x), which the kernel
// body provides. Put after fmt_q5_1.wgsl, before matvec.wgsl.

fn w_dot(ro: u32, b: u32, j: u32, xo: u32) -> f32 {
    let wi = (ro >> 2u) + b * 6u;
    let dm = unpack2x16float(W[wi]);
    let qh = W[wi + 1u];
    let q = W[wi + 2u + j];
    let x0 = xv(xo + j);
    let x1 = xv(xo + j + 4u);
    let sx = x0 + x1;
    return dm.x * (dot(q5x4(q, 0u, qh >> (4u * j)), x0) + dot(q5x4(q, 4u, qh >> (16u + 4u * j)), x1)) +
           dm.y * (sx.x + sx.y + sx.z + sx.w);
}
