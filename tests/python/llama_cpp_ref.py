"""llama.cpp as a reference: its own tree (the pinned llama-cpp-python sdist's vendor/llama.cpp,
unpacked by scripts/fetch-llama-cpp.sh), its converter convert_hf_to_gguf.py, and its CPU build
(scripts/build-llama-cpp.sh: libllama plus tests/llama_cpp/llama_cpp_greedy.c). scripts/test.sh
runs both scripts; a missing tree or build fails the test (never skips it).

Environment:
  WGLLM_LLAMA_CPP_SRC    that vendor/llama.cpp folder (default: the one scripts/fetch-llama-cpp.sh unpacks)
  WGLLM_LLAMA_CPP_BUILD  the build folder of scripts/build-llama-cpp.sh (default: .deps/llama-cpp-build-<version>)
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 300  # a loaded two-core machine; the converter alone imports torch and transformers


def _version():
    text = (REPO / "tests" / "requirements-llama-cpp.txt").read_text()
    return re.search(r"^llama-cpp-python==([0-9.]+)", text, re.M).group(1)


def src_dir():
    """The vendor/llama.cpp folder; fails the test (never skips) when it is missing."""
    env = os.environ.get("WGLLM_LLAMA_CPP_SRC")
    path = Path(env) if env else REPO / ".deps" / f"llama-cpp-python-{_version()}" / "vendor" / "llama.cpp"
    if not (path / "convert_hf_to_gguf.py").is_file():
        pytest.fail(f"llama.cpp reference tree not found at {path}: run scripts/fetch-llama-cpp.sh")
    return path


def build_dir():
    env = os.environ.get("WGLLM_LLAMA_CPP_BUILD")
    return Path(env) if env else REPO / ".deps" / f"llama-cpp-build-{_version()}"


def _binary(name):
    path = build_dir() / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"llama.cpp's CPU build not found at {path}: run scripts/build-llama-cpp.sh")
    return path


def greedy_binary():
    """llama_cpp_greedy of llama.cpp's CPU build; fails the test when it was not built."""
    return _binary("llama_cpp_greedy")


def _run(cmd, what, env=None, timeout=TIMEOUT):
    try:
        p = subprocess.run([str(c) for c in cmd], capture_output=True, stdin=subprocess.DEVNULL,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} timed out after {timeout}s")
    return p


# Runs convert_hf_to_gguf.py once per job in one process (torch and transformers load once),
# with the tree's gguf-py first on the path as llama.cpp runs it. argv[1]: the tree; argv[2]:
# JSON [[folder, out, outtype, pre], ...], pre a byte-level BPE pre-tokenizer name to report
# in place of the converter's look-up by hash, or None.
_CONVERT = """
import json, runpy, sys
tree, jobs = sys.argv[1], json.loads(sys.argv[2])
sys.path[:0] = [tree, tree + "/gguf-py"]
from conversion import base
lookup = base.TextModel.get_vocab_base_pre
for folder, out, outtype, pre in jobs:
    base.TextModel.get_vocab_base_pre = (lambda self, tokenizer, pre=pre: pre) if pre else lookup
    sys.argv = [tree + "/convert_hf_to_gguf.py", folder, "--outtype", outtype, "--outfile", out]
    runpy.run_path(tree + "/convert_hf_to_gguf.py", run_name="__main__")
"""


def convert_hf_many(jobs):
    """Converts Hugging Face folders with llama.cpp's convert_hf_to_gguf.py, in one process:
    jobs are (folder, out, outtype, pre), outtype f32, f16, bf16, q8_0, ...; pre None, or the
    name of the byte-level BPE pre-tokenizer ("qwen2") for a tokenizer trained in a test, whose
    ids on the converter's check text have no published hash."""
    src = src_dir()
    env = dict(os.environ)
    env.pop("NO_LOCAL_GGUF", None)  # set, it would make the converter take the venv's gguf
    jobs = [[str(f), str(o), t, pre] for f, o, t, pre in jobs]
    p = _run([sys.executable, "-c", _CONVERT, src, json.dumps(jobs)], "convert_hf_to_gguf.py", env,
             timeout=TIMEOUT + 60 * len(jobs))
    assert p.returncode == 0, (f"convert_hf_to_gguf.py {[j[0] for j in jobs]}: exit {p.returncode}\n"
                               f"{p.stderr.decode(errors='replace')[-4000:]}")
    missing = [o for _, o, _, _ in jobs if not Path(o).is_file()]
    assert not missing, f"convert_hf_to_gguf.py wrote no {missing}"


def convert_hf(folder, out, outtype="f32"):
    """One folder with convert_hf_to_gguf.py (see convert_hf_many); returns out as a Path."""
    convert_hf_many([(folder, out, outtype, None)])
    return Path(out)


def greedy(model, ids, n_predict, logits=False):
    """llama.cpp's greedy continuation of the prompt ids: n_predict ids (end-of-generation
    tokens do not stop it). With logits=True also the float32 [len(ids), n_vocab] logits of
    the prompt rows. Fails the test with llama.cpp's message when it cannot load the file."""
    cmd = [greedy_binary(), model, n_predict, ",".join(str(int(t)) for t in ids)]
    out = None
    if logits:
        out = Path(str(model) + ".llama-cpp-logits.f32")
        cmd.append(out)
    p = _run(cmd, "llama_cpp_greedy")
    assert p.returncode == 0, (f"llama.cpp on {model}: exit {p.returncode}\n"
                               f"{p.stderr.decode(errors='replace')[-4000:]}")
    generated = [int(t) for t in p.stdout.decode().split()]
    assert len(generated) == n_predict, f"llama_cpp_greedy printed {p.stdout!r}"
    if not logits:
        return generated
    data = np.fromfile(out, dtype="<f4")
    out.unlink()
    assert data.size % len(ids) == 0, f"logits file of {data.size} floats for {len(ids)} ids"
    return generated, data.reshape(len(ids), -1)


def tokenize(model, text):
    """llama.cpp's ids of text, with the bos/eos llama.cpp adds by default on this file."""
    p = _run([_binary("llama_cpp_tokenize"), model, text], "llama_cpp_tokenize")
    assert p.returncode == 0, (f"llama.cpp's tokenizer on {model}: exit {p.returncode}\n"
                               f"{p.stderr.decode(errors='replace')[-4000:]}")
    return [int(t) for t in p.stdout.decode().split()]
