"""`wgllm bench`: runs on both backends and reports what it says it does (a table or one
JSON object per test, positive rates, one line per --parallel level). Speed itself is not
checked here (benchmarks are not timed tests); bad arguments are usage errors."""

import json

import pytest


@pytest.fixture(scope="module")
def model(synth):
    return synth("bench-small-q4_0", ["--preset", "small", "--type", "q4_0", "--seed", "3"])


@pytest.mark.parametrize("backend", ["cpu", "webgpu"])
def test_bench_json(wgllm, model, backend):
    out = wgllm.ok("bench", "-m", model, "--backend", backend, "-p", 8, "-n", 4, "--reps", 2, "-t", 2,
                   "--parallel", "1,3", "--json", timeout=300).stdout.decode()
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 3, out
    main, par = rows[0], rows[1:]
    assert main["backend"] == backend and main["n_prompt"] == 8 and main["n_gen"] == 4
    assert main["prompt_tok_s"] > 0 and main["gen_tok_s"] > 0 and main["ttft_s"] > 0
    assert [p["streams"] for p in par] == [1, 3]
    assert all(p["aggregate_gen_tok_s"] > 0 and p["n_gen"] == 4 for p in par)


def test_bench_table(wgllm, model):
    out = wgllm.ok("bench", "-m", model, "--backend", "cpu", "-p", 4, "-n", 2, "--reps", 1, "-t", 2,
                   "--parallel", "2").stdout.decode()
    assert "| pp4 |" in out and "| tg2 |" in out and "time to first token" in out
    assert "tg2 x 2 streams" in out and "median of 1" in out


@pytest.mark.parametrize("args", [["--parallel", "0"], ["--parallel", "1,x"], ["--reps", "0"], ["-p", "-1"], []])
def test_bench_bad_arguments(wgllm, model, args):
    p = wgllm.run("bench", *(["-m", model] if args else []), *args)
    assert p.returncode == 2, p.stderr
    assert b"wgllm bench: error:" in p.stderr


def test_bench_depth(wgllm, model):
    """-d fills the cache first: the tests run past it (named as llama-bench names them) and
    only the context left beside it is theirs."""
    out = wgllm.ok("bench", "-m", model, "--backend", "cpu", "-p", 4, "-n", 2, "--reps", 2, "-t", 2,
                   "-d", 40).stdout.decode()
    assert "| pp4 @ d40 |" in out and "| tg2 @ d40 |" in out, out
    row = json.loads(wgllm.ok("bench", "-m", model, "--backend", "cpu", "-p", 4, "-n", 2, "--reps", 1,
                              "-t", 2, "-d", 40, "--json").stdout)
    assert row["depth"] == 40 and row["n_prompt"] == 4 and row["gen_tok_s"] > 0
    n_ctx = 1024  # the small preset's context
    wgllm.ok("bench", "-m", model, "--backend", "cpu", "-p", 3, "-n", 2, "--reps", 1, "-t", 2, "-d", n_ctx - 5)
    p = wgllm.run("bench", "-m", model, "--backend", "cpu", "-p", 4, "-n", 2, "--reps", 1, "-t", 2,
                  "-d", n_ctx - 5)
    assert p.returncode == 1 and b"less -d 1019" in p.stderr, p.stderr
    p = wgllm.run("bench", "-m", model, "--backend", "cpu", "-d", n_ctx)
    assert p.returncode == 1 and b"give a smaller -d" in p.stderr, p.stderr
    p = wgllm.run("bench", "-m", model, "-d", "-1")
    assert p.returncode == 2 and b"wgllm bench: error:" in p.stderr, p.stderr
