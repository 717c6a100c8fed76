"""The CPU engine compiled to wasm32-wasi (scripts/build-wasm.sh, Debian's clang, lld and
wasi-libc) gives the native build's greedy ids: under Node's WASI (f32 and quantized
weights, with and without SIMD128) and in headless chromium through the in-memory WASI
host of wasm/wasi-mem.mjs. A malformed GGUF is an error message and exit status 1."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from browser_util import WAIT, chromium, need, serve_dir

REPO = Path(__file__).resolve().parents[2]
PROMPT = "Once upon a time"
N = 32



@pytest.fixture(scope="module", params=["simd128", "scalar"])
def probe(request, scratch):
    """wgllm_probe.wasm built by scripts/build-wasm.sh, with -msimd128 or without."""
    for path, pkg in (("wasm-ld", "lld"), ("/usr/lib/wasm32-wasi/libc.a", "wasi-libc"),
                      ("node", "nodejs")):
        need(path, pkg)
    out = scratch / f"wasm-{request.param}"
    env = dict(os.environ, OUT=str(out),
               WASM_SIMD="-msimd128" if request.param == "simd128" else "-mno-simd128")
    p = subprocess.run([str(REPO / "scripts" / "build-wasm.sh")], env=env, capture_output=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return out / "wgllm_probe.wasm"


def native_ids(wgllm, model):
    toks = wgllm.run_json("-m", model, "-p", PROMPT, "-n", N, "--temp", 0, "--backend", "cpu")
    return [t["id"] for t in toks]


def node_probe(module, model, prompt=PROMPT, n=N, env=None):
    # the flag: Debian 12's Node 18 has node:wasi only behind it; later versions accept it
    cmd = ["node", "--no-warnings", "--experimental-wasi-unstable-preview1", str(REPO / "wasm" / "run-node.mjs"), str(module),
           model.name, prompt, str(n)]
    return subprocess.run(cmd, cwd=model.parent, capture_output=True, timeout=WAIT, env=env)


@pytest.fixture(scope="module")
def models(wgllm, converted):
    f32 = converted("aidreams260K")
    out = {"f32": f32}
    for qtype in ("q8_0", "q4_0", "q5_1", "q4_k_m", "q6_k"):
        path = f32.parent / f"aidreams260K-{qtype}.gguf"
        if not path.exists():
            wgllm.ok("quantize", f32, path, qtype, "--threads", "1", timeout=WAIT)
        out[qtype] = path
    return out


@pytest.mark.parametrize("qtype", ["f32", "q8_0", "q4_0", "q5_1", "q4_k_m", "q6_k"])
def test_node_greedy_matches_native(wgllm, models, probe, qtype):
    want = native_ids(wgllm, models[qtype])
    assert len(want) == N
    p = node_probe(probe, models[qtype])
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert [int(t) for t in p.stdout.split()] == want


@pytest.mark.parametrize("qtype", ["q8_0", "q4_0", "q5_1"])
def test_node_int8_greedy_matches_native(wgllm, models, probe, monkeypatch, qtype):
    """The int8 path: the module's best level (SIMD128 where built with it) on the file's rows
    gives the ids of the native int8 path at its portable level (the same integer block sums
    and f32 steps)."""
    monkeypatch.setenv("WGLLM_CPU_EXACT", "0")
    monkeypatch.setenv("WGLLM_CPU_ISA", "scalar")
    want = native_ids(wgllm, models[qtype])
    assert len(want) == N
    env = {k: v for k, v in os.environ.items() if k != "WGLLM_CPU_ISA"}
    p = node_probe(probe, models[qtype], env=env)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert [int(t) for t in p.stdout.split()] == want


@pytest.mark.parametrize("test", ["test_cpu_q8_dot", "test_cpu_q8_gemm", "test_cpu_q8k_dot", "test_cpu_q8k_x16"])
def test_node_int8_kernel_units(probe, test):
    """The int8 kernels' unit tests (every level against the scalar reference, bit for bit,
    and the backend's matmul on the file's rows) built for wasm32 and run under Node."""
    cmd = ["node", "--no-warnings", "--experimental-wasi-unstable-preview1", str(REPO / "wasm" / "run-node.mjs"),
           str(probe.parent / f"{test}.wasm")]
    p = subprocess.run(cmd, cwd=probe.parent, capture_output=True, timeout=WAIT)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, out + p.stderr.decode(errors="replace")
    assert " passed, 0 failed" in out
    if "levels run here" in out:  # the vector level is there exactly when the module has SIMD128
        assert ("simd128" in out.split("levels run here:")[1].splitlines()[0]) == (probe.parent.name == "wasm-simd128")


def test_node_malformed_gguf(models, probe, scratch):
    bad = scratch / "truncated.gguf"
    bad.write_bytes(models["f32"].read_bytes()[:100])
    p = node_probe(probe, bad)
    assert p.returncode == 1
    assert p.stdout == b""
    assert b"load: truncated.gguf: " in p.stderr


@pytest.fixture(scope="module")
def site(models, probe, scratch):
    """This page, its WASI host, the module and the models, served over HTTP (module
    scripts and fetch do not work from file://)."""
    root = scratch / f"site-{probe.parent.name}"
    root.mkdir(exist_ok=True)
    for src in (REPO / "wasm" / "probe.html", REPO / "wasm" / "wasi-mem.mjs", REPO / "wasm" / "webgpu.mjs", probe):
        shutil.copy(src, root / src.name)
    shutil.copy(models["f32"], root / "model.gguf")
    (root / "bad.gguf").write_bytes(models["f32"].read_bytes()[:100])

    with serve_dir(root) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(webgpu=False) as driver:
        yield driver


def browser_probe(browser, site, model):
    browser.get(f"{site}/probe.html")
    return browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const go = () => window.probeReady ? runProbe(arguments[0], arguments[1], arguments[2])"
        "  .then(done, (e) => done({rc: -1, out: '', err: String(e)})) : setTimeout(go, 50);"
        "go();", model, PROMPT, N)


def test_browser_greedy_matches_native(wgllm, models, site, browser):
    want = native_ids(wgllm, models["f32"])
    got = browser_probe(browser, site, "model.gguf")
    assert got["rc"] == 0, got["err"]
    assert [int(t) for t in got["out"].split()] == want


def test_browser_malformed_gguf(site, browser):
    got = browser_probe(browser, site, "bad.gguf")
    assert got["rc"] == 1
    assert got["out"] == ""
    assert "load: model.gguf: " in got["err"]
