// The int8 activations of the int8 products, and what a weight format gives them.
// Put in front of a kernel by the host, before the weight format's q8dot_<fmt>.wgsl.
//
// x: quantize_x_q8.wgsl's blocks of 32 int8 values with one f32 scale each; the kernel
// binds them as xq: array<vec4<u32>> (a block is two vec4s: elements 0..15, 16..31, 4 per
// word, little-endian) and xs: array<f32>. A token's blocks start at vec4 tw = tok * k / 16
// and scale ts = tok * k / 32.
//
// A weight row is cut into k / 32 "units" of 32 elements (nu a row); which 32 elements a
// unit holds is the format's choice (so neighbouring invocations read neighbouring bytes),
// the unit's x is loaded to match. q8dot_<fmt>.wgsl provides:
//   const Q8_WORDS: u32                                     words of one unit's weight data
//   struct Q8X, struct Q8W                                  a unit's x; a unit of a row, decoded
//   fn q8_x(tw: u32, ts: u32, u: u32) -> Q8X                x of unit u of the token at tw, ts
//   fn q8_load(sel: u32, row: u32, u: u32, nu: u32) -> array<u32, Q8_WORDS>
//   fn q8_unpack(w: array<u32, Q8_WORDS>, row: u32, u: u32, nu: u32) -> Q8W
//   fn q8_dot(w: Q8W, x: Q8X) -> f32                        the unit's part of the row's dot product
// and reads weights through the kernel's fn wword(sel: u32, o: u32) -> u32 (word o of the
// kernel's weight matrix sel; sel is the same for a whole workgroup). Loading and decoding
// are apart so that a kernel can load the next unit before it works on this one and decode a
// unit once for several tokens. The integer sums are exact; scales multiply in f32.
// The helpers below are named i8_, not q8_: matvec_q8_qkv.wgsl may take a second format's
// file with its q8_ names renamed v8_ (lib_q8_v_same.wgsl), which must still find them.

// The sum of 16 int8 values (4 words).
fn i8_sum16(v: vec4<u32>) -> i32 {
    let ones = 0x01010101u;
    return dot4I8Packed(v.x, ones) + dot4I8Packed(v.y, ones) + dot4I8Packed(v.z, ones) + dot4I8Packed(v.w, ones);
}

// sum over the 16 byte pairs of w and x, each as 4 packed int8.
fn i8_dot16(w: vec4<u32>, x: vec4<u32>) -> i32 {
    return dot4I8Packed(w.x, x.x) + dot4I8Packed(w.y, x.y) + dot4I8Packed(w.z, x.z) + dot4I8Packed(w.w, x.w);
}

// The tiled kernels (lib_q8_batch.wgsl) take a row as k / 32 blocks of 32
// elements in order, each matching one x block, decoded once per workgroup into signed
// bytes: element j is d[j / 16] * byte j - m. q8dot_<fmt>.wgsl provides for them:
//   const Q8_BLOCK_WORDS: u32                               words of one block's weight data
//   const Q8_BLOCK_SPLIT: bool                              d.x != d.y can happen (16-element scales)
//   const Q8_BLOCK_MIN: bool                                m != 0 can happen (the K-quant mins)
//   fn q8_block_load(sel: u32, row: u32, b: u32, nb: u32) -> array<u32, Q8_BLOCK_WORDS>
//   fn q8_block(w: array<u32, Q8_BLOCK_WORDS>, row: u32, b: u32, nb: u32) -> I8Block
struct I8Block {
    lo: vec4<u32>, // elements 0..15 as int8
    hi: vec4<u32>, // elements 16..31
    d: vec2<f32>,  // scale of elements 0..15, of 16..31
    m: f32,        // subtracted from every element
}

// Unsigned bytes q (< 128) -> the signed bytes q - bias, bias a power of two: flipping the
// bias bit gives q - bias for q >= bias and q + bias below it, where setting the bits above
// the bias subtracts the missing 2 bias.
fn i8_unbias(q: vec4<u32>, bias: u32) -> vec4<u32> {
    let ones = vec4<u32>(0x01010101u);
    let below = (~q >> vec4<u32>(countTrailingZeros(bias))) & ones; // 1 where q < bias
    return (q ^ (ones * bias)) | (below * ((0x100u - 2u * bias) & 0xffu));
}
