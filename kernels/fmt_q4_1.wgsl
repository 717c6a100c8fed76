// Weight format q4_1 (20-byte blocks: f16 d, f16 m, 16 bytes of nibbles; value q * d + m).
// Prepended to a kernel body that declares `W: array<u32>`. Rows and blocks are
// multiples of 4 bytes, so every field is word aligned.

fn nib4(w: u32, sh: u32) -> vec4<f32> {
    return vec4<f32>((vec4<u32>(w) >> vec4<u32>(sh, sh + 8u, sh + 16u, sh + 24u)) & vec4<u32>(15u));
}

fn w_dm(wi: u32) -> vec2<f32> {
    return unpack2x16float(W[wi]);
}

fn w_quad(ro: u32, b: u32, i: u32) -> vec4<f32> {
    let wi = (ro >> 2u) + b * 5u;
    let dm = w_dm(wi);
    let q = W[wi + 1u + (i & 3u)];
    return nib4(q, (i >> 2u) * 4u) * dm.x + dm.y;
}

fn w_elem(ro: u32, e: u32) -> f32 {
    let wi = (ro >> 2u) + (e >> 5u) * 5u;
    let dm = w_dm(wi);
    let j = e & 31u;
    let q = (W[wi + 1u + ((j & 15u) >> 2u)] >> ((j & 3u) * 8u + (j >> 4u) * 4u)) & 15u;
    return f32(q) * dm.x + dm.y;
}
