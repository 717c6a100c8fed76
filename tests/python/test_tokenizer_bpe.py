"""Llama 3 (byte-level BPE) tokenization against Hugging Face `tokenizers`.

A Llama-3-style tokenizer.json is built here with the `tokenizers` library: a BPE
model (ignore_merges, as Llama 3's) trained on text of this file over the full
byte alphabet, the Llama 3 pre-tokenizer (Split on its regex, then ByteLevel),
the ByteLevel decoder, the Llama 3 special tokens and a post-processor that
prepends <|begin_of_text|>. `wgllm convert hf-tokenizer` turns it into a
vocabulary-only GGUF, and `wgllm tokenize` must give the very ids that
`tokenizers` gives, on hand-picked strings and on 2,000 seeded random ones;
decoding must give the input bytes back.
"""

import json
import random
import re

import pytest

import gguf
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
            "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
            "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]

CORPUS = """\
The tokenizer splits text into words, numbers and punctuation before it merges bytes.
It's what Llama 3 does: they're split by a regular expression, and we'll see it isn't hard.
I'd say you've got 12 apples, 345 pears and 6789 plums; that's 7,146 fruits in 2024.
Don't WORRY -- IT'S FINE!!! She said: "Hello, world." (and then left...)
def main(argv):\n    return sum(int(x) for x in argv[1:])  # 100% tested\r\n
Über naïve café façade résumé coöperate; Ærøskøbing straße.
Привет, как дела? Всё хорошо. Ελληνικά γράμματα. שלום עולם. مرحبا بالعالم.
日本語の文章です。中文也可以。한국어 문장도 있습니다. नमस्ते दुनिया. สวัสดีครับ
Emoji: 😀 👍🏽 🎉🎉 ❤️ 🇫🇷 and symbols © ® ™ € £ ¥ ½ ² ³ Ⅻ.
Tabs\tand  double  spaces,   three   spaces,\n\nnew paragraphs\n\n\n and trailing   \n
"""

SYLLABLES = ["ka", "lo", "mi", "ne", "tu", "ra", "shi", "on", "en", "the", "ing", "ver", "str", "qu", "bl",
             "ax", "oi", "ze", "pr", "um", "gh", "ée", "ö", "ñ", "日", "本", "語", "字", "한", "국", "ри", "вет"]


def training_text():
    """The corpus above plus seeded pseudo-words, numbers and punctuation."""
    rng = random.Random(7)
    lines = []
    for _ in range(1500):
        words = []
        for _ in range(rng.randint(4, 14)):
            w = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))
            words.append(w.capitalize() if rng.random() < 0.2 else w)
            if rng.random() < 0.15:
                words.append(str(rng.randint(0, 99999)))
        lines.append(" ".join(words) + rng.choice([".", ",", "!", "?", ":", "\n", " --", "'s"]))
    return [CORPUS] * 20 + lines


@pytest.fixture(scope="module")
def hf(scratch):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=3000, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_text(), trainer)
    tok.add_special_tokens(SPECIALS)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", bos)])
    path = scratch / "llama3-tokenizer.json"
    tok.save(str(path))
    return path


@pytest.fixture(scope="module")
def hf_tok(hf):
    """A fresh Tokenizer read back from the file (what the converter reads)."""
    return Tokenizer.from_file(str(hf))


@pytest.fixture(scope="module")
def vocab(hf, wgllm, scratch):
    out = scratch / "llama3-vocab.gguf"
    # No tokenizer_config.json beside it: bos from the post-processor, eos by name.
    wgllm.ok("convert", "hf-tokenizer", hf, out)
    return out


def hf_ids(tok, text, special):
    tok.encode_special_tokens = not special
    try:
        return tok.encode(text, add_special_tokens=False).ids
    finally:
        tok.encode_special_tokens = False


class Ours:
    def __init__(self, wgllm, vocab, scratch):
        self.wgllm, self.vocab, self.scratch, self.n = wgllm, vocab, scratch, 0

    def _file(self, data):
        self.n += 1
        path = self.scratch / f"bpe-case-{self.n}.txt"
        path.write_bytes(data)
        return path

    def ids(self, data, special=False, bos=False):
        if isinstance(data, str):
            data = data.encode("utf-8")
        args = ["tokenize", "-m", self.vocab, "--file", self._file(data)]
        if special:
            args.append("--special")
        if not bos:
            args.append("--no-bos")
        out = self.wgllm.ok(*args).stdout.decode()
        assert out.endswith("\n") and out.count("\n") == 1, f"tokenize printed {out!r}"
        return [int(t) for t in out.split()]

    def decode(self, ids):
        p = self.wgllm.ok("tokenize", "-m", self.vocab, "--decode", "--file",
                          self._file(" ".join(map(str, ids)).encode()))
        return p.stdout


@pytest.fixture(scope="module")
def ours(wgllm, vocab, scratch):
    return Ours(wgllm, vocab, scratch)


CASES = [
    "", "a", " ", "  ", "Hello world", " Hello world", "Hello  world", "hello\nworld",
    # contractions in every case, and look-alikes that are not contractions
    "it's", "IT'S", "It'S", "we're", "WE'RE", "We'Re", "I'LL", "i'll", "you've", "YOU'VE", "I'm", "I'M",
    "he'd", "HE'D", "don't", "DON'T", "'s", "'sup", "'", "''", "' s", "rock'n'roll", "o'clock", "it\u2019s",
    "cats' toys", "'LL'll'Ll", "it'\u017f", "it'\u017ft", "'\u017fs'\u017f",
    # numbers: digit groups of three
    "1", "12", "123", "1234", "12345", "123456", "1234567", "3.14159", "1,000,000", "-42", "x2y33z444w5555",
    "\u0663\u0664\u0665\u0666", "\uff15\uff16\uff17\uff18", "\u00b2\u00b3\u00b9", "\u216b\u2167", "\u00bd\u00bc",
    # whitespace runs, newlines and tabs
    "a  b", "a   b", "a \n b", "a\n\nb", "a\r\nb", "a\r\n\r\nb", "a \r\n \r\n b", "\n", "\r\n", "\n\n\n",
    "   leading", "trailing   ", "trailing \n", "\t", "a\tb", "\t\tindented", " \t \n \t ", "a\x0bb\x0cc",
    "x\x85y", "word \n\n  next", "end with newline\n",
    # punctuation runs
    "!!!", "...", "?!?!", "Hello, world!", "(parens) [brackets] {braces}", "a--b", " --> ", "#include <stdio.h>",
    "x == y && z != w", "\"quoted\"", "<|not_special|>", "<|eot_id", "path/to/file.txt", "~`@#$%^&*_+=|\\",
    "!!!\n\n", " !!\r\n\r\n",
    # scripts, accents, combining marks, emoji
    "日本語のテキスト", "中文字符", "한국어 텍스트", "Привет мир", "Ελληνικά", "שלום", "مرحبا", "नमस्ते", "สวัสดี",
    "café", "cafe\u0301", "n\u0303o", "a\u0308\u0323b", "\u0301start", "Ærøskøbing", "straße",
    "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷🇩🇪", "❤️", "I ❤️ NY", "emoji😀inside", "😀😀😀",
    "mixed English 日本語 and русский 123 !",
    # Unicode spaces and space-like characters
    "a\u00a0b", "a\u00a0\u00a0b", "a\u3000b", "a\u2009b", "a\u202fb", "a\u2028b", "a\u1680b", "\u3000\u3000x",
    "a\x1cb", "a\u200bb", "a\ufeffb",
    # letters and digits of recent Unicode versions
    "x\U00011f04y", "x\U000105c0y", "x\U00011f50y", "\U00031350",
    "\x00", "a\x00b",
]


@pytest.mark.parametrize("index", range(len(CASES)))
def test_matches_hf_tokenizers(index, hf_tok, ours):
    text = CASES[index]
    assert ours.ids(text) == hf_ids(hf_tok, text, special=False), f"text {text!r}"


ALPHABET = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 3
    + list(" " * 12) + ["\t", "\n", "\r\n", "\r", "\n\n", "  "] * 2
    + list("!?.,;:-_()[]{}<>/\\\"'`~@#$%^&*+=|")
    + ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'D", "'\u017f"]
    + list("éàüñçøßÆœ") + ["\u0301", "\u0308", "\u0323"]
    + list("日本語中文字한국어ひらがなカタカナ")
    + ["😀", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷", "❤️", "🎉"]
    + ["\u00a0", "\u2009", "\u3000", "\u2028", "\u0085", "\x0b", "\x0c", "\u1680", "\u202f", "\x1c", "\x00"]
    + list("٠١٢३५７²½Ⅻ") + list("مرحباשלוםΩμέγαПриветनमस्तेสวัสดี")
    + ["\U00011f04", "\U000105c0", "\U00011f50"]
    + ["the", " the", "ing", "Hello", " world", "123", "4567", "<|", "|>", "eot_id"]
)


def random_strings(n, seed):
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 30))) for _ in range(n)]


RANDOM = random_strings(2000, seed=2024)


def test_random_strings_match_hf_tokenizers(hf_tok, ours):
    # 100 strings per process: joined by <|eot_id|> and parsed with specials, each
    # string is pre-tokenized on its own (by both sides); a differing batch is
    # retried string by string to name the culprit.
    sep = "<|eot_id|>"
    eot = hf_tok.token_to_id(sep)
    mismatches = []
    for start in range(0, len(RANDOM), 100):
        chunk = RANDOM[start:start + 100]
        joined = sep.join(chunk)
        got, want = ours.ids(joined, special=True), hf_ids(hf_tok, joined, special=True)
        assert want.count(eot) >= len(chunk) - 1
        if got != want:
            mismatches += [(t, ours.ids(t), hf_ids(hf_tok, t, False)) for t in chunk
                           if ours.ids(t) != hf_ids(hf_tok, t, False)] or [(joined, got, want)]
    assert not mismatches, f"{len(mismatches)} differ, first: {mismatches[0]!r}"


def test_decode_round_trip(hf_tok, ours):
    # Byte-level decoding is concatenative: one call decodes every case at once,
    # and each case is also checked on its own by the reference decoder.
    texts = CASES + RANDOM[:300]
    all_ids = []
    for text in texts:
        ids = hf_ids(hf_tok, text, special=False)
        assert hf_tok.decode(ids, skip_special_tokens=False) == text
        all_ids += ids
    assert ours.decode(all_ids) == "".join(texts).encode("utf-8")
    for text in CASES[:40]:
        assert ours.decode(ours.ids(text)) == text.encode("utf-8"), f"text {text!r}"


def test_invalid_utf8_round_trips(ours):
    """Bytes that are not UTF-8 go through the byte alphabet: decoding is exact."""
    rng = random.Random(99)
    samples = [b"\xff", b"\xc3", b"a\x80b", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"ok\xe2\x82",
               b"\xe2\x82 tail", b"\xfe\xff words \x80\x81"]
    samples += [bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))) for _ in range(40)]
    for data in samples:
        ids = ours.ids(data)
        assert ids, data
        assert ours.decode(ids) == data, f"bytes {data!r}"


CHAT = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat's 2+2?<|eot_id|><|start_header_id|>assistant"
        "<|end_header_id|>\n\n")
SPECIAL_CASES = [CHAT, "<|eot_id|>", "a<|eot_id|>b", " <|eot_id|> ", "<|eot_id|><|eot_id|>", "<|eot_id",
                 "x<|reserved_special_token_1|>y", "<|<|eot_id|>|>", "hello\n\n<|end_of_text|>\n\nworld"]


@pytest.mark.parametrize("index", range(len(SPECIAL_CASES)))
def test_special_tokens_parsed_only_when_asked(index, hf_tok, ours):
    text = SPECIAL_CASES[index]
    with_special = hf_ids(hf_tok, text, special=True)
    as_text = hf_ids(hf_tok, text, special=False)
    assert ours.ids(text, special=True) == with_special
    assert ours.ids(text) == as_text
    if "<|eot_id|>" in text:
        assert hf_tok.token_to_id("<|eot_id|>") in with_special
        assert hf_tok.token_to_id("<|eot_id|>") not in as_text


def test_bos_added_by_default(hf_tok, ours):
    text = "Hello there, it's me."
    assert ours.ids(text, bos=True) == hf_tok.encode(text).ids
    assert ours.ids(text, bos=True)[0] == hf_tok.token_to_id("<|begin_of_text|>")


def test_control_tokens_decode_to_nothing(hf_tok, ours):
    """As llama.cpp's token_to_piece without special: control tokens print nothing."""
    ids = ours.ids(CHAT, special=True)
    assert ours.decode(ids) == re.sub(r"<\|[a-z_]+\|>", "", CHAT).encode()
    assert ours.decode(ids) == b"system\n\nBe brief.user\n\nWhat's 2+2?assistant\n\n"


def test_converted_keys(hf, vocab):
    data = json.loads(hf.read_text(encoding="utf-8"))
    r = gguf.GGUFReader(str(vocab))

    def val(key):
        return r.fields[key].contents()

    assert val("tokenizer.ggml.model") == "gpt2"
    assert val("tokenizer.ggml.pre") == "llama-bpe"
    tokens = val("tokenizer.ggml.tokens")
    types = val("tokenizer.ggml.token_type")
    for piece, i in data["model"]["vocab"].items():
        assert tokens[i] == piece and types[i] == gguf.TokenType.NORMAL
    for added in data["added_tokens"]:
        assert tokens[added["id"]] == added["content"] and types[added["id"]] == gguf.TokenType.CONTROL
    assert len(tokens) == len(data["model"]["vocab"]) + len(SPECIALS)
    merges = [" ".join(m) if isinstance(m, list) else m for m in data["model"]["merges"]]
    assert len(merges) > 2000
    assert val("tokenizer.ggml.merges") == merges
    assert tokens[val("tokenizer.ggml.bos_token_id")] == "<|begin_of_text|>"
    assert tokens[val("tokenizer.ggml.eos_token_id")] == "<|end_of_text|>"
    assert val("tokenizer.ggml.add_bos_token") is True
    assert val("tokenizer.ggml.add_eos_token") is False


def test_config_sets_bos_eos(hf, wgllm, scratch):
    config = scratch / "tokenizer_config.json"
    config.write_text(json.dumps({"bos_token": "<|begin_of_text|>",
                                  "eos_token": {"content": "<|eot_id|>", "special": True},
                                  "add_bos_token": False}), encoding="utf-8")
    out = scratch / "llama3-config.gguf"
    wgllm.ok("convert", "hf-tokenizer", hf, out, "--config", config)
    r = gguf.GGUFReader(str(out))
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    assert tokens[r.fields["tokenizer.ggml.eos_token_id"].contents()] == "<|eot_id|>"
    assert r.fields["tokenizer.ggml.add_bos_token"].contents() is False


def test_gguf_py_written_vocab_loads(hf, hf_tok, wgllm, scratch):
    """A vocabulary written by gguf-py (as llama.cpp's converter writes it) tokenizes the same."""
    data = json.loads(hf.read_text(encoding="utf-8"))
    n = len(data["model"]["vocab"]) + len(data["added_tokens"])
    tokens = [""] * n
    types = [gguf.TokenType.NORMAL] * n
    for piece, i in data["model"]["vocab"].items():
        tokens[i] = piece
    for added in data["added_tokens"]:
        tokens[added["id"]] = added["content"]
        types[added["id"]] = gguf.TokenType.CONTROL
    path = scratch / "llama3-gguf-py.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in data["model"]["merges"]])
    w.add_bos_token_id(hf_tok.token_to_id("<|begin_of_text|>"))
    w.add_eos_token_id(hf_tok.token_to_id("<|eot_id|>"))
    w.add_add_bos_token(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    ours = Ours(wgllm, path, scratch)
    for text in CASES[:60]:
        assert ours.ids(text, bos=True) == hf_tok.encode(text).ids, f"text {text!r}"
    assert ours.ids(CHAT, special=True) == hf_ids(hf_tok, CHAT, special=True)


def test_unsupported_tokenizer_json_is_refused(hf, wgllm, scratch):
    scratch = scratch / "refused"  # no tokenizer_config.json beside the inputs
    scratch.mkdir()
    data = json.loads(hf.read_text(encoding="utf-8"))
    data["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                             "use_regex": True}  # GPT-2's pre-tokenizer, not Llama 3's
    bad = scratch / "gpt2-style.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    p = wgllm.run("convert", "hf-tokenizer", bad, scratch / "bad.gguf", "--config", scratch / "missing.json")
    assert p.returncode == 1
    p = wgllm.run("convert", "hf-tokenizer", bad, scratch / "bad.gguf")
    assert p.returncode == 1
    err = p.stderr.decode()
    assert err.startswith("wgllm convert: error: ") and "pre-tokenizer" in err and err.count("\n") == 1
    assert not (scratch / "bad.gguf").exists()
    notjson = scratch / "notjson.json"
    notjson.write_text("{ not json", encoding="utf-8")
    p = wgllm.run("convert", "hf-tokenizer", notjson, scratch / "bad.gguf")
    assert p.returncode == 1 and b"invalid JSON" in p.stderr
