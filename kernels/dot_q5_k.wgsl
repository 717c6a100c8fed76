// Part p (0..3) of the dot product of block b (32 elements) of a q5_k row at byte ro with
// x[4 xo .. 4 xo + 32): the elements 8p .. 8p+7, as d*sc * sum(q x) - dmin*m * sum(x).
// Reads x through xv(i) (vec4 i of x), which the kernel body provides. Put after
// fmt_q5_k.wgsl, before matvec.wgsl.

fn w_dot(ro: u32, b: u32, p: u32, xo: u32) -> f32 {
    let wi = (ro >> 2u) + (b >> 3u) * 44u;
    let j = b & 7u;
    let dm = k4_dm(wi, j);
    let x0 = xv(xo + 2u * p);
    let x1 = xv(xo + 2u * p + 1u);
    let sx = x0 + x1;
    let qx = dot(k5_codes(wi, j, 2u * p), x0) + dot(k5_codes(wi, j, 2u * p + 1u), x1);
    return dm.x * qx - dm.y * (sx.x + sx.y + sx.z + sx.w);
}
