"""Chat requests on a model whose template markers are special tokens (ChatML's <|im_start|> and
<|im_end|> as control tokens, eos a different token):

- the rendered conversation is tokenized with its markers as those single tokens, not spelled out
  as text, exactly as `wgllm tokenize --special` does;
- the end-of-turn token ends the reply even though the model's eos is another token (a control
  token prints as nothing, so the template's stop string alone could never match it).
"""

import json

import gguf
import numpy as np
import pytest

from conftest import write_random_llama
from server_util import Server, post

CHATML = ("{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}"
          "{% endfor %}{{'<|im_start|>assistant\\n'}}")
N_VOCAB, DIM, IM_START, IM_END = 300, 64, 298, 299


@pytest.fixture(scope="module")
def chatml_model(scratch):
    path = scratch / "chatml-special.gguf"
    write_random_llama(path, dim=DIM, n_layer=1, n_head=4, n_head_kv=2, ffn=128, n_vocab=N_VOCAB, n_ctx=256,
                       tied=False, control_tokens=["<|im_start|>", "<|im_end|>"], chat_template=CHATML)
    return path


@pytest.fixture(scope="module")
def says_im_end(scratch):
    """The same model, edited so that greedy decoding always picks <|im_end|>: one dimension of
    the residual stream is a large positive constant from the embeddings, the final norm keeps
    only it, and only <|im_end|>'s output row reads it."""
    path = scratch / "chatml-im-end.gguf"
    write_random_llama(path, dim=DIM, n_layer=1, n_head=4, n_head_kv=2, ffn=128, n_vocab=N_VOCAB, n_ctx=256,
                       tied=False, control_tokens=["<|im_start|>", "<|im_end|>"], chat_template=CHATML)
    r = gguf.GGUFReader(str(path), "r+")
    t = {x.name: x.data for x in r.tensors}
    t["token_embd.weight"][:, 0] = 100.0
    t["output_norm.weight"][:] = 0.0
    t["output_norm.weight"][0] = 1.0
    t["output.weight"][:, 0] = 0.0
    t["output.weight"][IM_END, 0] = 10.0
    del r, t  # the memory map writes the edits back
    return path


def test_chat_markers_are_special_tokens(wgllm, chatml_model):
    messages = [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "hi"}]
    rendered = "<|im_start|>system\nBe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    ids = [int(x) for x in wgllm.ok("tokenize", "-m", chatml_model, "--special", rendered).stdout.split()]
    assert ids.count(IM_START) == 3 and ids.count(IM_END) == 2, ids
    s = Server(wgllm, chatml_model, "--backend", "cpu", name="chat-special")
    try:
        status, _, obj = post(s.url, "/v1/chat/completions", {"messages": messages, "max_tokens": 1,
                                                               "temperature": 0})
        assert status == 200, obj
        assert obj["usage"]["prompt_tokens"] == len(ids), (obj["usage"], ids)
        # a plain completion of the same text keeps the markers as text: more tokens
        status, _, obj = post(s.url, "/v1/completions", {"prompt": rendered, "max_tokens": 1, "temperature": 0})
        assert status == 200, obj
        assert obj["usage"]["prompt_tokens"] > len(ids), obj["usage"]
    finally:
        assert s.stop() == 0


def test_end_of_turn_token_ends_the_reply(wgllm, says_im_end):
    out = wgllm.ok("run", "-m", says_im_end, "-p", "hi", "-n", "3", "--temp", "0", "--json", "--backend", "cpu")
    gen = [json.loads(line)["id"] for line in out.stdout.decode().splitlines() if line.startswith("{")]
    assert gen and all(t == IM_END for t in gen), gen  # the edit works: greedy says <|im_end|>
    s = Server(wgllm, says_im_end, "--backend", "cpu", name="chat-im-end")
    try:
        status, _, obj = post(s.url, "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}],
                                                               "max_tokens": 20, "temperature": 0})
        assert status == 200, obj
        assert obj["choices"][0]["finish_reason"] == "stop", obj
        assert obj["choices"][0]["message"]["content"] == "", obj
        assert obj["usage"]["completion_tokens"] == 0, obj["usage"]
        # a plain completion has no end-of-turn token: it runs to max_tokens
        status, _, obj = post(s.url, "/v1/completions", {"prompt": "hi", "max_tokens": 5, "temperature": 0})
        assert status == 200, obj
        assert obj["choices"][0]["finish_reason"] == "length", obj
    finally:
        assert s.stop() == 0
