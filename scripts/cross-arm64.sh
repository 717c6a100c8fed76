#!/usr/bin/env bash
# Cross-builds wgllm for aarch64 (library, CLI, the CPU int8 kernel tests; WebGPU off) with
# cmake/toolchain-aarch64-linux-gnu.cmake and runs under qemu-aarch64: the Q8_0-style kernel
# test on a CPU with the Armv8.2 dot product (-cpu max: levels scalar, neon, dotprod) and on
# one without (-cpu cortex-a57: scalar, neon), then `wgllm run` greedy on aidreams260K in q8_0 and
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

# The int8 kernel test of the Q8_0-style types, the types with aarch64 kernels of their own:
# every level against the scalar kernels (--kernels-only: its backend part starts 80 thread
# pools, minutes under qemu; the runs below take the backend through every step instead). The
# K-quants run the portable kernels at every aarch64 level; their tests (test_cpu_q8k_dot,
# test_cpu_q8k_x16) build here but quantize too slowly under qemu to run on every suite.
tests_max=(test_cpu_q8_dot)
tests_a57=(test_cpu_q8_dot)
cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DWGLLM_WEBGPU=OFF -DWGLLM_GRPC=OFF >/dev/null
cmake --build "$build" -j"$jobs" --target wgllm "${tests_max[@]}" test_cpu_q8k_dot test_cpu_q8k_x16 >/dev/null
file -b "$build/wgllm" | grep -q 'ARM aarch64' || fail "$build/wgllm is not an aarch64 binary"

qemu() { # CPU PROGRAM ARGS...
  local cpu=$1; shift
  qemu-aarch64 -L "$sysroot" -cpu "$cpu" "$@"
}

run_tests() { # CPU EXPECTED_LEVELS TEST... (prints one line per test; fails if any failed)
  local cpu=$1 want=$2 rc=0 t; shift 2
  for t in "$@"; do
    if (cd "$build" && WGLLM_SHARED=$shared qemu "$cpu" "./$t" --kernels-only) >"$build/$t.$cpu.log" 2>&1; then
      echo "arm64 $cpu $t: ok"
    else
      echo "arm64 $cpu $t: FAILED ($build/$t.$cpu.log)"; tail -n 30 "$build/$t.$cpu.log"; rc=1
    fi
  done
  local levels; levels=$(sed -n 's/^int8 kernel levels run here: //p' "$build/test_cpu_q8_dot.$cpu.log")
  [ "$levels" = "$want" ] || { echo "arm64 $cpu: levels '$levels', expected '$want'"; rc=1; }
  return $rc
}

# the two CPU models side by side (two cores)
status=0
run_tests max "scalar neon dotprod" "${tests_max[@]}" >"$build/tests.max.out" 2>&1 & pid_max=$!
run_tests cortex-a57 "scalar neon" "${tests_a57[@]}" >"$build/tests.a57.out" 2>&1 & pid_a57=$!
wait $pid_max || status=1
wait $pid_a57 || status=1
cat "$build/tests.max.out" "$build/tests.a57.out"

# Greedy ids of the CLI on quantized models: aarch64 (each CPU model) against the native build.
work=$build/cross-models
mkdir -p "$work"
ids_of() { # JSON lines of `wgllm run --json` -> the ids on one line
  sed -n 's/^{"id":\([0-9]*\),.*/\1/p' | tr '\n' ' '
}
for type in q8_0 q4_0; do
  gguf=$work/aidreams260K-$type.gguf
  "$native" quantize "$model" "$gguf" "$type" --pure >"$work/quantize-$type.log" 2>&1 ||
    { tail -n 5 "$work/quantize-$type.log"; fail "native quantize to $type failed"; }
  # one thread on both sides: the same split of every sum
  args=(run -m "$gguf" -p "Once upon a time" -n 48 --temp 0 --json --backend cpu -t 1)
  want=$("$native" "${args[@]}" 2>/dev/null | ids_of)
  [ -n "$want" ] || { echo "native $type: no ids"; status=1; continue; }
  # the best level of each CPU model (dotprod, neon) and the neon level forced on the first
  for run in max: cortex-a57: max:neon; do
    cpu=${run%%:*} isa=${run#*:}
    got=$(WGLLM_CPU_ISA=$isa qemu "$cpu" "$build/wgllm" "${args[@]}" 2>"$build/run-$type-$cpu.err" | ids_of)
    if [ "$got" = "$want" ]; then
      echo "arm64 $cpu${isa:+ WGLLM_CPU_ISA=$isa} wgllm run $type: ids equal the native build's"
    else
      echo "arm64 $cpu${isa:+ WGLLM_CPU_ISA=$isa} wgllm run $type: ids differ"; echo "  native: $want"; echo "  arm64:  $got"
      tail -n 5 "$build/run-$type-$cpu.err"; status=1
    fi
  done
done
exit $status
