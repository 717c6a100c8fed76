// Q8_0 weights for the int8 products (the interface: lib_q8_x.wgsl). A block is 34 bytes:
// f16 scale d, then 32 int8 values; value q * d. A unit is block g = row * nu + u, which
// starts at byte 34 g: on word 17 g / 2 (even g: d in its low half, values from byte 2 on) or
// 2 bytes into it (odd g: d in its high half, values = the next 8 words). 9 words hold it
// (the binding may end mid-word: padded).

const Q8_WORDS: u32 = 9u;

struct Q8X {
    a: vec4<u32>,
    c: vec4<u32>,
    d: f32,
}

struct Q8W {
    lo: vec4<u32>, // elements 0..15 as int8
    hi: vec4<u32>, // elements 16..31
    d: f32,
}

fn q8_x(tw: u32, ts: u32, u: u32) -> Q8X {
    return Q8X(xq[tw + 2u * u], xq[tw + 2u * u + 1u], xs[ts + u]);
}

fn q8_load(sel: u32, row: u32, u: u32, nu: u32) -> array<u32, Q8_WORDS> {
    let o = ((row * nu + u) * 17u) >> 1u;
    return array<u32, Q8_WORDS>(wword(sel, o), wword(sel, o + 1u), wword(sel, o + 2u), wword(sel, o + 3u),
                                wword(sel, o + 4u), wword(sel, o + 5u), wword(sel, o + 6u), wword(sel, o + 7u),
                                wword(sel, o + 8u));
}

// Words i + 1 (odd blocks) or the halves of words i and i + 1 (even).
fn q8_0_word(a: u32, b: u32, odd: bool) -> u32 {
    return select((a >> 16u) | (b << 16u), b, odd);
}

fn q8_unpack(w: array<u32, Q8_WORDS>, row: u32, u: u32, nu: u32) -> Q8W {
    let odd = ((row * nu + u) & 1u) == 1u;
    let d2 = unpack2x16float(w[0]);
    let lo = vec4<u32>(q8_0_word(w[0], w[1], odd), q8_0_word(w[1], w[2], odd), q8_0_word(w[2], w[3], odd),
                       q8_0_word(w[3], w[4], odd));
    let hi = vec4<u32>(q8_0_word(w[4], w[5], odd), q8_0_word(w[5], w[6], odd), q8_0_word(w[6], w[7], odd),
                       q8_0_word(w[7], w[8], odd));
    return Q8W(lo, hi, select(d2.x, d2.y, odd));
}

fn q8_dot(b: Q8W, x: Q8X) -> f32 {
    return f32(i8_dot16(b.lo, x.a) + i8_dot16(b.hi, x.c)) * (b.d * x.d);
}

// The tiled kernels' blocks (lib_q8_x.wgsl): the same blocks.
const Q8_BLOCK_WORDS: u32 = Q8_WORDS;
const Q8_BLOCK_SPLIT = false;
const Q8_BLOCK_MIN = false;

fn q8_block_load(sel: u32, row: u32, b: u32, nb: u32) -> array<u32, Q8_BLOCK_WORDS> {
    return q8_load(sel, row, b, nb);
}

fn q8_block(w: array<u32, Q8_BLOCK_WORDS>, row: u32, b: u32, nb: u32) -> I8Block {
    let q = q8_unpack(w, row, b, nb);
    return I8Block(q.lo, q.hi, vec2<f32>(q.d), 0.0);
}
