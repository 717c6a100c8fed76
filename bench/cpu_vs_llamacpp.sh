#!/usr/bin/env bash
# wgllm's CPU backend against llama.cpp's llama-bench, on the same files, machine and thread counts.
#   bench/cpu_vs_llamacpp.sh [options]        (from anywhere; run with -h for the options)
# 1. builds llama-bench (CPU only) from the pinned llama-cpp-python sdist's vendor tree
#    (scripts/fetch-llama-cpp.sh) into .deps/llama-bench-<version>[-noamx], cached per machine;
#    llama.cpp's own defaults (OpenMP threads, flash attention "auto", weight repacking) with
#    GGML_NATIVE=ON, so it uses every instruction set of this CPU;
# 2. builds wgllm in Release into build-peer/ (portable: run-time kernel dispatch; --native for
#    -DWGLLM_NATIVE=ON), CPU only;
# 3. makes the models with `wgllm synth` (TinyLlama-shaped Q4_0, Q8_0, Q4_K_M; 7B-shaped Q4_0);
# 4. runs pp512, tg128 and tg128 at depth 2048 with both engines, interleaved per round, and
#    prints a markdown record (machine, commits, commands, table of tok/s and the ratio
#    wgllm / llama.cpp, truncated to 2 decimals; wgllm's peak RSS) ready for bench/RESULTS.md.
# A run too long for one sitting can be split (--only, -t) into several --out folders:
#    python3 bench/peer_table.py OUT1/raw.tsv OUT2/raw.tsv   makes one table of them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage() {
    cat <<'USAGE'
usage: bench/cpu_vs_llamacpp.sh [options]
  --models-dir DIR  where the synthetic models are made and kept ($MODELS_DIR; default models/peer)
  --out DIR         raw results and the record ($OUT_DIR; default build-peer/results-DATE)
  -t LIST           thread counts, comma separated (default: the physical core count on a machine
                    of up to 2 cores; else 8 and 16 where below the physical core count, and that count)
  --only LIST       models, comma separated, of: tinyllama-q4_0 tinyllama-q8_0 tinyllama-q4_k_m
                    llama2-7b-q4_0 (default: all)
  --rounds R        interleaved rounds, engines alternating who goes first (default 3)
  --reps K          repetitions inside each engine process: llama-bench -r K, wgllm bench --reps K
                    (default 3); a number is the median of K, then the median over the rounds
  -p N              prompt tokens of the pp test (default 512)
  -n N              generated tokens of the tg tests (default 128)
  -d N              depth of the tg-at-depth test, TinyLlama Q4_0 only (default 2048; 0 skips it)
  --native          build wgllm with -DWGLLM_NATIVE=ON (default: the portable Release build)
  --no-amx-peer     on a CPU with AMX, skip the extra llama-bench built without AMX
  --build-only      build both engines and stop
  -h, --help        this text
environment: JOBS (build jobs, default nproc), WGLLM_BIN (use this wgllm, skip its build),
             LLAMA_BENCH_BIN (use this llama-bench, skip its builds) and LLAMA_BENCH_NOAMX_BIN
             (with it: a build without AMX, measured as a third engine), PYTHON (default python3)
USAGE
}

models_dir=${MODELS_DIR:-$root/models/peer}
out_dir=${OUT_DIR:-}
threads=""
only="tinyllama-q4_0,tinyllama-q8_0,tinyllama-q4_k_m,llama2-7b-q4_0"
rounds=3 reps=3 n_prompt=512 n_gen=128 depth=2048
native=OFF amx_peer=1 build_only=0
cmdline="bench/cpu_vs_llamacpp.sh${*:+ $*}"
while [ $# -gt 0 ]; do
    case $1 in
        --models-dir) models_dir=$2; shift 2 ;;
        --out) out_dir=$2; shift 2 ;;
        -t) threads=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --reps) reps=$2; shift 2 ;;
        -p) n_prompt=$2; shift 2 ;;
        -n) n_gen=$2; shift 2 ;;
        -d) depth=$2; shift 2 ;;
        --native) native=ON; shift ;;
        --no-amx-peer) amx_peer=0; shift ;;
        --build-only) build_only=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "cpu_vs_llamacpp.sh: unknown option '$1' (see -h)" >&2; exit 2 ;;
    esac
done
for v in "$rounds" "$reps" "$n_prompt" "$n_gen" "$depth"; do
    case $v in ''|*[!0-9]*) echo "cpu_vs_llamacpp.sh: '$v' is not a number" >&2; exit 2 ;; esac
done
if [ "$n_prompt" -lt 1 ] || [ "$n_gen" -lt 1 ] || [ "$rounds" -lt 1 ] || [ "$reps" -lt 1 ]; then
    echo "cpu_vs_llamacpp.sh: -p, -n, --rounds and --reps must be at least 1" >&2
    exit 2
fi
jobs=${JOBS:-$(nproc)}
python=${PYTHON:-python3}

# ---- the machine ----
cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2 || true)
has_flag() { case " $cpu_flags " in *" $1 "*) return 0 ;; esac; return 1; }
cpu_model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' || true)
logical=$(nproc)
physical=$( (lscpu -p=core,socket 2>/dev/null || true) | awk '!/^#/ && !seen[$0]++ {n++} END {print n + 0}')
[ "$physical" -ge 1 ] || physical=$logical
if [ -z "$threads" ]; then
    if [ "$physical" -le 2 ]; then
        threads=$physical
    else
        threads=""
        for t in 8 16; do [ "$t" -lt "$physical" ] && threads="$threads$t,"; done
        threads="$threads$physical"
    fi
fi
interest=""
for f in avx2 avx512f avx512bw avx512_vnni avx_vnni amx_tile amx_int8 amx_bf16; do
    has_flag "$f" && interest="$interest $f"
done
amx=0
has_flag amx_int8 && [ "$amx_peer" = 1 ] && amx=1

# ---- llama-bench ----
version=$(sed -n 's/^llama-cpp-python==\([0-9.]*\).*/\1/p' tests/requirements-llama-cpp.txt)
# args: build folder, extra C/C++ flags. A native build is only good on the CPU that made it.
build_llama_bench() {
    local dir=$1 flags=$2 src stamp
    src=$(scripts/fetch-llama-cpp.sh)
    stamp="$cpu_model|$cpu_flags|$flags|$src"
    if { [ -f "$dir/machine.stamp" ] && [ "$(cat "$dir/machine.stamp")" != "$stamp" ]; } ||
       { [ -f "$dir/CMakeCache.txt" ] && ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$src" "$dir/CMakeCache.txt"; }; then
        rm -rf "$dir"
    fi
    mkdir -p "$dir"
    if [ ! -x "$dir/bin/llama-bench" ] || [ ! -f "$dir/machine.stamp" ]; then
        echo "building llama-bench into $dir (flags: ${flags:-none})" >&2
        # compiler warnings of llama.cpp's tree go to the log, not the terminal
        cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
            -DLLAMA_OPENSSL=OFF -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" >"$dir/configure.log" 2>&1 ||
            { tail -20 "$dir/configure.log" >&2; echo "llama.cpp configure failed: $dir/configure.log" >&2; exit 1; }
        cmake --build "$dir" -j"$jobs" --target llama-bench >"$dir/build.log" 2>&1 ||
            { grep -m20 -B2 -A5 'error' "$dir/build.log" >&2; echo "llama-bench build failed: $dir/build.log" >&2; exit 1; }
        echo "$stamp" >"$dir/machine.stamp"
    fi
}
t_build=$(date +%s)
llama_bench_noamx=$root/.deps/llama-bench-$version-noamx/bin/llama-bench
if [ -n "${LLAMA_BENCH_BIN:-}" ]; then
    llama_bench=$LLAMA_BENCH_BIN
    amx=0
    if [ -n "${LLAMA_BENCH_NOAMX_BIN:-}" ]; then llama_bench_noamx=$LLAMA_BENCH_NOAMX_BIN; amx=1; fi
else
    build_llama_bench "$root/.deps/llama-bench-$version" ""
    llama_bench=$root/.deps/llama-bench-$version/bin/llama-bench
    if [ "$amx" = 1 ]; then
        build_llama_bench "$root/.deps/llama-bench-$version-noamx" "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    fi
fi
openmp="OpenMP"
if [ -f "$(dirname "$(dirname "$llama_bench")")/configure.log" ] &&
   ! grep -q "Found OpenMP: TRUE" "$(dirname "$(dirname "$llama_bench")")/configure.log"; then
    openmp="no OpenMP (not found at configure time)"
fi

# ---- wgllm ----
if [ -n "${WGLLM_BIN:-}" ]; then
    wgllm=$WGLLM_BIN
else
    cmake -S . -B build-peer -DCMAKE_BUILD_TYPE=Release -DWGLLM_WEBGPU=OFF -DWGLLM_NATIVE=$native >/dev/null
    cmake --build build-peer -j"$jobs" --target wgllm >/dev/null
    wgllm=$root/build-peer/wgllm
fi
echo "builds took $(( $(date +%s) - t_build )) s" >&2
[ "$build_only" = 1 ] && { echo "llama-bench: $llama_bench"; echo "wgllm: $wgllm"; exit 0; }

# ---- models ----
# TinyLlama's preset says a context of 2048; 4096 lets wgllm bench hold a 2048-token prompt plus
# the generated tokens (the context length in the file changes no weight and no speed).
tiny_ctx=4096
if [ $((depth + n_gen)) -gt $tiny_ctx ] || [ $((n_prompt + n_gen)) -gt $tiny_ctx ]; then
    echo "cpu_vs_llamacpp.sh: -p/-d plus -n must fit TinyLlama's context of $tiny_ctx" >&2
    exit 2
fi
mkdir -p "$models_dir"
model_cmds=""
make_model() {
    local name=$1 f=$models_dir/$1.gguf tmp=$models_dir/.partial-$1.gguf f16=$models_dir/.partial-$1-f16.gguf
    local cmd
    case $name in
        tinyllama-q4_0|tinyllama-q8_0)
            cmd="wgllm synth --preset tinyllama --ctx $tiny_ctx --type ${name#tinyllama-} --seed 1 $name.gguf" ;;
        tinyllama-q4_k_m)
            cmd="wgllm synth --preset tinyllama --ctx $tiny_ctx --type f16 --seed 1 tinyllama-f16.gguf && wgllm quantize tinyllama-f16.gguf $name.gguf q4_k_m" ;;
        llama2-7b-q4_0)
            cmd="wgllm synth --preset llama2-7b --type q4_0 --seed 1 $name.gguf" ;;
        *) echo "cpu_vs_llamacpp.sh: unknown model '$name' (see -h)" >&2; exit 2 ;;
    esac
    model_cmds="$model_cmds
  \`$cmd\`"
    [ -s "$f" ] && return 0
    echo "making $f (progress in $models_dir/make.log)" >&2
    if ! case $name in
        tinyllama-q4_k_m)
            "$wgllm" synth --preset tinyllama --ctx $tiny_ctx --type f16 --seed 1 "$f16" &&
                "$wgllm" quantize "$f16" "$tmp" q4_k_m && rm -f "$f16" ;;
        tinyllama-*)
            "$wgllm" synth --preset tinyllama --ctx $tiny_ctx --type "${name#tinyllama-}" --seed 1 "$tmp" ;;
        llama2-7b-*)
            "$wgllm" synth --preset llama2-7b --type "${name#llama2-7b-}" --seed 1 "$tmp" ;;
    esac >>"$models_dir/make.log" 2>&1; then
        tail -5 "$models_dir/make.log" >&2
        echo "cpu_vs_llamacpp.sh: making $name failed (see $models_dir/make.log)" >&2
        exit 1
    fi
    mv "$tmp" "$f"
}
IFS=, read -r -a model_list <<<"$only"
for m in "${model_list[@]}"; do make_model "$m"; done

# ---- runs ----
# The tests of a model: pp and tg for TinyLlama, tg alone for 7B, tg at depth for TinyLlama Q4_0.
tests_of() {
    case $1 in
        llama2-7b-*) echo "tg$n_gen" ;;
        tinyllama-q4_0)
            echo "pp$n_prompt tg$n_gen"
            if [ "$depth" -gt 0 ]; then echo "tg$n_gen@d$depth"; fi ;;
        *) echo "pp$n_prompt tg$n_gen" ;;
    esac
}
# llama-bench's tg test starts on an empty cache, so wgllm's tg is timed after a 1-token prompt;
# at depth D both engines fill the cache with D tokens first, untimed (-d D), then time tg.
llama_args() {
    case $1 in
        pp*) echo "-p $n_prompt -n 0" ;;
        *@d*) echo "-p 0 -n $n_gen -d $depth" ;;
        *) echo "-p 0 -n $n_gen" ;;
    esac
}
wgllm_args() {
    case $1 in
        pp*) echo "-p $n_prompt -n 0" ;;
        *@d*) echo "-p 1 -n $n_gen -d $depth" ;;
        *) echo "-p 1 -n $n_gen" ;;
    esac
}
stamp=$(date -u +%Y%m%d-%H%M%S)
out_dir=${out_dir:-$root/build-peer/results-$stamp}
mkdir -p "$out_dir"
raw=$out_dir/raw.tsv
: >"$raw"
# args: engine label, model, threads, test, round
run_one() {
    local engine=$1 model=$2 t=$3 test=$4 round=$5 f=$models_dir/$2.gguf out line args
    case $engine in
        wgllm)
            read -r -a args <<<"$(wgllm_args "$test")"
            echo "$wgllm bench -m $f --backend cpu -t $t ${args[*]} --reps $reps --json" >>"$out_dir/commands.log"
            out=$("$wgllm" bench -m "$f" --backend cpu -t "$t" "${args[@]}" --reps "$reps" --json \
                  2>>"$out_dir/wgllm.stderr") || { echo "wgllm bench failed (see $out_dir/wgllm.stderr)" >&2; exit 1; } ;;
        *)
            local bin=$llama_bench
            [ "$engine" = llama.cpp-noamx ] && bin=$llama_bench_noamx
            read -r -a args <<<"$(llama_args "$test")"
            echo "$bin -m $f -t $t ${args[*]} -r $reps -o jsonl" >>"$out_dir/commands.log"
            out=$("$bin" -m "$f" -t "$t" "${args[@]}" -r "$reps" -o jsonl \
                  2>>"$out_dir/llama-bench.stderr") || { echo "llama-bench failed (see $out_dir/llama-bench.stderr)" >&2; exit 1; } ;;
    esac
    while IFS= read -r line; do
        case $line in '{'*) printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$engine" "$model" "$t" "$test" "$round" "$line" >>"$raw" ;; esac
    done <<<"$out"
}
engines="llama.cpp wgllm"
[ "$amx" = 1 ] && engines="llama.cpp llama.cpp-noamx wgllm"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
IFS=, read -r -a thread_list <<<"$threads"
for round in $(seq "$rounds"); do
    # who goes first alternates per round, so that a drift of clock or heat treats both alike
    order=$engines
    [ $((round % 2)) = 0 ] && order=$(echo "$engines" | tr ' ' '\n' | tac | tr '\n' ' ')
    for t in "${thread_list[@]}"; do
        for m in "${model_list[@]}"; do
            for test in $(tests_of "$m"); do
                for e in $order; do
                    echo "round $round/$rounds: $e $m -t $t $test" >&2
                    run_one "$e" "$m" "$t" "$test" "$round"
                done
            done
        done
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the record ----
mem_gib=$(awk '/^MemTotal:/ {printf "%d", $2 / 1048576}' /proc/meminfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && commit="$commit (with local changes)"
noamx_line=""
depth_line=""
[ "$depth" -gt 0 ] && depth_line="
  tg$n_gen@d$depth: both engines \`-d $depth\` (the cache filled with $depth tokens, untimed, then tg timed)."
[ "$amx" = 1 ] && noamx_line="
- llama.cpp without AMX: the same build with \`-mno-amx-tile -mno-amx-int8 -mno-amx-bf16\` (column \"no AMX\"):
  the 1.0x bar applies to the instruction sets both engines use."
{
    cat <<RECORD
## CPU backend against llama.cpp ($(date -u +%Y-%m-%d))

- Date: $(date -u '+%Y-%m-%d %H:%M UTC'). wgllm commit: $commit; build: CMake Release, CPU only
  (\`-DWGLLM_WEBGPU=OFF\`), \`-DWGLLM_NATIVE=$native\`.
- llama.cpp: \`llama-bench\` from the vendor tree of llama-cpp-python $version (the pinned sdist), CMake
  Release with llama.cpp's defaults ($openmp, flash attention auto, weight repacking) and
  \`-DGGML_NATIVE=ON\` (\`-march=native\`: every instruction set of this CPU).$noamx_line
- Machine: $cpu_model, $physical cores / $logical threads; flags of interest:${interest:- none};
  $mem_gib GiB RAM; $(uname -sr); $(cc --version 2>/dev/null | head -1); load average $load_start at the start, $load_end at the end.
- Models (\`wgllm synth\`, random weights of the real shapes; same files for both engines):$model_cmds
- Command: \`$cmdline\`. Rounds: $rounds, engines alternating who goes first; each number is the
  median over the rounds of each process's median (repetitions: $reps, \`llama-bench -r $reps\` after
  its warm-up run, \`wgllm bench --reps $reps\`). Each engine command is in the results folder's
  commands.log.
- tg$n_gen: llama-bench on an empty cache, wgllm after a 1-token prompt (\`-p 1 -n $n_gen\`).$depth_line
- Ratios are wgllm / llama.cpp, truncated (never rounded up) to 2 decimals; tok/s truncated as well,
  with the range over the rounds in brackets.

RECORD
    "$python" "$root/bench/peer_table.py" "$raw"
} | sed "s|$root/||g" | tee "$out_dir/record.md"  # no path of this checkout in a record meant for the repository
echo "record written to $out_dir/record.md" >&2
