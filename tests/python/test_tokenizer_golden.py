"""Llama 2 SentencePiece tokenization against sentencepiece's own ids
(golden/llama2_tokenizer_cases.json: 25 strings, encoded without BOS).

The tokenizer comes from `wgllm convert spm tokenizer.model` (a vocab-only GGUF),
and each string goes through a file so its bytes reach the tokenizer unchanged.
"""

import json

import pytest

N_CASES = 25


@pytest.fixture(scope="module")
def spm_vocab(wgllm, shared, scratch):
    out = scratch / "llama2-vocab.gguf"
    wgllm.ok("convert", "spm", shared / "models" / "tokenizer.model", out)
    return out


@pytest.fixture(scope="module")
def cases(shared):
    with open(shared / "golden" / "llama2_tokenizer_cases.json", encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    assert len(cases) == N_CASES
    return cases


@pytest.mark.parametrize("index", range(N_CASES))
def test_tokenize_matches_sentencepiece(index, cases, spm_vocab, wgllm, scratch):
    case = cases[index]
    text_file = scratch / f"tokenizer-case-{index}.txt"
    text_file.write_bytes(case["text"].encode("utf-8"))
    ids = wgllm.tokenize(spm_vocab, file=text_file, bos=False)
    assert ids == case["ids"], f"text {case['text']!r}"


def test_bos_is_prepended(cases, spm_vocab, wgllm, scratch):
    text_file = scratch / "tokenizer-bos.txt"
    text_file.write_bytes(cases[0]["text"].encode("utf-8"))
    assert wgllm.tokenize(spm_vocab, file=text_file) == [1] + cases[0]["ids"]
