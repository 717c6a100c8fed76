#!/usr/bin/env bash
# Cross-builds wgllm for aarch64 (library, CLI, the CPU kernel tests; WebGPU off) with
# cmake/toolchain-aarch64-linux-gnu.cmake and runs them under qemu-aarch64: the kernel tests
# on a CPU with the Armv8.2 dot product (-cpu max: levels scalar, neon, dotprod) and on one
# without (-cpu cortex-a57: scalar, neon), then `wgllm run` greedy on aidreams260K in q8_0 and
# q4_0 on both, whose token ids must equal the native build's. Installs nothing: the cross
# compiler, the arm64 libraries and qemu-user come from scripts/install-deps.sh; a missing one
# is an error, not a skip.
#   usage: scripts/cross-arm64.sh [BUILD_DIR [NATIVE_WGLLM]]
#   defaults: build-arm64, build/wgllm; WGLLM_SHARED: reference data (default ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-build-arm64}
native=${2:-build/wgllm}
shared=${WGLLM_SHARED:-$root/../shared}
sysroot=/usr/aarch64-linux-gnu
jobs=${JOBS:-2}

fail() { echo "cross-arm64: $*" >&2; exit 1; }
for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
  command -v "$tool" >/dev/null || fail "$tool not found: run scripts/install-deps.sh (as root)"
done
for pc in libcjson libmicrohttpd; do
  [ -f "/usr/lib/aarch64-linux-gnu/pkgconfig/$pc.pc" ] || fail "arm64 $pc not installed: run scripts/install-deps.sh (as root)"
done
[ -x "$native" ] || fail "native wgllm not found at $native (build it first)"
model=$shared/models/aidreams260K-f32.gguf
[ -f "$model" ] || fail "$model not found (set WGLLM_SHARED)"

tests=(test_cpu_q8_dot test_cpu_q8k_dot test_cpu_q8_gemm test_cpu_q8k_x16)
cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DWGLLM_WEBGPU=OFF >/dev/null
cmake --build "$build" -j"$jobs" --target wgllm "${tests[@]}" >/dev/null
file -b "$build/wgllm" | grep -q 'ARM aarch64' || fail "$build/wgllm is not an aarch64 binary"

qemu() { # CPU PROGRAM ARGS...
  local cpu=$1; shift
  qemu-aarch64 -L "$sysroot" -cpu "$cpu" "$@"
}

# The kernel tests, on each CPU model; the levels they report show the run-time choice.
status=0
for cpu in max cortex-a57; do
  want="scalar neon dotprod"
  [ "$cpu" = cortex-a57 ] && want="scalar neon"
  for t in "${tests[@]}"; do
    log=$build/$t.$cpu.log
    if (cd "$build" && WGLLM_SHARED=$shared qemu "$cpu" "./$t") >"$log" 2>&1; then
      echo "arm64 $cpu $t: ok"
    else
      echo "arm64 $cpu $t: FAILED"; tail -n 30 "$log"; status=1
    fi
  done
  levels=$(sed -n 's/^int8 kernel levels run here: //p' "$build/test_cpu_q8_dot.$cpu.log")
  [ "$levels" = "$want" ] || { echo "arm64 $cpu: levels '$levels', expected '$want'"; status=1; }
done

# Greedy ids of the CLI on quantized models: aarch64 (each CPU model) against the native build.
work=$build/cross-models
mkdir -p "$work"
ids_of() { # JSON lines of `wgllm run --json` -> the ids on one line
  sed -n 's/^{"id":\([0-9]*\),.*/\1/p' | tr '\n' ' '
}
for type in q8_0 q4_0; do
  gguf=$work/aidreams260K-$type.gguf
  "$native" quantize "$model" "$gguf" "$type" --pure >/dev/null
  args=(run -m "$gguf" -p "Once upon a time" -n 48 --temp 0 --json --backend cpu -t 2)
  want=$("$native" "${args[@]}" 2>/dev/null | ids_of)
  [ -n "$want" ] || { echo "native $type: no ids"; status=1; continue; }
  for cpu in max cortex-a57; do
    got=$(qemu "$cpu" "$build/wgllm" "${args[@]}" 2>"$build/run-$type-$cpu.err" | ids_of)
    if [ "$got" = "$want" ]; then
      echo "arm64 $cpu wgllm run $type: ids equal the native build's"
    else
      echo "arm64 $cpu wgllm run $type: ids differ"; echo "  native: $want"; echo "  arm64:  $got"
      tail -n 5 "$build/run-$type-$cpu.err"; status=1
    fi
  done
done
exit $status
