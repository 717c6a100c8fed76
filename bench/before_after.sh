#!/usr/bin/env bash
# Speed of two builds in one session, alternated so that clocks and heat treat both alike:
#   git archive -o base.tar BASE_COMMIT            # on a machine with the repository
#   bench/before_after.sh base.tar [REPS]          # from the repository root (needs .deps/wgpu)
# Builds base.tar into build-base/ and the working tree into build/, makes the two synthetic
# models, then runs, REPS times (default 3) and in turn for each build:
#   wgllm bench -m l7b.gguf --backend webgpu -p 512 -n 128 --reps 3 --parallel $PARALLEL
#   wgllm bench -m tinyllama.gguf --backend cpu -t 8 -p 64 -n 32 --reps 3
# Environment: PARALLEL (stream counts, default 1,8); KQUANT=1 also runs a TinyLlama-shaped Q4_K_M
# and the TinyLlama Q4_0 file on WebGPU (-p 512 -n 128); CPU_ROUNDS=0 skips the CPU rounds.
set -euo pipefail
base_tar=$1
reps=${2:-3}
models=${MODELS_DIR:-/tmp}
parallel=${PARALLEL:-1,8}
kquant=${KQUANT:-0}
cpu_rounds=${CPU_ROUNDS:-$reps}
jobs=$(nproc)
mkdir -p build-base/src
tar -xf "$base_tar" -C build-base/src
ln -sfn "$PWD/.deps" build-base/src/.deps
for pair in "build-base/src build-base/out" ". build"; do
  set -- $pair
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$2" -j"$jobs" --target wgllm >/dev/null
done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader 2>/dev/null || true
[ -f "$models/l7b.gguf" ] || build/wgllm synth --preset llama2-7b --type q4_0 --seed 1 "$models/l7b.gguf" 2>/dev/null
[ -f "$models/tinyllama.gguf" ] || build/wgllm synth --preset tinyllama --type q4_0 --seed 1 "$models/tinyllama.gguf" 2>/dev/null
if [ "$kquant" = 1 ] && [ ! -f "$models/tinyllama-q4_k_m.gguf" ]; then
  build/wgllm synth --preset tinyllama --type f16 --seed 1 "$models/tinyllama-f16.gguf" 2>/dev/null
  build/wgllm quantize "$models/tinyllama-f16.gguf" "$models/tinyllama-q4_k_m.gguf" q4_k_m >/dev/null 2>&1
fi
for rep in $(seq "$reps"); do
  for b in build-base/out/wgllm build/wgllm; do
    echo "=== $b webgpu, round $rep"
    "$b" bench -m "$models/l7b.gguf" --backend webgpu -p 512 -n 128 --reps 3 --parallel "$parallel" 2>&1 | grep '^|.*[0-9]'
    if [ "$kquant" = 1 ]; then
      for m in tinyllama tinyllama-q4_k_m; do
        "$b" bench -m "$models/$m.gguf" --backend webgpu -p 512 -n 128 --reps 3 2>&1 | grep '^|.*[0-9]'
      done
    fi
  done
done
for rep in $(seq "$cpu_rounds"); do
  for b in build-base/out/wgllm build/wgllm; do
    echo "=== $b cpu, round $rep"
    "$b" bench -m "$models/tinyllama.gguf" --backend cpu -t 8 -p 64 -n 32 --reps 3 2>&1 | grep '^|.*[0-9]'
  done
done
