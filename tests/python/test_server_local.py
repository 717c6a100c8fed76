"""GET|HEAD /local/NAME with --local-dir DIR: the in-browser page's files, one flat folder,
with their content types (application/wasm, text/javascript) and the page's CSP; without the
option, 404. Hostile paths (traversal, encoded dots and slashes, %00, links out of the folder,
subfolders, hidden files, FIFOs, huge paths) get 404 or 400 and never a byte of a file that is
not a plain servable file of the folder. The page itself runs in test_wasm_page.py."""

import json
import os

import pytest

from server_util import Server, request
from test_server_webui import get, raw, parse

MODEL = "aidreams260K-f32"
CSP = ("default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; style-src 'self'; "
       "connect-src 'self' https:; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
SECRET = b"SECRET-OUTSIDE-THE-FOLDER"
FILES = {  # name: (bytes, content type)
    "index.html": (b"<!doctype html><title>page</title>", "text/html; charset=utf-8"),
    "app.js": (b"export const x = 1;", "text/javascript; charset=utf-8"),
    "wasi-mem.mjs": (b"export const y = 2;", "text/javascript; charset=utf-8"),
    "style.css": (b"body{}", "text/css; charset=utf-8"),
    "wgllm.wasm": (b"\0asm\1\0\0\0", "application/wasm"),
    "m.gguf": (b"GGUF" + bytes(60), "application/octet-stream"),
}


@pytest.fixture(scope="module")
def folder(scratch):
    root = scratch / "local-root"
    page = root / "page"
    (page / "sub").mkdir(parents=True)
    for name, (data, _) in FILES.items():
        (page / name).write_bytes(data)
    (root / "secret.js").write_bytes(SECRET)
    (root / "secret.html").write_bytes(SECRET)
    (page / "sub" / "inner.js").write_bytes(SECRET)
    (page / ".hidden.js").write_bytes(SECRET)
    (page / "notes.txt").write_bytes(SECRET)
    (page / "noext").write_bytes(SECRET)
    os.symlink(root / "secret.js", page / "link.js")              # a link out of the folder
    os.symlink("../secret.html", page / "rel.html")               # a relative one
    os.symlink(page / "app.js", page / "inside.js")               # even one inside: links are not followed
    os.symlink(root, page / "up.js")                              # a link to a folder
    os.mkfifo(page / "fifo.js")                                   # would block an open without O_NONBLOCK
    (page / "dir.js").mkdir()
    return page


@pytest.fixture(scope="module")
def server(wgllm, shared, folder):
    s = Server(wgllm, shared / "models" / f"{MODEL}.gguf", "--parallel", "1", "--local-dir", folder,
               name="local")
    yield s
    assert s.stop() == 0


def assert_no_leak(body, what):
    assert SECRET not in body, what
    assert b"root:" not in body and b"PATH=" not in body, what


def test_files_and_types(server):
    for name, (data, ctype) in FILES.items():
        status, headers, body = get(server.port, f"/local/{name}")
        assert status == 200, name
        assert body == data, name
        assert headers["content-type"] == ctype, name
        assert headers["content-security-policy"] == CSP, name
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["x-frame-options"] == "DENY", name
        assert headers["cache-control"] == "no-cache", name
    status, headers, body = get(server.port, "/local/")
    assert status == 200 and body == FILES["index.html"][0]
    assert headers["content-type"] == "text/html; charset=utf-8"


def test_head(server):
    for name, (data, ctype) in FILES.items():
        status, headers, body = get(server.port, f"/local/{name}", "HEAD")
        assert status == 200, name
        assert body == b"", name
        assert int(headers["content-length"]) == len(data), name
        assert headers["content-type"] == ctype, name


@pytest.mark.parametrize("path", [
    "/local/link.js", "/local/rel.html", "/local/inside.js", "/local/up.js", "/local/up.js/secret.js",
    "/local/fifo.js", "/local/dir.js", "/local/sub/inner.js", "/local/.hidden.js", "/local/notes.txt",
    "/local/noext", "/local/nope.js", "/local", "/local/.", "/local/..", "/local/./app.js", "/local//app.js",
    "/local/app.js/", "/local/APP.JS", "/local/app.js.bak",
])
def test_not_servable_is_404(server, path):
    status, headers, body = get(server.port, path)
    assert status == 404, (path, status)
    assert json.loads(body)["error"]["code"] == "not_found"
    assert "content-security-policy" not in headers
    assert_no_leak(body, path)


TRAVERSALS = [
    "/local/../secret.js",
    "/local/../../../../../../etc/passwd",
    "/local/%2e%2e/secret.js",
    "/local/%2E%2E%2Fsecret.js",
    "/local/..%2fsecret.js",
    "/local/%252e%252e%252fsecret.js",
    "/local/..\\secret.js",
    "/local/....//secret.js",
    "/local/%2fetc%2fpasswd",
    "/local//etc/passwd",
    "/local/app.js/../../secret.js",
    "/local/..%c0%afsecret.js",
    "/local/sub/../../secret.js",
    "/local/%2e%2e/%2e%2e/%2e%2e/proc/self/environ",
    "/%2e%2e/local/../secret.js",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_is_404(server, path):
    status, _, body = get(server.port, path)
    assert status == 404, (path, status)
    assert json.loads(body)["error"]["code"] == "not_found"
    assert_no_leak(body, path)


def test_query_is_not_part_of_the_name(server):
    status, _, body = get(server.port, "/local/index.html?x=../../secret.js")
    assert status == 200 and body == FILES["index.html"][0]


def test_escaped_nul_is_400(server):
    for path in ("/local/app.js%00.png", "/local/secret.js%00", "/local/%00"):
        status, _, body = get(server.port, path)
        assert status == 400 and json.loads(body)["error"]["code"] == "invalid_url", path
        assert_no_leak(body, path)


def test_huge_paths(server):
    """Names past the route's limit, and URLs past the server's, name nothing; the server lives."""
    for n in (100, 101, 120, 200, 4000):
        status, _, body = get(server.port, "/local/" + "a" * n + ".js")
        assert status == 404, n
    answer = raw(server.port, b"GET /local/" + b"a" * 100000 + b".js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    if answer:  # MHD may refuse the head outright (414 or 431) or drop the connection
        assert parse(answer)[0] in (404, 413, 414, 431)
    assert request(server.url, "GET", "/health")[0] == 200
    # a 100-character name of a real file is served (the limit is not lower than it says)
    assert get(server.port, "/local/app.js")[0] == 200


def test_other_methods(server):
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        status, _, body = get(server.port, "/local/app.js", method)
        assert status == 405 and json.loads(body)["error"]["code"] == "method_not_allowed", method


def test_metrics_one_label(server):
    request(server.url, "GET", "/local/app.js")
    request(server.url, "GET", "/local/missing-file.js")
    m = server.metrics()
    assert m['wgllm_http_requests_total{route="/local/",status="200"}'] >= 1
    assert m['wgllm_http_requests_total{route="/local/",status="404"}'] >= 1
    assert not any("missing-file" in k for k in m)


def test_off_by_default(wgllm, shared):
    s = Server(wgllm, shared / "models" / f"{MODEL}.gguf", "--parallel", "1", name="nolocal")
    try:
        for path in ("/local/", "/local/index.html", "/local/wgllm.wasm"):
            for method in ("GET", "HEAD"):
                status, headers, _ = get(s.port, path, method)
                assert status == 404, (method, path)
                assert "content-security-policy" not in headers
        assert request(s.url, "GET", "/health")[0] == 200
    finally:
        assert s.stop() == 0


def test_missing_folder_fails_at_start(wgllm, shared, scratch):
    p = wgllm.run("serve", "-m", shared / "models" / f"{MODEL}.gguf", "--port", "0",
                  "--local-dir", scratch / "no-such-folder", timeout=60)
    assert p.returncode == 1
    assert b"--local-dir" in p.stderr and b"No such file or directory" in p.stderr
