// The 6-bit scales and mins of Q4_K and Q5_K super-blocks (12 bytes, words 1..3 of the
// super-block), for their int8 block dots (q8dot_q4_k.wgsl, q8dot_q5_k.wgsl). Put in front
// by the host.

// Sub-block j's 6-bit scale and min from the three scale words s0..s2 (bytes 0..11 of the
// scale array): j < 4: low 6 bits of bytes j and j + 4; j >= 4: nibbles of byte j + 4
// with the top 2 bits of bytes j - 4 and j on top.
fn k_scale_min(s0: u32, s1: u32, s2: u32, j: u32) -> vec2<i32> {
    let sh = 8u * (j & 3u);
    let lo = vec2<u32>(s0, s1) >> vec2<u32>(sh);
    let hi = ((vec2<u32>(s2) >> vec2<u32>(sh, sh + 4u)) & vec2<u32>(15u)) | (((lo >> vec2<u32>(6u)) & vec2<u32>(3u)) << vec2<u32>(4u));
    return vec2<i32>(select(hi, lo & vec2<u32>(63u), j < 4u));
}
