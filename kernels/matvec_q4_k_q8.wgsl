// matvec_q4_k_q8: y = W x for a Q4_K weight matrix W (m rows, k columns, k a multiple of
// 256) and one token x that quantize_x_q8.wgsl turned into int8 blocks of 32 (xq, xs).
// Integer dot products with dot4I8Packed; per 16 elements one integer scale multiply, per
// 32 one f32 multiply-add. The same bindings, parameters and dispatch as
// matvec_q4_0_q8.wgsl, so the host calls both alike.
//
// Bindings (group 0):
//   0 w:      array<u32>, read        rows of k / 256 super-blocks of 144 bytes (f16 d,
//                                     f16 dmin, 12 bytes of 6-bit scales and mins, 128 bytes
//                                     of nibbles; value d * sc * q - dmin * m per 32 elements),
//                                     row 0 at byte 0; every field is word aligned
//   1 xq:     array<u32>, read        k / 4 words: int8 x, 4 per word, little-endian
//   2 xs:     array<f32>, read        k / 32 scales of x
//   3 y:      array<f32>, read_write  y[y_off + r] for r < m
//   4 params: uniform { k: u32, m: u32, y_off: u32, accumulate: u32 }   (accumulate != 0:
//             y += W x, the residual add fused into the matvec)
//
// Work split: a "unit" is 16 bytes of nibbles, i.e. 16 elements of each of the two
// sub-blocks (2p, 2p + 1) that share those bytes (low and high nibbles): k / 32 units a
// row, unit u = 8 sb + 2p + h covers elements 16h .. 16h + 15 of both sub-blocks. Invocation
// t takes units t, t + WG, ... of each of its ROWS rows: neighbouring invocations read
// neighbouring 16-byte pieces of W (coalesced), and each x piece is loaded once for ROWS rows.
// Dispatch: groups = ceil(m / ROWS); gx = min(groups, 65535); gy = ceil(groups / gx);
// dispatchWorkgroups(gx, gy); group = wg.x + wg.y * num_workgroups.x.
//
// Entry points: `main` sums the partial dot products in workgroup memory (always valid);
// `main_subgroup` sums with subgroupAdd first. The subgroup code sits between the two
// marker comment lines SUBGROUPS-BEGIN and SUBGROUPS-END below: without the "subgroups"
// device feature the host cuts that section out.

struct Params {
    k: u32,
    m: u32,
    y_off: u32,
    accumulate: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> xq: array<u32>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

const WG: u32 = 128u;
const ROWS: u32 = 4u;

var<workgroup> partial: array<f32, WG * ROWS>;

// Sub-block j's 6-bit scale and min from the three scale words s0..s2 (bytes 0..11 of the
// scale array): j < 4: low 6 bits of bytes j and j + 4; j >= 4: nibbles of byte j + 4
// with the top 2 bits of bytes j - 4 and j on top.
fn scale_min(s0: u32, s1: u32, s2: u32, j: u32) -> vec2<i32> {
    let sh = 8u * (j & 3u);
    let lo = vec2<u32>(s0, s1) >> vec2<u32>(sh);
    let hi = ((vec2<u32>(s2) >> vec2<u32>(sh, sh + 4u)) & vec2<u32>(15u)) | (((lo >> vec2<u32>(6u)) & vec2<u32>(3u)) << vec2<u32>(4u));
    return vec2<i32>(select(hi, lo & vec2<u32>(63u), j < 4u));
}

// Partial dot products of this invocation for rows row0 .. row0 + ROWS - 1
// (rows past m are computed on row m - 1 and never stored).
fn partial_dots(row0: u32, t: u32) -> array<f32, ROWS> {
    let nu = params.k / 32u;
    let nsb = params.k / 256u;
    let m = params.m;
    let ones = 0x01010101u;
    let lo4 = 0x0f0f0f0fu;
    var acc: array<f32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        acc[r] = 0.0;
    }
    for (var u = t; u < nu; u += WG) {
        let sb = u >> 3u;
        let p = (u >> 1u) & 3u;
        let h = u & 1u;
        // x: 16 elements of sub-block 2p (a*) and of sub-block 2p + 1 (b*)
        let xa = (sb * 8u + 2u * p) * 8u + 4u * h;
        let xb = xa + 8u;
        let a0 = xq[xa];
        let a1 = xq[xa + 1u];
        let a2 = xq[xa + 2u];
        let a3 = xq[xa + 3u];
        let b0 = xq[xb];
        let b1 = xq[xb + 1u];
        let b2 = xq[xb + 2u];
        let b3 = xq[xb + 3u];
        let dxa = xs[sb * 8u + 2u * p];
        let dxb = xs[sb * 8u + 2u * p + 1u];
        let suma = dot4I8Packed(a0, ones) + dot4I8Packed(a1, ones) + dot4I8Packed(a2, ones) + dot4I8Packed(a3, ones);
        let sumb = dot4I8Packed(b0, ones) + dot4I8Packed(b1, ones) + dot4I8Packed(b2, ones) + dot4I8Packed(b3, ones);
        for (var r = 0u; r < ROWS; r++) {
            let row = min(row0 + r, m - 1u);
            let wi = (row * nsb + sb) * 36u;
            let dm = unpack2x16float(w[wi]);
            let s0 = w[wi + 1u];
            let s1 = w[wi + 2u];
            let s2 = w[wi + 3u];
            let sma = scale_min(s0, s1, s2, 2u * p);
            let smb = scale_min(s0, s1, s2, 2u * p + 1u);
            let qi = wi + 4u + 8u * p + 4u * h;
            let q0 = w[qi];
            let q1 = w[qi + 1u];
            let q2 = w[qi + 2u];
            let q3 = w[qi + 3u];
            let qa = dot4I8Packed(q0 & lo4, a0) + dot4I8Packed(q1 & lo4, a1) + dot4I8Packed(q2 & lo4, a2) +
                     dot4I8Packed(q3 & lo4, a3);
            let qb = dot4I8Packed((q0 >> 4u) & lo4, b0) + dot4I8Packed((q1 >> 4u) & lo4, b1) +
                     dot4I8Packed((q2 >> 4u) & lo4, b2) + dot4I8Packed((q3 >> 4u) & lo4, b3);
            // |sc * q| <= 63 * 15 * 127 * 16 and |m * sum| <= 63 * 127 * 16: exact in f32
            acc[r] += dm.x * (dxa * f32(sma.x * qa) + dxb * f32(smb.x * qb)) -
                      dm.y * (dxa * f32(sma.y * suma) + dxb * f32(smb.y * sumb));
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
