#!/usr/bin/env bash
# Installs the Debian 12 packages wgllm needs to build and test, if any are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh

packages=(build-essential cmake clang libclang-rt-14-dev pkg-config python3 python3-venv
          libcjson-dev libmicrohttpd-dev
          libgrpc-dev libprotobuf-c-dev protobuf-c-compiler
          prometheus wrk curl)
ensure_packages "${packages[@]}"
# Deployment tests (tests/python/test_deploy_*.py): promtool, and buildah/podman/debootstrap to
# build and run the container image without a registry; git lists the files of its build context.
ensure_packages prometheus buildah podman debootstrap git
# The playground's browser test (tests/python/test_webui_browser.py): headless chromium driven
# through chromium-driver by Selenium, with a font for its screenshots.
ensure_packages chromium chromium-driver fonts-dejavu-core
# The wasm32-wasi build of the engine (scripts/build-wasm.sh; llvm-ar from llvm-14) and its test
# (tests/python/test_wasm_cpu.py): lld's wasm-ld, wasi-libc, compiler-rt's wasm32 builtins,
# Node.js for its WASI runtime.
ensure_packages lld llvm-14 wasi-libc libclang-rt-14-dev-wasm32 nodejs
# The aarch64 cross build and its run under qemu (scripts/cross-arm64.sh): Debian's cross
# compiler and qemu-user, and the arm64 builds of the two libraries (multiarch).
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: the arm64 architecture is not enabled; run as root: dpkg --add-architecture arm64" >&2
    exit 1
  fi
  dpkg --add-architecture arm64
  apt-get update -qq
fi
ensure_packages gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user file \
                libcjson-dev:arm64 libmicrohttpd-dev:arm64
