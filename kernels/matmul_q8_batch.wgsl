// matmul_q8_batch: Y = W X for a weight matrix of an int8 format and the int8 x of a batched decode
// step of 9 to 64 tokens (several sequences decoding together): the tiles of
// lib_q8_batch.wgsl (put in front, with the format's q8dot_<fmt>.wgsl), each weight tile read once for
// all the step's tokens. Same results as the nt matvecs and the prompt kernel up to the f32
// summation order: per block, the i32 dot product scaled once by d_w * d_x.
//
// Parameters and bindings: lib_q8_mat_io.wgsl (put in front).
// Dispatch: (ceil(m / TM), ceil(n / TN)) workgroups.


@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row0 = wid.x * TM;
    let tok0 = wid.y * TN;
    let acc = batch_tile(0u, 0u, TM, row0, tok0, li);
    for (var i = 0u; i < RT; i++) {
        let r = row0 + li % TX + TX * i;
        for (var j = 0u; j < TT; j++) {
            let t = tok0 + TT * (li / TX) + j;
            if (r < params.m && t < params.n) {
                put_y(t, r, acc[i * TT + j]);
            }
        }
    }
}
