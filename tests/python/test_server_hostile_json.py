"""Request bodies that cJSON alone would misread: invalid JSON (trailing text, raw control
bytes, malformed numbers and escapes, lone surrogates, duplicate keys), strings with an
escaped NUL (text after it used to be dropped), and fields the server does not implement
(tools, response_format, logit_bias, ...). Each gets a 400 with an OpenAI-style error; valid
edge cases still work, and a request without "model" goes to the served model."""

import json

import pytest

from server_util import Server, assert_openai_error, post

MODEL = "aidreams260K-f32"
M = MODEL.encode()


@pytest.fixture(scope="module")
def server(wgllm, shared):
    s = Server(wgllm, shared / "models" / "aidreams260K-f32.gguf", "--parallel", "2", name="hostile")
    yield s
    assert s.stop() == 0


def completion(extra=b""):
    return b'{"model": "' + M + b'", "prompt": "Once", "max_tokens": 2, "temperature": 0' + extra + b"}"


INVALID_JSON = [
    ("trailing garbage", completion() + b" xyz"),
    ("two objects", completion() + completion()),
    ("trailing comma", completion(b",")),
    ("raw NUL byte in a string", b'{"model": "' + M + b'", "prompt": "On\x00ce"}'),
    ("raw newline in a string", b'{"model": "' + M + b'", "prompt": "On\nce"}'),
    ("raw tab in a string", b'{"model": "' + M + b'", "prompt": "On\tce"}'),
    ("raw 0x1f in a string", b'{"model": "' + M + b'", "prompt": "On\x1fce"}'),
    ("number 01", completion(b', "top_k": 01')),
    ("number -", completion(b', "top_k": -')),
    ("number 1.", completion(b', "top_k": 1.')),
    ("number .5", completion(b', "top_p": .5')),
    ("number +1", completion(b', "top_k": +1')),
    ("number 1e", completion(b', "top_k": 1e')),
    ("hex number", completion(b', "top_k": 0x10')),
    ("invalid escape \\x", b'{"model": "' + M + b'", "prompt": "a\\x41"}'),
    ("invalid escape \\u12", b'{"model": "' + M + b'", "prompt": "a\\u12"}'),
    ("lone high surrogate", b'{"model": "' + M + b'", "prompt": "a\\ud800b"}'),
    ("lone low surrogate", b'{"model": "' + M + b'", "prompt": "a\\udc00"}'),
    ("high surrogate then non-surrogate", b'{"model": "' + M + b'", "prompt": "\\ud800\\u0041"}'),
    ("single quotes", b"{'model': 'x', 'prompt': 'a'}"),
    ("unquoted key", b'{model: "' + M + b'", "prompt": "a"}'),
    ("comment", b'{"model": "' + M + b'", /* c */ "prompt": "a"}'),
    ("byte order mark", b"\xef\xbb\xbf" + completion()),
    ("uppercase literal", completion(b', "stream": True')),
    ("unterminated string", b'{"model": "' + M + b'", "prompt": "a'),
    ("too deep", b'{"model": "' + M + b'", "prompt": "a", "x": ' + b"[" * 300 + b"]" * 300 + b"}"),
]


@pytest.mark.parametrize("name,body", INVALID_JSON, ids=[c[0] for c in INVALID_JSON])
def test_invalid_json_is_400(server, name, body):
    for path in ("/v1/completions", "/tokenize"):
        status, _, obj = post(server.url, path, body)
        assert_openai_error(status, obj, 400)
        assert obj["error"]["code"] == "invalid_json", obj


DUPLICATES = [
    ("top-level key", completion(b', "prompt": "Twice"'), "prompt"),
    ("model twice", completion(b', "model": "other"'), "model"),
    ("nested key", b'{"model": "' + M + b'", "messages": [{"role": "user", "role": "system", "content": "a"}]}',
     "messages"),
]


@pytest.mark.parametrize("name,body,param", DUPLICATES, ids=[c[0] for c in DUPLICATES])
def test_duplicate_keys_are_400(server, name, body, param):
    path = "/v1/chat/completions" if b"messages" in body else "/v1/completions"
    status, _, obj = post(server.url, path, body)
    assert_openai_error(status, obj, 400)
    assert obj["error"]["code"] == "duplicate_key" and obj["error"]["param"] == param, obj


NUL_FIELDS = [
    ("/v1/completions", {"model": MODEL, "prompt": "Once\u0000 upon a time"}, "prompt"),
    ("/v1/completions", {"model": "aid\u0000x", "prompt": "Once"}, "model"),
    ("/v1/completions", {"model": MODEL, "prompt": "Once", "stop": ["a\u0000b"]}, "stop"),
    ("/v1/completions", {"model": MODEL, "prompt": "Once", "stop": "\u0000"}, "stop"),
    ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "Hi\u0000there"}]},
     "messages"),
    ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user\u0000x", "content": "Hi"}]}, "messages"),
    ("/v1/chat/completions",
     {"model": MODEL, "messages": [{"role": "user", "content": [{"type": "text", "text": "a\u0000"}]}]}, "messages"),
    ("/v1/completions", {"model": MODEL, "prompt": "Once", "user": "x\u0000"}, "user"),
    ("/tokenize", {"content": "Once\u0000 upon"}, "content"),
]


@pytest.mark.parametrize("path,body,param", NUL_FIELDS, ids=[f"{c[0]}:{c[2]}" for c in NUL_FIELDS])
def test_nul_in_any_string_is_400(server, path, body, param):
    raw = json.dumps(body).encode()
    assert b"\\u0000" in raw
    status, _, obj = post(server.url, path, raw)
    assert_openai_error(status, obj, 400)
    assert obj["error"]["param"] == param, obj
    assert "NUL" in obj["error"]["message"], obj


def test_nul_in_a_key_is_400(server):
    status, _, obj = post(server.url, "/v1/completions", completion(b', "a\\u0000b": 1'))
    assert_openai_error(status, obj, 400)
    assert "NUL" in obj["error"]["message"], obj


UNSUPPORTED = [
    ("/v1/chat/completions", "tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}]),
    ("/v1/chat/completions", "tool_choice", "required"),
    ("/v1/chat/completions", "tool_choice", {"type": "function", "function": {"name": "f"}}),
    ("/v1/chat/completions", "functions", [{"name": "f", "parameters": {}}]),
    ("/v1/chat/completions", "function_call", {"name": "f"}),
    ("/v1/chat/completions", "response_format", {"type": "json_object"}),
    ("/v1/chat/completions", "response_format", {"type": "json_schema", "json_schema": {"name": "x"}}),
    ("/v1/chat/completions", "response_format", "text"),
    ("/v1/chat/completions", "logit_bias", {"50256": -100}),
    ("/v1/chat/completions", "modalities", ["text", "audio"]),
    ("/v1/chat/completions", "audio", {"voice": "alloy", "format": "wav"}),
    ("/v1/chat/completions", "web_search_options", {"search_context_size": "low"}),
    ("/v1/completions", "logit_bias", {"1": 5}),
    ("/v1/completions", "suffix", " the end"),
    ("/v1/completions", "best_of", 3),
    ("/v1/completions", "grammar", "root ::= \"a\""),
    ("/v1/completions", "json_schema", {"type": "object"}),
    ("/v1/completions", "n_predict", 5),
    ("/v1/completions", "mirostat", 2),
    ("/v1/completions", "typical_p", 0.5),
]


def base(path):
    if path == "/v1/chat/completions":
        return {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    return {"model": MODEL, "prompt": "Once", "max_tokens": 2}


@pytest.mark.parametrize("path,field,value", UNSUPPORTED, ids=[f"{c[1]}={json.dumps(c[2])}" for c in UNSUPPORTED])
def test_unsupported_fields_are_400(server, path, field, value):
    status, _, obj = post(server.url, path, {**base(path), field: value})
    assert_openai_error(status, obj, 400)
    assert obj["error"]["param"] == field and obj["error"]["code"] == "unsupported_parameter", obj


def test_tool_calls_in_messages_are_400(server):
    msgs = [{"role": "user", "content": "Hi"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"}]
    status, _, obj = post(server.url, "/v1/chat/completions", {"model": MODEL, "messages": msgs, "max_tokens": 2})
    assert_openai_error(status, obj, 400)
    assert obj["error"]["param"] == "messages" and obj["error"]["code"] == "unsupported_parameter", obj


NEUTRAL = [
    ("/v1/chat/completions", {"response_format": {"type": "text"}, "tools": [], "tool_choice": "none",
                              "functions": None, "function_call": "auto", "logit_bias": {},
                              "modalities": ["text"], "audio": None}),
    ("/v1/completions", {"suffix": "", "best_of": 1, "logit_bias": None, "mirostat": 0, "typical_p": 1.0}),
]


@pytest.mark.parametrize("path,fields", NEUTRAL, ids=[c[0] for c in NEUTRAL])
def test_neutral_values_of_unsupported_fields_pass(server, path, fields):
    status, _, obj = post(server.url, path, {**base(path), **fields})
    assert status == 200, obj
    assert obj["usage"]["completion_tokens"] <= 2


VALID_EDGES = [
    ("whitespace around", b" \r\n\t" + completion() + b" \n\t\r "),
    ("nested arrays and objects", completion(b', "user": "u", "metadata": {"a": [[1, [2, {"b": []}]], {}]}')),
    ("numbers in every form", completion(b', "top_p": 1E0, "presence_penalty": -0.5e-1, "seed": 0, '
                                         b'"frequency_penalty": 0.0, "top_k": 4e1')),
    ("escapes", b'{"model": "' + M + b'", "prompt": "\\"Once\\"\\t\\/\\\\\\n\\u00e9\\ud83d\\ude00", "max_tokens": 1}'),
    ("empty key", completion(b', "": 1')),
]


@pytest.mark.parametrize("name,body", VALID_EDGES, ids=[c[0] for c in VALID_EDGES])
def test_valid_edge_cases_still_accepted(server, name, body):
    json.loads(body)  # the cases themselves are valid JSON
    status, _, obj = post(server.url, "/v1/completions", body)
    assert status == 200, obj
    assert obj["choices"][0]["finish_reason"] in ("stop", "length")


def test_unicode_escapes_decode_as_the_raw_text(server):
    raw = {"content": "caf\u00e9 \U0001F600 once"}
    escaped = b'{"content": "caf\\u00E9 \\uD83D\\uDE00 once"}'
    s1, _, a = post(server.url, "/tokenize", json.dumps(raw, ensure_ascii=False).encode())
    s2, _, b = post(server.url, "/tokenize", escaped)
    assert s1 == 200 and s2 == 200, (a, b)
    assert a["tokens"] == b["tokens"] and len(a["tokens"]) > 3


def test_model_may_be_left_out(server):
    status, _, obj = post(server.url, "/v1/completions", {"prompt": "Once", "max_tokens": 2, "temperature": 0})
    assert status == 200, obj
    assert obj["model"] == MODEL and obj["usage"]["completion_tokens"] <= 2
    status, _, obj = post(server.url, "/v1/chat/completions",
                          {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "model": None})
    assert status == 200, obj
    assert obj["model"] == MODEL and obj["choices"][0]["message"]["role"] == "assistant"
    status, _, obj = post(server.url, "/v1/completions", {"model": "gpt-5", "prompt": "Once"})
    assert_openai_error(status, obj, 404)


def test_server_still_serves_after_hostile_bodies(server):
    status, _, obj = post(server.url, "/v1/completions", completion())
    assert status == 200, obj
    m = server.metrics()
    assert m["wgllm_active_sequences"] == 0
