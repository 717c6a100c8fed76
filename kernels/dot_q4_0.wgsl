// Part j (0..3) of the dot product of block b of a q4_0 row at byte ro with x[4 xo .. 4 xo + 32):
// the elements 4j..4j+3 and 16+4j..16+4j+3 (the nibbles of byte word j). Reads x through xv(i)
// (vec4 i of x), which the kernel body provides. Put after fmt_q4_0.wgsl, before matvec.wgsl.
// Four neighbouring threads take the four parts of a block, so their loads of x are contiguous.

fn w_dot(ro: u32, b: u32, j: u32, xo: u32) -> f32 {
    let o = ro + b * 18u;
    let q = w_u32(o + 2u + 4u * j);
    let s = dot(nib4(q, 0u) - 8.0, xv(xo + j)) + dot(nib4(q, 4u) - 8.0, xv(xo + j + 4u));
    return w_half(o) * s;
}
