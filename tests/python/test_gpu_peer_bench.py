"""bench/gpu_vs_llamacpp.sh and its table (bench/gpu_peer_table.py), without a GPU: output recorded
in the exact formats of llama-bench (`-o jsonl`), llama-batched-bench (`--output-format jsonl`,
printed through its logger between the loader's lines) and `wgllm bench --json [--parallel]`, fed
to the parser, and stand-in engines that print it, so that the script's commands, the medians and
the truncated ratios are checked exactly."""

import os
import stat
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPT = REPO / "bench" / "gpu_vs_llamacpp.sh"
TABLE = REPO / "bench" / "gpu_peer_table.py"


def llama_bench_line(n_prompt, n_gen, n_depth, samples):
    """One record as llama-bench -o jsonl prints it (llama-cpp-python 0.3.36's tree,
    tools/llama-bench: `"field": value, ` for each field, then samples_ns and samples_ts)."""
    avg = sum(samples) / len(samples)
    ns = [int(round((n_prompt + n_gen) / s * 1e9)) for s in samples]
    fields = [
        ("build_commit", '"0c1e570"'), ("build_number", "1"), ("cpu_info", '"Intel(R) Xeon(R) Platinum 8480+"'),
        ("gpu_info", '"NVIDIA H100 80GB HBM3"'), ("backends", '"CUDA"'),
        ("model_filename", '"models/peer-gpu/m.gguf"'), ("model_type", '"llama 7B Q4_0"'),
        ("model_size", "3825205248"), ("model_n_params", "6738415616"), ("n_batch", "2048"), ("n_ubatch", "512"),
        ("n_threads", "16"), ("cpu_mask", '"0x0"'), ("cpu_strict", "false"), ("poll", "50"), ("type_k", '"f16"'),
        ("type_v", '"f16"'), ("n_gpu_layers", "99"), ("n_cpu_moe", "0"), ("split_mode", '"layer"'),
        ("main_gpu", "0"), ("no_kv_offload", "false"), ("flash_attn", "1"), ("devices", '"auto"'),
        ("tensor_split", '"0.00"'), ("tensor_buft_overrides", '"none"'), ("load_mode", '"mmap"'),
        ("lazy_mode", "false"), ("embeddings", "false"), ("no_op_offload", "0"), ("no_host", "false"),
        ("repack", "true"), ("fit_target", "0"), ("fit_min_ctx", "0"), ("n_prompt", str(n_prompt)),
        ("n_gen", str(n_gen)), ("n_depth", str(n_depth)), ("test_time", '"2026-12-06T10:00:00Z"'),
        ("avg_ns", str(sum(ns) // len(ns))), ("stddev_ns", "120000"), ("avg_ts", "%f" % avg),
        ("stddev_ts", "1.500000"),
    ]
    return ("{" + "".join('"%s": %s, ' % f for f in fields) + '"samples_ns": [ %s ],"samples_ts": [ %s ]}'
            % (", ".join(map(str, ns)), ", ".join("%g" % s for s in samples)))


def batched_bench_line(pl, speed_tg, pp=32, tg=128):
    """One record as llama-batched-bench --output-format jsonl prints it (tools/batched-bench)."""
    t_tg = pl * tg / speed_tg
    return ('{"n_kv_max": %d, "n_batch": 2048, "n_ubatch": 512, "flash_attn": 1, "is_pp_shared": 0, '
            '"n_gpu_layers": 99, "n_threads": 16, "n_threads_batch": 16, "pp": %d, "tg": %d, "pl": %d, "n_kv": %d, '
            '"t_pp": %f, "speed_pp": %f, "t_tg": %f, "speed_tg": %f, "t": %f, "speed": %f}'
            % (32 * (pp + tg), pp, tg, pl, pl * (pp + tg), 0.04, pl * pp / 0.04, t_tg, speed_tg, 0.04 + t_tg,
               pl * (pp + tg) / (0.04 + t_tg)))


# what llama-batched-bench prints around its records (the loader's and the context's log lines)
BATCHED_NOISE = """llama_model_loader: loaded meta data with 24 key-value pairs and 291 tensors from m.gguf
load_tensors: offloaded 33/33 layers to GPU
llama_context: flash_attn    = enabled

main: n_kv_max = 5120, n_batch = 2048, n_ubatch = 512, flash_attn = 1, is_pp_shared = 0, is_tg_separate = 0, n_gpu_layers = 99, n_threads = 16, n_threads_batch = 16
"""


def wgllm_line(n_prompt, n_gen, depth, pp, tg):
    return ('{"model":"m","backend":"webgpu","threads":16,"n_prompt":%d,"n_gen":%d,"depth":%d,"reps":3,'
            '"prompt_tok_s":%s,"gen_tok_s":%s,"ttft_s":0.1441,"peak_rss_mib":812.4,"weight_bytes":3825205248,'
            '"device_memory_bytes":4194304000}' % (n_prompt, n_gen, depth, pp, tg))


def wgllm_streams_line(streams, rate, n_gen=128):
    return ('{"model":"m","backend":"webgpu","streams":%d,"n_gen":%d,"aggregate_gen_tok_s":%s}'
            % (streams, n_gen, rate))


def rows_of(text):
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("| ") and "---" not in line]


def run_table(*paths):
    return subprocess.run([sys.executable, TABLE, *paths], capture_output=True, text=True, timeout=60)


def test_table_from_recorded_output(tmp_path):
    m = "llama2-7b-q4_0"
    raw = [
        ("llama.cpp", m, "pp512", 1, llama_bench_line(512, 0, 0, [11352.5, 11313.1, 11273.9])),
        ("wgllm", m, "pp512", 1, wgllm_line(512, 0, 0, "5656.55", "0.00")),
        ("llama.cpp", m, "tg128", 1, llama_bench_line(0, 128, 0, [350.5, 350.4, 350.6])),
        ("wgllm", m, "tg128", 1, wgllm_line(1, 128, 0, "0.00", "350.49")),
        ("llama.cpp", m, "tg128@d4096", 1, llama_bench_line(0, 128, 4096, [300.0])),
        ("wgllm", m, "tg128@d4096", 1, wgllm_line(1, 128, 4096, "0.00", "330.00")),
        # a streams run: llama-batched-bench's records of each -npl, wgllm's tg line then its --parallel lines
        ("llama.cpp", m, "streams", 1, batched_bench_line(1, 338.0)),
        ("llama.cpp", m, "streams", 1, batched_bench_line(8, 1371.0)),
        ("llama.cpp", m, "streams", 1, batched_bench_line(32, 3395.0)),
        ("wgllm", m, "streams", 1, wgllm_line(1, 128, 0, "0.00", "284.00")),
        ("wgllm", m, "streams", 1, wgllm_streams_line(1, "284.90")),
        ("wgllm", m, "streams", 1, wgllm_streams_line(8, "1709.39")),
        ("wgllm", m, "streams", 1, wgllm_streams_line(32, "3394.99")),
        # round 2: the medians of two rounds
        ("wgllm", m, "pp512", 2, wgllm_line(512, 0, 0, "5756.55", "0.00")),
        ("llama.cpp", m, "pp512", 2, llama_bench_line(512, 0, 0, [11413.1])),
    ]
    path = tmp_path / "raw.tsv"
    path.write_text("".join("%s\t%s\t%s\t%d\t%s\n" % r for r in raw))
    p = run_table(path)
    assert p.returncode == 0, p.stderr
    rows = rows_of(p.stdout)
    assert rows[0] == ["model", "test", "llama.cpp CUDA tok/s", "wgllm WebGPU tok/s", "wgllm / llama.cpp"]
    # llama-bench: the median of each process's samples, then of the rounds: (11313.1 + 11413.1) / 2
    assert rows[1] == [m, "pp512", "11363.10 [11313.10-11413.10]", "5706.55 [5656.55-5756.55]", "0.50x"]
    # 350.49 / 350.5 = 0.99997...: truncated, never rounded up to 1.00x
    assert rows[2] == [m, "tg128", "350.50", "350.49", "0.99x"]
    assert rows[3] == [m, "tg128@d4096", "300.00", "330.00", "1.10x"]
    # batched-bench's S_TG against wgllm's aggregate; wgllm's own tg line of that run is no result
    assert rows[4] == [m, "tg128 x 1 streams (aggregate)", "338.00", "284.90", "0.84x"]
    assert rows[5] == [m, "tg128 x 8 streams (aggregate)", "1371.00", "1709.39", "1.24x"]
    assert rows[6] == [m, "tg128 x 32 streams (aggregate)", "3395.00", "3394.99", "0.99x"]
    assert len(rows) == 7
    # 1709.39 / 284.9 = 5.99996...: says 5.99x, not 6.00x
    assert "- llama2-7b-q4_0, wgllm: 8 streams / 1 stream = 5.99x" in p.stdout
    assert "- llama2-7b-q4_0, llama.cpp: 8 streams / 1 stream = 4.05x" in p.stdout

    # a run split over two files makes the same table
    lines = path.read_text().splitlines(keepends=True)
    (tmp_path / "a.tsv").write_text("".join(lines[:7]))
    (tmp_path / "b.tsv").write_text("".join(lines[7:]))
    assert run_table(tmp_path / "a.tsv", tmp_path / "b.tsv").stdout == p.stdout


def test_table_rejects_malformed_lines(tmp_path):
    bad = {
        "mismatch": "llama.cpp\tm\tpp512\t1\t%s\n" % llama_bench_line(0, 128, 0, [1.0]),
        "fields": "llama.cpp\tm\tpp512\n",
        "engine": "ollama\tm\tpp512\t1\t{}\n",
        "batched": "llama.cpp\tm\tstreams\t1\t%s\n" % wgllm_streams_line(8, "1.0"),
        "server": 'llama.cpp\tm\tserver\t1\t{"max_tokens": 8, "levels": []}\n',
        "levels": 'wgllm\tm\tserver\t1\t{"max_tokens": 8}\n',
    }
    for name, line in bad.items():
        (tmp_path / name).write_text(line)
    assert "record is tg128, expected pp512" in run_table(tmp_path / "mismatch").stderr
    assert "has 3 fields, not 5" in run_table(tmp_path / "fields").stderr
    assert "unknown engine 'ollama'" in run_table(tmp_path / "engine").stderr
    assert "not a llama-batched-bench record" in run_table(tmp_path / "batched").stderr
    assert "a server result is wgllm's" in run_table(tmp_path / "server").stderr
    assert "raw line 1: 'levels'" in run_table(tmp_path / "levels").stderr
    (tmp_path / "empty").write_text("")
    p = run_table(tmp_path / "empty")
    assert p.returncode == 1 and "no results" in p.stderr


FAKE_LLAMA_BENCH = r'''#!PYTHON
import os, sys
sys.path.insert(0, os.environ["FAKE_DIR"])
from fake_records import llama_bench_line
a = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write("llama-bench " + " ".join(a) + "\n")
opt = dict(zip(a[::2], a[1::2]))
assert opt["-o"] == "jsonl" and opt["-ngl"] == "99" and opt["-fa"] == "1" and os.path.isfile(opt["-m"])
p, n, d, r = int(opt["-p"]), int(opt["-n"]), int(opt.get("-d", 0)), int(opt["-r"])
tiny = "tinyllama" in opt["-m"]
speed = {(512, 0, 0): 1000.0, (0, 128, 0): 40.0, (0, 128, 16): 30.0}[(p, n, d)] * (3 if tiny else 1)
sys.stderr.write("ggml_cuda_init: found 1 CUDA devices:\n")
if p + n == 512 + 128:  # the warm-up: pp and tg in one process
    print(llama_bench_line(512, 0, 0, [1.0])); print(llama_bench_line(0, 128, 0, [1.0])); sys.exit(0)
print(llama_bench_line(p, n, d, [speed] * r))
'''

FAKE_BATCHED = r'''#!PYTHON
import os, sys
sys.path.insert(0, os.environ["FAKE_DIR"])
from fake_records import batched_bench_line, BATCHED_NOISE
a = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write("llama-batched-bench " + " ".join(a) + "\n")
opt = dict(zip(a[::2], a[1::2]))
assert opt["--output-format"] == "jsonl" and opt["-fa"] == "on" and os.path.isfile(opt["-m"])
sys.stderr.write(BATCHED_NOISE)
for pl in map(int, opt["-npl"].split(",")):
    print(batched_bench_line(pl, 40.0 * pl ** 0.5, int(opt["-npp"]), int(opt["-ntg"])))
'''

FAKE_WGLLM = r'''#!PYTHON
import os, sys
sys.path.insert(0, os.environ["FAKE_DIR"])
from fake_records import wgllm_line, wgllm_streams_line, HOST_PROFILE
a = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write("wgllm " + " ".join(a) + "\n")
if a[0] == "synth":
    open(a[-1], "wb").write(b"GGUF synth " + a[a.index("--type") + 1].encode())
elif a[0] == "quantize":
    assert open(a[1], "rb").read() == b"GGUF synth f16" and a[3] == "q4_k_m"
    open(a[2], "wb").write(b"GGUF quantized")
elif a[0] == "devices":
    print("WebGPU library: /opt/lib/libwgpu_native.so (version 29.0.1.1)\n\ndevice 0: NVIDIA H100 80GB HBM3\n")
else:
    host = os.environ.get("WGLLM_WEBGPU_PROFILE") == "host"  # the host profile: a table, no JSON
    opt = dict(zip(a[1::2], a[2::2]))
    assert a[0] == "bench" and opt["--backend"] == "webgpu" and ("--json" in a) != host and os.path.isfile(opt["-m"])
    p, n, d = int(opt["-p"]), int(opt["-n"]), int(opt.get("-d", 0))
    tiny = "tinyllama" in opt["-m"]
    tg = {(1, 128, 0): 39.99, (1, 128, 16): 33.0, (512, 0, 0): 0.0, (512, 128, 0): 1.0}[(p, n, d)] * (3 if tiny else 1)
    sys.stderr.write("bench: WebGPU adapter NVIDIA H100 80GB HBM3\n")
    if host:  # as src/backend/webgpu/wgpu_profile.c and src/cli/cmd_bench.c print them
        sys.stderr.write(HOST_PROFILE)
        print("| model | backend | threads | test | tok/s (median of 1) |\n|---|---|---|---|---|")
        print("| %s | webgpu | 0 | tg%d | %.2f |" % (os.path.basename(opt["-m"])[:-5], n, tg))
        sys.exit(0)
    print(wgllm_line(p, n, d, "600.00" if n == 0 else "1.00", "%.2f" % tg))
    if "--parallel" in opt:
        for s in map(int, opt["--parallel"].split(",")):
            print(wgllm_streams_line(s, "%.2f" % (39.0 * s ** 0.75), n))
'''

FAKE_SERVE_BENCH = r'''#!PYTHON
import json, os, sys
a = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write("serve_bench " + " ".join(a) + "\n")
opt = dict(zip(a[::2], a[1::2]))
levels = [int(x) for x in opt["--levels"].split(",")]
assert opt["--backend"] == "webgpu" and int(opt["--parallel"]) == max(levels) and os.path.isfile(opt["--model"])
assert os.path.basename(opt["--bin"]) == "wgllm" and int(opt["--ctx"]) >= 1024
m = int(opt["--max-tokens"])
print("| streams | generated tokens | wall s | aggregate tok/s | decode aggregate tok/s | per-stream tok/s |")
print(json.dumps({"model": opt["--model"], "backend": "webgpu", "max_tokens": m, "levels": [
    {"streams": n, "generated_tokens": n * m, "wall_seconds": 8.192, "aggregate_tok_s": 250.0 * n / 16,
     "decode_seconds": 7.0, "decode_aggregate_tok_s": 290.16 * n / 16, "per_stream_tok_s": 15.6,
     "median_ttft_s": 0.3} for n in levels]}))
'''

HOST_PROFILE = """
WebGPU host profile (CPU side; 3708.274 ms since the backend opened)
what                        calls     total ms     avg us   share
record dispatches            4026       15.937       3.96    0.4%
finish + submit                70     1346.870   19241.00   36.3%
wait for read-backs            66       95.272    1443.51    2.6%
"""

FAKE_SMI = r'''#!/bin/sh
echo "nvidia-smi $*" >>"$FAKE_LOG"
case "$*" in
    *compute_cap*) echo "9.0" ;;
    *clocks.sm*) echo "NVIDIA H100 80GB HBM3, 580.159.04, P0, 1980 MHz, 2619 MHz, 1980 MHz, 41, 120.50 W" ;;
    *) echo "NVIDIA H100 80GB HBM3, 81559 MiB, 580.159.04" ;;
esac
'''


def stand_ins(tmp_path):
    """Stand-in engines (and nvidia-smi) in tmp_path/fake and the environment that uses them."""
    fake = tmp_path / "fake"
    fake.mkdir()
    import inspect
    (fake / "fake_records.py").write_text("".join(inspect.getsource(f) + "\n" for f in (
        llama_bench_line, batched_bench_line, wgllm_line, wgllm_streams_line)) + "BATCHED_NOISE = %r\n" % BATCHED_NOISE
        + "HOST_PROFILE = %r\n" % HOST_PROFILE)
    for name, text in (("llama-bench", FAKE_LLAMA_BENCH), ("llama-batched-bench", FAKE_BATCHED),
                       ("wgllm", FAKE_WGLLM), ("nvidia-smi", FAKE_SMI), ("serve_bench", FAKE_SERVE_BENCH)):
        (fake / name).write_text(text.replace("PYTHON", sys.executable, 1))
        (fake / name).chmod(stat.S_IRWXU)
    log = tmp_path / "engines.log"
    env = dict(os.environ, FAKE_DIR=str(fake), FAKE_LOG=str(log), WGLLM_BIN=str(fake / "wgllm"),
               LLAMA_BENCH_BIN=str(fake / "llama-bench"), LLAMA_BATCHED_BENCH_BIN=str(fake / "llama-batched-bench"),
               PYTHON=sys.executable, SERVE_BENCH=str(fake / "serve_bench"),
               PATH=str(fake) + os.pathsep + os.environ["PATH"])
    return fake, log, env


def run_script(env, cwd, *args):
    return subprocess.run(["bash", SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=120, env=env,
                          cwd=cwd)


def test_script_end_to_end_with_stand_in_engines(tmp_path):
    fake, log, env = stand_ins(tmp_path)
    models, out = tmp_path / "models", tmp_path / "out"
    p = run_script(env, tmp_path, "--models-dir", models, "--out", out, "--rounds", "2", "--reps", "1", "-d", "16",
                   "--streams", "1,8,16")
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(models)) == ["llama2-7b-q4_0.gguf", "llama2-7b-q4_k_m.gguf", "make.log",
                                          "tinyllama-q4_0.gguf"]
    calls = [c.replace(str(models) + "/", "") for c in log.read_text().splitlines() if not c.startswith("nvidia-smi")]
    assert calls[:4] == [
        "wgllm synth --preset tinyllama --ctx 4096 --type q4_0 --seed 1 .partial-tinyllama-q4_0.gguf",
        "wgllm synth --preset llama2-7b --ctx 8192 --type q4_0 --seed 1 .partial-llama2-7b-q4_0.gguf",
        "wgllm synth --preset llama2-7b --ctx 8192 --type f16 --seed 1 .partial-llama2-7b-q4_k_m-f16.gguf",
        "wgllm quantize .partial-llama2-7b-q4_k_m-f16.gguf .partial-llama2-7b-q4_k_m.gguf q4_k_m",
    ]
    # the warm-up, then round 1 with llama.cpp first
    assert calls[4:6] == ["llama-bench -m tinyllama-q4_0.gguf -ngl 99 -fa 1 -p 512 -n 128 -r 1 -o jsonl",
                          "wgllm bench -m tinyllama-q4_0.gguf --backend webgpu -p 512 -n 128 --reps 1 --json"]
    runs = calls[6:]
    assert runs[:6] == [
        "llama-bench -m tinyllama-q4_0.gguf -ngl 99 -fa 1 -p 512 -n 0 -r 1 -o jsonl",
        "wgllm bench -m tinyllama-q4_0.gguf --backend webgpu -p 512 -n 0 --reps 1 --json",
        "llama-bench -m tinyllama-q4_0.gguf -ngl 99 -fa 1 -p 0 -n 128 -r 1 -o jsonl",
        "wgllm bench -m tinyllama-q4_0.gguf --backend webgpu -p 1 -n 128 --reps 1 --json",
        "llama-bench -m llama2-7b-q4_0.gguf -ngl 99 -fa 1 -p 512 -n 0 -r 1 -o jsonl",
        "wgllm bench -m llama2-7b-q4_0.gguf --backend webgpu -p 512 -n 0 --reps 1 --json",
    ]
    assert "llama-bench -m llama2-7b-q4_0.gguf -ngl 99 -fa 1 -p 0 -n 128 -d 16 -r 1 -o jsonl" in runs
    assert "wgllm bench -m llama2-7b-q4_0.gguf --backend webgpu -p 1 -n 128 -d 16 --reps 1 --json" in runs
    assert runs[14:16] == [
        "llama-batched-bench -m llama2-7b-q4_0.gguf -ngl 99 -fa on -c 2560 -npp 32 -ntg 128 -npl 1,8,16 "
        "--output-format jsonl",
        "wgllm bench -m llama2-7b-q4_0.gguf --backend webgpu -p 1 -n 128 --reps 1 --parallel 1,8,16 --json",
    ]
    # the server after the streams, wgllm's alone (no peer command)
    assert runs[16] == ("serve_bench --model llama2-7b-q4_0.gguf --bin %s --backend webgpu --parallel 16 --levels 8,16 "
                        "--max-tokens 128 --ctx 1024" % (fake / "wgllm"))
    # round 2: wgllm first
    assert runs[17].startswith("wgllm bench -m tinyllama-q4_0.gguf") and runs[18].startswith("llama-bench")
    assert runs[31:34] == [runs[15], runs[14], runs[16]]
    # after the rounds: one host-profiled decode process per decoded model, then the adapter's name
    assert runs[34:] == ["wgllm bench -m %s.gguf --backend webgpu -p 1 -n 128 --reps 1" % m
                         for m in ("llama2-7b-q4_0", "llama2-7b-q4_k_m", "tinyllama-q4_0")] + ["wgllm devices"]
    clocks = log.read_text().count("nvidia-smi --query-gpu=name,driver_version,pstate,clocks.sm")
    assert clocks == 5  # before and after the warm-up, after each round, at the end
    assert [line.split(":")[0] for line in (out / "clocks.log").read_text().splitlines()] == [
        "before warm-up", "start", "after round 1", "after round 2", "end"]
    assert (out / "clocks.log").read_text().count("P0, 1980 MHz, 2619 MHz") == 5

    record = (out / "record.md").read_text()
    assert record == p.stdout
    assert record.startswith("## WebGPU backend against llama.cpp CUDA (")
    for needed in ("GPU: NVIDIA H100 80GB HBM3, 81559 MiB, 580.159.04", "wgpu-native version 29.0.1.1",
                   "after the\n  warm-up: NVIDIA H100 80GB HBM3, 580.159.04, P0, 1980 MHz", "-npl 1,8,16",
                   "`wgllm synth --preset llama2-7b --ctx 8192 --type q4_0 --seed 1 llama2-7b-q4_0.gguf`",
                   "Kernel check on this GPU", "`-d 16` for both", "the binaries given (LLAMA_BENCH_BIN"):
        assert needed in record, needed
    rows = rows_of(record)
    t, s = "tinyllama-q4_0", "llama2-7b-q4_0"
    assert rows[1:] == [
        [t, "pp512", "3000.00 [3000.00-3000.00]", "600.00 [600.00-600.00]", "0.20x"],
        [t, "tg128", "120.00 [120.00-120.00]", "119.97 [119.97-119.97]", "0.99x"],
        [s, "pp512", "1000.00 [1000.00-1000.00]", "600.00 [600.00-600.00]", "0.60x"],
        [s, "tg128", "40.00 [40.00-40.00]", "39.99 [39.99-39.99]", "0.99x"],
        [s, "tg128@d16", "30.00 [30.00-30.00]", "33.00 [33.00-33.00]", "1.10x"],
        ["llama2-7b-q4_k_m", "pp512", "1000.00 [1000.00-1000.00]", "600.00 [600.00-600.00]", "0.60x"],
        ["llama2-7b-q4_k_m", "tg128", "40.00 [40.00-40.00]", "39.99 [39.99-39.99]", "0.99x"],
        [s, "tg128 x 1 streams (aggregate)", "40.00 [40.00-40.00]", "39.00 [39.00-39.00]", "0.97x"],
        # 40 sqrt(8) = 113.13..., 39 * 8^0.75 = 185.52...
        [s, "tg128 x 8 streams (aggregate)", "113.13 [113.13-113.13]", "185.52 [185.52-185.52]", "1.63x"],
        [s, "tg128 x 16 streams (aggregate)", "160.00 [160.00-160.00]", "312.00 [312.00-312.00]", "1.95x"],
        [s, "tg128 x 8 streams, server (from the first token)", "n/a", "145.08 [145.08-145.08]", "n/a"],
        [s, "tg128 x 8 streams, server (wall time)", "n/a", "125.00 [125.00-125.00]", "n/a"],
        [s, "tg128 x 16 streams, server (from the first token)", "n/a", "290.16 [290.16-290.16]", "n/a"],
        [s, "tg128 x 16 streams, server (wall time)", "n/a", "250.00 [250.00-250.00]", "n/a"],
    ]
    # 145.08 / 185.52 = 0.782..., 125 / 185.52 = 0.673...; 290.16 / 312.00 = 0.9300, 250 / 312 = 0.8012...
    assert ("- llama2-7b-q4_0, 8 streams: wgllm serve / wgllm bench --parallel = 0.78x from the first token "
            "(0.67x over the wall time)") in record
    assert ("- llama2-7b-q4_0, 16 streams: wgllm serve / wgllm bench --parallel = 0.93x from the first token "
            "(0.80x over the wall time)") in record
    assert "- llama2-7b-q4_0, wgllm: 8 streams / 1 stream = 4.75x" in record
    assert ("\n  - tinyllama-q4_0: tg128 119.97 tok/s; record dispatches 0.4% (4026 calls, 3.96 us each); "
            "finish + submit 36.3% (70 calls, 19241.00 us each); wait for read-backs 2.6% (66 calls, 1443.51 us "
            "each)\n") in record
    assert record.count("tok/s; record dispatches") == 3

    # the models are kept: a second run (one test, --quick) makes none
    log.write_text("")
    p = run_script(env, tmp_path, "--models-dir", models, "--out", out, "--quick", "--only", "streams")
    assert p.returncode == 0, p.stderr
    calls = [c.split()[0] for c in log.read_text().splitlines() if not c.startswith("nvidia-smi")]
    assert calls == ["llama-bench", "wgllm", "llama-batched-bench", "wgllm", "serve_bench", "wgllm"]
    assert "-npl 1,8,16,32" in log.read_text() and "Rounds: 1" in p.stdout
    assert "host-profile.log):\n  - not run\n" in p.stdout  # no one-stream decode in this run


def test_script_usage_errors(tmp_path):
    for args, message in ((["--bogus"], "unknown option '--bogus'"), (["--rounds", "x"], "'x' is not a number"),
                          (["--reps", "0"], "must be at least 1"), (["--only", "tiny,huge"], "unknown test 'huge'"),
                          (["--streams", "1,,8"], "is not a list of numbers")):
        p = subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and message in p.stderr, (args, p.stderr)
    p = subprocess.run(["bash", SCRIPT, "-h"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("usage: bench/gpu_vs_llamacpp.sh")
    assert "--build-only" in p.stdout and "--skip-peer-build" in p.stdout and "--quick" in p.stdout


def test_script_without_a_peer_build(tmp_path):
    """--skip-peer-build with no CUDA build: a clear error before anything runs."""
    env = dict(os.environ, LLAMA_CUDA_BUILD=str(tmp_path / "none"))
    for k in ("LLAMA_BENCH_BIN", "LLAMA_BATCHED_BENCH_BIN"):
        env.pop(k, None)
    p = subprocess.run(["bash", SCRIPT, "--skip-peer-build"], capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 1 and "has no build (run --build-only first)" in p.stderr
