"""The CPU backend's K-quant int8 path (Q8_K activations) against its exact f32 path, per
K-quant type, on the trained aidreams260K.

aidreams260K's rows are 64 and 172 wide, so no matrix of it can be a K-quant (super-blocks
of 256). The fixture widens it to 256 without changing what it computes: the embeddings and
every matrix's input columns padded with zeros, attn_output / ffn_down given zero output
rows (the residual stream stays zero past 64), the heads kept at 16 wide through
attention.key_length, and the RMS norms rescaled (a mean over 256 of which 192 are zero is a
quarter of the mean over 64: norm weights halved, epsilon quartered). Quantized with
`wgllm quantize --pure`, attn_q/k/v, ffn_gate/up, the embeddings and the output are in the
K-quant type; attn_output (64 wide) and ffn_down (172) fall back.

Measured are the worst row's max|diff| / max|logit|, the mean KL divergence of the int8
softmax from the exact one, and how often both pick the same top token; one token per
forward pass (the decode dot) and the whole prompt at once (the tiles).
"""

import numpy as np
import pytest

import gguf
from conftest import relative_error
from test_cpu_int8 import IDS, softmax  # the same story and measure as the 32-block types


WIDE = 256
Q = gguf.GGMLQuantizationType

# Measured (gcc 12; every level gives the same bits), worst row / mean KL / same top token
# over these 30 positions, one token a pass | the whole prompt at once:
#   q2_k 0.0194 / 2.0e-4 / 1.0 | 0.0204 / 2.7e-4 / 1.0
#   q3_k 0.0174 / 1.5e-4 / 1.0 | 0.0185 / 2.0e-4 / 1.0
#   q4_k 0.0121 / 1.3e-4 / 1.0 | 0.0110 / 1.4e-4 / 0.967
#   q5_k 0.0128 / 2.1e-4 / 1.0 | 0.0149 / 1.6e-4 / 1.0
#   q6_k 0.0139 / 1.4e-4 / 1.0 | 0.0130 / 1.4e-4 / 1.0
# The bounds allow about 2.5x; a wrong scale, minimum, offset or code in a kernel gives O(1).
BOUNDS = {  # qtype: (worst row relative error, mean KL, top-token agreement at least)
    "q2_k": (0.05, 7e-4, 0.9),
    "q3_k": (0.045, 5e-4, 0.9),
    "q4_k": (0.035, 4e-4, 0.9),
    "q5_k": (0.04, 5e-4, 0.9),
    "q6_k": (0.035, 4e-4, 0.9),
}


def widen(src, out):
    """Writes aidreams260K widened to WIDE (see the module's docstring) with gguf-py."""
    r = gguf.GGUFReader(str(src))
    arch = "llama"
    dim = int(r.fields[f"{arch}.embedding_length"].contents())
    n_head = int(r.fields[f"{arch}.attention.head_count"].contents())
    eps = float(r.fields[f"{arch}.attention.layer_norm_rms_epsilon"].contents())
    scale = WIDE // dim
    w = gguf.GGUFWriter(str(out), arch)
    replaced = {f"{arch}.embedding_length", f"{arch}.attention.layer_norm_rms_epsilon",
                f"{arch}.attention.key_length", f"{arch}.attention.value_length"}
    for name, field in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture" or name in replaced:
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(name, field.contents(), vtype, sub_type=sub)
    w.add_embedding_length(WIDE)
    w.add_key_length(dim // n_head)
    w.add_value_length(dim // n_head)
    w.add_layer_norm_rms_eps(eps / scale)
    for t in r.tensors:
        assert t.tensor_type == Q.F32, f"{t.name}: {t.tensor_type.name}"
        data = np.array(t.data, dtype=np.float32)  # numpy order: (rows, row length)
        if data.ndim == 1:
            if data.shape[0] == dim:  # a norm's weights: halved (the sqrt of 64/256), zeros past dim
                data = np.concatenate([data / np.float32(np.sqrt(scale)), np.zeros(WIDE - dim, np.float32)])
        else:
            rows, cols = data.shape
            if t.name.endswith(("attn_output.weight", "ffn_down.weight")):  # outputs into the stream
                assert rows == dim, t.name
                data = np.concatenate([data, np.zeros((WIDE - dim, cols), np.float32)], axis=0)
            else:  # reads the stream: input columns past dim are zero
                assert cols == dim, t.name
                data = np.concatenate([data, np.zeros((rows, WIDE - dim), np.float32)], axis=1)
        w.add_tensor(t.name, np.ascontiguousarray(data))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def wide(shared, scratch):
    out = scratch / "aidreams260K-wide256-f32.gguf"
    widen(shared / "models" / "aidreams260K-f32.gguf", out)
    return out


@pytest.fixture(scope="module")
def quantized(wgllm, wide, scratch):
    cache = {}

    def make(qtype):
        if qtype not in cache:
            out = scratch / f"aidreams260K-wide256-{qtype}.gguf"
            wgllm.ok("quantize", wide, out, qtype, "--pure", timeout=120)
            types = {t.name: t.tensor_type for t in gguf.GGUFReader(str(out)).tensors}
            want = Q[qtype.upper()]
            for name in ("blk.0.attn_q.weight", "blk.0.ffn_gate.weight", "output.weight"):
                assert types[name] == want, f"{name}: {types[name].name}"
            cache[qtype] = out
        return cache[qtype]

    return make


def test_widened_model_computes_the_same(wgllm, shared, wide, monkeypatch):
    """The fixture's premise: the widened f32 model gives aidreams260K's logits."""
    monkeypatch.setenv("WGLLM_CPU_EXACT", "1")
    orig = wgllm.logits(shared / "models" / "aidreams260K-f32.gguf", IDS)
    assert relative_error(wgllm.logits(wide, IDS), orig) <= 1e-4


@pytest.mark.parametrize("batch", [1, len(IDS)])
@pytest.mark.parametrize("qtype", sorted(BOUNDS))
def test_kquant_int8_logits_bounded(qtype, batch, wgllm, quantized, monkeypatch):
    path = quantized(qtype)
    monkeypatch.setenv("WGLLM_CPU_EXACT", "1")
    exact = wgllm.logits(path, IDS).astype(np.float64)
    monkeypatch.setenv("WGLLM_CPU_EXACT", "0")
    int8 = wgllm.logits(path, IDS, batch=batch).astype(np.float64)
    err = relative_error(int8, exact)
    p, q = softmax(exact), softmax(int8)
    kl = float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)))
    same = float(np.mean(np.argmax(exact, axis=1) == np.argmax(int8, axis=1)))
    print(f"{qtype} batch {batch}: worst row {err:.3g}, mean KL {kl:.3g}, same top token {same:.3f}")
    max_err, max_kl, min_same = BOUNDS[qtype]
    assert err > 0, "int8 logits equal the exact ones: the int8 path did not run"
    assert err <= max_err and kl <= max_kl and same >= min_same, (err, kl, same)


@pytest.mark.parametrize("qtype", ["q4_k", "q6_k"])
def test_kquant_levels_agree(qtype, wgllm, quantized, monkeypatch):
    """Every K-quant kernel level gives the same bits (test_cpu_q8k_dot.c checks that per
    kernel); the model's logits at the scalar and the best level then differ only through
    the other ops' f32 order (attention has a kernel per level): measured 2.4e-7 and 3.5e-7."""
    path = quantized(qtype)
    monkeypatch.setenv("WGLLM_CPU_EXACT", "0")
    best = wgllm.logits(path, IDS, batch=len(IDS))
    monkeypatch.setenv("WGLLM_CPU_ISA", "scalar")
    err = relative_error(wgllm.logits(path, IDS, batch=len(IDS)), best)
    print(f"{qtype} scalar vs best level: {err:.3g}")
    assert err <= 1e-5, err
