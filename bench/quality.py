#!/usr/bin/env python3
"""Quality of quantized models against their F32 base: file size, perplexity and
KL divergence on one text, as a Markdown table.

usage: bench/quality.py BASE.gguf TEXT.txt ITEM... [--wgllm BIN] [--ctx N] [--stride S]
                        [-t THREADS] [--backend B] [--imatrix FILE] [--keep DIR]

Each ITEM is a quantization type (q4_0, q4_k_m, ...), made from BASE with
`wgllm quantize BASE OUT TYPE [--imatrix FILE]`, or an existing GGUF file (shown
under its file name). The base is evaluated once with --save-logits; every item
then with --kl-base, so all rows use the same tokens and windows. Needs only the
Python standard library.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def human_size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024


def run(cmd, what):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if p.returncode != 0:
        first = (p.stderr.strip().splitlines() or ["(no message)"])[0]
        sys.exit(f"quality: error: {what} failed (exit {p.returncode}): {first}")
    return p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base")
    ap.add_argument("text")
    ap.add_argument("items", nargs="+")
    ap.add_argument("--wgllm", default=os.environ.get("WGLLM_BIN", REPO / "build" / "wgllm"))
    ap.add_argument("--ctx", type=int)
    ap.add_argument("--stride", type=int)
    ap.add_argument("-t", "--threads", type=int)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--imatrix", help="passed to wgllm quantize")
    ap.add_argument("--keep", help="keep the quantized files in this folder")
    a = ap.parse_args()

    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="wgllm-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        ppl = [a.wgllm, "perplexity", "-f", a.text, "--json", "--backend", a.backend]
        if a.threads:
            ppl += ["-t", a.threads]
        window = []
        if a.ctx:
            window += ["--ctx", a.ctx]
        if a.stride:
            window += ["--stride", a.stride]
        base_kl = work / "base.kl"
        base = json.loads(run(ppl + ["-m", a.base, "--save-logits", base_kl] + window, f"perplexity of {a.base}"))
        rows = [("base: " + Path(a.base).name, os.path.getsize(a.base), base, None)]
        for item in a.items:
            if item.endswith(".gguf") and Path(item).is_file():
                path, label = Path(item), Path(item).name
            else:
                path, label = work / f"{item}.gguf", item
                cmd = [a.wgllm, "quantize", a.base, path, item]
                if a.imatrix:
                    cmd += ["--imatrix", a.imatrix]
                run(cmd, f"wgllm quantize to {item}")
            res = json.loads(run(ppl + ["-m", path, "--kl-base", base_kl], f"perplexity of {label}"))
            rows.append((label, path.stat().st_size, res, res["kl"]))
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(f"Text: {Path(a.text).name}, {base['tokens']} tokens ({base['scored']} scored), "
          f"ctx {base['ctx']}, stride {base['stride']}, backend {a.backend}.")
    print()
    print("| type | size | PPL | ΔPPL | mean KL | same top token |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, size, res, kl in rows:
        ppl_cell = f"{res['ppl']:.4f} ± {res['ppl_se']:.4f}"
        if kl is None:
            print(f"| {label} | {human_size(size)} | {ppl_cell} | | | |")
            continue
        d = res["ppl"] - base["ppl"]
        print(f"| {label} | {human_size(size)} | {ppl_cell} | {d:+.4f} ({100 * d / base['ppl']:+.2f}%) | "
              f"{kl['mean']:.3e} ± {kl['mean_se']:.1e} | {kl['same_top_pct']:.2f}% |")


if __name__ == "__main__":
    main()
