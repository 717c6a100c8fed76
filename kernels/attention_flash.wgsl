// Flash attention for prompts: the causal grouped-query attention of attention.wgsl over the
// KV cache, for many query rows at once. A query row is a (token, head) pair; the rows of one
// kv head are taken token by token, the heads of its group side by side, and a workgroup
// takes ROWS of them, so one K/V tile serves all heads that share it (GQA). The workgroup
// walks its positions in tiles of BC: K, then V, of a tile are loaded once into workgroup
// memory (as f32) for all its rows, with the online softmax per row (lib_attention.wgsl).
// Masks (causal, sliding window) are applied only on the tiles that cross a row's edge.
// n_split > 1 (few rows over a long cache): workgroup x % n_split takes that share of the
// workgroup's positions and writes partials for attention_combine.wgsl.
//
// Threads: ROWS / 4 row groups of TX threads. A thread holds 4 consecutive rows: their
// scores at positions tx, tx + TX, ... of a tile, and their outputs at vec4s tx, tx + TX, ...
// of head_dim. The host declares in front: KV4 (a vec4 of the cache's element type), HD
// (head_dim, a multiple of 4 * TX), ROWS, BC (a multiple of TX), TX and WG_MEM (the
// workgroup memory the tiles must fit in).

struct Params {
    n_head: u32,
    group: u32,      // query heads per kv head
    n_rows: u32,     // tokens * group: query rows per kv head
    pos0: u32,       // position of the first token
    q_stride: u32,   // row lengths of q, the caches, out
    kv_stride: u32,
    out_stride: u32,
    scale: f32,      // 1 / sqrt(head_dim)
    n_split: u32,
    row0: u32,       // first row of q and out
    window: u32,     // > 0: sliding window (lib_attention.wgsl's attn_first)
    pad0: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> Kc: array<KV4>;
@group(0) @binding(3) var<storage, read> Vc: array<KV4>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
@group(0) @binding(5) var<storage, read_write> part: array<f32>;

const HD4: u32 = HD / 4u;
const TR: u32 = 4u;          // rows a thread
const RG: u32 = ROWS / TR;   // row groups
const WG: u32 = RG * TX;
const TC: u32 = BC / TX;     // scores a row a thread, per tile
const DV: u32 = HD4 / TX;    // output vec4s a row a thread
const KP: u32 = HD4 + 1u;    // tile row stride in vec4s: the pad spreads a column over the banks

const_assert ROWS % TR == 0u && BC % TX == 0u && HD4 % TX == 0u;
const_assert 16u * (ROWS * HD4 + BC * KP + BC * RG) <= WG_MEM;

var<workgroup> qs: array<vec4<f32>, ROWS * HD4>; // the rows' q, scaled
var<workgroup> kvs: array<vec4<f32>, BC * KP>;   // the tile of K, then of V
var<workgroup> ps: array<vec4<f32>, BC * RG>;    // per position and row group: its 4 rows' scores, then weights

// Rows past the last repeat it (their results are not written).
fn token_of(r: u32) -> u32 {
    return min(r, P.n_rows - 1u) / P.group;
}

fn head_of(kvh: u32, r: u32) -> u32 {
    return kvh * P.group + min(r, P.n_rows - 1u) % P.group;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let kvh = wid.y;
    let split = wid.x % P.n_split;
    let r0 = (wid.x / P.n_split) * ROWS; // the workgroup's first row
    let ty = li / TX;
    let tx = li % TX;
    let kvs4 = P.kv_stride / 4u;
    let kvo4 = kvh * HD4; // the kv head's first vec4 in a cache row

    // The positions the workgroup's rows see, [lo, hi), and this split's share of them.
    let t_first = token_of(r0);
    let t_last = token_of(r0 + ROWS - 1u);
    let lo = attn_first(P.pos0 + t_first, P.window);
    let hi_all = P.pos0 + t_last + 1u;
    let share = (hi_all - lo + P.n_split - 1u) / P.n_split;
    let split_len = (share + BC - 1u) / BC * BC;
    let start = lo + split * split_len;
    let hi = min(hi_all, start + split_len);
    // Tiles from here on cross a row's causal edge; tiles before lo_edge cross a window edge.
    let causal_edge = P.pos0 + t_first;
    let lo_edge = attn_first(P.pos0 + t_last, P.window);

    for (var e = li; e < ROWS * HD4; e += WG) {
        let r = r0 + e / HD4;
        let qb = (P.row0 + token_of(r)) * P.q_stride + head_of(kvh, r) * HD + (e % HD4) * 4u;
        qs[e] = vec4<f32>(Q[qb], Q[qb + 1u], Q[qb + 2u], Q[qb + 3u]) * P.scale;
    }

    // This thread's rows: the last and first positions each sees, running max and sum, outputs.
    var p_last: array<u32, TR>;
    var p_first: array<u32, TR>;
    var m: array<f32, TR>;
    var l: array<f32, TR>;
    var o: array<vec4<f32>, TR * DV>;
    for (var i = 0u; i < TR; i++) {
        p_last[i] = P.pos0 + token_of(r0 + ty * TR + i);
        p_first[i] = attn_first(p_last[i], P.window);
        m[i] = NEG;
        l[i] = 0.0;
        for (var j = 0u; j < DV; j++) {
            o[i * DV + j] = vec4<f32>(0.0);
        }
    }

    for (var c0 = start; c0 < hi; c0 += BC) {
        workgroupBarrier(); // the last tile's V is read (and, the first time, q is stored)
        for (var e = li; e < BC * HD4; e += WG) {
            let t = c0 + e / HD4;
            var kv = vec4<f32>(0.0);
            if (t < hi) {
                kv = vec4<f32>(Kc[t * kvs4 + kvo4 + e % HD4]);
            }
            kvs[(e / HD4) * KP + e % HD4] = kv;
        }
        workgroupBarrier();

        // scores s[i * TC + j]: row ty * TR + i, position c0 + tx + j * TX
        var s: array<f32, TR * TC>;
        for (var j = 0u; j < TC; j++) {
            for (var i = 0u; i < TR; i++) {
                s[i * TC + j] = 0.0;
            }
        }
        for (var d = 0u; d < HD4; d++) {
            var q: array<vec4<f32>, TR>;
            for (var i = 0u; i < TR; i++) {
                q[i] = qs[(ty * TR + i) * HD4 + d];
            }
            for (var j = 0u; j < TC; j++) {
                let k = kvs[(tx + j * TX) * KP + d];
                for (var i = 0u; i < TR; i++) {
                    s[i * TC + j] += dot(q[i], k);
                }
            }
        }
        if (c0 + BC - 1u > causal_edge || c0 < lo_edge || c0 + BC > hi) {
            for (var j = 0u; j < TC; j++) {
                let t = c0 + tx + j * TX;
                for (var i = 0u; i < TR; i++) {
                    if (t > p_last[i] || t < p_first[i] || t >= hi) {
                        s[i * TC + j] = NEG;
                    }
                }
            }
        }
        for (var j = 0u; j < TC; j++) {
            ps[(tx + j * TX) * RG + ty] = vec4<f32>(s[j], s[TC + j], s[2u * TC + j], s[3u * TC + j]);
        }
        workgroupBarrier();

        var mx = vec4<f32>(NEG);
        for (var c = 0u; c < BC; c++) {
            mx = max(mx, ps[c * RG + ty]);
        }
        var alpha: array<f32, TR>;
        for (var i = 0u; i < TR; i++) {
            let st = softmax_step(m[i], mx[i]);
            m[i] = st.x;
            alpha[i] = st.y;
        }
        workgroupBarrier(); // the scores are read: weights and V take their places
        for (var j = 0u; j < TC; j++) {
            var w = vec4<f32>(0.0);
            for (var i = 0u; i < TR; i++) {
                let sc = s[i * TC + j];
                w[i] = select(exp(sc - m[i]), 0.0, sc <= NEG); // masked: 0 also while m is NEG
            }
            ps[(tx + j * TX) * RG + ty] = w;
        }
        for (var e = li; e < BC * HD4; e += WG) {
            let t = c0 + e / HD4;
            var kv = vec4<f32>(0.0);
            if (t < hi) {
                kv = vec4<f32>(Vc[t * kvs4 + kvo4 + e % HD4]);
            }
            kvs[(e / HD4) * KP + e % HD4] = kv;
        }
        workgroupBarrier();

        var sum = vec4<f32>(0.0);
        for (var i = 0u; i < TR; i++) {
            for (var j = 0u; j < DV; j++) {
                o[i * DV + j] *= alpha[i];
            }
        }
        for (var c = 0u; c < BC; c++) {
            let w = ps[c * RG + ty];
            sum += w;
            for (var j = 0u; j < DV; j++) {
                let v = kvs[c * KP + tx + j * TX];
                for (var i = 0u; i < TR; i++) {
                    o[i * DV + j] += w[i] * v;
                }
            }
        }
        for (var i = 0u; i < TR; i++) {
            l[i] = l[i] * alpha[i] + sum[i];
        }
    }

    for (var i = 0u; i < TR; i++) {
        let r = r0 + ty * TR + i;
        if (r >= P.n_rows) {
            break;
        }
        let t = token_of(r);
        let h = head_of(kvh, r);
        if (P.n_split == 1u) {
            let ob = (P.row0 + t) * P.out_stride + h * HD;
            for (var j = 0u; j < DV; j++) {
                let v = o[i * DV + j] / l[i];
                let d = ob + (tx + j * TX) * 4u;
                O[d] = v.x;
                O[d + 1u] = v.y;
                O[d + 2u] = v.z;
                O[d + 3u] = v.w;
            }
        } else {
            let pb = attn_part(t, h, P.n_head, P.n_split, split, HD);
            if (tx == 0u) {
                part[pb] = m[i];
                part[pb + 1u] = l[i];
            }
            for (var j = 0u; j < DV; j++) {
                let v = o[i * DV + j];
                let d = pb + 2u + (tx + j * TX) * 4u;
                part[d] = v.x;
                part[d + 1u] = v.y;
                part[d + 2u] = v.z;
                part[d + 3u] = v.w;
            }
        }
    }
}
