"""`wgllm imatrix` against sums of squares of every matmul input taken from the
float64 numpy forward pass (eval_ref.window_logits records them), and the file
read back with gguf-py (llama.cpp's reader).

Bound: the engine's activations are float32 (relative error ~1e-6 against the
reference, see test_forward.py); sums of positive squares keep that relative
error, so 1e-4 relative per column leaves a wide margin (measured below).
"""

import numpy as np
import pytest

import gguf

import eval_ref

from conftest import REPO, THREADS

TEXT = REPO / "tests" / "data" / "eval_stories.txt"

MATRICES = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]


def expected_names(m):
    names = [f"blk.{l}.{w}.weight" for l in range(m.n_layer) for w in MATRICES]
    return names + ["token_embd.weight" if m.tied else "output.weight"]


@pytest.mark.parametrize("model,source,ctx,chunks", [
    ("stories260K", "shared", 100, 3),   # tied output, grouped-query attention, the rest of the text unused
    ("aidreams260K", "shared", 128, None),  # every chunk of the text, the last one shorter
    ("stories260K", "q8_0", 64, 2),       # quantized weights: sums of the q8_0 model's inputs
])
def test_imatrix_matches_reference(wgllm, shared, converted, reference, scratch, model, source, ctx, chunks):
    path = shared / "models" / f"{model}-f32.gguf" if source == "shared" else converted(model, source)
    out = scratch / f"{model}-{source}.imatrix.gguf"
    args = ["imatrix", "-m", path, "-f", TEXT, "-o", out, "--ctx", ctx, "-t", THREADS]
    if chunks:
        args += ["--chunks", chunks]
    wgllm.ok(*args, timeout=120)

    ids = wgllm.tokenize(path, file=TEXT)
    starts = list(range(0, len(ids), ctx))
    if chunks:
        starts = starts[:chunks]
    m = reference(path)
    sums = {}
    for s in starts:
        eval_ref.window_logits(m, ids[s:s + ctx], sums)
    n_tokens = sum(len(ids[s:s + ctx]) for s in starts)

    r = gguf.GGUFReader(str(out))
    assert r.fields["general.type"].contents() == "imatrix"
    assert r.fields["imatrix.chunk_count"].contents() == len(starts)
    assert r.fields["imatrix.chunk_size"].contents() == ctx
    assert r.fields["imatrix.datasets"].contents() == [str(TEXT)]
    tensors = {t.name: t for t in r.tensors}
    names = expected_names(m)
    assert set(tensors) == {n + ".in_sum2" for n in names} | {n + ".counts" for n in names}
    worst = 0.0
    for name in names:
        s, c = tensors[name + ".in_sum2"], tensors[name + ".counts"]
        assert s.tensor_type == c.tensor_type == gguf.GGMLQuantizationType.F32
        ref = sums[name]
        assert list(s.shape) == [len(ref)] and list(c.shape) == [1], name
        assert float(c.data[0]) == n_tokens, name
        got = np.asarray(s.data, dtype=np.float64)
        assert np.all(ref > 0), name
        worst = max(worst, float(np.max(np.abs(got - ref) / ref)))
    # measured worst column: 1.4e-6 (stories260K), 2.6e-7 (aidreams260K), 2.2e-6 (q8_0)
    assert worst < 1e-4, worst


def test_imatrix_errors(wgllm, shared, scratch):
    model = shared / "models" / "aidreams260K-f32.gguf"
    out = scratch / "err.imatrix.gguf"
    empty = scratch / "empty.txt"
    empty.write_bytes(b"")

    def err(args, code, message):
        p = wgllm.run("imatrix", *args)
        text = p.stderr.decode()
        assert p.returncode == code, (args, text)
        assert text.startswith("wgllm imatrix: error: ") and message in text, (args, text)

    err(["-m", model, "-f", TEXT], 2, "no output given")
    err(["-m", model, "-o", out], 2, "no text given")
    err(["-m", model, "-f", TEXT, "-o", out, "--ctx", "0"], 2, "invalid value '0' for --ctx")
    err(["-m", model, "-f", TEXT, "-o", out, "--chunks", "-1"], 2, "invalid value")
    err(["-m", model, "-f", empty, "-o", out], 1, "text too short")
    err(["-m", model, "-f", TEXT, "-o", out, "--ctx", "129"], 1, "exceeds the model's training context 128")
    err(["-m", TEXT, "-f", TEXT, "-o", out], 1, "")
    err(["-m", model, "-f", TEXT, "-o", scratch / "no" / "dir.gguf"], 1, "writing")
    assert not out.exists()
