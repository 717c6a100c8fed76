"""Debian's headless chromium (through chromium-driver) and a static HTTP server on 127.0.0.1
for the tests of the wasm engine in a browser."""
import contextlib
import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 120  # seconds: a build or a browser run on a loaded 2-core machine
# WebGPU on SwiftShader, Chromium's CPU Vulkan, which Debian's chromium ships
WEBGPU_ARGS = ("--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader", "--enable-unsafe-swiftshader")


def need(path, pkg):
    if not (shutil.which(path) or Path(path).exists()):
        pytest.fail(f"{path} not found: install Debian's {pkg} (scripts/install-deps.sh)")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the types module scripts and WebAssembly need, and no log lines."""
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".js": "text/javascript", ".wasm": "application/wasm"}

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_dir(root, handler=QuietHandler):
    """Serves the folder root from 127.0.0.1 (a secure context, as WebGPU needs); yields its URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def chromium(webgpu=False):
    """Headless chromium: with WebGPU on SwiftShader, or with the GPU off."""
    need(CHROMIUM, "chromium")
    need(CHROMEDRIVER, "chromium-driver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    args = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"]
    for arg in args + (list(WEBGPU_ARGS) if webgpu else ["--disable-gpu"]):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()
