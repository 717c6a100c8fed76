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
A streams result is the test `tg<N> x<S>` (S streams). TEST `server` is wgllm's alone: the last
line of bench/serve_bench.py (its levels' decode_aggregate_tok_s and aggregate_tok_s, the tests
`tg<N> x<S> server` and `tg<N> x<S> server wall`), set beside the engine's own aggregate at S
streams. The table's number is the median over the rounds; every printed value is truncated,
never rounded up (peer_table.py's rules).
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
    if test == "server":
        if engine != "wgllm":
            raise ValueError("a server result is wgllm's")
        rec = json.loads(text, parse_float=Decimal, parse_int=Decimal)
        out = []
        for lv in rec["levels"]:
            name = stream_test(rec["max_tokens"], lv["streams"]) + " server"
            if lv.get("decode_aggregate_tok_s") is not None:
                out.append((name, lv["decode_aggregate_tok_s"]))
            out.append((name + " wall", lv["aggregate_tok_s"]))
        return out
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
        label = test
        if " x" in test:
            base, server, wall = test.replace(" x", " x ").partition(" server")
            label = base + (" streams (aggregate)" if not server else
                            " streams, server (wall time)" if wall else " streams, server (from the first token)")
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


def server_lines(results):
    """Lines of `server / engine` per model and stream count, where both were measured."""
    lines = []
    for (model, test), by in results.items():
        if not test.endswith(" server") or not by.get("wgllm"):
            continue
        engine = results.get((model, test[: -len(" server")]), {}).get("wgllm")
        if not engine:
            continue
        wall = results.get((model, test + " wall"), {}).get("wgllm")
        streams = test.split(" x")[1].split()[0]
        lines.append("- %s, %s streams: wgllm serve / wgllm bench --parallel = %s from the first token (%s over "
                     "the wall time)" % (model, streams, ratio(statistics.median(by["wgllm"]), statistics.median(engine)),
                                         ratio(statistics.median(wall), statistics.median(engine)) if wall else "n/a"))
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
    more = scaling(results) + server_lines(results)
    if more:
        print()
        print("\n".join(more))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
