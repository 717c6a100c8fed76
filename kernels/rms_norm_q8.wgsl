// One token's RMSNorm, also rounded to int8 blocks for the Q4_0 x int8 matvec (decode):
// y = x / sqrt(mean(x^2) + eps) * w, written as f32 (Y) and as quantize_x_q8.wgsl's
// layout (XQ: 4 int8 per word, XS: one f32 scale per 32-block, llama.cpp's q8_0 rule with
// rounding half away from zero). Saves a dispatch and a read of y per layer and norm.
// One workgroup; thread t owns the 32-blocks t, t + 256, ... (d a multiple of 32).

struct Params {
    d: u32,
    eps: f32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> Wn: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Y: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> XQ: array<u32>;
@group(0) @binding(5) var<storage, read_write> XS: array<f32>;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
    let nb = P.d / 32u;
    var ss = 0.0;
    for (var b = li; b < nb; b += 256u) {
        for (var i = 0u; i < 8u; i++) {
            let v = X[b * 8u + i];
            ss += dot(v, v);
        }
    }
    red[li] = ss;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] += red[li + s];
        }
        workgroupBarrier();
    }
    let scale = 1.0 / sqrt(red[0] / f32(P.d) + P.eps);
    for (var b = li; b < nb; b += 256u) {
        var y: array<vec4<f32>, 8>;
        var amax = 0.0;
        for (var i = 0u; i < 8u; i++) {
            let v = X[b * 8u + i] * scale * Wn[b * 8u + i];
            y[i] = v;
            Y[b * 8u + i] = v;
            let a = abs(v);
            amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
        }
        let d = amax / 127.0;
        let id = select(0.0, 1.0 / d, d > 0.0);
        for (var i = 0u; i < 8u; i++) {
            let s = y[i] * id;
            let r = sign(s) * floor(abs(s) + vec4<f32>(0.5));
            XQ[b * 8u + i] = pack4xI8Clamp(vec4<i32>(r));
        }
        XS[b] = d;
    }
}
