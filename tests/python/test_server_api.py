"""`wgllm serve` through the official OpenAI client and curl: completions, chat,
streaming, stop strings across token boundaries, usage, logprobs, tokenizer routes,
models, health and readiness. Greedy texts are checked against `wgllm run`."""

import json
import math
import subprocess

import openai
import pytest

from server_util import Server, post, request, stream_sse

MODEL_ID = "aidreams260K-f32"
PROMPT = "Once upon a time"


@pytest.fixture(scope="module")
def server(wgllm, shared):
    s = Server(wgllm, shared / "models" / "aidreams260K-f32.gguf", "--parallel", "4",
               "--prefill-chunk", "8", name="api")
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def test_models_health_ready(server, client):
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL_ID]
    assert models.data[0].object == "model"
    for path, want in [("/health", {"status": "ok"}), ("/ready", {"status": "ready", "model": MODEL_ID})]:
        status, _, body = request(server.url, "GET", path)
        assert status == 200 and json.loads(body) == want


def test_greedy_completion_matches_cli(server, client, wgllm, shared):
    """The server's greedy text (batched scheduler) equals `wgllm run --temp 0` (single sequence)."""
    r = client.completions.create(model=MODEL_ID, prompt=PROMPT, max_tokens=40, temperature=0)
    tokens = wgllm.run_json("-m", shared / "models" / "aidreams260K-f32.gguf", "-p", PROMPT, "--temp", "0",
                            "-n", 40, "--backend", "cpu")
    assert r.choices[0].text == "".join(t["piece"] for t in tokens)
    assert r.object == "text_completion" and r.model == MODEL_ID
    assert r.usage.completion_tokens == len(tokens)
    assert r.choices[0].finish_reason == ("length" if len(tokens) == 40 else "stop")
    ids = json.loads(request(server.url, "POST", "/tokenize", {"content": PROMPT})[2])["tokens"]
    assert r.usage.prompt_tokens == len(ids)
    assert r.usage.total_tokens == len(ids) + len(tokens)


def test_usage_and_length(server, client):
    r = client.completions.create(model=MODEL_ID, prompt=PROMPT, max_tokens=5, temperature=0)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 5
    assert len(r.choices[0].text) > 0


def test_chat_and_stream_agree(server, client):
    messages = [{"role": "system", "content": "You tell stories."},
                {"role": "user", "content": "Tell me about a cat."}]
    full = client.chat.completions.create(model=MODEL_ID, messages=messages, max_tokens=30, temperature=0)
    assert full.object == "chat.completion"
    assert full.choices[0].message.role == "assistant"
    text = full.choices[0].message.content
    assert text
    chunks = list(client.chat.completions.create(model=MODEL_ID, messages=messages, max_tokens=30,
                                                 temperature=0, stream=True,
                                                 stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == [full.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == full.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == full.usage.prompt_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_raw_events_end_with_done(server):
    events = stream_sse(server.url, "/v1/completions",
                        {"model": MODEL_ID, "prompt": PROMPT, "max_tokens": 12, "temperature": 0, "stream": True})
    assert events[-1] == "[DONE]"
    objs = [json.loads(e) for e in events[:-1]]
    assert all(o["object"] == "text_completion" for o in objs)
    assert objs[-1]["choices"][0]["finish_reason"] == "length"
    assert all(o["choices"][0]["finish_reason"] is None for o in objs[:-1])
    assert all("usage" not in o for o in objs)  # no include_usage: no usage field
    status, _, whole = post(server.url, "/v1/completions",
                            {"model": MODEL_ID, "prompt": PROMPT, "max_tokens": 12, "temperature": 0})
    assert "".join(o["choices"][0]["text"] for o in objs) == whole["choices"][0]["text"]


def greedy_tokens(client, n=40):
    r = client.completions.create(model=MODEL_ID, prompt=PROMPT, max_tokens=n, temperature=0, logprobs=0)
    lp = r.choices[0].logprobs
    assert "".join(lp.tokens) == r.choices[0].text
    return r.choices[0].text, lp.tokens


def test_stop_across_token_boundary(server, client):
    text, tokens = greedy_tokens(client)
    # a stop string made of the end of one token and the start of the next
    for i in range(len(tokens) - 1):
        if len(tokens[i].strip()) >= 2 and len(tokens[i + 1]) >= 2:
            break
    else:
        pytest.fail(f"no two adjacent multi-character tokens in {tokens}")
    stop = tokens[i][-2:] + tokens[i + 1][:2]
    expected = text[: text.find(stop)]
    r = client.completions.create(model=MODEL_ID, prompt=PROMPT, max_tokens=40, temperature=0,
                                  stop=[stop, "zzzz-never"])
    assert r.choices[0].text == expected
    assert r.choices[0].finish_reason == "stop"
    streamed = list(client.completions.create(model=MODEL_ID, prompt=PROMPT, max_tokens=40, temperature=0,
                                              stop=stop, stream=True))
    assert "".join(c.choices[0].text for c in streamed) == expected
    assert streamed[-1].choices[0].finish_reason == "stop"
    # a stop string that never occurs changes nothing
    r = client.completions.create(model=MODEL_ID, prompt=PROMPT, max_tokens=40, temperature=0, stop="qqqq")
    assert r.choices[0].text == text


def test_logprobs_are_log_softmax(server, client):
    r = client.completions.create(model=MODEL_ID, prompt=PROMPT, max_tokens=6, temperature=0, logprobs=3)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 6
    for tok, value, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert value <= 0
        assert 1 <= len(top) <= 3
        # greedy: the chosen token is the most likely one
        assert math.isclose(value, max(top.values()), abs_tol=1e-6)
    chat = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Hi"}],
                                          max_tokens=4, temperature=0, logprobs=True, top_logprobs=2)
    content = chat.choices[0].logprobs.content
    assert len(content) == 4
    assert all(len(c.top_logprobs) == 2 and c.top_logprobs[0].logprob >= c.top_logprobs[1].logprob
               for c in content)


def test_seeded_sampling_is_reproducible(server, client):
    kw = dict(model=MODEL_ID, prompt=PROMPT, max_tokens=20, temperature=1.0, top_p=0.9, seed=1234,
              presence_penalty=0.5, frequency_penalty=0.5, extra_body={"top_k": 40, "min_p": 0.05})
    a = client.completions.create(**kw).choices[0].text
    b = client.completions.create(**kw).choices[0].text
    assert a == b
    c = client.completions.create(**{**kw, "seed": 99}).choices[0].text
    greedy = client.completions.create(model=MODEL_ID, prompt=PROMPT, max_tokens=20, temperature=0)
    assert len({a, c, greedy.choices[0].text}) >= 2  # sampling does not collapse to one text


def test_tokenize_detokenize(server):
    status, _, out = post(server.url, "/tokenize", {"content": PROMPT})
    assert status == 200 and out["tokens"][0] == 1
    status, _, back = post(server.url, "/detokenize", {"tokens": out["tokens"]})
    assert status == 200 and back["content"].strip() == PROMPT
    status, _, nobos = post(server.url, "/tokenize", {"content": PROMPT, "add_special": False})
    assert nobos["tokens"] == out["tokens"][1:]


def test_prompt_as_token_ids(server, client):
    ids = post(server.url, "/tokenize", {"content": PROMPT})[2]["tokens"]
    a = client.completions.create(model=MODEL_ID, prompt=ids, max_tokens=10, temperature=0)
    b = client.completions.create(model=MODEL_ID, prompt=PROMPT, max_tokens=10, temperature=0)
    assert a.choices[0].text == b.choices[0].text
    assert a.usage.prompt_tokens == len(ids)


def curl(*args):
    p = subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode()


def test_curl(server):
    out = json.loads(curl(server.url + "/v1/completions", "-H", "Content-Type: application/json", "-d",
                          json.dumps({"model": MODEL_ID, "prompt": PROMPT, "max_tokens": 3})))
    assert out["usage"]["completion_tokens"] <= 3 and out["choices"][0]["finish_reason"] in ("stop", "length")
    sse = curl("-N", server.url + "/v1/chat/completions", "-d",
               json.dumps({"model": MODEL_ID, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3,
                           "stream": True}))
    assert sse.startswith("data: {") and sse.endswith("data: [DONE]\n\n")
    assert json.loads(curl(server.url + "/v1/models"))["data"][0]["id"] == MODEL_ID
    code = curl("-o", "/dev/null", "-w", "%{http_code}", server.url + "/v1/completions", "-d", "{")
    assert code == "400"


def test_access_log_is_json(server):
    request(server.url, "GET", "/health")
    lines = server.access_log()
    assert lines, server.log()
    for line in lines:
        assert {"time", "method", "path", "status", "duration_ms"} <= set(line)
    assert any(line["path"] == "/v1/completions" and line["status"] == 200 and line["completion_tokens"] > 0
               for line in lines)
