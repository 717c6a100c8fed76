#!/usr/bin/env python3
"""Times `wgllm convert hf-tokenizer` on a tokenizer.json the size of Llama 3's
(128,256 tokens, 280,147 merges; synthetic pieces, Llama 3's pre-tokenizer).

    python3 bench/convert_tokenizer_bench.py --wgllm build/wgllm
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

N_VOCAB, N_MERGES = 128256, 280147
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wgllm", default="build/wgllm")
    args = ap.parse_args()
    tok = {
        "model": {"type": "BPE", "vocab": {f"t{i}": i for i in range(N_VOCAB)},
                  "merges": [f"t{i % N_VOCAB} t{(i * 7) % N_VOCAB}" for i in range(N_MERGES)]},
        "added_tokens": [{"id": N_VOCAB - 1, "content": "<|end_of_text|>", "special": True}],
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
    }
    with tempfile.TemporaryDirectory() as d:
        src, out = os.path.join(d, "tokenizer.json"), os.path.join(d, "vocab.gguf")
        with open(src, "w") as f:
            json.dump(tok, f)
        t0 = time.perf_counter()
        subprocess.run([args.wgllm, "convert", "hf-tokenizer", src, out], check=True)
        dt = time.perf_counter() - t0
    print(f"convert hf-tokenizer, {N_VOCAB} tokens, {N_MERGES} merges: {dt:.2f} s")


if __name__ == "__main__":
    main()
