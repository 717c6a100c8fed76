// Causal grouped-query attention over the KV cache. One workgroup per (query head, token):
// positions are visited in chunks of 256 (one score per thread), with a running maximum
// and sum (online softmax), so any context length works with fixed workgroup memory.
// For the weighted sum of values the 256 threads form 256 / head_dim groups; group g
// handles every G-th position of a chunk for all head_dim dimensions; the groups'
// partial sums are added at the end. Needs head_dim <= 256.

struct Params {
    n_head: u32,
    group: u32,      // query heads per kv head
    hd: u32,         // head_dim
    pos0: u32,
    q_stride: u32,   // row lengths of q, the caches, out
    kv_stride: u32,
    out_stride: u32,
    scale: f32,      // 1 / sqrt(head_dim)
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> Kc: array<f32>;
@group(0) @binding(3) var<storage, read> Vc: array<f32>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;

const CH: u32 = 256u;
// Below any finite score; exp(NEG - m) is 0 for any real m.
const NEG: f32 = -3.0e38;

var<workgroup> qs: array<f32, 256>;
var<workgroup> sc: array<f32, 256>;
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let i = wid.y;
    let hd = P.hd;
    let n_pos = P.pos0 + i + 1u;
    let kvo = (h / P.group) * hd;
    if (li < hd) {
        qs[li] = Q[i * P.q_stride + h * hd + li];
    }
    workgroupBarrier();

    let ng = CH / hd;      // groups in the weighted sum
    let g = li / hd;
    let d = li % hd;
    var m_run = NEG;
    var l_run = 0.0;
    var o = 0.0;
    for (var c0 = 0u; c0 < n_pos; c0 += CH) {
        let t = c0 + li;
        var s = NEG;
        if (t < n_pos) {
            let kb = t * P.kv_stride + kvo;
            var acc = 0.0;
            for (var e = 0u; e < hd; e++) {
                acc += qs[e] * Kc[kb + e];
            }
            s = acc * P.scale;
        }
        red[li] = s;
        workgroupBarrier();
        for (var st = 128u; st > 0u; st >>= 1u) {
            if (li < st) {
                red[li] = max(red[li], red[li + st]);
            }
            workgroupBarrier();
        }
        let m_new = max(m_run, red[0]);
        workgroupBarrier();
        var p = 0.0;
        if (t < n_pos) {
            p = exp(s - m_new);
        }
        sc[li] = p;
        red[li] = p;
        workgroupBarrier();
        for (var st = 128u; st > 0u; st >>= 1u) {
            if (li < st) {
                red[li] += red[li + st];
            }
            workgroupBarrier();
        }
        let alpha = exp(m_run - m_new);
        l_run = l_run * alpha + red[0];
        m_run = m_new;
        o *= alpha;
        let clen = min(CH, n_pos - c0);
        if (g < ng) {
            for (var tt = g; tt < clen; tt += ng) {
                o += sc[tt] * Vc[(c0 + tt) * P.kv_stride + kvo + d];
            }
        }
        workgroupBarrier();
    }
    // Partial sums of the groups, summed per dimension.
    red[li] = o;
    workgroupBarrier();
    if (li < hd) {
        var sum = 0.0;
        for (var gg = 0u; gg < ng; gg++) {
            sum += red[gg * hd + li];
        }
        O[i * P.out_stride + h * hd + li] = sum / l_run;
    }
}
