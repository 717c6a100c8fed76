"""The CPU backend's int8 decode path against its exact f32 path, per weight type, on the
trained aidreams260K quantized by `wgllm quantize --pure` (every matrix whose rows are
whole 32-blocks in that type; the 172-wide FFN down projection falls back).

`wgllm logits --batch 1` evaluates one token per forward pass, so every quantized matmul
is a matrix-vector product (the int8 dot kernels unless WGLLM_CPU_EXACT=1); the whole
prompt in one batch takes the int8 tile of 8 rows by 8 tokens. Measured
here are the worst row's max|diff| / max|logit|, the mean KL divergence of the int8
softmax from the exact one, and how often both pick the same top token.
"""

import numpy as np
import pytest

from conftest import relative_error

# ids of a short story (aidreams' tokenizer, 512 pieces), BOS first
IDS = [1, 403, 407, 261, 378, 284, 343, 260, 302, 306, 270, 259, 364, 431, 273, 285, 418, 268, 300, 261,
       350, 262, 402, 284, 280, 442, 259, 470, 263, 321]

# Measured (gcc 12; the AVX-512 VNNI level, the scalar level where it differs), worst row /
# mean KL / same top token over these 30 positions: q4_0 0.0145 (scalar 0.0168) / 1.9e-4 / 1.0,
# q4_1 0.015 / 2.0e-4 / 1.0, q5_0 0.018 / 2.5e-4 / 0.967, q5_1 0.0131 / 1.6e-4 / 1.0,
# q8_0 0.0165 / 1.6e-4 / 1.0. The bounds allow about 2.5x; a wrong scale, sum or nibble
# in a kernel gives O(1).
BOUNDS = {  # qtype: (worst row relative error, mean KL, top-token agreement at least)
    "q4_0": (0.04, 6e-4, 0.9),
    "q4_1": (0.04, 6e-4, 0.9),
    "q5_0": (0.045, 6e-4, 0.9),
    "q5_1": (0.04, 6e-4, 0.9),
    "q8_0": (0.04, 6e-4, 0.9),
}


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def quantized(wgllm, shared, scratch):
    cache = {}

    def make(qtype):
        if qtype not in cache:
            out = scratch / f"aidreams260K-int8-{qtype}.gguf"
            wgllm.ok("quantize", shared / "models" / "aidreams260K-f32.gguf", out, qtype, "--pure", timeout=120)
            cache[qtype] = out
        return cache[qtype]

    return make


@pytest.mark.parametrize("batch", [1, len(IDS)])
@pytest.mark.parametrize("isa", ["best", "scalar"])
@pytest.mark.parametrize("qtype", sorted(BOUNDS))
def test_int8_logits_bounded(qtype, isa, batch, wgllm, quantized, monkeypatch):
    """batch 1: the decode path (dot kernels); the whole prompt at once: the tile (q8_gemm.h)."""
    path = quantized(qtype)
    monkeypatch.setenv("WGLLM_CPU_EXACT", "1")
    exact = wgllm.logits(path, IDS).astype(np.float64)
    monkeypatch.setenv("WGLLM_CPU_EXACT", "0")
    if isa != "best":
        monkeypatch.setenv("WGLLM_CPU_ISA", isa)
    int8 = wgllm.logits(path, IDS, batch=batch).astype(np.float64)
    err = relative_error(int8, exact)
    p, q = softmax(exact), softmax(int8)
    kl = float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)))
    same = float(np.mean(np.argmax(exact, axis=1) == np.argmax(int8, axis=1)))
    print(f"{qtype} {isa} batch {batch}: worst row {err:.3g}, mean KL {kl:.3g}, same top token {same:.3f}")
    max_err, max_kl, min_same = BOUNDS[qtype]
    assert err > 0, "int8 logits equal the exact ones: the int8 path did not run"
    assert err <= max_err and kl <= max_kl and same >= min_same, (err, kl, same)


@pytest.mark.parametrize("isa", ["best", "scalar"])
def test_int8_prompt_rows_do_not_depend_on_batch(isa, wgllm, quantized, monkeypatch):
    """The int8 integer block sums do not depend on the batch: a prompt evaluated 1, 2, 7
    or 30 tokens at a time differs only by f32 summation order, in the matmul and in
    attention (split over positions for short batches). That may move a code of x by one
    step in a later layer, which in this 64-wide model moves logits by up to ~1% (measured
    0.0094 for one such flip); a wrong tile or batch split gives O(1)."""
    path = quantized("q5_1")
    monkeypatch.setenv("WGLLM_CPU_EXACT", "0")
    if isa != "best":
        monkeypatch.setenv("WGLLM_CPU_ISA", isa)
    whole = wgllm.logits(path, IDS, batch=len(IDS))
    for batch in (1, 2, 7):
        part = wgllm.logits(path, IDS, batch=batch)
        err = relative_error(part, whole)
        same = float(np.mean(np.argmax(part, axis=1) == np.argmax(whole, axis=1)))
        print(f"{isa} batch {batch} vs {len(IDS)}: {err:.3g}, same top token {same:.3f}")
        assert err <= 0.025 and same >= 0.95, (batch, err, same)


def test_exact_switch_matches_batched_f32(wgllm, quantized, monkeypatch):
    """WGLLM_CPU_EXACT=1 one token at a time gives the batched f32 prompt path's logits."""
    path = quantized("q4_0")
    monkeypatch.setenv("WGLLM_CPU_EXACT", "1")
    assert relative_error(wgllm.logits(path, IDS, batch=1), wgllm.logits(path, IDS, batch=len(IDS))) <= 1e-5


def test_bad_switch_values_refused(wgllm, quantized, monkeypatch):
    path = quantized("q8_0")
    for var, value in [("WGLLM_CPU_ISA", "sse9"), ("WGLLM_CPU_EXACT", "true")]:
        with monkeypatch.context() as m:
            m.setenv(var, value)
            p = wgllm.run("logits", "-m", path, "--ids", "1 2", "-o", wgllm.temp_path(".f32"), "--backend", "cpu")
            assert p.returncode != 0 and var in p.stderr.decode(), p.stderr.decode()
