"""Shared fixtures of the end-to-end tests.

Environment:
  WGLLM_BIN     the wgllm binary (default: build/wgllm under the repository root)
  WGLLM_SHARED  the reference data folder (default: ../shared beside the repository)
  WGLLM_TMP     scratch folder (created; each test process works in its own subfolder)
"""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

import gguf

import llama_ref

REPO = Path(__file__).resolve().parents[2]

# The six cases of golden/manifest.json, named here so that tests can be
# parametrized before the data is opened (a missing data folder then fails
# each test with a clear message instead of collecting nothing).
GOLDEN_CASES = [
    "stories260K_greedy_empty",
    "stories260K_greedy_once",
    "stories260K_greedy_lily",
    "aidreams260K_greedy_empty",
    "aidreams260K_greedy_once",
    "aidreams260K_greedy_lily",
]

# llama2.c checkpoint + tokenizer pairs of the data folder.
CHECKPOINTS = {
    "stories260K": ("models/stories260K.bin", "models/tok512.bin"),
    "aidreams260K": ("models/aidreams260K.bin", "models/aidreams_tok512.bin"),
}

DEFAULT_TIMEOUT = 60
THREADS = "2"  # the CI machine has two cores


def pytest_generate_tests(metafunc):
    if "golden_name" in metafunc.fixturenames:
        metafunc.parametrize("golden_name", GOLDEN_CASES)


@pytest.fixture(scope="session")
def shared():
    path = Path(os.environ.get("WGLLM_SHARED", REPO.parent / "shared")).resolve()
    if not (path / "golden" / "manifest.json").is_file():
        pytest.fail(f"reference data not found: {path}/golden/manifest.json is missing "
                    "(set WGLLM_SHARED to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def manifest(shared):
    with open(shared / "golden" / "manifest.json", encoding="utf-8") as f:
        return {case["name"]: case for case in json.load(f)["cases"]}


class GoldenCase:
    """One llama2.c greedy run: model files, prompt, ids, logits, printed text."""

    def __init__(self, shared, entry):
        self.name = entry["name"]
        self.prompt = entry["prompt"]  # None for the empty prompt
        self.gguf = shared / entry["gguf"]
        self.checkpoint = shared / entry["checkpoint"]
        self.tokenizer = shared / entry["tokenizer"]
        self.model_name = Path(entry["checkpoint"]).stem
        self.ids = [int(t) for t in (shared / entry["ids"]).read_text().split()]
        self.text = (shared / entry["text"]).read_bytes()
        shape = tuple(entry["logits_shape"])
        self.logits = np.fromfile(shared / entry["logits"], dtype="<f4").reshape(shape)
        # ids fed to the forward pass: row i of the logits belongs to ids[i]
        self.n_forward = shape[0]


@pytest.fixture(scope="session")
def golden_cases(shared, manifest):
    return {name: GoldenCase(shared, manifest[name]) for name in GOLDEN_CASES}


@pytest.fixture
def golden(golden_cases, golden_name):
    return golden_cases[golden_name]


@pytest.fixture(scope="session")
def scratch():
    base = Path(os.environ.get("WGLLM_TMP", tempfile.gettempdir()))
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="wgllm-py-", dir=base))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# The WebGPU backend keeps the KV cache in f16 where the device has shader-f16 (lavapipe
# has it). Tests that hold WebGPU logits to the f32 bounds of the CPU backend run the f32
# cache; the f16 cache has its own tests with their own bound (test_webgpu.py).
os.environ.setdefault("WGLLM_WEBGPU_KV_F16", "0")

# The CPU backend rounds x to int8 for quantized matrix-vector products by default.
# Tests that hold CPU logits to float32 references run its exact f32 path; the int8
# path has its own bounds (test_cpu_int8.py, tests/unit/test_cpu_q8_dot.c).
os.environ.setdefault("WGLLM_CPU_EXACT", "1")


class Wgllm:
    """Runs the binary with a timeout; every call returns a CompletedProcess with bytes."""

    def __init__(self, binary, scratch):
        self.binary = binary
        self.scratch = scratch
        self._count = 0

    def run(self, *args, timeout=DEFAULT_TIMEOUT, input=None):
        cmd = [str(self.binary)] + [str(a) for a in args]
        try:
            # no input: an empty stdin, never the runner's (`run` reads a prompt from a pipe)
            stdin = subprocess.DEVNULL if input is None else None
            return subprocess.run(cmd, input=input, stdin=stdin, capture_output=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"timed out after {timeout}s: {' '.join(cmd)}")

    def ok(self, *args, **kwargs):
        """Runs and asserts exit code 0."""
        p = self.run(*args, **kwargs)
        assert p.returncode == 0, (f"{' '.join(map(str, args))}: exit {p.returncode}\n"
                                   f"{p.stderr.decode(errors='replace')}")
        return p

    def temp_path(self, suffix):
        self._count += 1
        return self.scratch / f"out{self._count}{suffix}"

    def logits(self, model, ids, batch=1, ctx=None, backend="cpu"):
        """float32 [len(ids), n_vocab] from `wgllm logits`."""
        out = self.temp_path(".f32")
        args = ["logits", "-m", model, "--ids", " ".join(map(str, ids)), "-o", out,
                "--batch", batch, "-t", THREADS, "--backend", backend]
        if ctx is not None:
            args += ["-c", ctx]
        self.ok(*args)
        data = np.fromfile(out, dtype="<f4")
        out.unlink()
        assert data.size % len(ids) == 0, f"logits file of {data.size} floats for {len(ids)} ids"
        return data.reshape(len(ids), -1)

    def tokenize(self, model, text=None, file=None, bos=True):
        args = ["tokenize", "-m", model]
        if not bos:
            args.append("--no-bos")
        if file is not None:
            args += ["--file", file]
        if text is not None:
            args.append(text)
        out = self.ok(*args).stdout.decode()
        assert out.endswith("\n") and out.count("\n") == 1, f"tokenize printed {out!r}"
        return [int(t) for t in out.split()]

    def run_json(self, *args):
        """Generated tokens of `wgllm run --json` as a list of dicts."""
        out = self.ok("run", "--json", "-t", THREADS, *args).stdout.decode("utf-8")
        return [json.loads(line) for line in out.splitlines()]


@pytest.fixture(scope="session")
def wgllm(scratch):
    binary = Path(os.environ.get("WGLLM_BIN", REPO / "build" / "wgllm"))
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"wgllm binary not found: {binary} (set WGLLM_BIN)")
    return Wgllm(binary, scratch)


@pytest.fixture(scope="session")
def converted(wgllm, shared, scratch):
    """converted(model_name, qtype) -> GGUF path made once by `wgllm convert llama2c`."""
    cache = {}

    def make(model_name, qtype="f32"):
        key = (model_name, qtype)
        if key not in cache:
            ckpt, tok = CHECKPOINTS[model_name]
            out = scratch / f"{model_name}-{qtype}.gguf"
            wgllm.ok("convert", "llama2c", shared / ckpt, shared / tok, out, "--type", qtype,
                     timeout=120)
            cache[key] = out
        return cache[key]

    return make


@pytest.fixture(scope="session")
def synth(wgllm, scratch):
    """synth(name, args) -> GGUF path made once by `wgllm synth <args> OUT`."""
    cache = {}

    def make(name, args):
        if name not in cache:
            out = scratch / f"synth-{name}.gguf"
            wgllm.ok("synth", *args, out, timeout=120)
            cache[name] = out
        return cache[name]

    return make


@pytest.fixture(scope="session")
def reference():
    """reference(path) -> llama_ref.Model, loaded once per file."""
    cache = {}

    def load(path):
        if path not in cache:
            cache[path] = llama_ref.Model(str(path))
        return cache[path]

    return load


@pytest.fixture(scope="session")
def ref_logits(reference):
    """ref_logits(path, ids) -> float64 reference logits, computed once per (file, ids)."""
    cache = {}

    def compute(path, ids):
        key = (str(path), tuple(int(t) for t in ids))
        if key not in cache:
            cache[key] = llama_ref.logits(reference(path), key[1])
        return cache[key]

    return compute


def prompt_length(golden):
    """BOS plus the prompt tokens: the shortest prefix of the golden ids whose pieces spell
    " " + prompt (llama2.c adds SentencePiece's dummy-prefix space to a non-empty prompt)."""
    if golden.prompt is None:
        return 1
    pieces = llama_ref.vocab_pieces(str(golden.gguf))
    want = b" " + golden.prompt.encode("utf-8")
    text = b""
    for n, token in enumerate(golden.ids[1:], start=2):
        text += pieces[token]
        if text == want:
            return n
        assert want.startswith(text), f"golden ids do not spell the prompt: {text!r}"
    raise AssertionError("golden ids never complete the prompt")


def relative_error(ours, ref):
    """max over rows of max|ours - ref| / max|ref| (each row scaled by its own largest logit)."""
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, f"shape {ours.shape} != {ref.shape}"
    assert np.all(np.isfinite(ours)), "non-finite logits"
    return float(np.max(np.max(np.abs(ours - ref), axis=1) / np.max(np.abs(ref), axis=1)))


def write_random_llama(path, *, dim, n_layer, n_head, n_head_kv, ffn, n_vocab, n_ctx,
                       tied, types=None, seed=0, rope_dims=None, control_tokens=(), chat_template=None):
    """Writes a small random Llama GGUF with gguf-py (independent of the engine's writer).

    types maps a tensor name (or "*" for every 2-D weight) to a gguf.GGMLQuantizationType;
    a type gguf-py cannot quantize gets random raw bytes of the right size. Norms stay F32.
    The vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then pieces "▁t<i>", the last of them
    replaced by control_tokens (e.g. "<|im_start|>"); chat_template sets tokenizer.chat_template."""
    types = dict(types or {})
    rng = np.random.default_rng(seed)
    head_dim = dim // n_head
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("random")
    w.add_context_length(n_ctx)
    w.add_embedding_length(dim)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(ffn)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(rope_dims or head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(0)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"\u2581t{i}" for i in range(n_vocab - len(tokens) - len(control_tokens))]
    tokens += list(control_tokens)
    assert len(tokens) == n_vocab
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * 259 + [-float(i) for i in range(n_vocab - 259)])
    w.add_token_types([2, 3, 3] + [6] * 256 + [1] * (n_vocab - 259 - len(control_tokens))
                      + [3] * len(control_tokens))
    if chat_template is not None:
        w.add_chat_template(chat_template)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    def add(name, shape):  # shape in numpy order (out, in)
        qtype = types.get(name, types.get("*", gguf.GGMLQuantizationType.F32))
        if len(shape) == 1:
            w.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32))
            return
        data = (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)
        if qtype == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, data)
            return
        try:
            raw = gguf.quants.quantize(data, qtype)
        except NotImplementedError:
            block, size = gguf.GGML_QUANT_SIZES[qtype]
            raw = rng.integers(0, 256, (shape[0], shape[1] // block * size), dtype=np.uint8)
        w.add_tensor(name, raw, raw_dtype=None if raw.dtype == np.float16 else qtype)

    add("token_embd.weight", (n_vocab, dim))
    for i in range(n_layer):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", (dim,))
        add(p + "attn_q.weight", (n_head * head_dim, dim))
        add(p + "attn_k.weight", (n_head_kv * head_dim, dim))
        add(p + "attn_v.weight", (n_head_kv * head_dim, dim))
        add(p + "attn_output.weight", (dim, n_head * head_dim))
        add(p + "ffn_norm.weight", (dim,))
        add(p + "ffn_gate.weight", (ffn, dim))
        add(p + "ffn_down.weight", (dim, ffn))
        add(p + "ffn_up.weight", (ffn, dim))
    add("output_norm.weight", (dim,))
    if not tied:
        add("output.weight", (n_vocab, dim))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
