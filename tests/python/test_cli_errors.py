"""Bad input to the CLI: exit code 1 (runtime failure) or 2 (usage error), one
error line on stderr that names the problem, never a signal, never a hang (every
call runs under a timeout in conftest.Wgllm.run)."""

import os
import re
import struct

import pytest

import gguf

from conftest import write_random_llama

ERROR_LINE = re.compile(r"^wgllm( [a-z0-9-]+)?: error: \S")


def expect_error(p, code, *words):
    """Exit `code` (or one of a tuple of codes), exactly one error line, mentioning every
    word (case-insensitive)."""
    err = p.stderr.decode("utf-8", errors="replace")
    codes = code if isinstance(code, tuple) else (code,)
    assert p.returncode >= 0, f"killed by signal {-p.returncode}: {err}"
    assert p.returncode in codes, f"exit {p.returncode}, expected {code}: {err}"
    assert "Sanitizer" not in err and "runtime error" not in err, err
    lines = [line for line in err.splitlines() if ERROR_LINE.match(line)]
    assert len(lines) == 1, f"expected one error line, got: {err!r}"
    for word in words:
        assert word.lower() in lines[0].lower(), f"{word!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture(scope="module")
def small_model(golden_cases):
    return golden_cases["aidreams260K_greedy_once"].gguf


# ---- files that cannot be read or are not GGUF ----

def test_missing_file(wgllm, scratch):
    path = scratch / "does-not-exist.gguf"
    for cmd in (["run", "-m", path, "-n", "1"], ["info", path], ["tokenize", "-m", path, "hi"]):
        expect_error(wgllm.run(*cmd), 1, path.name)


def test_path_through_a_file(wgllm, scratch):
    parent = scratch / "plain-file"
    parent.write_bytes(b"x")
    expect_error(wgllm.run("run", "-m", parent / "model.gguf", "-n", "1"), 1, "model.gguf")


def test_dangling_symlink(wgllm, scratch):
    link = scratch / "dangling.gguf"
    os.symlink(scratch / "nowhere", link)
    expect_error(wgllm.run("run", "-m", link, "-n", "1"), 1, "dangling.gguf")


def test_directory(wgllm, scratch):
    expect_error(wgllm.run("run", "-m", scratch, "-n", "1"), 1)
    expect_error(wgllm.run("info", scratch), 1)


@pytest.mark.parametrize("kind", ["empty", "text", "llama2c-checkpoint", "llama2c-tokenizer"])
def test_not_gguf(kind, wgllm, shared, scratch):
    if kind == "llama2c-checkpoint":
        path = shared / "models" / "aidreams260K.bin"
    elif kind == "llama2c-tokenizer":
        path = shared / "models" / "tok512.bin"
    else:
        path = scratch / f"{kind}.gguf"
        path.write_bytes(b"" if kind == "empty" else b"hello, this is not a model\n" * 40)
    expect_error(wgllm.run("run", "-m", path, "-n", "1"), 1)
    expect_error(wgllm.run("info", path), 1)
    expect_error(wgllm.run("tokenize", "-m", path, "hi"), 1)


# ---- truncated and corrupted GGUF files ----

def truncation_points(path):
    reader = gguf.GGUFReader(str(path))
    size = os.path.getsize(path)
    data = int(reader.data_offset)
    first_kv = int(reader.fields["general.architecture"].offset)
    first_tensor = int(reader.tensors[0].field.offset)
    return {
        "magic": 2,
        "header": 12,
        "first-kv": first_kv + 3,
        "kv-array": int(reader.fields["tokenizer.ggml.tokens"].offset) + 40,
        "tensor-info": first_tensor + 5,
        "before-data": data - 1,
        "data-start": data,
        "mid-data": (data + size) // 2,
        "last-byte": size - 1,
    }, data


TRUNCATIONS = ["magic", "header", "first-kv", "kv-array", "tensor-info", "before-data",
               "data-start", "mid-data", "last-byte"]


@pytest.mark.parametrize("where", TRUNCATIONS)
def test_truncated_gguf(where, wgllm, small_model, scratch):
    points, data_offset = truncation_points(small_model)
    cut = points[where]
    path = scratch / f"truncated-{where}.gguf"
    path.write_bytes(small_model.read_bytes()[:cut])
    expect_error(wgllm.run("run", "-m", path, "-n", "1", "--temp", "0"), 1)
    expect_error(wgllm.run("logits", "-m", path, "--ids", "1 2", "-o", scratch / "t.f32"), 1)
    if cut < data_offset:  # the metadata itself is cut: nothing can read it
        expect_error(wgllm.run("info", path), 1)
        expect_error(wgllm.run("tokenize", "-m", path, "hi"), 1)


def write_model_with_type(path, qtype):
    """Random model whose blk.0.ffn_gate.weight has `qtype` (dim 256: K-quant row length)."""
    types = {"blk.0.ffn_gate.weight": qtype}
    return write_random_llama(path, dim=256, n_layer=1, n_head=4, n_head_kv=2, ffn=256,
                              n_vocab=300, n_ctx=32, tied=True, types=types)


@pytest.mark.parametrize("qtype", [gguf.GGMLQuantizationType.IQ4_NL, gguf.GGMLQuantizationType.IQ4_XS])
def test_unsupported_tensor_type(qtype, wgllm, scratch):
    path = write_model_with_type(scratch / f"type-{qtype.name}.gguf", qtype)
    line = expect_error(wgllm.run("run", "-m", path, "-n", "1", "--temp", "0"), 1)
    assert qtype.name.lower() in line.lower() or "ffn_gate" in line, line


def patch_tensor_type(src, dst, name, new_type):
    """Copies src to dst with the type id of tensor `name` replaced in its tensor info
    (name: u64 length + bytes, n_dims u32, n_dims u64 dims, type u32, offset u64)."""
    raw = bytearray(src.read_bytes())
    key = struct.pack("<Q", len(name)) + name.encode()
    at = raw.index(key) + len(key)
    (n_dims,) = struct.unpack_from("<I", raw, at)
    struct.pack_into("<I", raw, at + 4 + 8 * n_dims, new_type)
    dst.write_bytes(bytes(raw))


@pytest.mark.parametrize("new_type", [20, 31, 99, 0xFFFFFFFF])
def test_patched_tensor_type(new_type, wgllm, scratch):
    """A known-but-unsupported id (20 = IQ4_NL), removed ids (31 = old Q4_0_4_4), and ids
    no one defines, written over an F32 tensor of a valid file."""
    base = scratch / "patch-base.gguf"
    if not base.exists():
        write_model_with_type(base, gguf.GGMLQuantizationType.F32)
    path = scratch / f"patched-{new_type}.gguf"
    patch_tensor_type(base, path, "blk.0.attn_q.weight", new_type)
    expect_error(wgllm.run("run", "-m", path, "-n", "1", "--temp", "0"), 1)


# ---- context limits ----

def test_prompt_longer_than_context(wgllm, small_model):
    prompt = "Once upon a time " * 20  # far more than 16 tokens
    expect_error(wgllm.run("run", "-m", small_model, "-c", "16", "-p", prompt, "-n", "1"), 1,
                 "context")


def test_context_larger_than_training_context(wgllm, small_model):
    """-c above the model's llama.context_length (128 for aidreams260K) is refused: RoPE
    positions past the training context were never trained."""
    expect_error(wgllm.run("run", "-m", small_model, "-c", "4096", "-n", "3", "--temp", "0"), 1,
                 "context")


def test_logits_more_ids_than_context(wgllm, small_model, scratch):
    ids = " ".join(["1"] + ["300"] * 20)
    expect_error(wgllm.run("logits", "-m", small_model, "-c", "16", "--ids", ids,
                           "-o", scratch / "ctx.f32"), 1, "context")


def test_token_id_out_of_range(wgllm, small_model, scratch):
    expect_error(wgllm.run("logits", "-m", small_model, "--ids", "1 512", "-o",
                           scratch / "range.f32"), 1)
    # a negative id may be refused while parsing the list (usage) or when evaluating
    expect_error(wgllm.run("logits", "-m", small_model, "--ids", "1 -1", "-o",
                           scratch / "range.f32"), (1, 2))


# ---- usage errors: exit 2 ----

USAGE_ERRORS = {
    "unknown-command": ["frobnicate"],
    "unknown-flag": ["run", "-m", "{model}", "--bogus"],
    "run-without-model": ["run", "-p", "hi"],
    "flag-without-value": ["run", "-m", "{model}", "-n"],
    "n-not-a-number": ["run", "-m", "{model}", "-n", "abc"],
    "n-trailing-junk": ["run", "-m", "{model}", "-n", "12x"],
    "temp-nan": ["run", "-m", "{model}", "--temp", "nan"],
    "top-p-negative": ["run", "-m", "{model}", "--top-p", "-0.5"],
    "top-k-not-a-number": ["run", "-m", "{model}", "--top-k", "many"],
    "threads-not-a-number": ["run", "-m", "{model}", "-t", "x"],
    "logits-without-ids": ["logits", "-m", "{model}", "-o", "{out}"],
    "logits-bad-ids": ["logits", "-m", "{model}", "--ids", "1 two 3", "-o", "{out}"],
    "logits-bad-batch": ["logits", "-m", "{model}", "--ids", "1", "-o", "{out}", "--batch", "0"],
    "tokenize-without-model": ["tokenize", "hello"],
    "convert-unknown-kind": ["convert", "onnx", "a", "b"],
    "convert-bad-type": ["convert", "llama2c", "{ckpt}", "{tok}", "{out}", "--type", "q3_k"],
    "synth-bad-type": ["synth", "--type", "q9_9", "--seed", "1", "{out}"],
}


def test_no_command_prints_usage(wgllm):
    p = wgllm.run()
    assert p.returncode == 2
    assert b"usage" in p.stderr.lower()


@pytest.mark.parametrize("name", list(USAGE_ERRORS))
def test_usage_error(name, wgllm, small_model, shared, scratch):
    values = {"model": small_model, "out": scratch / "usage-out.bin",
              "ckpt": shared / "models" / "aidreams260K.bin",
              "tok": shared / "models" / "aidreams_tok512.bin"}
    args = [str(a).format(**values) for a in USAGE_ERRORS[name]]
    expect_error(wgllm.run(*args), 2)
    assert not (scratch / "usage-out.bin").exists()
