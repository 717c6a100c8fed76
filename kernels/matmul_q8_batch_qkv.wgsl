// matmul_q8_batch_qkv: the q, k and v products of a batched decode step of 9 to 64
// tokens in one dispatch (weights of one int8 format, int8 x): each workgroup takes a row tile of one of
// the three matrices (q's tiles first, then k's, then v's), with lib_q8_batch.wgsl's tiles.
// Rotation and the cache stores follow in decode_attention's dispatches.
//
// Parameters, bindings and the split over the three matrices: lib_q8_qkv_io.wgsl (put in
// front), as matvec_q8_nt_qkv.wgsl has them.
// Dispatch: (ceil(m_q / TM) + 2 ceil(m_kv / TM), ceil(n / TN)) workgroups.


fn acc_put(c: PutCtx, i: u32, j: u32, v: f32) {
    let r = c.row0 + c.tx + TX * i;
    let t = c.tok0 + TT * c.ty + j;
    if (r < w_rows(c.sel) && t < params.n) {
        qkv_put(c.sel, params.x_tok0 + t, r, v);
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let loc = qkv_locate(wid.x, TM);
    let sel = loc.x;
    let row0 = loc.y;
    let tok0 = wid.y * TN;
    tile_store(batch_tile(sel, sel, TM, row0, tok0, li), put_ctx(row0, tok0, li, sel));
}
