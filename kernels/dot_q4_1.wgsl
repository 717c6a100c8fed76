// Part j (0..3) of the dot product of block b of a q4_1 row at byte ro with x[4 xo .. 4 xo + 32):
// the elements 4j..4j+3 and 16+4j..16+4j+3. Reads x through xv(i) (vec4 i of x), which the kernel
// body provides. Put after fmt_q4_1.wgsl, before matvec.wgsl.

fn w_dot(ro: u32, b: u32, j: u32, xo: u32) -> f32 {
    let wi = (ro >> 2u) + b * 5u;
    let dm = w_dm(wi);
    let q = W[wi + 1u + j];
    let x0 = xv(xo + j);
    let x1 = xv(xo + j + 4u);
    let sx = x0 + x1;
    return dm.x * (dot(nib4(q, 0u), x0) + dot(nib4(q, 4u), x1)) + dm.y * (sx.x + sx.y + sx.z + sx.w);
}
