"""Qwen2 (byte-level BPE, Qwen2 pre-tokenizer) tokenization against Hugging Face `tokenizers`.

A Qwen2-style tokenizer.json is built with the `tokenizers` library as Qwen2's is: a
BPE model without ignore_merges, trained on test_tokenizer_bpe.py's text over the full
byte alphabet, a Split on Qwen2's regex (Llama 3's with \\p{N} for \\p{N}{1,3}: one
digit a piece) then ByteLevel, and Qwen2's special tokens. `wgllm convert
hf-tokenizer` turns it into a vocabulary-only GGUF (tokenizer.ggml.pre "qwen2"), and
`wgllm tokenize` must give the ids `tokenizers` gives on test_tokenizer_bpe.py's
hand-picked strings and its 2,000 seeded random ones; decoding gives the bytes back.
"""

import pytest

import gguf
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from families import qwen2_pre_tokenizer
from test_tokenizer_bpe import CASES, RANDOM, Ours, hf_ids, training_text

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@pytest.fixture(scope="module")
def hf(scratch):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = qwen2_pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=3000, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_text(), trainer)
    tok.add_special_tokens(SPECIALS)
    path = scratch / "qwen2" / "tokenizer.json"  # its own folder: no tokenizer_config.json beside it
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


@pytest.fixture(scope="module")
def hf_tok(hf):
    return Tokenizer.from_file(str(hf))


@pytest.fixture(scope="module")
def vocab(hf, wgllm, scratch):
    out = scratch / "qwen2-vocab.gguf"
    wgllm.ok("convert", "hf-tokenizer", hf, out)
    return out


@pytest.fixture(scope="module")
def ours(wgllm, vocab, scratch):
    return Ours(wgllm, vocab, scratch)


def test_converted_keys(vocab):
    r = gguf.GGUFReader(str(vocab))
    assert r.fields["tokenizer.ggml.model"].contents() == "gpt2"
    assert r.fields["tokenizer.ggml.pre"].contents() == "qwen2"


def test_digits_split_one_by_one(hf_tok, ours):
    """The difference from Llama 3: a run of digits is one pre-token per digit."""
    ids = hf_ids(hf_tok, "x 1234567 y", special=False)
    assert ours.ids("x 1234567 y") == ids
    assert [hf_tok.id_to_token(i) for i in ids].count("1") == 1 and len(ids) >= 9


@pytest.mark.parametrize("index", range(len(CASES)))
def test_matches_hf_tokenizers(index, hf_tok, ours):
    text = CASES[index]
    assert ours.ids(text) == hf_ids(hf_tok, text, special=False), f"text {text!r}"


def test_random_strings_match_hf_tokenizers(hf_tok, ours):
    # 100 strings per process joined by a special token parsed as such, as in test_tokenizer_bpe.py
    sep = "<|im_end|>"
    mismatches = []
    for start in range(0, len(RANDOM), 100):
        chunk = RANDOM[start:start + 100]
        joined = sep.join(chunk)
        got, want = ours.ids(joined, special=True), hf_ids(hf_tok, joined, special=True)
        assert want.count(hf_tok.token_to_id(sep)) >= len(chunk) - 1
        if got != want:
            mismatches += [(t, ours.ids(t), hf_ids(hf_tok, t, False)) for t in chunk
                           if ours.ids(t) != hf_ids(hf_tok, t, False)] or [(joined, got, want)]
    assert not mismatches, f"{len(mismatches)} differ, first: {mismatches[0]!r}"


def test_decode_round_trip(hf_tok, ours):
    texts = CASES + RANDOM[:300]
    all_ids = []
    for text in texts:
        all_ids += hf_ids(hf_tok, text, special=False)
    assert ours.decode(all_ids) == "".join(texts).encode("utf-8")


def test_whole_word_piece_is_still_merged(wgllm, scratch):
    """Qwen2 has no ignore_merges: a word that is itself a piece ("abc") but that the
    merges do not build is split as the merges say (Llama 3 would keep it whole); and
    digits are pre-tokens of their own, so the merge "1 2" never applies (Llama 3's
    split would give "12")."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    pieces = sorted(alphabet) + ["ab", "bc", "abc", "12"]
    tok = Tokenizer(models.BPE(vocab={p: i for i, p in enumerate(pieces)},
                               merges=[("a", "b"), ("b", "c"), ("1", "2")], ignore_merges=False))
    tok.pre_tokenizer = qwen2_pre_tokenizer()
    path = scratch / "qwen2-whole-word" / "tokenizer.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    out = scratch / "qwen2-whole-word.gguf"
    wgllm.ok("convert", "hf-tokenizer", path, out)
    text = "abc xabc 123"
    want = tok.encode(text, add_special_tokens=False).ids
    assert [pieces[i] for i in want[:2]] == ["ab", "c"] and [pieces[i] for i in want[-3:]] == ["1", "2", "3"], want
    assert Ours(wgllm, out, scratch).ids(text) == want
