#!/usr/bin/env bash
# wgllm's WebGPU backend against llama.cpp's CUDA backend on one NVIDIA GPU, same files, same run.
#   bench/gpu_vs_llamacpp.sh --build-only     (first, once: the CUDA build takes a while)
#   bench/gpu_vs_llamacpp.sh [options]        (run with -h for the options)
# 1. builds llama-bench and llama-batched-bench with CUDA (GGML_CUDA=ON, the GPU's own
#    architecture) from the pinned llama-cpp-python sdist's vendor tree (scripts/fetch-llama-cpp.sh)
#    or --llama-src DIR, into .deps/llama-cuda-<version> (or $LLAMA_CUDA_BUILD); a stamp there
#    (tree, architecture, nvcc) lets the next run reuse it;
# 2. builds wgllm in Release (with WebGPU) into build-gpu-peer/, and checks its kernels against
#    the CPU on this GPU (the programs in `checks` below: the ops and their variants, the fused
#    decode kernels, the batched-decode routes, prompt attention, the int8 tiles of every format
#    and every prompt tile shape, the decode matvec's variants);
# 3. makes the models with `wgllm synth` (7B-shaped Q4_0 and Q4_K_M, TinyLlama-shaped Q4_0);
# 4. warms the GPU, logs its clocks (nvidia-smi) before and after, and runs both engines
#    interleaved per round: pp512, tg128, tg128 at depth 4096 (llama.cpp with flash attention on),
#    and N streams of a 32-token prompt and 128 generated tokens each (wgllm bench --parallel,
#    llama-batched-bench), and wgllm serve at each stream count past one (bench/serve_bench.py, no peer);
#    prints a markdown record with both engines' tok/s, the ratios wgllm / llama.cpp, wgllm's
#    8 streams / 1 stream and server / engine, truncated (never rounded up).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage() {
    cat <<'USAGE'
usage: bench/gpu_vs_llamacpp.sh [options]
  --models-dir DIR  where the synthetic models are made and kept ($MODELS_DIR; default models/peer-gpu)
  --out DIR         raw logs, clocks and the record ($OUT_DIR; default build-gpu-peer/results-DATE)
  --only LIST       tests, comma separated, of: tiny (TinyLlama Q4_0 pp/tg), 7b (7B Q4_0 pp/tg),
                    depth (7B Q4_0 tg at depth), q4_k_m (7B Q4_K_M pp/tg), streams (7B Q4_0, N streams)
                    (default: all)
  --rounds R        interleaved rounds, engines alternating who goes first (default 3)
  --reps K          repetitions inside each engine process (default 3)
  --streams LIST    stream counts of the streams test (default 1,8,16,32)
  -d N              depth of the depth test (default 4096)
  --quick           1 round, 2 repetitions (a smoke run of a few minutes)
  --llama-src DIR   an unpacked llama.cpp tree to build (default: the pinned sdist's vendor tree)
  --cuda-arch A     CMAKE_CUDA_ARCHITECTURES (default: the GPU's compute capability, else native)
  --skip-peer-build use the llama.cpp binaries already built (fail if there are none)
  --skip-check      do not run the kernel check on the GPU
  --build-only      build both engines and stop
  -h, --help        this text
environment: JOBS (build jobs, default nproc), LLAMA_CUDA_BUILD (the CUDA build folder, default
             .deps/llama-cuda-VERSION), WGLLM_BIN (use this wgllm, skip its build and the
             kernel check), LLAMA_BENCH_BIN and LLAMA_BATCHED_BENCH_BIN (use these, skip the CUDA
             build), PYTHON (default python3), SERVE_BENCH (the server benchmark command,
             default: PYTHON bench/serve_bench.py)
USAGE
}

models_dir=${MODELS_DIR:-$root/models/peer-gpu}
out_dir=${OUT_DIR:-}
only="tiny,7b,depth,q4_k_m,streams"
rounds=3 reps=3 streams="1,8,16,32" depth=4096 n_prompt=512 n_gen=128 par_prompt=32
llama_src="" cuda_arch="" skip_peer_build=0 skip_check=0 build_only=0
cmdline="bench/gpu_vs_llamacpp.sh${*:+ $*}"
while [ $# -gt 0 ]; do
    case $1 in
        --models-dir) models_dir=$2; shift 2 ;;
        --out) out_dir=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --reps) reps=$2; shift 2 ;;
        --streams) streams=$2; shift 2 ;;
        -d) depth=$2; shift 2 ;;
        --quick) rounds=1; reps=2; shift ;;
        --llama-src) llama_src=$2; shift 2 ;;
        --cuda-arch) cuda_arch=$2; shift 2 ;;
        --skip-peer-build) skip_peer_build=1; shift ;;
        --skip-check) skip_check=1; shift ;;
        --build-only) build_only=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu_vs_llamacpp.sh: unknown option '$1' (see -h)" >&2; exit 2 ;;
    esac
done
for v in "$rounds" "$reps" "$depth"; do
    case $v in ''|*[!0-9]*) echo "gpu_vs_llamacpp.sh: '$v' is not a number" >&2; exit 2 ;; esac
done
case $streams in ''|*[!0-9,]*|,*|*,|*,,*) echo "gpu_vs_llamacpp.sh: --streams '$streams' is not a list of numbers" >&2; exit 2 ;; esac
if [ "$rounds" -lt 1 ] || [ "$reps" -lt 1 ] || [ "$depth" -lt 1 ]; then
    echo "gpu_vs_llamacpp.sh: --rounds, --reps and -d must be at least 1" >&2
    exit 2
fi
IFS=, read -r -a test_list <<<"$only"
for t in "${test_list[@]}"; do
    case $t in tiny|7b|depth|q4_k_m|streams) ;; *) echo "gpu_vs_llamacpp.sh: unknown test '$t' (see -h)" >&2; exit 2 ;; esac
done
jobs=${JOBS:-$(nproc)}
python=${PYTHON:-python3}
read -r -a serve_bench <<<"${SERVE_BENCH:-$python $root/bench/serve_bench.py}"
have_smi=0
command -v nvidia-smi >/dev/null 2>&1 && have_smi=1

# ---- llama.cpp with CUDA ----
version=$(sed -n 's/^llama-cpp-python==\([0-9.]*\).*/\1/p' tests/requirements-llama-cpp.txt)
peer_dir=${LLAMA_CUDA_BUILD:-$root/.deps/llama-cuda-$version}
build_llama_cuda() {
    local src=$1 dir=$2 arch=$3 stamp nvcc_v
    nvcc_v=$( (nvcc --version 2>/dev/null || true) | tail -1)
    stamp="$src|$arch|$nvcc_v"
    if { [ -f "$dir/peer.stamp" ] && [ "$(cat "$dir/peer.stamp")" != "$stamp" ]; } ||
       { [ -f "$dir/CMakeCache.txt" ] && ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$src" "$dir/CMakeCache.txt"; }; then
        rm -rf "$dir"
    fi
    mkdir -p "$dir"
    if [ -x "$dir/bin/llama-bench" ] && [ -x "$dir/bin/llama-batched-bench" ] && [ -f "$dir/peer.stamp" ]; then
        return 0
    fi
    echo "building llama-bench and llama-batched-bench with CUDA (arch $arch) into $dir" >&2
    cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
        -DLLAMA_OPENSSL=OFF >"$dir/configure.log" 2>&1 ||
        { tail -20 "$dir/configure.log" >&2; echo "llama.cpp configure failed: $dir/configure.log" >&2; exit 1; }
    cmake --build "$dir" -j"$jobs" --target llama-bench llama-batched-bench >"$dir/build.log" 2>&1 ||
        { grep -m20 -B2 -A5 'error' "$dir/build.log" >&2; echo "llama.cpp build failed: $dir/build.log" >&2; exit 1; }
    echo "$stamp" >"$dir/peer.stamp"
}
t_build=$(date +%s)
peer_desc=""
if [ -n "${LLAMA_BENCH_BIN:-}" ] || [ -n "${LLAMA_BATCHED_BENCH_BIN:-}" ]; then
    peer_desc="the binaries given (LLAMA_BENCH_BIN, LLAMA_BATCHED_BENCH_BIN)"
    llama_bench=${LLAMA_BENCH_BIN:?set both LLAMA_BENCH_BIN and LLAMA_BATCHED_BENCH_BIN}
    llama_batched=${LLAMA_BATCHED_BENCH_BIN:?set both LLAMA_BENCH_BIN and LLAMA_BATCHED_BENCH_BIN}
else
    llama_bench=$peer_dir/bin/llama-bench
    llama_batched=$peer_dir/bin/llama-batched-bench
    if [ "$skip_peer_build" = 1 ]; then
        [ -x "$llama_bench" ] && [ -x "$llama_batched" ] ||
            { echo "gpu_vs_llamacpp.sh: --skip-peer-build, but $peer_dir has no build (run --build-only first)" >&2; exit 1; }
    else
        if [ -z "$cuda_arch" ] && [ "$have_smi" = 1 ]; then
            cuda_arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
        fi
        src=${llama_src:-$(scripts/fetch-llama-cpp.sh)}
        src=$(cd "$src" && pwd)
        [ -f "$src/tools/batched-bench/batched-bench.cpp" ] ||
            { echo "gpu_vs_llamacpp.sh: $src is no llama.cpp tree with tools/batched-bench" >&2; exit 1; }
        build_llama_cuda "$src" "$peer_dir" "${cuda_arch:-native}"
    fi
    # the architecture the build was made for (a reused build's stamp says it)
    peer_desc="CMake Release, \`-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=$(cut -d'|' -f2 "$peer_dir/peer.stamp" 2>/dev/null || echo unknown)\`"
fi

# ---- wgllm ----
# the kernel check: programs (in build-gpu-peer) that compare the GPU's results with the CPU's
checks=("test_webgpu_backend" "test_backend_ops" "test_webgpu_fused" "test_webgpu_swiglu_q8" "test_webgpu_matmul_q8"
        "test_webgpu_batch_decode" "test_webgpu_batch_decode --formats" "test_webgpu_batch_decode nt"
        "test_webgpu_flash_attention" "test_webgpu_kquant" "test_webgpu_prompt_tiles"
        "wgpu_matvec_bench $root/kernels --layouts")
if [ -n "${WGLLM_BIN:-}" ]; then
    wgllm=$WGLLM_BIN
    skip_check=1
else
    cmake -S . -B build-gpu-peer -DCMAKE_BUILD_TYPE=Release -DWGLLM_WEBGPU=ON >/dev/null
    cmake --build build-gpu-peer -j"$jobs" --target wgllm $(for c in "${checks[@]}"; do echo "${c%% *}"; done | sort -u) \
        >/dev/null
    wgllm=$root/build-gpu-peer/wgllm
fi
echo "builds took $(( $(date +%s) - t_build )) s" >&2
[ "$build_only" = 1 ] && { echo "llama-bench: $llama_bench"; echo "llama-batched-bench: $llama_batched"; echo "wgllm: $wgllm"; exit 0; }

stamp=$(date -u +%Y%m%d-%H%M%S)
out_dir=${out_dir:-$root/build-gpu-peer/results-$stamp}
mkdir -p "$out_dir"
raw=$out_dir/raw.tsv
: >"$raw"
: >"$out_dir/commands.log"

# ---- the kernels on this GPU against the CPU ----
check_line="not run"
if [ "$skip_check" = 0 ]; then
    echo "checking the kernels against the CPU on this GPU (${#checks[@]} programs)" >&2
    failed_checks=""
    : >"$out_dir/kernel-check.log"
    for c in "${checks[@]}"; do # every one runs, so that the log has them all
        read -r -a argv <<<"$c"
        echo "== ${c/$root\//}" >>"$out_dir/kernel-check.log"
        (cd build-gpu-peer && "./${argv[0]}" "${argv[@]:1}") >>"$out_dir/kernel-check.log" 2>&1 ||
            failed_checks="$failed_checks, ${c%% $root*}"
    done
    if [ -z "$failed_checks" ]; then
        check_line="passed (${#checks[@]} programs; $(grep -c ' sequences, .*worst logit error vs the CPU' "$out_dir/kernel-check.log") batch decode cases, \
$(grep -c 'cache: rel. error' "$out_dir/kernel-check.log") prompt attention cases; kernel-check.log)"
    else
        check_line="FAILED: ${failed_checks#, } (kernel-check.log)"
        echo "gpu_vs_llamacpp.sh: the kernel check failed: $out_dir/kernel-check.log" >&2
    fi
fi

# ---- models ----
mkdir -p "$models_dir"
model_cmds=""
needed=""
for t in "${test_list[@]}"; do
    case $t in
        tiny) needed="$needed tinyllama-q4_0" ;;
        7b|depth|streams) needed="$needed llama2-7b-q4_0" ;;
        q4_k_m) needed="$needed llama2-7b-q4_k_m" ;;
    esac
done
# the 7B files say a context of 8192: room for the depth test (the context length changes no weight)
ctx7b=8192
if [ $((depth + n_gen + 1)) -gt $ctx7b ]; then
    echo "gpu_vs_llamacpp.sh: -d $depth plus $n_gen tokens exceed the 7B files' context of $ctx7b" >&2
    exit 2
fi
make_model() {
    local name=$1 f=$models_dir/$1.gguf tmp=$models_dir/.partial-$1.gguf f16=$models_dir/.partial-$1-f16.gguf cmd
    case $name in
        tinyllama-q4_0) cmd="wgllm synth --preset tinyllama --ctx 4096 --type q4_0 --seed 1 $name.gguf" ;;
        llama2-7b-q4_0) cmd="wgllm synth --preset llama2-7b --ctx $ctx7b --type q4_0 --seed 1 $name.gguf" ;;
        llama2-7b-q4_k_m)
            cmd="wgllm synth --preset llama2-7b --ctx $ctx7b --type f16 --seed 1 llama2-7b-f16.gguf && wgllm quantize llama2-7b-f16.gguf $name.gguf q4_k_m" ;;
    esac
    case $model_cmds in *"$cmd"*) ;; *) model_cmds="$model_cmds
  \`$cmd\`" ;; esac
    [ -s "$f" ] && return 0
    echo "making $f (progress in $models_dir/make.log)" >&2
    if ! case $name in
        tinyllama-q4_0) "$wgllm" synth --preset tinyllama --ctx 4096 --type q4_0 --seed 1 "$tmp" ;;
        llama2-7b-q4_0) "$wgllm" synth --preset llama2-7b --ctx $ctx7b --type q4_0 --seed 1 "$tmp" ;;
        llama2-7b-q4_k_m)
            "$wgllm" synth --preset llama2-7b --ctx $ctx7b --type f16 --seed 1 "$f16" &&
                "$wgllm" quantize "$f16" "$tmp" q4_k_m && rm -f "$f16" ;;
    esac >>"$models_dir/make.log" 2>&1; then
        tail -5 "$models_dir/make.log" >&2
        echo "gpu_vs_llamacpp.sh: making $name failed (see $models_dir/make.log)" >&2
        exit 1
    fi
    mv "$tmp" "$f"
}
for m in $needed; do make_model "$m"; done

# ---- runs ----
# llama-bench's tg test starts on an empty cache, so wgllm's tg is timed after a 1-token prompt;
# at depth D both fill the cache with D tokens first, untimed, then time tg.
# args: engine, model, test (pp512, tg128, tg128@dD, streams), round
run_one() {
    local engine=$1 model=$2 test=$3 round=$4 f=$models_dir/$2.gguf out line
    local -a cmd
    case $engine/$test in
        wgllm/pp*) cmd=("$wgllm" bench -m "$f" --backend webgpu -p "$n_prompt" -n 0 --reps "$reps" --json) ;;
        wgllm/*@d*) cmd=("$wgllm" bench -m "$f" --backend webgpu -p 1 -n "$n_gen" -d "$depth" --reps "$reps" --json) ;;
        wgllm/tg*) cmd=("$wgllm" bench -m "$f" --backend webgpu -p 1 -n "$n_gen" --reps "$reps" --json) ;;
        wgllm/streams)
            cmd=("$wgllm" bench -m "$f" --backend webgpu -p 1 -n "$n_gen" --reps "$reps" --parallel "$streams" --json) ;;
        wgllm/server) # every stream count past one, each stream n_gen tokens; its last line is the JSON record
            cmd=("${serve_bench[@]}" --model "$f" --bin "$wgllm" --backend webgpu --parallel "$max_streams"
                 --levels "$server_levels" --max-tokens "$n_gen" --ctx "$server_ctx") ;;
        llama.cpp/pp*) cmd=("$llama_bench" -m "$f" -ngl 99 -fa 1 -p "$n_prompt" -n 0 -r "$reps" -o jsonl) ;;
        llama.cpp/*@d*) cmd=("$llama_bench" -m "$f" -ngl 99 -fa 1 -p 0 -n "$n_gen" -d "$depth" -r "$reps" -o jsonl) ;;
        llama.cpp/tg*) cmd=("$llama_bench" -m "$f" -ngl 99 -fa 1 -p 0 -n "$n_gen" -r "$reps" -o jsonl) ;;
        llama.cpp/streams)
            # every stream's prompt and generation in the cache at once
            cmd=("$llama_batched" -m "$f" -ngl 99 -fa on -c $((max_streams * (par_prompt + n_gen))) -npp "$par_prompt"
                 -ntg "$n_gen" -npl "$streams" --output-format jsonl) ;;
    esac
    echo "${cmd[*]}" >>"$out_dir/commands.log"
    # each tool's whole output goes to its log (llama.cpp's tools print their records through
    # their logger), its JSON records to raw.tsv
    out=$("${cmd[@]}" 2>&1) || { printf '%s\n' "$out" >>"$out_dir/$engine.log"
        echo "$engine failed on $model $test (see $out_dir/$engine.log)" >&2; exit 1; }
    printf '%s\n' "$out" >>"$out_dir/$engine.log"
    while IFS= read -r line; do
        case $line in '{"'*) printf '%s\t%s\t%s\t%s\t%s\n' "$engine" "$model" "$test" "$round" "$line" >>"$raw" ;; esac
    done <<<"$out"
}
max_streams=$(echo "$streams" | tr ',' '\n' | sort -n | tail -1)
# the server at every stream count of the streams test past one (the acceptance asks for 16)
server_levels=$(echo "$streams" | tr ',' '\n' | awk '$1 > 1' | paste -sd, -)
server_levels=${server_levels:-$max_streams}
# the server's context per stream: its short chat prompt and n_gen tokens, with room to spare (the
# model's own 8192 would take 2 GB of KV cache a stream: 32 streams of a 7B do not fit in 80 GB)
server_ctx=$((4 * (par_prompt + n_gen) > 1024 ? 4 * (par_prompt + n_gen) : 1024))
plan=""
for t in "${test_list[@]}"; do
    case $t in
        tiny) plan="$plan tinyllama-q4_0:pp$n_prompt tinyllama-q4_0:tg$n_gen" ;;
        7b) plan="$plan llama2-7b-q4_0:pp$n_prompt llama2-7b-q4_0:tg$n_gen" ;;
        depth) plan="$plan llama2-7b-q4_0:tg$n_gen@d$depth" ;;
        q4_k_m) plan="$plan llama2-7b-q4_k_m:pp$n_prompt llama2-7b-q4_k_m:tg$n_gen" ;;
        streams) plan="$plan llama2-7b-q4_0:streams llama2-7b-q4_0:server" ;;
    esac
done
clocks() {
    if [ "$have_smi" = 1 ]; then
        nvidia-smi --query-gpu=name,driver_version,pstate,clocks.sm,clocks.mem,clocks.max.sm,temperature.gpu,power.draw \
            --format=csv,noheader 2>/dev/null | head -1
    else
        echo "no nvidia-smi"
    fi
}
gpu_name=$( [ "$have_smi" = 1 ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1 || echo "unknown (no nvidia-smi)")
# warm-up: both engines once on the first model, results discarded (clocks up, files cached)
first_model=${plan%%:*}
first_model=${first_model# }
echo "warming up the GPU" >&2
echo "before warm-up: $(clocks)" >"$out_dir/clocks.log"
"$llama_bench" -m "$models_dir/$first_model.gguf" -ngl 99 -fa 1 -p "$n_prompt" -n "$n_gen" -r 1 -o jsonl \
    >>"$out_dir/warmup.log" 2>&1 || true
"$wgllm" bench -m "$models_dir/$first_model.gguf" --backend webgpu -p "$n_prompt" -n "$n_gen" --reps 1 --json \
    >>"$out_dir/warmup.log" 2>&1 || true
clocks_start=$(clocks)
echo "start: $clocks_start" >>"$out_dir/clocks.log"
t_runs=$(date +%s)
for round in $(seq "$rounds"); do
    order="llama.cpp wgllm"
    [ $((round % 2)) = 0 ] && order="wgllm llama.cpp"
    for item in $plan; do
        for e in $order; do
            [ "$e:${item#*:}" = llama.cpp:server ] && continue # no peer: set beside wgllm's own engine
            echo "round $round/$rounds: $e ${item%%:*} ${item#*:}" >&2
            run_one "$e" "${item%%:*}" "${item#*:}" "$round"
        done
    done
    echo "after round $round: $(clocks)" >>"$out_dir/clocks.log"
done
clocks_end=$(clocks)
echo "end: $clocks_end" >>"$out_dir/clocks.log"

# ---- where the CPU's time goes during decode (WGLLM_WEBGPU_PROFILE=host) ----
# One more wgllm process per decoded model, after the timed rounds: if recording and submitting
# take most of the time and waiting little, the GPU waits for the CPU (wgpu_profile.c).
host_models=$(for item in $plan; do
    case ${item#*:} in tg*@d*) ;; tg*) echo "${item%%:*}" ;; esac
done | sort -u)
host_lines=""
for m in $host_models; do
    echo "host profile: $m" >&2
    out=$(WGLLM_WEBGPU_PROFILE=host "$wgllm" bench -m "$models_dir/$m.gguf" --backend webgpu -p 1 -n "$n_gen" \
        --reps "$reps" 2>&1) || { printf '%s\n' "$out" >>"$out_dir/host-profile.log"
        echo "gpu_vs_llamacpp.sh: the host profile of $m failed (host-profile.log)" >&2; continue; }
    printf '%s\n' "$out" >>"$out_dir/host-profile.log"
    tg=$(sed -n "s/^| [^|]* | webgpu | [^|]* | tg$n_gen | \([0-9.]*\) |\$/\1/p" <<<"$out" | head -1)
    rows=$(grep -E '^(record dispatches|finish \+ submit|wait for read-backs) ' <<<"$out" |
        awk '{ name = $1; for (i = 2; i <= NF - 4; i++) name = name " " $i
               printf "%s%s %s (%s calls, %s us each)", sep, name, $NF, $(NF - 3), $(NF - 1); sep = "; " }')
    host_lines="$host_lines
  - $m: tg$n_gen ${tg:-?} tok/s; $rows"
done

# ---- the record ----
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && commit="$commit (with local changes)"
devices=$("$wgllm" devices 2>/dev/null || true)
adapter=$(sed -n 's/^device 0: //p' <<<"$devices" | head -1)
wgpu_lib=$(sed -n 's/^WebGPU library: .*(\(version [^)]*\)).*/\1/p' <<<"$devices" | head -1)
# the kernel routes the autotune chose on this adapter during the runs (wgpu_autotune.h)
tuned=$(sed -n 's/^ *autotune *//p' <<<"$devices" | sed 's/^/  - /')
{
    cat <<RECORD
## WebGPU backend against llama.cpp CUDA ($(date -u +%Y-%m-%d))

- GPU: $gpu_name; wgllm's adapter: ${adapter:-unknown} (wgpu-native ${wgpu_lib:-unknown}).
- wgllm commit: $commit; CMake Release with WebGPU. Kernel check on this GPU against the CPU
  ($(printf '%s, ' "${checks[@]%% $root*}" | sed 's/, $//')): $check_line.
- llama.cpp: \`llama-bench\` and \`llama-batched-bench\` from llama-cpp-python $version's vendor tree
  (or --llama-src), $peer_desc; all layers on the GPU (\`-ngl 99\`), flash attention on (\`-fa 1\`,
  \`-fa on\`).
- Models (\`wgllm synth\`, random weights of the real shapes; the same files for both engines):$model_cmds
- Command: \`$cmdline\`. Rounds: $rounds, engines alternating who goes first; each number is the median
  over the rounds of each process's number (\`llama-bench -r $reps\` after its warm-up run, \`wgllm bench
  --reps $reps\`; llama-batched-bench measures once). Each command is in commands.log.
- tg$n_gen: llama-bench on an empty cache, wgllm after a 1-token prompt. tg$n_gen@d$depth: the cache
  filled with $depth tokens first, untimed (\`-d $depth\` for both).
- Streams: S sequences, each a $par_prompt-token prompt and $n_gen generated tokens, decoding together:
  wgllm \`bench --parallel\`, llama.cpp \`llama-batched-bench -npp $par_prompt -ntg $n_gen -npl $streams\`
  (its S_TG, the aggregate generation rate).
- Server: \`bench/serve_bench.py --backend webgpu --parallel $max_streams --levels $server_levels --max-tokens $n_gen --ctx $server_ctx\`
  after wgllm's streams run in each round: \`wgllm serve\` with $server_levels simultaneous streaming requests
  (a short prompt, $n_gen tokens each). "From the first token": the tokens after each stream's first,
  over the time from the first stream's first token to the last stream's last (what \`bench --parallel\`
  times in the engine); "wall time": every token over the level's wall time (connections and prompts
  included).
- wgllm's autotune choices on this adapter (\`wgllm devices\`; each row: the route taken, then each
  candidate's time):
${tuned:-  - none cached}
- Where wgllm's CPU time went in one more decode process per model, after the rounds
  (\`WGLLM_WEBGPU_PROFILE=host wgllm bench -p 1 -n $n_gen --reps $reps\`; shares of the process's
  time since the backend opened, warm-up and model upload included; host-profile.log):${host_lines:-
  - not run}
- GPU clocks (nvidia-smi: name, driver, pstate, SM MHz, memory MHz, max SM MHz, C, W) after the
  warm-up: $clocks_start; at the end: $clocks_end.
- Ratios are wgllm / llama.cpp, truncated (never rounded up) to 2 decimals; tok/s truncated as well,
  with the range over the rounds in brackets. The runs took $(( $(date +%s) - t_runs )) s.

RECORD
    "$python" "$root/bench/gpu_peer_table.py" "$raw"
} | sed "s|$root/||g" | tee "$out_dir/record.md"  # no path of this checkout in a record meant for the repository
echo "record written to $out_dir/record.md" >&2
