// Weight format q5_1 (24-byte blocks: f16 d, f16 m, u32 qh, 16 bytes of nibbles; value q * d + m).
// Rows and blocks are multiples of 4 bytes: every field is word aligned.
// Prepended to a kernel body that declares `W: array<u32>`.

fn q5x4(w: u32, sh: u32, h: u32) -> vec4<f32> {
    let lo = (vec4<u32>(w) >> vec4<u32>(sh, sh + 8u, sh + 16u, sh + 24u)) & vec4<u32>(15u);
    let hi = ((vec4<u32>(h) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u)) << vec4<u32>(4u);
    return vec4<f32>(lo | hi);
}

fn w_quad(ro: u32, b: u32, i: u32) -> vec4<f32> {
    let wi = (ro >> 2u) + b * 6u;
    let dm = unpack2x16float(W[wi]);
    let q = W[wi + 2u + (i & 3u)];
    return q5x4(q, (i >> 2u) * 4u, W[wi + 1u] >> (4u * i)) * dm.x + dm.y;
}

fn w_elem(ro: u32, e: u32) -> f32 {
    let wi = (ro >> 2u) + (e >> 5u) * 6u;
    let dm = unpack2x16float(W[wi]);
    let j = e & 31u;
    let lo = (W[wi + 2u + ((j & 15u) >> 2u)] >> ((j & 3u) * 8u + (j >> 4u) * 4u)) & 15u;
    let hi = ((W[wi + 1u] >> j) & 1u) << 4u;
    return f32(lo | hi) * dm.x + dm.y;
}
