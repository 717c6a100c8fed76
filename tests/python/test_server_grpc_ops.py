"""Operations of the gRPC API: a cancelled stream or a passed deadline frees its slot (seen
in /metrics), a full queue answers RESOURCE_EXHAUSTED, and SIGTERM drains gRPC streams (those
in flight finish, new calls get UNAVAILABLE, health turns NOT_SERVING)."""

import signal
import threading
import time

import grpc
import pytest

from grpc_util import GrpcServer, protos  # noqa: F401 (fixture)
from server_util import synth_small  # noqa: F401 (fixture)


def wait_for(predicate, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def busy(s):
    m = s.metrics()
    return m["wgllm_active_sequences"] + m["wgllm_queue_depth"]


def long_model(synth):
    """A context long enough that a generation to its end takes many seconds."""
    return synth("small-long", ["--preset", "small", "--ctx", "32768", "--type", "q8_0", "--seed", "1"])


def test_cancel_and_deadline_free_the_slot(wgllm, synth, protos):
    s = GrpcServer(wgllm, long_model(synth), "--parallel", "2", protos=protos, name="grpc-cancel")
    try:
        pb = protos.pb
        stub = s.stub()
        endless = pb.GenerateRequest(text="x", max_tokens=100000, temperature=0, ignore_eos=True)
        # a stream cancelled after its first response
        call = stub.GenerateToken(endless, timeout=300)
        first = next(call)
        assert first.tokens
        assert s.metrics()["wgllm_active_sequences"] == 1
        call.cancel()
        wait_for(lambda: s.metrics()["wgllm_active_sequences"] == 0, timeout=10, what="the slot to be freed")
        with pytest.raises(grpc.RpcError) as e:
            next(call)
        assert e.value.code() == grpc.StatusCode.CANCELLED
        # a unary call whose deadline passes while it generates
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            stub.Generate(endless, timeout=3.0)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - t0 < 30
        wait_for(lambda: s.metrics()["wgllm_active_sequences"] == 0, timeout=10, what="the slot to be freed")
        # and a stream's deadline
        with pytest.raises(grpc.RpcError) as e:
            for _ in stub.GenerateToken(endless, timeout=3.0):
                pass
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        wait_for(lambda: s.metrics()["wgllm_active_sequences"] == 0, timeout=10, what="the slot to be freed")
        m = s.metrics()
        assert m["wgllm_kv_cache_used_tokens"] == 0
        gen = '/wgllm.v1.Generator/'
        wait_for(lambda: s.metrics().get(f'wgllm_grpc_requests_total{{method="{gen}Generate",'
                                         'code="DEADLINE_EXCEEDED"}', 0) == 1, timeout=10, what="the call's metric")
        m = s.metrics()
        assert m[f'wgllm_grpc_requests_total{{method="{gen}GenerateToken",code="CANCELLED"}}'] == 1
        assert m[f'wgllm_grpc_requests_total{{method="{gen}GenerateToken",code="DEADLINE_EXCEEDED"}}'] == 1
        # the server goes on serving
        r = stub.Generate(pb.GenerateRequest(text="x", max_tokens=3, temperature=0, ignore_eos=True), timeout=60)
        assert r.usage.completion_tokens == 3
    finally:
        assert s.stop() == 0


def test_full_queue_is_resource_exhausted(wgllm, synth, protos):
    """One slot, one queue place: a third call while one runs and one waits is refused. The
    states are reached one after the other, not by racing threads."""
    s = GrpcServer(wgllm, long_model(synth), "--parallel", "1", "--max-queue", "1", protos=protos, name="grpc-queue")
    try:
        pb = protos.pb
        stub = s.stub()
        holder = stub.GenerateToken(pb.GenerateRequest(text="x", max_tokens=100000, temperature=0, ignore_eos=True),
                                    timeout=300)
        assert next(holder).tokens
        wait_for(lambda: s.metrics()["wgllm_active_sequences"] == 1, what="the stream to take the slot")
        queued = []
        body = pb.GenerateRequest(text="x", max_tokens=20, temperature=0, ignore_eos=True)
        t = threading.Thread(target=lambda: queued.append(stub.Generate(body, timeout=300)))
        t.start()
        wait_for(lambda: s.metrics()["wgllm_queue_depth"] == 1, what="the second call to queue")
        with pytest.raises(grpc.RpcError) as e:
            stub.Generate(body, timeout=60)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(grpc.RpcError) as e:
            list(stub.GenerateToken(body, timeout=60))
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert s.metrics()["wgllm_requests_rejected_total"] == 2
        holder.cancel()
        t.join(timeout=300)
        assert queued and queued[0].usage.completion_tokens == 20
    finally:
        assert s.stop() == 0


def test_sigterm_drains_grpc_streams(wgllm, synth_small, protos):
    s = GrpcServer(wgllm, synth_small, "--parallel", "2", "--max-queue", "16", "--drain-timeout", "120",
                   protos=protos, name="grpc-drain")
    pb = protos.pb
    stub = s.stub()
    n, max_tokens = 6, 400
    out = []

    def one(i):
        try:
            req = pb.GenerateRequest(text=f"request {i}", max_tokens=max_tokens, temperature=0, ignore_eos=True)
            chunks = list(stub.GenerateToken(req, timeout=300))
            out.append((chunks[-1].usage.completion_tokens == max_tokens and
                        sum(len(c.tokens) for c in chunks) == max_tokens, chunks[-1].usage))
        except Exception as e:  # noqa: BLE001 (reported by the assertion)
            out.append((False, repr(e)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    try:
        for t in threads:
            t.start()
        wait_for(lambda: busy(s) == n, what="all streams to arrive")
        s.signal(signal.SIGTERM)
        h = protos.health.HealthCheckResponse
        wait_for(lambda: s.health().status == h.NOT_SERVING, timeout=10, what="health to turn NOT_SERVING")
        for call in (lambda: stub.Generate(pb.GenerateRequest(text="late", max_tokens=2), timeout=30),
                     lambda: list(stub.GenerateToken(pb.GenerateRequest(text="late", max_tokens=2), timeout=30)),
                     lambda: stub.Tokenize(pb.TokenizeRequest(content="late"), timeout=30)):
            with pytest.raises(grpc.RpcError) as e:
                call()
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        for t in threads:
            t.join(timeout=300)
        rc = s.stop()
    except BaseException:
        s.kill()
        raise
    assert [ok for ok, _ in out] == [True] * n, out
    assert rc == 0
    assert '"event":"draining"' in s.log()


def test_drain_timeout_cuts_streams_with_unavailable(wgllm, synth, protos):
    """A stream still running when --drain-timeout passes ends UNAVAILABLE; the exit code says
    requests were cut (3), as for HTTP."""
    s = GrpcServer(wgllm, long_model(synth), "--parallel", "1", "--drain-timeout", "1", protos=protos,
                   name="grpc-drain-timeout")
    try:
        pb = protos.pb
        call = s.stub().GenerateToken(pb.GenerateRequest(text="x", max_tokens=100000, temperature=0,
                                                         ignore_eos=True), timeout=300)
        assert next(call).tokens
        s.signal(signal.SIGTERM)
        with pytest.raises(grpc.RpcError) as e:
            for _ in call:
                pass
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value
        assert "shutting down" in e.value.details()
        rc = s.stop()
    except BaseException:
        s.kill()
        raise
    assert rc == 3
    assert '"event":"drain_timeout"' in s.log()


def test_too_many_open_calls(wgllm, synth, protos):
    """Each call has a thread while it is open; beyond --max-connections calls are refused at
    once with RESOURCE_EXHAUSTED, and served again once calls end."""
    s = GrpcServer(wgllm, long_model(synth), "--parallel", "2", "--max-connections", "8", protos=protos,
                   name="grpc-open-calls")
    try:
        pb = protos.pb
        stub = s.stub()
        endless = pb.GenerateRequest(text="x", max_tokens=100000, temperature=0, ignore_eos=True)
        calls = [stub.GenerateToken(endless, timeout=300) for _ in range(8)]
        wait_for(lambda: busy(s) == 8, what="eight calls to be open")
        with pytest.raises(grpc.RpcError) as e:
            stub.Tokenize(pb.TokenizeRequest(content="x"), timeout=30)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "too many open calls" in e.value.details()
        for c in calls:
            c.cancel()
        wait_for(lambda: busy(s) == 0, timeout=30, what="the calls to end")

        def served():  # the calls' threads end just after their jobs
            try:
                return bool(stub.Tokenize(pb.TokenizeRequest(content="x"), timeout=30).tokens)
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
                return False
        wait_for(served, timeout=30, what="a call to be served again")
        m = s.metrics()
        assert m['wgllm_grpc_requests_total{method="/wgllm.v1.Generator/Tokenize",code="RESOURCE_EXHAUSTED"}'] >= 1
    finally:
        assert s.stop() == 0
