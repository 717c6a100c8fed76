"""`wgllm convert hf` for Mistral, Qwen2, Qwen3 and Phi-3 against llama.cpp's own converter.

For each family a tiny random model is built with `transformers` (seeded, float32)
and written with `save_pretrained`; the same folder is converted by
`wgllm convert hf` and by llama.cpp's convert_hf_to_gguf.py (the pinned
tree of llama_cpp_ref.src_dir(), with its own gguf-py). The two files must have:
  - the same tensors: names, shapes, types and bit-identical data, in F32 and in Q8_0
    (so q/k are permuted for llama only, biases, q/k norms and phi3's fused attn_qkv and
    gate-then-up ffn_up are laid out as llama.cpp lays them out);
  - the same value for every key llama.cpp writes, except NOT_WRITTEN; and no key
    of ours that llama.cpp lacks, except EXTRA (keys llama.cpp reads with the same
    default, written so that every file states them);
  - tokenizers that give the same ids (SentencePiece folders: also sentencepiece's
    ids; byte-level BPE folders: the Hugging Face tokenizer's ids), and, with the bos/eos
    wgllm adds by default, llama.cpp's tokenizer's ids (llama_cpp_ref.tokenize);
  - and llama.cpp's CPU build loads both and continues a prompt alike.

The families:
  llama    LlamaForCausalLM as Llama 3.2: GQA 4:1, tied, llama3 rope scaling (rope_freqs.weight),
           a Llama 3 byte-level BPE tokenizer.json;
  mistral  MistralForCausalLM, GQA 2:1, sliding_window 16, untied, the Llama 2
           tokenizer.model;
  qwen2    Qwen2ForCausalLM, q/k/v biases, tied embeddings, a Qwen2-style
           byte-level BPE tokenizer.json trained here (families.qwen2_trained_tokenizer);
  qwen3    Qwen3ForCausalLM, q/k RMS norms, head_dim 32 (not hidden / heads), and config.json's
           vocab_size rounded up past the tokenizer's size, as Qwen's (151,936 rows for
           151,646 tokens): both converters pad the vocabulary with "[PAD<id>]" UNUSED tokens;
  phi3     Phi3ForCausalLM, fused qkv_proj and gate_up_proj, sliding_window 32,
           partial_rotary_factor 0.5 (as Phi-4-mini's 0.75: 8 of 16 values rotated),
           vocab_size 32064 with Phi-3's added tokens (<|endoftext|>, <|end|>, ...)
           in tokenizer_config.json, and a config.json "_name_or_path" for the name.

llama.cpp's converter recognises a byte-level BPE pre-tokenizer by the hash of the
ids a published tokenizer gives on a fixed text; a tokenizer trained here has no
published hash, so the run tells it the pre-tokenizer's name ("qwen2") in place of
that look-up. It needs `sentencepiece` for SentencePiece folders (tests/requirements.txt).
"""

import json

import numpy as np
import pytest
import torch
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Phi3Config, Phi3ForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

import families
import gguf
import llama_cpp_ref
from test_convert_hf_transformers import llama3_tokenizer
from test_tokenizer_bpe import training_text

# Keys llama.cpp derives from the model's name ("org/name-v0.1" -> organization, basename,
# version, finetune, a size label such as "mini"); we write general.name only. And
# add_sep_token, which its reading of a post-processor's pair template sets to false
# for Llama 3: false is also its loader's default (checked below).
NOT_WRITTEN = {"general.basename", "general.finetune", "general.organization", "general.version",
               "tokenizer.ggml.add_sep_token"}
# Ours only: the head size, rotary size and Mistral's window in every file (llama.cpp's
# loader reads them with these very defaults), and the tokenizer flags at their defaults.
EXTRA = {"attention.key_length", "attention.value_length", "rope.dimension_count", "attention.sliding_window",
         "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_space_prefix",
         "tokenizer.ggml.unknown_token_id"}

TEXTS = ["Hello world", " The quick brown fox jumps over the lazy dog.", "It's 12345 apples, isn't it?",
         "Tabs\tand  spaces\n\nnew lines", "naïve café 日本語 😀", "x == y && z != w"]

SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=256)

PHI3_ADDED = {0: ("<unk>", True), 1: ("<s>", True), 2: ("</s>", False), 32000: ("<|endoftext|>", True),
              32001: ("<|assistant|>", True), 32006: ("<|system|>", True), 32007: ("<|end|>", True),
              32010: ("<|user|>", True)}


def qwen3_vocab_size(n_tokens):
    """Embedding rows past the tokenizer's last id, rounded up to 128 as Qwen's are."""
    return (n_tokens // 128 + 1) * 128


def build(scratch, shared, family):
    torch.manual_seed({"llama": 10, "mistral": 11, "qwen2": 12, "qwen3": 13, "phi3": 14}[family])
    folder = scratch / "families" / f"tiny-{family}"
    tokenizer = None
    if family == "llama":
        tokenizer = llama3_tokenizer()
        model = LlamaForCausalLM(LlamaConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2,
            max_position_embeddings=1024, tie_word_embeddings=True, vocab_size=len(tokenizer),
            bos_token_id=tokenizer.convert_tokens_to_ids("<|begin_of_text|>"),
            eos_token_id=tokenizer.convert_tokens_to_ids("<|end_of_text|>"),
            rope_parameters={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 64, "rope_theta": 500000.0}))
    elif family == "mistral":
        model = MistralForCausalLM(MistralConfig(**SMALL, vocab_size=32000, sliding_window=16,
                                                 tie_word_embeddings=False))
    elif family in ("qwen2", "qwen3"):
        tokenizer = families.qwen2_trained_tokenizer(training_text()[:200])
        # as Qwen2's: config.json names a bos id that tokenizer_config.json leaves out
        ids = dict(vocab_size=len(tokenizer), eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                   bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"))
        if family == "qwen2":
            model = Qwen2ForCausalLM(Qwen2Config(**SMALL, **ids, tie_word_embeddings=True))
        else:
            ids["vocab_size"] = qwen3_vocab_size(len(tokenizer))
            model = Qwen3ForCausalLM(Qwen3Config(**SMALL, **ids, head_dim=32, tie_word_embeddings=False))
    else:
        model = Phi3ForCausalLM(Phi3Config(**SMALL, vocab_size=32064, original_max_position_embeddings=256,
                                           sliding_window=32, bos_token_id=1, eos_token_id=32000,
                                           pad_token_id=32000, partial_rotary_factor=0.5))
    model.to(torch.float32).save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    else:
        (folder / "tokenizer.model").write_bytes((shared / "models" / "tokenizer.model").read_bytes())
    if family == "phi3":
        config = json.loads((folder / "config.json").read_text())
        config["_name_or_path"] = "acme/tiny-phi3-v0.1"
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        (folder / "tokenizer_config.json").write_text(json.dumps({
            "added_tokens_decoder": {str(i): {"content": c, "special": s} for i, (c, s) in PHI3_ADDED.items()},
            "bos_token": "<s>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<unk>",
            "add_bos_token": False, "add_eos_token": False, "tokenizer_class": "LlamaTokenizer"}))
    return folder, tokenizer


FAMILIES = ["llama", "mistral", "qwen2", "qwen3", "phi3"]
NO_ADD_BOS_KEY = ("mistral", "qwen2", "qwen3")  # llama.cpp's files of these lack tokenizer.ggml.add_bos_token
PRE = {"llama": "llama-bpe", "qwen2": "qwen2", "qwen3": "qwen2"}  # byte-level BPE pre-tokenizer names


@pytest.fixture(scope="module")
def converted(scratch, shared, wgllm):
    out = {}
    for name in FAMILIES:
        folder, tokenizer = build(scratch, shared, name)
        for t in ("f32", "q8_0"):
            wgllm.ok("convert", "hf", folder, folder.parent / f"{name}.wgllm.{t}.gguf", "--type", t, timeout=120)
        out[name] = (name, folder, tokenizer, folder.parent / f"{name}.wgllm.f32.gguf",
                     folder.parent / f"{name}.llama-cpp.f32.gguf")
    llama_cpp_ref.convert_hf_many([(f, f.parent / f"{name}.llama-cpp.{t}.gguf", t, PRE.get(name))
                                   for name, f, _, _, _ in out.values() for t in ("f32", "q8_0")])
    return out


@pytest.fixture(params=FAMILIES)
def family(request, converted):
    return converted[request.param]


_readers = {}


def reader(path):
    """One GGUFReader per file (parsing 32,000 token strings takes seconds)."""
    if path not in _readers:
        _readers[path] = gguf.GGUFReader(str(path))
    return _readers[path]


def fields(path):
    return {k: f.contents() for k, f in reader(path).fields.items() if not k.startswith("GGUF.")}


def same_value(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return np.isclose(a, b, rtol=1e-7, atol=0)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("outtype", ["f32", "q8_0"])
def test_tensors_match_llama_cpp(family, outtype):
    name, folder, _, _, _ = family
    ours, ref = (folder.parent / f"{name}.{who}.{outtype}.gguf" for who in ("wgllm", "llama-cpp"))
    a = {t.name: t for t in reader(ours).tensors}
    b = {t.name: t for t in reader(ref).tensors}
    assert sorted(a) == sorted(b), f"{name}: tensor names differ"
    for n, t in b.items():
        assert list(a[n].shape) == list(t.shape), f"{name}: {n} shape {a[n].shape} vs {t.shape}"
        assert a[n].tensor_type == t.tensor_type, f"{name}: {n} type"
        assert np.array_equal(np.asarray(a[n].data), np.asarray(t.data)), f"{name}: {n} values differ"
    expected = {"llama": ["rope_freqs.weight"], "mistral": ["blk.0.attn_q.weight"], "qwen2": ["blk.1.attn_v.bias", "blk.0.attn_q.bias"],
                "qwen3": ["blk.0.attn_q_norm.weight", "blk.1.attn_k_norm.weight"],
                "phi3": ["blk.0.attn_qkv.weight", "blk.1.ffn_up.weight"]}[name]
    assert all(n in b for n in expected), sorted(b)
    assert ("output.weight" in b) == (name not in ("llama", "qwen2")), "tied embeddings: no output.weight"


def test_metadata_matches_llama_cpp(family):
    name, _, tokenizer, ours, ref = family
    a, b = fields(ours), fields(ref)
    arch = b["general.architecture"]
    assert arch == {"mistral": "llama"}.get(name, name)
    missing = sorted(k for k in b if k not in a and k not in NOT_WRITTEN)
    assert not missing, f"{name}: keys llama.cpp writes and we do not: {missing}"
    differ = [(k, a[k], b[k]) for k in b if k in a and not same_value(a[k], b[k])]
    assert not differ, f"{name}: values differ (ours, llama.cpp's): {differ[:5]}"
    assert b.get("tokenizer.ggml.add_sep_token", False) is False
    extra = sorted(k for k in a if k not in b and k.removeprefix(arch + ".") not in EXTRA)
    assert not extra, f"{name}: keys only we write: {extra}"
    # the items of the converter's metadata, stated once more
    assert a["general.type"] == "model" and a["general.quantization_version"] == 2
    assert a["general.size_label"] == b.get("general.size_label", a["general.size_label"])
    assert a[f"{arch}.attention.key_length"] == a[f"{arch}.attention.value_length"]
    if name in ("mistral", "phi3"):
        assert a["tokenizer.ggml.pre"] == "default" and a["tokenizer.ggml.model"] == "llama"
        assert a[f"{arch}.attention.sliding_window"] == {"mistral": 16, "phi3": 32}[name]
    elif name == "llama":
        assert a["tokenizer.ggml.pre"] == "llama-bpe" and not any(k.startswith("llama.rope.scaling") for k in a)
    else:
        assert a["tokenizer.ggml.pre"] == "qwen2" and a["tokenizer.ggml.model"] == "gpt2"
        assert a["tokenizer.ggml.bos_token_id"] == a["tokenizer.ggml.padding_token_id"]  # from config.json
    if name == "qwen3":
        assert a["qwen3.attention.key_length"] == 32
        # config.json's vocab_size past the tokenizer's size: padded as llama.cpp pads it
        # (the values equal llama.cpp's, checked above)
        n_tok = len(tokenizer)
        n_vocab = qwen3_vocab_size(n_tok)
        tokens, types = a["tokenizer.ggml.tokens"], a["tokenizer.ggml.token_type"]
        assert len(tokens) == len(types) == n_vocab > n_tok
        assert tokens[n_tok:] == [f"[PAD{i}]" for i in range(n_tok, n_vocab)]
        assert set(types[n_tok:]) == {gguf.TokenType.UNUSED} and "tokenizer.ggml.scores" not in a
        assert [t.shape[-1] for t in reader(ours).tensors if t.name == "token_embd.weight"] == [n_vocab]
    if name == "phi3":
        assert a["general.name"] == b["general.name"] == "Tiny Phi3 v0.1"
        assert a["phi3.rope.dimension_count"] == 8 and a["phi3.attention.key_length"] == 16
        tokens = a["tokenizer.ggml.tokens"]
        assert tokens[32000] == "<|endoftext|>" and tokens[32007] == "<|end|>" and tokens[32063] == "[PAD32063]"
        assert a["tokenizer.ggml.eos_token_id"] == 32000
    else:
        assert a["general.name"] == b["general.name"] == f"Tiny {name.capitalize()}"


def test_tokenizers_match(family, wgllm):
    name, folder, tokenizer, ours, ref = family
    if tokenizer is None:
        import sentencepiece
        sp = sentencepiece.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    for text in TEXTS:
        want = tokenizer(text, add_special_tokens=False)["input_ids"] if tokenizer else sp.encode(text)
        assert wgllm.tokenize(ours, text, bos=False) == want, f"{name}: {text!r}"
        assert wgllm.tokenize(ref, text, bos=False) == want, f"{name} (llama.cpp's file): {text!r}"


def test_default_bos_as_llama_cpp(family, wgllm):
    """wgllm's ids with its default bos/eos equal llama.cpp's on both files. A file without
    tokenizer.ggml.add_bos_token (llama.cpp's converter writes none for these Qwen2
    folders, nor for Mistral's folder without tokenizer_config.json) adds bos as llama.cpp
    does for its tokenizer: SentencePiece yes, Qwen2's byte-level BPE no."""
    name, _, _, ours, ref = family
    for path in (ours, ref):
        for text in TEXTS:
            assert wgllm.tokenize(path, text) == llama_cpp_ref.tokenize(path, text), f"{name}, {path.name}: {text!r}"
    if name in NO_ADD_BOS_KEY:
        assert "tokenizer.ggml.add_bos_token" not in fields(ref), name
        with_bos = wgllm.tokenize(ref, TEXTS[0])
        without = wgllm.tokenize(ref, TEXTS[0], bos=False)
        assert with_bos == (without if name.startswith("qwen") else [1] + without), name


def test_llama_cpp_runs_both_files(family, wgllm):
    """llama.cpp's CPU build loads our file (qwen3's padded vocabulary included: unpadded, its
    token_embd.weight had more rows than the vocabulary) and continues it as its own file."""
    name, _, _, ours, ref = family
    ids = wgllm.tokenize(ref, TEXTS[1], bos=False)
    assert llama_cpp_ref.greedy(ours, ids, 8) == llama_cpp_ref.greedy(ref, ids, 8), name


def test_unsupported_settings_are_refused(scratch, shared, wgllm):
    folder, _ = build(scratch, shared, "qwen2")
    config = json.loads((folder / "config.json").read_text())
    cases = [
        (dict(architectures=["GemmaForCausalLM"]), "unsupported architecture 'GemmaForCausalLM'"),
        (dict(use_sliding_window=True), "use_sliding_window"),
        (dict(architectures=["Phi3ForCausalLM"], rope_parameters={
            "rope_type": "longrope", "rope_theta": 10000.0, "long_factor": [1.0] * 8, "short_factor": [1.0] * 8,
            "factor": 4.0}), "longrope"),
        (dict(architectures=["Phi3ForCausalLM"], partial_rotary_factor=0.01), "partial_rotary_factor"),
        (dict(architectures=["Phi3ForCausalLM"], partial_rotary_factor=0.2), "must be even"),  # 12 // 4 = 3 rotated
        (dict(partial_rotary_factor=0.5), "only for Phi3ForCausalLM"),
        (dict(architectures=["MistralForCausalLM"], sliding_window=-4), "sliding_window"),
    ]
    for change, needle in cases:
        (folder / "config.json").write_text(json.dumps(dict(config, **change)))
        p = wgllm.run("convert", "hf", folder, scratch / "refused.gguf")
        err = p.stderr.decode()
        assert p.returncode == 1 and err.count("\n") == 1 and needle in err, err
        assert not (scratch / "refused.gguf").exists()
    # a token past config.json's vocab_size (llama.cpp's converter asserts the same)
    (folder / "config.json").write_text(json.dumps(config))
    tj = json.loads((folder / "tokenizer.json").read_text())
    tj["added_tokens"].append(dict(tj["added_tokens"][-1], id=config["vocab_size"], content="<|extra|>"))
    (folder / "tokenizer.json").write_text(json.dumps(tj))
    p = wgllm.run("convert", "hf", folder, scratch / "refused.gguf")
    err = p.stderr.decode()
    assert p.returncode == 1 and err.count("\n") == 1 and f"vocab_size is {config['vocab_size']}" in err, err
    assert not (scratch / "refused.gguf").exists()
