#!/usr/bin/env bash
# Restart-to-ready with a cold vs a warm shared-memory model cache: `wgllm cache-model` (copy or
# verify) followed by a model load and one generated token (`wgllm run -n 1`), each timed.
#   bench/model_cache_restart.sh [CACHE_DIR] [REPS]
# Model: `wgllm synth --preset tinyllama --type q8_0` (~1.2 GB) in build/bench-models/. Cold: the
# cache entry is removed and the page cache dropped (needs root) before each run. Warm: the entry
# from the previous run is reused (its XXH64 is verified on every start).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${WGLLM_BIN:-build/wgllm}
cache=${1:-/dev/shm/wgllm-bench-cache}
reps=${2:-3}
model=build/bench-models/tinyllama-q8_0.gguf
mkdir -p build/bench-models
[ -f "$model" ] || "$bin" synth --preset tinyllama --type q8_0 --seed 1 "$model" >/dev/null
echo "model: $model ($(stat -c %s "$model") bytes); cache: $cache; $(nproc) cores"

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || echo "(page cache not dropped: not root)"; }
now() { date +%s.%N; }
one_start() { # prints: cache seconds, load+1 token seconds, total
  local t0 t1 t2 path
  t0=$(now)
  path=$("$bin" cache-model --dir "$cache" "$model" 2>/dev/null)
  t1=$(now)
  "$bin" run -m "$path" -p "Hello" -n 1 --temp 0 -t "$(nproc)" --backend cpu >/dev/null 2>&1
  t2=$(now)
  awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "%.2f %.2f %.2f\n", b - a, c - b, c - a }'
}

printf "%-5s %-4s %10s %12s %10s\n" kind rep cache_s load_1tok_s total_s
for r in $(seq "$reps"); do
  rm -rf "$cache"
  drop_caches
  printf "%-5s %-4s %10s %12s %10s\n" cold "$r" $(one_start)
done
for r in $(seq "$reps"); do
  printf "%-5s %-4s %10s %12s %10s\n" warm "$r" $(one_start)
done
rm -rf "$cache"
