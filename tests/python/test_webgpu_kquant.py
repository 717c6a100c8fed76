"""K-quant models (Q4_K, Q5_K, Q6_K weights) on the WebGPU backend, end to end: a small
synthetic model quantized by `wgllm quantize` to the q4_k_m, q5_k_m and q6_k mixes, its
logits on WebGPU (weights kept in their blocks on the device) against the CPU backend and
the float64 reference on the same bytes. Runs on Mesa's lavapipe in CI, never skipped.

Both backends decode the same blocks to the same f32 values and accumulate in f32 in
different orders, so with the f32 kernels (WGLLM_WEBGPU_Q4_INT8=0) the logits agree to f32
rounding; the bound is the one the other weight types of the WebGPU backend meet, 1e-4
(relative, per row). A wrong scale, min or bit field moves the logits by O(1e-2 .. 1).
With the int8 kernels (the default: Q4_K, Q5_K and Q6_K products on x rounded to int8 blocks)
the logits are held to the float64 reference with that rounding emulated, as Q4_0's are
(test_webgpu.py's bounds); prompts of 40 and 70 tokens in one batch take the tiled int8
kernels for every K-quant matrix (the int8 tiles lib_q8_batch.wgsl in their batch shapes for 9 to 64 tokens,
in their prompt shapes above), held to the worst-row bound (see the test)."""

import gguf
import numpy as np
import pytest

from conftest import relative_error
from test_webgpu import Q4_INT8_MAX_BOUND, Q4_INT8_MEDIAN_BOUND, int8_x_reference

IDS = [1, 300, 301, 5, 400, 17, 302, 9]
BOUND = 1e-4

# the block types each mix must contain (so that every kernel family is exercised)
MIXES = {"q4_k_m": {"Q4_K", "Q6_K"}, "q5_k_m": {"Q5_K", "Q6_K"}, "q6_k": {"Q6_K"}}


@pytest.fixture(scope="module")
def kquant_model(wgllm, synth, scratch):
    """Untied model with rows of 256 and 512 elements (1 and 2 super-blocks), 2 layers, GQA 2."""
    base = synth("kgpu-base", ["--dim", "256", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--ffn", "512",
                               "--vocab", "512", "--ctx", "96", "--untied", "--type", "f32", "--seed", "5"])
    cache = {}

    def make(mix):
        if mix not in cache:
            out = scratch / f"kgpu-{mix}.gguf"
            wgllm.ok("quantize", base, out, mix, "--threads", "2", timeout=120)
            cache[mix] = out
        return cache[mix]

    return make


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_webgpu_kquant_logits(mix, wgllm, kquant_model, ref_logits, monkeypatch):
    path = kquant_model(mix)
    types = {t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors}
    assert MIXES[mix] <= types, f"{mix}: tensor types {sorted(types)}"
    cpu = wgllm.logits(path, IDS, backend="cpu")
    ref = ref_logits(path, IDS)
    assert relative_error(cpu, ref) <= BOUND
    # one token a step (matrix-vector kernels), then prompt batches of 5 (tiled kernels)
    int8_ref = int8_x_reference(path, IDS)
    for batch in (1, 5):
        gpu = wgllm.logits(path, IDS, batch=batch, backend="webgpu")
        rows = np.max(np.abs(gpu - int8_ref), axis=1) / np.max(np.abs(int8_ref), axis=1)
        med, worst = float(np.median(rows)), float(np.max(rows))
        print(f"{mix} batch {batch}: webgpu vs int8-x reference: median row {med:.3g}, worst {worst:.3g}")
        assert med <= Q4_INT8_MEDIAN_BOUND, f"{mix} batch {batch}: median row error vs int8-x reference {med:.3g}"
        assert worst <= Q4_INT8_MAX_BOUND, f"{mix} batch {batch}: worst row error vs int8-x reference {worst:.3g}"
        with monkeypatch.context() as mp:
            mp.setenv("WGLLM_WEBGPU_Q4_INT8", "0")  # the f32 kernels
            gpu = wgllm.logits(path, IDS, batch=batch, backend="webgpu")
        err_cpu, err_ref = relative_error(gpu, cpu), relative_error(gpu, ref)
        print(f"{mix} batch {batch}: webgpu vs cpu {err_cpu:.3g}, vs float64 reference {err_ref:.3g}")
        assert err_cpu <= BOUND, f"{mix} batch {batch}: webgpu vs cpu relative error {err_cpu:.3g}"
        assert err_ref <= BOUND, f"{mix} batch {batch}: webgpu vs reference relative error {err_ref:.3g}"


PROMPT_IDS = [(37 * i + 11) % 512 for i in range(70)]


@pytest.mark.parametrize("n", [40, 70])
@pytest.mark.parametrize("mix", sorted(MIXES))
def test_webgpu_kquant_prompt_tiles(mix, n, wgllm, kquant_model):
    """n prompt tokens in one batch: the tiled int8 products of every format of the mix."""
    path = kquant_model(mix)
    ids = PROMPT_IDS[:n]
    int8_ref = int8_x_reference(path, ids)
    gpu = wgllm.logits(path, ids, batch=n, backend="webgpu")
    rows = np.max(np.abs(gpu - int8_ref), axis=1) / np.max(np.abs(int8_ref), axis=1)
    med, worst = float(np.median(rows)), float(np.max(rows))
    print(f"{mix} prompt of {n}: webgpu vs int8-x reference: median row {med:.3g}, worst {worst:.3g}")
    # Not the median bound of the shorter runs above: an element of x on an int8 rounding
    # boundary that rounds the other way (measured: q5_k_m at position 25) moves every later
    # row through the KV cache by ~1e-2, most rows of a long prompt. A wrong block, scale or
    # min moves every row by O(1e-1 .. 1); the products alone are held to 1e-5 of the int8
    # reference in test_webgpu_kquant.c.
    assert worst <= Q4_INT8_MAX_BOUND, f"{mix}: worst row error vs int8-x reference {worst:.3g}"
