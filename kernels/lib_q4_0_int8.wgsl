// Q4_0 weight blocks times int8 activation blocks: what the int8 kernels of Q4_0 share
// (q8dot_q4_0.wgsl). Put in front of a kernel by the host.
//
// A Q4_0 block is 18 bytes: f16 scale d, then 16 bytes of nibbles; element j is the low
// nibble of byte j, element j + 16 the high nibble, value (q - 8) * d. Blocks start at even
// bytes, so block g is read as the 5 words from word q4_0_word(g): an even block starts on
// that word (d in its low half, nibbles from byte 2 on), an odd one 2 bytes into it (d in
// its high half, nibbles = words 1..4). The binding may end mid-word (padded).
// An x block is 32 int8 values in two vec4<u32> (xa: elements 0..15, xc: 16..31, 4 per
// word, little-endian) with an f32 scale, as quantize_x_q8.wgsl makes it.

struct Q4Block {
    lo: vec4<u32>, // elements 0..15 as bytes 0..15 (the low nibbles)
    hi: vec4<u32>, // elements 16..31 (the high nibbles)
    d: f32,
}

// The word holding block g's first byte (18 g / 4).
fn q4_0_word(g: u32) -> u32 {
    return (g * 9u) >> 1u;
}

// Block g from its 5 words.
fn q4_0_unpack(w0: u32, w1: u32, w2: u32, w3: u32, w4: u32, g: u32) -> Q4Block {
    let odd = (g & 1u) == 1u;
    let d2 = unpack2x16float(w0);
    // Both alignments are computed and one is selected: neighbouring invocations differ.
    let q = vec4<u32>(select((w0 >> 16u) | (w1 << 16u), w1, odd), select((w1 >> 16u) | (w2 << 16u), w2, odd),
                      select((w2 >> 16u) | (w3 << 16u), w3, odd), select((w3 >> 16u) | (w4 << 16u), w4, odd));
    let lo = vec4<u32>(0x0f0f0f0fu);
    return Q4Block(q & lo, (q >> vec4<u32>(4u)) & lo, select(d2.x, d2.y, odd));
}

// sum(q x) over the block, q as bytes (the unsigned nibbles, or made signed).
fn q4_0_dot(b: Q4Block, xa: vec4<u32>, xc: vec4<u32>) -> i32 {
    return dot4I8Packed(b.lo.x, xa.x) + dot4I8Packed(b.lo.y, xa.y) + dot4I8Packed(b.lo.z, xa.z) +
           dot4I8Packed(b.lo.w, xa.w) + dot4I8Packed(b.hi.x, xc.x) + dot4I8Packed(b.hi.y, xc.y) +
           dot4I8Packed(b.hi.z, xc.z) + dot4I8Packed(b.hi.w, xc.w);
}
