"""Hostile HTTP at the connection level, over raw sockets: slow clients (slowloris),
half-closed clients, NUL in URLs, request framing (Content-Length, chunked bodies),
a port already in use, and errors that come back as OpenAI error JSON."""

import json
import resource
import socket
import subprocess
import threading
import time

import pytest

from server_util import Server, assert_openai_error, request, synth_small  # noqa: F401 (fixture)

MODEL = "aidreams260K-f32"
TIMEOUT = 3  # --request-timeout of the module's server
TOKENIZE = b'{"content": "Hi"}'  # 17 bytes, answered with 200 where framing is ignored


@pytest.fixture(scope="module")
def server(wgllm, shared):
    s = Server(wgllm, shared / "models" / "aidreams260K-f32.gguf", "--max-body", "65536", "--request-timeout",
               TIMEOUT, name="hostile")
    yield s
    rc = s.stop()
    assert rc == 0, s.log()[-3000:]


def raw(port, data, timeout=30, src="127.0.0.1"):
    """Sends data on a fresh connection and returns everything the server sends back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(src, 0)) as s:
        s.sendall(data)
        return read_all(s)


def read_all(s):
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return out


def parse(reply):
    """(status, headers, body) of the final response in reply; interim 1xx answers are skipped."""
    while True:
        head, _, rest = reply.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        if 100 <= status < 200:
            reply = rest
            continue
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while rest:
                size, _, rest = rest.partition(b"\r\n")
                n = int(size, 16)
                if n == 0:
                    break
                body += rest[:n]
                rest = rest[n + 2:]
            return status, headers, body
        return status, headers, rest


def assert_json_error(reply, status):
    got, headers, body = parse(reply)
    assert headers.get("content-type") == "application/json", (got, headers, body)
    assert_openai_error(got, json.loads(body), status)
    return json.loads(body)


# ---- NUL in the URL ----

@pytest.mark.parametrize("path", [b"/health%00", b"/health%00.txt", b"/v1/models%00x", b"/metrics?x=%00"])
def test_nul_in_url_is_400(server, path):
    reply = raw(server.port, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path)
    assert assert_json_error(reply, 400)["error"]["code"] == "invalid_url"
    assert parse(raw(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))[0] == 200


# ---- protocol errors: JSON, not the HTTP library's HTML pages ----

PROTOCOL = [
    ("overlong URL", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("long URL", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("huge header", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100000 + b"\r\n\r\n", 431),
    ("many headers", b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * 500 + b"\r\n", 431),
    ("HTTP/2.0", b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("HTTP/0.9", b"GET /health HTTP/0.9\r\nHost: x\r\n\r\n", 505),
    ("bad version", b"GET /health HTTQ/1.1\r\nHost: x\r\n\r\n", 400),
    ("malformed request line", b"GET\r\nHost: x\r\n\r\n", 400),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    ("space in the URL", b"GET /he alth HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("NUL in the request line", b"GET /hea\x00lth HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("header without a colon", b"GET /health HTTP/1.1\r\nHost: x\r\nBroken\r\n\r\n", 400),
    ("folded header", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n", 400),
    ("no Host in HTTP/1.1", b"GET /health HTTP/1.1\r\n\r\n", 400),
    ("malformed Content-Length", b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n", 400),
    ("Content-Length with a trailing blank", b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 17 \r\n\r\n"
     + TOKENIZE, 400),
    ("huge Content-Length", b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
     413),
]


@pytest.mark.parametrize("name,data,status", PROTOCOL, ids=[p[0] for p in PROTOCOL])
def test_protocol_errors_are_json(server, name, data, status):
    key = f'wgllm_http_requests_total{{route="other",status="{status}"}}'
    before = server.metrics().get(key, 0)
    assert_json_error(raw(server.port, data), status)
    assert server.metrics()[key] == before + 1


def test_well_formed_variants_pass(server):
    """What the head check must not refuse: HTTP/1.0 without Host, bare LF line ends,
    blank lines before the request line, a query, blanks before values."""
    for data in [b"GET /health HTTP/1.0\r\n\r\n",
                 b"GET /health HTTP/1.1\nHost: x\nConnection: close\n\n",
                 b"\r\nGET /health?x=1 HTTP/1.1\r\nHost: x\r\nConnection:   close  \r\n\r\n",
                 b"POST /tokenize HTTP/1.1\r\nhost: x\r\ncontent-length:  %d\r\nConnection: close\r\n\r\n%s"
                 % (len(TOKENIZE), TOKENIZE)]:
        assert parse(raw(server.port, data))[0] == 200, data


# ---- request framing and body limits ----

FRAMING = [
    ("two different lengths", b"Content-Length: 17\r\nContent-Length: 18\r\n", TOKENIZE + b" "),
    ("a malformed second length", b"Content-Length: 17\r\nContent-Length: 17x\r\n", TOKENIZE),
    ("length and chunked", b"Content-Length: 17\r\nTransfer-Encoding: chunked\r\n",
     b"11\r\n" + TOKENIZE + b"\r\n0\r\n\r\n"),
    ("unknown transfer encoding", b"Transfer-Encoding: gzip\r\n", TOKENIZE),
]


@pytest.mark.parametrize("name,headers,body", FRAMING, ids=[f[0] for f in FRAMING])
def test_bad_framing_is_400(server, name, headers, body):
    reply = raw(server.port, b"POST /tokenize HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n%s" % (headers, body))
    assert_json_error(reply, 400)


def test_same_length_twice_is_accepted(server):
    body = b'{"content": "Hi"}'
    reply = raw(server.port, b"POST /tokenize HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), len(body), body))
    assert parse(reply)[0] == 200


def send_chunked_until_refused(port, size_line, total, chunk):
    """Streams a chunked body of about `total` bytes; returns (bytes sent, seconds, reply)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    sent, t0 = 0, time.monotonic()
    try:
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
                  b"Content-Type: application/json\r\n\r\n")
        if size_line:
            s.sendall(size_line)
        try:
            while sent < total:
                if size_line:
                    s.sendall(chunk)
                else:
                    s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return sent, time.monotonic() - t0, read_all(s)
    finally:
        s.close()


def test_chunked_body_is_cut_at_the_limit(server):
    """A 200 MB chunked body: 413 as soon as --max-body (64 KiB) is crossed, not after reading it all."""
    sent, seconds, reply = send_chunked_until_refused(server.port, None, 200 << 20, b"a" * 65536)
    assert sent < 64 << 20, f"the server read {sent} bytes before refusing"
    assert seconds < 20
    assert_json_error(reply, 413)


def test_absurd_chunk_size_is_refused(server):
    """A chunk of 2^64-1 bytes: refused at once when its size line comes with the head, else
    when the body crosses the limit; never read until a timeout."""
    t0 = time.monotonic()
    reply = raw(server.port, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"ffffffffffffffff\r\n", timeout=60)
    assert time.monotonic() - t0 < TIMEOUT - 1
    assert_json_error(reply, 413)
    sent, seconds, reply = send_chunked_until_refused(server.port, b"ffffffffffffffff\r\n", 200 << 20,
                                                      b"a" * 65536)
    assert sent < 64 << 20
    assert seconds < 20
    assert_json_error(reply, 413)


def test_stalled_chunked_body_is_cut_by_the_deadline(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as s:
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        time.sleep(0.5)  # handed to the HTTP library by now
        t0 = time.monotonic()
        s.sendall(b"ffff\r\n" + b"a" * 100)
        assert read_all(s) == b""
        assert time.monotonic() - t0 < TIMEOUT + 10


# ---- half-closed clients ----

@pytest.fixture(scope="module")
def slow_server(wgllm, synth_small):
    s = Server(wgllm, synth_small, "--parallel", "1", name="hostile-slow")
    yield s
    assert s.stop() == 0


def synth_completion(stream, max_tokens):
    body = json.dumps({"model": "synth-small", "prompt": "x", "max_tokens": max_tokens, "temperature": 0,
                       "ignore_eos": True, "stream": stream}).encode()
    return (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_half_closed_client_gets_its_answer(slow_server, stream):
    """A client that shuts down its sending side after the request (as `nc -N` does) still
    waits for the answer. It queues behind another request, so the server sees its FIN
    long before there is anything to send."""
    # the blocker runs to the end of the context (a short one can finish before it is seen)
    blocker = threading.Thread(target=raw, args=(slow_server.port, synth_completion(False, 100000)),
                               kwargs={"timeout": 120})
    blocker.start()
    deadline = time.monotonic() + 60
    while slow_server.metrics()["wgllm_active_sequences"] < 1:
        assert time.monotonic() < deadline, "the first request did not start"
        time.sleep(0.02)
    try:
        with socket.create_connection(("127.0.0.1", slow_server.port), timeout=120) as s:
            s.sendall(synth_completion(stream, 24))
            s.shutdown(socket.SHUT_WR)
            reply = read_all(s)
    finally:
        blocker.join()
    assert reply, "no answer to a half-closed client"
    status, _, body = parse(reply)
    assert status == 200
    if stream:
        events = [ln[6:] for ln in body.decode().split("\n") if ln.startswith("data: ")]
        assert events[-1] == "[DONE]"
        assert json.loads(events[-2])["choices"][0]["finish_reason"] == "length"
    else:
        obj = json.loads(body)
        assert obj["usage"]["completion_tokens"] == 24
        assert obj["choices"][0]["finish_reason"] == "length"


def test_closed_stream_waiting_in_the_queue_is_dropped(slow_server):
    """A streaming client that closes while its request waits for a slot: its FIN alone
    could be a half-close, so the server writes an SSE comment, the closed socket answers
    with a reset, and the request leaves the queue long before the slot frees."""
    blocker = socket.create_connection(("127.0.0.1", slow_server.port), timeout=120)
    try:
        body = json.dumps({"model": "synth-small", "prompt": "x", "max_tokens": 100000, "temperature": 0,
                           "ignore_eos": True, "stream": True}).encode()
        req = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        blocker.sendall(req)
        deadline = time.monotonic() + 60
        while slow_server.metrics()["wgllm_active_sequences"] < 1:
            assert time.monotonic() < deadline, "the first request did not start"
            time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", slow_server.port), timeout=60) as s:
            s.sendall(req)
            assert s.recv(4096).startswith(b"HTTP/1.1 200")  # the stream has begun; it waits in the queue
            assert slow_server.metrics()["wgllm_queue_depth"] == 1
        deadline = time.monotonic() + 5
        while slow_server.metrics()["wgllm_queue_depth"] != 0:
            assert time.monotonic() < deadline, "the closed stream stayed in the queue"
            time.sleep(0.02)
        assert slow_server.metrics()["wgllm_active_sequences"] == 1  # the first one still runs
    finally:
        blocker.close()
    deadline = time.monotonic() + 30
    while slow_server.metrics()["wgllm_active_sequences"] != 0:
        assert time.monotonic() < deadline, "the first request was not cancelled"
        time.sleep(0.02)


# ---- port in use ----

def test_second_server_on_a_taken_port_fails(server, wgllm, shared):
    cmd = [str(wgllm.binary), "serve", "-m", str(shared / "models" / "aidreams260K-f32.gguf"), "--host",
           "127.0.0.1", "--port", str(server.port), "--backend", "cpu", "-t", "1"]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("a second server on a port in use kept running")
    assert p.returncode != 0
    assert b"port in use" in p.stderr, p.stderr
    assert request(server.url, "GET", "/health")[0] == 200
    # the port is checked before the model loads: a model that would fail says nothing yet
    cmd[cmd.index("-m") + 1] = str(wgllm.scratch / "no-such-model.gguf")
    p = subprocess.run(cmd, capture_output=True, timeout=30)
    assert p.returncode != 0
    assert b"port in use" in p.stderr and b"no-such-model" not in p.stderr, p.stderr


# ---- slow clients ----

def test_trickled_request_is_cut_by_the_deadline(server):
    """Header lines every 0.5 s keep an idle timeout from firing; the request deadline does not care."""
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(8)]
    t0 = time.monotonic()
    cut = [None] * len(socks)
    for s in socks:
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
    try:
        while None in cut and time.monotonic() - t0 < TIMEOUT + 20:
            for i, s in enumerate(socks):
                if cut[i] is not None:
                    continue
                try:
                    s.sendall(b"X-Slow-%d: 1\r\n" % int(time.monotonic() * 10))
                    s.setblocking(False)
                    try:
                        gone = s.recv(1) == b""
                    except BlockingIOError:
                        gone = False
                    finally:
                        s.setblocking(True)
                except (BrokenPipeError, ConnectionResetError):
                    gone = True
                if gone:
                    cut[i] = time.monotonic() - t0
            time.sleep(0.5)
    finally:
        for s in socks:
            s.close()
    assert None not in cut, f"connections still open after {TIMEOUT + 20}s: {cut}"
    assert min(cut) >= TIMEOUT - 0.5 and max(cut) < TIMEOUT + 10, cut
    assert request(server.url, "GET", "/health")[0] == 200


def held_open(socks, wait=1.0):
    """How many of the sockets the server has not closed (after `wait` seconds)."""
    time.sleep(wait)
    held = 0
    for a in socks:
        a.setblocking(False)
        try:
            held += a.recv(1) != b""
        except BlockingIOError:
            held += 1
        except OSError:
            pass
    return held


def test_connections_per_address_are_limited(wgllm, shared):
    s = Server(wgllm, shared / "models" / "aidreams260K-f32.gguf", "--max-connections-per-ip", 5, name="per-ip")
    socks = []
    try:
        for _ in range(8):
            socks.append(socket.create_connection(("127.0.0.1", s.port), timeout=10, source_address=("127.0.0.3", 0)))
            socks[-1].sendall(b"GET /health HTTP/1.1\r\n")
        assert held_open(socks) == 5
        # other addresses are not affected, and a closed connection gives its place back
        assert request(s.url, "GET", "/health")[0] == 200
        socks.pop().close()
        for a in socks:
            a.close()
        socks = []
        time.sleep(0.5)
        assert parse(raw(s.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                         src="127.0.0.3"))[0] == 200
    finally:
        for a in socks:
            a.close()
        assert s.stop() == 0


def test_slowloris_does_not_lock_out_other_clients(wgllm, shared):
    """600 trickling connections from ten other addresses; requests from 127.0.0.1 still pass."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 1024, "cannot raise the open-file limit"
    s = Server(wgllm, shared / "models" / "aidreams260K-f32.gguf", name="slowloris")
    attackers = []
    stop = threading.Event()
    try:
        for i in range(600):
            try:
                a = socket.create_connection(("127.0.0.1", s.port), timeout=10,
                                             source_address=(f"127.0.0.{2 + i % 10}", 0))
                a.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
                attackers.append(a)
            except OSError:
                pass

        def trickle():
            while not stop.wait(2):
                for a in attackers:
                    try:
                        a.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        pass

        t = threading.Thread(target=trickle)
        t.start()
        held = held_open(attackers)
        # at most all but the slots kept for new addresses (an eighth of 512)
        assert 400 <= held <= 448, f"{held} slow connections were held"
        for _ in range(5):
            t0 = time.monotonic()
            assert request(s.url, "GET", "/health", timeout=10)[0] == 200
            status, _, body = request(s.url, "POST", "/v1/completions",
                                      {"model": MODEL, "prompt": "Hi", "max_tokens": 4}, timeout=10)
            assert status == 200, body
            assert time.monotonic() - t0 < 5
        stop.set()
        t.join()
    finally:
        stop.set()
        for a in attackers:
            a.close()
        assert s.stop() == 0
