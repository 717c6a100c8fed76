// The feed-forward's first half for one token, quantized weights x int8 activations:
// y[r] = silu(Wg[r] . x) * (Wu[r] . x). Gate and up rows are computed by the same
// workgroup, so the SwiGLU needs no extra dispatch and no gate/up buffers.
// x comes from quantize_x_q8.wgsl or rms_norm_q8.wgsl; the weights are decoded by the
// q8dot_<fmt>.wgsl put in front (see lib_q8_x.wgsl); the dispatch is laid out as in matvec_q8.wgsl,
// RG * ROWS rows a workgroup (TPR, RG, ROWS: declared in front by the host).
// With q8_out set (m a multiple of 32), y's int8 copy is written too, as quantize_x_q8.wgsl
// would make it from y (lib_q8_round.wgsl, the same bits): the down product that follows
// needs no quantize dispatch. A workgroup owns whole blocks of 32 rows for that.
//
// Bindings: 0 params { k, m, q8_out, pad }; 1 Wg, 2 Wu (the rows, row 0 at byte 0 of the
// binding); 3 xq, 4 xs; 5 y (m floats); 6 yq (m / 4 words), 7 ys (m / 32 scales): y as int8
// blocks, laid out as quantize_x_q8.wgsl's xq, xs (unwritten without q8_out).

struct Params {
    k: u32,
    m: u32,
    q8_out: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> wg_: array<u32>;
@group(0) @binding(2) var<storage, read> wu_: array<u32>;
@group(0) @binding(3) var<storage, read> xq: array<vec4<u32>>; // 16-byte loads
@group(0) @binding(4) var<storage, read> xs: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> yq: array<u32>;
@group(0) @binding(7) var<storage, read_write> ys: array<f32>;

// A workgroup is RG groups of TPR threads; group g owns rows row0 + ROWS g .. + ROWS - 1 of
// both matrices, its threads splitting the blocks, so each reduction spans TPR threads.
const WG: u32 = TPR * RG;
const WROWS: u32 = RG * ROWS; // rows a workgroup
const_assert ROWS == 4u; // a vec4 of sums per thread and matrix
const_assert WROWS % 32u == 0u; // whole int8 blocks of y
const_assert WROWS <= WG; // one thread per row for the epilogue

// Word o of Wg (sel 0) or Wu (1).
fn wword(sel: u32, o: u32) -> u32 {
    if (sel == 0u) {
        return wg_[o];
    }
    return wu_[o];
}

// group g, lane l: gate sums in partial[(2 g) * TPR + l], up sums in partial[(2 g + 1) * TPR + l]
var<workgroup> partial: array<vec4<f32>, 2u * RG * TPR>;
// the workgroup's y values, for their int8 blocks
var<workgroup> yv: array<f32, WROWS>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wgid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let grp = li / TPR;
    let t = li % TPR;
    let wrow0 = (wgid.x + wgid.y * nwg.x) * WROWS;
    let row0 = wrow0 + grp * ROWS;
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
    // thread i < WROWS: row wrow0 + i, from lane i % ROWS of its group's sums
    if (li < WROWS) {
        let g = 2u * (li / ROWS) * TPR;
        let gsum = partial[g][li % ROWS];
        let usum = partial[g + TPR][li % ROWS];
        let v = gsum / (1.0 + exp(-gsum)) * usum;
        yv[li] = v;
        if (wrow0 + li < m) {
            y[wrow0 + li] = v;
        }
    }
    if (params.q8_out == 0u) {
        return;
    }
    workgroupBarrier();
    // thread i < WROWS / 4: word i of the workgroup's blocks (8 a block), as quantize_x_q8
    if (li < WROWS / 4u && wrow0 < m) {
        let first = li / 8u * 32u;
        var amax = 0.0;
        for (var j = 0u; j < 32u; j++) {
            amax = max(amax, abs(yv[first + j]));
        }
        let d = q8_scale(amax);
        let e = 4u * li;
        yq[wrow0 / 4u + li] = q8_pack4(vec4<f32>(yv[e], yv[e + 1u], yv[e + 2u], yv[e + 3u]), d);
        if ((li & 7u) == 0u) {
            ys[wrow0 / 32u + li / 8u] = d;
        }
    }
}
