"""Chat templates: copies of a model whose tokenizer.chat_template is set (by gguf-py's
gguf_new_metadata; stories260K for its 512-token context) to the common families, served one after the other through hot
reload; the prompt each chat request evaluates must be the family's format."""

import json
import subprocess
import sys

import pytest

from server_util import Server, post, request

MESSAGES = [{"role": "system", "content": "You are kind."}, {"role": "user", "content": "Hello there"},
            {"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "Tell a story"}]

# Representative template texts (what the family's GGUF files carry) and the prompt each
# must produce for MESSAGES, written out by hand from the families' documented formats.
CASES = {
    "chatml": ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
               "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
               "{% endif %}",
               "<|im_start|>system\nYou are kind.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n"
               "<|im_start|>assistant\nHi!<|im_end|>\n<|im_start|>user\nTell a story<|im_end|>\n"
               "<|im_start|>assistant\n"),
    "llama3": ("{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
               " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}",
               "<|start_header_id|>system<|end_header_id|>\n\nYou are kind.<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\nHi!<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nTell a story<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    "llama2": ("{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + messages[0]['content']"
               " + '\\n<</SYS>>\\n\\n' %}{% endif %}{{ bos_token + '[INST] ' + content + ' [/INST]' }}",
               "[INST] <<SYS>>\nYou are kind.\n<</SYS>>\n\nHello there [/INST] Hi! </s><s>[INST] Tell a story [/INST]"),
    "zephyr": ("{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\\n' + message['content']"
               " + eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}",
               "<|system|>\nYou are kind.</s>\n<|user|>\nHello there</s>\n<|assistant|>\nHi!</s>\n"
               "<|user|>\nTell a story</s>\n<|assistant|>\n"),
    "fallback": ("{{ messages }}",  # not a known family
                 "System: You are kind.\nUser: Hello there\nAssistant: Hi!\nUser: Tell a story\nAssistant:"),
}


@pytest.fixture(scope="module")
def variants(shared, scratch):
    src = shared / "models" / "stories260K-f32.gguf"
    out = {}
    for name, (template, _) in CASES.items():
        path = scratch / f"chat-{name}.gguf"
        p = subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_new_metadata", str(src), str(path),
                            "--chat-template", template, "--force"], capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr.decode()
        out[name] = path
    return out


def test_chat_templates(wgllm, shared, variants):
    s = Server(wgllm, shared / "models" / "stories260K-f32.gguf", "--alias", "chat", "--admin-key", "adm",
               "--models-dir", variants["chatml"].parent, name="chat")
    try:
        for name, (_, expected) in CASES.items():
            status, _, obj = post(s.url, "/admin/reload", {"model": str(variants[name])},
                                  {"Authorization": "Bearer adm"})
            assert status == 200, obj
            models = post(s.url, "/v1/models", None)  # wrong method: still answered with an error
            assert models[0] == 405
            status, _, body = request(s.url, "GET", "/v1/models")
            assert json.loads(body)["data"][0]["chat_template"] == name
            # the rendered chat's special tokens (</s><s> of Llama 2, ...) are parsed as such
            want = post(s.url, "/tokenize", {"content": expected, "parse_special": True})[2]["tokens"]
            status, _, chat = post(s.url, "/v1/chat/completions",
                                   {"model": "chat", "messages": MESSAGES, "max_tokens": 2, "temperature": 0})
            assert status == 200, chat
            assert chat["usage"]["prompt_tokens"] == len(want), name
            # the same prompt as a plain completion continues identically
            status, _, comp = post(s.url, "/v1/completions",
                                   {"model": "chat", "prompt": want, "max_tokens": 2, "temperature": 0})
            assert comp["choices"][0]["text"].startswith(chat["choices"][0]["message"]["content"]), name
    finally:
        assert s.stop() == 0
