// matvec_q4_0_q8: y = W x for a Q4_0 weight matrix W (m rows, k columns) and one token x
// that quantize_x_q8.wgsl turned into int8 blocks (xq, xs). Integer dot products per
// 32-block with dot4I8Packed, one f32 multiply-add per block and row.
//
// Bindings (group 0):
//   0 w:      array<u32>, read        rows of k / 32 Q4_0 blocks of 18 bytes, contiguous, row 0 at
//                                     byte 0 (a block: f16 d, 16 bytes qs; element j in the low nibble
//                                     of qs[j], element j + 16 in the high nibble; value (q - 8) * d).
//                                     Blocks are 2-byte aligned: even blocks start on a word, odd
//                                     blocks 2 bytes into one. The binding may end mid-word (padded).
//   1 xq:     array<vec4<u32>>, read  k / 4 words: int8 x, 4 per word, little-endian (read 4 words at a time)
//   2 xs:     array<f32>, read        k / 32 scales of x
//   3 y:      array<f32>, read_write  y[y_off + r] for r < m
//   4 params: uniform { k: u32, m: u32, y_off: u32, accumulate: u32 }   (k a multiple of 32;
//             accumulate != 0: y += W x, the residual add fused into the matvec)
//
// Workgroup size WG (128), ROWS (4) rows per workgroup. Invocation t takes blocks
// t, t + WG, ... of each of its ROWS rows, so neighbouring invocations read neighbouring
// blocks (coalesced) and each x block is loaded once for ROWS rows.
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

const WG: u32 = 128u;
const ROWS: u32 = 4u;

var<workgroup> partial: array<f32, WG * ROWS>;

// Partial dot products of this invocation for rows row0 .. row0 + ROWS - 1
// (rows past m are computed on row m - 1 and never stored).
fn partial_dots(row0: u32, t: u32) -> array<f32, ROWS> {
    let nb = params.k / 32u;
    let m = params.m;
    var acc: array<f32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        acc[r] = 0.0;
    }
    for (var b = t; b < nb; b += WG) {
        // x block b: 8 words; elements 0..15 in words 0..3, 16..31 in words 4..7.
        let xa = xq[b * 2u];
        let xc = xq[b * 2u + 1u];
        let x0 = xa.x;
        let x1 = xa.y;
        let x2 = xa.z;
        let x3 = xa.w;
        let x4 = xc.x;
        let x5 = xc.y;
        let x6 = xc.z;
        let x7 = xc.w;
        let dx = xs[b];
        // sum(q - 8) x = sum q x - 8 sum x: the nibbles stay unsigned bytes.
        let ones = 0x01010101u;
        let xsum8 = 8 * (dot4I8Packed(x0, ones) + dot4I8Packed(x1, ones) + dot4I8Packed(x2, ones) +
                         dot4I8Packed(x3, ones) + dot4I8Packed(x4, ones) + dot4I8Packed(x5, ones) +
                         dot4I8Packed(x6, ones) + dot4I8Packed(x7, ones));
        for (var r = 0u; r < ROWS; r++) {
            let row = min(row0 + r, m - 1u);
            let g = row * nb + b;              // global block index
            let base = (g * 9u) >> 1u;         // word holding the block's first byte (18 g / 4)
            let w0 = w[base];
            let w1 = w[base + 1u];
            let w2 = w[base + 2u];
            let w3 = w[base + 3u];
            let w4 = w[base + 4u];
            let odd = (g & 1u) == 1u;
            // even block: d = low half of w0, qs = bytes 2.. of w0..w4
            // odd block:  d = high half of w0, qs = w1..w4
            let dw2 = unpack2x16float(w0);
            let dw = select(dw2.x, dw2.y, odd);
            let q0 = select((w0 >> 16u) | (w1 << 16u), w1, odd);
            let q1 = select((w1 >> 16u) | (w2 << 16u), w2, odd);
            let q2 = select((w2 >> 16u) | (w3 << 16u), w3, odd);
            let q3 = select((w3 >> 16u) | (w4 << 16u), w4, odd);
            let lo = 0x0f0f0f0fu;
            let s = dot4I8Packed(q0 & lo, x0) + dot4I8Packed(q1 & lo, x1) +
                    dot4I8Packed(q2 & lo, x2) + dot4I8Packed(q3 & lo, x3) +
                    dot4I8Packed((q0 >> 4u) & lo, x4) + dot4I8Packed((q1 >> 4u) & lo, x5) +
                    dot4I8Packed((q2 >> 4u) & lo, x6) + dot4I8Packed((q3 >> 4u) & lo, x7);
            acc[r] += f32(s - xsum8) * (dw * dx);
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
