"""Tokens/s of the in-browser engine (scripts/build-wasm.sh's OUT/local) in Debian's headless
chromium: loads each GGUF through the page's file input, generates greedily, prints what
wgllm.js measured (prompt and generation tokens/s, load time, the module's memory).

  bench/wasm_page_bench.py [--local build-wasm/local] [-n 64] [--backend cpu] MODEL.gguf...
"""

import argparse
import functools
import http.server
import json
import threading
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

PROMPT = "Once upon a time there was a little robot who wanted to learn"


def serve(folder):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    Quiet.extensions_map = {**Quiet.extensions_map, ".mjs": "text/javascript", ".js": "text/javascript",
                            ".wasm": "application/wasm"}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=folder))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--local", default="build-wasm/local")
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--flags", default="", help="more chromium flags, space-separated")
    a = ap.parse_args()
    httpd, url = serve(a.local)
    opts = webdriver.ChromeOptions()
    opts.binary_location = a.chromium
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-first-run"] + a.flags.split():
        opts.add_argument(arg)
    d = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=opts)
    try:
        for model in a.models:
            d.get(f"{url}/index.html")
            Select(d.find_element(By.ID, "backend")).select_by_value(a.backend)
            t0 = time.monotonic()
            d.find_element(By.ID, "file").send_keys(str(Path(model).resolve()))
            WebDriverWait(d, 3600).until(
                lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") in ("ready", "error"))
            load_s = time.monotonic() - t0
            if d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "error":
                print(json.dumps({"model": model, "error": d.find_element(By.ID, "error").text}))
                continue
            # started here and polled: one WebDriver call may not last minutes
            d.execute_script(
                "window.benchResult = null;"
                "(async () => { const g = wgllmPage.model.generate(arguments[0],"
                "  {maxTokens: arguments[1], temperature: 0, chat: false});"
                "  for await (const p of g) ; return {...g.stats, info: wgllmPage.model.info}; })()"
                ".then((r) => { window.benchResult = r; }, (e) => { window.benchResult = {error: String(e)}; });",
                PROMPT, a.n)
            stats = WebDriverWait(d, 3600, poll_frequency=1).until(
                lambda d: d.execute_script("return window.benchResult"))
            if "error" in stats:
                print(json.dumps({"model": model, "error": stats["error"]}))
                continue
            info = stats.pop("info")
            print(json.dumps({
                "model": Path(model).name, "backend": info["backend"], "load_s": round(load_s, 2),
                "memory_mib": round(info["memory_bytes"] / 2**20, 1),
                "prompt_tokens": stats["promptTokens"],
                "prompt_tok_s": round(stats["promptTokens"] / (stats["promptMs"] / 1000 or 1e-9), 1),
                "tokens": stats["tokens"], "tok_s": round(stats["tokensPerSecond"], 2), "stop": stats["stop"],
            }))
    finally:
        d.quit()
        httpd.shutdown()


if __name__ == "__main__":
    main()
