// Q4_0 weights for the int8 products (the interface: lib_q8_x.wgsl; the block layout:
// lib_q4_0_int8.wgsl, put in front). A unit is block row * nu + u.

const Q8_WORDS: u32 = 5u;

struct Q8X {
    a: vec4<u32>, // elements 0..15
    c: vec4<u32>, // elements 16..31
    d: f32,
    s8: i32,      // 8 * the block's sum
}

alias Q8W = Q4Block;

// X_TOKENS (put in front by the host): how many tokens' x a decoded unit meets. For one,
// the nibbles stay unsigned and x's sum corrects for the bias (8 dot products a token); for
// several, the nibbles are made signed once a unit (a few bit operations) and x needs no sum.
const SIGNED_NIBBLES = X_TOKENS > 1u;

fn q8_x(tw: u32, ts: u32, u: u32) -> Q8X {
    let a = xq[tw + 2u * u];
    let c = xq[tw + 2u * u + 1u];
    var s8 = 0;
    if (!SIGNED_NIBBLES) {
        s8 = 8 * (i8_sum16(a) + i8_sum16(c));
    }
    return Q8X(a, c, xs[ts + u], s8);
}

fn q8_load(sel: u32, row: u32, u: u32, nu: u32) -> array<u32, Q8_WORDS> {
    let o = q4_0_word(row * nu + u);
    return array<u32, Q8_WORDS>(wword(sel, o), wword(sel, o + 1u), wword(sel, o + 2u), wword(sel, o + 3u),
                                wword(sel, o + 4u));
}

fn q8_unpack(w: array<u32, Q8_WORDS>, row: u32, u: u32, nu: u32) -> Q8W {
    let b = q4_0_unpack(w[0], w[1], w[2], w[3], w[4], row * nu + u);
    if (SIGNED_NIBBLES) {
        return Q4Block(i8_unbias(b.lo, 8u), i8_unbias(b.hi, 8u), b.d);
    }
    return b;
}

// sum((q - 8) x): as signed bytes, or sum(q x) - 8 sum(x) with the unsigned nibbles
fn q8_dot(b: Q8W, x: Q8X) -> f32 {
    return f32(q4_0_dot(b, x.a, x.c) - x.s8) * (b.d * x.d);
}

// The tiled kernels' blocks (lib_q8_x.wgsl): the same blocks, the nibbles made signed.
const Q8_BLOCK_WORDS: u32 = Q8_WORDS;
const Q8_BLOCK_SPLIT = false;
const Q8_BLOCK_MIN = false;

fn q8_block_load(sel: u32, row: u32, b: u32, nb: u32) -> array<u32, Q8_BLOCK_WORDS> {
    return q8_load(sel, row, b, nb);
}

fn q8_block(w: array<u32, Q8_BLOCK_WORDS>, row: u32, b: u32, nb: u32) -> I8Block {
    let q = q4_0_unpack(w[0], w[1], w[2], w[3], w[4], row * nb + b);
    return I8Block(i8_unbias(q.lo, 8u), i8_unbias(q.hi, 8u), vec2<f32>(q.d), 0.0);
}
