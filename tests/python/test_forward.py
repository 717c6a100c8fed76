"""`wgllm logits` against the float64 numpy reference (llama_ref.py) on many models:
the shared GGUF files, our conversions of the llama2.c checkpoints, models from
`wgllm synth`, and random models written by gguf-py (a writer independent of ours).

Error measure (conftest.relative_error): for each position, max |ours - ref| over
the vocabulary divided by the row's largest |ref|; the test takes the worst row.

The reference dequantizes the very bytes of the file, so a quantized model is
exact data for both sides: the only difference left is float rounding (the engine
dots in float32 against the stored blocks, the reference in float64). Dequantized
values are exact in float32 for every type here (an f16 scale times a small
integer), so each type gets the same kind of bound; measured worst rows are
noted next to each bound.
"""

import numpy as np
import pytest

import gguf

from conftest import relative_error, write_random_llama

Q = gguf.GGMLQuantizationType

# One bound per weight type. Every type has the same error source, float32
# accumulation (sums of 64..172 products, softmax over up to 30 positions, 2..5
# layers), so the bounds are equal: 1e-4, ten times the worst row measured over a
# full 256-token golden run (1.1e-5, stories260K f32). Measured here over 30
# positions (worst row, engine built with gcc 12 -O2): f32 3.4e-6 (stories260K),
# f16 1.6e-6, bf16 1.5e-6, q8_0 1.8e-6, q4_0 1.8e-6, q4_1 9.8e-7, q5_0 9.0e-7,
# q5_1 5.9e-7. What the bounds still catch: activations rounded to 8 bits (as
# llama.cpp's quantized dot products do) or an f16 KV cache give 1e-3 and more, a
# wrong scale or nibble order in a block gives O(1).
BOUNDS = {
    "f32": 1e-4,
    "f16": 1e-4,
    "bf16": 1e-4,
    "q8_0": 1e-4,
    "q4_0": 1e-4,
    "q4_1": 1e-4,
    "q5_0": 1e-4,
    "q5_1": 1e-4,
}

# Batched prompt evaluation must give the rows of one-at-a-time evaluation (measured:
# identical bits; the bound leaves room for a batched kernel that sums in another order).
BATCH_BOUND = 1e-5

N_POSITIONS = 30

# name: (type, synth arguments). Tiny shapes; grouped-query attention (kv heads <
# heads) in most; tied and untied outputs; head_dim 16, 32 and 64; an ffn that is
# not a multiple of 32 where the type has no 32-element blocks.
SYNTH = {
    "f32-gqa-hd32-ffn100": ("f32", "--dim 128 --heads 4 --kv-heads 2 --ffn 100 --untied"),
    "f32-tied-hd64-ffn72": ("f32", "--dim 128 --heads 2 --kv-heads 1 --ffn 72 --tied"),
    "f16-gqa-hd32-ffn100": ("f16", "--dim 128 --heads 4 --kv-heads 1 --ffn 100 --untied"),
    "f16-tied-hd16-ffn40": ("f16", "--dim 64 --heads 4 --kv-heads 4 --ffn 40 --tied"),
    "q8_0-gqa-hd16": ("q8_0", "--dim 64 --heads 4 --kv-heads 2 --ffn 96 --untied"),
    "q8_0-tied-hd32": ("q8_0", "--dim 128 --heads 4 --kv-heads 2 --ffn 160 --tied"),
    "q4_0-gqa-hd32": ("q4_0", "--dim 128 --heads 4 --kv-heads 1 --ffn 64 --untied"),
    "q4_0-tied-hd32": ("q4_0", "--dim 64 --heads 2 --kv-heads 1 --ffn 96 --tied"),
}
SYNTH_COMMON = "--layers 2 --vocab 288 --ctx 64 --seed 7"

# Written by gguf-py: its own quantizers and its own file layout.
WRITTEN = {
    "f32": dict(dim=96, n_head=3, n_head_kv=1, ffn=100, tied=False),  # head_dim 32
    "f16": dict(dim=128, n_head=2, n_head_kv=2, ffn=72, tied=True),   # head_dim 64
    "bf16": dict(dim=64, n_head=4, n_head_kv=2, ffn=40, tied=False),
    "q8_0": dict(dim=128, n_head=4, n_head_kv=2, ffn=96, tied=False),
    "q4_0": dict(dim=64, n_head=2, n_head_kv=1, ffn=128, tied=True),
    "q4_1": dict(dim=64, n_head=4, n_head_kv=2, ffn=64, tied=False),
    "q5_0": dict(dim=64, n_head=4, n_head_kv=1, ffn=96, tied=True),
    "q5_1": dict(dim=128, n_head=4, n_head_kv=2, ffn=64, tied=False),
}


def golden_prefix(golden_cases, model_name):
    """The first N_POSITIONS ids of a golden run with a prompt (prompt + greedy tokens)."""
    return golden_cases[f"{model_name}_greedy_once"].ids[:N_POSITIONS]


def random_ids(n_vocab, seed):
    return [1] + [int(t) for t in np.random.default_rng(seed).integers(0, n_vocab, N_POSITIONS - 1)]


MODELS = (
    [("shared", m, "f32") for m in ("stories260K", "aidreams260K")]
    + [("converted", m, t) for m in ("stories260K", "aidreams260K")
       for t in ("f32", "f16", "q8_0", "q4_0")]
    + [("synth", name, spec[0]) for name, spec in SYNTH.items()]
    + [("written", t, t) for t in WRITTEN]
)


@pytest.fixture(scope="module", params=MODELS, ids=lambda m: f"{m[0]}-{m[1]}" +
                ("" if m[0] in ("synth", "written") else f"-{m[2]}"))
def case(request, golden_cases, converted, synth, scratch):
    """(gguf path, ids, weight type)"""
    kind, name, qtype = request.param
    if kind == "shared":
        return golden_cases[f"{name}_greedy_once"].gguf, golden_prefix(golden_cases, name), qtype
    if kind == "converted":
        return converted(name, qtype), golden_prefix(golden_cases, name), qtype
    if kind == "synth":
        args = f"{SYNTH[name][1]} {SYNTH_COMMON} --type {qtype}".split()
        return synth(name, args), random_ids(288, 1), qtype
    path = scratch / f"written-{name}.gguf"
    if not path.exists():
        write_random_llama(path, n_layer=2, n_vocab=300, n_ctx=64, seed=3,
                           types={"*": Q[qtype.upper()]}, **WRITTEN[name])
    return path, random_ids(300, 2), qtype


def test_logits_match_reference(case, wgllm, ref_logits):
    path, ids, qtype = case
    ours = wgllm.logits(path, ids)
    ref = ref_logits(path, ids)
    err = relative_error(ours, ref)
    print(f"{path.name}: relative error {err:.3g}")
    assert err <= BOUNDS[qtype], f"{path.name}: relative error {err:.3g} > {BOUNDS[qtype]}"


def test_batched_equals_single(case, wgllm):
    path, ids, _ = case
    single = wgllm.logits(path, ids, batch=1)
    batched = wgllm.logits(path, ids, batch=7)
    err = relative_error(batched, single)
    assert err <= BATCH_BOUND, f"{path.name}: batch 7 vs 1 relative error {err:.3g}"
