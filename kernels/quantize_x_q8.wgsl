// quantize_x_q8: f32 activations -> int8 blocks of 32 with one f32 scale per block
// (llama.cpp's q8_0 rule, with the scale kept in f32): d = amax / 127, q = round(x / d),
// rounding half away from zero; an all-zero block gets d = 0 and q = 0.
//
// Bindings (group 0):
//   0 x:      array<f32>, read        token t, element i at x[x_off + t * k + i]
//   1 xq:     array<u32>, read_write  k / 4 words per token row; word t * k / 4 + i / 4 holds
//                                     elements 4*(i/4) .. +3 as int8, element 4*(i/4) in bits 0..7
//   2 xs:     array<f32>, read_write  k / 32 scales per token row: xs[t * k / 32 + i / 32]
//   3 params: uniform { k: u32, n: u32, x_off: u32, _pad: u32 }   (k a multiple of 32, n tokens)
//
// Workgroup size WG (declared in front by the host: wgpu_pipelines.h); each invocation makes
// one packed word (4 elements), so 8 invocations share a block and a workgroup covers WG / 8 blocks.
// Dispatch: groups = ceil(n * k / 4 / WG); gx = min(groups, 65535); gy = ceil(groups / gx);
// dispatchWorkgroups(gx, gy); group = wg.x + wg.y * num_workgroups.x.

struct Params {
    k: u32,
    n: u32,
    x_off: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> xq: array<u32>;
@group(0) @binding(2) var<storage, read_write> xs: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

// Per-invocation |x| maxima; the 8 lanes of a block read each other's after a barrier.
var<workgroup> lane_amax: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let group = wg.x + wg.y * nwg.x;
    let word = group * WG + lid;                  // index into xq over all tokens
    let n_words = params.n * (params.k / 4u);
    let live = word < n_words;

    var v = vec4<f32>(0.0);
    if (live) {
        // k is a multiple of 32, so a word never straddles two token rows: the flat
        // element index 4 * word maps straight onto x after the offset.
        let base = params.x_off + word * 4u;
        v = vec4<f32>(x[base], x[base + 1u], x[base + 2u], x[base + 3u]);
    }
    let a = abs(v);
    lane_amax[lid] = max(max(a.x, a.y), max(a.z, a.w));
    workgroupBarrier();

    let first = lid & ~7u;   // first lane of this block (blocks are 8-lane aligned)
    var amax = lane_amax[first];
    for (var j = 1u; j < 8u; j++) {
        amax = max(amax, lane_amax[first + j]);
    }
    if (!live) {
        return;
    }
    let d = q8_scale(amax);
    xq[word] = q8_pack4(v, d);
    if ((lid & 7u) == 0u) {
        xs[word / 8u] = d;
    }
}
