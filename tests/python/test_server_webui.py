"""The playground's HTTP routes: GET / and /webui/NAME serve only the files embedded at build
time, with their content types and the headers that keep a browser to them (a strict CSP
without inline script, nosniff, no framing); HEAD; unknown names and traversal attempts get
404 and never a file's bytes; --no-webui turns the routes off; --api-key leaves them open.
The page itself is driven in a browser by test_webui_browser.py."""

import json
import re
import socket

import pytest

from server_util import Server, request

MODEL = "aidreams260K-f32"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}


@pytest.fixture(scope="module")
def server(wgllm, shared):
    s = Server(wgllm, shared / "models" / f"{MODEL}.gguf", "--parallel", "1", name="webui")
    yield s
    assert s.stop() == 0


def raw(port, data, timeout=30):
    """Sends raw bytes, returns everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def parse(answer):
    """(status, lower-cased headers, body) of one raw HTTP/1.1 answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


def get(port, path, method="GET"):
    return parse(raw(port, f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1")))


def assert_guarded(headers, path):
    assert headers["content-security-policy"] == CSP, path
    assert headers["x-content-type-options"] == "nosniff", path
    assert headers["x-frame-options"] == "DENY", path
    assert headers["referrer-policy"] == "no-referrer", path


def page_files(html):
    """The /webui/ files index.html loads, and those its scripts import."""
    return sorted(set(re.findall(r'(?:src|href)="(/webui/[^"]+)"', html)))


def test_page_and_files(server):
    status, headers, body = request(server.url, "GET", "/")
    assert status == 200
    assert headers["content-type"] == TYPES[".html"]
    assert_guarded(headers, "/")
    html = body.decode("utf-8")
    assert html.startswith("<!doctype html>")
    # no inline script anywhere (the CSP would refuse it), and nothing from another origin
    for attrs, content in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
        assert 'src="/webui/' in attrs and not content.strip(), attrs
    assert not re.search(r"\son\w+=", html), "inline event handlers"
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert ref.startswith("/webui/") or ref == "data:,", ref
    files = page_files(html)
    assert "/webui/app.js" in files and "/webui/style.css" in files
    seen = set()
    while files:
        path = files.pop()
        if path in seen:
            continue
        seen.add(path)
        status, headers, body = request(server.url, "GET", path)
        assert status == 200, path
        assert headers["content-type"] == TYPES[path[path.rindex("."):]], path
        assert_guarded(headers, path)
        assert int(headers["content-length"]) == len(body) > 0
        if path.endswith(".js"):
            text = body.decode("utf-8")
            assert "innerHTML" not in text and "eval(" not in text and "document.write" not in text, path
            for dep in re.findall(r"from '\./([\w.-]+)'", text):
                files.append("/webui/" + dep)
    assert {"/webui/app.js", "/webui/markdown.js", "/webui/sse.js", "/webui/style.css"} <= seen


def test_head(server):
    _, _, page = request(server.url, "GET", "/")
    for path, size in [("/", len(page)), ("/webui/app.js", None)]:
        status, headers, body = get(server.port, path, "HEAD")
        assert status == 200, path
        assert body == b"", path  # the head alone
        assert_guarded(headers, path)
        if size is not None:
            assert int(headers["content-length"]) == size


@pytest.mark.parametrize("path", [
    "/webui/nope.js", "/webui/", "/webui", "/index.html", "/app.js", "/webui/INDEX.HTML", "/webui/.", "/webui/..",
    "/webui/app.js/", "/webui/./app.js", "/webui//app.js", "/webui/.hidden",
])
def test_unknown_files(server, path):
    status, headers, body = get(server.port, path)
    assert status == 404, path
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "not_found"


# every way of leaving the table the URL could try; none may answer with a file's bytes
TRAVERSALS = [
    "/webui/../../../../../../etc/passwd",
    "/webui/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/webui/%2E%2E%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "/webui/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/webui/%252e%252e/%252e%252e/etc/passwd",
    "/webui/..\\..\\..\\..\\etc\\passwd",
    "/webui/....//....//....//etc/passwd",
    "/webui/%2fetc%2fpasswd",
    "/webui//etc/passwd",
    "/webui/app.js/../../../../etc/passwd",
    "/webui/..%c0%af..%c0%afetc%c0%afpasswd",
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "//etc/passwd",
    "/webui/../../CMakeLists.txt",
    "/webui/../../../proc/self/environ",
    "/webui/%2e%2e/%2e%2e/web/playground/app.js",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_is_404(server, path):
    status, _, body = get(server.port, path)
    assert status == 404, (path, status)
    assert json.loads(body)["error"]["code"] == "not_found"
    assert b"root:" not in body and b"cmake_minimum_required" not in body and b"PATH=" not in body


def test_404_body_is_valid_json_for_any_url(server):
    """A percent-decoded URL may be any bytes: the 404 message shows them as valid UTF-8."""
    for path in ("/%c0%af%ff", "/webui/%ff%fe", "/v1/%e2%82"):
        status, _, body = get(server.port, path)
        assert status == 404, path
        body.decode("utf-8")
        assert json.loads(body)["error"]["code"] == "not_found"


def test_escaped_nul_is_400(server):
    status, _, body = get(server.port, "/webui/app.js%00.png")
    assert status == 400 and json.loads(body)["error"]["code"] == "invalid_url"


def test_other_methods(server):
    for method in ("POST", "PUT", "DELETE"):
        status, _, body = get(server.port, "/", method)
        assert status == 405 and json.loads(body)["error"]["code"] == "method_not_allowed", method
    # HEAD stays a 405 on the API's routes, as before
    assert get(server.port, "/v1/models", "HEAD")[0] == 405


def test_metrics_label_the_routes(server):
    request(server.url, "GET", "/")
    request(server.url, "GET", "/webui/app.js")
    request(server.url, "GET", "/webui/missing.js")
    m = server.metrics()
    assert m['wgllm_http_requests_total{route="/",status="200"}'] >= 1
    assert m['wgllm_http_requests_total{route="/webui/",status="200"}'] >= 1
    # one label for every /webui/ name: hostile URLs cannot grow the metrics
    assert m['wgllm_http_requests_total{route="/webui/",status="404"}'] >= 1
    assert not any("missing" in k for k in m)


def test_no_webui(wgllm, shared):
    s = Server(wgllm, shared / "models" / f"{MODEL}.gguf", "--parallel", "1", "--no-webui", name="nowebui")
    try:
        for path in ("/", "/webui/app.js", "/webui/index.html", "/webui/style.css"):
            for method in ("GET", "HEAD"):
                status, headers, body = get(s.port, path, method)
                assert status == 404, (method, path)
                assert "content-security-policy" not in headers
                if method == "GET":
                    assert json.loads(body)["error"]["code"] == "not_found"
        assert request(s.url, "GET", "/health")[0] == 200
        assert request(s.url, "GET", "/v1/models")[0] == 200
    finally:
        assert s.stop() == 0


def test_page_is_open_with_an_api_key(wgllm, shared):
    """The page loads without the key (it then asks for it); the API still needs it."""
    s = Server(wgllm, shared / "models" / f"{MODEL}.gguf", "--parallel", "1", "--api-key", "sekret",
               name="webuikey")
    try:
        for path in ("/", "/webui/app.js", "/webui/style.css"):
            assert request(s.url, "GET", path)[0] == 200, path
        assert request(s.url, "GET", "/v1/models")[0] == 401
        assert request(s.url, "GET", "/v1/models", headers={"Authorization": "Bearer sekret"})[0] == 200
    finally:
        assert s.stop() == 0
