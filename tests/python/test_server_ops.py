"""Operations of `wgllm serve`: Prometheus metrics (checked by promtool), continuous
batching against single-client runs, client disconnects, SIGTERM drain and hot
reload under load, and a bounded wrk load test with hostile inputs."""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from server_util import Server, post, request, stream_sse, synth_small  # noqa: F401 (fixture)

AIDREAMS = "aidreams260K-f32"
PROMPTS = ["Once upon a time", "The little dog", "In the morning", "She looked at the sky and",
           "Tom had a red ball", "One day", "The sun was", "A cat and a bird were friends. They"]


@pytest.fixture(scope="module")
def aidreams(shared):
    return shared / "models" / "aidreams260K-f32.gguf"


def wait_for(predicate, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_metrics_pass_promtool(wgllm, aidreams):
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: install Debian's prometheus package (scripts/install-deps.sh)"
    s = Server(wgllm, aidreams, name="metrics")
    try:
        post(s.url, "/v1/completions", {"model": AIDREAMS, "prompt": "Hi", "max_tokens": 5, "temperature": 0})
        post(s.url, "/v1/completions", b"{")
        status, headers, body = request(s.url, "GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
        p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
        assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
        m = s.metrics()
        for name in ["gpu_inference_latency_seconds_count", "tokens_per_second", "gpu_memory_usage_bytes",
                     "wgllm_queue_depth", "wgllm_active_sequences", "wgllm_kv_cache_used_tokens",
                     "wgllm_kv_cache_usage_ratio", "wgllm_prompt_tokens_total", "wgllm_generated_tokens_total",
                     "wgllm_time_to_first_token_seconds_count", "wgllm_time_per_output_token_seconds_count"]:
            assert name in m, name
        assert m['wgllm_http_requests_total{route="/v1/completions",status="200"}'] == 1
        assert m['wgllm_http_requests_total{route="/v1/completions",status="400"}'] == 1
        assert m["gpu_inference_latency_seconds_count"] == 1
        assert m["wgllm_generated_tokens_total"] >= 1 and m["tokens_per_second"] > 0
        assert m["gpu_memory_usage_bytes"] == 0  # CPU backend
        assert m["wgllm_active_sequences"] == 0 and m["wgllm_queue_depth"] == 0
    finally:
        assert s.stop() == 0


@pytest.mark.parametrize("backend", ["cpu", "webgpu"])
def test_concurrent_streams_match_single_client(wgllm, aidreams, backend):
    """8 streaming clients at once (prompts of different lengths, chunked prefill) get
    exactly the greedy texts each prompt gets alone. Once every sequence decodes, the steps
    are pipelined (wgllm_decode_greedy_batch; on WebGPU the ids stay on the device, and
    sequences leave at different steps); the texts alone come through the plain steps, as
    asking for logprobs makes each token be sampled from logits read back."""
    s = Server(wgllm, aidreams, "--parallel", "8", "--prefill-chunk", "4", "--step-tokens", "16",
               "--backend", backend, name=f"concurrent-{backend}")
    try:
        def body(p, stream, **more):
            return {"model": AIDREAMS, "prompt": p, "max_tokens": 48, "temperature": 0, "stream": stream, **more}

        alone = [post(s.url, "/v1/completions", body(p, False, logprobs=1))[2]["choices"][0]["text"]
                 for p in PROMPTS]
        results = [None] * len(PROMPTS)
        barrier = threading.Barrier(len(PROMPTS))

        def run(i):
            barrier.wait()
            events = stream_sse(s.url, "/v1/completions", body(PROMPTS[i], True))
            assert events[-1] == "[DONE]"
            results[i] = "".join(json.loads(e)["choices"][0]["text"] for e in events[:-1])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(PROMPTS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == alone
        assert len(set(alone)) > 1
    finally:
        assert s.stop() == 0


def test_disconnect_frees_slot(wgllm, synth_small):
    """A client that goes away mid-stream (or mid-wait) gives its slot back at once."""
    s = Server(wgllm, synth_small, "--parallel", "2", name="disconnect")
    try:
        body = {"model": "synth-small", "prompt": "x", "max_tokens": 100000, "temperature": 0, "ignore_eos": True}
        for stream in (True, False):
            sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
            data = json.dumps({**body, "stream": stream}).encode()
            sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
            wait_for(lambda: s.metrics()["wgllm_active_sequences"] == 1, what="the sequence to start")
            sock.close()
            wait_for(lambda: s.metrics()["wgllm_active_sequences"] == 0, timeout=10, what="the slot to be freed")
        m = s.metrics()
        assert m["wgllm_kv_cache_used_tokens"] == 0
        assert m['wgllm_http_requests_total{route="/v1/completions",status="200"}'] >= 1
    finally:
        assert s.stop() == 0


def load(url, model, n, out, stream_every=2, max_tokens=40):
    """n concurrent requests (every other one streaming); appends (ok, detail) to out."""
    def one(i):
        body = {"model": model, "prompt": f"request {i}", "max_tokens": max_tokens, "temperature": 0,
                "ignore_eos": True}
        try:
            if i % stream_every == 0:
                events = stream_sse(url, "/v1/completions", {**body, "stream": True,
                                                             "stream_options": {"include_usage": True}})
                usage = json.loads(events[-2])["usage"]
                out.append((events[-1] == "[DONE]" and usage["completion_tokens"] == max_tokens, usage))
            else:
                status, _, obj = post(url, "/v1/completions", body, timeout=300)
                out.append((status == 200 and obj["usage"]["completion_tokens"] == max_tokens,
                            (status, obj)))
        except Exception as e:  # noqa: BLE001 (reported by the assertion)
            out.append((False, repr(e)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def test_sigterm_drains_without_losing_requests(wgllm, synth_small):
    s = Server(wgllm, synth_small, "--parallel", "2", "--max-queue", "16", "--drain-timeout", "120",
               name="drain")
    out = []
    # long enough that none ends before all six have arrived (a few hundred tokens a second or more)
    threads = load(s.url, "synth-small", 6, out, max_tokens=400)
    wait_for(lambda: (lambda m: m["wgllm_active_sequences"] + m["wgllm_queue_depth"])(s.metrics()) == 6,
             what="all requests to arrive")
    s.signal(signal.SIGTERM)
    # no new connections once draining
    wait_for(lambda: _refused(s.port), timeout=10, what="the listener to close")
    for t in threads:
        t.join()
    rc = s.stop()
    assert [ok for ok, _ in out] == [True] * 6, out
    assert rc == 0
    assert '"event":"draining"' in s.log()


def _refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def test_hot_reload_under_load(wgllm, synth_small, synth):
    """SIGHUP and POST /admin/reload while requests run: none fails; each text is the
    greedy text of the model it started on."""
    other = synth("small-seed2", ["--preset", "small", "--type", "q8_0", "--seed", "2"])
    assert other.parent == synth_small.parent  # inside the default --models-dir
    s = Server(wgllm, synth_small, "--parallel", "3", "--alias", "m", "--admin-key", "adm", name="reload")
    admin = {"Authorization": "Bearer adm"}
    try:
        body = {"model": "m", "prompt": "hello", "max_tokens": 30, "temperature": 0, "ignore_eos": True}
        text_a = post(s.url, "/v1/completions", body)[2]["choices"][0]["text"]
        results, stop = [], threading.Event()

        def client():
            while not stop.is_set():
                status, _, obj = post(s.url, "/v1/completions", body, timeout=120)
                results.append((status, obj["choices"][0]["text"] if status == 200 else obj))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: len(results) >= 2, what="traffic")
        status, _, obj = post(s.url, "/admin/reload", {"model": str(other)}, admin)
        assert status == 200 and obj == {"status": "ok", "model": "m"}
        n = len(results)
        wait_for(lambda: len(results) >= n + 4, what="traffic on the new model")
        text_b = post(s.url, "/v1/completions", body)[2]["choices"][0]["text"]
        assert text_b != text_a
        s.signal(signal.SIGHUP)  # reloads the current file (the second model) again
        wait_for(lambda: s.metrics()['wgllm_model_reloads_total{result="ok"}'] == 2, what="the SIGHUP reload")
        n = len(results)
        wait_for(lambda: len(results) >= n + 4, what="traffic after SIGHUP")
        status, _, obj = post(s.url, "/admin/reload", {"model": "/nonexistent.gguf"}, admin)
        assert status == 404 and "reload failed" in obj["error"]["message"]
        stop.set()
        for t in threads:
            t.join()
        assert all(status == 200 for status, _ in results), results
        assert {text for _, text in results} <= {text_a, text_b}
        assert text_b in {text for _, text in results}
        assert s.metrics()["wgllm_active_sequences"] == 0
    finally:
        assert s.stop() == 0


WRK_SCRIPT = r"""
local bodies = {
  '{"model":"%s","prompt":"Once upon a time","max_tokens":12,"temperature":0}',
  '{"model":"%s","prompt":"The dog","max_tokens":8,"temperature":0.8,"seed":3,"stream":true}',
  '{"model":"%s","messages":[{"role":"user","content":"hi"}],"max_tokens":6}',
  '{"model":"%s","prompt":',
  '{"model":"%s","prompt":"\255\254"}',
  '{"model":"%s","prompt":"a","temperature":NaN}',
  '{"model":"%s","prompt":"a","max_tokens":-4}',
  '{"model":"nope","prompt":"a"}',
  '{"model":"%s","prompt":[1,2,99999999]}',
  '{"model":"%s","prompt":"a","stop":[1,2]}',
  '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
  '{"model":"%s","prompt":"' .. string.rep("word ", 300) .. '"}',
}
local paths = {"/v1/completions", "/v1/completions", "/v1/chat/completions"}
local i = 0
request = function()
  i = i + 1
  local b = bodies[(i %% #bodies) + 1]
  local p = paths[(i %% #paths) + 1]
  if b:find('"messages"') then p = "/v1/chat/completions" end
  if b:find('"prompt"') then p = "/v1/completions" end
  return wrk.format("POST", p, {["Content-Type"] = "application/json"}, b)
end
"""


def test_wrk_load_with_hostile_inputs(wgllm, aidreams, scratch):
    wrk = shutil.which("wrk")
    assert wrk, "wrk not found: install Debian's wrk package (scripts/install-deps.sh)"
    script = scratch / "load.lua"
    script.write_text(WRK_SCRIPT.replace("%s", AIDREAMS).replace("%%", "%"))
    # a small allocator quarantine under ASan, so that RSS reflects what the server holds
    asan = os.environ.get("ASAN_OPTIONS", "")
    s = Server(wgllm, aidreams, "--parallel", "4", "--max-queue", "8", name="wrk",
               env={"ASAN_OPTIONS": (asan + ":" if asan else "") + "quarantine_size_mb=4"})
    try:
        rss = []
        for _ in range(2):
            p = subprocess.run([wrk, "-t", "2", "-c", "8", "-d", "3s", "--timeout", "10s", "-s", str(script),
                                s.url], capture_output=True, timeout=60)
            assert p.returncode == 0, p.stderr.decode()
            assert "requests in" in p.stdout.decode(), p.stdout.decode()
            assert s.proc.poll() is None, "server died under load: " + s.log()[-2000:]
            wait_for(lambda: s.metrics()["wgllm_active_sequences"] == 0, timeout=30, what="idle")
            rss.append(s.rss_kib())
        m = s.metrics()
        assert m["wgllm_active_sequences"] == 0 and m["wgllm_queue_depth"] == 0
        assert m["wgllm_kv_cache_used_tokens"] == 0
        assert m['wgllm_http_requests_total{route="/v1/completions",status="200"}'] > 0
        assert m['wgllm_http_requests_total{route="/v1/completions",status="400"}'] > 0
        # memory stable: the second round adds at most 16 MiB to the first
        assert rss[1] - rss[0] < 16 * 1024, rss
        status, _, obj = post(s.url, "/v1/completions", {"model": AIDREAMS, "prompt": "Hi", "max_tokens": 3})
        assert status == 200
    finally:
        assert s.stop() == 0
