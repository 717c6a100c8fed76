// Q6_K weights for the int8 products (the interface: lib_q8_x.wgsl). A super-block of 256
// elements is 210 bytes: 128 bytes of low nibbles ql, 64 bytes of 2-bit high parts qh, 16
// int8 scales (one per 16 elements), f16 d; value d * sc * (q - 32). In half n (128
// elements) byte l < 32 of ql[64n + 32c ..] holds element 128n + 32c + l (low nibble) and
// 128n + 64 + 32c + l (high nibble); byte l of qh[32n ..] holds the high bits of element
// 128n + 32i + l at bits 2i. Unit u of a row (j = u % 8: n = j / 4, c = (j / 2) & 1,
// hh = j & 1) is 16 bytes of ql, ql[64n + 32c + 16hh ..], and the 16 qh bytes beside them:
// elements 128n + 32c + 16hh + (0..15) (sub-block 4n + c) and the same 64 later (sub-block
// 4n + 2 + c), so neighbouring units read neighbouring bytes. Super-blocks start at even
// bytes only: 4 words at an even byte are read from 5. k is a multiple of 256.

const Q8_WORDS: u32 = 13u;

struct Q8X {
    a: vec4<u32>, // the 16 elements of sub-block 4n + c
    b: vec4<u32>, // of sub-block 4n + 2 + c
    da: f32,
    db: f32,
    sa: i32,      // their sums
    sb: i32,
}

struct Q8W {
    qa: vec4<u32>, // codes q (0..63) of the first 16 elements, as bytes
    qb: vec4<u32>, // of the second 16
    sc: vec2<i32>, // their scales
    d: f32,
}

fn q8_x(tw: u32, ts: u32, u: u32) -> Q8X {
    let j = u & 7u;
    let ba = (u & ~7u) + 4u * (j >> 2u) + ((j >> 1u) & 1u);
    let hh = j & 1u;
    let a = xq[tw + 2u * ba + hh];
    let b = xq[tw + 2u * ba + 4u + hh];
    return Q8X(a, b, xs[ts + ba], xs[ts + ba + 2u], i8_sum16(a), i8_sum16(b));
}

// Byte offset of unit u's super-block.
fn q6_k_base(row: u32, u: u32, nu: u32) -> u32 {
    return ((row * nu + u) >> 3u) * 210u;
}

fn q8_load(sel: u32, row: u32, u: u32, nu: u32) -> array<u32, Q8_WORDS> {
    let o = q6_k_base(row, u, nu);
    let j = u & 7u;
    let n = j >> 2u;
    let c = (j >> 1u) & 1u;
    let hh = j & 1u;
    let l = (o + 64u * n + 32u * c + 16u * hh) >> 2u;
    let h = (o + 128u + 32u * n + 16u * hh) >> 2u;
    let s = (o + 192u + 8u * n + 2u * c + hh) >> 2u;
    return array<u32, Q8_WORDS>(wword(sel, l), wword(sel, l + 1u), wword(sel, l + 2u), wword(sel, l + 3u),
                                wword(sel, l + 4u), wword(sel, h), wword(sel, h + 1u), wword(sel, h + 2u),
                                wword(sel, h + 3u), wword(sel, h + 4u), wword(sel, s), wword(sel, s + 1u),
                                wword(sel, (o + 208u) >> 2u));
}

// 4 bytes from byte 2 (odd = true) or 0 of word a, on into b.
fn q6_k_word(a: u32, b: u32, odd: bool) -> u32 {
    return select(a, (a >> 16u) | (b << 16u), odd);
}

fn q6_k_sbyte(w: u32, byte: u32) -> i32 {
    return bitcast<i32>(w << (24u - 8u * byte)) >> 24u;
}

fn q8_unpack(w: array<u32, Q8_WORDS>, row: u32, u: u32, nu: u32) -> Q8W {
    let o = q6_k_base(row, u, nu);
    let odd = (o & 2u) != 0u; // every field's offset in the super-block is even: one shift for all
    let j = u & 7u;
    let c = (j >> 1u) & 1u;
    let ql = vec4<u32>(q6_k_word(w[0], w[1], odd), q6_k_word(w[1], w[2], odd), q6_k_word(w[2], w[3], odd),
                       q6_k_word(w[3], w[4], odd));
    let qh = vec4<u32>(q6_k_word(w[5], w[6], odd), q6_k_word(w[6], w[7], odd), q6_k_word(w[7], w[8], odd),
                       q6_k_word(w[8], w[9], odd));
    let lo4 = vec4<u32>(0x0f0f0f0fu);
    let lo2 = vec4<u32>(0x03030303u);
    let qa = (ql & lo4) | (((qh >> vec4<u32>(2u * c)) & lo2) << vec4<u32>(4u));
    let qb = ((ql >> vec4<u32>(4u)) & lo4) | (((qh >> vec4<u32>(4u + 2u * c)) & lo2) << vec4<u32>(4u));
    let sb = (o + 192u + 8u * (j >> 2u) + 2u * c + (j & 1u)) & 3u; // the scales' byte in words 10, 11
    let d2 = unpack2x16float(w[12]);
    return Q8W(qa, qb, vec2<i32>(q6_k_sbyte(w[10], sb), q6_k_sbyte(w[11], sb)), select(d2.x, d2.y, odd));
}

// sum((q - 32) x) = sum(q x) - 32 sum(x); |sc * that| <= 128 * 32 * 127 * 16: exact in f32
fn q8_dot(b: Q8W, x: Q8X) -> f32 {
    let qa = i8_dot16(b.qa, x.a) - 32 * x.sa;
    let qb = i8_dot16(b.qb, x.b) - 32 * x.sb;
    return b.d * (x.da * f32(b.sc.x * qa) + x.db * f32(b.sc.y * qb));
}

// The tiled kernels' blocks (lib_q8_x.wgsl): block b of a row is elements 32 j .. 32 j + 31
// (j = b % 8: half n = j / 4, c = j % 4) of super-block b / 8: the low (c < 2) or high
// nibbles of ql[64n + 32 (c & 1) ..], bits 2c of qh[32n ..], scales sc[8n + 2c] (elements
// 0..15) and sc[8n + 2c + 1], codes q - 32. Words: 9 of ql and 9 of qh (2-byte aligned), the
// scales' word and d's.
const Q8_BLOCK_WORDS: u32 = 20u;
const Q8_BLOCK_SPLIT = true;
const Q8_BLOCK_MIN = false;

fn q8_block_load(sel: u32, row: u32, b: u32, nb: u32) -> array<u32, Q8_BLOCK_WORDS> {
    let o = q6_k_base(row, b, nb);
    let j = b & 7u;
    let n = j >> 2u;
    let c = j & 3u;
    let l = (o + 64u * n + 32u * (c & 1u)) >> 2u;
    let h = (o + 128u + 32u * n) >> 2u;
    return array<u32, Q8_BLOCK_WORDS>(wword(sel, l), wword(sel, l + 1u), wword(sel, l + 2u), wword(sel, l + 3u),
                                      wword(sel, l + 4u), wword(sel, l + 5u), wword(sel, l + 6u), wword(sel, l + 7u),
                                      wword(sel, l + 8u), wword(sel, h), wword(sel, h + 1u), wword(sel, h + 2u),
                                      wword(sel, h + 3u), wword(sel, h + 4u), wword(sel, h + 5u), wword(sel, h + 6u),
                                      wword(sel, h + 7u), wword(sel, h + 8u),
                                      wword(sel, (o + 192u + 8u * n + 2u * c) >> 2u), wword(sel, (o + 208u) >> 2u));
}

fn q8_block(w: array<u32, Q8_BLOCK_WORDS>, row: u32, b: u32, nb: u32) -> I8Block {
    let o = q6_k_base(row, b, nb);
    let odd = (o & 2u) != 0u;
    let j = b & 7u;
    let c = j & 3u;
    let lsh = vec4<u32>(4u * (c >> 1u));
    let hsh = vec4<u32>(2u * c);
    let lo4 = vec4<u32>(0x0f0f0f0fu);
    let lo2 = vec4<u32>(0x03030303u);
    var q: array<vec4<u32>, 2>;
    for (var i = 0u; i < 2u; i++) {
        let a = 4u * i;
        let ql = vec4<u32>(q6_k_word(w[a], w[a + 1u], odd), q6_k_word(w[a + 1u], w[a + 2u], odd),
                           q6_k_word(w[a + 2u], w[a + 3u], odd), q6_k_word(w[a + 3u], w[a + 4u], odd));
        let qh = vec4<u32>(q6_k_word(w[9u + a], w[10u + a], odd), q6_k_word(w[10u + a], w[11u + a], odd),
                           q6_k_word(w[11u + a], w[12u + a], odd), q6_k_word(w[12u + a], w[13u + a], odd));
        q[i] = i8_unbias(((ql >> lsh) & lo4) | (((qh >> hsh) & lo2) << vec4<u32>(4u)), 32u);
    }
    let sb = (o + 192u + 8u * (j >> 2u) + 2u * c) & 3u; // the scales' first byte in word 18
    let d2 = unpack2x16float(w[19]);
    let d = select(d2.x, d2.y, odd);
    return I8Block(q[0], q[1], d * vec2<f32>(f32(q6_k_sbyte(w[18], sb)), f32(q6_k_sbyte(w[18], sb + 1u))), 0.0);
}
