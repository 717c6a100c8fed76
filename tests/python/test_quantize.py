"""`wgllm quantize` end to end, against gguf-py (llama.cpp's Python package) as the
independent reference:

- every target type: the file loads, `wgllm logits` matches the float64 reference
  run on the quantized file itself (llama_ref dequantizes the same bytes with
  gguf.quants.dequantize, so the bound is the float32-rounding bound of
  test_forward.py, 1e-4), and stays within a per-type bound of the F32 model;
- Q4_0 and Q8_0 tensors are byte-identical to gguf.quants.quantize of the F32 data;
- K-quant dequantization is exact: `wgllm quantize K.gguf OUT.gguf f32` writes our C
  dequantizer's values, compared bit for bit with gguf.quants.dequantize, on our
  quantizer's blocks and on random bytes;
- the mixes give llama.cpp's per-tensor types, rows that are not whole 256-blocks
  fall back as llama.cpp does, metadata is copied, importance matrices are used
  and malformed ones refused, bad input gives a clean error.
"""

import numpy as np
import pytest

import gguf

from conftest import relative_error, write_random_llama

Q = gguf.GGMLQuantizationType
IDS = [1, 300, 301, 5, 400, 17, 302, 9, 450, 33, 12, 303]

# Logits of the quantized model against the F32 model, as a relative rms error
# over all logits, ||ours - f32|| / ||f32||. The weights' relative rms error per
# type (tests/unit/test_kquant.c: about 1/(2^bits - 1), so each bit fewer doubles
# it) perturbs every matmul of the 4 layers; a random network has nothing to damp
# it and amplifies it about 4x (q8_0: weights 0.004, logits 0.017). Measured
# (dim 256, 4 layers, these ids): f16 0.0008, bf16 0.0058, q8_0 0.017, q6_k 0.066,
# q5_k 0.12, q5_k_m 0.116, q5_0 0.128, q5_1 0.137, q4_k 0.21, q4_k_m 0.23,
# q4_1 0.28, q4_0 0.30, q3_k 0.47, q2_k 0.61; the bounds allow 50% more.
BOUNDS = {
    "f16": 0.0015, "bf16": 0.009, "q8_0": 0.026, "q6_k": 0.1, "q5_k": 0.18, "q5_k_m": 0.18, "q5_0": 0.19,
    "q5_1": 0.21, "q4_k": 0.32, "q4_k_m": 0.34, "q4_1": 0.42, "q4_0": 0.45, "q3_k": 0.7, "q2_k": 0.92,
}


def rel_rms(ours, ref):
    return float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))


FILE_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q2_k": 10,
              "q3_k": 11, "q4_k": 14, "q4_k_m": 15, "q5_k": 16, "q5_k_m": 17, "q6_k": 18, "bf16": 32}
K_TYPES = {"q2_k": Q.Q2_K, "q3_k": Q.Q3_K, "q4_k": Q.Q4_K, "q5_k": Q.Q5_K, "q6_k": Q.Q6_K}

N_LAYER = 4


@pytest.fixture(scope="module")
def f32_model(synth):
    """Untied model with K-quant-friendly rows (256, 512), 4 layers, GQA 2."""
    return synth("quant-base", ["--dim", "256", "--layers", str(N_LAYER), "--heads", "4", "--kv-heads", "2",
                                "--ffn", "512", "--vocab", "512", "--ctx", "64", "--untied", "--type", "f32",
                                "--seed", "11"])


@pytest.fixture(scope="module")
def quantized(wgllm, f32_model, scratch):
    cache = {}

    def make(qtype, *extra):
        key = (qtype,) + extra
        if key not in cache:
            out = scratch / f"quant-{qtype}{''.join(extra).replace('-', '_')}.gguf"
            p = wgllm.ok("quantize", f32_model, out, qtype, "--threads", "2", *extra, timeout=120)
            cache[key] = (out, p.stderr.decode())
        return cache[key][0]

    return make


def tensors(path):
    return {t.name: t for t in gguf.GGUFReader(str(path)).tensors}


def field(path, key):
    f = gguf.GGUFReader(str(path)).fields.get(key)
    return None if f is None else f.contents()


@pytest.mark.parametrize("qtype", sorted(BOUNDS))
def test_quantize_logits(qtype, wgllm, f32_model, quantized, ref_logits):
    path = quantized(qtype)
    assert field(path, "general.file_type") == FILE_TYPES[qtype]
    ours = wgllm.logits(path, IDS)
    # the engine against the reference on the very same bytes
    assert relative_error(ours, ref_logits(path, IDS)) <= 1e-4
    # the quantization error itself
    err = rel_rms(ours, wgllm.logits(f32_model, IDS))
    assert err <= BOUNDS[qtype], f"{qtype}: {err:.4g}"


@pytest.mark.parametrize("qtype,gtype,extra", [("q8_0", Q.Q8_0, ()), ("q4_0", Q.Q4_0, ("--pure",)),
                                               ("q4_0", Q.Q4_0, ())])
def test_bytes_match_gguf_py(qtype, gtype, extra, f32_model, quantized):
    src = tensors(f32_model)
    out = tensors(quantized(qtype, *extra))
    compared = 0
    for name, t in out.items():
        if t.tensor_type != gtype:
            continue
        want = gguf.quants.quantize(np.asarray(src[name].data, dtype=np.float32), gtype)
        assert np.array_equal(np.asarray(t.data).reshape(-1), want.reshape(-1)), name
        compared += 1
    n_matrices = sum(1 for t in src.values() if len(t.shape) == 2)
    # q8_0 and --pure: every matrix; q4_0's mix keeps output.weight as q6_k
    assert compared == (n_matrices - 1 if qtype == "q4_0" and not extra else n_matrices)


def assert_same_floats(ours, want, what):
    ours = np.asarray(ours, dtype=np.float32).reshape(-1)
    want = np.asarray(want, dtype=np.float32).reshape(-1)
    same = (ours.view(np.uint32) == want.view(np.uint32)) | (np.isnan(ours) & np.isnan(want))
    bad = np.flatnonzero(~same)
    assert bad.size == 0, f"{what}: {bad.size} values differ, first at {bad[0]}: {ours[bad[0]]} vs {want[bad[0]]}"


def dequant_check(wgllm, path, scratch):
    """Our dequantizer (via quantize to f32) against gguf.quants.dequantize, bit for bit."""
    back = scratch / (path.stem + "-back.gguf")
    wgllm.ok("quantize", path, back, "f32", timeout=120)
    ours = tensors(back)
    n = 0
    for name, t in tensors(path).items():
        if t.tensor_type in (Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K):
            assert ours[name].tensor_type == Q.F32
            assert_same_floats(ours[name].data, gguf.quants.dequantize(t.data, t.tensor_type), name)
            n += 1
    return n


@pytest.mark.parametrize("qtype", sorted(K_TYPES))
def test_kquant_dequant_matches_gguf_py(qtype, wgllm, quantized, scratch):
    # 7 matrices a layer, token_embd and output
    assert dequant_check(wgllm, quantized(qtype, "--pure"), scratch) == 7 * N_LAYER + 2


@pytest.mark.parametrize("qtype", sorted(K_TYPES))
def test_kquant_dequant_random_bytes(qtype, wgllm, scratch):
    """Random blocks (any scale bits, NaN and infinite f16 scales included) written by gguf-py."""
    path = write_random_llama(scratch / f"rand-{qtype}.gguf", dim=256, n_layer=1, n_head=4, n_head_kv=2,
                              ffn=256, n_vocab=300, n_ctx=32, tied=False, types={"*": K_TYPES[qtype]}, seed=5)
    assert dequant_check(wgllm, path, scratch) == 9


def expected_mix(name, ftype, n_layer, n_gqa, tied):
    """llama.cpp's llama_tensor_get_type for a dense Llama, written independently."""
    base = {"q4_k_m": "q4_k", "q5_k_m": "q5_k", "q2_k": "q2_k", "q4_0": "q4_0"}[ftype]
    if name.endswith("_norm.weight"):
        return "f32"

    def more_bits(i, n):
        return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2

    if name == "output.weight" or (tied and name == "token_embd.weight"):
        return "q6_k"
    if name == "token_embd.weight":
        return base
    layer = int(name.split(".")[1])
    if "attn_v" in name:
        if ftype == "q2_k":
            return "q4_k" if n_gqa >= 4 else "q3_k"
        if ftype in ("q4_k_m", "q5_k_m") and more_bits(layer, n_layer):
            return "q6_k"
    if "ffn_down" in name:
        if ftype == "q2_k":
            return "q3_k"
        if ftype in ("q4_k_m", "q5_k_m") and more_bits(layer, n_layer):
            return "q6_k"
    if "attn_output" in name and ftype == "q2_k":
        return "q3_k"
    return base


@pytest.mark.parametrize("ftype", ["q4_k_m", "q5_k_m", "q2_k", "q4_0"])
def test_mix_types(ftype, quantized):
    got = {n: t.tensor_type.name.lower() for n, t in tensors(quantized(ftype)).items()}
    want = {n: expected_mix(n, ftype, N_LAYER, 2, tied=False) for n in got}
    assert got == want
    if ftype == "q4_k_m":  # layers 2 and 3 of 4 get more bits
        assert [got[f"blk.{i}.ffn_down.weight"] for i in range(4)] == ["q4_k", "q4_k", "q6_k", "q6_k"]


def test_pure_and_tied(wgllm, synth, scratch):
    tied = synth("quant-tied", ["--dim", "256", "--layers", "2", "--heads", "4", "--kv-heads", "1",
                                "--ffn", "256", "--vocab", "300", "--ctx", "32", "--tied", "--type", "f16",
                                "--seed", "3"])
    mix = scratch / "tied-q2k.gguf"
    wgllm.ok("quantize", tied, mix, "q2_k")
    got = {n: t.tensor_type.name.lower() for n, t in tensors(mix).items()}
    assert got == {n: expected_mix(n, "q2_k", 2, 4, tied=True) for n in got}
    assert got["token_embd.weight"] == "q6_k" and got["blk.0.attn_v.weight"] == "q4_k"
    pure = scratch / "tied-pure.gguf"
    wgllm.ok("quantize", tied, pure, "q4_k_m", "--pure")
    got = {n: t.tensor_type.name.lower() for n, t in tensors(pure).items()}
    assert all(t == ("f32" if n.endswith("norm.weight") else "q4_k") for n, t in got.items()), got
    wgllm.logits(pure, [1, 5, 299, 7])


def test_row_fallback(wgllm, synth, scratch, ref_logits):
    """dim 64 and ffn 192: no row is a whole 256-block, so q4_k -> q5_0, q6_k -> q8_0
    (llama.cpp's tensor_type_fallback) and the tied output/embedding -> q8_0."""
    small = synth("quant-small", ["--preset", "tiny", "--type", "f32", "--seed", "4"])
    out = scratch / "small-q4km.gguf"
    p = wgllm.ok("quantize", small, out, "q4_k_m")
    got = {n: t.tensor_type.name.lower() for n, t in tensors(out).items()}
    assert got["token_embd.weight"] == "q8_0"
    assert got["blk.0.attn_q.weight"] == "q5_0" and got["blk.0.ffn_down.weight"] == "q5_0"
    assert got["blk.1.attn_v.weight"] == "q8_0" and got["blk.1.ffn_down.weight"] == "q8_0"
    assert "token_embd.weight" in p.stderr.decode()
    assert relative_error(wgllm.logits(out, IDS[:6]), ref_logits(out, IDS[:6])) <= 1e-4


def test_metadata_copied(f32_model, quantized):
    src = gguf.GGUFReader(str(f32_model)).fields
    out = gguf.GGUFReader(str(quantized("q5_k_m"))).fields
    for key, f in src.items():
        if key.startswith("GGUF.") or key == "general.file_type":
            continue
        assert key in out, key
        assert out[key].contents() == f.contents(), key
    assert out["general.file_type"].contents() == 17
    assert out["general.quantization_version"].contents() == 2


def test_progress_lines(wgllm, f32_model):
    p = wgllm.ok("quantize", f32_model, wgllm.temp_path(".gguf"), "q6_k", "--threads", "1")
    lines = p.stderr.decode().splitlines()
    n = len(tensors(f32_model))
    assert len(lines) == n + 1
    assert "blk.0.attn_q.weight" in lines[2] and "f32" in lines[2] and "q6_k" in lines[2]
    assert "KiB" in lines[2]


def write_imatrix(path, entries):
    """entries: name -> (in_sum2 array, counts) written as NAME.in_sum2 / NAME.counts."""
    w = gguf.GGUFWriter(str(path), "imatrix")
    for name, (s, c) in entries.items():
        w.add_tensor(name + ".in_sum2", np.asarray(s, dtype=np.float32))
        w.add_tensor(name + ".counts", np.asarray([c], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_imatrix(wgllm, f32_model, quantized, scratch, ref_logits):
    rng = np.random.default_rng(1)
    names = ["blk.0.attn_q.weight", "blk.1.ffn_gate.weight", "blk.2.ffn_down.weight"]
    entries = {n: (rng.uniform(0, 50, 512 if "ffn_down" in n else 256) ** 2, 37.0) for n in names}
    im = write_imatrix(scratch / "im.gguf", entries)
    out = scratch / "q4km-im.gguf"
    p = wgllm.ok("quantize", f32_model, out, "q4_k_m", "--imatrix", im)
    log = p.stderr.decode()
    assert log.count("(imatrix)") == 3 and "(no imatrix entry)" in log
    plain, weighted = tensors(quantized("q4_k_m")), tensors(out)
    for n in weighted:
        same = np.array_equal(np.asarray(plain[n].data), np.asarray(weighted[n].data))
        assert same == (n not in names), n
    assert relative_error(wgllm.logits(out, IDS), ref_logits(out, IDS)) <= 1e-4
    assert rel_rms(wgllm.logits(out, IDS), wgllm.logits(f32_model, IDS)) <= BOUNDS["q4_k_m"]


@pytest.mark.parametrize("case", ["wrong-length", "missing-counts", "zero-count", "negative", "stray", "f16"])
def test_bad_imatrix(case, wgllm, f32_model, scratch):
    path = scratch / f"bad-im-{case}.gguf"
    w = gguf.GGUFWriter(str(path), "imatrix")
    name = "blk.0.attn_q.weight"
    s = np.ones(100 if case == "wrong-length" else 256, dtype=np.float16 if case == "f16" else np.float32)
    if case == "negative":
        s[7] = -1
    w.add_tensor(name + ".in_sum2", s)
    if case != "missing-counts":
        w.add_tensor(name + ".counts", np.asarray([0.0 if case == "zero-count" else 4.0], dtype=np.float32))
    if case == "stray":
        w.add_tensor("something_else", np.ones(4, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    out = scratch / f"bad-im-out-{case}.gguf"
    p = wgllm.run("quantize", f32_model, out, "q4_k", "--imatrix", path)
    assert p.returncode == 1, p.stderr
    line = p.stderr.decode().strip().splitlines()[-1]
    assert line.startswith("wgllm quantize: error: ") and "imatrix" in line, line
    assert not out.exists()


@pytest.mark.parametrize("args,code,text", [
    (["IN", "OUT", "q7_k"], 2, "unknown type"),
    (["IN", "OUT"], 2, "needs"),
    (["IN", "OUT", "q4_k", "--threads", "0"], 2, "thread"),
    (["IN", "OUT", "q4_k", "--frobnicate"], 2, "unknown option"),
    (["MISSING", "OUT", "q4_k"], 1, "cannot open"),
    (["IN", "OUT", "q4_k", "--imatrix", "MISSING"], 1, "imatrix"),
])
def test_bad_arguments(args, code, text, wgllm, f32_model, scratch):
    subst = {"IN": f32_model, "OUT": scratch / "never.gguf", "MISSING": scratch / "no-such-file.gguf"}
    p = wgllm.run("quantize", *[subst.get(a, a) for a in args])
    assert p.returncode == code, p.stderr
    first = p.stderr.decode().splitlines()[0]
    assert first.startswith("wgllm quantize: error: ") and text in first, first
    assert not (scratch / "never.gguf").exists()


def test_unconvertible_input(wgllm, scratch):
    """A tensor of a type we know but cannot dequantize (Q8_1) that the plan would convert."""
    path = write_random_llama(scratch / "iq.gguf", dim=256, n_layer=1, n_head=4, n_head_kv=2, ffn=256,
                              n_vocab=300, n_ctx=32, tied=True, types={"blk.0.ffn_up.weight": Q.Q8_1})
    p = wgllm.run("quantize", path, scratch / "iq-out.gguf", "q8_0")
    assert p.returncode == 1
    line = p.stderr.decode().strip()
    assert line.startswith("wgllm quantize: error: ") and "q8_1" in line and "ffn_up" in line, line


def test_webgpu_refuses_kquants(wgllm, quantized):
    """The WebGPU backend has no Q2_K/Q3_K kernels (Q4_K .. Q6_K: test_webgpu_kquant.py):
    a clean error naming the type; auto runs on the CPU."""
    path = quantized("q2_k", "--pure")
    p = wgllm.run("logits", "-m", path, "--ids", "1 5", "-o", wgllm.temp_path(".f32"), "--backend", "webgpu")
    assert p.returncode == 1
    assert "q2_k" in p.stderr.decode(), p.stderr
    wgllm.logits(path, [1, 5], backend="auto")
