"""The admin side of `wgllm serve`: /admin/reload is off without --admin-key, refuses
browser-style requests and paths outside --models-dir, never quotes a file it reads, never
blocks on a FIFO; SIGHUP keeps reloading without a key; the model id survives reloads; a
drain that times out ends the requests it cuts with errors and exits 3."""

import fcntl
import http.client
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import THREADS
from server_util import Server, assert_openai_error, post, request, synth_small  # noqa: F401 (fixture)

ADMIN = "adm1n-key"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
SECRET = b"root:$6$saltsalt$c2VjcmV0IGhhc2g:19000:0:99999:7:::\n"


@pytest.fixture(scope="module")
def aidreams(shared):
    return shared / "models" / "aidreams260K-f32.gguf"


@pytest.fixture()
def models(scratch, aidreams, request):
    """A models directory holding two copies of the demo model; beside it, outside, a third
    model and a file that looks like /etc/shadow."""
    base = (scratch / f"admin-{request.node.name}").resolve()
    inside = base / "models"
    inside.mkdir(parents=True)
    shutil.copy(aidreams, inside / "first.gguf")
    shutil.copy(aidreams, inside / "second.gguf")
    shutil.copy(aidreams, base / "outside.gguf")
    (base / "shadow").write_bytes(SECRET)
    return inside


def wait_for(predicate, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def reload(s, body=None, headers=None, timeout=60):
    return post(s.url, "/admin/reload", body, {**AUTH, **(headers or {})}, timeout=timeout)


def reloads_ok(s):
    return s.metrics().get('wgllm_model_reloads_total{result="ok"}', 0)


def test_admin_off_by_default(wgllm, models):
    """Without --admin-key the admin routes do not exist (404, whatever the method or key);
    SIGHUP, the operator's reload, still works."""
    s = Server(wgllm, models / "first.gguf", name="admin-off")
    try:
        for method, headers in [("POST", {}), ("POST", AUTH), ("GET", {})]:
            status, _, body = request(s.url, method, "/admin/reload", {"model": str(models / "second.gguf")},
                                      headers)
            assert_openai_error(status, json.loads(body), 404)
        assert reloads_ok(s) == 0
        s.signal(signal.SIGHUP)
        wait_for(lambda: reloads_ok(s) == 1, what="the SIGHUP reload")
    finally:
        assert s.stop() == 0


def test_admin_key_and_browser_requests(wgllm, models):
    """The admin key (not the API key) opens the route; a page in a browser (Origin header, a
    text/plain form body, a rebound DNS name in Host) is refused even with the key."""
    s = Server(wgllm, models / "first.gguf", "--admin-key", ADMIN, "--api-key", "api-key", name="admin-key")
    try:
        for headers in [{}, {"Authorization": "Bearer api-key"}, {"Authorization": f"Bearer {ADMIN}x"},
                        {"Authorization": f"Bearer {ADMIN[:-1]}"}, {"Authorization": ADMIN}]:
            status, _, obj = post(s.url, "/admin/reload", {}, headers)
            assert_openai_error(status, obj, 401)
            assert obj["error"]["code"] == "invalid_admin_key"
        status, _, obj = reload(s, {}, {"Origin": "http://example.com"})
        assert_openai_error(status, obj, 403)
        status, _, obj = reload(s, {}, {"Origin": s.url})  # even its own
        assert_openai_error(status, obj, 403)
        for host in ["evil.example", f"evil.example:{s.port}", "127.0.0.1.evil.example", "[::2]:80"]:
            status, _, obj = reload(s, {}, {"Host": host})
            assert_openai_error(status, obj, 403)
            assert obj["error"]["code"] == "host_not_allowed", host
        for ctype in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                      "application/jsonx"]:
            status, _, obj = reload(s, '{"model":"second.gguf"}', {"Content-Type": ctype})
            assert_openai_error(status, obj, 415)
        assert reloads_ok(s) == 0
        for host in [f"localhost:{s.port}", f"127.0.0.1:{s.port}", "LOCALHOST"]:
            status, _, obj = reload(s, {"model": "second.gguf"}, {"Host": host})
            assert status == 200 and obj == {"status": "ok", "model": "first"}, obj
        status, _, obj = reload(s, None, {"Content-Type": "text/plain"})  # no body: the type does not matter
        assert status == 200, obj
        assert reloads_ok(s) == 4
        # the API key still guards the API, and the admin key does not open it
        assert request(s.url, "GET", "/v1/models", headers=AUTH)[0] == 401
    finally:
        assert s.stop() == 0


def test_admin_key_from_environment_and_distinct(wgllm, models):
    s = Server(wgllm, models / "first.gguf", env={"WGLLM_ADMIN_KEY": ADMIN}, name="admin-env")
    try:
        assert reload(s, {"model": "second.gguf"})[0] == 200
    finally:
        assert s.stop() == 0
    p = subprocess.run([str(wgllm.binary), "serve", "-m", str(models / "first.gguf"), "--backend", "cpu",
                        "--api-key", "same", "--admin-key", "same"], capture_output=True, timeout=60)
    assert p.returncode == 2 and b"admin key must differ" in p.stderr


def test_reload_paths_stay_in_models_dir(wgllm, models):
    """Paths outside the models directory (absolute, ../, a symlink out) read as missing;
    nothing of a file's contents is echoed; relative names are the directory's."""
    base = models.parent
    (models / "escape.gguf").symlink_to(base / "outside.gguf")
    (models / "escape-dir").symlink_to(base)
    (models / "inner-link.gguf").symlink_to(models / "second.gguf")
    (models / "shadow").write_bytes(SECRET)
    (models / "subdir").mkdir()
    s = Server(wgllm, models / "first.gguf", "--admin-key", ADMIN, name="admin-paths")
    try:
        missing = None
        for path in [str(base / "outside.gguf"), "../outside.gguf", str(models / "../outside.gguf"),
                     "escape.gguf", "escape-dir/outside.gguf", "escape-dir/shadow", str(base / "shadow"),
                     "/etc/passwd", "/etc/shadow", "nonexistent.gguf", str(models / "nonexistent.gguf"), ""]:
            status, _, obj = reload(s, {"model": path})
            assert_openai_error(status, obj, 404)
            # the same words for missing and forbidden files: no probing of the file system
            missing = missing or obj["error"]["message"]
            assert obj["error"]["message"] == missing, path
        # a non-GGUF file inside: a generic reason, never its bytes
        status, _, obj = reload(s, {"model": "shadow"})
        assert_openai_error(status, obj, 400)
        assert obj["error"]["message"] == "reload failed: not a GGUF file"
        status, _, obj = reload(s, {"model": "subdir"})
        assert_openai_error(status, obj, 400)
        status, _, obj = reload(s, {"model": 7})
        assert_openai_error(status, obj, 400)
        status, _, raw = request(s.url, "POST", "/admin/reload", '{"model":"shadow"}', AUTH)
        assert b"root" not in raw and b"saltsalt" not in raw
        assert reloads_ok(s) == 0
        for path in ["second.gguf", str(models / "second.gguf"), "inner-link.gguf", "./subdir/../first.gguf"]:
            status, _, obj = reload(s, {"model": path})
            assert status == 200, (path, obj)
        assert reloads_ok(s) == 4
    finally:
        assert s.stop() == 0
    # --models-dir widens (or moves) the allowed directory
    s = Server(wgllm, models / "first.gguf", "--admin-key", ADMIN, "--models-dir", base, name="admin-dir")
    try:
        assert reload(s, {"model": "outside.gguf"})[0] == 200
        assert reload(s, {"model": "models/second.gguf"})[0] == 200
        assert_openai_error(*reload(s, {"model": "/etc/passwd"})[::2], 404)
    finally:
        assert s.stop() == 0


def test_fifo_never_blocks(wgllm, models):
    """A FIFO named in a reload gets an error at once; afterwards SIGHUP still reloads and
    SIGTERM still drains. A FIFO given to -m fails the start instead of hanging it."""
    fifo = models / "pipe.gguf"
    os.mkfifo(fifo)
    p = subprocess.run([str(wgllm.binary), "serve", "-m", str(fifo), "--backend", "cpu", "-t", THREADS,
                        "--port", "0"], capture_output=True, timeout=60)
    assert p.returncode == 1 and b"not a regular file" in p.stderr, p.stderr
    s = Server(wgllm, models / "first.gguf", "--admin-key", ADMIN, name="admin-fifo")
    try:
        status, _, obj = reload(s, {"model": "pipe.gguf"}, timeout=20)
        assert_openai_error(status, obj, 400)
        assert "not a regular file" in obj["error"]["message"]
        status, _, obj = reload(s, {"model": "second.gguf"}, timeout=20)
        assert status == 200, obj
        s.signal(signal.SIGHUP)
        wait_for(lambda: reloads_ok(s) == 2, what="the SIGHUP reload")
        # the current file replaced by a FIFO: SIGHUP's reload fails without blocking anything
        os.replace(models / "second.gguf", models / "saved.gguf")
        os.mkfifo(models / "second.gguf")
        s.signal(signal.SIGHUP)
        wait_for(lambda: s.metrics().get('wgllm_model_reloads_total{result="error"}', 0) == 1,
                 what="the failed SIGHUP reload")
        status, _, obj = reload(s, {"model": "first.gguf"}, timeout=20)
        assert status == 200, obj
    finally:
        assert s.stop(timeout=30) == 0
    assert '"event":"stopped"' in s.log()


def test_sigterm_drains_while_a_reload_hangs(wgllm, models):
    """A reload that cannot finish (here: waiting for the model cache's lock, which the test
    holds) delays neither SIGTERM nor the drain; a reload request waiting behind it gets 503."""
    cache = models.parent / "cache"
    s = Server(wgllm, models / "first.gguf", "--admin-key", ADMIN, "--model-cache", cache, name="admin-stuck")
    locks = list(cache.glob("*.lock"))
    assert len(locks) == 1, locks
    fd = os.open(locks[0], os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        s.signal(signal.SIGHUP)  # the reload of first.gguf now waits for the lock
        out = {}
        t = threading.Thread(target=lambda: out.update(r=reload(s, {"model": "first.gguf"}, timeout=60)))
        t.start()
        time.sleep(0.5)
        assert t.is_alive() and reloads_ok(s) == 0  # both reloads are stuck
        assert post(s.url, "/v1/completions", {"model": "first", "prompt": "Hi", "max_tokens": 2})[0] == 200
        s.signal(signal.SIGTERM)
        assert s.stop(timeout=30) == 0
        t.join(timeout=30)
        status, _, obj = out["r"]
        assert_openai_error(status, obj, 503)
        assert obj["error"]["code"] == "shutting_down"
        assert '"event":"reload_abandoned"' in s.log()
    finally:
        os.close(fd)


def test_model_id_survives_reload(wgllm, models):
    """The id clients use (the start file's name, or --alias) stays after a reload to a file of
    another name."""
    s = Server(wgllm, models / "first.gguf", "--admin-key", ADMIN, name="admin-id")
    try:
        status, _, obj = reload(s, {"model": "second.gguf"})
        assert status == 200 and obj == {"status": "ok", "model": "first"}, obj
        status, _, body = request(s.url, "GET", "/v1/models")
        assert [m["id"] for m in json.loads(body)["data"]] == ["first"]
        status, _, obj = post(s.url, "/v1/completions", {"model": "first", "prompt": "Hi", "max_tokens": 2})
        assert status == 200 and obj["model"] == "first", obj
        assert json.loads(request(s.url, "GET", "/ready")[2])["model"] == "first"
    finally:
        assert s.stop() == 0
    s = Server(wgllm, models / "first.gguf", "--admin-key", ADMIN, "--alias", "prod", name="admin-alias")
    try:
        assert reload(s, {"model": "second.gguf"})[2] == {"status": "ok", "model": "prod"}
        assert post(s.url, "/v1/completions", {"model": "prod", "prompt": "Hi", "max_tokens": 2})[0] == 200
    finally:
        assert s.stop() == 0


def _read_stream(port, body, out):
    """Streams a completion over a raw connection; out gets the data payloads and how it ended."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        out["status"] = r.status
        events = out.setdefault("events", [])
        for raw in r:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith("data: "):
                events.append(line[6:])
        out["end"] = "closed"
    except (OSError, http.client.HTTPException) as e:
        out["end"] = repr(e)
    finally:
        conn.close()


def test_drain_timeout_cuts_with_errors(wgllm, synth_small):
    """Generations still running when --drain-timeout ends get an error (SSE error event, or
    503) and the process exits 3."""
    s = Server(wgllm, synth_small, "--parallel", "2", "--drain-timeout", "0.05", name="admin-drain")
    body = {"model": "synth-small", "prompt": "x", "max_tokens": 100000, "ignore_eos": True, "temperature": 0}
    streamed, plain = {}, {}
    t1 = threading.Thread(target=_read_stream, args=(s.port, {**body, "stream": True}, streamed))

    def non_streaming():
        plain["reply"] = post(s.url, "/v1/completions", body, timeout=120)

    t2 = threading.Thread(target=non_streaming)
    t1.start()
    t2.start()
    try:
        wait_for(lambda: s.metrics()["wgllm_active_sequences"] == 2, what="both generations")
        wait_for(lambda: len(streamed.get("events", [])) >= 3, what="tokens streamed")
    except BaseException:
        s.kill()
        raise
    s.signal(signal.SIGTERM)
    t1.join(timeout=60)
    t2.join(timeout=60)
    rc = s.stop(timeout=60)
    assert rc == 3, s.log()[-2000:]
    events = streamed["events"]
    assert streamed["status"] == 200 and streamed["end"] == "closed", streamed
    assert all(json.loads(e)["choices"][0]["finish_reason"] is None for e in events[:-2]), events[-3:]
    err = json.loads(events[-2])
    assert set(err) == {"error"} and err["error"]["code"] == "shutting_down", events[-2:]
    assert events[-1] == "[DONE]"
    status, _, obj = plain["reply"]
    assert_openai_error(status, obj, 503)
    assert obj["error"]["code"] == "shutting_down"
    assert '"event":"drain_timeout"' in s.log()
