// matvec_q8_nt: Y = W X for a quantized weight matrix and a few tokens (2 to NT) at
// once: the batched decode step of several sequences. Like matvec_q8.wgsl (see there
// for the dispatch), but each weight unit is decoded once and dotted with every token's x,
// so the weights are read once per step instead of once per token; the tiled matmul would
// leave most of the GPU idle at such small batches. The work is lib_q8_nt.wgsl's (put in
// front, after the format's q8dot_<fmt>.wgsl); group g of workgroup wg owns rows 2 (RG wg + g)
// and the one after. Parameters and bindings: lib_q8_mat_io.wgsl (put in front).


// Thread t < 2 NT of a group writes row row0 + t % 2 of token t / 2 from the group's sums.
fn put(row0: u32, t: u32, v: vec2<f32>) {
    let r = t % 2u;
    let j = t / 2u;
    if (j < params.n && row0 + r < params.m) {
        put_y(j, row0 + r, v[r]);
    }
}

fn run(wid: u32, li: u32, sgs: u32) {
    let grp = li / TPR;
    let t = li % TPR;
    let row0 = (wid * RG + grp) * 2u;
    let live = row0 < params.m; // not a return: the tree's barriers need every thread
    let s = group_sums(dots(0u, 0u, row0, min(row0 + 1u, params.m - 1u), t, live), grp, t, sgs);
    if (live && t < 2u * NT) {
        put(row0, t, token_sum(s, t / 2u));
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
