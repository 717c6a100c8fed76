"""`wgllm perplexity` against a float64 numpy computation with the same window rule
(eval_ref.py, built on llama_ref.py's forward pass), and its KL-divergence mode.

Bounds: the engine computes logits in float32 and accumulates log-probabilities in
double; its logits are within ~1e-5 relative of the reference (test_forward.py),
which moves a mean NLL of ~5..10 nats by ~1e-6 relative. PPL is checked to 1e-4
relative as specified; measured differences are noted beside each check.
"""

import json

import numpy as np
import pytest

import eval_ref
import llama_ref

from conftest import REPO, THREADS

TEXT = REPO / "tests" / "data" / "eval_stories.txt"


@pytest.fixture(scope="session")
def short_text(scratch):
    """The first ~2 KB of the text (whole lines): enough windows for stories260K, whose
    tokenizer spends about one token per byte, at a third of the reference's time."""
    lines = TEXT.read_text().splitlines(keepends=True)
    path = scratch / "eval_short.txt"
    path.write_text("".join(lines[:6]))
    return path


def perplexity(wgllm, model, *args, text=TEXT, ok=True):
    cmd = ["perplexity", "-m", model, "-f", text, "--backend", "cpu", "-t", THREADS, "--json", *args]
    if not ok:
        return wgllm.run(*cmd, timeout=120)
    return json.loads(wgllm.ok(*cmd, timeout=120).stdout)


def error_line(p):
    err = p.stderr.decode()
    assert err.startswith("wgllm perplexity: error: ") and err.count("\n") == 1, err
    return err


def test_window_forward_matches_llama_ref(shared, reference):
    """The batched window forward of eval_ref equals llama_ref's token-by-token pass."""
    m = reference(shared / "models" / "stories260K-f32.gguf")
    ids = [1, 400, 37, 259, 500, 12, 3, 88, 201, 311] * 4
    ours = eval_ref.window_logits(m, ids)
    ref = llama_ref.logits(m, ids)
    assert np.max(np.abs(ours - ref)) < 1e-10


def test_window_rule():
    assert eval_ref.windows(10, 4, 2) == [(0, 4, 1), (2, 6, 4), (4, 8, 6), (6, 10, 8)]
    assert eval_ref.windows(3, 8, 4) == [(0, 3, 1)]
    assert eval_ref.windows(9, 4, 3) == [(0, 4, 1), (3, 7, 4), (6, 9, 7)]


@pytest.mark.parametrize("model,ctx,stride", [
    ("stories260K", None, None),  # defaults: ctx 512 (the model's context), stride 256
    ("stories260K", 128, 48),     # a stride that does not divide the text: short last window
    ("aidreams260K", None, None), # ctx 128 (the model's context)
    ("aidreams260K", 37, 36),     # one token of overlap
])
def test_ppl_matches_reference(wgllm, shared, reference, short_text, model, ctx, stride):
    path = shared / "models" / f"{model}-f32.gguf"
    text = short_text if model == "stories260K" else TEXT
    args = []
    if ctx:
        args += ["--ctx", ctx, "--stride", stride]
    got = perplexity(wgllm, path, *args, text=text)
    ids = wgllm.tokenize(path, file=text)
    m = reference(path)
    ctx = ctx or min(m.n_ctx, 512)
    stride = stride or ctx // 2
    targets, lp = eval_ref.scored_log_probs(m, ids, ctx, stride)
    nll = -lp[np.arange(len(targets)), targets]
    mean = nll.mean()
    se = nll.std(ddof=1) / np.sqrt(len(nll))
    assert got["tokens"] == len(ids) and got["scored"] == len(ids) - 1 == len(nll)
    assert got["ctx"] == ctx and got["stride"] == stride
    assert got["windows"] == len(eval_ref.windows(len(ids), ctx, stride))
    # measured: |ppl - ref| / ref <= 3.3e-7, standard error <= 6e-8 relative (all four cases)
    assert abs(got["ppl"] - np.exp(mean)) / np.exp(mean) < 1e-4
    assert abs(got["mean_nll"] - mean) / mean < 1e-4
    assert abs(got["mean_nll_se"] - se) / se < 1e-3
    assert abs(got["ppl_se"] - np.exp(mean) * se) / (np.exp(mean) * se) < 1e-3


def test_text_output(wgllm, shared):
    p = wgllm.ok("perplexity", "-m", shared / "models" / "aidreams260K-f32.gguf", "-f", TEXT,
                 "--backend", "cpu", "-t", THREADS)
    out = p.stdout.decode()
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    ppl, pm, se = lines["perplexity"].split()
    assert pm == "+/-" and float(ppl) > 1 and float(se) > 0
    assert lines["tokens"].startswith(f"{len(wgllm.tokenize(shared / 'models' / 'aidreams260K-f32.gguf', file=TEXT))} ")


def read_kl_file(path):
    raw = path.read_bytes()
    assert raw[:4] == b"WGKL"
    version, n_vocab, ctx, stride, reserved = np.frombuffer(raw[4:24], "<u4")
    n_text, n_scored, _ = np.frombuffer(raw[24:48], "<u8")
    assert (version, reserved) == (1, 0)
    rows = np.frombuffer(raw[48:], "<f4").reshape(int(n_scored), int(n_vocab))
    return dict(n_vocab=n_vocab, ctx=ctx, stride=stride, n_text=n_text, n_scored=n_scored, rows=rows)


def test_kl_self_is_zero(wgllm, shared, scratch):
    model = shared / "models" / "stories260K-f32.gguf"
    base = scratch / "self.kl"
    saved = perplexity(wgllm, model, "--ctx", 256, "--stride", 128, "--save-logits", base)
    got = perplexity(wgllm, model, "--kl-base", base)  # ctx and stride come from the file
    kl = got["kl"]
    assert (got["ctx"], got["stride"]) == (256, 128)
    assert kl["mean"] == 0 and kl["max"] == 0 and kl["p99"] == 0
    assert kl["same_top"] == got["scored"] and kl["same_top_pct"] == 100
    assert kl["base_ppl"] == pytest.approx(saved["ppl"], rel=1e-6)  # from the float32 rows
    assert got["ppl"] == saved["ppl"]


def test_kl_q8_0_matches_reference(wgllm, converted, reference, scratch, short_text):
    f32, q8 = converted("stories260K", "f32"), converted("stories260K", "q8_0")
    base = scratch / "f32.kl"
    ctx, stride = 128, 64
    base_run = perplexity(wgllm, f32, "--ctx", ctx, "--stride", stride, "--save-logits", base, text=short_text)
    got = perplexity(wgllm, q8, "--kl-base", base, text=short_text)
    ids = wgllm.tokenize(f32, file=short_text)

    targets, lp_base = eval_ref.scored_log_probs(reference(f32), ids, ctx, stride)
    _, lp_q8 = eval_ref.scored_log_probs(reference(q8), ids, ctx, stride)

    # the saved rows are the f32 model's log-probabilities: float32 logits make an error
    # that grows with the magnitude of the log-probability (down to -36 here; measured
    # 1.9e-5 relative to max(1, |log p|))
    saved = read_kl_file(base)
    assert (saved["n_text"], saved["n_scored"], saved["ctx"], saved["stride"]) == (len(ids), len(ids) - 1, ctx, stride)
    rows_err = np.max(np.abs(saved["rows"] - lp_base) / np.maximum(1.0, np.abs(lp_base)))
    assert rows_err < 1e-4
    assert base.stat().st_size == 48 + (len(ids) - 1) * saved["n_vocab"] * 4

    kl = np.sum(np.exp(lp_base) * (lp_base - lp_q8), axis=1)
    same = np.sum(np.argmax(lp_base, axis=1) == np.argmax(lp_q8, axis=1))
    k = got["kl"]
    # Q8_0 of this tiny model: mean KL 0.0135 nats, far above the float noise of the
    # engine (exactly 0 against itself). Measured relative differences from the
    # reference: mean 1.3e-6, standard error 2e-7, max 1.1e-5.
    assert 0 < k["mean"] < 0.1
    assert k["mean"] == pytest.approx(kl.mean(), rel=1e-3)
    assert k["mean_se"] == pytest.approx(kl.std(ddof=1) / np.sqrt(len(kl)), rel=1e-3)
    assert k["max"] == pytest.approx(kl.max(), rel=1e-3)
    p99 = np.sort(kl)[int(np.ceil(0.99 * len(kl))) - 1]
    assert k["p99"] == pytest.approx(p99, rel=1e-3)
    assert abs(k["same_top"] - same) <= 2  # near-ties may fall either way in float32
    assert k["base_ppl"] == pytest.approx(base_run["ppl"], rel=1e-6)
    nll_q8 = -lp_q8[np.arange(len(targets)), targets]
    assert got["ppl"] == pytest.approx(np.exp(nll_q8.mean()), rel=1e-4)


def test_kl_errors(wgllm, shared, scratch):
    model = shared / "models" / "aidreams260K-f32.gguf"
    base = scratch / "errors.kl"
    perplexity(wgllm, model, "--save-logits", base)
    other = scratch / "other.txt"
    other.write_text(TEXT.read_text().replace("Pip", "Pop"))
    p = perplexity(wgllm, model, "--kl-base", base, text=other, ok=False)
    assert p.returncode == 1 and "different text" in error_line(p)

    p = perplexity(wgllm, model, "--kl-base", base, "--ctx", 64, ok=False)
    assert p.returncode == 1 and "ctx 128, stride 64" in error_line(p)

    p = perplexity(wgllm, shared / "models" / "stories260K-f32.gguf", "--kl-base", base, ok=False)
    assert p.returncode == 1 and "different text" in error_line(p)  # another tokenizer

    raw = base.read_bytes()
    cases = {
        "truncated": (raw[:-1], "does not match its header"),
        "header only": (raw[:30], "shorter than its 48-byte header"),
        "magic": (b"XXXX" + raw[4:], "bad magic"),
        "version": (raw[:4] + b"\x02" + raw[5:], "version 2"),
        "vocab": (raw[:8] + b"\x00\x00\x00\x00" + raw[12:], "vocabulary size 0"),
        "nan": (raw[:48] + b"\x00\x00\xc0\x7f" + raw[52:], "not a log-probability"),
        "positive": (raw[:48] + np.float32(2.0).tobytes() + raw[52:], "not a log-probability"),
    }
    for name, (data, message) in cases.items():
        bad = scratch / f"bad-{name.replace(' ', '_')}.kl"
        bad.write_bytes(data)
        p = perplexity(wgllm, model, "--kl-base", bad, ok=False)
        assert p.returncode == 1 and message in error_line(p), name
    p = perplexity(wgllm, model, "--kl-base", scratch / "missing.kl", ok=False)
    assert p.returncode == 1 and "cannot open" in error_line(p)


def test_input_errors(wgllm, shared, scratch):
    model = shared / "models" / "aidreams260K-f32.gguf"
    empty = scratch / "empty.txt"
    empty.write_bytes(b"")
    p = perplexity(wgllm, model, text=empty, ok=False)
    assert p.returncode == 1 and "text too short: 1 token" in error_line(p)
    p = perplexity(wgllm, model, text=scratch / "nope.txt", ok=False)
    assert p.returncode == 1 and "cannot open" in error_line(p)
    p = perplexity(wgllm, model, "--ctx", 256, ok=False)
    assert p.returncode == 1 and "exceeds the model's training context 128" in error_line(p)
    for args in (["--ctx", 64, "--stride", 64], ["--ctx", 1], ["--stride", 0], ["--ctx", "x"], ["--bogus"]):
        p = perplexity(wgllm, model, *args, ok=False)
        assert p.returncode == 2, args
        assert p.stderr.decode().startswith("wgllm perplexity: error: "), args
    p = wgllm.run("perplexity", "-m", model)
    assert p.returncode == 2 and b"no text given" in p.stderr
    # a one-byte text still scores its one token
    short = scratch / "short.txt"
    short.write_bytes(b"a")
    got = perplexity(wgllm, model, text=short)
    assert got["tokens"] >= 2 and got["scored"] == got["tokens"] - 1 and got["mean_nll_se"] == 0
    # the default stride of a context of 2 is 1
    got = perplexity(wgllm, model, "--ctx", 2, text=short)
    assert got["stride"] == 1
