// Part p (0..3) of the dot product of block b (32 elements) of a q6_k row at byte ro with
// x[4 xo .. 4 xo + 32): the elements 8p .. 8p+7, which share one scale (16 elements each).
// Reads x through xv(i) (vec4 i of x), which the kernel body provides. Put after
// fmt_q6_k.wgsl, before matvec.wgsl.

fn w_dot(ro: u32, b: u32, p: u32, xo: u32) -> f32 {
    let o = ro + (b >> 3u) * 210u;
    let j = b & 7u;
    let s = dot(k6_codes(o, j, 2u * p), xv(xo + 2u * p)) + dot(k6_codes(o, j, 2u * p + 1u), xv(xo + 2u * p + 1u));
    return k6_ds(o, 2u * j + (p >> 1u)) * s;
}
