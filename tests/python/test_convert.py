"""`wgllm convert` and `wgllm synth` against independent references.

* llama2.c checkpoints converted at f32 must equal, bit for bit, the reference
  GGUFs of the data folder (made by an independent writer), metadata and
  vocabulary included; f16/q8_0/q4_0 conversions must hold the exact bytes of
  gguf-py's reference quantizers and stay within each format's error bound.
* `convert spm` must carry the pieces, scores and types that a direct protobuf
  read of tokenizer.model gives (a small reader below, no sentencepiece package).
* `synth` files must have the requested shapes and types, be deterministic for a
  seed whatever the thread count, and give finite O(1) logits in a numpy forward pass.
* Malformed inputs must fail with exit code 1, one error line, and no output file.
"""

import struct

import numpy as np
import pytest

import gguf
from gguf import GGMLQuantizationType as QT

import llama_ref
from conftest import CHECKPOINTS

QTYPES = {"f32": QT.F32, "f16": QT.F16, "q8_0": QT.Q8_0, "q4_0": QT.Q4_0}
FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7}  # llama.cpp's LLAMA_FTYPE numbering

# Keys of the reference GGUFs that describe how they were made, not the model.
PROVENANCE_KEYS = {"general.source", "general.alignment"}


# ---------------------------------------------------------------- helpers

def fields(reader):
    """{key: (value types, contents)} of the metadata, without the GGUF.* header pseudo-keys."""
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        out[key] = (list(field.types), field.contents())
    return out


def tensors(reader):
    return {t.name: t for t in reader.tensors}


def values(t):
    """Float64 values of a tensor shaped (rows, cols) numpy-style (ne reversed)."""
    data = gguf.quants.dequantize(t.data, t.tensor_type)
    return np.asarray(data, dtype=np.float64).reshape(tuple(int(n) for n in reversed(t.shape)))


def raw_bytes(t):
    return np.ascontiguousarray(t.data).view(np.uint8).tobytes()


def assert_failed_cleanly(proc, out_dir, what):
    """Exit 1, one 'wgllm convert: error:' line, and nothing left in out_dir."""
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 1, f"{what}: exit {proc.returncode}, stderr {err!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wgllm convert: error: "), f"{what}: stderr {err!r}"
    assert list(out_dir.iterdir()) == [], f"{what}: left {list(out_dir.iterdir())}"
    return lines[0]


# ---- a minimal SentencePiece ModelProto reader (protobuf wire format)

def _varint(buf, pos):
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def _fields(buf):
    """Yields (field number, wire type, value) of one protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield num, wire, value


def _int32(v):
    """A varint-encoded int32 (negative values use 10 bytes, two's complement)."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def read_spm(path):
    """pieces, scores, types, special ids and add_dummy_prefix of a SentencePiece model."""
    pieces, scores, types = [], [], []
    spec = {"unk": 0, "bos": 1, "eos": 2, "pad": -1, "add_dummy_prefix": True}
    for num, _, value in _fields(path.read_bytes()):
        if num == 1:  # repeated SentencePiece
            piece, score, kind = "", 0.0, 1
            for n, _, v in _fields(value):
                if n == 1:
                    piece = v.decode("utf-8")
                elif n == 2:
                    score = struct.unpack("<f", v)[0]
                elif n == 3:
                    kind = v
            pieces.append(piece)
            scores.append(score)
            types.append(kind)
        elif num == 2:  # TrainerSpec
            for n, _, v in _fields(value):
                name = {40: "unk", 41: "bos", 42: "eos", 43: "pad"}.get(n)
                if name:
                    spec[name] = _int32(v)
        elif num == 3:  # NormalizerSpec
            for n, _, v in _fields(value):
                if n == 3:
                    spec["add_dummy_prefix"] = bool(v)
    return pieces, np.array(scores, dtype=np.float32), types, spec


# ---------------------------------------------------------------- (a) f32 equals the reference GGUFs

@pytest.mark.parametrize("model", sorted(CHECKPOINTS))
def test_llama2c_f32_matches_reference_gguf(converted, shared, model):
    ours = gguf.GGUFReader(str(converted(model, "f32")))
    ref = gguf.GGUFReader(str(shared / "models" / f"{model}-f32.gguf"))

    our_kv, ref_kv = fields(ours), fields(ref)
    for key, (types, value) in ref_kv.items():
        if key in PROVENANCE_KEYS:
            continue
        assert key in our_kv, f"missing key {key}"
        assert our_kv[key][0] == types, f"{key}: types {our_kv[key][0]} != {types}"
        if isinstance(value, list) and value and isinstance(value[0], float):
            assert np.array_equal(np.float32(our_kv[key][1]), np.float32(value)), key
        else:
            assert our_kv[key][1] == value, f"{key}: {our_kv[key][1]!r} != {value!r}"
    extra = set(our_kv) - set(ref_kv) - PROVENANCE_KEYS
    assert not extra, f"unexpected keys {extra}"
    assert our_kv["general.name"][1] == model

    ot, rt = tensors(ours), tensors(ref)
    # llama2.c's shared classifier: the reference stores a copy as output.weight, we store none.
    assert np.array_equal(raw_bytes(rt["output.weight"]), raw_bytes(rt["token_embd.weight"]))
    assert "output.weight" not in ot
    assert [t.name for t in ours.tensors] == [t.name for t in ref.tensors if t.name != "output.weight"]
    for name, t in ot.items():
        r = rt[name]
        assert t.tensor_type == QT.F32 and r.tensor_type == QT.F32, name
        assert list(t.shape) == list(r.shape), f"{name}: shape {list(t.shape)} != {list(r.shape)}"
        assert raw_bytes(t) == raw_bytes(r), f"{name}: data differ"


def test_llama2c_weights_match_checkpoint_layout(converted, shared):
    """A second, direct reference: slices of the checkpoint file itself."""
    ckpt = (shared / CHECKPOINTS["stories260K"][0]).read_bytes()
    dim, hidden, n_layer, n_head, n_kv, vocab, seq_len = struct.unpack("<7i", ckpt[:28])
    w = np.frombuffer(ckpt, dtype="<f4", offset=28)
    kv_dim = dim // n_head * n_kv
    t = tensors(gguf.GGUFReader(str(converted("stories260K", "f32"))))
    emb = w[: vocab * dim].reshape(vocab, dim)
    assert np.array_equal(values(t["token_embd.weight"]), emb)
    off = vocab * dim + n_layer * dim + n_layer * dim * dim  # token_embedding, rms_att, wq
    wk = w[off: off + n_layer * kv_dim * dim].reshape(n_layer, kv_dim, dim)
    for layer in range(n_layer):
        assert np.array_equal(values(t[f"blk.{layer}.attn_k.weight"]), wk[layer])
    assert [int(n) for n in t["blk.0.attn_k.weight"].shape] == [dim, kv_dim]
    assert [int(n) for n in t["blk.0.ffn_down.weight"].shape] == [hidden, dim]


# ---------------------------------------------------------------- (b) f16 / q8_0 / q4_0

def error_bound(qtype, ref):
    """Largest |dequantized - ref| each element may show. ref: (rows, cols) float64.
    f16: half an ulp (2^-11 relative) plus the subnormal step. q8_0 / q4_0: blocks
    of 32 with d = amax/127 (q8_0) or amax/8 (q4_0); rounding gives d/2 for q8_0,
    and q4_0 clamps +8 to 7, costing up to d; storing d as f16 adds |q| * d * 2^-11."""
    if qtype == QT.F16:
        return np.abs(ref) * 2.0 ** -11 + 2.0 ** -24
    blocks = np.abs(ref).reshape(ref.shape[0], -1, 32).max(axis=2, keepdims=True)
    if qtype == QT.Q8_0:
        d = blocks / 127.0
        bound = d * 0.5 + 127 * d * 2.0 ** -11
    else:
        d = blocks / 8.0
        bound = d * 1.0 + 8 * d * 2.0 ** -11
    return np.broadcast_to(bound * (1 + 1e-6) + 1e-12, ref.reshape(ref.shape[0], -1, 32).shape).reshape(ref.shape)


@pytest.mark.parametrize("qname", ["f16", "q8_0", "q4_0"])
@pytest.mark.parametrize("model", sorted(CHECKPOINTS))
def test_llama2c_quantized_within_bounds(converted, shared, model, qname):
    qtype = QTYPES[qname]
    reader = gguf.GGUFReader(str(converted(model, qname)))
    assert reader.fields["general.file_type"].contents() == FILE_TYPE[qname]
    ref = tensors(gguf.GGUFReader(str(shared / "models" / f"{model}-f32.gguf")))
    for name, t in tensors(reader).items():
        r = values(ref[name])
        ours = values(t)
        assert ours.shape == r.shape, name
        if len(t.shape) == 1:
            assert t.tensor_type == QT.F32, f"{name}: norms stay f32"
            assert np.array_equal(ours, r), name
            continue
        # ffn_down rows hold 172 values: not whole 32-blocks, so they fall back to f16
        expect = QT.F16 if (qtype != QT.F16 and int(t.shape[0]) % 32) else qtype
        assert t.tensor_type == expect, f"{name}: {t.tensor_type.name}, expected {expect.name}"
        # exact bytes of the reference quantizer (llama.cpp's, as ported by gguf-py)
        want = gguf.quants.quantize(r.astype(np.float32), expect)
        assert raw_bytes(t) == np.ascontiguousarray(want).view(np.uint8).tobytes(), f"{name}: bytes differ"
        err = np.abs(ours - r)
        bound = error_bound(expect, r)
        assert np.all(err <= bound), f"{name}: error {err.max()} over its bound"


def test_llama2c_fallback_note(wgllm, shared, scratch):
    ckpt, tok = CHECKPOINTS["aidreams260K"]
    out = scratch / "note-q8.gguf"
    p = wgllm.ok("convert", "llama2c", shared / ckpt, shared / tok, out, "--type", "q8_0", "--name", "x")
    err = p.stderr.decode()
    notes = [line for line in err.splitlines() if "note:" in line]
    assert len(notes) == 1 and "ffn_down" in notes[0] and "f16" in notes[0], err
    assert gguf.GGUFReader(str(out)).fields["general.name"].contents() == "x"


# ---------------------------------------------------------------- (c) SentencePiece vocabulary

def test_convert_spm_matches_protobuf(wgllm, shared, scratch):
    src = shared / "models" / "tokenizer.model"
    out = scratch / "spm-vocab.gguf"
    wgllm.ok("convert", "spm", src, out)
    pieces, scores, types, spec = read_spm(src)
    assert len(pieces) == 32000

    r = gguf.GGUFReader(str(out))
    assert len(r.tensors) == 0
    kv = fields(r)
    assert kv["general.architecture"][1] == "llama"
    assert kv["tokenizer.ggml.model"][1] == "llama"
    assert kv["tokenizer.ggml.tokens"][1] == pieces
    assert np.array_equal(np.float32(kv["tokenizer.ggml.scores"][1]), scores)
    assert kv["tokenizer.ggml.token_type"][1] == types
    assert kv["tokenizer.ggml.bos_token_id"][1] == spec["bos"] == 1
    assert kv["tokenizer.ggml.eos_token_id"][1] == spec["eos"] == 2
    assert kv["tokenizer.ggml.unknown_token_id"][1] == spec["unk"] == 0
    assert "tokenizer.ggml.padding_token_id" not in kv  # the Llama 2 model has pad_id -1
    assert kv["tokenizer.ggml.add_space_prefix"][1] == spec["add_dummy_prefix"]
    assert kv["tokenizer.ggml.add_bos_token"][1] is True
    assert kv["tokenizer.ggml.add_eos_token"][1] is False
    # spot checks that the reader above is itself right
    assert pieces[:3] == ["<unk>", "<s>", "</s>"] and pieces[3] == "<0x00>" and types[3] == 6


# ---------------------------------------------------------------- (d) synth

def synth_file(wgllm, scratch, name, *args):
    out = scratch / f"{name}.gguf"
    if out.exists():
        out.unlink()
    wgllm.ok("synth", *args, out, timeout=120)
    return out


def check_shape(path, dim, n_layer, n_head, n_kv, ffn, vocab, ctx, tied, qname):
    r = gguf.GGUFReader(str(path))
    kv = {k: v[1] for k, v in fields(r).items()}
    assert kv["general.architecture"] == "llama"
    assert kv["general.file_type"] == FILE_TYPE[qname]
    assert kv["llama.embedding_length"] == dim
    assert kv["llama.block_count"] == n_layer
    assert kv["llama.attention.head_count"] == n_head
    assert kv["llama.attention.head_count_kv"] == n_kv
    assert kv["llama.feed_forward_length"] == ffn
    assert kv["llama.vocab_size"] == vocab
    assert kv["llama.context_length"] == ctx
    assert kv["llama.rope.dimension_count"] == dim // n_head
    assert len(kv["tokenizer.ggml.tokens"]) == vocab
    kv_dim = dim // n_head * n_kv
    want = {"token_embd.weight": [dim, vocab], "output_norm.weight": [dim]}
    if not tied:
        want["output.weight"] = [dim, vocab]
    for i in range(n_layer):
        p = f"blk.{i}."
        want.update({p + "attn_norm.weight": [dim], p + "attn_q.weight": [dim, dim],
                     p + "attn_k.weight": [dim, kv_dim], p + "attn_v.weight": [dim, kv_dim],
                     p + "attn_output.weight": [dim, dim], p + "ffn_norm.weight": [dim],
                     p + "ffn_gate.weight": [dim, ffn], p + "ffn_up.weight": [dim, ffn],
                     p + "ffn_down.weight": [ffn, dim]})
    t = tensors(r)
    assert set(t) == set(want)
    for name, shape in want.items():
        assert [int(n) for n in t[name].shape] == shape, name
        if len(shape) == 1:
            assert t[name].tensor_type == QT.F32, name
        else:
            qtype = QTYPES[qname]
            expect = QT.F16 if qtype in (QT.Q8_0, QT.Q4_0) and shape[0] % 32 else qtype
            assert t[name].tensor_type == expect, name
    return r


def test_synth_preset_tiny(wgllm, scratch):
    out = synth_file(wgllm, scratch, "tiny", "--preset", "tiny", "--type", "f32", "--seed", "1")
    r = check_shape(out, 64, 2, 4, 2, 192, 512, 256, True, "f32")
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    scores = np.array(r.fields["tokenizer.ggml.scores"].contents())
    assert tokens[:3] == ["<unk>", "<s>", "</s>"] and types[:3] == [2, 3, 3]
    assert tokens[3:259] == [f"<0x{b:02X}>" for b in range(256)] and set(types[3:259]) == {6}
    assert len(set(tokens)) == len(tokens)
    assert set(types[259:]) == {1} and np.all(np.diff(scores[259:]) < 0)


@pytest.mark.parametrize("qname", ["f32", "f16", "q8_0", "q4_0"])
def test_synth_flags_override(wgllm, scratch, qname):
    out = synth_file(wgllm, scratch, f"gqa-{qname}", "--preset", "small", "--dim", "128", "--layers", "3",
                     "--heads", "8", "--kv-heads", "2", "--ffn", "96", "--vocab", "300", "--ctx", "64",
                     "--untied", "--type", qname, "--seed", "7")
    check_shape(out, 128, 3, 8, 2, 96, 300, 64, False, qname)


def test_synth_deterministic_across_threads(wgllm, scratch):
    # ffn 16384 x dim 64: each ffn matrix spans four work chunks, so threads really share it
    args = ["--preset", "tiny", "--ffn", "16384", "--type", "q4_0"]
    a = synth_file(wgllm, scratch, "det-a", *args, "--seed", "42", "-t", "1")
    b = synth_file(wgllm, scratch, "det-b", *args, "--seed", "42", "-t", "3")
    c = synth_file(wgllm, scratch, "det-c", *args, "--seed", "43", "-t", "2")
    assert a.read_bytes() == b.read_bytes()
    ta, tc = tensors(gguf.GGUFReader(str(a))), tensors(gguf.GGUFReader(str(c)))
    for name in ta:
        assert raw_bytes(ta[name]) != raw_bytes(tc[name]), f"{name}: same data for different seeds"


def test_synth_vocab_from_spm(wgllm, shared, scratch):
    src = shared / "models" / "tokenizer.model"
    out = synth_file(wgllm, scratch, "spm-synth", "--preset", "tiny", "--type", "q8_0", "--seed", "3",
                     "--vocab-from", src)
    r = check_shape(out, 64, 2, 4, 2, 192, 32000, 256, True, "q8_0")
    pieces, scores, types, _ = read_spm(src)
    assert r.fields["tokenizer.ggml.tokens"].contents() == pieces
    assert r.fields["tokenizer.ggml.token_type"].contents() == types


@pytest.mark.parametrize("tied", ["--tied", "--untied"])
def test_synth_logits_are_finite_and_order_one(wgllm, scratch, tied):
    out = synth_file(wgllm, scratch, f"fwd{tied}", "--preset", "tiny", tied, "--layers", "4",
                     "--type", "f32", "--seed", "5")
    m = llama_ref.Model(str(out))
    assert m.tied == (tied == "--tied")
    logits = llama_ref.logits(m, [1, 300, 301, 302, 1000 % m.n_vocab, 5, 400, 401])
    assert np.all(np.isfinite(logits))
    std = logits.std(axis=1)
    assert np.all((std > 0.3) & (std < 10)), std
    assert np.abs(logits).max() < 50
    # weight scales as documented: embeddings std 2/sqrt(dim), matrices 1/sqrt(fan_in), norms ~1
    w = {t.name: values(t) for t in gguf.GGUFReader(str(out)).tensors}
    assert abs(w["token_embd.weight"].std() * np.sqrt(64) / 2 - 1) < 0.05
    assert abs(w["blk.0.attn_q.weight"].std() * np.sqrt(64) - 1) < 0.05
    assert abs(w["blk.0.attn_norm.weight"].mean() - 1) < 0.05


@pytest.mark.parametrize("args", [
    ["--preset", "nope"],
    ["--heads", "3"],             # 64 not a multiple of 3
    ["--heads", "4", "--kv-heads", "3"],
    ["--dim", "60", "--heads", "4"],  # head size 15 is odd
    ["--vocab", "100"],           # fewer than <unk> <s> </s> + 256 bytes
    ["--dim", "0"],
    ["--dim", "abc"],
    ["--type", "q5_k"],
    ["--bogus"],
    ["--tied", "--untied"],
])
def test_synth_usage_errors(wgllm, scratch, args):
    full = ["--preset", "tiny", "--type", "f32", "--seed", "1"] + args
    out = scratch / "usage.gguf"
    p = wgllm.run("synth", *full, out)
    assert p.returncode == 2, f"{args}: exit {p.returncode}"
    assert p.stderr.decode().startswith("wgllm synth: error: "), p.stderr
    # one error line and a hint, not the whole usage
    assert p.stderr.decode().splitlines()[1:] == ["run 'wgllm synth --help' for usage"], p.stderr
    assert not out.exists()


def test_synth_requires_type_seed_and_out(wgllm, scratch):
    out = scratch / "req.gguf"
    for args in (["--seed", "1", out], ["--type", "f32", out], ["--type", "f32", "--seed", "1"]):
        p = wgllm.run("synth", *args)
        assert p.returncode == 2, args
    assert not out.exists()


# ---------------------------------------------------------------- (e) malformed inputs

@pytest.fixture
def case_dir(scratch, request):
    d = scratch / f"bad-{request.node.name}".replace("[", "-").replace("]", "")
    d.mkdir()
    out = d / "out"
    out.mkdir()
    return d, out


def _ckpt(shared):
    return bytearray((shared / CHECKPOINTS["stories260K"][0]).read_bytes())


def _with_header(data, index, value):
    data[4 * index: 4 * index + 4] = struct.pack("<i", value)
    return data


BAD_CHECKPOINTS = {
    # name: (make bytes from the good checkpoint, substring the message must contain)
    "empty": (lambda d: b"", "header"),
    "header-only": (lambda d: d[:28], "size mismatch"),
    "short-header": (lambda d: d[:20], "header"),
    "truncated": (lambda d: d[:-4], "truncated"),
    "truncated-odd": (lambda d: d[:-1], "size mismatch"),
    "extra-bytes": (lambda d: d + b"\0\0\0\0", "size mismatch"),
    "negative-dim": (lambda d: _with_header(d, 0, -64), "dim"),
    "zero-heads": (lambda d: _with_header(d, 3, 0), "n_heads"),
    "huge-layers": (lambda d: _with_header(d, 2, 0x7FFFFFFF), "n_layers"),
    "dim-not-heads-multiple": (lambda d: _with_header(d, 0, 60), "heads"),
    "kv-not-dividing": (lambda d: _with_header(d, 4, 3), "kv-heads"),
    "wrong-dim": (lambda d: _with_header(d, 0, 128), "size mismatch"),
    "vocab-sign-flipped": (lambda d: _with_header(d, 5, -512), "vocab_size sign"),
    "export-v1-magic": (lambda d: struct.pack("<Ii", 0x616B3432, 1) + d[8:], "legacy"),
}


@pytest.mark.parametrize("name", sorted(BAD_CHECKPOINTS))
def test_convert_malformed_checkpoint(wgllm, shared, case_dir, name):
    make, needle = BAD_CHECKPOINTS[name]
    d, out_dir = case_dir
    bad = d / "model.bin"
    bad.write_bytes(bytes(make(_ckpt(shared))))
    p = wgllm.run("convert", "llama2c", bad, shared / CHECKPOINTS["stories260K"][1], out_dir / "m.gguf")
    line = assert_failed_cleanly(p, out_dir, name)
    assert needle in line, f"{name}: {line!r} lacks {needle!r}"
    assert str(bad) in line


def test_convert_missing_and_mismatched_inputs(wgllm, shared, case_dir):
    d, out_dir = case_dir
    ckpt, tok = (shared / p for p in CHECKPOINTS["stories260K"])
    line = assert_failed_cleanly(wgllm.run("convert", "llama2c", d / "missing.bin", tok, out_dir / "m.gguf"),
                                 out_dir, "missing checkpoint")
    assert "missing.bin" in line
    line = assert_failed_cleanly(wgllm.run("convert", "llama2c", ckpt, d / "missing-tok.bin", out_dir / "m.gguf"),
                                 out_dir, "missing tokenizer")
    assert "missing-tok.bin" in line
    # a 32000-piece tokenizer for a 512-piece checkpoint
    big_tok = d / "tok32000.bin"
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [f"<0x{b:02X}>".encode() for b in range(256)]
    pieces += [f"p{i}".encode() for i in range(32000 - len(pieces))]
    big_tok.write_bytes(struct.pack("<i", 16) + b"".join(struct.pack("<fi", 0.0, len(p)) + p for p in pieces))
    line = assert_failed_cleanly(wgllm.run("convert", "llama2c", ckpt, big_tok, out_dir / "m.gguf"),
                                 out_dir, "vocab mismatch")
    assert "32000" in line and "512" in line
    line = assert_failed_cleanly(wgllm.run("convert", "spm", d / "missing.model", out_dir / "v.gguf"),
                                 out_dir, "missing spm")
    assert "missing.model" in line
    garbage = d / "garbage.model"
    garbage.write_bytes(b"\xff" * 64)
    assert_failed_cleanly(wgllm.run("convert", "spm", garbage, out_dir / "v.gguf"), out_dir, "garbage spm")
    # output into a folder that does not exist
    p = wgllm.run("convert", "llama2c", ckpt, tok, d / "no-such-dir" / "m.gguf")
    assert p.returncode == 1 and p.stderr.decode().startswith("wgllm convert: error: ")


@pytest.mark.parametrize("args", [
    [],
    ["gguf", "a", "b"],
    ["llama2c", "a", "b"],
    ["llama2c", "a", "b", "c", "d"],
    ["llama2c", "a", "b", "c", "--type", "q5_k"],
    ["llama2c", "a", "b", "c", "--type"],
    ["llama2c", "a", "b", "c", "--bogus"],
    ["spm", "a"],
    ["spm", "a", "b", "--type", "f16"],
])
def test_convert_usage_errors(wgllm, args):
    p = wgllm.run("convert", *args)
    assert p.returncode == 2, f"{args}: exit {p.returncode}"
    err = p.stderr.decode()
    assert err.startswith("wgllm convert: error: "), err
    assert err.splitlines()[1:] == ["run 'wgllm convert --help' for usage"], err
