// matvec_q8_nt_qkv: q = Wq x, k = Wk x, v = Wv x for a few tokens (2 to NT: the
// batched decode step of several sequences) in one dispatch, as matvec_q8_nt.wgsl
// computes each (see there; the format's q8dot_<fmt>.wgsl and lib_q8_nt.wgsl are put in
// front): the rows of the three matrices are numbered one after the other and a
// workgroup's 2 RG rows lie in one matrix (the host checks that both row counts are
// multiples of it), so it is one grid instead of three dispatches.
//
// Bindings: 0 wq, 1 wk, 2 wv; 3 xq (k / 4 words per token, read as vec4s), 4 xs (k / 32
// scales per token), tokens x_tok0 .. x_tok0 + n - 1; 5 q, 6 k, 7 v (token t, row r at
// [t * stride + r]); 8 params.

struct Params {
    k: u32,
    m_q: u32,        // rows of wq
    m_kv: u32,       // rows of wk and of wv
    n: u32,          // tokens, 1 .. NT
    q_stride: u32,
    kv_stride: u32,
    x_tok0: u32,     // first token of x (xq, xs) for this dispatch
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> wq: array<u32>;
@group(0) @binding(1) var<storage, read> wk: array<u32>;
@group(0) @binding(2) var<storage, read> wv: array<u32>;
@group(0) @binding(3) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> xs: array<f32>;
@group(0) @binding(5) var<storage, read_write> yq: array<f32>;
@group(0) @binding(6) var<storage, read_write> yk: array<f32>;
@group(0) @binding(7) var<storage, read_write> yv: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;

// Word o of matrix sel (0 q, 1 k, 2 v); sel is the same for a whole workgroup.
fn wword(sel: u32, o: u32) -> u32 {
    if (sel == 0u) {
        return wq[o];
    }
    if (sel == 1u) {
        return wk[o];
    }
    return wv[o];
}

// Thread t < 2 NT of a group writes row row0 + t % 2 of token t / 2 of matrix sel.
fn put(sel: u32, m: u32, row0: u32, t: u32, v: vec2<f32>) {
    let r = t % 2u;
    let j = t / 2u;
    let tok = params.x_tok0 + j; // outputs in the rows of their tokens
    if (j < params.n && row0 + r < m) {
        if (sel == 0u) {
            yq[tok * params.q_stride + row0 + r] = v[r];
        } else if (sel == 1u) {
            yk[tok * params.kv_stride + row0 + r] = v[r];
        } else {
            yv[tok * params.kv_stride + row0 + r] = v[r];
        }
    }
}

fn run(wid: u32, li: u32, sgs: u32) {
    let grp = li / TPR;
    let t = li % TPR;
    let g = (wid * RG + grp) * 2u; // row over the three matrices
    let sel = select(select(2u, 1u, g < params.m_q + params.m_kv), 0u, g < params.m_q);
    let base = select(select(params.m_q + params.m_kv, params.m_q, sel == 1u), 0u, sel == 0u);
    let m = select(params.m_kv, params.m_q, sel == 0u);
    let row0 = g - base;
    let live = g < params.m_q + 2u * params.m_kv; // not a return: the tree's barriers need every thread
    let s = group_sums(dots(sel, sel, row0, min(row0 + 1u, m - 1u), t, live), grp, t, sgs);
    if (live && t < 2u * NT) {
        put(sel, m, row0, t, token_sum(s, t / 2u));
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
