"""bench/quality.py: the Markdown table of size, perplexity and KL divergence, on
files made by `wgllm convert` (each row checked against `wgllm perplexity`)."""

import json
import subprocess
import sys

from conftest import REPO, THREADS

TEXT = REPO / "tests" / "data" / "eval_stories.txt"


def test_quality_table(wgllm, converted):
    base, q8, q4 = (converted("aidreams260K", t) for t in ("f32", "q8_0", "q4_0"))
    p = subprocess.run([sys.executable, REPO / "bench" / "quality.py", base, TEXT, base, q8, q4,
                        "--wgllm", wgllm.binary, "-t", THREADS, "--ctx", "64", "--stride", "32"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("Text: eval_stories.txt,") and "ctx 64, stride 32" in lines[0]
    assert lines[2] == "| type | size | PPL | ΔPPL | mean KL | same top token |"
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[4:]]
    assert [r[0] for r in rows] == [f"base: {base.name}", base.name, q8.name, q4.name]

    def ppl(model):
        return json.loads(wgllm.ok("perplexity", "-m", model, "-f", TEXT, "--backend", "cpu", "-t", THREADS,
                                   "--ctx", 64, "--stride", 32, "--json").stdout)["ppl"]

    base_ppl = ppl(base)
    assert rows[0][2].startswith(f"{base_ppl:.4f} ± ")
    assert rows[1][3].startswith("+0.0000") and rows[1][4].startswith("0.000e+00") and rows[1][5] == "100.00%"
    for row, model in ((rows[2], q8), (rows[3], q4)):
        assert row[2].startswith(f"{ppl(model):.4f} ± ")
        assert float(row[4].split()[0]) > 0
    assert float(rows[3][4].split()[0]) > float(rows[2][4].split()[0])  # q4_0 drifts more than q8_0
    assert rows[0][1].endswith("KiB") and q4.stat().st_size < q8.stat().st_size < base.stat().st_size


def test_quality_missing_file(wgllm, shared):
    p = subprocess.run([sys.executable, REPO / "bench" / "quality.py", shared / "models" / "missing.gguf", TEXT,
                        "x.gguf", "--wgllm", wgllm.binary], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stderr.startswith("quality: error: perplexity of ")
