"""Tokenization of the reference vocabularies shipped in llama.cpp's models/ folder.

Each ggml-vocab-<name>.gguf comes with <name>.gguf.inp (test strings separated by
"\\n__ggml_vocab_test__\\n") and .gguf.out (one line of expected ids per string, made
with the Hugging Face tokenizer of that model), as read by llama.cpp's
tests/test-tokenizer-0.cpp: encoded without BOS and without parsing special tokens.
`wgllm tokenize --no-bos` must give those ids for every string (the byte-level BPE
vocabularies take a second to load, so their strings go through one process, joined
by a control token parsed as such: each string is then pre-tokenized on its own, as
alone; a differing batch is retried string by string to name the culprit):
  llama-spm  SentencePiece (Llama 2)
  llama-bpe  byte-level BPE, Llama 3 pre-tokenizer
  qwen2      byte-level BPE, Qwen2 pre-tokenizer (one digit a piece, no ignore_merges)
  phi-3      SentencePiece (Phi-3)
"""

from concurrent.futures import ThreadPoolExecutor

import pytest

from llama_cpp_ref import src_dir

SEP = "\n__ggml_vocab_test__\n"
VOCABS = ["llama-spm", "llama-bpe", "qwen2", "phi-3"]
JOIN = {"llama-bpe": ("<|end_of_text|>", 128001), "qwen2": ("<|endoftext|>", 151643)}  # control tokens


def read_cases(gguf_path):
    """(text, ids) pairs as test-tokenizer-0.cpp splits the two files."""
    raw = gguf_path.with_name(gguf_path.name + ".inp").read_bytes().decode("utf-8")
    texts, pos = [], 0
    while pos < len(raw):
        nxt = raw.find(SEP, pos)
        if nxt < 0:
            texts.append(raw[pos:])
            break
        texts.append(raw[pos:nxt])
        pos = nxt + len(SEP)
    lines = gguf_path.with_name(gguf_path.name + ".out").read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    assert len(texts) == len(lines), f"{gguf_path.name}: {len(texts)} strings, {len(lines)} id lines"
    return [(t, [int(x) for x in line.split()]) for t, line in zip(texts, lines)]


@pytest.mark.parametrize("name", VOCABS)
def test_reference_tokenizations(name, wgllm, scratch):
    vocab = src_dir() / "models" / f"ggml-vocab-{name}.gguf"
    cases = read_cases(vocab)
    assert len(cases) >= 30 and any(ids for _, ids in cases)

    def ours(index):
        path = scratch / f"vocab-{name}-{index}.txt"
        path.write_bytes(cases[index][0].encode("utf-8"))
        return wgllm.tokenize(vocab, file=path, bos=False)

    got = None
    if name in JOIN:
        sep, sep_id = JOIN[name]
        assert not any(sep in text for text, _ in cases)
        path = scratch / f"vocab-{name}-joined.txt"
        path.write_bytes(sep.join(text for text, _ in cases).encode("utf-8"))
        out = wgllm.ok("tokenize", "-m", vocab, "--no-bos", "--special", "--file", path).stdout.split()
        joined, got = [int(t) for t in out], [[]]
        for t in joined:
            if t == sep_id:
                got.append([])
            else:
                got[-1].append(t)
        if got != [ids for _, ids in cases]:
            got = None
    if got is None:
        with ThreadPoolExecutor(max_workers=2) as pool:
            got = list(pool.map(ours, range(len(cases))))
    wrong = [(text, want, g) for (text, want), g in zip(cases, got) if g != want]
    assert not wrong, f"{name}: {len(wrong)} of {len(cases)} differ, first (text, expected, ours): {wrong[0]!r}"
