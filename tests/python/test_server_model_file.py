"""What may happen to the file `wgllm serve` loaded: truncated or rewritten in place (as
`cp new.gguf served.gguf` does) while the server runs, it keeps answering from its own copy
of the weights, and a reload then picks up the new file."""

import json
import shutil
import signal
import threading
import time
import urllib.request

import pytest

from server_util import Server, post, synth_small  # noqa: F401 (fixture)

BODY = {"model": "m", "prompt": "Once upon a time", "max_tokens": 24, "temperature": 0, "ignore_eos": True}


def completion(s):
    status, _, obj = post(s.url, "/v1/completions", BODY, timeout=120)
    assert status == 200, obj
    return obj["choices"][0]["text"]


def assert_serves(s, want, n=3):
    for _ in range(n):
        assert completion(s) == want
    assert s.proc.poll() is None, s.log()


def wait_for_reloads(s, n, result="ok", timeout=60):
    deadline = time.monotonic() + timeout
    while s.metrics()[f'wgllm_model_reloads_total{{result="{result}"}}'] < n:
        assert time.monotonic() < deadline, s.log()
        time.sleep(0.05)


@pytest.mark.parametrize("backend", ["cpu", "webgpu"])
def test_truncated_then_rewritten_in_place(wgllm, synth, scratch, backend):
    """`: > served.gguf`, completions, then `cp other.gguf served.gguf`, completions: the
    answers stay those of the model loaded, the process lives; SIGHUP loads the new bytes.
    The CPU computes from the private copy; WebGPU uploaded it and gave its pages back."""
    first = synth("file-a", ["--preset", "tiny", "--type", "f32", "--seed", "11"])
    other = synth("file-b", ["--preset", "tiny", "--type", "q8_0", "--seed", "12"])
    served = scratch / f"served-inplace-{backend}.gguf"
    shutil.copyfile(first, served)
    s = Server(wgllm, served, "--parallel", "2", "--alias", "m", "--backend", backend,
               name=f"inplace-{backend}")
    try:
        text_a = completion(s)
        with open(served, "r+b") as f:  # the shell's `: > served.gguf`
            f.truncate(0)
        assert_serves(s, text_a)
        shutil.copyfile(other, served)  # opens with O_TRUNC and writes: the same inode
        assert_serves(s, text_a)
        s.signal(signal.SIGHUP)
        wait_for_reloads(s, 1)
        text_b = completion(s)
        assert text_b != text_a
        assert_serves(s, text_b)
    finally:
        assert s.stop() == 0


def test_truncated_while_cached_by_hard_link(wgllm, synth, scratch):
    """--model-cache on the model's own filesystem hard-links the entry to the source, so
    truncating the source truncates the entry too: the weights must still be private."""
    first = synth("file-a", ["--preset", "tiny", "--type", "f32", "--seed", "11"])
    served = scratch / "served-linked.gguf"
    cache = scratch / "cache-linked"
    shutil.copyfile(first, served)
    s = Server(wgllm, served, "--parallel", "2", "--alias", "m", "--model-cache", cache, name="linked")
    try:
        entries = list(cache.glob("*.gguf"))
        assert len(entries) == 1 and entries[0].stat().st_nlink == 2  # linked, not copied
        text_a = completion(s)
        with open(served, "r+b") as f:
            f.truncate(0)
        assert entries[0].stat().st_size == 0
        assert_serves(s, text_a)
        s.signal(signal.SIGHUP)  # the empty file cannot be loaded: the old model stays
        wait_for_reloads(s, 1, result="error")
        assert_serves(s, text_a)
    finally:
        assert s.stop() == 0


def test_truncated_while_a_request_runs(wgllm, synth_small, scratch):
    """A streamed generation in flight when the file is truncated runs to its end."""
    served = scratch / "served-inflight.gguf"
    shutil.copyfile(synth_small, served)
    s = Server(wgllm, served, "--parallel", "1", "--alias", "m", name="inflight")
    try:
        body = json.dumps(dict(BODY, max_tokens=400, stream=True)).encode()
        req = urllib.request.Request(s.url + "/v1/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        events = []
        with urllib.request.urlopen(req, timeout=300) as r:
            for raw in r:
                line = raw.decode().strip()
                if not line.startswith("data: "):
                    continue
                events.append(line[6:])
                if len(events) == 2:  # generating: truncate under it
                    with open(served, "r+b") as f:
                        f.truncate(0)
        assert events[-1] == "[DONE]", events[-3:]
        assert len(events) > 100  # the whole generation came, token by token
        assert s.proc.poll() is None, s.log()
    finally:
        assert s.stop() == 0
