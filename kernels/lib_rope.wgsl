// Rotary embedding arithmetic shared by the kernels that rotate q and k (rope.wgsl, the
// fused decode kernels, attention of a batched step). Put in front of a kernel by the host.

// cos and sin of any angle: reduced to [-pi, pi] first, where the built-ins are accurate.
// 2*pi = C1 + C2 + C3 with C1 short enough that k * C1 is exact.
fn cos_sin(a: f32) -> vec2<f32> {
    let k = round(a * 0.15915494309189535);
    let r = ((a - k * 6.28125) - k * 1.9353071693331003e-3) - k * 1.0253131677018246e-11;
    return vec2<f32>(cos(r), sin(r));
}

// One element of a rotated pair (a, b) = (x[2j], x[2j + 1]): the first (odd = false) or the
// second, in the operation order of rope.wgsl so every kernel rotates bit for bit alike.
fn rope_elem(a: f32, b: f32, odd: bool, cs: vec2<f32>) -> f32 {
    if (odd) {
        return a * cs.y + b * cs.x;
    }
    return a * cs.x - b * cs.y;
}
