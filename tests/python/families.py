"""Tiny random models of each model family, made with Hugging Face `transformers` and saved with
`save_pretrained`, for the end-to-end tests against transformers and llama.cpp.

Weights are redrawn (seeded) at O(1) scale, as test_convert_hf_transformers.py does: the default
initializer (std 0.02) gives near-uniform attention and logits that would hide mistakes.

Tokenizers are real ones, so that llama.cpp's convert_hf_to_gguf.py accepts them (it refuses a
BPE pre-tokenizer whose ids on its check text it does not know):
  spm    Llama 2's tokenizer.model (the data folder), used by llama, mistral and phi3. The reference
         ids are sentencepiece's, the library the model was trained with (and that transformers 4's
         LlamaTokenizer wraps): transformers 5.24 rebuilds tokenizer.model as a `tokenizers` BPE
         that differs from sentencepiece on runs of spaces and a leading space (9 of the 39 strings
         of test_families_e2e.py: "Hello  world" gives 15043 259 11526, sentencepiece and
         llama.cpp 15043 29871 3186);
  qwen2  Qwen2's byte-level BPE, rebuilt as a tokenizer.json from llama.cpp's reference vocabulary
         models/ggml-vocab-qwen2.gguf (tokens, merges and specials; Qwen2's pre-tokenizer regex);
         the reference ids are transformers' own tokenizer's, loaded back from the saved folder.
"""

import json
import shutil

import gguf
import torch
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from sentencepiece import SentencePieceProcessor
from transformers import AutoTokenizer, PreTrainedTokenizerFast

import llama_cpp_ref

QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

_SMALL = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-5)

# family -> (transformers model class, its config, tokenizer)
FAMILIES = {
    # Llama 2 style: grouped-query attention, untied output
    "llama": ("LlamaForCausalLM", dict(_SMALL, vocab_size=32000, rope_theta=10000.0, tie_word_embeddings=False,
                                       bos_token_id=1, eos_token_id=2), "spm"),
    # Mistral 7B v0.1 style: its 4096 sliding window is longer than the prompts (llama.cpp's converter
    # does not write it; test_mistral_sliding_window_matches_transformers has a short one)
    "mistral": ("MistralForCausalLM", dict(_SMALL, vocab_size=32000, rope_theta=10000.0, sliding_window=4096,
                                           tie_word_embeddings=False, bos_token_id=1, eos_token_id=2), "spm"),
    # Qwen2.5-0.5B style: q/k/v biases, NeoX rotary, tied output
    "qwen2": ("Qwen2ForCausalLM", dict(_SMALL, vocab_size=151936, rope_theta=1000000.0, rms_norm_eps=1e-6,
                                       tie_word_embeddings=True, use_sliding_window=False,
                                       bos_token_id=151643, eos_token_id=151643), "qwen2"),
    # Qwen3 style: per-head q/k RMS norm, head size apart from hidden / heads, NeoX rotary
    "qwen3": ("Qwen3ForCausalLM", dict(_SMALL, vocab_size=151936, head_dim=32, rope_theta=1000000.0,
                                       rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False,
                                       bos_token_id=151643, eos_token_id=151643), "qwen2"),
    # Phi-3 mini style: fused qkv and gate_up tensors, NeoX rotary, the padded 32064 vocabulary
    "phi3": ("Phi3ForCausalLM", dict(_SMALL, vocab_size=32064, rope_theta=10000.0, tie_word_embeddings=False,
                                     sliding_window=None, bos_token_id=1, eos_token_id=32000,
                                     pad_token_id=32000), "spm"),
}


def rescale_weights(model, seed):
    """Matrices ~ N(0, 1/cols) (q and k 2x), biases N(0, 0.5), norms 1 + 0.2 N(0, 1), embeddings N(0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:
                qk = any(s in name for s in ("q_proj", "k_proj", "qkv_proj"))
                p.copy_((2.0 if qk else 1.0) / p.shape[1] ** 0.5 * torch.randn(p.shape, generator=gen))


def _qwen2_fast(tok, specials, eos):
    """tok (a BPE model, trained or built) with Qwen2's pre-tokenizer, decoder and specials."""
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token="<|endoftext|>")


def qwen2_pre_tokenizer():
    """Qwen2's: a Split on its regex (one digit a piece), then ByteLevel without its own regex."""
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])


def qwen2_tokenizer():
    """Qwen2's tokenizer as transformers' fast tokenizer, from llama.cpp's reference vocabulary
    (llama.cpp's converter recognises it by the hash of its ids)."""
    r = gguf.GGUFReader(str(llama_cpp_ref.src_dir() / "models" / "ggml-vocab-qwen2.gguf"))
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ", 1)) for m in r.fields["tokenizer.ggml.merges"].contents()]
    normal = {t: i for i, (t, ty) in enumerate(zip(tokens, types)) if ty == gguf.TokenType.NORMAL}
    specials = [t for t, ty in zip(tokens, types) if ty == gguf.TokenType.CONTROL]
    tok = Tokenizer(models.BPE(vocab=normal, merges=merges, ignore_merges=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = qwen2_pre_tokenizer()
    return _qwen2_fast(tok, specials, "<|endoftext|>")


def qwen2_trained_tokenizer(texts, vocab_size=600):
    """A small Qwen2-style tokenizer trained on texts over the byte alphabet, with Qwen2's chat
    specials. Its ids have no published hash: llama.cpp's converter must be told the
    pre-tokenizer ("qwen2", llama_cpp_ref.convert_hf_many)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = qwen2_pre_tokenizer()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return _qwen2_fast(tok, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], "<|im_end|>")


# Phi-3 mini's tokens added after the 32000 of Llama 2's tokenizer.model
PHI3_ADDED = ["<|endoftext|>", "<|assistant|>", "<|placeholder1|>", "<|placeholder2|>", "<|placeholder3|>",
              "<|placeholder4|>", "<|system|>", "<|end|>", "<|placeholder5|>", "<|placeholder6|>", "<|user|>"]


def save_spm_tokenizer(folder, shared, added=()):
    (folder / "tokenizer.model").write_bytes((shared / "models" / "tokenizer.model").read_bytes())
    decoder = {str(32000 + i): {"content": t, "lstrip": False, "normalized": False, "rstrip": t != "<|endoftext|>",
                                "single_word": False, "special": True} for i, t in enumerate(added)}
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": added[0] if added else "</s>",
        "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": decoder}))
    if added:
        (folder / "added_tokens.json").write_text(json.dumps({t: 32000 + i for i, t in enumerate(added)}))


class SpmIds:
    """Reference ids of a SentencePiece tokenizer.model: BOS 1 when asked, no special-token parsing."""
    parses_special = False

    def __init__(self, path):
        self.sp = SentencePieceProcessor(model_file=str(path))

    def ids(self, text, bos=False):
        return ([self.sp.bos_id()] if bos else []) + self.sp.encode(text)


class HfIds:
    """Reference ids of a transformers tokenizer; special: the text of special tokens becomes them."""
    parses_special = True

    def __init__(self, folder):
        self.tok = AutoTokenizer.from_pretrained(folder)

    def ids(self, text, bos=False, special=False):
        return self.tok(text, add_special_tokens=bos, split_special_tokens=not special)["input_ids"]


def make(family, folder, shared, seed=0, **overrides):
    """Saves a random model of the family (config overrides allowed) with its tokenizer into
    folder; returns (model in float32 eval mode, SpmIds or HfIds: the reference tokenizer)."""
    cls_name, params, tok_kind = FAMILIES[family]
    cls = getattr(transformers, cls_name)
    config = cls.config_class(**dict(params, **overrides))
    torch.manual_seed(seed)
    model = cls(config).to(torch.float32).eval()
    rescale_weights(model, seed + 100)
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder, safe_serialization=True)
    if tok_kind == "spm":
        save_spm_tokenizer(folder, shared, PHI3_ADDED if family == "phi3" else ())
        return model, SpmIds(folder / "tokenizer.model")
    qwen2_tokenizer().save_pretrained(folder)
    return model, HfIds(folder)


def reference_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].to(torch.float64).numpy()
