#!/usr/bin/env bash
# Builds llama.cpp's CPU reference for the tests: libllama (ggml's CPU backend only) from the
# tree scripts/fetch-llama-cpp.sh unpacks, plus tests/llama_cpp/llama_cpp_greedy.c and llama_cpp_tokenize.c, into
# .deps/llama-cpp-build-<version> (or $WGLLM_LLAMA_CPP_BUILD). Idempotent: a second run is an
# incremental no-op build. Prints the path of llama_cpp_greedy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
src=$(scripts/fetch-llama-cpp.sh)
version=$(sed -n 's/^llama-cpp-python==\([0-9.]*\).*/\1/p' tests/requirements-llama-cpp.txt)
build=${WGLLM_LLAMA_CPP_BUILD:-$root/.deps/llama-cpp-build-$version}
# a build folder configured from another checkout cannot be reused by cmake
if [ -f "$build/CMakeCache.txt" ] &&
   ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$root/tests/llama_cpp" "$build/CMakeCache.txt"; then
    rm -rf "$build"
fi
# configured on every run (seconds): a cached build then learns of targets added since
cmake -S tests/llama_cpp -B "$build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CPP_SRC="$src" >/dev/null
cmake --build "$build" -j"$(nproc)" --target llama_cpp_greedy llama_cpp_tokenize >/dev/null
echo "$build/llama_cpp_greedy"
