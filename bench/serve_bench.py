#!/usr/bin/env python3
"""Aggregate generation speed of `wgllm serve` at 1, 2, 4, 8 and 16 concurrent streams.

Starts the server on a free loopback port (or uses --url), sends N simultaneous
streaming /v1/completions requests (greedy, ignore_eos, --max-tokens each) per level
(each stream connects first, then all send together),
and reports generated tokens per second over the wall time of the level, the median
time to first token and the per-stream speed. Prints a Markdown table, then one JSON
object. Standard library only.

Two aggregates per level:
  aggregate: all generated tokens over the level's wall time, from the first request sent
    to the last response read (prompts and first tokens included);
  decode aggregate: the tokens after each stream's first, over the time from the first
    stream's first token to the last stream's last token. This is what `wgllm bench
    --parallel` measures in the engine (its timer starts after the prompts), so the two
    compare the server's cost per decode step with the engine's.
The JSON also gives how far apart the streams' first tokens and last tokens came
(first_token_spread_s, last_token_spread_s): the decode aggregate's span includes both.

  bench/serve_bench.py --model MODEL.gguf [--bin build/wgllm] [--backend cpu] [--threads 2]
                       [--levels 1,2,4,8,16] [--max-tokens 64] [--parallel 16]
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("server not ready")


def model_id(url):
    with urllib.request.urlopen(url + "/v1/models", timeout=30) as r:
        return json.load(r)["data"][0]["id"]


def one_stream(url, model, prompt, max_tokens, out, start):
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
                       "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}).encode()
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=3600)
    try:
        conn.connect()  # connected before the level starts: the requests go out together
    except OSError:
        start.abort()
        raise
    start.wait(timeout=120)
    t0 = time.monotonic()
    first = last = None  # when the first and the last text arrived
    tokens = 0
    try:
        conn.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {r.read(500)!r}")
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            obj = json.loads(line[6:])
            if obj.get("choices") and obj["choices"][0].get("text"):
                last = time.monotonic()
                first = first or last
            if obj.get("usage"):
                tokens = obj["usage"]["completion_tokens"]
    finally:
        conn.close()
    end = time.monotonic()
    out.append({"tokens": tokens, "ttft": (first or t0) - t0, "seconds": end - t0, "first": first, "last": last,
                "start": t0, "end": end})


def run_level(url, model, n, max_tokens):
    out = []
    start = threading.Barrier(n + 1)
    threads = [threading.Thread(target=one_stream, args=(url, model, f"Stream {i} begins here:", max_tokens, out,
                                                         start))
               for i in range(n)]
    for t in threads:
        t.start()
    try:
        start.wait(timeout=120)  # every stream connected
    except threading.BrokenBarrierError:
        sys.exit("a stream could not connect")
    for t in threads:
        t.join()
    if len(out) != n:
        sys.exit(f"{n - len(out)} of {n} streams failed")
    # from the first request sent to the last response read, on the streams' own clocks (this
    # thread may resume from the barrier after the streams have started)
    wall = max(o["end"] for o in out) - min(o["start"] for o in out)
    total = sum(o["tokens"] for o in out)
    timed = [o for o in out if o["first"] is not None]
    span = max(o["last"] for o in timed) - min(o["first"] for o in timed) if timed else 0.0
    after_first = sum(o["tokens"] - 1 for o in timed)
    return {
        "streams": n,
        "generated_tokens": total,
        "wall_seconds": round(wall, 6),
        "aggregate_tok_s": round(total / wall, 2),
        "decode_seconds": round(span, 6),
        "decode_aggregate_tok_s": round(after_first / span, 2) if span > 0 and len(timed) == n else None,
        "per_stream_tok_s": round(statistics.median(o["tokens"] / o["seconds"] for o in out), 2),
        "median_ttft_s": round(statistics.median(o["ttft"] for o in out), 3),
        # how far apart the streams began and ended: the decode aggregate's span includes both
        "first_token_spread_s": round(max(o["first"] for o in timed) - min(o["first"] for o in timed), 6)
        if timed else None,
        "last_token_spread_s": round(max(o["last"] for o in timed) - min(o["last"] for o in timed), 6)
        if timed else None,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="GGUF file (starts a server)")
    ap.add_argument("--url", help="use a running server instead")
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "wgllm"))
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--ctx", type=int, default=0)
    ap.add_argument("--levels", default="1,2,4,8,16")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=1, help="untimed requests before the levels")
    args = ap.parse_args()
    if not args.url and not args.model:
        ap.error("give --model or --url")
    proc = None
    url = args.url
    if not url:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [args.bin, "serve", "-m", args.model, "--port", str(port), "--backend", args.backend,
               "--parallel", str(args.parallel), "--max-queue", "256"]
        if args.threads:
            cmd += ["-t", str(args.threads)]
        if args.ctx:
            cmd += ["-c", str(args.ctx)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(url, proc)
        model = model_id(url)
        for _ in range(args.warmup):
            run_level(url, model, 1, 8)
        rows = [run_level(url, model, int(n), args.max_tokens) for n in args.levels.split(",")]
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=120)
    print("| streams | generated tokens | wall s | aggregate tok/s | decode aggregate tok/s | per-stream tok/s "
          "| median TTFT s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['streams']} | {r['generated_tokens']} | {r['wall_seconds']} | {r['aggregate_tok_s']} | "
              f"{r['decode_aggregate_tok_s']} | {r['per_stream_tok_s']} | {r['median_ttft_s']} |")
    print(json.dumps({"model": args.model or url, "backend": args.backend, "max_tokens": args.max_tokens,
                      "levels": rows}))


if __name__ == "__main__":
    main()
