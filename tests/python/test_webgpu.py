"""The WebGPU backend end to end. CI has no GPU: these run on Mesa's lavapipe
(a Vulkan device on the CPU), never skipped. The CPU backend and the float64
reference are the yardsticks; the same models as test_forward.py and the six
golden llama2.c cases."""

import os

import pytest

from conftest import prompt_length, relative_error
from test_forward import BATCH_BOUND, MODELS, case  # noqa: F401  (the fixture is reused)

# The WebGPU kernels accumulate in f32 like the CPU backend, in a different order
# (workgroup tree reductions). Measured worst relative error against the float64
# reference over every model of test_forward.py: see the test output (-s); the
# per-op kernel tests in tests/unit/test_webgpu_backend.c measure <= 1.6e-6.
# Bound: the same 1e-4 that the CPU backend is held to.
WEBGPU_BOUND = 1e-4


def test_webgpu_logits_match_reference(case, wgllm, ref_logits):  # noqa: F811
    path, ids, _ = case
    ours = wgllm.logits(path, ids, backend="webgpu")
    err = relative_error(ours, ref_logits(path, ids))
    print(f"{path.name}: webgpu relative error {err:.3g}")
    assert err <= WEBGPU_BOUND, f"{path.name}: webgpu relative error {err:.3g} > {WEBGPU_BOUND}"


def test_webgpu_batched_prefill(case, wgllm):  # noqa: F811
    """Prompt evaluation in batches of 7 (the tiled matrix-matrix kernels) against
    one token at a time (the matrix-vector kernels), both on WebGPU."""
    path, ids, _ = case
    single = wgllm.logits(path, ids, batch=1, backend="webgpu")
    batched = wgllm.logits(path, ids, batch=7, backend="webgpu")
    err = relative_error(batched, single)
    assert err <= 10 * BATCH_BOUND, f"{path.name}: batch 7 vs 1 relative error {err:.3g}"


@pytest.mark.parametrize("source", ["shared", "converted"])
def test_webgpu_golden_ids(golden, source, converted, wgllm):
    """Greedy decoding on the GPU (argmax on the device) reproduces llama2.c's ids."""
    model = golden.gguf if source == "shared" else converted(golden.model_name, "f32")
    n_prompt = prompt_length(golden)
    args = ["run", "-m", model, "--temp", "0", "--ignore-eos", "-n", len(golden.ids) - n_prompt,
            "--backend", "webgpu"]
    if golden.prompt is not None:
        args += ["-p", golden.prompt]
    # Text mode uses wgllm_greedy (argmax on the device); --json reads the logits row.
    json_ids = [t["id"] for t in wgllm.run_json(*args[1:])]
    assert golden.ids[:n_prompt] + json_ids == golden.ids
    text = wgllm.ok(*args).stdout
    ref_text = wgllm.ok(*[a for a in args if a not in ("--backend", "webgpu")], "--backend", "cpu").stdout
    assert text == ref_text


def error_line(p):
    err = p.stderr.decode("utf-8", errors="replace")
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


def test_bad_webgpu_library(golden_cases, wgllm, monkeypatch):
    model = golden_cases["aidreams260K_greedy_once"].gguf
    monkeypatch.setenv("WGLLM_WEBGPU_LIB", "/nonexistent/libwebgpu.so")
    p = wgllm.run("run", "-m", model, "-n", "4", "--backend", "webgpu")
    assert p.returncode == 1
    assert "/nonexistent/libwebgpu.so" in error_line(p)
    # auto falls back to the CPU and says why
    p = wgllm.run("run", "-m", model, "-n", "4", "--temp", "0", "--backend", "auto")
    assert p.returncode == 0, p.stderr
    assert "backend: cpu" in p.stderr.decode()


def test_missing_adapter(golden_cases, wgllm):
    model = golden_cases["aidreams260K_greedy_once"].gguf
    p = wgllm.run("run", "-m", model, "-n", "4", "--backend", "webgpu", "--device", "9")
    assert p.returncode == 1
    assert "adapter" in error_line(p).lower()


def test_devices_lists_an_adapter(wgllm):
    p = wgllm.ok("devices", "--json")
    assert b"maxStorageBufferBindingSize" in p.stdout or b"max_storage_buffer_binding_size" in p.stdout


def test_auto_skips_software_adapter(golden_cases, wgllm):
    """On a machine whose only adapter is lavapipe, auto runs on the CPU and says why."""
    if os.environ.get("WGLLM_EXPECT_GPU"):
        pytest.fail("this test describes a machine without a hardware GPU")
    model = golden_cases["aidreams260K_greedy_once"].gguf
    p = wgllm.ok("run", "-m", model, "-n", "2", "--temp", "0")
    assert "backend: cpu (" in p.stderr.decode()
