// The int8 rounding of activations (llama.cpp's q8_0 rule), shared by every kernel that
// writes int8 blocks of 32 for the Q4_0 x int8 matvecs: scale d = amax / 127 over the
// block, each value round(v / d) with halves away from zero (like C's roundf; WGSL's
// round() goes half to even), so all writers give the same bits.
// Put in front of a kernel by the host.

fn q8_scale(amax: f32) -> f32 {
    return amax / 127.0;
}

// 4 values of a block with scale d as packed int8 (little-endian bytes).
fn q8_pack4(v: vec4<f32>, d: f32) -> u32 {
    let id = select(0.0, 1.0 / d, d > 0.0);
    let s = v * id;
    return pack4xI8Clamp(vec4<i32>(sign(s) * floor(abs(s) + vec4<f32>(0.5))));
}
