"""bench/cpu_vs_llamacpp.sh and its table (bench/peer_table.py), without running either engine:
canned `llama-bench -o jsonl` and `wgllm bench --json` lines, and stand-in engines that print
them, so that the parsing, the medians and the truncated ratios are checked exactly."""

import importlib.util
import inspect
import json
import os
import stat
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPT = REPO / "bench" / "cpu_vs_llamacpp.sh"


def load_table():
    spec = importlib.util.spec_from_file_location("peer_table", REPO / "bench" / "peer_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def llama_record(n_prompt, n_gen, n_depth, samples, threads=2):
    """One line as `llama-bench -o jsonl` prints it (the fields of llama-cpp-python 0.3.36's tree)."""
    avg = sum(samples) / len(samples)
    rec = {"build_commit": "abc1234", "build_number": 7000, "cpu_info": "AMD EPYC", "gpu_info": "",
           "backends": "CPU", "model_filename": "m.gguf", "model_type": "llama 1B Q4_0",
           "model_size": 630000000, "model_n_params": 1100000000, "n_batch": 2048, "n_ubatch": 512,
           "n_threads": threads, "cpu_mask": "0x0", "cpu_strict": False, "poll": 50, "type_k": "f16",
           "type_v": "f16", "n_gpu_layers": 99, "n_cpu_moe": 0, "split_mode": "layer", "main_gpu": 0,
           "no_kv_offload": False, "flash_attn": -1, "devices": "auto", "tensor_split": "0.00",
           "tensor_buft_overrides": "none", "load_mode": "mmap", "lazy_mode": False, "embeddings": False,
           "no_op_offload": 0, "no_host": False, "repack": True, "fit_target": 0, "fit_min_ctx": 0,
           "n_prompt": n_prompt, "n_gen": n_gen, "n_depth": n_depth, "test_time": "2026-12-06T09:00:00Z",
           "avg_ns": 1, "stddev_ns": 0, "avg_ts": avg, "stddev_ts": 0.0, "samples_ns": [1] * len(samples),
           "samples_ts": samples}
    return json.dumps(rec)


def wgllm_record(n_prompt, n_gen, pp, tg):
    return ('{"model":"m","backend":"cpu","threads":2,"n_prompt":%d,"n_gen":%d,"reps":3,'
            '"prompt_tok_s":%s,"gen_tok_s":%s,"ttft_s":0.1,"peak_rss_mib":600.0,"weight_bytes":619094016,'
            '"device_memory_bytes":0}' % (n_prompt, n_gen, pp, tg))


def rows_of(text):
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("| ") and "---" not in line]


def test_truncation_never_rounds_up():
    t = load_table()
    assert t.trunc2("0.999") == "0.99" and t.trunc2("1") == "1.00" and t.trunc2("126.734") == "126.73"
    assert t.ratio(2.99, 3) == "0.99x"  # 0.9966...: rounding would say 1.00x
    assert t.ratio(30, 30) == "1.00x" and t.ratio(1, 3) == "0.33x" and t.ratio(2, 3) == "0.66x"
    assert t.ratio(None, 3) == "n/a" and t.ratio(3, 0) == "n/a"
    # decimals are exact: 0.29 / 1 is 0.29, where binary floats would floor 28.999... to 0.28
    from decimal import Decimal
    assert t.ratio(Decimal("0.29"), Decimal("1")) == "0.29x"


def test_table_from_canned_output(tmp_path):
    t = load_table()
    raw = [
        # round 1: pp512, tg128, tg128 at depth 2048 (llama-bench medians: 100, 37.4, 20)
        ("llama.cpp", "tinyllama-q4_0", 2, "pp512", 1, llama_record(512, 0, 0, [90.0, 100.0, 500.0])),
        ("wgllm", "tinyllama-q4_0", 2, "pp512", 1, wgllm_record(512, 0, "31.20", "0.00")),
        ("llama.cpp", "tinyllama-q4_0", 2, "tg128", 1, llama_record(0, 128, 0, [37.4])),
        ("wgllm", "tinyllama-q4_0", 2, "tg128", 1, wgllm_record(1, 128, "0.00", "37.39")),
        ("llama.cpp", "tinyllama-q4_0", 2, "tg128@d2048", 1, llama_record(0, 128, 2048, [20.0, 20.0])),
        ("wgllm", "tinyllama-q4_0", 2, "tg128@d2048", 1, wgllm_record(2048, 128, "9.00", "21.00")),
        # round 2 (wgllm first): the table takes the median of the rounds
        ("wgllm", "tinyllama-q4_0", 2, "pp512", 2, wgllm_record(512, 0, "33.20", "0.00")),
        ("llama.cpp", "tinyllama-q4_0", 2, "pp512", 2, llama_record(512, 0, 0, [110.0])),
        ("wgllm", "tinyllama-q4_0", 2, "tg128", 2, wgllm_record(1, 128, "0.00", "37.39")),
        ("llama.cpp", "tinyllama-q4_0", 2, "tg128", 2, llama_record(0, 128, 0, [37.4])),
        ("wgllm", "tinyllama-q4_0", 2, "tg128@d2048", 2, wgllm_record(2048, 128, "9.00", "21.00")),
        ("llama.cpp", "tinyllama-q4_0", 2, "tg128@d2048", 2, llama_record(0, 128, 2048, [20.0])),
    ]
    path = tmp_path / "raw.tsv"
    path.write_text("".join("%s\t%s\t%d\t%s\t%d\t%s\n" % r for r in raw))
    p = subprocess.run([sys.executable, REPO / "bench" / "peer_table.py", path], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    rows = rows_of(p.stdout)
    assert rows[0] == ["model", "threads", "test", "llama.cpp tok/s", "wgllm tok/s", "wgllm / llama.cpp"]
    assert rows[1] == ["tinyllama-q4_0", "2", "pp512", "105.00 [100.00-110.00]", "32.20 [31.20-33.20]", "0.30x"]
    # 37.39 / 37.4 = 0.99973...: truncated, not rounded to 1.00x
    assert rows[2] == ["tinyllama-q4_0", "2", "tg128", "37.40 [37.40-37.40]", "37.39 [37.39-37.39]", "0.99x"]
    assert rows[3] == ["tinyllama-q4_0", "2", "tg128@d2048", "20.00 [20.00-20.00]", "21.00 [21.00-21.00]", "1.05x"]
    assert len(rows) == 4
    assert "wgllm's peak RSS (largest of the rounds):\n- tinyllama-q4_0, 2 threads, pp512: 600.00 MiB (weights 590.41 MiB)" in p.stdout
    assert "llama-bench reports: build_commit abc1234; build_number 7000; backends CPU; flash_attn -1 (auto)" in p.stdout

    # runs split in two files make the same table
    half = path.read_text().splitlines(keepends=True)
    (tmp_path / "a.tsv").write_text("".join(half[:5]))
    (tmp_path / "b.tsv").write_text("".join(half[5:]))
    split = subprocess.run([sys.executable, REPO / "bench" / "peer_table.py", tmp_path / "a.tsv", tmp_path / "b.tsv"],
                           capture_output=True, text=True, timeout=60, check=True)
    assert split.stdout == p.stdout

    # the no-AMX build gets its own columns; a missing engine is n/a, never a guess
    with open(path, "a") as f:
        f.write("llama.cpp-noamx\ttinyllama-q4_0\t2\tpp512\t1\t%s\n" % llama_record(512, 0, 0, [64.4]))
        f.write("wgllm\ttinyllama-q8_0\t2\tpp512\t1\t%s\n" % wgllm_record(512, 0, "10.00", "0.00"))
    rows = rows_of(subprocess.run([sys.executable, REPO / "bench" / "peer_table.py", path], capture_output=True,
                                  text=True, timeout=60, check=True).stdout)
    assert rows[0][6:] == ["llama.cpp no AMX tok/s", "wgllm / llama.cpp no AMX"]
    assert rows[1][6:] == ["64.40", "0.50x"]  # 32.2 / 64.4
    assert rows[2][6:] == ["n/a", "n/a"]
    assert rows[4] == ["tinyllama-q8_0", "2", "pp512", "n/a", "10.00", "n/a", "n/a", "n/a"]


def test_table_rejects_mismatched_or_malformed_lines(tmp_path):
    t = load_table()
    with pytest.raises(ValueError, match="record is tg128, expected pp512"):
        t.parse_raw(["llama.cpp\tm\t2\tpp512\t1\t%s\n" % llama_record(0, 128, 0, [1.0])])
    with pytest.raises(ValueError, match="has 3 fields"):
        t.parse_raw(["llama.cpp\tm\t2\n"])
    with pytest.raises(ValueError, match="unknown engine"):
        t.parse_raw(["ollama\tm\t2\tpp512\t1\t{}\n"])
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    p = subprocess.run([sys.executable, REPO / "bench" / "peer_table.py", empty], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 1 and "no results" in p.stderr


FAKE_LLAMA_BENCH = r'''#!PYTHON
import json, os, sys
sys.path.insert(0, os.environ["FAKE_DIR"])
from fake_records import llama_record
a = sys.argv[1:]
noamx = sys.argv[0].endswith("-noamx")
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(os.path.basename(sys.argv[0]) + " " + " ".join(a) + "\n")
opt = dict(zip(a[::2], a[1::2]))
p, n, d, r = int(opt["-p"]), int(opt["-n"]), int(opt.get("-d", 0)), int(opt["-r"])
assert opt["-o"] == "jsonl" and os.path.isfile(opt["-m"])
speed = {(8, 0, 0): 100.0, (0, 4, 0): 3.0, (0, 4, 16): 2.0}[(p, n, d)] / (2 if noamx else 1)
print("noise before the records")
print(llama_record(p, n, d, [speed] * r, int(opt["-t"])))
'''

FAKE_WGLLM = r'''#!PYTHON
import os, sys
sys.path.insert(0, os.environ["FAKE_DIR"])
from fake_records import wgllm_record
a = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write("wgllm " + " ".join(a) + "\n")
if a[0] == "synth":
    if os.environ.get("FAKE_SYNTH_FAILS"):
        sys.exit("wgllm synth: error: disk full")
    open(a[-1], "wb").write(b"GGUF synth")
elif a[0] == "quantize":
    assert open(a[1], "rb").read() == b"GGUF synth" and a[3] == "q4_k_m"
    open(a[2], "wb").write(b"GGUF quantized")
else:
    opt = dict(zip(a[1::2], a[2::2]))
    assert a[0] == "bench" and opt["--backend"] == "cpu" and "--json" in a and os.path.isfile(opt["-m"])
    p, n, d = int(opt["-p"]), int(opt["-n"]), int(opt.get("-d", 0))
    tg = {(8, 0, 0): 0.0, (1, 4, 0): 2.99, (1, 4, 16): 2.5}[(p, n, d)]
    print(wgllm_record(p, n, "100.00" if n == 0 else "5.00", "%.2f" % tg))
'''


def stand_ins(tmp_path):
    """Stand-in engines in tmp_path/fake and the environment that makes the script use them."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "fake_records.py").write_text(
        "import json\n" + "".join(inspect.getsource(f) + "\n" for f in (llama_record, wgllm_record)))
    for name, text in (("llama-bench", FAKE_LLAMA_BENCH), ("llama-bench-noamx", FAKE_LLAMA_BENCH),
                       ("wgllm", FAKE_WGLLM)):
        (fake / name).write_text(text.replace("PYTHON", sys.executable, 1))
        (fake / name).chmod(stat.S_IRWXU)
    log = tmp_path / "engines.log"
    env = dict(os.environ, FAKE_DIR=str(fake), FAKE_LOG=str(log), WGLLM_BIN=str(fake / "wgllm"),
               LLAMA_BENCH_BIN=str(fake / "llama-bench"), PYTHON=sys.executable)
    env.pop("LLAMA_BENCH_NOAMX_BIN", None)
    return fake, log, env


def test_script_end_to_end_with_stand_in_engines(tmp_path):
    fake, log, env = stand_ins(tmp_path)
    models, out = tmp_path / "models", tmp_path / "out"
    p = subprocess.run(["bash", SCRIPT, "--models-dir", models, "--out", out, "-t", "2", "--rounds", "2",
                        "--reps", "1", "-p", "8", "-n", "4", "-d", "16", "--only", "tinyllama-q4_0,tinyllama-q4_k_m"],
                       capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(models)) == ["make.log", "tinyllama-q4_0.gguf", "tinyllama-q4_k_m.gguf"]
    calls = log.read_text().splitlines()
    assert calls[0].startswith("wgllm synth --preset tinyllama --ctx 4096 --type q4_0 --seed 1 ")
    assert calls[1].startswith("wgllm synth --preset tinyllama --ctx 4096 --type f16 --seed 1 ")
    assert calls[2].startswith("wgllm quantize ") and calls[2].endswith(" q4_k_m")
    runs = [c.replace(str(models) + "/", "") for c in calls[3:]]
    # round 1: llama-bench first; round 2: wgllm first; each test is one process of each engine
    assert runs[:6] == [
        "llama-bench -m tinyllama-q4_0.gguf -t 2 -p 8 -n 0 -r 1 -o jsonl",
        "wgllm bench -m tinyllama-q4_0.gguf --backend cpu -t 2 -p 8 -n 0 --reps 1 --json",
        "llama-bench -m tinyllama-q4_0.gguf -t 2 -p 0 -n 4 -r 1 -o jsonl",
        "wgllm bench -m tinyllama-q4_0.gguf --backend cpu -t 2 -p 1 -n 4 --reps 1 --json",
        "llama-bench -m tinyllama-q4_0.gguf -t 2 -p 0 -n 4 -d 16 -r 1 -o jsonl",
        "wgllm bench -m tinyllama-q4_0.gguf --backend cpu -t 2 -p 1 -n 4 -d 16 --reps 1 --json",
    ]
    assert runs[6:10] == [
        "llama-bench -m tinyllama-q4_k_m.gguf -t 2 -p 8 -n 0 -r 1 -o jsonl",
        "wgllm bench -m tinyllama-q4_k_m.gguf --backend cpu -t 2 -p 8 -n 0 --reps 1 --json",
        "llama-bench -m tinyllama-q4_k_m.gguf -t 2 -p 0 -n 4 -r 1 -o jsonl",
        "wgllm bench -m tinyllama-q4_k_m.gguf --backend cpu -t 2 -p 1 -n 4 --reps 1 --json",
    ]
    assert runs[10:12] == [
        "wgllm bench -m tinyllama-q4_0.gguf --backend cpu -t 2 -p 8 -n 0 --reps 1 --json",
        "llama-bench -m tinyllama-q4_0.gguf -t 2 -p 8 -n 0 -r 1 -o jsonl",
    ]
    assert len(runs) == 20
    record = (out / "record.md").read_text()
    assert record == p.stdout
    assert record.startswith("## CPU backend against llama.cpp (")
    for needed in ("Machine: ", "flags of interest:", "wgllm commit: ", "-DGGML_NATIVE=ON",
                   "Command: `bench/cpu_vs_llamacpp.sh --models-dir", "`wgllm synth --preset tinyllama --ctx 4096"
                   " --type q4_0 --seed 1 tinyllama-q4_0.gguf`", "both engines `-d 16`"):
        assert needed in record, needed
    rows = rows_of(record)
    assert rows[1:] == [
        ["tinyllama-q4_0", "2", "pp8", "100.00 [100.00-100.00]", "100.00 [100.00-100.00]", "1.00x"],
        ["tinyllama-q4_0", "2", "tg4", "3.00 [3.00-3.00]", "2.99 [2.99-2.99]", "0.99x"],
        ["tinyllama-q4_0", "2", "tg4@d16", "2.00 [2.00-2.00]", "2.50 [2.50-2.50]", "1.25x"],
        ["tinyllama-q4_k_m", "2", "pp8", "100.00 [100.00-100.00]", "100.00 [100.00-100.00]", "1.00x"],
        ["tinyllama-q4_k_m", "2", "tg4", "3.00 [3.00-3.00]", "2.99 [2.99-2.99]", "0.99x"],
    ]

    # the models are kept: a second run makes none
    log.write_text("")
    p = subprocess.run(["bash", SCRIPT, "--models-dir", models, "--out", out, "-t", "2", "--rounds", "1",
                        "--reps", "1", "-p", "8", "-n", "4", "-d", "0", "--only", "tinyllama-q4_0"],
                       capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert [c.split()[:2] for c in log.read_text().splitlines()] == [["llama-bench", "-m"], ["wgllm", "bench"]] * 2


def test_script_usage_errors():
    for args, message in ((["--bogus"], "unknown option '--bogus'"), (["--rounds", "x"], "'x' is not a number"),
                          (["-n", "0"], "must be at least 1")):
        p = subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and message in p.stderr, (args, p.stderr)
    p = subprocess.run(["bash", SCRIPT, "-h"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("usage: bench/cpu_vs_llamacpp.sh")


def test_script_with_a_build_without_amx(tmp_path):
    """Where llama.cpp uses AMX, a build without it is a third engine with its own ratio column."""
    fake, log, env = stand_ins(tmp_path)
    env["LLAMA_BENCH_NOAMX_BIN"] = str(fake / "llama-bench-noamx")
    p = subprocess.run(["bash", SCRIPT, "--models-dir", tmp_path / "models", "--out", tmp_path / "out", "-t", "2",
                        "--rounds", "2", "--reps", "2", "-p", "8", "-n", "4", "-d", "0", "--only", "tinyllama-q8_0"],
                       capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    engines = [c.split()[0] for c in log.read_text().splitlines()[1:]]
    assert engines == ["llama-bench", "llama-bench-noamx", "wgllm"] * 2 + ["wgllm", "llama-bench-noamx",
                                                                            "llama-bench"] * 2
    assert "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" in p.stdout
    assert "depth" not in p.stdout  # -d 0: no depth test, and no word of one
    rows = rows_of(p.stdout)
    assert rows[0][6:] == ["llama.cpp no AMX tok/s", "wgllm / llama.cpp no AMX"]
    assert rows[1] == ["tinyllama-q8_0", "2", "pp8", "100.00 [100.00-100.00]", "100.00 [100.00-100.00]", "1.00x",
                       "50.00 [50.00-50.00]", "2.00x"]
    assert rows[2] == ["tinyllama-q8_0", "2", "tg4", "3.00 [3.00-3.00]", "2.99 [2.99-2.99]", "0.99x",
                       "1.50 [1.50-1.50]", "1.99x"]


def test_script_stops_when_a_model_cannot_be_made(tmp_path):
    fake, log, env = stand_ins(tmp_path)
    env["FAKE_SYNTH_FAILS"] = "1"
    models = tmp_path / "models"
    p = subprocess.run(["bash", SCRIPT, "--models-dir", models, "--out", tmp_path / "out", "-t", "2",
                        "--only", "tinyllama-q4_0"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert p.returncode == 1
    assert "disk full" in p.stderr and "making tinyllama-q4_0 failed" in p.stderr
    assert not (models / "tinyllama-q4_0.gguf").exists()
    assert not [c for c in log.read_text().splitlines() if " bench " in c or c.startswith("llama-bench")]
