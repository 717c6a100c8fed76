// Causal grouped-query attention over the KV cache (numerically safe softmax), over all
// earlier positions or the last `window` of them (sliding window).
// One workgroup per (query head, token, split): a split is a range of positions, visited
// in chunks of 256 (one score per thread) with a running maximum and sum (online softmax),
// so any context length works with fixed workgroup memory. With one split the result is
// written directly; with several (decode: few tokens, long context), each split writes its
// maximum, sum and unnormalised output to `part` and attention_combine.wgsl merges them.
// The scores of a chunk are computed by teams of TK threads per position, each thread a
// strided share of the key's vec4s, so that a team reads its key row in consecutive words
// (one thread per whole row made every load of a subgroup touch as many rows as threads);
// the teams' partial dots meet in workgroup memory. For the weighted sum of values the
// threads form groups of head_dim / 4 (one vec4 of dimensions each); group g takes every
// G-th position of a chunk. Needs head_dim <= 256 and head_dim, the cache row length a
// multiple of 4.
// q8 != 0 (decode, one split, head_dim a multiple of 32): out is also written as int8
// blocks of 32 with f32 scales (XQ, XS: quantize_x_q8.wgsl's layout and rule, bit for bit),
// for the Q4_0 x int8 matvec that reads it next; needs row0 = 0 and out_stride = the row
// length that matvec quantizes.
// per_row != 0 (several sequences decoding one token each): token i has its own position
// and KV cache, given in rows[i], and q may be rotated here (half_dims > 0) instead of by a
// rope dispatch (lib_rope.wgsl is put in front). NEG, the window's bounds, the softmax step
// and the partials' layout come from lib_attention.wgsl.

struct Params {
    n_head: u32,
    group: u32,      // query heads per kv head
    hd: u32,         // head_dim
    pos0: u32,
    q_stride: u32,   // row lengths of q, the caches, out
    kv_stride: u32,
    out_stride: u32,
    scale: f32,      // 1 / sqrt(head_dim)
    n_split: u32,
    split_len: u32,  // positions per split (a multiple of 256)
    row0: u32,       // first row of q and out
    q8: u32,         // also write out as int8 blocks (see above)
    per_row: u32,    // != 0: token i's position and caches come from rows[i] (a batch of sequences)
    half_dims: u32,  // per_row and > 0: q is rotated first (rope_dims / 2 pairs per head, as rope.wgsl)
    freq_scale: f32,
    window: u32,     // > 0: a query at position p attends to positions max(0, p - window + 1) .. p
    neox: u32,       // != 0: q's rotated pairs are halves, as rope.wgsl's neox
    pad0: u32,
    pad1: u32,
    pad2: u32,
    // per_row: (position, first vec4 of the sequence's K cache, of its V cache, unused);
    // the caches of all sequences lie in the bound K and V arenas
    rows: array<vec4<u32>, DECODE_MAX_ROWS>,
    freqs: array<vec4<f32>, ROPE_MAX_PAIRS / 4u>,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
// KV4: vec4 of the cache's element type, f32 or f16 (declared in front of this file by the host).
@group(0) @binding(2) var<storage, read> Kc: array<KV4>;
@group(0) @binding(3) var<storage, read> Vc: array<KV4>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
@group(0) @binding(5) var<storage, read_write> part: array<f32>;
@group(0) @binding(6) var<storage, read_write> XQ: array<u32>;
@group(0) @binding(7) var<storage, read_write> XS: array<f32>;

const CH: u32 = ATTN_WG; // the host's shapes, put in front
const TK: u32 = 8u;       // threads per position in the scores: a power of 2, at least 4, dividing CH

var<workgroup> qs: array<vec4<f32>, ATTN_WG / 4u>;
var<workgroup> sc: array<f32, ATTN_WG>;
var<workgroup> red: array<f32, ATTN_WG>;
// The teams' partial dots of a chunk (TK floats a position, as TK / 4 vec4s), then the
// groups' partial outputs at the end (the first ATTN_WG entries).
var<workgroup> red4: array<vec4<f32>, ATTN_WG * TK / 4u>;

// The entry point and the two softmax reductions come in two versions: with subgroup
// operations (2 barriers per reduction) and with a workgroup-memory tree (8). The host keeps
// one of the sections marked below, as the device has the "subgroups" feature or not.

// SUBGROUPS-BEGIN
// One slot per subgroup; subgroups are consecutive runs of local_invocation_index, at least
// 4 wide (see matvec_q4_0_q8.wgsl).
var<workgroup> sg_red: array<f32, ATTN_WG / 4u>;

@compute @workgroup_size(ATTN_WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(subgroup_size) sgs: u32, @builtin(subgroup_invocation_id) lane: u32) {
    attend(li, wid, sgs, lane);
}

// The maximum (is_max) or the sum of v over the workgroup, returned to every thread.
fn reduce(v: f32, is_max: bool, li: u32, sgs: u32, lane: u32) -> f32 {
    let r = select(subgroupAdd(v), subgroupMax(v), is_max);
    if (lane == 0u) {
        sg_red[li / sgs] = r;
    }
    workgroupBarrier();
    var acc = sg_red[0];
    for (var i = 1u; i < ATTN_WG / sgs; i++) {
        acc = select(acc + sg_red[i], max(acc, sg_red[i]), is_max);
    }
    workgroupBarrier();
    return acc;
}
// SUBGROUPS-END
// NO-SUBGROUPS-BEGIN
@compute @workgroup_size(ATTN_WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    attend(li, wid, 0u, 0u);
}

fn reduce(v: f32, is_max: bool, li: u32, sgs: u32, lane: u32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var st = ATTN_WG / 2u; st > 0u; st >>= 1u) {
        if (li < st) {
            red[li] = select(red[li] + red[li + st], max(red[li], red[li + st]), is_max);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}
// NO-SUBGROUPS-END

fn attend(li: u32, wid: vec3<u32>, sgs: u32, lane: u32) {
    let h = wid.x / P.n_split;
    let split = wid.x % P.n_split;
    let i = wid.y;
    let hd4 = P.hd / 4u;
    var n_pos = P.pos0 + i + 1u;
    let kvs4 = P.kv_stride / 4u;
    var kvo4 = (h / P.group) * hd4; // this head's first vec4 in a K row
    var vvo4 = kvo4;                // ... in a V row
    if (P.per_row != 0u) {
        let r = P.rows[i];
        n_pos = r.x + 1u;
        kvo4 += r.y;
        vvo4 += r.z;
    }
    if (li < P.hd) {
        let qb = (P.row0 + i) * P.q_stride + h * P.hd;
        var qv = Q[qb + li];
        let rp = rope_pair(li, P.half_dims, P.neox != 0u);
        let j = rp.x;
        if (P.per_row != 0u && j < P.half_dims) {
            let cs = cos_sin(f32(P.rows[i].x) * P.freq_scale * P.freqs[j >> 2u][j & 3u]);
            let odd = rp.z == 1u;
            let mate = Q[qb + rp.y];
            qv = rope_elem(select(qv, mate, odd), select(mate, qv, odd), odd, cs);
        }
        qs[li / 4u][li % 4u] = qv;
    }
    workgroupBarrier();

    let ng = CH / hd4;     // groups in the weighted sum
    let g = li / hd4;
    let d4 = li % hd4;
    var m_run = NEG;
    var l_run = 0.0;
    var o = vec4<f32>(0.0);
    let lo = attn_first(n_pos - 1u, P.window); // the first position attended to
    let start = lo + split * P.split_len;
    let stop = min(n_pos, start + P.split_len);
    let tk = li % TK;      // this thread's lane in its scoring team
    let tp = li / TK;      // its team's position within a pass of CH / TK positions
    for (var c0 = start; c0 < stop; c0 += CH) {
        // four passes a step, their loads issued together (each step is a memory round trip
        // of every thread); a row past the chunk is read at the chunk's last row (valid
        // memory) and its score never used
        for (var j = 0u; j < TK; j += 4u) {
            if (c0 + j * (CH / TK) >= stop) {
                break;   // uniform: no position of these passes is in the chunk
            }
            let ta = j * (CH / TK) + tp;
            let k0 = min(c0 + ta, stop - 1u) * kvs4 + kvo4;
            let k1 = min(c0 + ta + CH / TK, stop - 1u) * kvs4 + kvo4;
            let k2 = min(c0 + ta + 2u * (CH / TK), stop - 1u) * kvs4 + kvo4;
            let k3 = min(c0 + ta + 3u * (CH / TK), stop - 1u) * kvs4 + kvo4;
            var acc = vec4<f32>(0.0);
            for (var e = tk; e < hd4; e += TK) {
                let qe = qs[e];
                acc += vec4<f32>(dot(qe, vec4<f32>(Kc[k0 + e])), dot(qe, vec4<f32>(Kc[k1 + e])),
                                 dot(qe, vec4<f32>(Kc[k2 + e])), dot(qe, vec4<f32>(Kc[k3 + e])));
            }
            for (var r = 0u; r < 4u; r++) {
                red4[(ta + r * (CH / TK)) * (TK / 4u) + tk / 4u][tk % 4u] = acc[r];
            }
        }
        workgroupBarrier();
        let t = c0 + li;
        var s = NEG;
        if (t < stop) {
            var acc4 = vec4<f32>(0.0);
            for (var k = 0u; k < TK / 4u; k++) {
                acc4 += red4[li * (TK / 4u) + k];
            }
            s = (acc4.x + acc4.y + acc4.z + acc4.w) * P.scale;
        }
        let step = softmax_step(m_run, reduce(s, true, li, sgs, lane));
        let m_new = step.x;
        var p = 0.0;
        if (t < stop) {
            p = exp(s - m_new);
        }
        sc[li] = p;
        let p_sum = reduce(p, false, li, sgs, lane); // its barriers also publish sc
        let alpha = step.y;
        l_run = l_run * alpha + p_sum;
        m_run = m_new;
        o *= alpha;
        let clen = min(CH, stop - c0);
        if (g < ng) {
            // eight rows a step, then four, their loads issued together (short contexts wait
            // on latency)
            var tt = g;
            for (; tt + 7u * ng < clen; tt += 8u * ng) {
                let vb = (c0 + tt) * kvs4 + vvo4 + d4;
                let v0 = vec4<f32>(Vc[vb]);
                let v1 = vec4<f32>(Vc[vb + ng * kvs4]);
                let v2 = vec4<f32>(Vc[vb + 2u * ng * kvs4]);
                let v3 = vec4<f32>(Vc[vb + 3u * ng * kvs4]);
                let v4 = vec4<f32>(Vc[vb + 4u * ng * kvs4]);
                let v5 = vec4<f32>(Vc[vb + 5u * ng * kvs4]);
                let v6 = vec4<f32>(Vc[vb + 6u * ng * kvs4]);
                let v7 = vec4<f32>(Vc[vb + 7u * ng * kvs4]);
                o += sc[tt] * v0 + sc[tt + ng] * v1 + sc[tt + 2u * ng] * v2 + sc[tt + 3u * ng] * v3 +
                     sc[tt + 4u * ng] * v4 + sc[tt + 5u * ng] * v5 + sc[tt + 6u * ng] * v6 + sc[tt + 7u * ng] * v7;
            }
            for (; tt + 3u * ng < clen; tt += 4u * ng) {
                let vb = (c0 + tt) * kvs4 + vvo4 + d4;
                let v0 = vec4<f32>(Vc[vb]);
                let v1 = vec4<f32>(Vc[vb + ng * kvs4]);
                let v2 = vec4<f32>(Vc[vb + 2u * ng * kvs4]);
                let v3 = vec4<f32>(Vc[vb + 3u * ng * kvs4]);
                o += sc[tt] * v0 + sc[tt + ng] * v1 + sc[tt + 2u * ng] * v2 + sc[tt + 3u * ng] * v3;
            }
            for (; tt < clen; tt += ng) {
                o += sc[tt] * vec4<f32>(Vc[(c0 + tt) * kvs4 + vvo4 + d4]);
            }
        }
        workgroupBarrier();
    }
    // Partial sums of the groups, summed per dimension.
    red4[li] = o;
    workgroupBarrier();
    var v = vec4<f32>(0.0);   // this thread's 4 outputs (n_split == 1)
    if (li < hd4) {
        var sum = vec4<f32>(0.0);
        for (var gg = 0u; gg < ng; gg++) {
            sum += red4[gg * hd4 + li];
        }
        if (P.n_split == 1u) {
            let ob = (P.row0 + i) * P.out_stride + h * P.hd + li * 4u;
            v = sum / l_run;
            O[ob] = v.x;
            O[ob + 1u] = v.y;
            O[ob + 2u] = v.z;
            O[ob + 3u] = v.w;
        } else {
            let pb = attn_part(i, h, P.n_head, P.n_split, split, P.hd);
            if (li == 0u) {
                part[pb] = m_run;
                part[pb + 1u] = l_run;
            }
            part[pb + 2u + li * 4u] = sum.x;
            part[pb + 3u + li * 4u] = sum.y;
            part[pb + 4u + li * 4u] = sum.z;
            part[pb + 5u + li * 4u] = sum.w;
        }
    }
    if (P.q8 == 0u) {
        return;   // uniform
    }
    // int8 blocks: one packed word per thread, 8 threads per block of 32
    let a = abs(v);
    red[li] = max(max(a.x, a.y), max(a.z, a.w));
    workgroupBarrier();
    if (li < hd4) {
        let first = li & ~7u;
        var amax = red[first];
        for (var j = 1u; j < 8u; j++) {
            amax = max(amax, red[first + j]);
        }
        let d = q8_scale(amax);
        let word = (P.row0 + i) * (P.out_stride / 4u) + h * hd4 + li;
        XQ[word] = q8_pack4(v, d);
        if ((li & 7u) == 0u) {
            XS[word / 8u] = d;
        }
    }
}
