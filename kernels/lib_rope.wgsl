// Rotary embedding arithmetic shared by the kernels that rotate q and k (rope.wgsl, the
// fused decode kernels, attention of a batched step). Put in front of a kernel by the host.

// cos and sin of any angle: reduced to [-pi, pi] first, where the built-ins are accurate.
// 2*pi = C1 + C2 + C3 with C1 short enough that k * C1 is exact.
fn cos_sin(a: f32) -> vec2<f32> {
    let k = round(a * 0.15915494309189535);
    let r = ((a - k * 6.28125) - k * 1.9353071693331003e-3) - k * 1.0253131677018246e-11;
    return vec2<f32>(cos(r), sin(r));
}

// One element of a rotated pair (a, b) = (x[2j], x[2j + 1]) (with neox (x[j], x[j + dims / 2])):
// the first (odd = false) or the second, in the operation order of rope.wgsl so every kernel
// rotates bit for bit alike.
fn rope_elem(a: f32, b: f32, odd: bool, cs: vec2<f32>) -> f32 {
    if (odd) {
        return a * cs.y + b * cs.x;
    }
    return a * cs.x - b * cs.y;
}

// Where dimension d of a head sits in the rotation of half_dims pairs: (pair j, the partner
// dimension, 1 for the pair's second element else 0); j >= half_dims: d is not rotated.
// Adjacent pairs (x[2j], x[2j + 1]), or with neox halves (x[j], x[j + half_dims]).
fn rope_pair(d: u32, half_dims: u32, neox: bool) -> vec3<u32> {
    if (neox) {
        if (d >= 2u * half_dims) {
            return vec3<u32>(half_dims, d, 0u);
        }
        if (d >= half_dims) {
            return vec3<u32>(d - half_dims, d - half_dims, 1u);
        }
        return vec3<u32>(d, d + half_dims, 0u);
    }
    return vec3<u32>(d >> 1u, d ^ 1u, d & 1u);
}
