"""Builds the container image with buildah (deploy/build-image.sh: a local Debian 12 base made
with debootstrap when no registry is reachable, chroot isolation) and runs it
(deploy/smoke-image.sh --serve: non-root user, wgpu-native and the Vulkan loader found, tokens
generated with the CPU fallback, binaries stripped, no compilers, `wgllm serve` started through the
entrypoint answers /health, the HEALTHCHECK script and a completion). The image must stay under
200 MB (it was 503 MB with Mesa's lavapipe and unstripped binaries). Minutes on a cold machine
(base image and layers are cached afterwards)."""

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMAGE = "localhost/wgllm-test:latest"


def test_image_builds_and_runs():
    env = dict(os.environ, WGLLM_IMAGE=IMAGE)
    build = subprocess.run([REPO / "deploy" / "build-image.sh"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=1500)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    assert f"built {IMAGE}" in build.stdout
    size = int(subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", IMAGE],
                              capture_output=True, text=True, check=True).stdout)
    assert 50_000_000 < size <= 200_000_000, size
    smoke = subprocess.run([REPO / "deploy" / "smoke-image.sh", "--serve", IMAGE], capture_output=True, text=True,
                           timeout=300)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "smoke: CLI checks passed" in smoke.stdout
    assert "smoke: serve checks passed" in smoke.stdout
