#!/usr/bin/env bash
# Downloads the pinned llama-cpp-python source release (tests/requirements-llama-cpp.txt,
# hash-checked) and unpacks it into .deps/llama-cpp-python-<version>/. Idempotent.
# Prints the path of its vendor/llama.cpp tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
req=tests/requirements-llama-cpp.txt
version=$(sed -n 's/^llama-cpp-python==\([0-9.]*\).*/\1/p' "$req")
dest=.deps/llama-cpp-python-$version
if [ ! -f "$dest/vendor/llama.cpp/convert_hf_to_gguf.py" ]; then
    pip=${PIP:-.venv/bin/pip}
    dl=.deps/dl
    mkdir -p "$dl"
    "$pip" download -q --disable-pip-version-check --no-deps --no-binary :all: \
        --require-hashes -r "$req" -d "$dl" >&2
    rm -rf "$dest.tmp"
    mkdir -p "$dest.tmp"
    tar -xzf "$dl/llama_cpp_python-$version.tar.gz" -C "$dest.tmp" --strip-components=1
    rm -rf "$dest"
    mv "$dest.tmp" "$dest"
fi
echo "$root/$dest/vendor/llama.cpp"
