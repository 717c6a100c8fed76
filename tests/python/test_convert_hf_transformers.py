"""`wgllm convert hf` against Hugging Face `transformers` itself.

Two tiny random models are made with `transformers.LlamaForCausalLM` (torch,
float32, seeded) and written with `save_pretrained(..., safe_serialization=True)`,
so config.json and the safetensors files are exactly what transformers writes:
  llama2: multi-head attention, untied output, no RoPE scaling, theta 10000, the
          real Llama 2 tokenizer.model of the data folder;
  llama3: grouped-query attention 4:1, tied embeddings, llama3 RoPE scaling
          (factor 8, low/high frequency factors 1 and 4, original context 64 so
          that at head size 16 one frequency is kept, one blended, the rest
          slowed), theta 500000, a byte-level BPE tokenizer.json with the Llama 3
          pre-tokenizer saved by transformers' own tokenizer class.
Each folder is converted with `--type f32`; `wgllm logits` (CPU, one token at a
time and the whole prompt as one batch, and the WebGPU backend) must match
`model(input_ids).logits` within a relative error of 1e-4 (max |a - b| / max |b|
per row). Measured: llama2 1.0e-6 to 1.4e-6, llama3 4e-7 to 7e-7 over the four
paths (CPU and WebGPU on lavapipe, batch 1 and whole prompt).

The default initializer of transformers (std 0.02, unit norms) gives
near-uniform attention that would hide RoPE mistakes, so the weights are redrawn
(seeded) at O(1) scale before saving; a check below shows that leaving out the
llama3 frequency adjustment moves transformers' own logits far past the bound.
test_convert_hf.py holds the second, independent check: a numpy re-implementation
of the same forward pass.
"""

import json

import numpy as np
import pytest
import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from conftest import relative_error
from families import rescale_weights  # O(1) activations and sharp attention
from test_tokenizer_bpe import LLAMA3_REGEX

BOUND = 1e-4
PROMPT = "The quick brown fox jumps over the lazy dog; then it naps for 12 minutes."

LLAMA2 = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=4, vocab_size=32000, max_position_embeddings=512, rms_norm_eps=1e-5,
              rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
LLAMA3 = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=8,
              num_key_value_heads=2, max_position_embeddings=1024, rms_norm_eps=1e-5, tie_word_embeddings=True,
              rope_parameters={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 64,
                               "rope_theta": 500000.0})

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A lazy dog naps in the sun for 12 minutes, then the fox runs away.",
    "Then it jumps; the quick one never naps.",
] * 20


def make_model(params, seed):
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**params)).to(torch.float32).eval()
    rescale_weights(model, seed + 100)
    return model


def reference_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].to(torch.float64).numpy()


def llama3_tokenizer():
    """A byte-level BPE with the Llama 3 pre-tokenizer and specials, as transformers' fast tokenizer."""
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=320, show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.add_special_tokens(["<|begin_of_text|>", "<|end_of_text|>"])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>")


@pytest.fixture(scope="module")
def llama2(scratch, shared):
    folder = scratch / "tf" / "llama2"
    model = make_model(LLAMA2, 1)
    model.save_pretrained(folder, safe_serialization=True)
    (folder / "tokenizer.model").write_bytes((shared / "models" / "tokenizer.model").read_bytes())
    return folder, model


@pytest.fixture(scope="module")
def llama3(scratch):
    folder = scratch / "tf" / "llama3"
    tokenizer = llama3_tokenizer()
    bos, eos = tokenizer.convert_tokens_to_ids(["<|begin_of_text|>", "<|end_of_text|>"])
    model = make_model(dict(LLAMA3, vocab_size=len(tokenizer), bos_token_id=bos, eos_token_id=eos), 2)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder, model, tokenizer


def convert_f32(wgllm, folder):
    out = folder.parent / (folder.name + ".gguf")
    wgllm.ok("convert", "hf", folder, out, "--type", "f32", timeout=120)
    return out


def check_logits(wgllm, gguf_path, model, ids, name):
    ref = reference_logits(model, ids)
    errors = {}
    for backend, batch in (("cpu", 1), ("cpu", len(ids)), ("webgpu", 1), ("webgpu", len(ids))):
        errors[f"{backend} batch {batch}"] = relative_error(wgllm.logits(gguf_path, ids, batch=batch,
                                                                         backend=backend), ref)
    print(f"{name}: relative error against transformers " +
          ", ".join(f"{k} {v:.2g}" for k, v in errors.items()))
    for path, err in errors.items():
        assert err <= BOUND, f"{name} ({path}): relative error {err:.3g} over {BOUND}"


def test_llama2_style_matches_transformers(wgllm, llama2):
    folder, model = llama2
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"] and not cfg["tie_word_embeddings"]
    out = convert_f32(wgllm, folder)
    ids = wgllm.tokenize(out, PROMPT)
    assert ids[0] == 1 and 16 <= len(ids) <= 32, ids
    check_logits(wgllm, out, model, ids, "llama2")


def test_llama3_style_matches_transformers(wgllm, llama3):
    folder, model, tokenizer = llama3
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["tie_word_embeddings"] and cfg["num_key_value_heads"] * 4 == cfg["num_attention_heads"]
    out = convert_f32(wgllm, folder)
    ids = tokenizer(PROMPT)["input_ids"]
    assert 16 <= len(ids) <= 32, ids
    assert wgllm.tokenize(out, PROMPT) == ids, "the converted vocabulary tokenizes as transformers does"
    check_logits(wgllm, out, model, ids, "llama3")


def test_llama3_scaling_is_exercised(llama3):
    """transformers' logits without the llama3 frequency adjustment are far from its
    logits with it, so the match above depends on the converted rope factors."""
    _, model, tokenizer = llama3
    ids = tokenizer(PROMPT)["input_ids"]
    plain_params = dict(LLAMA3, vocab_size=len(tokenizer),
                        rope_parameters={"rope_type": "default", "rope_theta": 500000.0})
    plain = LlamaForCausalLM(LlamaConfig(**plain_params)).to(torch.float32).eval()
    plain.load_state_dict(model.state_dict())
    assert not np.allclose(plain.model.rotary_emb.inv_freq.numpy(), model.model.rotary_emb.inv_freq.numpy())
    err = relative_error(reference_logits(plain, ids), reference_logits(model, ids))
    print(f"llama3: logits without the frequency adjustment differ by {err:.2g}")
    assert err > 100 * BOUND
