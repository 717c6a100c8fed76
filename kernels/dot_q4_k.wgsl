// Part p (0..3) of the dot product of block b (32 elements) of a q4_k row at byte ro with
// x[4 xo .. 4 xo + 32): the elements 8p .. 8p+7, as d*sc * sum(q x) - dmin*m * sum(x).
// Reads x through xv(i) (vec4 i of x), which the kernel body provides. Put after
// fmt_q4_k.wgsl, before matvec.wgsl.

fn w_dot(ro: u32, b: u32, p: u32, xo: u32) -> f32 {
    let wi = (ro >> 2u) + (b >> 3u) * 36u;
    let j = b & 7u;
    let dm = k4_dm(wi, j);
    let sh = 4u * (j & 1u);
    let x0 = xv(xo + 2u * p);
    let x1 = xv(xo + 2u * p + 1u);
    let sx = x0 + x1;
    let qx = dot(nib4(k4_qword(wi, j, 2u * p), sh), x0) + dot(nib4(k4_qword(wi, j, 2u * p + 1u), sh), x1);
    return dm.x * qx - dm.y * (sx.x + sx.y + sx.z + sx.w);
}
