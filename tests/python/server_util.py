"""Starting `wgllm serve` on a free loopback port, and small raw-HTTP helpers for the
server tests (the official `openai` client covers the happy paths)."""

import http.client
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import THREADS

START_TIMEOUT = 60


@pytest.fixture(scope="session")
def synth_small(synth):
    """A random-weight model large enough that a generation takes a while (drain, reload, queue tests)."""
    return synth("small", ["--preset", "small", "--type", "q8_0", "--seed", "1"])


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running `wgllm serve`; its stderr (access log) goes to a file."""

    def __init__(self, wgllm, model, *args, env=None, name="server"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = wgllm.temp_path(f".{name}.log")
        self.cmd = [str(wgllm.binary), "serve", "-m", str(model), "--host", "127.0.0.1",
                    "--port", str(self.port), "--backend", "cpu", "-t", THREADS] + [str(a) for a in args]
        full_env = dict(os.environ)
        full_env.update(env or {})
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=self._log, env=full_env)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}: {self.log()}")
            try:
                status, _, _ = request(self.url, "GET", "/health", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"server did not come up in {START_TIMEOUT}s: {self.log()}")
            time.sleep(0.05)

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def access_log(self):
        """Parsed access-log lines (objects with a "path")."""
        lines = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                obj = json.loads(line)
                if "path" in obj:
                    lines.append(obj)
        return lines

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=60):
        """SIGTERM, then the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"server did not exit {timeout}s after SIGTERM")
        self._log.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def metrics(self):
        """Samples of /metrics as {"name{labels}": value}."""
        status, _, body = request(self.url, "GET", "/metrics")
        assert status == 200
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                out[key] = float(value)
        return out

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")


def request(url, method, path, body=None, headers=None, timeout=60):
    """(status, headers dict, body bytes). body: bytes, str, or an object sent as JSON."""
    host = url.split("//", 1)[1]
    conn = http.client.HTTPConnection(host, timeout=timeout)
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def post(url, path, body, headers=None, timeout=60):
    status, h, data = request(url, "POST", path, body, headers, timeout)
    try:
        obj = json.loads(data)
    except ValueError:
        obj = None
    return status, h, obj


def assert_openai_error(status, obj, expected_status):
    assert status == expected_status, obj
    assert isinstance(obj, dict) and set(obj) == {"error"}, obj
    err = obj["error"]
    assert isinstance(err["message"], str) and err["message"], err
    assert isinstance(err["type"], str) and err["type"], err
    assert "code" in err and "param" in err, err


def stream_sse(url, path, body, headers=None, timeout=120):
    """POSTs a streaming request; returns the list of `data:` payloads (raw strings)."""
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    events = []
    with urllib.request.urlopen(req, timeout=timeout) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        for raw in r:
            line = raw.decode("utf-8").rstrip("\n")
            if line.startswith("data: "):
                events.append(line[6:])
            else:
                assert line == "", f"unexpected SSE line {line!r}"
    return events
