"""The seed corpus of fuzz_model_load stays meaningful: tests/fuzz/make_model_corpus.py writes
the same bytes on every run (scripts/test.sh writes the seeds with it before fuzzing; no model
file is kept in the repository), every valid-* seed loads with weights and runs (`wgllm info`
resolves it, `wgllm logits` gives finite values), and every broken-* seed is refused with one
error line, not a crash."""

import filecmp
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from test_arch import expect_error

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("make_model_corpus", ROOT / "tests" / "fuzz" / "make_model_corpus.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)
VALID = [f"valid-{n}.gguf" for n in gen.VALID]
BROKEN = [f"broken-{n}.gguf" for n in gen.BROKEN] + ["broken-truncated.gguf"]


@pytest.fixture(scope="module")
def corpus(scratch):
    out = scratch / "model_load"
    gen.main(out)
    return out


def test_corpus_has_every_family(corpus):
    assert len(VALID) >= 9 and len(BROKEN) >= 12
    assert {p.name for p in corpus.iterdir()} == set(VALID + BROKEN)
    for family in ("llama", "qwen2", "qwen3", "phi3"):
        assert any(name.startswith(f"valid-{family}-") for name in VALID), family
    for p in corpus.iterdir():
        assert p.stat().st_size < 8192, p.name


def test_generator_is_deterministic(corpus, scratch):
    again = scratch / "model_load_again"
    gen.main(again)
    for name in VALID + BROKEN:
        assert filecmp.cmp(again / name, corpus / name, shallow=False), f"{name} differs between two runs"


@pytest.mark.parametrize("name", VALID)
def test_valid_seed_loads(name, corpus, wgllm):
    path = corpus / name
    out = wgllm.ok("info", path).stdout.decode()
    assert "not loadable" not in out, out
    logits = wgllm.logits(path, [1, 2, 3])
    assert logits.shape == (3, 8)
    assert np.isfinite(logits).all()


@pytest.mark.parametrize("name", BROKEN)
def test_broken_seed_refused(name, corpus, wgllm, scratch):
    path = corpus / name
    p = wgllm.run("logits", "-m", path, "--ids", "1 2", "-o", scratch / "unused.f32", "-t", "1",
                  "--backend", "cpu")
    expect_error(p, path.name)
    assert len(p.stderr.splitlines()) == 1, p.stderr


# A file of a few KB claiming 2^25 + 1 layers (found by fuzz_model_load) or a width of 2^29
# made the loader allocate 4 to 6 GB for the norm and bias vectors before it found the first
# missing tensor; it is now refused by comparing with what the file's tensors can hold.
@pytest.mark.parametrize("name, words", [
    ("broken-huge-block-count", ("block_count 33554433", "14 tensors")),
    ("broken-huge-width", ("width 536870912", "more than the file's tensors hold")),
])
def test_huge_hparams_refused_before_allocating(name, words, corpus, wgllm, scratch):
    p = wgllm.run("logits", "-m", corpus / f"{name}.gguf", "--ids", "1 2", "-o", scratch / "unused.f32",
                  "-t", "1", "--backend", "cpu")
    expect_error(p, *words)


# A tokenizer model or pre-tokenizer name with a newline (found by fuzz_model_load) split the
# error into two lines and passed escape bytes through; they are shown as '?' now.
@pytest.mark.parametrize("name, words", [
    ("broken-tokenizer-model-newline", ("unsupported tokenizer model 'l?ama'",)),
    ("broken-pre-escape", ("unsupported pre-tokenizer 'x??[31my'",)),
])
def test_hostile_names_shown_on_one_line(name, words, corpus, wgllm, scratch):
    p = wgllm.run("logits", "-m", corpus / f"{name}.gguf", "--ids", "1 2", "-o", scratch / "unused.f32",
                  "-t", "1", "--backend", "cpu")
    expect_error(p, *words)
    assert p.stderr.count(b"\n") == 1 and b"\x1b" not in p.stderr, p.stderr
