"""bench/serve_bench.py against a real `wgllm serve` (CPU backend, the 260K golden model): the
levels' token counts, both aggregates and their definitions, and the usage errors."""

import json
import subprocess
import sys

from conftest import REPO

SCRIPT = REPO / "bench" / "serve_bench.py"


def run(*args, timeout=300):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_levels_and_aggregates(golden_cases, wgllm):
    model = golden_cases["aidreams260K_greedy_once"].gguf
    p = run("--model", model, "--bin", wgllm.binary, "--backend", "cpu", "--threads", 1, "--parallel", 4,
            "--levels", "1,4", "--max-tokens", 24)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0].startswith("| streams | generated tokens | wall s | aggregate tok/s | decode aggregate tok/s")
    out = json.loads(lines[-1])
    assert out["backend"] == "cpu" and out["max_tokens"] == 24
    levels = out["levels"]
    assert [lv["streams"] for lv in levels] == [1, 4]
    for lv in levels:
        n = lv["streams"]
        assert lv["generated_tokens"] == 24 * n  # ignore_eos: every stream runs to max_tokens
        assert 0 <= lv["decode_seconds"] <= lv["wall_seconds"] + 1e-6
        # the tokens after each stream's first, over the span from the first first token to the
        # last last token. The script rounds what it prints: seconds to 1 us (TTFT to 1 ms), rates
        # to 0.01. The server sends the text made since its last event in one event, so a level of
        # this tiny model on a busy machine can arrive in a few events microseconds apart, or a
        # lone stream whole in one: then there is no span, and no decode aggregate.
        rate, span = lv["decode_aggregate_tok_s"], lv["decode_seconds"]
        if rate is None:
            assert span <= 5e-7, lv
        else:
            lo, hi = 23 * n / (span + 5e-7), 23 * n / max(span - 5e-7, 1e-12)
            assert 0.99 * lo - 0.01 <= rate <= 1.01 * hi + 0.01, lv
        assert abs(lv["aggregate_tok_s"] - 24 * n / lv["wall_seconds"]) <= 0.01 * lv["aggregate_tok_s"] + 0.01, lv
        assert 0 <= lv["median_ttft_s"] <= lv["wall_seconds"] + 6e-4, lv
        row = next(r for r in lines if r.startswith(f"| {n} | "))
        assert row.split(" | ")[4] == str(lv["decode_aggregate_tok_s"]), row


def test_usage_errors(tmp_path):
    p = run()
    assert p.returncode == 2 and "give --model or --url" in p.stderr
    # a server that never starts: the script says so instead of hanging
    p = run("--model", tmp_path / "missing.gguf", "--bin", "/bin/false", "--levels", "1", timeout=120)
    assert p.returncode != 0 and "server exited with 1" in p.stderr, p.stderr
