// How the tiled matmul (matmul.wgsl) fetches a Q4_0 weight half-block ahead of its use:
// w_fetch only loads the block's five words (issued a step early, they arrive while the
// workgroup computes), w_unpack decodes them when they are stored to workgroup memory.
// Blocks are 18 bytes at even offsets: an even one starts on a word (scale in the low
// half of word 0, nibbles from byte 2), an odd one 2 bytes into a word (scale in the high
// half, nibbles = words 1..4). Element j is the low nibble of byte j, element j + 16 the
// high nibble; value (q - 8) * d.

struct WRaw {
    w: vec4<u32>,
    w4: u32,
    odd: u32,  // the block starts 2 bytes into w.x
    live: u32, // 0 past the matrix: decodes to zeros
}

fn w_fetch(r: u32, kb: u32, h: u32) -> WRaw {
    let live = r < P.m;
    let o = min(r, P.m - 1u) * P.row_bytes + kb * 18u;
    let i = o >> 2u;
    return WRaw(vec4<u32>(W[i], W[i + 1u], W[i + 2u], W[i + 3u]), W[i + 4u], (o >> 1u) & 1u, select(0u, 1u, live));
}

fn w_unpack(raw: WRaw, h: u32, i: u32) -> vec4<f32> {
    let odd = raw.odd != 0u;
    let d2 = unpack2x16float(raw.w.x);
    let d = select(0.0, select(d2.x, d2.y, odd), raw.live != 0u);
    var q: u32;
    switch i {
        case 0u: { q = select((raw.w.x >> 16u) | (raw.w.y << 16u), raw.w.y, odd); }
        case 1u: { q = select((raw.w.y >> 16u) | (raw.w.z << 16u), raw.w.z, odd); }
        case 2u: { q = select((raw.w.z >> 16u) | (raw.w.w << 16u), raw.w.w, odd); }
        default: { q = select((raw.w.w >> 16u) | (raw.w4 << 16u), raw.w4, odd); }
    }
    let sh = h * 4u;
    let v = (vec4<u32>(q) >> vec4<u32>(sh, sh + 8u, sh + 16u, sh + 24u)) & vec4<u32>(15u);
    return (vec4<f32>(v) - 8.0) * d;
}
