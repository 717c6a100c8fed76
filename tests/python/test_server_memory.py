"""KV caches that cannot fit in host memory are refused at start, with the sizes: `wgllm
serve --backend cpu` (all --parallel caches) and `wgllm run -c`. The model has a training
context of 16,777,216 tokens and 64 layers of 32-wide K and V: 256 GiB of f32 cache per
sequence, more than any host has, in 2 GiB buffers that a lazy allocator hands out."""

import re
import subprocess
import time

import gguf
import pytest

from conftest import THREADS
from server_util import Server, free_port, post

HUGE_CTX = 16777216
KV_BYTES = 2 * 64 * 32 * HUGE_CTX * 4  # K and V, 64 layers, kv_dim 32, f32


@pytest.fixture(scope="module")
def huge_ctx_model(synth):
    path = synth("huge-ctx", ["--dim", "64", "--layers", "64", "--heads", "2", "--kv-heads", "1", "--ffn", "64",
                              "--vocab", "300", "--ctx", "1048576", "--type", "f32", "--seed", "5"])
    reader = gguf.GGUFReader(str(path), "r+")  # synth stops at 2^20: raise it in place
    field = reader.fields["llama.context_length"]
    field.parts[-1][0] = HUGE_CTX
    del reader
    assert gguf.GGUFReader(str(path)).fields["llama.context_length"].parts[-1][0] == HUGE_CTX
    return path


def test_serve_refuses_caches_that_do_not_fit(wgllm, huge_ctx_model):
    cmd = [str(wgllm.binary), "serve", "-m", str(huge_ctx_model), "--backend", "cpu", "--parallel", "4",
           "--host", "127.0.0.1", "--port", str(free_port()), "-t", THREADS]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the server started with 1 TiB of KV caches instead of refusing them")
    err = err.decode(errors="replace")
    assert proc.returncode != 0, err
    assert time.monotonic() - start < 30
    assert "--parallel 4 x --ctx 16777216" in err, err
    m = re.search(r"need 1\.0 TiB of host memory \((\d+) bytes; a KV cache takes 256\.0 GiB\), "
                  r"but only .* \((\d+) bytes\) is available \(", err)
    assert m, err
    assert 4 * KV_BYTES <= int(m.group(1)) < 4 * KV_BYTES * 1.01  # the caches and a few buffers
    assert int(m.group(2)) < int(m.group(1))


def test_serve_starts_with_a_modest_context(wgllm, huge_ctx_model):
    """--ctx 2048 fits: the server starts with its four caches (128 MiB) committed, not merely
    reserved, so the memory they need was there at start."""
    s = Server(wgllm, huge_ctx_model, "--parallel", "4", "--ctx", "2048", "--alias", "m", name="modest")
    try:
        kv_kib = 4 * KV_BYTES // (HUGE_CTX // 2048) // 1024
        assert s.rss_kib() >= kv_kib, (s.rss_kib(), kv_kib)
        status, _, obj = post(s.url, "/v1/completions", {"model": "m", "prompt": "hi", "max_tokens": 4,
                                                         "temperature": 0, "ignore_eos": True})
        assert status == 200 and obj["usage"]["completion_tokens"] == 4, obj
    finally:
        assert s.stop() == 0


@pytest.mark.parametrize("ctx_args", [["-c", str(HUGE_CTX)], []], ids=["c-huge", "training-context"])
def test_run_refuses_a_context_that_does_not_fit(wgllm, huge_ctx_model, ctx_args):
    p = wgllm.run("run", "-m", huge_ctx_model, "--backend", "cpu", "-t", THREADS, "-p", "hi", "-n", "2", *ctx_args)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 1, err
    assert f"1 context of {HUGE_CTX} tokens needs" in err and "256.0 GiB" in err and "is available (" in err, err
