// matmul_q8: Y = W X for a weight matrix of an int8 format and int8 x, in the int8 tiles of
// lib_q8_batch.wgsl (put in front, with the format's q8dot_<fmt>.wgsl): for a prompt in the
// autotune's shape (wgpu_q8_prompt.h), for a batched decode step of 9 to 64 tokens in a tile
// that holds all the step's tokens, so each weight tile is read once (wgpu_q8_batch.h).
// Same results as the nt matvecs up to the f32 summation order: per block, the i32 dot
// product scaled once by d_w * d_x.
//
// Parameters and bindings: lib_q8_mat_io.wgsl (put in front).
// Dispatch: (ceil(m / TM), ceil(n / TN)) workgroups.

fn acc_put(c: PutCtx, i: u32, j: u32, v: f32) {
    let r = c.row0 + c.tx + TX * i;
    let t = c.tok0 + TT * c.ty + j;
    if (r < params.m && t < params.n) {
        put_y(t, r, v);
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row0 = wid.x * TM;
    let tok0 = wid.y * TN;
    tile_store(batch_tile(0u, 0u, TM, row0, tok0, li), put_ctx(row0, tok0, li, 0u));
}
