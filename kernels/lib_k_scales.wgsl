// What the int8 block dots of Q4_K and Q5_K (q8dot_q4_k.wgsl, q8dot_q5_k.wgsl) share: the
// 6-bit scales and mins of their super-blocks (12 bytes, words 1..3), and their units (the
// 16 elements u of two sub-blocks) on the activation and the weight side. Put in front by
// the host.

// Sub-block j's 6-bit scale and min from the three scale words s0..s2 (bytes 0..11 of the
// scale array): j < 4: low 6 bits of bytes j and j + 4; j >= 4: nibbles of byte j + 4
// with the top 2 bits of bytes j - 4 and j on top.
fn k_scale_min(s0: u32, s1: u32, s2: u32, j: u32) -> vec2<i32> {
    let sh = 8u * (j & 3u);
    let lo = vec2<u32>(s0, s1) >> vec2<u32>(sh);
    let hi = ((vec2<u32>(s2) >> vec2<u32>(sh, sh + 4u)) & vec2<u32>(15u)) | (((lo >> vec2<u32>(6u)) & vec2<u32>(3u)) << vec2<u32>(4u));
    return vec2<i32>(select(hi, lo & vec2<u32>(63u), j < 4u));
}

struct Q8X {
    a: vec4<u32>, // 16 elements of sub-block 2p
    b: vec4<u32>, // the same 16 of sub-block 2p + 1
    da: f32,
    db: f32,
    sa: i32,      // their sums
    sb: i32,
}

struct Q8W {
    qa: vec4<u32>,  // codes (Q4_K: 0..15, Q5_K: 0..31) of the 16 elements of sub-block 2p, as bytes
    qb: vec4<u32>,  // of sub-block 2p + 1
    dm: vec2<f32>,  // d, dmin
    sc: vec2<i32>,  // the two sub-blocks' scales
    mn: vec2<i32>,  // and mins
}

fn q8_x(tw: u32, ts: u32, u: u32) -> Q8X {
    let ba = u & ~1u; // block 2p of super-block u / 8: 8 sb + 2p
    let h = u & 1u;
    let a = xq[tw + 2u * ba + h];
    let b = xq[tw + 2u * ba + 2u + h];
    return Q8X(a, b, xs[ts + ba], xs[ts + ba + 1u], i8_sum16(a), i8_sum16(b));
}
