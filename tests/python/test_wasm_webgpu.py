"""The engine compiled to wasm32 (scripts/build-wasm.sh) runs its WGSL kernels on the page's
WebGPU: headless chromium with WebGPU on SwiftShader, the webgpu.h imports implemented in
wasm/webgpu.mjs, waits suspended through JSPI. The greedy ids equal the native build's, the
page names the adapter, and a WGSL kernel the page's compiler rejects is an error message,
not a hung tab."""

import os
import shutil
import subprocess
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from browser_util import WAIT, chromium, need, serve_dir
from test_wasm_cpu import N, PROMPT, REPO, native_ids, node_probe

# seconds: SwiftShader compiles every kernel on the CPU (the matmul kernels take 5-10 s each
# on a loaded 2-core machine), and the run is polled, not awaited in one WebDriver call,
# whose HTTP client gives up after 120 s
WAIT = 600


@pytest.fixture(scope="module")
def probe(scratch):
    """wgllm_probe.wasm with the WebGPU backend (the script's default)."""
    for path, pkg in (("wasm-ld", "lld"), ("/usr/lib/wasm32-wasi/libc.a", "wasi-libc"), ("cmake", "cmake")):
        need(path, pkg)
    out = scratch / "wasm-webgpu"
    p = subprocess.run([str(REPO / "scripts" / "build-wasm.sh")], env=dict(os.environ, OUT=str(out)),
                       capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return out / "wgllm_probe.wasm"


@pytest.fixture(scope="module")
def site(converted, probe, scratch):
    """The probe page, its WASI host and webgpu.h imports, the module and the model, served
    from 127.0.0.1 (a secure context: WebGPU is offered to secure contexts only). The kernels
    folder is there for a run with WGLLM_KERNEL_DIR-like overrides (see test_kernel_error)."""
    root = scratch / "site-webgpu"
    root.mkdir(exist_ok=True)
    for src in (REPO / "wasm" / "probe.html", REPO / "wasm" / "wasi-mem.mjs", REPO / "wasm" / "webgpu.mjs", probe):
        shutil.copy(src, root / src.name)
    shutil.copy(converted("aidreams260K"), root / "model.gguf")

    with serve_dir(root) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(webgpu=True) as driver:
        yield driver


def run_page(browser, site, backend, n=N, before=""):
    """runProbe on a fresh page, polled until it settles; `before` is script run first
    (to break a WebGPU call of the browser)."""
    browser.get(f"{site}/probe.html")
    browser.execute_script(
        before + "window.probeResult = null;"
        "const go = () => window.probeReady ? runProbe('model.gguf', arguments[0], arguments[1], arguments[2])"
        "  .then((r) => { window.probeResult = r; },"
        "        (e) => { window.probeResult = {rc: -1, out: '', err: String(e && e.stack || e)}; })"
        "  : setTimeout(go, 50);"
        "go();", PROMPT, n, backend)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        got = browser.execute_script("return window.probeResult")
        if got:
            return got
        time.sleep(0.5)
    pytest.fail(f"the page did not finish in {WAIT} s")


def test_webgpu_greedy_matches_native(wgllm, converted, site, browser):
    want = native_ids(wgllm, converted("aidreams260K"))
    assert len(want) == N
    got = run_page(browser, site, "webgpu")
    assert got["rc"] == 0, got["err"]
    assert "backend: webgpu\n" in got["err"]
    # the adapter, as navigator.gpu describes it through the imports (SwiftShader's)
    assert "adapter 0: " in got["err"] and "swiftshader" in got["err"].lower(), got["err"]
    assert [int(t) for t in got["out"].split()] == want


def test_webgpu_kernel_error_is_a_message(site, browser):
    """A WGSL compile error comes back through the error scope as the load's message."""
    got = run_page(browser, site, "webgpu", before=(
        "const create = GPUDevice.prototype.createShaderModule;"
        "GPUDevice.prototype.createShaderModule = function (d) {"
        "  return create.call(this, {...d, code: d.code + '\\nfn broken( {'}); };"))
    assert got["rc"] == 1, got
    assert got["out"] == ""
    assert "load: WGSL kernel '" in got["err"], got["err"]


def test_webgpu_device_refused_is_a_message(site, browser):
    got = run_page(browser, site, "webgpu", before=(
        "GPUAdapter.prototype.requestDevice = () => Promise.reject(new Error('refused by the test'));"))
    assert got["rc"] == 1, got
    assert "cannot create a device on " in got["err"] and "refused by the test" in got["err"], got["err"]


def test_node_without_webgpu_is_a_message(converted, probe):
    """Node has no navigator.gpu (nor JSPI): the WebGPU backend says so; the CPU one runs."""
    model = converted("aidreams260K")
    p = node_probe(probe, model, n=4)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    p = subprocess.run(["node", "--no-warnings", "--experimental-wasi-unstable-preview1",
                        str(REPO / "wasm" / "run-node.mjs"), str(probe), model.name, PROMPT, "4", "webgpu"],
                       cwd=model.parent, capture_output=True, timeout=120)
    assert p.returncode == 1
    assert p.stdout == b""
    assert b"navigator.gpu is missing" in p.stderr, p.stderr


def test_auto_skips_swiftshader(wgllm, converted, site, browser):
    """AUTO takes a hardware adapter only: SwiftShader is reported as a CPU adapter, so the
    wasm CPU backend runs, with the same ids."""
    got = run_page(browser, site, "auto", n=8)
    assert got["rc"] == 0, got["err"]
    assert "backend: cpu (only software WebGPU adapters" in got["err"], got["err"]
    assert [int(t) for t in got["out"].split()] == native_ids(wgllm, converted("aidreams260K"))[:8]


@pytest.fixture(scope="module")
def page_site(probe):
    """The in-browser page (OUT/local/, built with the probe) served from 127.0.0.1."""

    with serve_dir(probe.parent / "local") as url:
        yield url


def test_page_webgpu_greedy_matches_native(wgllm, converted, page_site, browser):
    """The page (wgllm.js, its Worker, wgllm.wasm) on the webgpu backend: the model from a
    file, 32 greedy ids equal to the native build's."""
    model = converted("aidreams260K")
    browser.get(f"{page_site}/index.html")
    Select(browser.find_element(By.ID, "backend")).select_by_value("webgpu")
    browser.find_element(By.ID, "file").send_keys(str(model.resolve()))  # chromedriver wants it canonical
    deadline = time.monotonic() + WAIT
    state = ""
    while time.monotonic() < deadline and state not in ("ready", "error"):
        time.sleep(0.5)
        state = browser.find_element(By.TAG_NAME, "body").get_attribute("data-state")
    assert state == "ready", browser.find_element(By.ID, "error").text
    assert "backend\nwebgpu" in browser.find_element(By.ID, "info").text
    browser.execute_script(
        "window.pageResult = null;"
        "(async () => {"
        "  const g = wgllmPage.model.generate(arguments[0], {maxTokens: arguments[1], temperature: 0, chat: false});"
        "  for await (const piece of g);"
        "  return {ids: g.tokens, stats: g.stats};"
        "})().then((r) => { window.pageResult = r; }, (e) => { window.pageResult = {error: String(e)}; });",
        PROMPT, N)
    got = None
    while time.monotonic() < deadline and not got:
        time.sleep(0.5)
        got = browser.execute_script("return window.pageResult")
    assert got and "error" not in got, got
    assert got["ids"] == native_ids(wgllm, model)
