#!/usr/bin/env bash
# Installs the Debian 12 packages wgllm needs to build and test, if any are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh

packages=(build-essential cmake clang libclang-rt-14-dev pkg-config python3 python3-venv
          libcjson-dev libmicrohttpd-dev
          prometheus wrk curl)
ensure_packages "${packages[@]}"
