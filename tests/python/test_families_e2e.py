"""Each model family end to end, against Hugging Face `transformers` and llama.cpp.

For every family of families.py a tiny random model is made with transformers (seeded, O(1)
weights) and saved with save_pretrained; the folder is converted both by llama.cpp's own
convert_hf_to_gguf.py (the pinned sdist's tree) and by `wgllm convert hf`. For each file:
  - f32: `wgllm logits` on the CPU (one token at a time and the whole prompt) and on WebGPU
    (lavapipe here) within 1e-4 relative error (max |a - b| / max |b| per row) of
    `model(input_ids).logits` in float32;
  - Q8_0 and Q4_0 (`wgllm quantize` of that file, with llama-quantize's per-tensor choices):
    their error against transformers and llama.cpp's on the same file, printed and bounded
    (QUANT_BOUNDS, and no worse than llama.cpp's);
  - tokenizer ids equal the reference tokenizer's (transformers' for the BPE families,
    sentencepiece's for the SentencePiece ones: families.py says why) on the project's tokenizer
    test strings (golden/llama2_tokenizer_cases.json and test_tokenizer_bpe.py's corpus);
  - greedy tokens (CPU and WebGPU) equal those of llama.cpp's own CPU build on the same file.

Measured on a two-core x86 machine with lavapipe, relative error against transformers:
  f32, worst of the four paths: llama 1.8e-6 (either file), mistral 1.1e-6 (1.1e-6 with a
  sliding window of 8), qwen2 1.6e-6, qwen3 6.2e-7, phi3 1.5e-6.
  Q8_0 / Q4_0, worst row / rms over the prompt, wgllm (CPU and WebGPU alike) and llama.cpp on the
  same file: llama 0.063 / 0.025 and 0.45 / 0.29 (llama.cpp 0.071 / 0.031 and 0.44 / 0.29);
  mistral 0.043 / 0.022 and 0.58 / 0.32 (llama.cpp 0.062 / 0.030 and 0.59 / 0.32); qwen2
  0.034 / 0.022 and 0.38 / 0.24 (llama.cpp 0.045 / 0.028 and 0.37 / 0.24); qwen3 0.020 / 0.014
  and 0.20 / 0.15 (llama.cpp 0.024 / 0.020 and 0.21 / 0.15); phi3 0.066 / 0.027 and 0.95 / 0.43
  (llama.cpp 0.084 / 0.036 and 0.94 / 0.42). The models are deliberately sharp (O(1) weights,
  q and k doubled) so that f32 mistakes show; that also amplifies rounding, hence loose
  absolute bounds (QUANT_BOUNDS) and the tighter one: no worse than llama.cpp's own error
  (1.25x + 0.01).
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import families
import llama_cpp_ref
from conftest import relative_error
from test_tokenizer_bpe import CORPUS

BOUND = 1e-4
# qtype -> (worst row, rms) relative error against transformers; see the measurements above
QUANT_BOUNDS = {"q8_0": (0.15, 0.05), "q4_0": (1.5, 0.5)}
N_PREDICT = 16
CTX = 64  # room for the prompt and the greedy tokens; keeps a 152k vocabulary's buffers small
PROMPT = "The quick brown fox jumps over the lazy dog; then it naps for 12 minutes."

CONVERTERS = ("llama.cpp", "wgllm")
CASES = [pytest.param(f, c, id=f"{f}-{c}") for f in families.FAMILIES for c in CONVERTERS]
SWA = 8  # Mistral's sliding window in test_mistral_sliding_window_matches_transformers, under the prompt length


@pytest.fixture(scope="module")
def saved(scratch, shared):
    """saved(family) -> (folder, transformers model, transformers tokenizer), made once."""
    cache = {}

    def make(family):
        if family not in cache:
            folder = scratch / "families" / family
            seed = list(families.FAMILIES).index(family)
            model, tokenizer = families.make(family, folder, shared, seed=seed)
            cache[family] = folder, model, tokenizer
        return cache[family]

    return make


@pytest.fixture(scope="module")
def gguf_file(saved, wgllm):
    """gguf_file(family, converter, qtype) -> a GGUF path: f32 from the converter, q8_0 and q4_0
    quantized from that f32 file by `wgllm quantize`."""
    cache = {}

    def make(family, converter, qtype="f32"):
        key = family, converter, qtype
        if key in cache:
            return cache[key]
        folder = saved(family)[0]
        out = folder.parent / f"{family}-{converter}-{qtype}.gguf"
        if qtype != "f32":
            wgllm.ok("quantize", make(family, converter), out, qtype, "--threads", "2", timeout=120)
        elif converter == "llama.cpp":
            llama_cpp_ref.convert_hf(folder, out, "f32")
        else:
            wgllm.ok("convert", "hf", folder, out, "--type", "f32", timeout=120)
        cache[key] = out
        return out

    return make


def prompt_ids(tokenizer):
    ids = tokenizer.ids(PROMPT, bos=True)
    assert 16 <= len(ids) <= 40, ids
    return ids


def logits_errors(wgllm, path, model, ids, paths):
    ref = families.reference_logits(model, ids)
    return {f"{backend} batch {batch}": relative_error(
        wgllm.logits(path, ids, batch=batch, ctx=CTX, backend=backend), ref) for backend, batch in paths}


@pytest.mark.parametrize("family,converter", CASES)
def test_f32_logits_match_transformers(family, converter, saved, gguf_file, wgllm):
    _, model, tokenizer = saved(family)
    ids = prompt_ids(tokenizer)
    n = len(ids)
    errors = logits_errors(wgllm, gguf_file(family, converter), model, ids,
                           (("cpu", 1), ("cpu", n), ("webgpu", 1), ("webgpu", n)))
    print(f"{family} ({converter} file) f32: " + ", ".join(f"{k} {v:.2g}" for k, v in errors.items()))
    for path, err in errors.items():
        assert err <= BOUND, f"{family} ({converter} file, {path}): relative error {err:.3g} over {BOUND}"


def rms_error(ours, ref):
    """rms(ours - ref) / rms(ref) over all rows: the typical error, where relative_error is the worst."""
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    return float(np.sqrt(np.mean((ours - ref) ** 2) / np.mean(ref ** 2)))


@pytest.mark.parametrize("qtype", ["q8_0", "q4_0"])
@pytest.mark.parametrize("family,converter", CASES)
def test_quantized_logits_error_bounded(family, converter, qtype, saved, gguf_file, wgllm):
    """The error of a quantized file against transformers is the quantization's, not wgllm's: it
    is bounded in absolute terms (QUANT_BOUNDS) and by llama.cpp's own error on the same file."""
    _, model, tokenizer = saved(family)
    ids = prompt_ids(tokenizer)
    path = gguf_file(family, converter, qtype)
    ref = families.reference_logits(model, ids)
    _, theirs = llama_cpp_ref.greedy(path, ids, 1, logits=True)
    runs = {"llama.cpp": theirs}
    for backend in ("cpu", "webgpu"):
        runs[f"wgllm {backend}"] = wgllm.logits(path, ids, batch=len(ids), ctx=CTX, backend=backend)
    worst = {k: relative_error(v, ref) for k, v in runs.items()}
    rms = {k: rms_error(v, ref) for k, v in runs.items()}
    print(f"{family} ({converter} file) {qtype} against transformers, worst row / rms: " +
          ", ".join(f"{k} {worst[k]:.3g} / {rms[k]:.3g}" for k in runs))
    max_worst, max_rms = QUANT_BOUNDS[qtype]
    for k in runs:
        assert worst[k] <= max_worst and rms[k] <= max_rms, (
            f"{family} ({converter} file, {qtype}, {k}): error {worst[k]:.3g} / rms {rms[k]:.3g} "
            f"over {max_worst} / {max_rms}")
        assert rms[k] <= 1.25 * rms["llama.cpp"] + 0.01, (
            f"{family} ({converter} file, {qtype}, {k}): rms error {rms[k]:.3g}, llama.cpp's {rms['llama.cpp']:.3g}")
        # a file silently left in f32 would pass the bounds; it must differ
        assert worst[k] > BOUND, f"{qtype} logits of {k} equal the f32 ones: {worst[k]:.3g}"


def tokenizer_strings(shared):
    with open(shared / "golden" / "llama2_tokenizer_cases.json", encoding="utf-8") as f:
        golden = [c["text"] for c in json.load(f)["cases"]]
    return golden + [line for line in CORPUS.splitlines() if line] + [PROMPT]


@pytest.mark.parametrize("family,converter", CASES)
def test_tokenizer_matches_reference(family, converter, saved, gguf_file, wgllm, shared, scratch):
    """`wgllm tokenize` against the family's reference tokenizer (families.py says which): plain,
    the text of special tokens (<s>, <|im_start|>) stays text; with --special, where the reference
    parses special tokens (transformers' default), it becomes those tokens."""
    _, _, tokenizer = saved(family)
    path = gguf_file(family, converter)
    text_file = scratch / "families" / "tokenize.txt"
    modes = [False, True] if tokenizer.parses_special else [False]
    mismatches = []
    strings = tokenizer_strings(shared)
    for text in strings:
        text_file.write_bytes(text.encode("utf-8"))  # through a file: the bytes reach the tokenizer unchanged
        for special in modes:
            want = tokenizer.ids(text, special=True) if special else tokenizer.ids(text)
            out = wgllm.ok("tokenize", "-m", path, "--no-bos", "--file", text_file,
                           *(["--special"] if special else [])).stdout.decode()
            got = [int(t) for t in out.split()]
            if got != want:
                mismatches.append(f"{text!r}{' (--special)' if special else ''}: wgllm {got} reference {want}")
    assert not mismatches, (f"{len(mismatches)} of {len(strings) * len(modes)} differ:\n" +
                            "\n".join(mismatches))
    # with the BOS the family adds (llama, mistral, phi3) or none (qwen2, qwen3)
    text_file.write_bytes(PROMPT.encode("utf-8"))
    assert wgllm.tokenize(path, file=text_file) == prompt_ids(tokenizer)


@pytest.mark.parametrize("family,converter", CASES)
def test_greedy_matches_llama_cpp(family, converter, gguf_file, wgllm):
    path = gguf_file(family, converter)
    # the ids `wgllm run` feeds itself (test_tokenizer_matches_reference checks them), so that
    # this test compares the two forward passes alone
    ids = wgllm.tokenize(path, PROMPT)
    theirs = llama_cpp_ref.greedy(path, ids, N_PREDICT)
    for backend in ("cpu", "webgpu"):
        ours = [t["id"] for t in wgllm.run_json("-m", path, "-p", PROMPT, "--temp", "0", "-n", N_PREDICT,
                                                "--ignore-eos", "-c", CTX, "--backend", backend)]
        assert ours == theirs, f"{family} ({converter} file) on {backend}: wgllm {ours}, llama.cpp {theirs}"
    print(f"{family} ({converter} file): {N_PREDICT} greedy tokens equal llama.cpp's: {theirs}")


def test_mistral_sliding_window_matches_transformers(scratch, shared, wgllm):
    """A Mistral whose sliding window is shorter than the prompt: `wgllm convert hf` keeps the
    window (llama.cpp's converter drops it, so only our own file is checked), and the logits
    on the CPU and WebGPU match transformers, whose logits without the window are far off."""
    folder = scratch / "families" / "mistral-swa"
    model, tokenizer = families.make("mistral", folder, shared, seed=7, sliding_window=SWA)
    ids = prompt_ids(tokenizer)
    assert len(ids) > 2 * SWA
    path = folder.parent / "mistral-swa-wgllm-f32.gguf"
    wgllm.ok("convert", "hf", folder, path, "--type", "f32", timeout=120)
    n = len(ids)
    errors = logits_errors(wgllm, path, model, ids, (("cpu", 1), ("cpu", n), ("webgpu", 1), ("webgpu", n)))
    print("mistral, sliding window 8 (wgllm file) f32: " + ", ".join(f"{k} {v:.2g}" for k, v in errors.items()))
    for k, err in errors.items():
        assert err <= BOUND, f"mistral sliding window ({k}): relative error {err:.3g} over {BOUND}"
    plain, _ = families.make("mistral", folder.parent / "mistral-no-swa", shared, seed=7, sliding_window=None)
    unwindowed = relative_error(families.reference_logits(plain, ids), families.reference_logits(model, ids))
    print(f"mistral: transformers' logits without the window differ by {unwindowed:.2g}")
    assert unwindowed > 100 * BOUND, f"the window changes transformers' logits by only {unwindowed:.3g}"
