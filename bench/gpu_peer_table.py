#!/usr/bin/env python3
"""The table of bench/gpu_vs_llamacpp.sh: tok/s of wgllm's WebGPU backend and llama.cpp's CUDA
backend, the ratio wgllm / llama.cpp, and wgllm's 8 streams / 1 stream.

Reads the script's raw.tsv (several make one table), one line per result:
    ENGINE <tab> MODEL <tab> TEST <tab> ROUND <tab> JSON
ENGINE is llama.cpp or wgllm. TEST is pp512, tg128, tg128@d4096 or `streams`. JSON is
- for llama.cpp: one `llama-bench -o jsonl` record (its test must match TEST), or for `streams`
  one `llama-batched-bench --output-format jsonl` record (pl streams, its S_TG speed_tg: the
  aggregate generation rate);
- for wgllm: one `wgllm bench --json` line (prompt_tok_s for pp, gen_tok_s for tg), or for
  `streams` its `--parallel` lines (streams, aggregate_gen_tok_s); the plain line of a streams
  run is not a result.
A streams result is the test `tg<N> x<S>` (S streams). The table's number is the median over the
rounds; every printed value is truncated, never rounded up (peer_table.py's rules).
Standard library only.
"""
import json
import os
import statistics
import sys
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_table import cell, process_value, ratio  # noqa: E402

ENGINES = ("llama.cpp", "wgllm")


def stream_test(n_gen, streams):
    return "tg%d x%d" % (int(n_gen), int(streams))


def values_of(engine, test, text):
    """[(test name, tok/s)] of one JSON line ([] where the line is no result)."""
    if test != "streams":
        return [(test, process_value(engine, test, text))]
    rec = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    if engine == "llama.cpp":
        if "pl" not in rec or "speed_tg" not in rec:
            raise ValueError("not a llama-batched-bench record")
        return [(stream_test(rec["tg"], rec["pl"]), rec["speed_tg"])]
    if "streams" not in rec:
        return []  # wgllm bench's own tg line of the --parallel run
    return [(stream_test(rec["n_gen"], rec["streams"]), rec["aggregate_gen_tok_s"])]


def parse_raw(lines):
    """{(model, test): {engine: [value per round]}}, keys in first-seen order."""
    results = {}
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        parts = line.split("\t", 4)
        if len(parts) != 5:
            raise ValueError("raw line %d has %d fields, not 5" % (n, len(parts)))
        engine, model, test, _round, text = parts
        if engine not in ENGINES:
            raise ValueError("raw line %d: unknown engine %r" % (n, engine))
        try:
            got = values_of(engine, test, text)
        except (ValueError, KeyError) as e:
            raise ValueError("raw line %d: %s" % (n, e)) from None
        for name, value in got:
            results.setdefault((model, name), {}).setdefault(engine, []).append(value)
    return results


def table(results):
    out = ["| model | test | llama.cpp CUDA tok/s | wgllm WebGPU tok/s | wgllm / llama.cpp |",
           "| --- | --- | ---: | ---: | ---: |"]
    for (model, test), by in results.items():
        med = {e: statistics.median(v) if v else None for e, v in by.items()}
        label = test.replace(" x", " x ") + " streams (aggregate)" if " x" in test else test
        out.append("| %s | %s | %s | %s | %s |" % (model, label, cell(by.get("llama.cpp")), cell(by.get("wgllm")),
                                                    ratio(med.get("wgllm"), med.get("llama.cpp"))))
    return "\n".join(out)


def scaling(results, many=8):
    """Lines of `many streams / 1 stream` per model and engine, where both were measured."""
    lines = []
    for (model, test), by in results.items():
        if not test.endswith(" x%d" % many):
            continue
        one = results.get((model, test[: -len(" x%d" % many)] + " x1"), {})
        for engine in ENGINES:
            if by.get(engine) and one.get(engine):
                lines.append("- %s, %s: %d streams / 1 stream = %s" % (
                    model, engine, many, ratio(statistics.median(by[engine]), statistics.median(one[engine]))))
    return lines


def main(argv):
    if len(argv) < 2:
        sys.stderr.write("usage: gpu_peer_table.py RAW.tsv...\n")
        return 2
    lines = []
    for path in argv[1:]:
        with open(path, encoding="utf-8") as f:
            lines += f.readlines()
    results = parse_raw(lines)
    if not results:
        sys.stderr.write("gpu_peer_table.py: no results in %s\n" % " ".join(argv[1:]))
        return 1
    print(table(results))
    more = scaling(results)
    if more:
        print()
        print("\n".join(more))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
