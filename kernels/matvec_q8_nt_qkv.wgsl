// matvec_q8_nt_qkv: q = Wq x, k = Wk x, v = Wv x for a few tokens (2 to NT: the
// batched decode step of several sequences) in one dispatch, as matvec_q8_nt.wgsl
// computes each (see there; the format's q8dot_<fmt>.wgsl and lib_q8_nt.wgsl are put in
// front): the rows of the three matrices are numbered one after the other and a
// workgroup's RPG RG rows lie in one matrix (the host checks that both row counts are
// multiples of it), so it is one grid instead of three dispatches. Parameters, bindings and
// the split over the three matrices: lib_q8_qkv_io.wgsl (put in front).


// Output e < RPG NT of a group is row row0 + e % RPG of token e / RPG of matrix sel.
fn put(sel: u32, m: u32, row0: u32, e: u32, s: Acc) {
    let r = e % RPG;
    let j = e / RPG;
    if (j < params.n && row0 + r < m) {
        qkv_put(sel, params.x_tok0 + j, row0 + r, token_sum(s, j)[r]); // outputs in the rows of their tokens
    }
}

fn run(wid: u32, li: u32, sgs: u32) {
    let place = group_place(li);
    let grp = place.x;
    let t = place.y;
    let g = (wid * RG + grp) * RPG; // row over the three matrices
    let loc = qkv_locate(g, 1u);
    let sel = loc.x;
    let m = w_rows(sel);
    let row0 = loc.y;
    let live = g < params.m_q + 2u * params.m_kv; // not a return: the tree's barriers need every thread
    let rows = min(RowIdx(row0) + ROW_OFFS, RowIdx(m - 1u));
    let s = group_sums(dots(RowIdx(sel), rows, t, live), grp, t, sgs);
    for (var e = t; live && e < RPG * NT; e += TPR) {
        put(sel, m, row0, e, s);
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
