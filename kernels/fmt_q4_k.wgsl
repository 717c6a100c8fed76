// Weight format q4_k (144-byte super-blocks of 256 elements: f16 d, f16 dmin, 12 bytes of
// 6-bit scales and mins, 128 bytes of nibbles; value d * sc * q - dmin * m, with one
// (sc, m) pair per 32 elements). "Block b" of the kernel bodies is 32-element sub-block
// b % 8 of super-block b / 8. Super-blocks and rows are multiples of 4 bytes: every field
// is word aligned. Prepended to a kernel body that declares `W: array<u32>`.

// Sub-block j's 6-bit scale and min from the three scale words s0..s2 (bytes 0..11):
// j < 4: low 6 bits of bytes j and j + 4; j >= 4: nibbles of byte j + 4, with the top
// 2 bits of bytes j - 4 and j on top.
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

fn nib4(w: u32, sh: u32) -> vec4<f32> {
    return vec4<f32>((vec4<u32>(w) >> vec4<u32>(sh, sh + 8u, sh + 16u, sh + 24u)) & vec4<u32>(15u));
}

// Word of the nibbles of elements 4i .. 4i+3 of sub-block j (low nibbles for even j).
fn k4_qword(wi: u32, j: u32, i: u32) -> u32 {
    return W[wi + 4u + 8u * (j >> 1u) + i];
}

// Elements 4i .. 4i+3 of block b.
fn w_quad(ro: u32, b: u32, i: u32) -> vec4<f32> {
    let wi = (ro >> 2u) + (b >> 3u) * 36u;
    let j = b & 7u;
    let dm = k4_dm(wi, j);
    return nib4(k4_qword(wi, j, i), 4u * (j & 1u)) * dm.x - dm.y;
}

fn w_elem(ro: u32, e: u32) -> f32 {
    let wi = (ro >> 2u) + (e >> 8u) * 36u;
    let j = (e >> 5u) & 7u;
    let l = e & 31u;
    let dm = k4_dm(wi, j);
    let q = (k4_qword(wi, j, l >> 2u) >> ((l & 3u) * 8u + 4u * (j & 1u))) & 15u;
    return f32(q) * dm.x - dm.y;
}
