"""Builds the seed corpus of fuzz_model_load: tiny models of every family the loader knows
(a few KB each: n_embd 8, one layer, a handful of tokens), written with gguf-py in the key
and tensor names of llama.cpp's converter, plus a few broken ones.

    .venv/bin/python tests/fuzz/make_model_corpus.py OUT_DIR

scripts/test.sh writes them into the fuzzer's working corpus before it runs (the repository
keeps no model file).

Files named valid-*.gguf must load (`wgllm info`), broken-*.gguf must be refused with one
error line; tests/python/test_fuzz_model_seeds.py checks both. The draws are seeded, so a
rerun writes the same files."""

import sys
from pathlib import Path

import numpy as np

import gguf

DIM, N_HEAD, N_HEAD_KV, FFN = 8, 2, 1, 16

SPM_TOKENS = ["<unk>", "<s>", "</s>", "\u2581a", "\u2581b", "a", "b", "\u2581"]
SPM_TYPES = [2, 3, 3, 1, 1, 1, 1, 1]
# byte-level BPE: GPT-2's alphabet maps ' ' to '\u0120'
BPE_TOKENS = ["a", "b", "\u0120", "\u0120a", "ab", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
BPE_TYPES = [1, 1, 1, 1, 1, 3, 3, 3]
BPE_MERGES = ["\u0120 a", "a b"]


def write(path, arch, *, vocab="spm", pre="qwen2", head_dim=None, key_length=None, tied=False,
          bias=False, qk_norm=False, fused_qkv=False, fused_gate_up=False, sliding_window=None,
          rope_dims=None, f16=False, drop=(), shapes=None, n_vocab_tensor=None, block_count=1, dim=DIM,
          tok_model=None, seed=0):
    rng = np.random.default_rng(seed)
    hd = head_dim or dim // N_HEAD
    dq, dkv = N_HEAD * hd, N_HEAD_KV * hd
    tokens = SPM_TOKENS if vocab == "spm" else BPE_TOKENS
    n_vocab = n_vocab_tensor or len(tokens)
    shapes = dict(shapes or {})
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"seed-{arch}")
    w.add_context_length(32)
    w.add_embedding_length(dim)  # a hostile width or layer count: the tensors stay the usual ones
    w.add_block_count(block_count)
    w.add_feed_forward_length(FFN)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    if key_length is not None:
        w.add_key_length(key_length)
        w.add_value_length(key_length)
    w.add_rope_dimension_count(rope_dims or hd)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-6)
    if sliding_window is not None:
        w.add_sliding_window(sliding_window)
    w.add_file_type(1 if f16 else 0)
    if vocab == "spm":
        w.add_tokenizer_model(tok_model or "llama")
        w.add_token_list(tokens)
        w.add_token_scores([0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0])
        w.add_token_types(SPM_TYPES)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
    else:
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(pre)
        w.add_token_list(tokens)
        w.add_token_types(BPE_TYPES)
        w.add_token_merges(BPE_MERGES)
        w.add_eos_token_id(5)

    def draw(shape):  # numpy order (out, in); one dimension: a norm vector
        if len(shape) == 1:
            return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        m = (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)
        return m.astype(np.float16) if f16 else m

    def add(name, shape):
        if name not in drop:
            w.add_tensor(name, draw(shapes.get(name, shape)))

    add("token_embd.weight", (n_vocab, DIM))
    p = "blk.0."
    add(p + "attn_norm.weight", (DIM,))
    if fused_qkv:
        add(p + "attn_qkv.weight", (dq + 2 * dkv, DIM))
        if bias:
            add(p + "attn_qkv.bias", (dq + 2 * dkv,))
    else:
        for t, rows in (("q", dq), ("k", dkv), ("v", dkv)):
            add(p + f"attn_{t}.weight", (rows, DIM))
            if bias:
                add(p + f"attn_{t}.bias", (rows,))
    if qk_norm:
        add(p + "attn_q_norm.weight", (hd,))
        add(p + "attn_k_norm.weight", (hd,))
    add(p + "attn_output.weight", (DIM, dq))
    add(p + "ffn_norm.weight", (DIM,))
    if fused_gate_up:
        add(p + "ffn_up.weight", (2 * FFN, DIM))
    else:
        add(p + "ffn_gate.weight", (FFN, DIM))
        add(p + "ffn_up.weight", (FFN, DIM))
    add(p + "ffn_down.weight", (DIM, FFN))
    add("output_norm.weight", (DIM,))
    if not tied:
        add("output.weight", (n_vocab, DIM))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


VALID = {
    "llama-spm": dict(arch="llama"),
    "llama-spm-tied-f16": dict(arch="llama", tied=True, f16=True),
    "llama-bias-swa": dict(arch="llama", bias=True, sliding_window=4),
    "llama-gpt2": dict(arch="llama", vocab="gpt2", pre="llama-bpe"),
    "qwen2-gpt2": dict(arch="qwen2", vocab="gpt2", bias=True, tied=True),
    "qwen3-gpt2": dict(arch="qwen3", vocab="gpt2", qk_norm=True, head_dim=8, key_length=8, tied=True),
    "phi3-spm": dict(arch="phi3", fused_qkv=True, fused_gate_up=True, sliding_window=8),
    "phi3-partial-bias": dict(arch="phi3", fused_qkv=True, fused_gate_up=True, bias=True, rope_dims=2,
                              sliding_window=0),
    "phi3-separate-qkv": dict(arch="phi3", fused_gate_up=True),
}

BROKEN = {
    "unknown-arch": dict(arch="gpt9"),
    "qwen2-no-bias": dict(arch="qwen2", vocab="gpt2"),
    "qwen3-no-qk-norm": dict(arch="qwen3", vocab="gpt2", head_dim=8, key_length=8),
    "phi3-odd-gate-up": dict(arch="phi3", fused_qkv=True, fused_gate_up=True,
                             shapes={"blk.0.ffn_up.weight": (2 * FFN + 1, DIM)}),
    "llama-missing-ffn-down": dict(arch="llama", drop=("blk.0.ffn_down.weight",)),
    "llama-vocab-mismatch": dict(arch="llama", n_vocab_tensor=9),
    "gpt2-unknown-pre": dict(arch="llama", vocab="gpt2", pre="nonesuch"),
    # a few KB claiming 2^25 + 1 layers or a width of 2^29: refused before allocating for them
    "huge-block-count": dict(arch="qwen2", vocab="gpt2", bias=True, tied=True, block_count=(1 << 25) + 1),
    "huge-width": dict(arch="llama", dim=1 << 29, head_dim=DIM // N_HEAD),
    # names echoed in the error: control bytes must not split it or reach a terminal
    "tokenizer-model-newline": dict(arch="llama", tok_model="l\nama"),
    "pre-escape": dict(arch="qwen2", vocab="gpt2", bias=True, pre="x\n\x1b[31my"),
}


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, kwargs in VALID.items():
        write(out / f"valid-{name}.gguf", seed=len(name), **kwargs)
    for name, kwargs in BROKEN.items():
        write(out / f"broken-{name}.gguf", seed=len(name), **kwargs)
    # a valid file cut inside its tensor data
    data = (out / "valid-llama-spm.gguf").read_bytes()
    (out / "broken-truncated.gguf").write_bytes(data[:len(data) - 100])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_model_corpus.py OUT_DIR")
    main(sys.argv[1])
