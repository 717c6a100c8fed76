// Pieces of causal attention shared by attention.wgsl (one query row a workgroup, decode),
// attention_flash.wgsl (tiles of query rows, prompts) and attention_combine.wgsl (the merge
// of split partials): the positions a query sees, the online-softmax step and the layout
// of the partials. Put in front of a kernel by the host.

// Below any finite score; exp(NEG - m) is 0 for any real m.
const NEG: f32 = -3.0e38;

// The first position a query at position p sees: 0, or with a sliding window of `window`
// positions (0: none) p - window + 1. It sees positions first .. p.
fn attn_first(p: u32, window: u32) -> u32 {
    if (window != 0u && p + 1u > window) {
        return p + 1u - window;
    }
    return 0u;
}

// One step of the online softmax: the running maximum m_run and the maximum of a new chunk
// of scores give (the new maximum, the factor alpha for what was summed so far). Sums and
// outputs become sum * alpha + sum of exp(s - m_new) over the chunk.
fn softmax_step(m_run: f32, chunk_max: f32) -> vec2<f32> {
    let m_new = max(m_run, chunk_max);
    return vec2<f32>(m_new, exp(m_run - m_new));
}

// First float of the partial of (token i, head h, split s): maximum, sum, then hd outputs.
fn attn_part(i: u32, h: u32, n_head: u32, n_split: u32, s: u32, hd: u32) -> u32 {
    return ((i * n_head + h) * n_split + s) * (hd + 2u);
}
