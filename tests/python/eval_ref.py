"""Float64 numpy references for `wgllm perplexity` and `wgllm imatrix`.

window_logits() runs the Llama forward pass of llama_ref.py over a whole window
at once (causal attention as a masked matrix product instead of a loop over
positions), so that thousands of tokens take seconds; test_perplexity checks it
against llama_ref.logits first. It can record, for every weight matrix, the sum
over tokens of the squared entries of that matrix's input (what an importance
matrix holds).
"""

import numpy as np

import llama_ref


def _rmsnorm_rows(x, weight, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def _rope_rows(x, n_rot, base):
    """x: (L, n_heads, head_dim); row i is at position i."""
    out = x.copy()
    pos = np.arange(x.shape[0], dtype=np.float64)[:, None]
    i = np.arange(n_rot // 2, dtype=np.float64)[None, :]
    theta = pos * base ** (-2.0 * i / n_rot)  # (L, n_rot/2)
    c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    a, b = x[:, :, 0:n_rot:2], x[:, :, 1:n_rot:2]
    out[:, :, 0:n_rot:2] = a * c - b * s
    out[:, :, 1:n_rot:2] = a * s + b * c
    return out


def _record(sums, name, x):
    if sums is not None:
        sums[name] = sums.get(name, 0.0) + np.sum(x * x, axis=0)


def window_logits(m, ids, sums=None):
    """float64 [len(ids), n_vocab] logits of one window evaluated from an empty cache.
    With a dict `sums`, adds each matmul input's column sums of squares under the
    weight's GGUF name (the output matrix as output.weight, or token_embd.weight when tied)."""
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    x = m.tok_embd[ids].copy()  # (L, dim)
    group = m.n_head // m.n_head_kv
    mask = np.triu(np.full((n, n), -np.inf), k=1)
    for l, layer in enumerate(m.layers):
        p = f"blk.{l}."
        xb = _rmsnorm_rows(x, layer.attn_norm, m.eps)
        for w in ("attn_q", "attn_k", "attn_v"):
            _record(sums, p + w + ".weight", xb)
        q = _rope_rows((xb @ layer.wq.T).reshape(n, m.n_head, m.head_dim), m.n_rot, m.rope_base)
        k = _rope_rows((xb @ layer.wk.T).reshape(n, m.n_head_kv, m.head_dim), m.n_rot, m.rope_base)
        v = (xb @ layer.wv.T).reshape(n, m.n_head_kv, m.head_dim)
        heads = np.zeros((n, m.n_head, m.head_dim))
        for h in range(m.n_head):
            kv = h // group
            scores = q[:, h] @ k[:, kv].T / np.sqrt(m.head_dim) + mask  # (L, L)
            scores -= scores.max(axis=1, keepdims=True)
            att = np.exp(scores)
            att /= att.sum(axis=1, keepdims=True)
            heads[:, h] = att @ v[:, kv]
        att_out = heads.reshape(n, -1)
        _record(sums, p + "attn_output.weight", att_out)
        x = x + att_out @ layer.wo.T
        xb = _rmsnorm_rows(x, layer.ffn_norm, m.eps)
        _record(sums, p + "ffn_gate.weight", xb)
        _record(sums, p + "ffn_up.weight", xb)
        hidden = llama_ref.silu(xb @ layer.w_gate.T) * (xb @ layer.w_up.T)
        _record(sums, p + "ffn_down.weight", hidden)
        x = x + hidden @ layer.w_down.T
    xb = _rmsnorm_rows(x, m.output_norm, m.eps)
    _record(sums, "token_embd.weight" if m.tied else "output.weight", xb)
    return xb @ m.output.T


def log_softmax(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def windows(n_tokens, ctx, stride):
    """(start, end, first scored) of each window under the documented rule."""
    out, scored_to, start = [], 1, 0
    while scored_to < n_tokens:
        end = min(start + ctx, n_tokens)
        out.append((start, end, scored_to))
        scored_to = end
        start += stride
    return out


def scored_log_probs(m, ids, ctx, stride):
    """(targets, log-probs [n_scored, n_vocab]) of every scored token, in text order."""
    rows, targets = [], []
    for start, end, first in windows(len(ids), ctx, stride):
        lp = log_softmax(window_logits(m, ids[start:end]))
        for j in range(first, end):
            rows.append(lp[j - 1 - start])
            targets.append(ids[j])
    return np.asarray(targets), np.stack(rows)
