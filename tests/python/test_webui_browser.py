"""The playground page in a real browser: Debian's chromium, headless, through Selenium and
chromium-driver (both from scripts/install-deps.sh; Selenium Manager is never asked to
download anything).

Against `wgllm serve` on the demo model (the llama2.c conversion of aidreams260K, context
128): the page shows the model and its context, sends with Enter, the greedy reply equals
the API's for the same settings, regenerate gives it again, a context overflow (400) is
shown in the conversation, the page fits a 360 px screen, and with --api-key it asks for the
key and keeps it in session storage only. The demo model writes its longest reply in a few
milliseconds, so what needs a generation still running (the reply growing on screen, stop
freeing the slot, a second request refused with 429) runs on a random-weight model with a
long context (seconds per reply). Model output with <script>, event handlers and javascript:
links comes from a stub server in this test that speaks the same SSE format and serves the
page bytes fetched from wgllm (without the CSP, so the renderer alone is what is tested).
Screenshots go to $WGLLM_TMP/webui (else the system's temp folder)."""

import http.client
import http.server
import json
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from server_util import Server, post, request

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 60  # seconds for anything the page should do (a loaded 2-core machine)
SLOW_MODEL = "synth-small-long"
SYSTEM = "You tell stories."
PROMPT = "Tell me about a cat."


def out_dir():
    path = Path(os.environ.get("WGLLM_TMP", tempfile.gettempdir())) / "webui"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser():
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not shutil.which(path):
            pytest.fail(f"{path} not found: install Debian's {pkg} (scripts/install-deps.sh)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--disable-extensions", "--window-size=1200,860"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the driver's path given: Selenium skips Selenium Manager (no download, no network)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def demo_server(wgllm, converted):
    s = Server(wgllm, converted("aidreams260K"), "--parallel", "1", name="webui-demo")
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def slow_server(wgllm, synth):
    """One slot and no queue: a second request while one runs is refused (429)."""
    model = synth("small-long", ["--preset", "small", "--ctx", "32768", "--type", "q8_0", "--seed", "1"])
    s = Server(wgllm, model, "--parallel", "1", "--max-queue", "0", name="webui-slow")
    yield s
    assert s.stop() == 0


def wait(driver, cond, what, timeout=WAIT):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: cond(d))
    except TimeoutException:
        pytest.fail(f"timed out after {timeout}s waiting for {what}")


def wait_for(cond, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def open_page(driver, server):
    driver.get(server.url + "/")
    wait(driver, lambda d: d.find_element(By.ID, "model-info").get_attribute("data-model"), "the model id")


def set_field(driver, field_id, value):
    el = driver.find_element(By.ID, field_id)
    el.clear()
    if value != "":
        el.send_keys(str(value))


def set_checked(driver, field_id, checked):
    el = driver.find_element(By.ID, field_id)
    if el.is_selected() != checked:
        el.click()


def messages(driver):
    """[(role, textContent, busy)] of the conversation."""
    return js(driver, "return [...document.querySelectorAll('#messages .msg')].map(m => "
                      "[m.dataset.role, m.querySelector('.body').textContent, m.getAttribute('aria-busy') === 'true'])")


def idle(driver):
    return not driver.find_element(By.ID, "send").get_property("disabled")


def send(driver, text):
    box = driver.find_element(By.ID, "prompt")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)  # Enter sends


def severe_logs(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


# ---- the demo model ----

def test_greedy_reply_matches_the_api(browser, demo_server):
    d = browser
    d.get_log("browser")
    open_page(d, demo_server)
    info = d.find_element(By.ID, "model-info")
    assert info.get_attribute("data-model") == "aidreams260K-f32"
    assert info.get_attribute("data-ctx") == "128"  # the model's context, from /v1/models
    assert "aidreams260K-f32" in info.text and "128" in info.text
    set_field(d, "system", SYSTEM)
    set_field(d, "temperature", 0)
    set_field(d, "max_tokens", 40)
    set_checked(d, "markdown", False)  # the raw text, to compare with the API's
    # Shift+Enter is a new line, not a send
    box = d.find_element(By.ID, "prompt")
    box.send_keys("line one", Keys.SHIFT, Keys.ENTER, Keys.SHIFT, "line two")
    assert box.get_property("value") == "line one\nline two"
    assert messages(d) == []
    box.clear()
    send(d, PROMPT)
    wait(d, lambda d: idle(d) and any(m[0] == "assistant" for m in messages(d)), "the reply")
    msgs = messages(d)
    assert [m[0] for m in msgs] == ["user", "assistant"], msgs
    assert msgs[0][1] == PROMPT and not msgs[1][2]
    shown = msgs[1][1]

    body = {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
            "temperature": 0, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "max_tokens": 40}
    status, _, obj = post(demo_server.url, "/v1/chat/completions", body)
    assert status == 200, obj
    want = obj["choices"][0]["message"]["content"]
    assert want and shown == want
    # readouts: time to first token, speed, and the context the conversation now holds
    stats = d.find_element(By.ID, "stats").text
    assert "first token" in stats and "tok/s" in stats, stats
    assert f"{obj['usage']['completion_tokens']} tokens" in stats, stats
    assert d.find_element(By.ID, "stats").get_attribute("data-ttft-ms").isdigit()
    total = obj["usage"]["total_tokens"]
    assert d.find_element(By.ID, "ctx-label").text == f"Context: {total} / 128 tokens"
    bar = d.find_element(By.ID, "ctx-bar")
    assert float(bar.get_property("value")) == min(total, 128) and float(bar.get_property("max")) == 128

    # regenerate: the same greedy reply again, in place of the first
    d.find_element(By.ID, "regen").click()
    wait(d, lambda d: idle(d) and len(messages(d)) == 2 and messages(d)[1][0] == "assistant"
         and not messages(d)[1][2], "the regenerated reply")
    assert messages(d)[1][1] == want

    set_checked(d, "markdown", True)
    d.save_screenshot(str(out_dir() / "playground.png"))
    assert severe_logs(d) == []  # no CSP refusals, no script errors, no missing files


def test_context_overflow_is_shown(browser, demo_server):
    d = browser
    open_page(d, demo_server)
    send(d, "the cat sat on the mat and " * 40)
    wait(d, lambda d: idle(d) and any(m[0] == "error" for m in messages(d)), "the error")
    msgs = messages(d)
    assert [m[0] for m in msgs] == ["user", "error"], msgs  # no empty reply left behind
    assert "400" in msgs[1][1] and "context_length_exceeded" in msgs[1][1] and "128 tokens" in msgs[1][1]
    err = d.find_element(By.CSS_SELECTOR, "#messages .msg.error")
    assert err.get_attribute("role") == "alert" and err.get_attribute("data-status") == "400"


def test_narrow_screen(browser, demo_server):
    d = browser
    d.set_window_size(360, 740)
    try:
        open_page(d, demo_server)
        # no sideways scrolling; the composer and its buttons are on screen; settings folded away
        assert js(d, "return document.documentElement.scrollWidth") <= js(d, "return window.innerWidth")
        for el_id in ("prompt", "send", "stop", "regen"):
            rect = js(d, "const r = document.getElementById(arguments[0]).getBoundingClientRect();"
                         "return [r.left, r.right, r.width];", el_id)
            assert rect[0] >= 0 and rect[1] <= 360 and rect[2] > 0, (el_id, rect)
        assert d.find_element(By.ID, "settings").get_property("open") is False
        # every control has a label
        unlabeled = js(d, "return [...document.querySelectorAll('input, textarea')]"
                          ".filter(e => !e.labels || !e.labels.length).map(e => e.id)")
        assert unlabeled == []
        d.save_screenshot(str(out_dir() / "playground-360.png"))
    finally:
        d.set_window_size(1200, 860)


def test_api_key_is_asked_for_and_kept_for_the_tab(browser, wgllm, converted):
    d = browser
    s = Server(wgllm, converted("aidreams260K"), "--parallel", "1", "--api-key", "sekret", name="webui-key")
    try:
        d.get(s.url + "/")
        dialog_open = "return document.getElementById('key-dialog').open"
        wait(d, lambda d: js(d, dialog_open), "the key dialog")
        key = d.find_element(By.ID, "key-input")
        key.send_keys("wrong", Keys.ENTER)
        wait(d, lambda d: js(d, dialog_open) and "refused" in d.find_element(By.ID, "key-dialog").text,
             "the dialog again after a wrong key")
        d.find_element(By.ID, "key-input").send_keys("sekret", Keys.ENTER)
        wait(d, lambda d: d.find_element(By.ID, "model-info").get_attribute("data-model"), "the model")
        set_field(d, "temperature", 0)
        set_field(d, "max_tokens", 5)
        send(d, "Hi")
        wait(d, lambda d: idle(d) and any(m[0] == "assistant" for m in messages(d)), "the reply")
        assert js(d, "return sessionStorage.getItem('wgllm-api-key')") == "sekret"
        assert js(d, "return localStorage.length") == 0 and js(d, "return document.cookie") == ""
        log = s.access_log()
        assert any(e["path"] == "/v1/chat/completions" and e["status"] == 200 for e in log)
    finally:
        d.get("about:blank")
        assert s.stop() == 0


# ---- a generation that lasts: streaming, stop, 429 ----

def test_reply_streams_and_stop_frees_the_slot(browser, slow_server):
    d = browser
    open_page(d, slow_server)
    set_field(d, "temperature", 0)
    set_field(d, "max_tokens", 100000)
    set_checked(d, "ignore_eos", True)  # random weights: keep going until stopped
    set_checked(d, "markdown", False)
    send(d, "Hello")
    # the reply grows on screen while the server generates it
    lengths = []
    deadline = time.monotonic() + WAIT
    while len(set(lengths)) < 6:
        assert time.monotonic() < deadline, f"the reply did not grow: {lengths}"
        msgs = messages(d)
        if len(msgs) == 2 and msgs[1][2]:
            lengths.append(len(msgs[1][1]))
        time.sleep(0.05)
    assert lengths == sorted(lengths), lengths
    assert len([n for n in set(lengths) if n > 0]) >= 5, lengths
    assert slow_server.metrics()["wgllm_active_sequences"] == 1
    d.find_element(By.ID, "stop").click()
    wait_for(lambda: slow_server.metrics()["wgllm_active_sequences"] == 0, "the slot to be freed", timeout=20)
    wait(d, idle, "the page to be ready again")
    msgs = messages(d)
    assert [m[0] for m in msgs] == ["user", "assistant"] and not msgs[1][2]
    stopped_at = msgs[1][1]
    assert stopped_at and "stopped" in d.find_element(By.ID, "stats").text
    time.sleep(0.5)
    assert messages(d)[1][1] == stopped_at  # nothing arrives after stop
    m = slow_server.metrics()
    assert m["wgllm_kv_cache_used_tokens"] == 0
    assert m["wgllm_generated_tokens_total"] < 100000
    chats = [e for e in slow_server.access_log() if e["path"] == "/v1/chat/completions"]
    assert chats and chats[-1].get("client_disconnected") is True, chats


def test_queue_full_is_shown(browser, slow_server):
    d = browser
    open_page(d, slow_server)
    rejected = slow_server.metrics()["wgllm_requests_rejected_total"]
    holder = http.client.HTTPConnection("127.0.0.1", slow_server.port, timeout=120)
    try:  # another client holds the only slot
        holder.request("POST", "/v1/chat/completions",
                       json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": 100000,
                                   "ignore_eos": True, "stream": True}),
                       {"Content-Type": "application/json"})
        r = holder.getresponse()
        assert r.status == 200
        wait_for(lambda: slow_server.metrics()["wgllm_active_sequences"] == 1, "the holder to take the slot")
        send(d, "Hello")
        wait(d, lambda d: idle(d) and any(m[0] == "error" for m in messages(d)), "the 429")
        msgs = messages(d)
        assert [m[0] for m in msgs] == ["user", "error"], msgs
        assert msgs[1][1].startswith("429 (queue_full) the server is busy"), msgs[1][1]
        err = d.find_element(By.CSS_SELECTOR, "#messages .msg.error")
        assert err.get_attribute("data-status") == "429" and err.is_displayed()
        assert slow_server.metrics()["wgllm_requests_rejected_total"] == rejected + 1
        d.save_screenshot(str(out_dir() / "playground-429.png"))
    finally:
        holder.close()
    wait_for(lambda: slow_server.metrics()["wgllm_active_sequences"] == 0, "the holder's slot to be freed")


# ---- hostile model output, through a stub server ----

HOSTILE = [
    "Here: <scr", "ipt>window.__pwned = 1; alert(1)</script> and ",
    "<img src=x onerror=\"window.__pwned = 2\"> and <iframe src=\"javascript:window.__pwned=3\"></iframe>\n\n",
    "[click](javascript:window.__pwned=4) [ok](https://example.com/a?b=1) ",
    "[rel](/v1/models) **bold <b>tag</b>** and `code <b>x</b>`\n\n",
    "```html\n<script>window.__pwned = 5</script>\n```\n\n- item <svg onload=\"window.__pwned=6\">\n",
]


class Stub:
    """Serves the page files (bytes fetched from wgllm, no CSP) and an OpenAI-style stream."""

    def __init__(self, files):
        self.requests = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/v1/models":
                    self.reply(200, "application/json", json.dumps(
                        {"object": "list", "data": [{"id": "stub", "object": "model", "context_length": 4096}]}).encode())
                elif self.path in files:
                    self.reply(200, *files[self.path])
                else:
                    self.reply(404, "text/plain", b"not found")

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                base = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "stub"}
                events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                "finish_reason": None}]}]
                events += [{**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
                           for p in HOSTILE]
                events += [{**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                           {**base, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 6,
                                                             "total_tokens": 9}}]
                for e in events:
                    self.wfile.write(b"data: " + json.dumps(e).encode() + b"\n\n")
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")

            def reply(self, status, ctype, data):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def page_bytes(server):
    """Path -> (content type, bytes) of the page and every file it loads, as wgllm serves them."""
    files, todo = {}, ["/"]
    while todo:
        path = todo.pop()
        if path in files:
            continue
        status, headers, body = request(server.url, "GET", path)
        assert status == 200, path
        files[path] = (headers["content-type"], body)
        text = body.decode("utf-8")
        todo += re.findall(r'(?:src|href)="(/webui/[^"]+)"', text)
        todo += ["/webui/" + dep for dep in re.findall(r"from '\./([\w.-]+)'", text)]
    return files


def test_script_in_model_output_is_not_executed(browser, demo_server):
    d = browser
    stub = Stub(page_bytes(demo_server))
    try:
        d.get(stub.url + "/")
        wait(d, lambda d: d.find_element(By.ID, "model-info").get_attribute("data-model") == "stub", "the stub model")
        send(d, "Say something nasty")
        wait(d, lambda d: idle(d) and any(m[0] == "assistant" for m in messages(d)), "the reply")
        # what the page asked for: a chat stream with usage, the settings' sampling fields
        req = stub.requests[-1]
        assert req["stream"] is True and req["stream_options"] == {"include_usage": True}
        assert req["messages"][-1] == {"role": "user", "content": "Say something nasty"}
        assert {"temperature", "top_p", "top_k", "min_p"} <= set(req)
        time.sleep(0.3)  # give any handler that slipped through (img onerror, svg onload) time to run
        assert js(d, "return typeof window.__pwned") == "undefined"
        body = d.find_element(By.CSS_SELECTOR, "#messages .msg.assistant .body")
        text = body.get_property("textContent")
        for shown in ("<script>window.__pwned = 1; alert(1)</script>", "<img src=x onerror=", "<iframe src=",
                      "<script>window.__pwned = 5</script>", "<svg onload=", "<b>x</b>"):
            assert shown in text, shown  # shown as text
        dangerous = "script, img, iframe, svg, object, embed, style, link, [onerror], [onload], [style]"
        assert body.find_elements(By.CSS_SELECTOR, dangerous) == []
        links = js(d, "return [...arguments[0].querySelectorAll('a')].map(a => [a.getAttribute('href'), a.rel, "
                      "a.target, a.textContent])", body)
        assert links == [["https://example.com/a?b=1", "noopener noreferrer", "_blank", "ok"]], links
        assert "[click](javascript:window.__pwned=4)" in text and "[rel](/v1/models)" in text
        assert js(d, "return arguments[0].querySelector('strong').textContent", body) == "bold <b>tag</b>"
        assert js(d, "return arguments[0].querySelector('pre code').textContent", body) == \
            "<script>window.__pwned = 5</script>"
        assert js(d, "return arguments[0].querySelector('li').textContent", body) == \
            "item <svg onload=\"window.__pwned=6\">"
        assert d.find_element(By.ID, "ctx-label").text == "Context: 9 / 4,096 tokens"
    finally:
        d.get("about:blank")
        stub.close()


MARKDOWN = [  # (input, the rendered fragment serialised)
    ("plain *em* **strong** _u_ __uu__ `a <b>`",
     "<p>plain <em>em</em> <strong>strong</strong> <em>u</em> <strong>uu</strong> <code>a &lt;b&gt;</code></p>"),
    ("snake_case_name and 2*3*4", "<p>snake_case_name and 2<em>3</em>4</p>"),
    ("para one\nline two\n\npara two", "<p>para one<br>line two</p><p>para two</p>"),
    ("# Title\n- a\n- b *c*\n\n1. x\n2. y", "<h3>Title</h3><ul><li>a</li><li>b <em>c</em></li></ul><ol><li>x</li><li>y</li></ol>"),
    ("3. three\n4. four", '<ol start="3"><li>three</li><li>four</li></ol>'),
    ("```js\nlet a = 1 < 2;\n```\nafter", '<pre data-lang="js"><code data-lang="js">let a = 1 &lt; 2;</code></pre><p>after</p>'),
    ("```\nstill streaming", "<pre><code>still streaming</code></pre>"),
    ("> quoted **x**\n\n---", "<blockquote><p>quoted <strong>x</strong></p></blockquote><hr>"),
    ("[a](http://x.org/) [b](data:text/html,hi) [c](//evil.org) [d](https://y.org/?q=\"<>)",
     '<p><a href="http://x.org/" rel="noopener noreferrer" target="_blank">a</a> [b](data:text/html,hi) '
     '[c](//evil.org) <a href="https://y.org/?q=%22%3C%3E" rel="noopener noreferrer" target="_blank">d</a></p>'),
    ("<b onclick=x>&amp;</b>", "<p>&lt;b onclick=x&gt;&amp;amp;&lt;/b&gt;</p>"),
    ("[" * 3000 + " " + "**a" * 1000, None),  # hostile but harmless: renders, keeps every bracket
]


def test_markdown_renderer(browser, demo_server):
    """The page's own renderer module, imported in the page, on a table of inputs."""
    d = browser
    open_page(d, demo_server)
    got = d.execute_async_script(
        "const [inputs, done] = arguments;"
        "import('/webui/markdown.js').then(({ renderMarkdown }) => done(inputs.map(t => {"
        "  const div = document.createElement('div'); div.appendChild(renderMarkdown(t));"
        "  return [div.innerHTML, div.textContent]; })));",
        [m[0] for m in MARKDOWN])
    for (text, want), (html, content) in zip(MARKDOWN, got):
        if want is None:
            assert content.startswith("[" * 3000), content[:50]
        else:
            assert html == want, text
