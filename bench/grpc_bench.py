#!/usr/bin/env python3
"""gRPC streams against HTTP streams of the same `wgllm serve`, in the same run.

Starts one server with --grpc-port, then, per level (1, 8, 16 concurrent streams by default),
runs the HTTP level (streaming /v1/completions, as bench/serve_bench.py) and the gRPC level
(wgllm.v1.Generator/GenerateToken) with the same prompts and settings (greedy, ignore_eos,
--max-tokens each), alternating HTTP and gRPC --rounds times, and reports the median
aggregate tokens per second of each and the gRPC/HTTP ratio. Needs grpcio and grpcio-tools
(tests/requirements.txt): the stubs are compiled from proto/ into a temporary folder.

  bench/grpc_bench.py --model MODEL.gguf [--bin build/wgllm] [--backend cpu] [--threads 2]
                      [--levels 1,8,16] [--max-tokens 64] [--parallel 16] [--rounds 3]
"""

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_bench import free_port, model_id, run_level, wait_ready  # noqa: E402

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto")


def load_stubs(out_dir):
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}", f"--python_out={out_dir}",
                    f"--grpc_python_out={out_dir}", os.path.join(PROTO_DIR, "wgllm/v1/generate.proto")],
                   check=True)
    sys.path.insert(0, out_dir)
    return importlib.import_module("wgllm.v1.generate_pb2"), importlib.import_module("wgllm.v1.generate_pb2_grpc")


def grpc_level(stub, pb, n, max_tokens):
    out = []

    def one(i):
        req = pb.GenerateRequest(text=f"Stream {i} begins here:", max_tokens=max_tokens, temperature=0,
                                 ignore_eos=True)
        t0 = time.monotonic()
        ttft, tokens = None, 0
        for msg in stub.GenerateToken(req, timeout=3600):
            if msg.text and ttft is None:
                ttft = time.monotonic() - t0
            if msg.HasField("usage"):
                tokens = msg.usage.completion_tokens
        out.append({"tokens": tokens, "ttft": ttft or 0.0, "seconds": time.monotonic() - t0})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    total = sum(o["tokens"] for o in out)
    return {"streams": n, "generated_tokens": total, "wall_seconds": round(wall, 3),
            "aggregate_tok_s": round(total / wall, 2),
            "median_ttft_s": round(statistics.median(o["ttft"] for o in out), 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="GGUF file")
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "wgllm"))
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--levels", default="1,8,16")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3, help="HTTP/gRPC alternations per level (median taken)")
    args = ap.parse_args()
    pb, pb_grpc = load_stubs(tempfile.mkdtemp(prefix="wgllm-grpc-bench-"))
    port, gport = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [args.bin, "serve", "-m", args.model, "--port", str(port), "--grpc-port", str(gport), "--backend",
           args.backend, "--parallel", str(args.parallel), "--max-queue", "256"]
    if args.threads:
        cmd += ["-t", str(args.threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        wait_ready(url, proc)
        model = model_id(url)
        channel = grpc.insecure_channel(f"127.0.0.1:{gport}")
        grpc.channel_ready_future(channel).result(timeout=60)
        stub = pb_grpc.GeneratorStub(channel)
        run_level(url, model, 1, 8)
        grpc_level(stub, pb, 1, 8)
        for n in (int(x) for x in args.levels.split(",")):
            http, rpc = [], []
            for _ in range(args.rounds):
                http.append(run_level(url, model, n, args.max_tokens)["aggregate_tok_s"])
                rpc.append(grpc_level(stub, pb, n, args.max_tokens)["aggregate_tok_s"])
            h, g = statistics.median(http), statistics.median(rpc)
            rows.append({"streams": n, "http_tok_s": h, "grpc_tok_s": g, "grpc_over_http": round(g / h, 3),
                         "http_rounds": http, "grpc_rounds": rpc})
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    print("| streams | HTTP tok/s | gRPC tok/s | gRPC / HTTP |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['streams']} | {r['http_tok_s']} | {r['grpc_tok_s']} | {r['grpc_over_http']} |")
    print(json.dumps({"model": args.model, "backend": args.backend, "max_tokens": args.max_tokens,
                      "levels": rows}))


if __name__ == "__main__":
    main()
