"""Independent float64 reference of the Llama forward pass, in numpy.

Reads a GGUF file with gguf-py (llama.cpp's own Python package), dequantizes
every tensor with gguf.quants.dequantize, and runs the network one token at a
time with a key/value cache, the way llama2.c's run.c does. It shares no code
with the C engine; it exists so the tests can compare the engine against
something simple enough to check by reading.

Conventions (each one matches both llama.cpp's "llama" architecture and
llama2.c):
  * GGUF stores a 2-D weight as ne0 = input features (contiguous), ne1 =
    output features, so the numpy array has shape (out, in) and y = W @ x.
  * RMSNorm: x / sqrt(mean(x^2) + eps) * w, eps = llama.attention.layer_norm_rms_epsilon.
  * RoPE "normal" mode (llama.cpp LLAMA_ROPE_TYPE_NORM = llama2.c): rotate
    adjacent pairs (x[2i], x[2i+1]) of each head by theta_i = pos * base^(-2i/n_rot);
    dimensions past n_rot (llama.rope.dimension_count) are left alone. Linear
    scaling (llama.rope.scaling.type "linear") multiplies pos by 1/factor; a
    rope_freqs.weight tensor (Llama 3 scaling) divides theta_i by its entry i.
  * Grouped-query attention: query head h reads key/value head h // (n_head / n_head_kv).
  * Scores scaled by 1/sqrt(head_dim), causal (positions 0..pos), softmax.
  * SwiGLU FFN: down @ (silu(gate @ x) * (up @ x)).
  * Output: output_norm then output.weight, or token_embd.weight when the
    file has no output.weight (tied embeddings).
"""

import numpy as np
import gguf


def _field(reader, key, default=None):
    """Scalar or string value of a metadata key, or default when absent."""
    field = reader.fields.get(key)
    if field is None:
        return default
    return field.contents()


def _dequantize(tensor):
    """Tensor as a float64 array shaped (ne[n-1], ..., ne[0]) (numpy row-major order)."""
    values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    shape = tuple(int(n) for n in reversed(tensor.shape))
    return np.asarray(values, dtype=np.float64).reshape(shape)


class Layer:
    """Weights of one transformer block, float64, each matrix shaped (out, in)."""

    def __init__(self, w, i):
        p = f"blk.{i}."
        self.attn_norm = w[p + "attn_norm.weight"]  # (dim,)
        self.wq = w[p + "attn_q.weight"]            # (n_head * head_dim, dim)
        self.wk = w[p + "attn_k.weight"]            # (n_head_kv * head_dim, dim)
        self.wv = w[p + "attn_v.weight"]            # (n_head_kv * head_dim, dim)
        self.wo = w[p + "attn_output.weight"]       # (dim, n_head * head_dim)
        self.ffn_norm = w[p + "ffn_norm.weight"]    # (dim,)
        self.w_gate = w[p + "ffn_gate.weight"]      # (ffn, dim)
        self.w_up = w[p + "ffn_up.weight"]          # (ffn, dim)
        self.w_down = w[p + "ffn_down.weight"]      # (dim, ffn)


class Model:
    """Hyper-parameters (from the llama.* keys) and float64 weights of a GGUF Llama."""

    def __init__(self, path):
        reader = gguf.GGUFReader(path)
        arch = _field(reader, "general.architecture")
        if arch != "llama":
            raise ValueError(f"{path}: architecture {arch!r}, expected 'llama'")
        w = {t.name: _dequantize(t) for t in reader.tensors}

        self.dim = int(_field(reader, "llama.embedding_length"))
        self.n_layer = int(_field(reader, "llama.block_count"))
        self.n_head = int(_field(reader, "llama.attention.head_count"))
        self.n_head_kv = int(_field(reader, "llama.attention.head_count_kv", self.n_head))
        self.ffn = int(_field(reader, "llama.feed_forward_length"))
        self.n_ctx = int(_field(reader, "llama.context_length"))
        self.head_dim = int(_field(reader, "llama.attention.key_length", self.dim // self.n_head))
        self.n_rot = int(_field(reader, "llama.rope.dimension_count", self.head_dim))
        self.rope_base = float(_field(reader, "llama.rope.freq_base", 10000.0))
        # llama.cpp requires this key for llama; 1e-5 is what llama2.c hard-codes.
        self.eps = float(_field(reader, "llama.attention.layer_norm_rms_epsilon", 1e-5))
        self.pos_scale = 1.0
        if _field(reader, "llama.rope.scaling.type") == "linear":
            self.pos_scale = 1.0 / float(_field(reader, "llama.rope.scaling.factor"))
        self.rope_factors = w.get("rope_freqs.weight")  # (n_rot // 2,) or None

        self.tok_embd = w["token_embd.weight"]      # (n_vocab, dim)
        self.n_vocab = self.tok_embd.shape[0]
        self.tied = "output.weight" not in w
        self.output = self.tok_embd if self.tied else w["output.weight"]  # (n_vocab, dim)
        self.output_norm = w["output_norm.weight"]  # (dim,)
        self.layers = [Layer(w, i) for i in range(self.n_layer)]

        assert self.n_head % self.n_head_kv == 0
        assert self.tok_embd.shape == (self.n_vocab, self.dim)
        assert self.output.shape == (self.n_vocab, self.dim)
        for layer in self.layers:
            assert layer.wq.shape == (self.n_head * self.head_dim, self.dim)
            assert layer.wk.shape == (self.n_head_kv * self.head_dim, self.dim)
            assert layer.w_down.shape == (self.dim, self.ffn)


def rmsnorm(x, weight, eps):
    return x / np.sqrt(np.mean(x * x) + eps) * weight


def rope(x, pos, n_rot, base, factors=None):
    """Rotates adjacent pairs of every head. x: (n_heads, head_dim)."""
    out = x.copy()
    for i in range(n_rot // 2):
        theta = pos * base ** (-2.0 * i / n_rot)
        if factors is not None:
            theta /= factors[i]
        c, s = np.cos(theta), np.sin(theta)
        a, b = x[:, 2 * i], x[:, 2 * i + 1]
        out[:, 2 * i] = a * c - b * s
        out[:, 2 * i + 1] = a * s + b * c
    return out


def softmax(x):
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


def silu(x):
    return x / (1.0 + np.exp(-x))


class KVCache:
    def __init__(self, m, n_ctx):
        shape = (m.n_layer, n_ctx, m.n_head_kv, m.head_dim)
        self.k = np.zeros(shape)  # (n_layer, n_ctx, n_head_kv, head_dim)
        self.v = np.zeros(shape)


def forward(m, cache, token, pos):
    """Logits (n_vocab,) after feeding `token` at position `pos`; fills the cache at pos."""
    x = m.tok_embd[token].copy()  # (dim,)
    group = m.n_head // m.n_head_kv
    for l, layer in enumerate(m.layers):
        # attention
        xb = rmsnorm(x, layer.attn_norm, m.eps)
        q = (layer.wq @ xb).reshape(m.n_head, m.head_dim)
        k = (layer.wk @ xb).reshape(m.n_head_kv, m.head_dim)
        v = (layer.wv @ xb).reshape(m.n_head_kv, m.head_dim)
        q = rope(q, pos * m.pos_scale, m.n_rot, m.rope_base, m.rope_factors)
        k = rope(k, pos * m.pos_scale, m.n_rot, m.rope_base, m.rope_factors)
        cache.k[l, pos] = k
        cache.v[l, pos] = v
        heads = np.zeros((m.n_head, m.head_dim))
        for h in range(m.n_head):
            kv = h // group
            keys = cache.k[l, : pos + 1, kv]    # (pos+1, head_dim)
            values = cache.v[l, : pos + 1, kv]  # (pos+1, head_dim)
            att = softmax(keys @ q[h] / np.sqrt(m.head_dim))  # (pos+1,)
            heads[h] = att @ values
        x = x + layer.wo @ heads.reshape(-1)
        # feed-forward
        xb = rmsnorm(x, layer.ffn_norm, m.eps)
        x = x + layer.w_down @ (silu(layer.w_gate @ xb) * (layer.w_up @ xb))
    x = rmsnorm(x, m.output_norm, m.eps)
    return m.output @ x  # (n_vocab,)


def logits(m, ids):
    """float64 [len(ids), n_vocab]: row i = logits after feeding ids[i] at position i."""
    cache = KVCache(m, len(ids))
    return np.stack([forward(m, cache, int(t), pos) for pos, t in enumerate(ids)])


def greedy(m, prompt_ids, n_new):
    """Prompt ids followed by n_new argmax tokens (no stop rule), as a list."""
    ids = list(prompt_ids)
    cache = KVCache(m, len(ids) + n_new)
    for pos in range(len(ids) + n_new - 1):
        row = forward(m, cache, ids[pos], pos)
        if pos + 1 >= len(ids):
            ids.append(int(np.argmax(row)))
    return ids[: len(prompt_ids) + n_new]


def vocab_pieces(path):
    """Token texts of a GGUF as bytes: SentencePiece '▁' as a space, '<0xXX>' as that byte,
    control tokens (type 3) as b''. The same reading llama.cpp gives a "llama" vocab."""
    reader = gguf.GGUFReader(path)
    tokens = _field(reader, "tokenizer.ggml.tokens")
    types = _field(reader, "tokenizer.ggml.token_type")
    pieces = []
    for text, kind in zip(tokens, types):
        if kind == 6:  # byte token
            pieces.append(bytes([int(text[3:5], 16)]))
        elif kind == 3:  # control
            pieces.append(b"")
        else:
            pieces.append(text.replace("\u2581", " ").encode("utf-8"))
    return pieces
