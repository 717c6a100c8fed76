// matvec_q8_nt: Y = W X for a quantized weight matrix and a few tokens (2 to NT) at
// once: the batched decode step of several sequences. Like matvec_q8.wgsl (see there
// for the dispatch), but each weight unit is decoded once and dotted with every token's x,
// so the weights are read once per step instead of once per token; the tiled matmul would
// leave most of the GPU idle at such small batches. The work is lib_q8_nt.wgsl's (put in
// front, after the format's q8dot_<fmt>.wgsl); group g of workgroup wg owns rows RPG (RG wg + g)
// and the RPG - 1 after. Parameters and bindings: lib_q8_mat_io.wgsl (put in front).


// Output e < RPG NT of a group is row row0 + e % RPG of token e / RPG of the group's sums s.
fn put(row0: u32, e: u32, s: Acc) {
    let r = e % RPG;
    let j = e / RPG;
    if (j < params.n && row0 + r < params.m) {
        put_y(j, row0 + r, token_sum(s, j)[r]);
    }
}

fn run(wid: u32, li: u32, sgs: u32) {
    let place = group_place(li);
    let grp = place.x;
    let t = place.y;
    let row0 = (wid * RG + grp) * RPG;
    let live = row0 < params.m; // not a return: the tree's barriers need every thread
    let rows = min(RowIdx(row0) + ROW_OFFS, RowIdx(params.m - 1u));
    let s = group_sums(dots(RowIdx(0u), rows, t, live), grp, t, sgs);
    for (var e = t; live && e < RPG * NT; e += TPR) {
        put(row0, e, s);
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
