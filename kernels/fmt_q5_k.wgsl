// Weight format q5_k (176-byte super-blocks of 256 elements: f16 d, f16 dmin, 12 bytes of
// 6-bit scales and mins, 32 bytes of fifth bits, 128 bytes of nibbles; value
// d * sc * q - dmin * m, one (sc, m) pair per 32 elements). The fifth bit of element l of
// sub-block j is bit j of byte l of the high bits. "Block b" of the kernel bodies is
// 32-element sub-block b % 8 of super-block b / 8. Super-blocks and rows are multiples of
// 4 bytes: every field is word aligned. Prepended to a kernel body that declares
// `W: array<u32>`.

// Sub-block j's 6-bit scale and min from the three scale words s0..s2 (as in q4_k).
fn k4_scale_min(s0: u32, s1: u32, s2: u32, j: u32) -> vec2<u32> {
    let sh = 8u * (j & 3u);
    let lo = vec2<u32>(s0, s1) >> vec2<u32>(sh);
    let hi = ((vec2<u32>(s2) >> vec2<u32>(sh, sh + 4u)) & vec2<u32>(15u)) | (((lo >> vec2<u32>(6u)) & vec2<u32>(3u)) << vec2<u32>(4u));
    return select(hi, lo & vec2<u32>(63u), j < 4u);
}

// (d * sc, dmin * m) of sub-block j of the super-block at word wi.
fn k4_dm(wi: u32, j: u32) -> vec2<f32> {
    let dm = unpack2x16float(W[wi]);
    return dm * vec2<f32>(k4_scale_min(W[wi + 1u], W[wi + 2u], W[wi + 3u], j));
}

// Codes of elements 4i .. 4i+3 of sub-block j of the super-block at word wi.
fn k5_codes(wi: u32, j: u32, i: u32) -> vec4<f32> {
    let sh = 4u * (j & 1u);
    let lo = (vec4<u32>(W[wi + 12u + 8u * (j >> 1u) + i]) >> vec4<u32>(sh, sh + 8u, sh + 16u, sh + 24u)) & vec4<u32>(15u);
    let hi = ((vec4<u32>(W[wi + 4u + i]) >> vec4<u32>(j, j + 8u, j + 16u, j + 24u)) & vec4<u32>(1u)) << vec4<u32>(4u);
    return vec4<f32>(lo | hi);
}

// Elements 4i .. 4i+3 of block b.
fn w_quad(ro: u32, b: u32, i: u32) -> vec4<f32> {
    let wi = (ro >> 2u) + (b >> 3u) * 44u;
    let j = b & 7u;
    let dm = k4_dm(wi, j);
    return k5_codes(wi, j, i) * dm.x - dm.y;
}

fn w_elem(ro: u32, e: u32) -> f32 {
    let wi = (ro >> 2u) + (e >> 8u) * 44u;
    let j = (e >> 5u) & 7u;
    let l = e & 31u;
    let dm = k4_dm(wi, j);
    let bs = (l & 3u) * 8u;
    let lo = (W[wi + 12u + 8u * (j >> 1u) + (l >> 2u)] >> (bs + 4u * (j & 1u))) & 15u;
    let hi = (W[wi + 4u + (l >> 2u)] >> (bs + j)) & 1u;
    return f32(lo | (hi << 4u)) * dm.x - dm.y;
}
