// How the tiled matmul (matmul.wgsl) fetches a weight half-block ahead of its use, for
// formats without a split fetch: the elements are loaded and decoded at fetch time.
// (matmul_fetch_q4_0.wgsl defers the decoding so that the loads overlap the arithmetic.)

struct WRaw {
    q0: vec4<f32>,
    q1: vec4<f32>,
    q2: vec4<f32>,
    q3: vec4<f32>,
}

// Elements 16 h .. 16 h + 15 of block kb of weight row r (zeros past the matrix).
fn w_fetch(r: u32, kb: u32, h: u32) -> WRaw {
    return WRaw(load_w(r, kb, 4u * h), load_w(r, kb, 4u * h + 1u), load_w(r, kb, 4u * h + 2u),
                load_w(r, kb, 4u * h + 3u));
}

// Elements 16 h + 4 i .. 16 h + 4 i + 3 of what w_fetch returned.
fn w_unpack(raw: WRaw, h: u32, i: u32) -> vec4<f32> {
    switch i {
        case 0u: { return raw.q0; }
        case 1u: { return raw.q1; }
        case 2u: { return raw.q2; }
        default: { return raw.q3; }
    }
}
