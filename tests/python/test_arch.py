"""The architecture table: tiny random GGUF files of each family, written with gguf-py in the
tensor and key names of llama.cpp's converter, load; `wgllm info` shows the family and the
flags the loader resolves; unknown families and malformed family tensors are refused with
one error line that names the problem, never a crash.

(Whether the new families compute the right logits is tested against transformers elsewhere;
here `wgllm logits` only has to run and give finite values.)"""

import re

import numpy as np
import pytest

import gguf

ERROR_LINE = re.compile(r"^wgllm( [a-z0-9-]+)?: error: \S")

DIM, N_HEAD, N_HEAD_KV, FFN, N_VOCAB, N_LAYER = 64, 4, 2, 96, 300, 2


def write_family(path, arch, *, head_dim=None, tied=False, fused_qkv=False, fused_gate_up=False,
                 bias=False, qk_norm=False, sliding_window=None, rope_dims=None, key_length=None,
                 shapes=None, drop=(), extra=(), keys=None, seed=0):
    """Writes a random model of family `arch` in llama.cpp's names.

    shapes: tensor name -> numpy shape that replaces the right one (hostile files);
    drop: tensor names left out; extra: (name, shape) added; keys: (name, value) pairs
    written as strings or u32 after the usual ones."""
    rng = np.random.default_rng(seed)
    hd = head_dim or DIM // N_HEAD
    dq, dkv = N_HEAD * hd, N_HEAD_KV * hd
    shapes = dict(shapes or {})
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"tiny-{arch}")
    w.add_context_length(64)
    w.add_embedding_length(DIM)
    w.add_block_count(N_LAYER)
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
    for name, value in keys or ():
        if isinstance(value, str):
            w.add_string(name, value)
        else:
            w.add_uint32(name, value)
    w.add_file_type(0)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"\u2581t{i}" for i in range(N_VOCAB - len(tokens))]
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * 259 + [-float(i) for i in range(N_VOCAB - 259)])
    w.add_token_types([2, 3, 3] + [6] * 256 + [1] * (N_VOCAB - 259))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)

    def draw(shape):  # numpy order: (out, in); one dimension: a vector
        if len(shape) == 1:
            return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        return (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)

    def add(name, shape, data=None):
        if name in drop:
            return
        if name in shapes:
            data = draw(shapes[name])
        w.add_tensor(name, draw(shape) if data is None else data)

    add("token_embd.weight", (N_VOCAB, DIM))
    for i in range(N_LAYER):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", (DIM,))
        if fused_qkv:  # the same draws as separate q, k, v
            qkv = np.concatenate([draw((rows, DIM)) for rows in (dq, dkv, dkv)])
            add(p + "attn_qkv.weight", qkv.shape, qkv)
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
        add("output.weight", (N_VOCAB, DIM))
    for name, shape in extra:
        add(name, shape)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# Each family as llama.cpp's converter writes it, and the `wgllm info` lines it must resolve to.
FAMILIES = {
    "llama": (dict(arch="llama"),
              ["architecture: llama (keys llama.*)",
               "rope: adjacent, 16 of 16 dims per head",
               "sliding window none",
               "q/k/v bias: no, q/k norm: no, fused qkv: no, fused gate/up: no, output: separate"]),
    "llama-tied": (dict(arch="llama", tied=True), ["output: tied"]),
    "mistral": (dict(arch="llama", sliding_window=8),
                ["architecture: llama", "rope: adjacent", "sliding window 8"]),
    "llama-bias": (dict(arch="llama", bias=True), ["q/k/v bias: yes"]),
    "qwen2": (dict(arch="qwen2", bias=True, tied=True),
              ["architecture: qwen2 (keys qwen2.*)", "rope: neox, 16 of 16 dims per head",
               "q/k/v bias: yes, q/k norm: no, fused qkv: no, fused gate/up: no, output: tied"]),
    "qwen3": (dict(arch="qwen3", qk_norm=True, head_dim=32, key_length=32, tied=True),
              ["architecture: qwen3 (keys qwen3.*)", "rope: neox, 32 of 32 dims per head",
               "4 heads, 2 kv heads, head size 32",
               "q/k/v bias: no, q/k norm: yes, fused qkv: no, fused gate/up: no, output: tied"]),
    "phi3": (dict(arch="phi3", fused_qkv=True, fused_gate_up=True, sliding_window=16),
             ["architecture: phi3 (keys phi3.*)", "rope: neox, 16 of 16 dims per head",
              "sliding window 16",
              "q/k/v bias: no, q/k norm: no, fused qkv: yes, fused gate/up: yes, output: separate"]),
    # Phi-4-mini style: partial rotary, no sliding window (the converter writes 0)
    "phi3-partial": (dict(arch="phi3", fused_qkv=True, fused_gate_up=True, rope_dims=12, sliding_window=0),
                     ["rope: neox, 12 of 16 dims per head", "sliding window none"]),
    "phi3-separate-qkv": (dict(arch="phi3", fused_gate_up=True), ["fused qkv: no, fused gate/up: yes"]),
    "phi3-qkv-bias": (dict(arch="phi3", fused_qkv=True, fused_gate_up=True, bias=True),
                      ["q/k/v bias: yes, q/k norm: no, fused qkv: yes"]),
}


def expect_error(p, *words):
    """Exit 1, exactly one error line, every word in it (case-insensitive), no sanitizer report."""
    err = p.stderr.decode("utf-8", errors="replace")
    assert p.returncode == 1, f"exit {p.returncode}, expected 1: {err}"
    assert "Sanitizer" not in err and "runtime error" not in err, err
    lines = [line for line in err.splitlines() if ERROR_LINE.match(line)]
    assert len(lines) == 1, f"expected one error line, got: {err!r}"
    for word in words:
        assert word.lower() in lines[0].lower(), f"{word!r} not in {lines[0]!r}"
    return lines[0]


def info_lines(wgllm, path):
    out = wgllm.ok("info", path).stdout.decode()
    head = out.split("metadata (")[0]
    return head


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_loads_and_info_shows_flags(family, wgllm, scratch):
    kwargs, expected = FAMILIES[family]
    path = write_family(scratch / f"{family}.gguf", **kwargs)
    head = info_lines(wgllm, path)
    for text in expected:
        assert text in head, f"{text!r} not in:\n{head}"
    assert "not loadable" not in head, head
    logits = wgllm.logits(path, [1, 300 - 5, 7, 42])
    assert logits.shape == (4, N_VOCAB)
    assert np.isfinite(logits).all()


def test_phi3_fused_qkv_equals_separate(wgllm, scratch):
    """A fused attn_qkv split into row views computes exactly what separate q, k, v of the
    same rows compute (write_family draws the same numbers for both)."""
    fused = write_family(scratch / "phi3-fused.gguf", "phi3", fused_qkv=True, fused_gate_up=True, seed=3)
    separate = write_family(scratch / "phi3-separate.gguf", "phi3", fused_gate_up=True, seed=3)
    assert "fused qkv: yes" in info_lines(wgllm, fused)
    assert "fused qkv: no" in info_lines(wgllm, separate)
    ids = [1, 17, 99, 250, 3]
    a, b = wgllm.logits(fused, ids), wgllm.logits(separate, ids)
    assert np.isfinite(a).all() and np.abs(a).max() > 0
    np.testing.assert_array_equal(a, b)


# ---- refusals ----

@pytest.mark.parametrize("name", ["gpt2", "llama2", "Llama", "phi2", "qwen2moe"])
def test_unknown_architecture_refused(name, wgllm, scratch):
    path = write_family(scratch / f"arch-{name}.gguf", name)
    line = expect_error(wgllm.run("run", "-m", path, "-n", "1", "--temp", "0"), f"'{name}'",
                        "unsupported architecture", "supported: llama, qwen2, qwen3, phi3")
    assert path.name in line
    expect_error(wgllm.run("logits", "-m", path, "--ids", "1 2", "-o", scratch / "x.f32"), "unsupported architecture")
    # info still lists the file and says why it cannot be loaded
    head = info_lines(wgllm, path)
    assert f"architecture: not loadable: unsupported architecture '{name}'" in head, head


def test_missing_architecture_refused(wgllm, scratch):
    path = write_family(scratch / "arch-empty.gguf", "")  # gguf-py then writes no general.architecture
    expect_error(wgllm.run("run", "-m", path, "-n", "1"), "missing metadata key 'general.architecture'")
    assert "architecture: not loadable: missing metadata key 'general.architecture'" in info_lines(wgllm, path)


def test_hostile_architecture_name(wgllm, scratch):
    name = "x\x1b[31m" + "y" * 300
    path = write_family(scratch / "arch-hostile.gguf", name)
    line = expect_error(wgllm.run("run", "-m", path, "-n", "1"), "unsupported architecture", "supported: llama")
    assert "\x1b" not in line and "y" * 60 not in line, line


HD = DIM // N_HEAD
MALFORMED = {
    "qwen2-bias-length": (dict(arch="qwen2", bias=True, shapes={"blk.1.attn_k.bias": (N_HEAD_KV * HD + 1,)}),
                          ["blk.1.attn_k.bias", "shape", str(N_HEAD_KV * HD)]),
    "qwen2-no-bias": (dict(arch="qwen2"), ["qwen2", "bias"]),
    "qwen2-one-bias-missing": (dict(arch="qwen2", bias=True, drop={"blk.1.attn_v.bias"}),
                               ["missing tensor", "blk.1.attn_v.bias"]),
    "qwen2-qk-norm": (dict(arch="qwen2", bias=True, qk_norm=True), ["qwen2", "q/k norm"]),
    "qwen3-q-norm-length": (dict(arch="qwen3", qk_norm=True, shapes={"blk.0.attn_q_norm.weight": (DIM,)}),
                            ["blk.0.attn_q_norm.weight", "shape", f"[{HD}, 1]"]),
    "qwen3-no-norm": (dict(arch="qwen3"), ["qwen3", "q/k norm"]),
    "qwen3-k-norm-missing": (dict(arch="qwen3", qk_norm=True, drop={"blk.1.attn_k_norm.weight"}),
                             ["missing tensor", "blk.1.attn_k_norm.weight"]),
    "phi3-qkv-rows": (dict(arch="phi3", fused_qkv=True, fused_gate_up=True,
                           shapes={"blk.0.attn_qkv.weight": (DIM + N_HEAD_KV * HD, DIM)}),
                      ["blk.0.attn_qkv.weight", "shape", f"expected [{DIM}, {DIM + 2 * N_HEAD_KV * HD}]"]),
    "phi3-gate-up-rows": (dict(arch="phi3", fused_qkv=True, fused_gate_up=True,
                               shapes={"blk.1.ffn_up.weight": (FFN, DIM)}),
                          ["blk.1.ffn_up.weight", "shape", f"expected [{DIM}, {2 * FFN}]"]),
    "phi3-separate-gate": (dict(arch="phi3", fused_qkv=True), ["phi3", "fused ffn gate/up"]),
    "phi3-qkv-bias-rows": (dict(arch="phi3", fused_qkv=True, fused_gate_up=True, bias=True,
                                shapes={"blk.0.attn_qkv.bias": (DIM,)}),
                           ["blk.0.attn_qkv.bias", "shape"]),
    "phi3-longrope": (dict(arch="phi3", fused_qkv=True, fused_gate_up=True,
                           extra=[("rope_factors_long.weight", (HD // 2,)), ("rope_factors_short.weight", (HD // 2,))]),
                      ["longrope", "not supported"]),
    "llama-fused-qkv": (dict(arch="llama", fused_qkv=True), ["llama", "fused attn_qkv"]),
    "llama-fused-gate-up": (dict(arch="llama", fused_gate_up=True), ["missing tensor", "blk.0.ffn_gate.weight"]),
    "llama-output-bias": (dict(arch="llama", extra=[("blk.0.attn_output.bias", (DIM,))]),
                          ["blk.0.attn_output.bias", "not used", "llama"]),
    "llama-bias-only-layer1": (dict(arch="llama", extra=[("blk.1.attn_q.bias", (DIM,))]),
                               ["blk.1.attn_q.bias", "not used"]),
    "llama-rope-freqs-wrong": (dict(arch="llama", extra=[("rope_freqs.weight", (HD,))]),
                               ["rope_freqs.weight", "shape"]),
    "qwen3-rope-freqs": (dict(arch="qwen3", qk_norm=True, extra=[("rope_freqs.weight", (HD // 2,))]),
                         ["rope_freqs.weight", "not used", "qwen3"]),
    "qwen3-key-length-zero": (dict(arch="qwen3", qk_norm=True, keys=[("qwen3.attention.key_length", 0)]),
                              ["qwen3.attention.key_length", "out-of-range"]),
    "mistral-window-string": (dict(arch="llama", keys=[("llama.attention.sliding_window", "4096")]),
                              ["llama.attention.sliding_window"]),
    "qwen2-yarn": (dict(arch="qwen2", bias=True, keys=[("qwen2.rope.scaling.type", "yarn")]),
                   ["unsupported rope scaling type 'yarn'", "qwen2"]),
    "phi3-llama3-scaling": (dict(arch="phi3", fused_qkv=True, fused_gate_up=True,
                                 keys=[("phi3.rope.scaling.type", "llama3")]),
                            ["unsupported rope scaling type 'llama3'", "phi3"]),
}


# Refused from the metadata and the tensor list alone: `wgllm info` says why (it reads no weights,
# so shapes of single tensors are the loader's to check).
INFO_REFUSES = {"qwen2-no-bias", "qwen2-qk-norm", "qwen3-no-norm", "phi3-separate-gate", "phi3-longrope",
                "llama-fused-qkv", "llama-fused-gate-up", "qwen3-key-length-zero", "mistral-window-string", "qwen2-yarn",
                "phi3-llama3-scaling"}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_family_file_refused(case, wgllm, scratch):
    kwargs, words = MALFORMED[case]
    path = write_family(scratch / f"bad-{case}.gguf", **kwargs)
    line = expect_error(wgllm.run("run", "-m", path, "-n", "1", "--temp", "0", "-t", "2"), *words)
    expect_error(wgllm.run("logits", "-m", path, "--ids", "1 2", "-o", scratch / "x.f32", "-t", "2"), *words)
    head = info_lines(wgllm, path)
    if case in INFO_REFUSES:
        reason = line.split(f"{path}: ", 1)[1]
        assert f"  not loadable: {reason}" in head, head
    else:
        assert "not loadable" not in head, head
