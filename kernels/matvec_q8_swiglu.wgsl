// The feed-forward's first half for one token, quantized weights x int8 activations:
// y[r] = silu(Wg[r] . x) * (Wu[r] . x). Gate and up rows are computed by the same
// workgroup, so the SwiGLU needs no extra dispatch and no gate/up buffers.
// x comes from quantize_x_q8.wgsl or rms_norm_q8.wgsl; the weights are decoded by the
// q8dot_<fmt>.wgsl put in front (see lib_q8_x.wgsl); the dispatch is laid out as in matvec_q8.wgsl,
// RG * ROWS rows a workgroup (TPR, RG, ROWS: declared in front by the host).
//
// Bindings: 0 params { k, m, pad, pad }; 1 Wg, 2 Wu (the rows, row 0 at byte 0 of the
// binding); 3 xq, 4 xs; 5 y (m floats).

struct Params {
    k: u32,
    m: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> wg_: array<u32>;
@group(0) @binding(2) var<storage, read> wu_: array<u32>;
@group(0) @binding(3) var<storage, read> xq: array<vec4<u32>>; // 16-byte loads
@group(0) @binding(4) var<storage, read> xs: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

// A workgroup is RG groups of TPR threads; group g owns rows row0 + ROWS g .. + ROWS - 1 of
// both matrices, its threads splitting the blocks, so each reduction spans TPR threads.
const WG: u32 = TPR * RG;
const_assert ROWS == 4u; // a vec4 of sums per thread and matrix

// Word o of Wg (sel 0) or Wu (1).
fn wword(sel: u32, o: u32) -> u32 {
    if (sel == 0u) {
        return wg_[o];
    }
    return wu_[o];
}

// group g, lane l: gate sums in partial[(2 g) * TPR + l], up sums in partial[(2 g + 1) * TPR + l]
var<workgroup> partial: array<vec4<f32>, 2u * RG * TPR>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wgid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let grp = li / TPR;
    let t = li % TPR;
    let row0 = ((wgid.x + wgid.y * nwg.x) * RG + grp) * ROWS;
    let nu = params.k / 32u;
    let m = params.m;
    let live = row0 < m; // not a return: the barriers below need every thread
    var accg = vec4<f32>(0.0);
    var accu = vec4<f32>(0.0);
    for (var u = t; live && u < nu; u += TPR) {
        let x = q8_x(0u, 0u, u);
        for (var r = 0u; r < ROWS; r++) {
            let row = min(row0 + r, m - 1u);
            accg[r] += q8_dot(q8_unpack(q8_load(0u, row, u, nu), row, u, nu), x);
            accu[r] += q8_dot(q8_unpack(q8_load(1u, row, u, nu), row, u, nu), x);
        }
    }
    let pg = 2u * grp * TPR;
    partial[pg + t] = accg;
    partial[pg + TPR + t] = accu;
    for (var half = TPR / 2u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if (t < half) {
            partial[pg + t] += partial[pg + t + half];
            partial[pg + TPR + t] += partial[pg + TPR + t + half];
        }
    }
    workgroupBarrier();
    if (live && t < ROWS && row0 + t < m) {
        let gsum = partial[pg][t];
        let usum = partial[pg + TPR][t];
        y[row0 + t] = gsum / (1.0 + exp(-gsum)) * usum;
    }
}
