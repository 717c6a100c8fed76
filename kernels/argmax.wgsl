// Index of the largest value of one row (the first on ties), for greedy sampling without
// reading the logits back. A single workgroup: the row is one vocabulary wide.

struct Params {
    off: u32,        // first element of the row
    len: u32,
    slot: u32,       // result index in R
    pad1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> R: array<u32>;

var<workgroup> bv: array<f32, 256>;
var<workgroup> bi: array<u32, 256>;

const NONE: u32 = 0xffffffffu;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
    var best = 0.0;
    var at = NONE;
    for (var j = li; j < P.len; j += 256u) {
        let v = X[P.off + j];
        if (at == NONE || v > best) {
            best = v;
            at = j;
        }
    }
    bv[li] = best;
    bi[li] = at;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (li < s) {
            let oi = bi[li + s];
            let ov = bv[li + s];
            let mi = bi[li];
            if (oi != NONE && (mi == NONE || ov > bv[li] || (ov == bv[li] && oi < mi))) {
                bv[li] = ov;
                bi[li] = oi;
            }
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        R[P.slot] = bi[0];
    }
}
