"""The container image's sources: hadolint on deploy/Dockerfile (and a broken copy that must
fail), the entrypoint's mapping of WGLLM_* variables to `wgllm serve` flags, and the
HEALTHCHECK script against a live and a failing /health."""

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
HADOLINT = Path(sys.executable).parent / "hadolint"


def hadolint(path):
    return subprocess.run([HADOLINT, "--config", DEPLOY / ".hadolint.yaml", path],
                          capture_output=True, text=True, timeout=60)


def test_hadolint_passes():
    p = hadolint(DEPLOY / "Dockerfile")
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("old,new,rule", [
    ("USER 10001:10001", "USER root", "DL3002"),                        # runs as root
    (" && rm -rf /var/lib/apt/lists/* \\\n && rm -f", " && rm -f", "DL3009"),  # apt lists kept
    ("apt-get install -y --no-install-recommends \\\n      libcjson1", "apt-get install -y \\\n      libcjson1",
     "DL3015"),
])
def test_hadolint_rejects_broken_copy(tmp_path, old, new, rule):
    text = (DEPLOY / "Dockerfile").read_text()
    assert old in text
    bad = tmp_path / "Dockerfile"
    bad.write_text(text.replace(old, new, 1))
    p = hadolint(bad)
    assert p.returncode != 0 and rule in p.stdout, p.stdout


def test_dockerfile_shape():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2 and "AS build" in stages[0] and "AS runtime" in stages[1]
    build, runtime = text.split("AS runtime", 1)
    for needed in ("libgrpc29", "libprotobuf-c1", "EXPOSE 8080 50051", "WGLLM_GRPC_PORT=50051", "libvulkan1", "libx11-6", "libxext6", "libegl1", "apt-get clean", "COPY --from=build /opt/wgllm/", "HEALTHCHECK",
                   "USER 10001", "WGLLM_WEBGPU_LIB=/opt/wgllm/wgpu/lib/libwgpu_native.so",
                   "NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics"):
        assert needed in runtime, needed
    # The image carries the Vulkan loader and the libraries NVIDIA's Vulkan driver needs, not a
    # driver: a GPU node mounts its own; lavapipe (with LLVM) would be most of the image and is
    # never picked over the CPU backend.
    for unwanted in ("build-essential", "mesa-vulkan-drivers", "libvulkan-dev"):
        assert unwanted not in runtime, unwanted
    # What the runtime stage copies is stripped and has no headers.
    for needed in ("install -D -s ", "strip --strip-unneeded /opt/wgllm/wgpu/lib/libwgpu_native.so",
                   "rm -r /opt/wgllm/wgpu/include"):
        assert needed in build, needed


@pytest.fixture
def fake_wgllm(tmp_path):
    """A `wgllm` on PATH that prints its arguments, one per line."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "wgllm"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    fake.chmod(0o755)
    return bindir


def entrypoint(bindir, env, *args):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WGLLM_")}
    clean.update(env, PATH=f"{bindir}:{clean['PATH']}")
    return subprocess.run([DEPLOY / "docker" / "entrypoint.sh", *args], env=clean,
                          capture_output=True, text=True, timeout=30)


def test_entrypoint_maps_environment_to_flags(fake_wgllm):
    p = entrypoint(fake_wgllm, {
        "WGLLM_MODEL": "/models/my model.gguf", "WGLLM_HOST": "0.0.0.0", "WGLLM_PORT": "8080",
        "WGLLM_GRPC_PORT": "50051",
        "WGLLM_BACKEND": "webgpu", "WGLLM_PARALLEL": "8", "WGLLM_CTX": "4096", "WGLLM_MAX_QUEUE": "64",
        "WGLLM_DRAIN_TIMEOUT": "30", "WGLLM_MODEL_CACHE": "/cache", "WGLLM_API_KEY": "s3cret",
    }, "--extra", "x y")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "serve", "-m", "/models/my model.gguf", "--host", "0.0.0.0", "--port", "8080", "--grpc-port", "50051",
        "--backend", "webgpu",
        "--parallel", "8", "--ctx", "4096", "--max-queue", "64", "--drain-timeout", "30",
        "--model-cache", "/cache", "--api-key", "s3cret", "--extra", "x y"]


def test_entrypoint_leaves_unset_flags_to_the_server(fake_wgllm):
    p = entrypoint(fake_wgllm, {"WGLLM_MODEL": "/m.gguf", "WGLLM_CTX": ""})
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["serve", "-m", "/m.gguf"]


def test_entrypoint_runs_other_commands_and_needs_a_model(fake_wgllm):
    p = entrypoint(fake_wgllm, {}, "wgllm", "devices")
    assert p.returncode == 0 and p.stdout.splitlines() == ["devices"]
    p = entrypoint(fake_wgllm, {})
    assert p.returncode == 2 and "WGLLM_MODEL is not set" in p.stderr and p.stdout == ""


class Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (http.server's naming)
        code = self.status if self.path == "/health" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status,expect_rc", [(200, 0), (503, 1)])
def test_healthcheck_script(status, expect_rc):
    handler = type("H", (Health,), {"status": status})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = dict(os.environ, WGLLM_PORT=str(server.server_address[1]))
        p = subprocess.run([DEPLOY / "docker" / "healthcheck.sh"], env=env, capture_output=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert p.returncode == expect_rc, p.stderr


def test_healthcheck_fails_without_server():
    with http.server.HTTPServer(("127.0.0.1", 0), Health) as s:
        port = s.server_address[1]  # bound then closed: nothing listens there afterwards
    env = dict(os.environ, WGLLM_PORT=str(port))
    p = subprocess.run([DEPLOY / "docker" / "healthcheck.sh"], env=env, capture_output=True, timeout=30)
    assert p.returncode != 0
