"""The gRPC API of `wgllm serve` (proto/wgllm/v1/generate.proto, grpc.health.v1) through the
official Python client, with the stubs compiled from the proto files by grpcio-tools: generation
(unary and streamed, identical to the HTTP API's greedy output), the tokenizer, model info,
health, field validation, the API key, and raw malformed protobuf bytes."""

import json

import grpc
import pytest

from grpc_util import GrpcServer, protos, require_grpc_build  # noqa: F401 (fixture)
from server_util import post, request

AIDREAMS = "aidreams260K-f32"
PROMPTS = ["Once upon a time", "The little dog", "She looked at the sky and"]


@pytest.fixture(scope="module")
def server(wgllm, shared, protos):
    s = GrpcServer(wgllm, shared / "models" / "aidreams260K-f32.gguf", "--parallel", "2", protos=protos,
                   name="grpc")
    yield s
    assert s.stop() == 0


def test_binary_has_grpc(wgllm):
    require_grpc_build(wgllm)


def test_greedy_generation_matches_http(server, protos):
    """Generate and GenerateToken return exactly the HTTP API's greedy text and usage; the
    streamed tokens' pieces spell the text and their ids are the HTTP logprobs' tokens."""
    pb = protos.pb
    stub = server.stub()
    for prompt in PROMPTS:
        status, _, http = post(server.url, "/v1/completions",
                               {"prompt": prompt, "max_tokens": 24, "temperature": 0, "logprobs": 0})
        assert status == 200, http
        want = http["choices"][0]["text"]
        req = pb.GenerateRequest(text=prompt, max_tokens=24, temperature=0)
        unary = stub.Generate(req, timeout=60)
        assert unary.text == want
        assert unary.finish_reason == pb.FINISH_REASON_LENGTH
        assert unary.usage.prompt_tokens == http["usage"]["prompt_tokens"]
        assert unary.usage.completion_tokens == http["usage"]["completion_tokens"] == 24
        assert unary.model == AIDREAMS
        assert len(unary.tokens) == 24
        assert all(not t.HasField("logprob") for t in unary.tokens)  # not asked for

        chunks = list(stub.GenerateToken(req, timeout=60))
        assert chunks, "no responses"
        assert "".join(c.text for c in chunks) == want
        pieces = b"".join(t.piece for c in chunks for t in c.tokens).decode()
        assert pieces in (want, " " + want)  # the text drops SentencePiece's leading space
        ids = [t.id for c in chunks for t in c.tokens]
        assert len(ids) == 24
        assert all(c.finish_reason == pb.FINISH_REASON_UNSPECIFIED for c in chunks[:-1])
        assert chunks[-1].finish_reason == pb.FINISH_REASON_LENGTH
        assert chunks[-1].usage.completion_tokens == 24
        assert not any(c.HasField("usage") for c in chunks[:-1])
        assert ids == [t.id for t in unary.tokens]


def test_stream_delivers_tokens_as_they_come(server, protos):
    """A long generation arrives in more than one response."""
    req = protos.pb.GenerateRequest(text="x", max_tokens=100, temperature=0, ignore_eos=True)
    chunks = list(server.stub().GenerateToken(req, timeout=120))
    assert len(chunks) > 1
    assert sum(len(c.tokens) for c in chunks) == 100


def test_logprobs_stop_and_chat(server, protos):
    pb = protos.pb
    stub = server.stub()
    r = stub.Generate(pb.GenerateRequest(text="Once upon a time", max_tokens=8, temperature=0, logprobs=True,
                                         top_logprobs=3), timeout=60)
    _, _, http = post(server.url, "/v1/completions", {"prompt": "Once upon a time", "max_tokens": 8,
                                                     "temperature": 0, "logprobs": 3})
    lp = http["choices"][0]["logprobs"]
    assert [t.logprob for t in r.tokens] == pytest.approx(lp["token_logprobs"], abs=1e-5)
    assert all(len(t.top_logprobs) == 3 for t in r.tokens)
    assert r.tokens[0].top_logprobs[0].logprob >= r.tokens[0].top_logprobs[1].logprob
    # a stop string ends the text before it, as over HTTP
    full = r.text
    stop = full[3:6]
    assert stop.strip(), full
    r = stub.Generate(pb.GenerateRequest(text="Once upon a time", max_tokens=8, temperature=0, stop=[stop]),
                      timeout=60)
    assert r.finish_reason == pb.FINISH_REASON_STOP and r.text == full[:full.index(stop)]
    # chat messages go through the model's template, as /v1/chat/completions
    msgs = [{"role": "user", "content": "Hello there"}]
    _, _, http = post(server.url, "/v1/chat/completions", {"messages": msgs, "max_tokens": 12, "temperature": 0})
    chat = pb.ChatMessages(messages=[pb.ChatMessage(role="user", content="Hello there")])
    r = stub.Generate(pb.GenerateRequest(chat=chat, max_tokens=12, temperature=0), timeout=60)
    assert r.text == http["choices"][0]["message"]["content"]
    assert r.usage.prompt_tokens == http["usage"]["prompt_tokens"]
    # token ids as the prompt, and a seeded sampled run that repeats itself
    ids = server.stub().Tokenize(pb.TokenizeRequest(content="Once upon a time"), timeout=30).tokens
    by_ids = stub.Generate(pb.GenerateRequest(token_ids=pb.TokenIds(ids=ids), max_tokens=8, temperature=0),
                           timeout=60)
    assert by_ids.text == full
    seeded = pb.GenerateRequest(text="Once", max_tokens=16, temperature=0.9, top_k=20, seed=2**62 + 5)
    assert stub.Generate(seeded, timeout=60).text == stub.Generate(seeded, timeout=60).text


def test_tokenize_round_trip_and_model_info(server, protos):
    pb = protos.pb
    stub = server.stub()
    text = "Once upon a time, there was a little girl."
    t = stub.Tokenize(pb.TokenizeRequest(content=text), timeout=30)
    _, _, http = post(server.url, "/tokenize", {"content": text})
    assert list(t.tokens) == http["tokens"]
    d = stub.Detokenize(pb.DetokenizeRequest(tokens=t.tokens), timeout=30)
    _, _, http = post(server.url, "/detokenize", {"tokens": list(t.tokens)})
    assert d.content == http["content"]
    assert text in d.content
    no_bos = stub.Tokenize(pb.TokenizeRequest(content=text, add_special=False), timeout=30)
    assert list(no_bos.tokens) == list(t.tokens)[1:]
    info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=30)
    _, _, models = request(server.url, "GET", "/v1/models")
    m = json.loads(models)["data"][0]
    assert info.id == m["id"] == AIDREAMS
    assert info.context_length == m["context_length"]
    assert info.chat_template == m["chat_template"]
    assert info.vocab_size == 512
    assert info.parallel == 2
    assert info.backend
    with pytest.raises(grpc.RpcError) as e:
        stub.Detokenize(pb.DetokenizeRequest(tokens=[1, 512]), timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_health(server, protos):
    h = protos.health
    assert server.health().status == h.HealthCheckResponse.SERVING
    assert server.health("wgllm.v1.Generator").status == h.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as e:
        server.health("no.such.Service")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


BAD_FIELDS = [
    ("temperature", dict(text="x", temperature=2.5), "temperature"),
    ("temperature_nan", dict(text="x", temperature=float("nan")), "temperature"),
    ("top_p_zero", dict(text="x", top_p=0), "top_p"),
    ("min_p", dict(text="x", min_p=1.5), "min_p"),
    ("presence_penalty", dict(text="x", presence_penalty=3), "presence_penalty"),
    ("frequency_penalty", dict(text="x", frequency_penalty=-3), "frequency_penalty"),
    ("repeat_penalty", dict(text="x", repeat_penalty=0), "repeat_penalty"),
    ("top_k", dict(text="x", top_k=-1), "top_k"),
    ("max_tokens_zero", dict(text="x", max_tokens=0), "max_tokens"),
    ("max_tokens_negative", dict(text="x", max_tokens=-5), "max_tokens"),
    ("five_stops", dict(text="x", stop=["a", "b", "c", "d", "e"]), "stop"),
    ("empty_stop", dict(text="x", stop=[""]), "stop"),
    ("no_prompt", dict(max_tokens=4), "prompt"),
    ("negative_id", dict(token_ids={"ids": [1, -2]}), "prompt"),
    ("id_outside_vocab", dict(token_ids={"ids": [1, 100000]}), "vocabulary"),
    ("top_logprobs_alone", dict(text="x", top_logprobs=2), "top_logprobs"),
    ("too_many_logprobs", dict(text="x", logprobs=True, top_logprobs=6), "logprobs"),
    ("bad_role", dict(chat={"messages": [{"role": "robot", "content": "hi"}]}), "role"),
    ("no_messages", dict(chat={"messages": []}), "messages"),
]


@pytest.mark.parametrize("name,fields,word", BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_bad_fields_are_invalid_argument(server, protos, name, fields, word):
    """The HTTP API's checks, with its messages; both methods refuse before generating."""
    stub = server.stub()
    req = protos.pb.GenerateRequest(**fields)
    for call in (lambda: stub.Generate(req, timeout=30), lambda: list(stub.GenerateToken(req, timeout=30))):
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value
        assert word in e.value.details(), e.value.details()


def test_unknown_model_is_not_found(server, protos):
    with pytest.raises(grpc.RpcError) as e:
        server.stub().Generate(protos.pb.GenerateRequest(model="gpt-9", text="x"), timeout=30)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    r = server.stub().Generate(protos.pb.GenerateRequest(model=AIDREAMS, text="x", max_tokens=2), timeout=30)
    assert r.usage.completion_tokens >= 1


MALFORMED = [
    b"\xff",                      # a truncated varint key
    b"\x12\x80",                  # text: a length that never ends
    b"\x12\x05ab",                # text: 5 bytes announced, 2 sent
    b"\x1a\x03\x08\x80\x80",      # token_ids: a truncated nested varint (GenerateRequest only)
    b"\x28\x01\x28",              # max_tokens twice, the second cut
    b"\x0f",                      # field 1 with the (deprecated) end-group wire type
    b"\x07\x00",                  # wire type 7 does not exist
    bytes(range(256)) * 4,        # noise
    b"\x22" + b"\xff" * 10,       # chat: a varint length of more than 64 bits
]


def test_malformed_protobuf_bytes(server, protos):
    """Raw bytes through a generic call: INVALID_ARGUMENT (or INTERNAL), never a crash; the
    server keeps serving."""
    ch = server.channel()
    ident = dict(request_serializer=lambda b: b, response_deserializer=lambda b: b)
    methods = [("/wgllm.v1.Generator/Generate", ch.unary_unary),
               ("/wgllm.v1.Generator/GenerateToken", ch.unary_stream),
               ("/wgllm.v1.Generator/Tokenize", ch.unary_unary),
               ("/wgllm.v1.Generator/Detokenize", ch.unary_unary),
               ("/wgllm.v1.Generator/GetModelInfo", ch.unary_unary),
               ("/grpc.health.v1.Health/Check", ch.unary_unary)]
    for path, kind in methods:
        call = kind(path, **ident)
        for data in MALFORMED:
            if "/Generate" not in path and data.startswith(b"\x1a"):
                continue  # elsewhere field 3 is no message: an unknown field, skipped as protobuf says
            with pytest.raises(grpc.RpcError) as e:
                result = call(data, timeout=30)
                if kind == ch.unary_stream:
                    result = list(result)
                pytest.fail(f"{path} took {data[:16]!r}: {result!r}")
            assert e.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL), \
                (path, data[:16], e.value)
    with pytest.raises(grpc.RpcError) as e:
        ch.unary_unary("/wgllm.v1.Generator/NoSuchMethod", **ident)(b"", timeout=30)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    r = server.stub().Generate(protos.pb.GenerateRequest(text="Once upon a time", max_tokens=4, temperature=0),
                               timeout=30)
    assert r.usage.completion_tokens == 4
    m = server.metrics()
    assert m['wgllm_grpc_requests_total{method="/wgllm.v1.Generator/Generate",code="INVALID_ARGUMENT"}'] >= \
        len(MALFORMED)
    assert m['wgllm_grpc_requests_total{method="other",code="UNIMPLEMENTED"}'] >= 1
    log = [line for line in server.access_log() if line.get("protocol") == "grpc"]
    assert any(line["path"] == "/wgllm.v1.Generator/Generate" and line["grpc_status"] == 3 for line in log)


def test_api_key(wgllm, shared, protos):
    s = GrpcServer(wgllm, shared / "models" / "aidreams260K-f32.gguf", "--api-key", "s3cret", protos=protos,
                   name="grpc-key")
    try:
        pb = protos.pb
        stub = s.stub()
        req = pb.GenerateRequest(text="x", max_tokens=2)
        for md in (None, [("authorization", "Bearer wrong")], [("authorization", "s3cret")],
                   [("authorization", "Bearer s3cret0")], [("authorization", "Bearer s3cre")]):
            for call in (lambda: stub.Generate(req, timeout=30, metadata=md),
                         lambda: stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=30, metadata=md),
                         lambda: list(stub.GenerateToken(req, timeout=30, metadata=md))):
                with pytest.raises(grpc.RpcError) as e:
                    call()
                assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, (md, e.value)
        good = [("authorization", "Bearer s3cret")]
        assert stub.Generate(req, timeout=30, metadata=good).usage.completion_tokens >= 1
        assert stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=30, metadata=good).id == AIDREAMS
        # health stays open to probes, as GET /health
        assert s.health().status == protos.health.HealthCheckResponse.SERVING
        m = s.metrics()
        assert m['wgllm_grpc_requests_total{method="/wgllm.v1.Generator/Generate",code="UNAUTHENTICATED"}'] == 5
    finally:
        assert s.stop() == 0


def test_port_in_use_and_message_limit(wgllm, shared, protos):
    """A gRPC port in use fails the start at once (exit 1, no shared SO_REUSEPORT listener);
    request messages are held to --max-body."""
    import socket
    model = shared / "models" / "aidreams260K-f32.gguf"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = wgllm.run("serve", "-m", model, "--port", "0", "--grpc-port", port, "--backend", "cpu", "-t", "1")
    assert p.returncode == 1
    assert b"cannot listen for gRPC" in p.stderr
    s = GrpcServer(wgllm, model, "--max-body", "2000", protos=protos, name="grpc-limit")
    try:
        with pytest.raises(grpc.RpcError) as e:
            s.stub().Generate(protos.pb.GenerateRequest(text="x" * 3000, max_tokens=1), timeout=30)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert s.stub().Generate(protos.pb.GenerateRequest(text="x", stop=["y" * 1500], max_tokens=1), timeout=30).usage
    finally:
        assert s.stop() == 0
