"""WGLLM_WEBGPU_LIB pointing at other libraries. The Dawn of PyPI's dawn-python 0.3.0 (a late-2024
build: the names wgllm calls, with other callbacks, structs and enum values; it used to crash on
the first call) is adapted and runs the model on lavapipe like wgpu-native. A shared library that
implements no webgpu.h, a missing path, a text file: `wgllm devices` and `--backend webgpu` end
with one error line that says what is wrong, `--backend auto` runs on the CPU and says why.
Never a signal. (A library of another older revision is refused: tests/unit/test_webgpu_loader.c.)"""

import importlib.util
import json
import platform
from pathlib import Path

import numpy as np
import pytest

from conftest import prompt_length, relative_error
from test_cli_errors import expect_error
from test_forward import BOUNDS

# A run on Dawn compiles every kernel through Tint and lavapipe: about 4 s in a release build on
# two cores, 11 s under ASan; the margin is for a loaded machine.
DAWN_TIMEOUT = 240


def dawn_library():
    """The Dawn shared library inside the installed dawn-python wheel (pinned in
    tests/requirements.txt). Located, not imported: importing pydawn would load it here."""
    spec = importlib.util.find_spec("pydawn")
    assert spec is not None and spec.submodule_search_locations, \
        "dawn-python is not installed: pip install -r tests/requirements.txt"
    lib = Path(list(spec.submodule_search_locations)[0]) / "lib" / f"libwebgpu_dawn_{platform.machine()}.so"
    assert lib.is_file(), f"dawn-python has no Linux library for {platform.machine()}: {lib}"
    return lib


@pytest.fixture(scope="module")
def model(golden_cases):
    return golden_cases["aidreams260K_greedy_once"].gguf


def no_signal(p):
    err = p.stderr.decode("utf-8", errors="replace")
    assert p.returncode >= 0, f"killed by signal {-p.returncode}: {err}"
    assert "Sanitizer" not in err and "runtime error" not in err, err
    return err


def run_auto(wgllm, model):
    """`run --backend auto`: exit 0 and the chosen backend's line on stderr."""
    p = wgllm.run("run", "-m", model, "-n", "4", "--temp", "0", "-t", "2", "--backend", "auto", timeout=DAWN_TIMEOUT)
    err = no_signal(p)
    assert p.returncode == 0, err
    lines = [line for line in err.splitlines() if line.startswith("backend: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_dawn_of_late_2024(golden_cases, wgllm, monkeypatch):
    lib = dawn_library()
    monkeypatch.setenv("WGLLM_WEBGPU_LIB", str(lib))
    # ASan build: lavapipe's own leak under Dawn's pipelines (see the file); no effect otherwise
    monkeypatch.setenv("LSAN_OPTIONS", f"suppressions={Path(__file__).with_name('lsan_dawn.supp')}")
    p = wgllm.run("devices")
    err = no_signal(p)
    assert p.returncode == 0, err
    out = p.stdout.decode()
    assert out.startswith(f"WebGPU library: {lib} (version unknown; Dawn's webgpu.h of late 2024, adapted)\n"), out
    # the adapter, with limits read through that revision's struct (lavapipe's are far above these)
    info = json.loads(wgllm.ok("devices", "--json").stdout)
    assert info["library"] == str(lib) and info["adapters"], info
    limits = info["adapters"][0]["limits"]
    assert limits["maxStorageBufferBindingSize"] >= 1 << 27 and limits["maxBufferSize"] >= 1 << 28, limits
    assert limits["maxComputeInvocationsPerWorkgroup"] >= 256 and limits["maxStorageBuffersPerShaderStage"] >= 8, limits

    # The model on that adapter: llama2.c's greedy ids, and the logits within the f32 bound.
    golden = golden_cases["aidreams260K_greedy_once"]
    n_prompt = prompt_length(golden)
    args = ["-m", golden.gguf, "--temp", "0", "--ignore-eos", "-n", len(golden.ids) - n_prompt,
            "--backend", "webgpu"] + (["-p", golden.prompt] if golden.prompt is not None else [])
    out = wgllm.ok("run", "--json", "-t", "2", *args, timeout=DAWN_TIMEOUT).stdout.decode()
    ids = golden.ids[:n_prompt] + [json.loads(line)["id"] for line in out.splitlines()]
    assert ids == golden.ids
    logits_file = wgllm.temp_path(".f32")
    wgllm.ok("logits", "-m", golden.gguf, "--ids", " ".join(map(str, golden.ids[:golden.n_forward])), "-o",
             logits_file, "-t", "2", "--backend", "webgpu", timeout=DAWN_TIMEOUT)
    logits = np.fromfile(logits_file, dtype="<f4").reshape(golden.n_forward, -1)
    error = relative_error(logits, golden.logits)
    print(f"Dawn: relative error of the logits {error:.3g}")
    assert error <= BOUNDS["f32"], error

    backend = run_auto(wgllm, golden.gguf)
    assert "WebGPU unavailable" not in backend, backend
    assert backend.startswith(("backend: cpu (", "backend: webgpu")), backend


def test_library_without_webgpu(wgllm, model, monkeypatch):
    """A real shared library that implements no webgpu.h (the C library)."""
    monkeypatch.setenv("WGLLM_WEBGPU_LIB", "libc.so.6")
    expect_error(wgllm.run("devices"), 1, "'libc.so.6' is not a webgpu.h implementation", "lacks wgpuCreateInstance")
    backend = run_auto(wgllm, model)
    assert backend.startswith("backend: cpu (WebGPU unavailable: "), backend
    assert "is not a webgpu.h implementation" in backend, backend
    expect_error(wgllm.run("run", "-m", model, "-n", "4", "--backend", "webgpu"), 1, "lacks wgpuCreateInstance")


@pytest.mark.parametrize("kind", ["missing", "text", "empty", "directory"])
def test_unloadable_library(wgllm, model, scratch, monkeypatch, kind):
    path = scratch / f"libwebgpu-{kind}.so"
    if kind == "text":
        path.write_text("this is not a shared library\n" * 20)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir(exist_ok=True)
    monkeypatch.setenv("WGLLM_WEBGPU_LIB", str(path))
    expect_error(wgllm.run("devices"), 1, f"cannot load WebGPU library '{path}'", "WGLLM_WEBGPU_LIB")
    backend = run_auto(wgllm, model)
    assert backend.startswith("backend: cpu (WebGPU unavailable: cannot load WebGPU library"), backend
    expect_error(wgllm.run("run", "-m", model, "-n", "4", "--backend", "webgpu"), 1, str(path))
