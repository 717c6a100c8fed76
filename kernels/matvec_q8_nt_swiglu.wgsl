// matvec_q8_nt_swiglu: the feed-forward's first half for a few tokens (2 to NT: the
// batched decode step of several sequences), quantized weights x int8 activations:
// y[j][r] = silu(Wg[r] . x[j]) * (Wu[r] . x[j]). As matvec_q8_nt.wgsl (see there), but
// each group owns RPG / 2 rows of both matrices (group g of workgroup wg: rows from
// RPG / 2 (RG wg + g); its row i is row i / 2 of the gate (even i) or up matrix (odd i):
// PAIR_SEL, PAIR_OFFS), so the SwiGLU needs no gate and up buffers and no extra dispatch. The
// format's q8dot_<fmt>.wgsl and lib_q8_nt.wgsl are put in front.
//
// Bindings: 0 params; 1 Wg, 2 Wu (the rows); 3 xq (k / 4 words per token,
// read as vec4s), 4 xs (k / 32 scales per token), tokens x_tok0 .. x_tok0 + n - 1;
// 5 y (token j, row r at y[y_off + j * y_stride + r]).

struct Params {
    k: u32,
    m: u32,
    y_off: u32,
    n: u32,          // tokens, 1 .. NT
    y_stride: u32,
    x_tok0: u32,     // first token of x (xq, xs) for this dispatch
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> wg_: array<u32>;
@group(0) @binding(2) var<storage, read> wu_: array<u32>;
@group(0) @binding(3) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> xs: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

// Word o of Wg (sel 0) or Wu (1).
fn wword(sel: u32, o: u32) -> u32 {
    if (sel == 0u) {
        return wg_[o];
    }
    return wu_[o];
}

// Token t of the group's row: v = (gate, up).
fn put(row: u32, t: u32, v: vec2<f32>) {
    if (t < params.n && row < params.m) {
        let g = v.x;
        y[params.y_off + t * params.y_stride + row] = g / (1.0 + exp(-g)) * v.y;
    }
}

fn run(wid: u32, li: u32, sgs: u32) {
    let place = group_place(li);
    let grp = place.x;
    let t = place.y;
    let row0 = (wid * RG + grp) * (RPG / 2u);
    let live = row0 < params.m; // not a return: the tree's barriers need every thread
    let rows = min(RowIdx(row0) + PAIR_OFFS, RowIdx(params.m - 1u));
    let s = group_sums(dots(PAIR_SEL, rows, t, live), grp, t, sgs);
    // output e < RPG / 2 NT: gate/up row row0 + e % (RPG / 2) of token e / (RPG / 2)
    for (var e = t; live && e < RPG / 2u * NT; e += TPR) {
        let i = e % (RPG / 2u);
        let v = token_sum(s, e / (RPG / 2u));
        put(row0 + i, e / (RPG / 2u), vec2<f32>(v[2u * i], v[2u * i + 1u]));
    }
}

// The host keeps one of the two entry points, as the device has subgroups or not.
// SUBGROUPS-BEGIN
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32, @builtin(subgroup_size) sgs: u32) {
    run(wg.x + wg.y * nwg.x, li, sgs);
}
// SUBGROUPS-END
// NO-SUBGROUPS-BEGIN
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    run(wg.x + wg.y * nwg.x, li, 0u);
}
// NO-SUBGROUPS-END
