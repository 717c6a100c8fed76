// Merges the per-split results of attention.wgsl and attention_flash.wgsl (their layout:
// lib_attention.wgsl's attn_part): out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M)
// with M the largest split maximum. One workgroup per (query head, token).
// q8 != 0: out is also written as int8 blocks (see attention.wgsl's q8).

struct Params {
    n_head: u32,
    hd: u32,
    n_split: u32,
    out_stride: u32,
    row0: u32,       // first row of out
    q8: u32,         // also write out as int8 blocks
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
@group(0) @binding(3) var<storage, read_write> XQ: array<u32>;
@group(0) @binding(4) var<storage, read_write> XS: array<f32>;

var<workgroup> vals: array<f32, 256>;
var<workgroup> lane_amax: array<f32, 64>;
var<workgroup> wts: array<f32, 256>;   // a chunk's split weights e^(m_s - M)
var<workgroup> lws: array<f32, 256>;   // and its sums l_s e^(m_s - M)

// Every load below is issued with its neighbours: the merge is a few dependent memory round
// trips (a split a step made 16 of them, and took 15 us a layer in an H100 profile,
// bench/RESULTS.md).
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let i = wid.y;
    let p0 = attn_part(i, h, P.n_head, P.n_split, 0u, P.hd); // split s at p0 + s * ps
    let ps = attn_part(i, h, P.n_head, P.n_split, 1u, P.hd) - p0; // the layout is lib_attention.wgsl's
    // M: the largest split maximum, thread li reading splits li, li + 256, ...
    var mx = NEG;
    for (var s = li; s < P.n_split; s += 256u) {
        mx = max(mx, part[p0 + s * ps]);
    }
    vals[li] = mx;
    for (var st = 128u; st > 0u; st >>= 1u) {
        workgroupBarrier();
        if (li < st) {
            vals[li] = max(vals[li], vals[li + st]);
        }
    }
    workgroupBarrier();
    mx = vals[0];
    let dim = min(li, P.hd - 1u);   // threads past hd compute on the last dimension, store nothing
    var l = 0.0;
    var acc = 0.0;
    // chunks of 256 splits: their weights in workgroup memory, then each dimension's sum
    for (var base = 0u; base < P.n_split; base += 256u) {
        let s = base + li;
        var wt = 0.0;
        var lw = 0.0;
        if (s < P.n_split) {
            wt = exp(part[p0 + s * ps] - mx);
            lw = part[p0 + s * ps + 1u] * wt;
        }
        wts[li] = wt;
        lws[li] = lw;
        workgroupBarrier();
        let cnt = min(256u, P.n_split - base);
        let o = p0 + base * ps + 2u + dim;
        var j = 0u;
        for (; j + 8u <= cnt; j += 8u) {
            let a = vec4<f32>(part[o + j * ps], part[o + (j + 1u) * ps], part[o + (j + 2u) * ps],
                              part[o + (j + 3u) * ps]);
            let b = vec4<f32>(part[o + (j + 4u) * ps], part[o + (j + 5u) * ps], part[o + (j + 6u) * ps],
                              part[o + (j + 7u) * ps]);
            acc += dot(a, vec4<f32>(wts[j], wts[j + 1u], wts[j + 2u], wts[j + 3u])) +
                   dot(b, vec4<f32>(wts[j + 4u], wts[j + 5u], wts[j + 6u], wts[j + 7u]));
            l += lws[j] + lws[j + 1u] + lws[j + 2u] + lws[j + 3u] + lws[j + 4u] + lws[j + 5u] + lws[j + 6u] +
                 lws[j + 7u];
        }
        for (; j < cnt; j++) {
            acc += part[o + j * ps] * wts[j];
            l += lws[j];
        }
        workgroupBarrier();   // the next chunk overwrites wts, lws
    }
    let y = acc / l;
    if (li < P.hd) {
        O[(P.row0 + i) * P.out_stride + h * P.hd + li] = y;
    }
    if (P.q8 == 0u) {
        return;   // uniform
    }
    // int8 blocks as quantize_x_q8.wgsl makes them: thread w < hd / 4 packs elements 4w .. 4w + 3
    vals[li] = y;
    workgroupBarrier();
    let hd4 = P.hd / 4u;
    var v = vec4<f32>(0.0);
    if (li < hd4) {
        v = vec4<f32>(vals[4u * li], vals[4u * li + 1u], vals[4u * li + 2u], vals[4u * li + 3u]);
        let a = abs(v);
        lane_amax[li] = max(max(a.x, a.y), max(a.z, a.w));
    }
    workgroupBarrier();
    if (li < hd4) {
        let first = li & ~7u;
        var amax = lane_amax[first];
        for (var j = 1u; j < 8u; j++) {
            amax = max(amax, lane_amax[first + j]);
        }
        let d = q8_scale(amax);
        let word = (P.row0 + i) * (P.out_stride / 4u) + h * hd4 + li;
        XQ[word] = q8_pack4(v, d);
        if ((li & 7u) == 0u) {
            XS[word / 8u] = d;
        }
    }
}
