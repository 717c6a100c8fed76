"""`wgllm convert hf`: Hugging Face Llama checkpoints against an independent reference.

The checkpoints are tiny random LlamaForCausalLM models written here the way
`save_pretrained` writes them: model.safetensors (or shards plus
model.safetensors.index.json) through the `safetensors` package, and a
config.json with transformers' keys (the 4.x layout with rope_theta/rope_scaling
and the 5.x layout with rope_parameters). The reference is `hf_logits` below: a
float64 numpy version of transformers' LlamaForCausalLM forward pass in Hugging
Face's own conventions (weights unpermuted, rotate_half RoPE on the two halves of
each head, repeat_kv for grouped-query attention, the llama3 inverse-frequency
adjustment of transformers' _compute_llama3_parameters, linear scaling as
inv_freq / factor). It shares nothing with the engine or with llama_ref.py, so
a logits match also checks the q/k row permutation and the rope factors.
transformers itself is the reference of test_convert_hf_transformers.py; this
file stays a second check that needs no torch and covers more checkpoint shapes.
"""

import json
import shutil
import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

import gguf
from gguf import GGMLQuantizationType as QT

import llama_ref
from conftest import relative_error

BOUND = 1e-4  # f32 logits against the reference (test_forward.py's bound for every type)
VOCAB = 512  # the small SentencePiece model written below
IDS = [1, 450, 496, 173, 170, 432, 172, 75, 278, 366, 511, 299, 13, 319, 5, 9, 200, 300, 400, 500, 291, 157,
       2, 7]

LLAMA2 = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=4, vocab_size=VOCAB, max_position_embeddings=256, rms_norm_eps=1e-5,
              rope_theta=10000.0, tie_word_embeddings=False, rope_scaling=None)
# Grouped-query attention, tied embeddings, llama3 scaling whose three regimes all
# occur at head size 16: pair 0 keeps its frequency, pair 1 is blended, the rest are
# slowed by the factor (original context 64, wavelengths 8..64 blended).
LLAMA3 = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=1024, rms_norm_eps=1e-5,
              tie_word_embeddings=True,
              rope_parameters={"factor": 8.0, "high_freq_factor": 8.0, "low_freq_factor": 1.0,
                               "original_max_position_embeddings": 64, "rope_theta": 500000.0,
                               "rope_type": "llama3"})
# head_dim given and different from hidden_size / heads, linear scaling, GQA 4:1.
WIDE_HEADS = dict(hidden_size=64, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                  num_key_value_heads=1, head_dim=24, vocab_size=VOCAB, max_position_embeddings=512,
                  rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
                  rope_scaling={"type": "linear", "factor": 4.0})


# ---------------------------------------------------------------- checkpoints

def config_json(params):
    """config.json as transformers writes it: the 5.x layout when rope_parameters is
    given, else the 4.x layout (rope_theta and rope_scaling at the top)."""
    cfg = {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "mlp_bias": False,
        "model_type": "llama",
        "pretraining_tp": 1,
        "use_cache": True,
    }
    cfg.update(params)
    if "rope_parameters" in cfg:
        cfg.update({"dtype": "float32", "pad_token_id": None, "transformers_version": "5.24.0"})
        cfg.setdefault("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    else:
        cfg.update({"torch_dtype": "float32", "transformers_version": "4.45.2"})
    return dict(sorted(cfg.items()))


def head_dim(params):
    return params.get("head_dim") or params["hidden_size"] // params["num_attention_heads"]


def random_weights(params, seed):
    """{HF name: float32 array} of a LlamaForCausalLM with O(1) activations."""
    rng = np.random.default_rng(seed)
    d, f, v = params["hidden_size"], params["intermediate_size"], params["vocab_size"]
    hd = head_dim(params)
    q, kv = params["num_attention_heads"] * hd, params["num_key_value_heads"] * hd

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.2 * rng.standard_normal(n)).astype(np.float32)

    w = {"model.embed_tokens.weight": rng.standard_normal((v, d)).astype(np.float32)}
    for i in range(params["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm(d)
        w[p + "self_attn.q_proj.weight"] = mat(q, d) * 2.0  # sharper attention
        w[p + "self_attn.k_proj.weight"] = mat(kv, d) * 2.0
        w[p + "self_attn.v_proj.weight"] = mat(kv, d)
        w[p + "self_attn.o_proj.weight"] = mat(d, q)
        w[p + "post_attention_layernorm.weight"] = norm(d)
        w[p + "mlp.gate_proj.weight"] = mat(f, d)
        w[p + "mlp.up_proj.weight"] = mat(f, d)
        w[p + "mlp.down_proj.weight"] = mat(d, f)
    w["model.norm.weight"] = norm(d)
    if not params["tie_word_embeddings"]:
        w["lm_head.weight"] = mat(v, d)
    return w


def write_checkpoint(folder, params, weights, tokenizer, shards=1):
    """save_pretrained's layout; shards > 1 splits the tensors over files with an index."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config_json(params), indent=2) + "\n")
    shutil.copy(tokenizer, folder / "tokenizer.model")
    names = list(weights)
    if shards == 1:
        save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
        return folder
    weight_map, total = {}, 0
    for s in range(shards):
        part = {n: weights[n] for n in names[s::shards]}
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        save_file(part, str(folder / fname), metadata={"format": "pt"})
        weight_map.update({n: fname for n in part})
        total += sum(a.nbytes for a in part.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return folder


def write_safetensors_raw(path, tensors, metadata=None, pad_to=8):
    """A safetensors file from {name: (dtype string, shape, raw bytes)}, written by hand
    (for bf16, which numpy cannot hold, and for malformed files)."""
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-(8 + len(text)) % pad_to)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def to_bf16(a):
    """(values rounded to bfloat16 as float32, their raw little-endian bytes)."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    values = (rounded.astype(np.uint32) << 16).view(np.float32)
    return values, rounded.astype("<u2").tobytes()


# ---------------------------------------------------------------- the reference

def inv_freq(params):
    """transformers' RoPE inverse frequencies (default, linear, llama3), float64."""
    rope = params.get("rope_parameters") or params.get("rope_scaling") or {}
    theta = params.get("rope_theta", rope.get("rope_theta", 10000.0))
    hd = head_dim(params)
    inv = 1.0 / theta ** (np.arange(0, hd, 2) / hd)
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind == "linear":
        return inv / rope["factor"]
    if kind == "llama3":  # _compute_llama3_parameters
        factor, lo, hi = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
        old = rope["original_max_position_embeddings"]
        wavelen = 2 * np.pi / inv
        scaled = np.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < old / hi) & ~(wavelen > old / lo)
        return np.where(medium, smoothed, scaled)
    assert kind == "default"
    return inv


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def rms_norm(x, w, eps):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def hf_logits(params, weights, ids, rope_inv_freq=None):
    """float64 [len(ids), vocab]: LlamaForCausalLM.forward over the whole sequence."""
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    n, eps = len(ids), params["rms_norm_eps"]
    nh, nkv, hd = params["num_attention_heads"], params["num_key_value_heads"], head_dim(params)
    freqs = np.outer(np.arange(n), inv_freq(params) if rope_inv_freq is None else rope_inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    cos, sin = np.cos(emb), np.sin(emb)  # (n, hd)
    mask = np.triu(np.full((n, n), -np.inf), k=1)
    x = w["model.embed_tokens.weight"][ids]
    for i in range(params["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(n, nh, hd).transpose(1, 0, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(n, nkv, hd).transpose(1, 0, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(n, nkv, hd).transpose(1, 0, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, nh // nkv, axis=0)  # repeat_kv
        v = np.repeat(v, nh // nkv, axis=0)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        o = (s @ v).transpose(1, 0, 2).reshape(n, nh * hd)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if params["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def permute_rows(a, n_head):
    """HF q/k rows to GGUF's: within each head, row t * d/2 + j goes to 2j + t."""
    rows, cols = a.shape
    return a.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(rows, cols)


# ---------------------------------------------------------------- fixtures

def spm_model(n):
    """A SentencePiece BPE ModelProto of n pieces, encoded by hand: <unk>, <s>, </s>, the
    256 byte pieces, then "\u2581t<i>" with falling scores."""
    def varint(v):
        out = b""
        while True:
            b, v = v & 0x7F, v >> 7
            out += bytes([b | (0x80 if v else 0)])
            if not v:
                return out

    def field(num, wire, payload):
        if wire == 2:
            payload = varint(len(payload)) + payload
        return varint(num << 3 | wire) + payload

    pieces = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)]
    pieces += [(f"<0x{b:02X}>", 0.0, 6) for b in range(256)]
    pieces += [(f"\u2581t{i}", -float(i), 1) for i in range(n - len(pieces))]
    proto = b"".join(field(1, 2, field(1, 2, p.encode()) + field(2, 5, struct.pack("<f", s)) + field(3, 0, varint(t)))
                     for p, s, t in pieces)
    trainer = field(3, 0, varint(2)) + field(40, 0, varint(0)) + field(41, 0, varint(1)) + field(42, 0, varint(2))
    return proto + field(2, 2, trainer) + field(3, 2, field(3, 0, varint(1)))


@pytest.fixture(scope="module")
def tokenizer(scratch):
    path = scratch / "tokenizer.model"
    path.write_bytes(spm_model(VOCAB))
    return path


@pytest.fixture(scope="module")
def checkpoints(scratch, tokenizer):
    """name -> (folder, params, float32 weights), written once."""
    made = {}
    for name, params, seed in (("llama2", LLAMA2, 1), ("llama3", LLAMA3, 2), ("wide", WIDE_HEADS, 3)):
        w = random_weights(params, seed)
        made[name] = (write_checkpoint(scratch / "hf" / name, params, w, tokenizer), params, w)
    return made


def convert(wgllm, folder, out, *extra):
    wgllm.ok("convert", "hf", folder, out, *extra, timeout=120)
    return out


def tensor_dict(path):
    return {t.name: t for t in gguf.GGUFReader(str(path)).tensors}


def values(t):
    v = gguf.quants.dequantize(t.data, t.tensor_type)
    return np.asarray(v, dtype=np.float64).reshape([int(n) for n in reversed(t.shape)])


# ---------------------------------------------------------------- f32 logits against the reference

@pytest.mark.parametrize("name", ["llama2", "llama3", "wide"])
def test_f32_logits_match_transformers_semantics(wgllm, scratch, checkpoints, name):
    folder, params, w = checkpoints[name]
    out = convert(wgllm, folder, scratch / f"hf-{name}.gguf")
    ref = hf_logits(params, w, IDS)
    ours = wgllm.logits(out, IDS)
    err = relative_error(ours, ref)
    assert err <= BOUND, f"{name}: relative error {err:.3g} over {BOUND}"
    # batched prompt evaluation takes the same path through the rope factors
    err_batch = relative_error(wgllm.logits(out, IDS, batch=len(IDS)), ref)
    assert err_batch <= BOUND, f"{name} batched: relative error {err_batch:.3g}"
    # the numpy GGUF reference reads the same file the same way
    assert relative_error(llama_ref.logits(llama_ref.Model(str(out)), IDS[:8]), ref[:8]) <= 1e-9


@pytest.mark.parametrize("name", ["llama3", "wide"])
def test_webgpu_backend(wgllm, scratch, checkpoints, name):
    """The WebGPU backend (lavapipe in CI) on the converted files: rope factors, linear
    scaling and wide heads go through its kernels too."""
    folder, params, w = checkpoints[name]
    out = convert(wgllm, folder, scratch / f"hf-{name}-webgpu.gguf")
    ref = hf_logits(params, w, IDS)
    for batch in (1, len(IDS)):
        err = relative_error(wgllm.logits(out, IDS, batch=batch, backend="webgpu"), ref)
        assert err <= BOUND, f"{name} on webgpu, batch {batch}: relative error {err:.3g}"


def test_llama3_file_layout(wgllm, scratch, checkpoints):
    folder, params, w = checkpoints["llama3"]
    out = convert(wgllm, folder, scratch / "hf-llama3-layout.gguf")
    r = gguf.GGUFReader(str(out))
    f = {k: r.fields[k].contents() for k in r.fields if not k.startswith("GGUF.")}
    # the folder's name as llama.cpp's converter titles it (no _name_or_path in config.json)
    assert f["general.architecture"] == "llama" and f["general.name"] == "Llama3"
    # as llama.cpp's converter: the factors travel in rope_freqs.weight alone, and no
    # scaling type is written (llama.cpp aborts on a "llama3" type)
    assert not any(k.startswith("llama.rope.scaling.") for k in f), sorted(f)
    assert f["llama.rope.freq_base"] == 500000.0
    assert f["llama.attention.head_count_kv"] == 2 and f["llama.context_length"] == 1024
    assert abs(f["llama.attention.layer_norm_rms_epsilon"] - 1e-5) < 1e-12
    t = tensor_dict(out)
    assert "output.weight" not in t, "tied embeddings: no output tensor"
    factors = values(t["rope_freqs.weight"])
    hd = head_dim(params)
    plain = 1.0 / 500000.0 ** (np.arange(0, hd, 2) / hd)
    np.testing.assert_allclose(factors, plain / inv_freq(params), rtol=1e-6)
    assert factors[0] == 1.0 and factors[-1] == 8.0 and 1.0 < factors[1] < 8.0  # all three regimes
    # q and k rows are permuted for adjacent-pair rotation, v is not
    np.testing.assert_array_equal(values(t["blk.1.attn_q.weight"]),
                                  permute_rows(w["model.layers.1.self_attn.q_proj.weight"], 4))
    np.testing.assert_array_equal(values(t["blk.1.attn_k.weight"]),
                                  permute_rows(w["model.layers.1.self_attn.k_proj.weight"], 2))
    np.testing.assert_array_equal(values(t["blk.1.attn_v.weight"]), w["model.layers.1.self_attn.v_proj.weight"])


def test_llama3_scaling_is_exercised(checkpoints):
    """Without the llama3 adjustment the reference moves far outside the bound, so the
    match above depends on the factors."""
    _, params, w = checkpoints["llama3"]
    hd = head_dim(params)
    plain = 1.0 / 500000.0 ** (np.arange(0, hd, 2) / hd)
    assert relative_error(hf_logits(params, w, IDS, plain), hf_logits(params, w, IDS)) > 100 * BOUND


def test_sharded_checkpoint_equals_single_file(wgllm, scratch, checkpoints, tokenizer):
    folder, params, w = checkpoints["llama2"]
    sharded = write_checkpoint(scratch / "hf" / "llama2-sharded", params, w, tokenizer, shards=3)
    assert not (sharded / "model.safetensors").exists()
    a = tensor_dict(convert(wgllm, folder, scratch / "single.gguf"))
    b = tensor_dict(convert(wgllm, sharded, scratch / "sharded.gguf"))
    assert sorted(a) == sorted(b)
    for name in a:
        assert bytes(a[name].data) == bytes(b[name].data), name


# ---------------------------------------------------------------- f16 / bf16 sources

def test_f16_source(wgllm, scratch, checkpoints, tokenizer):
    _, params, w = checkpoints["llama3"]
    w16 = {k: v.astype(np.float16) for k, v in w.items()}
    folder = write_checkpoint(scratch / "hf" / "llama3-f16", params, w16, tokenizer)
    ref = hf_logits(params, w16, IDS)
    for qtype, file_type in (("f32", 0), ("f16", 1)):
        out = convert(wgllm, folder, scratch / f"from-f16-{qtype}.gguf", "--type", qtype)
        r = gguf.GGUFReader(str(out))
        assert r.fields["general.file_type"].contents() == file_type
        err = relative_error(wgllm.logits(out, IDS), ref)
        assert err <= BOUND, f"f16 source, --type {qtype}: relative error {err:.3g}"


def test_bf16_source(wgllm, scratch, checkpoints, tokenizer):
    _, params, w = checkpoints["llama2"]
    folder = scratch / "hf" / "llama2-bf16"
    write_checkpoint(folder, params, {}, tokenizer)  # config and tokenizer
    rounded, raw = {}, {}
    for name, a in w.items():
        rounded[name], data = to_bf16(a)
        raw[name] = ("BF16", a.shape, data)
    write_safetensors_raw(folder / "model.safetensors", raw, metadata={"format": "pt"})
    ref = hf_logits(params, rounded, IDS)
    out = convert(wgllm, folder, scratch / "from-bf16.gguf", "--type", "bf16")
    r = gguf.GGUFReader(str(out))
    assert r.fields["general.file_type"].contents() == 32  # LLAMA_FTYPE_MOSTLY_BF16
    t = {x.name: x for x in r.tensors}
    assert t["blk.0.attn_q.weight"].tensor_type == QT.BF16 and t["output_norm.weight"].tensor_type == QT.F32
    np.testing.assert_array_equal(values(t["blk.0.ffn_up.weight"]), rounded["model.layers.0.mlp.up_proj.weight"])
    err = relative_error(wgllm.logits(out, IDS), ref)
    assert err <= BOUND, f"bf16: relative error {err:.3g}"


# ---------------------------------------------------------------- quantized outputs

@pytest.mark.parametrize("qname,qtype", [("q8_0", QT.Q8_0), ("q4_0", QT.Q4_0)])
def test_quantized_output(wgllm, scratch, checkpoints, qname, qtype):
    folder, params, w = checkpoints["llama3"]
    out = convert(wgllm, folder, scratch / f"hf-llama3-{qname}.gguf", "--type", qname)
    t = tensor_dict(out)
    heads = {"attn_q": params["num_attention_heads"], "attn_k": params["num_key_value_heads"]}
    hf = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
          "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
          "ffn_down": "mlp.down_proj"}
    for layer in range(params["num_hidden_layers"]):
        for short, long in hf.items():
            src = w[f"model.layers.{layer}.{long}.weight"]
            if short in heads:
                src = permute_rows(src, heads[short])
            got = t[f"blk.{layer}.{short}.weight"]
            assert got.tensor_type == qtype
            want = gguf.quants.quantize(src, qtype)  # llama.cpp's reference quantizer
            assert bytes(got.data) == np.ascontiguousarray(want).view(np.uint8).tobytes(), f"{short} {layer}"
    assert t["token_embd.weight"].tensor_type == qtype and t["rope_freqs.weight"].tensor_type == QT.F32
    # the engine on the quantized file against the numpy reference of that file
    ids = IDS[:12]
    err = relative_error(wgllm.logits(out, ids), llama_ref.logits(llama_ref.Model(str(out)), ids))
    assert err <= BOUND, f"{qname}: relative error {err:.3g}"


# ---------------------------------------------------------------- bad input

def one_error_line(p):
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 1, f"exit {p.returncode}: {err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wgllm convert: error: "), err
    return lines[0]


def small_model(folder, tokenizer, params=None, weights=None):
    params = params or dict(LLAMA2, num_hidden_layers=1)
    weights = weights if weights is not None else random_weights(params, 9)
    write_checkpoint(folder, params, weights, tokenizer)
    return params, weights


def safetensors_bytes(folder):
    return (folder / "model.safetensors").read_bytes()


def set_header(folder, fn):
    """Rewrites the JSON header of model.safetensors through fn(dict) -> dict, same data."""
    data = safetensors_bytes(folder)
    n = struct.unpack("<Q", data[:8])[0]
    header = fn(json.loads(data[8:8 + n]))
    text = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n:])


def _truncated(f):
    data = safetensors_bytes(f)
    (f / "model.safetensors").write_bytes(data[: len(data) - 100])


def _short_header(f):
    (f / "model.safetensors").write_bytes(b"\x05\x00\x00")


def _huge_header_length(f):
    data = safetensors_bytes(f)
    (f / "model.safetensors").write_bytes(struct.pack("<Q", 1 << 62) + data[8:])


def _header_not_json(f):
    data = safetensors_bytes(f)
    n = struct.unpack("<Q", data[:8])[0]
    (f / "model.safetensors").write_bytes(data[:8] + b"{" + b"x" * (n - 1) + data[8 + n:])


def _edit(name, fn):
    def mutate(h):
        fn(h[name])
        return h
    return lambda f: set_header(f, mutate)


def _drop(name):
    return lambda f: set_header(f, lambda h: {k: v for k, v in h.items() if k != name})


def _config(fn):
    def mutate(f):
        cfg = json.loads((f / "config.json").read_text())
        fn(cfg)
        (f / "config.json").write_text(json.dumps(cfg))
    return mutate


def _bad_config_json(f):
    (f / "config.json").write_text('{"architectures": ["LlamaForCausalLM"], "hidden_size": 64,')


def _no_tokenizer(f):
    (f / "tokenizer.model").unlink()


def _bad_tokenizer_json(f):
    (f / "tokenizer.model").unlink()
    (f / "tokenizer.json").write_text("{not json")


def _index_escapes(f):
    (f / "model.safetensors").rename(f / "part.safetensors")
    (f / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"model.norm.weight": "../x"}}))


def _index_wrong_shard(f):
    (f / "model.safetensors").rename(f / "part.safetensors")
    save_file({"x": np.zeros(2, np.float32)}, str(f / "other.safetensors"))
    (f / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"model.norm.weight": "other.safetensors"}}))


def _extra_bias(f):
    data = safetensors_bytes(f)
    n = struct.unpack("<Q", data[:8])[0]
    h = json.loads(data[8:8 + n])
    end = len(data) - 8 - n
    h["model.layers.0.self_attn.q_proj.bias"] = {"dtype": "F32", "shape": [64], "data_offsets": [end, end + 256]}
    text = json.dumps(h).encode()
    (f / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n:] + bytes(256))


BAD = {
    "truncated file": (_truncated, "outside"),
    "file shorter than the header length": (_short_header, "not a safetensors file"),
    "header length past the end": (_huge_header_length, "header length"),
    "header not JSON": (_header_not_json, "not a JSON object"),
    "wrong dtype": (_edit("model.norm.weight", lambda e: e.update(dtype="I32")), "dtype I32"),
    "unknown dtype": (_edit("model.norm.weight", lambda e: e.update(dtype="Q4")), "unknown dtype"),
    "offsets out of range": (_edit("model.norm.weight", lambda e: e.update(data_offsets=[0, 1 << 40])),
                             "outside"),
    "offsets reversed": (_edit("model.norm.weight", lambda e: e.update(data_offsets=[8, 4])), "begin <= end"),
    "size differs from shape": (_edit("model.norm.weight", lambda e: e.update(shape=[65])), "needs"),
    "shape overflows": (_edit("model.norm.weight", lambda e: e.update(shape=[1 << 40, 1 << 40])), "overflow"),
    "negative shape": (_edit("model.norm.weight", lambda e: e.update(shape=[-64])), "non-negative"),
    "missing tensor": (_drop("model.layers.0.mlp.up_proj.weight"), "missing tensor 'model.layers.0.mlp.up_proj"),
    "missing lm_head": (_drop("lm_head.weight"), "missing tensor 'lm_head.weight'"),
    "shape mismatch": (_config(lambda c: c.update(intermediate_size=128)), "config.json implies"),
    "unexpected tensor": (_extra_bias, "unexpected tensor"),
    "bad config.json": (_bad_config_json, "not valid JSON"),
    "config.json not an object": (_config(lambda c: c.clear() or c.update(x=1)), "architectures"),
    "other architecture": (_config(lambda c: c.update(architectures=["GemmaForCausalLM"])),
                           "unsupported architecture 'GemmaForCausalLM'"),
    "missing hidden_size": (_config(lambda c: c.pop("hidden_size")), "hidden_size"),
    "fractional size": (_config(lambda c: c.update(num_hidden_layers=1.5)), "num_hidden_layers"),
    "heads not dividing": (_config(lambda c: c.update(num_key_value_heads=3)), "kv-heads"),
    "yarn scaling": (_config(lambda c: c.update(rope_scaling={"rope_type": "yarn", "factor": 4.0})), "yarn"),
    "dynamic scaling": (_config(lambda c: c.update(rope_scaling={"type": "dynamic", "factor": 2.0})), "dynamic"),
    "llama3 without factor": (_config(lambda c: c.update(rope_scaling={"rope_type": "llama3"})), "factor"),
    "gelu": (_config(lambda c: c.update(hidden_act="gelu")), "gelu"),
    "biases": (_config(lambda c: c.update(attention_bias=True)), "biases"),
    "vocab smaller than tokenizer": (_config(lambda c: c.update(vocab_size=300)), "vocab_size"),
    "no tokenizer": (_no_tokenizer, "no tokenizer.model or tokenizer.json"),
    "bad tokenizer.json": (_bad_tokenizer_json, "tokenizer.json"),
    "no weights": (lambda f: (f / "model.safetensors").unlink(), "no model.safetensors"),
    "index escapes the folder": (_index_escapes, "not a file name in the folder"),
    "index names the wrong shard": (_index_wrong_shard, "as the index says"),
    "bad tokenizer_config.json": (lambda f: (f / "tokenizer_config.json").write_text("{\"added_tokens_decoder\": "),
                                  "tokenizer_config.json"),
    "bad added_tokens.json": (lambda f: (f / "added_tokens.json").write_bytes(b"\xff[1,"), "added_tokens.json"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_fails_cleanly(wgllm, scratch, tokenizer, case):
    mutate, expect = BAD[case]
    folder = scratch / "bad" / case.replace(" ", "_")
    small_model(folder, tokenizer)
    mutate(folder)
    out = scratch / "bad" / (case.replace(" ", "_") + ".gguf")
    line = one_error_line(wgllm.run("convert", "hf", folder, out))
    assert expect in line, line
    assert not out.exists(), "no output file after a failure"


def test_usage_errors(wgllm, scratch):
    for args in (["convert", "hf"], ["convert", "hf", scratch], ["convert", "hf", scratch, "x.gguf", "--type", "q5_1"],
                 ["convert", "hf", scratch, "a.gguf", "b.gguf"]):
        p = wgllm.run(*args)
        assert p.returncode == 2, args
        assert p.stderr.decode().startswith("wgllm convert: error: "), args
    line = one_error_line(wgllm.run("convert", "hf", scratch / "nope", scratch / "x.gguf"))
    assert "not a folder" in line
    # bf16 output stays an hf-only option
    p = wgllm.run("convert", "llama2c", "a", "b", "c", "--type", "bf16")
    assert p.returncode == 2


def test_llama2_tokenizer_padded_vocab_and_folder_name(wgllm, scratch, shared):
    """The real Llama 2 tokenizer.model; vocab_size above its piece count: the extra rows
    get unused pieces."""
    params = dict(LLAMA2, num_hidden_layers=1, vocab_size=32003)
    folder = scratch / "hf" / "My-Model-1B"
    w = random_weights(params, 5)
    write_checkpoint(folder, params, w, shared / "models" / "tokenizer.model")
    out = convert(wgllm, str(folder) + "/", scratch / "padded.gguf")
    r = gguf.GGUFReader(str(out))
    assert r.fields["general.name"].contents() == "My Model 1B"  # llama.cpp's title of the folder's name
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    assert len(tokens) == 32003 and tokens[-1] == "[PAD32002]" and tokens[278] == "\u2581the"
    assert r.fields["tokenizer.ggml.token_type"].contents()[-1] == 5  # unused
    ids = wgllm.tokenize(out, "Hello world")
    assert ids == [1, 15043, 3186]
    ids += [31999, 32002]
    err = relative_error(wgllm.logits(out, ids), hf_logits(params, w, ids))
    assert err <= BOUND


def test_added_tokens_of_a_sentencepiece_folder(wgllm, scratch, tokenizer):
    """Added tokens overwrite their ids as llama.cpp's converter writes them (score -1000;
    CONTROL when special or spelled <|...|>); entries with ids outside the vocabulary,
    negative, not numbers, or without text are skipped, not fatal; tokenizer_config.json's
    eos_token names the eos id."""
    folder = scratch / "added" / "tiny"
    small_model(folder, tokenizer)
    (folder / "added_tokens.json").write_text(json.dumps({"<extra>": 500, "<far>": 10**9, "<neg>": -3, "<str>": "7"}))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "added_tokens_decoder": {"510": {"content": "<|end|>", "special": False},
                                 "511": {"content": "<sep>", "special": True},
                                 "512": {"content": "<past-the-end>", "special": True},
                                 "-1": {"content": "<neg>"}, "x": {"content": "<x>"}, "509": {"content": 5},
                                 "508": "not an object"},
        "eos_token": {"content": "<|end|>"}, "add_bos_token": False}))
    out = convert(wgllm, folder, scratch / "added" / "tiny.gguf")
    r = gguf.GGUFReader(str(out))
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    scores = r.fields["tokenizer.ggml.scores"].contents()
    assert len(tokens) == VOCAB
    assert (tokens[500], types[500], scores[500]) == ("<extra>", 4, -1000.0)  # USER_DEFINED
    assert (tokens[510], types[510]) == ("<|end|>", 3) and (tokens[511], types[511]) == ("<sep>", 3)  # CONTROL
    assert "<far>" not in tokens and "<neg>" not in tokens and "<x>" not in tokens and "<past-the-end>" not in tokens
    assert r.fields["tokenizer.ggml.eos_token_id"].contents() == 510
    assert r.fields["tokenizer.ggml.add_bos_token"].contents() is False
    assert wgllm.tokenize(out, "a<|end|>b", bos=False)  # still a working tokenizer


@pytest.mark.parametrize("name_or_path, option, expected", [
    (None, None, "Tiny Llama"),                             # the folder's name, titled
    ("acme/my-model-v0.2", None, "My Model v0.2"),          # a model id: its name, titled
    ("TinyLlama-1.1B-Chat", None, "TinyLlama 1.1B Chat"),  # words not all lower case stay
    ("/home/someone/models/x", None, "Tiny Llama"),         # a path: the folder's name
    ("acme/my-model", "Given/Name as-is", "Given/Name as-is"),  # --name wins, unchanged
])
def test_general_name(wgllm, scratch, tokenizer, name_or_path, option, expected):
    folder = scratch / "names" / str(abs(hash((name_or_path, option)))) / "tiny-llama"
    small_model(folder, tokenizer)
    if name_or_path is not None:
        config = json.loads((folder / "config.json").read_text())
        config["_name_or_path"] = name_or_path
        (folder / "config.json").write_text(json.dumps(config))
    out = convert(wgllm, folder, folder.parent / "out.gguf", *(["--name", option] if option else []))
    assert gguf.GGUFReader(str(out)).fields["general.name"].contents() == expected
