"""The browser page (web/local/, built into OUT/local/ by scripts/build-wasm.sh) in Debian's
headless chromium: a GGUF picked in its file input, or streamed from a URL, is loaded by
wgllm.js into the engine in a Web Worker, and 32 greedy tokens equal the native build's
ids; the chat form answers through the model's template and shows tokens/s; a malformed
GGUF, and the webgpu backend in a browser without WebGPU, end in the engine's message on the page
instead of a hung tab."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from server_util import Server

from browser_util import WAIT, QuietHandler, chromium, need, serve_dir

REPO = Path(__file__).resolve().parents[2]
PROMPT = "Once upon a time"
N = 32



@pytest.fixture(scope="module")
def page_dir(scratch):
    """OUT/local/: the page, wgllm.js, its worker, the WASI host and wgllm.wasm."""
    for path, pkg in (("wasm-ld", "lld"), ("/usr/lib/wasm32-wasi/libc.a", "wasi-libc")):
        need(path, pkg)
    out = scratch / "wasm-page"
    p = subprocess.run([str(REPO / "scripts" / "build-wasm.sh")], env=dict(os.environ, OUT=str(out)),
                       capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return out / "local"


@pytest.fixture(scope="module")
def model(converted):
    return converted("aidreams260K")


@pytest.fixture(scope="module")
def bad_files(model, scratch):
    data = model.read_bytes()
    truncated, magic = scratch / "truncated.gguf", scratch / "badmagic.gguf"
    truncated.write_bytes(data[:100])
    magic.write_bytes(b"XXXX" + data[4:])
    return {"truncated": (truncated, "truncated.gguf: absurd counts"),
            "bad magic": (magic, 'badmagic.gguf: bad magic "XXXX": not a GGUF file')}


@pytest.fixture(scope="module")
def site(page_dir, model):
    """The page over HTTP with the model next to it (for the URL form)."""
    shutil.copy(model, page_dir / "model.gguf")

    class Quiet(QuietHandler):
        def do_GET(self):
            if self.path == "/huge/model.gguf":  # says 5 GB, sends a few bytes
                self.send_response(200)
                self.send_header("Content-Length", str(5 * 10**9))
                self.end_headers()
                self.wfile.write(b"GGUF")
                self.close_connection = True
                return None
            if self.path != "/chunked/model.gguf":
                return super().do_GET()
            # no Content-Length: the page cannot size the model's memory up front
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            data = (page_dir / "model.gguf").read_bytes()
            for i in range(0, len(data), 65536):
                part = data[i:i + 65536]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")

    Quiet.protocol_version = "HTTP/1.1"
    with serve_dir(page_dir, Quiet) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(webgpu=False) as driver:
        yield driver


@pytest.fixture(scope="module")
def want(wgllm, model):
    toks = wgllm.run_json("-m", model, "-p", PROMPT, "-n", N, "--temp", 0, "--backend", "cpu")
    ids = [t["id"] for t in toks]
    assert len(ids) == N
    return ids


def open_page(browser, site, backend="cpu"):
    browser.get(f"{site}/index.html")
    Select(browser.find_element(By.ID, "backend")).select_by_value(backend)


def settle(browser):
    """Waits until loading ends; returns the page's state and error text."""
    WebDriverWait(browser, WAIT).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") in ("ready", "error"))
    return (browser.find_element(By.TAG_NAME, "body").get_attribute("data-state"),
            browser.find_element(By.ID, "error").text)


def greedy_ids(browser):
    return browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "(async () => {"
        "  const g = wgllmPage.model.generate(arguments[0], {maxTokens: arguments[1], temperature: 0,"
        "                                                    chat: false});"
        "  let text = '';"
        "  for await (const piece of g) text += piece;"
        "  return {ids: g.tokens, text, stats: g.stats};"
        "})().then(done, (e) => done({error: String(e)}));", PROMPT, N)


def test_file_greedy_matches_native(browser, site, model, want):
    open_page(browser, site)
    browser.find_element(By.ID, "file").send_keys(str(model))
    state, err = settle(browser)
    assert state == "ready", err
    info = browser.find_element(By.ID, "info").text
    assert "backend\ncpu" in info and "context\n128 tokens" in info, info
    assert browser.find_element(By.ID, "progress-text").text.startswith("loaded in")
    got = greedy_ids(browser)
    assert "error" not in got, got
    assert got["ids"] == want
    assert got["stats"]["tokens"] == N and got["stats"]["stop"] == "length"
    assert got["text"].strip()


def test_served_by_wgllm_serve(browser, wgllm, shared, page_dir, model, want):
    """`wgllm serve --local-dir OUT/local`: the page runs under the route's CSP (WebAssembly,
    a module Worker) and gives the same ids."""
    s = Server(wgllm, shared / "models" / "aidreams260K-f32.gguf", "--parallel", "1", "--local-dir", page_dir,
               name="local-page")
    try:
        open_page(browser, f"{s.url}/local")
        browser.find_element(By.ID, "file").send_keys(str(model))
        state, err = settle(browser)
        assert state == "ready", err
        got = greedy_ids(browser)
        assert "error" not in got, got
        assert got["ids"] == want
    finally:
        assert s.stop() == 0


def memory_bytes(browser):
    return browser.execute_script("return wgllmPage.model.info.memory_bytes")


@pytest.mark.parametrize("how", ["file", "url"])
def test_load_progress(browser, site, model, how):
    """onProgress counts the model's bytes up to its size, never down."""
    open_page(browser, site)
    browser.find_element(By.ID, "file").send_keys(str(model))
    assert settle(browser)[0] == "ready"
    events = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const src = arguments[0] === 'file' ? document.getElementById('file').files[0] : 'model.gguf';"
        "const ev = [];"
        "wgllmPage.wgllm.load(src, {onProgress: (l, t) => ev.push([l, t])})"
        "  .then(async (m) => { await m.free(); done(ev); }, (e) => done(String(e)));", how)
    size = model.stat().st_size
    assert isinstance(events, list) and events, events
    assert events[-1] == [size, size]
    assert all(a[0] <= b[0] for a, b in zip(events, events[1:])), events
    assert all(t == size for _, t in events), events


@pytest.mark.parametrize("path", ["model.gguf", "chunked/model.gguf"])
def test_url_greedy_matches_native(browser, site, model, want, path):
    open_page(browser, site)
    browser.find_element(By.ID, "file").send_keys(str(model))
    assert settle(browser)[0] == "ready"
    from_file = memory_bytes(browser)
    open_page(browser, site)
    browser.find_element(By.ID, "url").send_keys(f"{site}/{path}")
    browser.find_element(By.ID, "load-url").click()
    state, err = settle(browser)
    assert state == "ready", err
    # streamed into the engine's memory, which becomes its mapping of the file: the model's
    # bytes are there once, as from a File. A second copy (the stream's buffer read into a
    # mapping of its own) grew the memory by 0.46 MiB of this 0.9 MiB model, part of the
    # freed buffer being reused by the context.
    assert memory_bytes(browser) - from_file < model.stat().st_size // 4
    got = greedy_ids(browser)
    assert "error" not in got, got
    assert got["ids"] == want


def load_url(browser, site, name):
    open_page(browser, site)
    browser.find_element(By.ID, "url").send_keys(f"{site}/{name}")
    browser.find_element(By.ID, "load-url").click()
    state, err = settle(browser)
    assert state == "ready", err


@pytest.mark.parametrize("qtype", ["q4_0", "q8_0"])
def test_quantized_model_in_memory_once(browser, site, page_dir, wgllm, qtype):
    """A Q4_0 / Q8_0 model from a URL: the CPU backend reads the file's rows in place (the
    SIMD128 int8 kernels), with no repacked copy beside them."""
    path = page_dir / f"synth-{qtype}.gguf"
    if not path.exists():  # ~10 MiB of weights, a 64-token context: the KV cache is small
        wgllm.ok("synth", "--preset", "small", "--dim", 512, "--ffn", 1536, "--ctx", 64, "--type", qtype,
                 "--seed", 1, "-t", 1, path)
    size = path.stat().st_size
    load_url(browser, site, path.name)
    # the module's own memory (code, stack, heap of a small model) is under 2 MiB; the
    # repacked copy of the weights made this 2.3x the file (20.6 MiB for 9.1)
    assert memory_bytes(browser) < size * 1.25 + (2 << 20), (memory_bytes(browser), size)


@pytest.mark.parametrize("qtype", ["q4_0", "q8_0"])
def test_quantized_greedy_matches_native_int8(browser, site, page_dir, wgllm, model, monkeypatch, qtype):
    """The page's int8 path (SIMD128 kernels on the file's rows) gives the native int8 path's
    ids at its portable level, whose sums it reproduces bit for bit."""
    path = page_dir / f"aidreams-{qtype}.gguf"
    if not path.exists():
        wgllm.ok("quantize", model, path, qtype, "--threads", "1", timeout=WAIT)
    monkeypatch.setenv("WGLLM_CPU_EXACT", "0")
    monkeypatch.setenv("WGLLM_CPU_ISA", "scalar")
    want = [t["id"] for t in wgllm.run_json("-m", path, "-p", PROMPT, "-n", N, "--temp", 0, "--backend", "cpu")]
    assert len(want) == N
    load_url(browser, site, path.name)
    got = greedy_ids(browser)
    assert "error" not in got, got
    assert got["ids"] == want


def generate(browser, prompt, opts):
    return browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "(async () => {"
        "  const g = wgllmPage.model.generate(arguments[0], arguments[1]);"
        "  let text = '';"
        "  for await (const piece of g) text += piece;"
        "  return {ids: g.tokens, text, stop: g.stats.stop, cached: g.stats.cachedTokens};"
        "})().then(done, (e) => done({error: String(e)}));", prompt, opts)


def test_options_stop_seed_and_errors(browser, site, model, wgllm):
    open_page(browser, site)
    browser.find_element(By.ID, "file").send_keys(str(model))
    assert settle(browser)[0] == "ready"
    full = generate(browser, PROMPT, {"maxTokens": N, "temperature": 0})
    assert "error" not in full, full
    words = full["text"].split()
    assert len(words) > 4, full
    # a stop string ends the text where it starts, even across token boundaries
    cut = generate(browser, PROMPT, {"maxTokens": N, "temperature": 0, "stop": [words[3]]})
    assert cut["stop"] == "stop"
    assert cut["text"] == full["text"][:full["text"].index(words[3])]
    # sampling: one seed, one answer
    a = generate(browser, PROMPT, {"maxTokens": 16, "temperature": 1.0, "topP": 0.9, "seed": 7})
    b = generate(browser, PROMPT, {"maxTokens": 16, "temperature": 1.0, "topP": 0.9, "seed": 7})
    assert a["ids"] == b["ids"] and a["ids"] and a["stop"] in ("length", "eos"), (a, b)
    # the engine's messages: a prompt longer than the context, bad sampling options
    long = generate(browser, "Once upon a time " * 200, {"maxTokens": 4})
    assert "the context holds 128" in long.get("error", ""), long
    bad = generate(browser, PROMPT, {"maxTokens": 4, "temperature": 1.0, "topP": -1})
    assert "top_p" in bad.get("error", ""), bad
    # and the model still works after them
    assert generate(browser, PROMPT, {"maxTokens": N, "temperature": 0})["ids"] == full["ids"]
    # a prompt that continues the last one reuses its cached tokens, with the native ids
    longer = PROMPT + full["text"][:full["text"].index(words[3])]
    want = [t["id"] for t in wgllm.run_json("-m", model, "-p", longer, "-n", 16, "--temp", 0, "--backend", "cpu")]
    again = generate(browser, longer, {"maxTokens": 16, "temperature": 0})
    assert again["ids"] == want
    n_prompt = len(browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "wgllmPage.model.tokenize(arguments[0]).then(done, (e) => done(String(e)));", PROMPT))
    assert n_prompt > 3 and again["cached"] >= n_prompt, (n_prompt, again)


def test_chat_form_streams_an_answer(browser, site, model):
    open_page(browser, site)
    browser.find_element(By.ID, "file").send_keys(str(model))
    assert settle(browser)[0] == "ready"
    browser.find_element(By.ID, "max-tokens").clear()
    browser.find_element(By.ID, "max-tokens").send_keys("16")
    browser.find_element(By.ID, "prompt").send_keys("Tell me a story.")
    browser.find_element(By.ID, "send").click()
    WebDriverWait(browser, WAIT).until(lambda d: "tokens/s" in d.find_element(By.ID, "stats").text
                                       and "stop:" in d.find_element(By.ID, "stats").text)
    msgs = browser.find_elements(By.CSS_SELECTOR, "#log .msg")
    assert [m.get_attribute("class") for m in msgs] == ["msg user", "msg assistant"]
    assert msgs[1].text.strip()
    # the conversation went through the model's template (this model has none: the fallback)
    prompt = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "wgllmPage.model.formatChat([{role: 'user', content: 'hi'}]).then(done, (e) => done(String(e)));")
    assert prompt == "User: hi\nAssistant:"
    # a NUL inside a message cannot shift the fields of the next one
    prompt = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "wgllmPage.model.formatChat([{role: 'system', content: 'a\\0user'}, {role: 'user', content: 'b'}])"
        "  .then(done, (e) => done(String(e)));")
    assert prompt == "System: auser\nUser: b\nAssistant:"


@pytest.mark.parametrize("kind", ["truncated", "bad magic"])
def test_malformed_gguf_shows_the_error(browser, site, bad_files, kind):
    path, message = bad_files[kind]
    open_page(browser, site)
    browser.find_element(By.ID, "file").send_keys(str(path))
    state, err = settle(browser)
    assert state == "error"
    assert message in err
    # the tab still answers, and a good model loads after the error
    assert browser.execute_script("return 1 + 1") == 2


@pytest.mark.parametrize("path, message", [
    ("huge/model.gguf", "5000000000 bytes do not fit in WebAssembly's 4 GiB of memory"),
    ("missing.gguf", "missing.gguf: HTTP 404"),
])
def test_url_errors(browser, site, path, message):
    open_page(browser, site)
    browser.find_element(By.ID, "url").send_keys(f"{site}/{path}")
    browser.find_element(By.ID, "load-url").click()
    state, err = settle(browser)
    assert state == "error"
    assert message in err


def test_context_size(browser, site, wgllm, scratch):
    """A model trained on a long context gets at most 4096 tokens by default (its KV cache must
    fit in wasm32's 4 GiB); nCtx sets it."""
    long_ctx = scratch / "long-ctx.gguf"
    wgllm.ok("synth", "--preset", "tiny", "--ctx", 32768, "--type", "f32", "--seed", 1, long_ctx)
    open_page(browser, site)
    browser.find_element(By.ID, "file").send_keys(str(long_ctx))
    assert settle(browser)[0] == "ready"
    assert browser.execute_script("return wgllmPage.model.info.n_ctx") == 4096
    assert browser.execute_script("return wgllmPage.model.info.n_ctx_train") == 32768
    n = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "wgllmPage.wgllm.load(document.getElementById('file').files[0], {nCtx: 64})"
        "  .then(async (m) => { const n = m.info.n_ctx; await m.free(); done(n); }, (e) => done(String(e)));")
    assert n == 64


def test_webgpu_backend_without_it_is_an_error(browser, site, model):
    """This browser runs with --disable-gpu, so WebGPU has no adapter: the engine says so (no
    stub, no hang). The WebGPU path itself is test_wasm_webgpu.py's."""
    open_page(browser, site, backend="webgpu")
    browser.find_element(By.ID, "file").send_keys(str(model))
    state, err = settle(browser)
    assert state == "error"
    assert "WebGPU" in err
