// The v matrix of matvec_q8_qkv.wgsl in the format of q and k: its v8_ names for the q8_
// ones (lib_q8_x.wgsl). Where v has another format, the host puts that format's
// q8dot_<fmt>.wgsl in front a second time with q8_ / Q8 renamed v8_ / V8 instead of this.

alias V8X = Q8X;
alias V8W = Q8W;
const V8_WORDS: u32 = Q8_WORDS;

fn v8_x(tw: u32, ts: u32, u: u32) -> V8X {
    return q8_x(tw, ts, u);
}

fn v8_load(sel: u32, row: u32, u: u32, nu: u32) -> array<u32, V8_WORDS> {
    return q8_load(sel, row, u, nu);
}

fn v8_unpack(w: array<u32, V8_WORDS>, row: u32, u: u32, nu: u32) -> V8W {
    return q8_unpack(w, row, u, nu);
}

fn v8_dot(b: V8W, x: V8X) -> f32 {
    return q8_dot(b, x);
}
