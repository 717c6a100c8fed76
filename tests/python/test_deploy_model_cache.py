"""`wgllm cache-model` end to end: a copy killed with SIGKILL never leaves a usable partial
file, the next start completes a correct copy; concurrent starters share one copy."""

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

SIZE = 48 * 1024 * 1024  # 12 copy chunks of 4 MiB
DELAY_US = "150000"      # per chunk: the copy takes ~1.8 s, time enough to kill it midway


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@pytest.fixture(scope="module")
def model(scratch):
    """A 48 MiB file: random head and tail around a sparse middle."""
    path = scratch / "cache-src.gguf"
    with open(path, "wb") as f:
        f.write(os.urandom(5 * 1024 * 1024 + 17))
        f.seek(SIZE - 3 * 1024 * 1024)
        f.write(os.urandom(3 * 1024 * 1024))
    assert path.stat().st_size == SIZE
    return path


def cache_cmd(wgllm, cache_dir, model):
    # --no-link: the scratch folder and the cache folder may share a filesystem.
    return [str(wgllm.binary), "cache-model", "--dir", str(cache_dir), "--no-link", str(model)]


def entry_files(cache_dir):
    return sorted(p.name for p in Path(cache_dir).iterdir())


def test_killed_copy_is_never_served(wgllm, scratch, model):
    cache_dir = scratch / "cache-kill"
    env = dict(os.environ, WGLLM_CACHE_COPY_CHUNK_DELAY_US=DELAY_US)
    proc = subprocess.Popen(cache_cmd(wgllm, cache_dir, model), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = list(cache_dir.glob("*.partial")) if cache_dir.is_dir() else []
        if found and found[0].stat().st_size >= 8 * 1024 * 1024:
            partial = found[0]
            break
        assert proc.poll() is None, "the copy finished before it could be killed"
        time.sleep(0.02)
    assert partial is not None, "no partial copy appeared"
    # Mid-copy: neither the published file nor its sidecar exists yet.
    assert not list(cache_dir.glob("*.gguf")) and not list(cache_dir.glob("*.meta"))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    size_at_kill = partial.stat().st_size
    assert 0 < size_at_kill < SIZE
    assert not list(cache_dir.glob("*.gguf")), "a killed copy published a file"

    # Restart (no delay): a complete, correct copy at the published path.
    p = wgllm.ok("cache-model", "--dir", cache_dir, "--no-link", model)
    cached = Path(p.stdout.decode().strip())
    assert cached.parent == cache_dir.resolve() and cached.suffix == ".gguf"
    assert b"copied" in p.stderr
    assert cached.stat().st_size == SIZE
    assert sha256(cached) == sha256(model)
    assert not list(cache_dir.glob("*.partial"))

    # And the next start reuses it.
    p = wgllm.ok("cache-model", "--dir", cache_dir, "--no-link", model)
    assert p.stdout.decode().strip() == str(cached) and b"reused" in p.stderr


def test_corrupted_copy_is_rebuilt(wgllm, scratch, model):
    cache_dir = scratch / "cache-corrupt"
    cached = Path(wgllm.ok("cache-model", "--dir", cache_dir, "--no-link", model).stdout.decode().strip())
    with open(cached, "r+b") as f:  # flip one byte in the middle of the cached copy
        f.seek(SIZE // 2)
        byte = f.read(1)
        f.seek(SIZE // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    p = wgllm.ok("cache-model", "--dir", cache_dir, "--no-link", model)
    assert b"copied" in p.stderr
    assert sha256(cached) == sha256(model)


def test_concurrent_starters_share_one_copy(wgllm, scratch, model):
    """Two pods on one node starting together: one copies, the other waits and reuses."""
    cache_dir = scratch / "cache-concurrent"
    env = dict(os.environ, WGLLM_CACHE_COPY_CHUNK_DELAY_US="20000")
    procs = [subprocess.Popen(cache_cmd(wgllm, cache_dir, model), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [o[1] for o in outs]
    paths = {o[0].decode().strip() for o in outs}
    assert len(paths) == 1
    actions = sorted(o[1].decode().split(": ")[1].split()[0] for o in outs)
    assert actions == ["copied", "reused"]
    cached = Path(paths.pop())
    assert sha256(cached) == sha256(model)
    assert [n for n in entry_files(cache_dir) if not n.endswith((".gguf", ".meta", ".lock"))] == []


def test_cli_errors(wgllm, scratch, model):
    p = wgllm.run("cache-model", model)
    assert p.returncode == 2 and p.stderr.startswith(b"wgllm cache-model: error: --dir")
    p = wgllm.run("cache-model", "--dir", scratch / "c", "--bogus", model)
    assert p.returncode == 2 and b"unknown option" in p.stderr
    p = wgllm.run("cache-model", "--dir", scratch / "c", scratch / "missing.gguf")
    assert p.returncode == 1
    assert p.stderr.startswith(b"wgllm cache-model: error: cannot open model")
    assert p.stderr.count(b"\n") == 1


def test_serve_with_model_cache(wgllm, shared):
    """`wgllm serve --model-cache DIR` serves from a verified copy in a tmpfs; a corrupted copy
    is detected at the next start and rebuilt, and the answers stay the same."""
    import tempfile

    from server_util import Server, post

    aidreams = shared / "models" / "aidreams260K-f32.gguf"
    shm = Path("/dev/shm")
    assert shm.is_dir(), "/dev/shm (a tmpfs) is needed for the model cache test"
    with tempfile.TemporaryDirectory(dir=shm, prefix="wgllm-cache-test-") as cache_dir:
        body = {"model": "m", "prompt": "Once upon a time", "max_tokens": 12, "temperature": 0}
        texts = []
        for attempt in range(2):
            srv = Server(wgllm, aidreams, "--model-cache", cache_dir, "--alias", "m", name=f"cache{attempt}")
            try:
                status, _, obj = post(srv.url, "/v1/completions", body)
                assert status == 200, obj
                texts.append(obj["choices"][0]["text"])
            finally:
                srv.stop()
            copies = [p for p in Path(cache_dir).iterdir() if p.stat().st_size == aidreams.stat().st_size]
            assert len(copies) == 1, list(Path(cache_dir).iterdir())
            assert sha256(copies[0]) == sha256(aidreams)
            assert copies[0].stat().st_ino != aidreams.stat().st_ino  # a copy, not a link
            if attempt == 0:  # flip one byte in the middle of the cached copy
                with open(copies[0], "r+b") as f:
                    f.seek(aidreams.stat().st_size // 2)
                    b = f.read(1)
                    f.seek(-1, os.SEEK_CUR)
                    f.write(bytes([b[0] ^ 0xFF]))
        assert texts[0] == texts[1] and texts[0]
