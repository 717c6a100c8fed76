// matvec_q8: y = W x for a quantized weight matrix W (m rows, k columns) and one token x
// that quantize_x_q8.wgsl turned into int8 blocks (xq, xs). Integer dot products with
// dot4I8Packed, f32 scale products per 32 elements. The weight format is the one of the
// q8dot_<fmt>.wgsl put in front (with lib_q8_x.wgsl, the interface); WG and ROWS are
// declared in front by the host (wgpu_pipelines.h).
//
// Bindings (group 0):
//   0 w:      array<u32>, read        the rows, contiguous, row 0 at byte 0
//   1 xq:     array<vec4<u32>>, read  k / 4 words: int8 x, 4 per word, little-endian (read 4 words at a time)
//   2 xs:     array<f32>, read        k / 32 scales of x
//   3 y:      array<f32>, read_write  y[y_off + r] for r < m
//   4 params: uniform { k: u32, m: u32, y_off: u32, accumulate: u32 }   (k a multiple of 32;
//             accumulate != 0: y += W x, the residual add fused into the matvec)
//
// Workgroup size WG, ROWS rows per workgroup. Invocation t takes units (32 elements)
// t, t + WG, ... of each of its ROWS rows, so neighbouring invocations read neighbouring
// units (coalesced) and each x unit is loaded once for ROWS rows.
// Dispatch: groups = ceil(m / ROWS); gx = min(groups, 65535); gy = ceil(groups / gx);
// dispatchWorkgroups(gx, gy); group = wg.x + wg.y * num_workgroups.x (rows up to 65535 * 65535 * ROWS).
//
// Entry points: `main` sums the partial dot products in workgroup memory (always valid);
// `main_subgroup` sums with subgroupAdd first (faster on the H200: see bench/wgpu_matvec.md).
// The subgroup code sits between the two marker comment lines SUBGROUPS-BEGIN and
// SUBGROUPS-END below: without the "subgroups" device feature the host cuts that section
// out. No `enable subgroups;`: naga in wgpu-native 29 rejects it, and the builtins need
// only the device feature. main_subgroup assumes that subgroups are consecutive runs of
// local_invocation_index (true on the Vulkan drivers tried: NVIDIA, lavapipe).
//
// Tuning (H200, Llama-2-7B shapes): WG 128 / ROWS 4 is best over a whole layer; WG 64 /
// ROWS 4 is 5-9% faster on 11008 x 4096 and 32000 x 4096 but 27% slower on 4096 x 11008.

struct Params {
    k: u32,
    m: u32,
    y_off: u32,
    accumulate: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> xq: array<vec4<u32>>; // 16-byte loads
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

fn wword(sel: u32, o: u32) -> u32 {
    return w[o];
}

var<workgroup> partial: array<f32, WG * ROWS>;

// Partial dot products of this invocation for rows row0 .. row0 + ROWS - 1
// (rows past m are computed on row m - 1 and never stored).
fn partial_dots(row0: u32, t: u32) -> array<f32, ROWS> {
    let nu = params.k / 32u;
    let m = params.m;
    var acc: array<f32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        acc[r] = 0.0;
    }
    for (var u = t; u < nu; u += WG) {
        let x = q8_x(0u, 0u, u);
        for (var r = 0u; r < ROWS; r++) {
            let row = min(row0 + r, m - 1u);
            acc[r] += q8_dot(q8_unpack(q8_load(0u, row, u, nu), row, u, nu), x);
        }
    }
    return acc;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
    let row0 = (wg.x + wg.y * nwg.x) * ROWS;
    if (row0 >= params.m) {
        return;   // whole workgroup: uniform
    }
    let acc = partial_dots(row0, t);
    for (var r = 0u; r < ROWS; r++) {
        partial[r * WG + t] = acc[r];
    }
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if (t < half) {
            for (var r = 0u; r < ROWS; r++) {
                partial[r * WG + t] += partial[r * WG + t + half];
            }
        }
    }
    workgroupBarrier(); // threads 1 .. ROWS - 1 read what thread 0 summed last
    if (t < ROWS && row0 + t < params.m) {
        let o = params.y_off + row0 + t;
        y[o] = select(partial[t * WG], y[o] + partial[t * WG], params.accumulate != 0u);
    }
}

// SUBGROUPS-BEGIN
// One slot per subgroup and row; subgroups are at least 4 wide (the smallest size
// WebGPU allows), so WG / 4 slots always suffice.
var<workgroup> sg_partial: array<f32, (WG / 4u) * ROWS>;

@compute @workgroup_size(WG)
fn main_subgroup(@builtin(workgroup_id) wg: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) t: u32,
                 @builtin(subgroup_invocation_id) lane: u32,
                 @builtin(subgroup_size) sg_size: u32) {
    let row0 = (wg.x + wg.y * nwg.x) * ROWS;
    if (row0 >= params.m) {
        return;
    }
    let acc = partial_dots(row0, t);
    let n_sg = (WG + sg_size - 1u) / sg_size;
    let sg = t / sg_size;
    for (var r = 0u; r < ROWS; r++) {
        let s = subgroupAdd(acc[r]);
        if (lane == 0u) {
            sg_partial[r * (WG / 4u) + sg] = s;
        }
    }
    workgroupBarrier();
    if (t < ROWS && row0 + t < params.m) {
        var sum = 0.0;
        for (var i = 0u; i < n_sg; i++) {
            sum += sg_partial[t * (WG / 4u) + i];
        }
        let o = params.y_off + row0 + t;
        y[o] = select(sum, y[o] + sum, params.accumulate != 0u);
    }
}
// SUBGROUPS-END
