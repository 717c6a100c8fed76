// RMSNorm of rows (tokens), also rounded to int8 blocks for the Q4_0 x int8 products:
// y = x / sqrt(mean(x^2) + eps) * w, written as f32 (Y) and as quantize_x_q8.wgsl's
// layout (XQ: 4 int8 per word, XS: one f32 scale per 32-block, llama.cpp's q8_0 rule with
// rounding half away from zero). Saves a dispatch and a read of y per layer and norm.
// Workgroup (g, row) of (ceil(d / 1024), rows) writes elements 1024 g .. 1024 g + 1023 of
// the row (rows packed: stride d in X, Y, XQ, XS as quantize_x_q8.wgsl lays them); every workgroup
// first sums the squares of the whole row itself (d * 4 bytes from cache: cheaper than a
// second dispatch). Each thread makes one packed word: 8 threads share a 32-block.
// d is a multiple of 32.

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
var<workgroup> lane_amax: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let n4 = P.d / 4u;
    let rb = wid.y * n4; // the row's first vec4 (= packed word)
    let word = wid.x * 256u + li; // vec4 index = packed word index
    let live = word < n4;
    // this thread's weights, loaded before the sums so that their latency overlaps them
    var wn = vec4<f32>(0.0);
    if (live) {
        wn = Wn[word];
    }
    // four vec4s a step, their loads issued together: a loop of one a step waited on each
    // load in turn (a 4096-wide row: four round trips instead of one)
    var ss = 0.0;
    var i = li;
    for (; i + 768u < n4; i += 1024u) {
        let a = X[rb + i];
        let b = X[rb + i + 256u];
        let c = X[rb + i + 512u];
        let e = X[rb + i + 768u];
        ss += dot(a, a);   // in the order of the loop below: the same sum, bit for bit
        ss += dot(b, b);
        ss += dot(c, c);
        ss += dot(e, e);
    }
    for (; i < n4; i += 256u) {
        let a = X[rb + i];
        ss += dot(a, a);
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
    var v = vec4<f32>(0.0);
    if (live) {
        v = X[rb + word] * scale * wn;
        Y[rb + word] = v;
    }
    let a = abs(v);
    lane_amax[li] = max(max(a.x, a.y), max(a.z, a.w));
    workgroupBarrier();
    let first = li & ~7u;
    var amax = lane_amax[first];
    for (var j = 1u; j < 8u; j++) {
        amax = max(amax, lane_amax[first + j]);
    }
    if (!live) {
        return;
    }
    let d = q8_scale(amax);
    XQ[rb + word] = q8_pack4(v, d);
    if ((li & 7u) == 0u) {
        XS[(rb + word) / 8u] = d;
    }
}
