#!/usr/bin/env python3
"""The table of bench/cpu_vs_llamacpp.sh: tok/s of both engines and the ratio wgllm / llama.cpp.

Reads the script's raw.tsv (several, from runs split by model or thread count, make one table),
one line per result:
    ENGINE <tab> MODEL <tab> THREADS <tab> TEST <tab> ROUND <tab> JSON
where ENGINE is llama.cpp, llama.cpp-noamx or wgllm; JSON is one `llama-bench -o jsonl` record
(its test is named from n_prompt, n_gen and n_depth, and must match TEST) or one
`wgllm bench --json` line (prompt_tok_s for a pp TEST, gen_tok_s for a tg TEST).
A process's number is the median of its samples (wgllm bench prints that median); the table's
number is the median over the rounds. Numbers are read as decimals and every printed value is
truncated, never rounded up. Standard library only.
"""
import fractions
import json
import math
import statistics
import sys
from decimal import Decimal

ENGINES = ("llama.cpp", "llama.cpp-noamx", "wgllm")


def llama_test_name(rec):
    """llama-bench's own name of a record's test: pp512, tg128, tg128@d2048."""
    n_prompt, n_gen, n_depth = int(rec["n_prompt"]), int(rec["n_gen"]), int(rec.get("n_depth", 0))
    if n_prompt > 0 and n_gen > 0:
        name = "pp%d+tg%d" % (n_prompt, n_gen)
    elif n_prompt > 0:
        name = "pp%d" % n_prompt
    else:
        name = "tg%d" % n_gen
    return name + ("@d%d" % n_depth if n_depth > 0 else "")


def process_value(engine, test, text):
    """tok/s of one engine process, from its JSON line."""
    rec = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    if engine.startswith("llama.cpp"):
        got = llama_test_name(rec)
        if got != test:
            raise ValueError("llama-bench record is %s, expected %s" % (got, test))
        samples = rec.get("samples_ts") or [rec["avg_ts"]]
        return statistics.median(samples)
    key = "prompt_tok_s" if test.startswith("pp") else "gen_tok_s"
    return rec[key]


def parse_raw(lines, rss=None):
    """{(model, threads, test): {engine: [value per round]}}, keys in first-seen order; and the
    first llama-bench record (for its build details). rss, a dict, gets wgllm's
    {(model, threads, test): (largest peak RSS MiB, weights MiB)}."""
    results, first_llama = {}, None
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        parts = line.split("\t", 5)
        if len(parts) != 6:
            raise ValueError("raw line %d has %d fields, not 6" % (n, len(parts)))
        engine, model, threads, test, _round, text = parts
        if engine not in ENGINES:
            raise ValueError("raw line %d: unknown engine %r" % (n, engine))
        value = process_value(engine, test, text)
        if engine.startswith("llama.cpp") and first_llama is None:
            first_llama = json.loads(text)
        key = (model, int(threads), test)
        results.setdefault(key, {}).setdefault(engine, []).append(value)
        if engine == "wgllm" and rss is not None:
            rec = json.loads(text, parse_float=Decimal)
            if "peak_rss_mib" in rec and "weight_bytes" in rec:
                peak = max(rec["peak_rss_mib"], rss.get(key, (0, 0))[0])
                rss[key] = (peak, Decimal(rec["weight_bytes"]) / (1024 * 1024))
    return results, first_llama


def rss_lines(rss):
    """wgllm's peak resident memory per test, beside its weights (llama-bench reports none)."""
    return ["- %s, %d threads, %s: %s MiB (weights %s MiB)" % (m, t, test, trunc2(peak), trunc2(w))
            for (m, t, test), (peak, w) in rss.items()]


def trunc2(x):
    """x truncated towards zero to 2 decimals, from its exact value."""
    q = fractions.Fraction(x) * 100
    q = math.floor(q) if q >= 0 else -math.floor(-q)
    sign = "-" if q < 0 else ""
    return "%s%d.%02d" % (sign, abs(q) // 100, abs(q) % 100)


def ratio(a, b):
    """a / b truncated to 2 decimals, as '0.24x'; 'n/a' where either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return "n/a"
    return trunc2(fractions.Fraction(a) / fractions.Fraction(b)) + "x"


def cell(values):
    if not values:
        return "n/a"
    med = trunc2(statistics.median(values))
    if len(values) == 1:
        return med
    return "%s [%s-%s]" % (med, trunc2(min(values)), trunc2(max(values)))


def table(results):
    noamx = any("llama.cpp-noamx" in e for e in results.values())
    head = ["model", "threads", "test", "llama.cpp tok/s", "wgllm tok/s", "wgllm / llama.cpp"]
    if noamx:
        head += ["llama.cpp no AMX tok/s", "wgllm / llama.cpp no AMX"]
    out = ["| " + " | ".join(head) + " |", "| --- | ---: | --- |" + " ---: |" * (len(head) - 3)]
    for (model, threads, test), by in results.items():
        med = {e: statistics.median(v) if v else None for e, v in by.items()}
        row = [model, str(threads), test, cell(by.get("llama.cpp")), cell(by.get("wgllm")),
               ratio(med.get("wgllm"), med.get("llama.cpp"))]
        if noamx:
            row += [cell(by.get("llama.cpp-noamx")), ratio(med.get("wgllm"), med.get("llama.cpp-noamx"))]
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out)


def peer_details(rec):
    """What llama-bench says of its own build and settings."""
    if rec is None:
        return ""
    keys = ("build_commit", "build_number", "backends", "flash_attn", "n_batch", "n_ubatch", "repack",
            "type_k", "type_v", "load_mode", "cpu_info")
    names = {"flash_attn": {-1: "-1 (auto)", 0: "0 (off)", 1: "1 (on)"}}
    parts = ["%s %s" % (k, names.get(k, {}).get(rec[k], rec[k])) for k in keys if k in rec]
    return "llama-bench reports: " + "; ".join(parts) + "."


def main(argv):
    if len(argv) < 2:
        sys.stderr.write("usage: peer_table.py RAW.tsv...\n")
        return 2
    lines = []
    for path in argv[1:]:
        with open(path, encoding="utf-8") as f:
            lines += f.readlines()
    rss = {}
    results, first_llama = parse_raw(lines, rss)
    if not results:
        sys.stderr.write("peer_table.py: no results in %s\n" % " ".join(argv[1:]))
        return 1
    print(table(results))
    details = peer_details(first_llama)
    if details:
        print()
        print(details)
    if rss:
        print()
        print("wgllm's peak RSS (largest of the rounds):")
        print("\n".join(rss_lines(rss)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
