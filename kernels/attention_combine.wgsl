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

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let i = wid.y;
    // Four splits a step in both loops, their loads issued together: with one a step each
    // split's load waited for the one before (the merge of 16 splits took 15 us a layer in an
    // H100 profile, bench/RESULTS.md).
    let ns4 = P.n_split & ~3u;
    var mx = NEG;
    for (var s = 0u; s < ns4; s += 4u) {
        let a = part[attn_part(i, h, P.n_head, P.n_split, s, P.hd)];
        let b = part[attn_part(i, h, P.n_head, P.n_split, s + 1u, P.hd)];
        let c = part[attn_part(i, h, P.n_head, P.n_split, s + 2u, P.hd)];
        let d = part[attn_part(i, h, P.n_head, P.n_split, s + 3u, P.hd)];
        mx = max(mx, max(max(a, b), max(c, d)));
    }
    for (var s = ns4; s < P.n_split; s++) {
        mx = max(mx, part[attn_part(i, h, P.n_head, P.n_split, s, P.hd)]);
    }
    let dim = min(li, P.hd - 1u);   // threads past hd compute on the last dimension, store nothing
    var l = 0.0;
    var acc = 0.0;
    for (var s = 0u; s < ns4; s += 4u) {
        let pa = attn_part(i, h, P.n_head, P.n_split, s, P.hd);
        let pb = attn_part(i, h, P.n_head, P.n_split, s + 1u, P.hd);
        let pc = attn_part(i, h, P.n_head, P.n_split, s + 2u, P.hd);
        let pd = attn_part(i, h, P.n_head, P.n_split, s + 3u, P.hd);
        let m = vec4<f32>(part[pa], part[pb], part[pc], part[pd]);
        let ls = vec4<f32>(part[pa + 1u], part[pb + 1u], part[pc + 1u], part[pd + 1u]);
        let o = vec4<f32>(part[pa + 2u + dim], part[pb + 2u + dim], part[pc + 2u + dim], part[pd + 2u + dim]);
        let f = exp(m - vec4<f32>(mx));
        l += dot(ls, f);
        acc += dot(o, f);
    }
    for (var s = ns4; s < P.n_split; s++) {
        let pb = attn_part(i, h, P.n_head, P.n_split, s, P.hd);
        let f = exp(part[pb] - mx);
        l += part[pb + 1u] * f;
        acc += part[pb + 2u + dim] * f;
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
