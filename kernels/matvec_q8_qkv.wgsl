// matvec_q8_qkv: one decode token's attention inputs in one dispatch: q = Wq x,
// k = Wk x, v = Wv x (quantized weights: q and k of one format, decoded by the
// q8dot_<fmt>.wgsl put in front, v of that format or another (Q4_K_M files: Q6_K in some
// layers), through the v8_ names, see lib_q8_v_same.wgsl; x as int8 blocks from
// quantize_x_q8.wgsl or rms_norm_q8.wgsl), rotary embedding
// of q and k at position pos, and k, v stored into the KV caches at row pos. Equal to
// matvec_q8.wgsl three times, then rope.wgsl twice and kv_store.wgsl (same dot products,
// reduction order and angle arithmetic). WG and ROWS: declared in front by the host.
//
// Rows are numbered over q, then k, then v (m_q + 2 m_kv in all); a workgroup owns ROWS
// (4) consecutive rows. head_dim is a multiple of 4, so a workgroup stays inside one of
// the three matrices and holds both rows (2j, 2j + 1) of every rotated pair: after the
// reduction, the thread of a row reads its partner's sum from workgroup memory.
// With NEOX (pairs (j, j + half_dims) of a head, half_dims even) the workgroup's four row
// slots of a rotated part of q or k take rows (j, j + half_dims, j + 1, j + 1 + half_dims)
// (slot_row), so partners are again neighbouring slots. NEOX is a constant the host puts in
// front (one pipeline per rope style), so the adjacent-pairs kernel carries none of it.
//
// Bindings (group 0):
//   0 params: uniform Params (below)
//   1 wq, 2 wk, 3 wv: array<u32>, read   rows as in matvec_q8.wgsl (one binding each)
//   4 xq: array<vec4<u32>>, read         k / 4 words of int8 x (read 4 words at a time)
//   5 xs: array<f32>, read               k / 32 scales of x
//   6 q:  array<f32>, read_write         q[r] for r < m_q
//   7 kc, 8 vc: array<KVS>, read_write   kc[k_dst + r], vc[v_dst + r] for r < m_kv
// KVS: the caches' element type, f32 or f16, and NEOX (declared in front of this file by the host).
// Dispatch: groups = (m_q + 2 m_kv) / ROWS, laid out as in matvec_q8.wgsl.
//
// Entry points: `main` (workgroup-memory reduction) and `main_subgroup` (subgroupAdd,
// between the SUBGROUPS-BEGIN/END markers, cut out by the host without the feature).

struct Params {
    k: u32,
    m_q: u32,        // n_head * head_dim
    m_kv: u32,       // n_head_kv * head_dim
    head_dim: u32,
    half_dims: u32,  // rotated pairs per head: (rope_dims + 1) / 2
    pos: u32,
    freq_scale: f32,
    k_dst: u32,      // pos * cache row length
    v_dst: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
    freqs: array<vec4<f32>, ROPE_MAX_PAIRS / 4u>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> wq: array<u32>;
@group(0) @binding(2) var<storage, read> wk: array<u32>;
@group(0) @binding(3) var<storage, read> wv: array<u32>;
@group(0) @binding(4) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> xs: array<f32>;
@group(0) @binding(6) var<storage, read_write> q: array<f32>;
@group(0) @binding(7) var<storage, read_write> kc: array<KVS>;
@group(0) @binding(8) var<storage, read_write> vc: array<KVS>;

const_assert ROWS == 4u; // the slots of two rotated pairs (finish, slot_row)

var<workgroup> partial: array<f32, WG * ROWS>;

// Word o of matrix sel (0 q, 1 k, 2 v; the same for the whole workgroup, so the branch is too).
fn wword(sel: u32, o: u32) -> u32 {
    if (sel == 0u) {
        return wq[o];
    }
    if (sel == 1u) {
        return wk[o];
    }
    return wv[o];
}

fn row_dot(which: u32, row: u32, u: u32, nu: u32, x: Q8X) -> f32 {
    return q8_dot(q8_unpack(q8_load(which, row, u, nu), row, u, nu), x);
}

// Partial dot products of invocation t for rows lr0 .. lr0 + ROWS - 1 of matrix `which`
// (0 q, 1 k, 2 v): the order of matvec_q8.wgsl's partial_dots. v's units may be of another
// format (v8_, see lib_q8_v_same.wgsl).
fn partial_dots(which: u32, lr0: u32, t: u32) -> array<f32, ROWS> {
    let nu = params.k / 32u;
    var acc: array<f32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        acc[r] = 0.0;
    }
    if (which == 2u) {
        for (var u = t; u < nu; u += WG) {
            let x = v8_x(0u, 0u, u);
            for (var r = 0u; r < ROWS; r++) {
                acc[r] += v8_dot(v8_unpack(v8_load(2u, lr0 + r, u, nu), lr0 + r, u, nu), x);
            }
        }
        return acc;
    }
    if (permuted(which, lr0)) {
        // slot r computes row rb + (r >> 1) + (r & 1) * half_dims (see slot_row)
        let rb = slot_row(which, lr0);
        for (var u = t; u < nu; u += WG) {
            let x = q8_x(0u, 0u, u);
            for (var r = 0u; r < ROWS; r++) {
                acc[r] += row_dot(which, rb + (r >> 1u) + (r & 1u) * params.half_dims, u, nu, x);
            }
        }
        return acc;
    }
    for (var u = t; u < nu; u += WG) {
        let x = q8_x(0u, 0u, u);
        for (var r = 0u; r < ROWS; r++) {
            acc[r] += row_dot(which, lr0 + r, u, nu, x);
        }
    }
    return acc;
}

// cos_sin and rope_elem: lib_rope.wgsl (put in front by the host).

// Row slot lr of matrix `which` lies in a rotated part of a head of q or k, with neox.
fn permuted(which: u32, lr: u32) -> bool {
    return NEOX && which != 2u && lr % params.head_dim < 2u * params.half_dims;
}

// The matrix row that row slot lr computes: itself, or with neox (permuted) slot 2j' + s of
// a head's rotated part takes dimension j' + s * half_dims.
fn slot_row(which: u32, lr: u32) -> u32 {
    if (!permuted(which, lr)) {
        return lr;
    }
    let d = lr % params.head_dim;
    return lr - d + (d >> 1u) + (d & 1u) * params.half_dims;
}

// Row slot lr of matrix `which` holds `own`; `mate` is its pair partner's sum (slot lr ^ 1).
// Rotates (q and k, dims below 2 * half_dims) and stores at slot_row.
fn finish(which: u32, lr: u32, own: f32, mate: f32) {
    if (which == 2u) {
        vc[params.v_dst + lr] = KVS(own);
        return;
    }
    var y = own;
    let d = lr % params.head_dim;
    let j = d >> 1u;
    if (j < params.half_dims) {
        let pos = f32(params.pos) * params.freq_scale;
        let cs = cos_sin(pos * params.freqs[j >> 2u][j & 3u]);
        if ((d & 1u) == 0u) {
            y = rope_elem(own, mate, false, cs); // a = own, b = mate
        } else {
            y = rope_elem(mate, own, true, cs);  // a = mate, b = own
        }
    }
    let at = slot_row(which, lr);
    if (which == 0u) {
        q[at] = y;
    } else {
        kc[params.k_dst + at] = KVS(y);
    }
}

// Which matrix rows row0 .. row0 + ROWS - 1 belong to, and the first one's index in it.
fn locate(row0: u32) -> vec2<u32> {
    if (row0 < params.m_q) {
        return vec2<u32>(0u, row0);
    }
    if (row0 < params.m_q + params.m_kv) {
        return vec2<u32>(1u, row0 - params.m_q);
    }
    return vec2<u32>(2u, row0 - params.m_q - params.m_kv);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
    let row0 = (wg.x + wg.y * nwg.x) * ROWS;
    if (row0 >= params.m_q + 2u * params.m_kv) {
        return;   // whole workgroup: uniform
    }
    let at = locate(row0);
    let acc = partial_dots(at.x, at.y, t);
    for (var r = 0u; r < ROWS; r++) {
        partial[r * WG + t] = acc[r];
    }
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if (t < half) {
            for (var r = 0u; r < ROWS; r++) {
                partial[r * WG + t] += partial[r * WG + t + half];
            }
        }
    }
    workgroupBarrier();
    if (t < ROWS) {
        finish(at.x, at.y + t, partial[t * WG], partial[(t ^ 1u) * WG]);
    }
}

// SUBGROUPS-BEGIN
var<workgroup> sg_partial: array<f32, (WG / 4u) * ROWS>;

@compute @workgroup_size(WG)
fn main_subgroup(@builtin(workgroup_id) wg: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) t: u32,
                 @builtin(subgroup_invocation_id) lane: u32,
                 @builtin(subgroup_size) sg_size: u32) {
    let row0 = (wg.x + wg.y * nwg.x) * ROWS;
    if (row0 >= params.m_q + 2u * params.m_kv) {
        return;
    }
    let at = locate(row0);
    let acc = partial_dots(at.x, at.y, t);
    let n_sg = (WG + sg_size - 1u) / sg_size;
    let sg = t / sg_size;
    for (var r = 0u; r < ROWS; r++) {
        let s = subgroupAdd(acc[r]);
        if (lane == 0u) {
            sg_partial[r * (WG / 4u) + sg] = s;
        }
    }
    workgroupBarrier();
    if (t < ROWS) {
        var own = 0.0;
        var mate = 0.0;
        for (var i = 0u; i < n_sg; i++) {
            own += sg_partial[t * (WG / 4u) + i];
            mate += sg_partial[(t ^ 1u) * (WG / 4u) + i];
        }
        finish(at.x, at.y + t, own, mate);
    }
}
// SUBGROUPS-END
