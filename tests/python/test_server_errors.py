"""Hostile and malformed requests: each gets a 4xx with an OpenAI-style error body,
and the server keeps answering everyone else. Also the API key, the body limit and
429 + Retry-After when the queue is full."""

import json
import socket
import threading

import openai
import pytest

from server_util import Server, assert_openai_error, post, request, synth_small  # noqa: F401 (fixture)

MODEL = "aidreams260K-f32"
OK_BODY = {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 4, "temperature": 0}


@pytest.fixture(scope="module")
def server(wgllm, shared):
    s = Server(wgllm, shared / "models" / "aidreams260K-f32.gguf", "--parallel", "2", "--max-body", "65536",
               name="errors")
    yield s
    assert s.stop() == 0


def chat(**kw):
    return {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, **kw}


BAD_COMPLETIONS = [
    ("malformed json", b'{"model": "x", "prompt": ', 400),
    ("not an object", b'[1, 2, 3]', 400),
    ("empty body", b'', 400),
    ("nan literal", b'{"model": "%s", "prompt": "a", "temperature": NaN}' % MODEL.encode(), 400),
    ("infinite number", b'{"model": "%s", "prompt": "a", "temperature": 1e999}' % MODEL.encode(), 400),
    ("invalid utf-8", b'{"model": "%s", "prompt": "\xff\xfe"}' % MODEL.encode(), 400),
    ("overlong utf-8", b'{"model": "%s", "prompt": "\xc0\xaf"}' % MODEL.encode(), 400),
    ("model wrong type", {"model": 5, "prompt": "a"}, 400),
    ("missing prompt", {"model": MODEL}, 400),
    ("unknown model", {**OK_BODY, "model": "gpt-5"}, 404),
    ("prompt wrong type", {**OK_BODY, "prompt": {"a": 1}}, 400),
    ("several prompts", {**OK_BODY, "prompt": ["a", "b"]}, 400),
    ("token id out of vocabulary", {**OK_BODY, "prompt": [1, 99999]}, 400),
    ("negative token id", {**OK_BODY, "prompt": [1, -5]}, 400),
    ("max_tokens string", {**OK_BODY, "max_tokens": "10"}, 400),
    ("max_tokens zero", {**OK_BODY, "max_tokens": 0}, 400),
    ("max_tokens fraction", {**OK_BODY, "max_tokens": 2.5}, 400),
    ("max_tokens huge", {**OK_BODY, "max_tokens": 1e30}, 400),
    ("temperature negative", {**OK_BODY, "temperature": -1}, 400),
    ("temperature too high", {**OK_BODY, "temperature": 7}, 400),
    ("top_p zero", {**OK_BODY, "top_p": 0}, 400),
    ("top_p above one", {**OK_BODY, "top_p": 1.5}, 400),
    ("top_k negative", {**OK_BODY, "top_k": -1}, 400),
    ("presence out of range", {**OK_BODY, "presence_penalty": 3}, 400),
    ("frequency wrong type", {**OK_BODY, "frequency_penalty": True}, 400),
    ("seed string", {**OK_BODY, "seed": "7"}, 400),
    ("stop wrong type", {**OK_BODY, "stop": 5}, 400),
    ("stop too many", {**OK_BODY, "stop": ["a", "b", "c", "d", "e"]}, 400),
    ("stop empty", {**OK_BODY, "stop": [""]}, 400),
    ("n above one", {**OK_BODY, "n": 3}, 400),
    ("stream wrong type", {**OK_BODY, "stream": "yes"}, 400),
    ("logprobs too many", {**OK_BODY, "logprobs": 50}, 400),
    ("prompt longer than the context", {**OK_BODY, "prompt": "once upon a time " * 100}, 400),
]


@pytest.mark.parametrize("name,body,status", BAD_COMPLETIONS, ids=[c[0] for c in BAD_COMPLETIONS])
def test_bad_completion_requests(server, name, body, status):
    got, _, obj = post(server.url, "/v1/completions", body)
    assert_openai_error(got, obj, status)
    if name == "prompt longer than the context":
        assert obj["error"]["code"] == "context_length_exceeded"
    if name == "unknown model":
        assert obj["error"]["code"] == "model_not_found"


BAD_CHATS = [
    ("messages missing", {"model": MODEL}),
    ("messages not a list", chat(messages="hi")),
    ("messages empty", chat(messages=[])),
    ("message not an object", chat(messages=["hi"])),
    ("unknown role", chat(messages=[{"role": "wizard", "content": "hi"}])),
    ("content wrong type", chat(messages=[{"role": "user", "content": 5}])),
    ("bad content part", chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}])),
    ("top_logprobs without logprobs", chat(top_logprobs=2)),
    ("stream_options wrong type", chat(stream=True, stream_options=[1])),
]


@pytest.mark.parametrize("name,body", BAD_CHATS, ids=[c[0] for c in BAD_CHATS])
def test_bad_chat_requests(server, name, body):
    got, _, obj = post(server.url, "/v1/chat/completions", body)
    assert_openai_error(got, obj, 400)


def test_other_routes_and_methods(server):
    status, _, body = request(server.url, "GET", "/v1/nothing")
    assert_openai_error(status, json.loads(body), 404)
    status, _, body = request(server.url, "GET", "/v1/completions")
    assert_openai_error(status, json.loads(body), 405)
    for path, body in [("/tokenize", {"content": 5}), ("/detokenize", {"tokens": [1, "x"]}),
                       ("/detokenize", {"tokens": [10 ** 9]}), ("/tokenize", b"\xff")]:
        status, _, obj = post(server.url, path, body)
        assert_openai_error(status, obj, 400)


def test_huge_body_is_413(server):
    big = {"model": MODEL, "prompt": "a" * 100_000}
    status, _, obj = post(server.url, "/v1/completions", big)
    assert_openai_error(status, obj, 413)
    # chunked upload without a Content-Length: counted as it arrives
    host, port = "127.0.0.1", server.port
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                  b"Content-Type: application/json\r\n\r\n")
        chunk = b"a" * 30000
        for _ in range(4):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        s.sendall(b"0\r\n\r\n")
        reply = s.recv(4096).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413"), reply


def test_client_errors_leave_server_serving(server):
    status, _, obj = post(server.url, "/v1/completions", OK_BODY)
    assert status == 200 and obj["choices"][0]["finish_reason"] in ("stop", "length")
    m = server.metrics()
    assert m["wgllm_active_sequences"] == 0
    assert m['wgllm_http_requests_total{route="/v1/completions",status="400"}'] >= len(BAD_COMPLETIONS) - 2


def test_openai_client_raises_typed_errors(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="a", max_tokens=1)
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=MODEL, prompt="a", max_tokens=1, temperature=9)
    assert "temperature" in str(e.value)


def test_api_key(wgllm, shared):
    s = Server(wgllm, shared / "models" / "aidreams260K-f32.gguf", "--api-key", "sekret", name="apikey")
    try:
        status, _, obj = post(s.url, "/v1/completions", OK_BODY)
        assert_openai_error(status, obj, 401)
        assert obj["error"]["code"] == "invalid_api_key"
        status, _, obj = post(s.url, "/v1/completions", OK_BODY, headers={"Authorization": "Bearer wrong"})
        assert_openai_error(status, obj, 401)
        status, _, _ = request(s.url, "GET", "/v1/models")
        assert status == 401
        good = openai.OpenAI(base_url=s.url + "/v1", api_key="sekret", max_retries=0)
        assert good.completions.create(model=MODEL, prompt="Hi", max_tokens=2).usage.completion_tokens <= 2
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=s.url + "/v1", api_key="nope", max_retries=0).models.list()
        assert request(s.url, "GET", "/health")[0] == 200  # probes stay open
    finally:
        assert s.stop() == 0


def test_queue_full_is_429(wgllm, synth):
    """One slot, one queue place: a third request while one runs and one waits gets 429.
    The states are reached one after the other (not by racing threads), so a loaded machine
    cannot turn the test around; the slot holder has a long context to fill (seconds)."""
    import http.client
    import time
    model = synth("small-long", ["--preset", "small", "--ctx", "32768", "--type", "q8_0", "--seed", "1"])
    s = Server(wgllm, model, "--parallel", "1", "--max-queue", "1", name="queue")
    body = {"model": "synth-small-long", "prompt": "x", "max_tokens": 60, "temperature": 0, "ignore_eos": True}
    queued = []
    try:
        # 1. a stream holds the only slot while its client reads nothing more
        port = int(s.url.rsplit(":", 1)[1])
        holder = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        holder.request("POST", "/v1/completions", json.dumps({**body, "max_tokens": 100000, "stream": True}),
                       {"Content-Type": "application/json"})
        r = holder.getresponse()
        assert r.status == 200
        assert r.readline().startswith(b"data: ")
        deadline = time.time() + 60
        while s.metrics()["wgllm_active_sequences"] != 1:  # the first chunk may come before the slot
            assert time.time() < deadline, "the stream never took the slot"
            time.sleep(0.05)
        # 2. a second request waits in the queue
        t = threading.Thread(target=lambda: queued.append(post(s.url, "/v1/completions", body, timeout=120)))
        t.start()
        deadline = time.time() + 60
        while s.metrics()["wgllm_queue_depth"] != 1:
            assert time.time() < deadline, f"the second request never queued: {queued}"
            time.sleep(0.05)
        # 3. the queue is full: 429 with Retry-After
        status, headers, obj = post(s.url, "/v1/completions", body)
        assert status == 429
        assert headers["retry-after"] == "1"
        assert_openai_error(status, obj, 429)
        assert s.metrics()["wgllm_requests_rejected_total"] == 1
        # 4. the holder leaves; the queued request then runs to the end
        holder.close()
        t.join(timeout=120)
        assert queued and queued[0][0] == 200, queued
        assert queued[0][2]["usage"]["completion_tokens"] == 60
    finally:
        assert s.stop() == 0
