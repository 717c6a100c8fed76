"""WGLLM_WEBGPU_LIB pointing at a library wgllm cannot use: a webgpu.h implementation of
another revision (the Dawn of PyPI's dawn-python 0.3.0, a late-2024 build whose entry points
have the names wgllm calls but other callbacks, structs and enum values: it used to crash
on the first call), a shared library that implements no webgpu.h, a missing path, a text
file. `wgllm devices` and `--backend webgpu` end with one error line that says what is
wrong; `--backend auto` runs on the CPU and says why. Never a signal."""

import importlib.util
import platform
from pathlib import Path

import pytest

from test_cli_errors import expect_error

REVISION_ERROR = "older webgpu.h revision"


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
    p = wgllm.run("run", "-m", model, "-n", "4", "--temp", "0", "-t", "2", "--backend", "auto")
    err = no_signal(p)
    assert p.returncode == 0, err
    lines = [line for line in err.splitlines() if line.startswith("backend: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_dawn_of_another_revision(wgllm, model, monkeypatch):
    lib = dawn_library()
    monkeypatch.setenv("WGLLM_WEBGPU_LIB", str(lib))
    p = wgllm.run("devices")
    err = no_signal(p)
    if REVISION_ERROR in err:
        # Refused before any call, naming the library, the implementation and what differs.
        line = expect_error(p, 1, str(lib), "(Dawn)", REVISION_ERROR, "lacks wgpuGetInstanceLimits")
        assert "wgpuInstanceRequestAdapter2" in line, line
        assert p.stdout == b"", p.stdout
        backend = run_auto(wgllm, model)
        assert backend.startswith("backend: cpu (WebGPU unavailable: "), backend
        assert REVISION_ERROR in backend, backend
        expect_error(wgllm.run("run", "-m", model, "-n", "4", "--backend", "webgpu"), 1, REVISION_ERROR)
    else:
        # Used: it lists adapters, or finds none (Dawn does not take Debian 12's lavapipe).
        assert b"WebGPU library: " + str(lib).encode() in p.stdout, (p.stdout, err)
        if p.returncode != 0:
            expect_error(p, 1, "no WebGPU adapter")
        else:
            assert b"\ndevice 0: " in p.stdout, p.stdout
        backend = run_auto(wgllm, model)
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
