"""What a newcomer meets first: the demo model with default options, prompts on standard
input, `wgllm chat`, usage errors that name the valid choices, a README whose synopses say
what `--help` says, and the setup scripts naming the WebGPU library's own version."""

import json
import os
import re
import subprocess

import pytest

from conftest import REPO, THREADS, write_random_llama

# Every command of `wgllm --help`, with arguments that make it fail on an unknown option.
UNKNOWN_OPTION = {
    "run": ["-m", "M", "--bogus"],
    "chat": ["-m", "M", "--bogus"],
    "bench": ["-m", "M", "--bogus"],
    "serve": ["-m", "M", "--bogus"],
    "tokenize": ["-m", "M", "--bogus"],
    "convert": ["llama2c", "a", "b", "c", "--bogus"],
    "quantize": ["a", "b", "q4_0", "--bogus"],
    "synth": ["--bogus"],
    "perplexity": ["-m", "M", "--bogus"],
    "imatrix": ["-m", "M", "--bogus"],
    "logits": ["-m", "M", "--bogus"],
    "info": ["--bogus"],
    "devices": ["--bogus"],
    "cache-model": ["--bogus"],
}

# Enum-like values: the error line must list every valid choice.
BAD_CHOICES = [
    (["run", "-m", "M", "--backend", "gpu"], ["cpu", "webgpu", "auto"]),
    (["chat", "-m", "M", "--backend", "gpu"], ["cpu", "webgpu", "auto"]),
    (["chat", "-m", "M", "--template", "jinja"], ["chatml", "llama2", "llama3", "zephyr", "fallback"]),
    (["bench", "-m", "M", "--backend", "gpu"], ["cpu", "webgpu", "auto"]),
    (["serve", "-m", "M", "--backend", "gpu"], ["cpu", "webgpu", "auto"]),
    (["perplexity", "-m", "M", "-f", "T", "--backend", "gpu"], ["cpu", "webgpu", "auto"]),
    (["logits", "-m", "M", "--ids", "1", "-o", "O", "--backend", "gpu"], ["cpu", "webgpu", "auto"]),
    (["convert", "onnx", "a", "b"], ["llama2c", "hf", "spm", "hf-tokenizer"]),
    (["convert", "llama2c", "a", "b", "c", "--type", "q3_k"], ["f32", "f16", "q8_0", "q4_0"]),
    (["convert", "hf", "a", "b", "--type", "q3_k"], ["f32", "f16", "bf16", "q8_0", "q4_0"]),
    (["quantize", "a", "b", "q9_9"], ["q4_0", "q8_0", "q4_k_m", "q6_k", "f16"]),
    (["synth", "--preset", "huge", "--type", "f32", "--seed", "1", "O"], ["tiny", "small", "llama3-8b"]),
    (["synth", "--type", "q9", "--seed", "1", "O"], ["f32", "f16", "q8_0", "q4_0"]),
    (["frobnicate"], ["run", "chat", "bench", "serve", "cache-model"]),
]

# Values out of range: the error line names the range.
BAD_NUMBERS = [
    (["run", "-m", "M", "-n", "abc"], "0..1073741824"),
    (["run", "-m", "M", "--top-p", "2"], "(0, 1]"),
    (["chat", "-m", "M", "-t", "0"], "1..1024"),
    (["bench", "-m", "M", "--reps", "0"], "1..1000"),
    (["serve", "-m", "M", "--port", "70000"], "0..65535"),
    (["perplexity", "-m", "M", "-f", "T", "--ctx", "1"], "2..16777216"),
    (["imatrix", "-m", "M", "-f", "T", "-o", "O", "--chunks", "0"], "1.."),
    (["quantize", "a", "b", "q4_0", "--threads", "0"], "1..1024"),
    (["synth", "--dim", "x"], "1.."),
]


def usage_lines(p, command):
    """A usage error: exit 2, exactly two lines on stderr (the error, then the hint)."""
    err = p.stderr.decode()
    assert p.returncode == 2, f"exit {p.returncode}: {err}"
    lines = err.splitlines()
    prefix = f"wgllm {command}: error: " if command else "wgllm: error: "
    hint = f"run 'wgllm {command} --help' for usage" if command else "run 'wgllm --help' for the commands"
    assert len(lines) == 2 and lines[0].startswith(prefix) and lines[1] == hint, err
    assert "usage:" not in err, "the whole usage is not repeated"
    return lines[0]


@pytest.fixture(scope="module")
def demo(converted):
    """The model scripts/setup.sh makes (llama2c conversion of aidreams260K, context 128)."""
    return converted("aidreams260K")


# ---- bench on the demo model ----

def bench_json(p):
    rows = [json.loads(line) for line in p.stdout.decode().splitlines()]
    assert len(rows) == 1, p.stdout
    return rows[0]


def test_bench_defaults_fit_the_demo_model(wgllm, demo):
    p = wgllm.ok("bench", "-m", demo, "--backend", "cpu", "-t", THREADS, "--reps", 1, "--json", timeout=120)
    row = bench_json(p)
    assert row["n_prompt"] + row["n_gen"] <= 128 and row["n_prompt"] >= 1 and row["n_gen"] >= 1, row
    err = p.stderr.decode()
    assert f"-p {row['n_prompt']} -n {row['n_gen']}" in err and "-p 512 -n 128" in err and "128" in err, err


def test_bench_default_n_shrinks_beside_a_given_p(wgllm, demo):
    p = wgllm.ok("bench", "-m", demo, "--backend", "cpu", "-t", THREADS, "--reps", 1, "-p", 100, "--json")
    row = bench_json(p)
    assert (row["n_prompt"], row["n_gen"]) == (100, 28), row
    assert "default -n 128" in p.stderr.decode()


@pytest.mark.parametrize("args,words", [
    (["-p", "100", "-n", "100"], ["-p 100", "-n 100", "context of 128"]),
    (["-p", "200"], ["-p 200", "context of 128"]),
    (["-n", "128"], ["-n 128", "context of 128"]),
])
def test_bench_given_values_that_do_not_fit(wgllm, demo, args, words):
    p = wgllm.run("bench", "-m", demo, "--backend", "cpu", "-t", THREADS, "--reps", 1, *args)
    assert p.returncode == 1, p.stderr
    lines = [line for line in p.stderr.decode().splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith("wgllm bench: error: "), p.stderr
    assert all(w in lines[0] for w in words) and "give" in lines[0], lines[0]


# ---- prompts on standard input ----

RUN = ["--backend", "cpu", "-t", THREADS, "--temp", "0", "-n", "12"]


def test_run_reads_the_prompt_from_a_pipe(wgllm, demo):
    want = wgllm.ok("run", "-m", demo, *RUN, "-p", "Once upon a time")
    piped = wgllm.ok("run", "-m", demo, *RUN, input=b"Once upon a time\n")
    dash = wgllm.ok("run", "-m", demo, *RUN, "-f", "-", input=b"Once upon a time")
    bos_only = wgllm.ok("run", "-m", demo, *RUN)  # empty standard input: BOS alone, as before
    assert piped.stdout == want.stdout and dash.stdout == want.stdout
    assert bos_only.stdout != want.stdout
    n_prompt = [int(re.search(rb"prompt: (\d+) tokens", p.stderr).group(1)) for p in (want, piped, dash, bos_only)]
    assert n_prompt[0] > 1 and n_prompt[:3] == [n_prompt[0]] * 3 and n_prompt[3] == 1, n_prompt


def test_run_prompt_option_wins_over_stdin(wgllm, demo):
    want = wgllm.ok("run", "-m", demo, *RUN, "-p", "The cat")
    got = wgllm.ok("run", "-m", demo, *RUN, "-p", "The cat", input=b"Something else entirely")
    assert got.stdout == want.stdout


def test_tokenize_reads_standard_input(wgllm, demo):
    text = "Hello world, once more\n"
    want = wgllm.ok("tokenize", "-m", demo, text).stdout
    assert wgllm.ok("tokenize", "-m", demo, input=text.encode()).stdout == want
    assert wgllm.ok("tokenize", "-m", demo, "--file", "-", input=text.encode()).stdout == want
    assert len(want.split()) > 3


# ---- wgllm chat ----

CHAT = ["--backend", "cpu", "-t", THREADS, "--temp", "0", "--verbose"]
TURN = re.compile(r"^chat: turn (\d+): evaluated (\d+) prompt tokens, reused (\d+) from the cache$")
GENERATED = re.compile(r"^chat: turn (\d+): generated (\d+) tokens")


def chat(wgllm, model, lines, *args):
    p = wgllm.run("chat", "-m", model, *CHAT, *args, input="".join(l + "\n" for l in lines).encode())
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert "Sanitizer" not in err and "runtime error" not in err, err
    turns = [tuple(map(int, m.groups())) for m in map(TURN.match, err.splitlines()) if m]
    generated = [tuple(map(int, m.groups())) for m in map(GENERATED.match, err.splitlines()) if m]
    return p.stdout.decode(), err, turns, generated


def test_chat_keeps_the_conversation_in_the_cache(wgllm, demo):
    out, err, turns, generated = chat(wgllm, demo, ["Tell me a story", "Another one please"], "-n", 8)
    assert "template fallback" in err
    assert [t[0] for t in turns] == [1, 2] and [g[0] for g in generated] == [1, 2], err
    (_, eval1, reused1), (_, eval2, reused2) = turns
    assert reused1 == 0 and eval1 > 5
    # the first turn (its prompt and the reply) is not evaluated again
    assert reused2 >= eval1 + generated[0][1] - 1, err
    assert 0 < eval2 < eval1 + generated[0][1], err
    assert out.count("\n") >= 2 and out.strip(), out
    # the first reply is what greedy `run` continues the same rendered prompt with
    first = wgllm.ok("run", "-m", demo, "--backend", "cpu", "-t", THREADS, "--temp", "0", "-n", 8,
                     "-p", "User: Tell me a story\nAssistant:").stdout.decode()
    assert out.startswith(first.strip()), (out, first)


def test_chat_exit_command_and_system_prompt(wgllm, demo):
    out, err, turns, _ = chat(wgllm, demo, ["hi", "/reset", "hello", "/exit", "never read"], "-n", 4,
                              "--system", "You tell short stories")
    assert [t[0] for t in turns] == [1, 2], err  # the line after /exit is not a turn
    assert "conversation reset" in err
    # after /reset the system prompt is still cached and reused
    assert turns[1][2] > 0, err


def test_chat_context_full_drops_the_oldest_exchange(wgllm, demo):
    lines = ["Tell me a story about a cat", "Another one please", "And a third one about a dog",
             "One more"]
    out, err, turns, generated = chat(wgllm, demo, lines, "-n", 20, "-c", 64)
    assert [t[0] for t in turns] == [1, 2, 3, 4] and len(generated) == 4, err
    assert "dropping the oldest exchange" in err
    assert all(e + r <= 64 for _, e, r in turns), turns


def test_chat_message_longer_than_the_context_is_skipped(wgllm, demo):
    out, err, turns, _ = chat(wgllm, demo, ["word " * 100, "hi"], "-n", 4, "-c", 32)
    assert "message skipped" in err
    assert [t[0] for t in turns] == [2], err


CHATML = ("{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}"
          "{% endfor %}{{'<|im_start|>assistant\\n'}}")


def test_chat_renders_the_models_template_with_special_tokens(wgllm, scratch):
    """A model whose tokenizer.chat_template is ChatML: the turn is rendered in it, and its
    markers are evaluated as the model's special tokens, not spelled out as text."""
    model = scratch / "chatml.gguf"
    write_random_llama(model, dim=64, n_layer=1, n_head=4, n_head_kv=2, ffn=128, n_vocab=300, n_ctx=256,
                       tied=True, control_tokens=["<|im_start|>", "<|im_end|>"], chat_template=CHATML)
    out, err, turns, generated = chat(wgllm, model, ["hi", "and you?"], "-n", 3, "--system", "Be brief")
    assert "template chatml" in err and len(generated) == 2, err
    rendered = "<|im_start|>system\nBe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    plain = wgllm.tokenize(model, rendered)  # the markers spelled out as text
    ids = [int(t) for t in wgllm.ok("tokenize", "-m", model, "--special", rendered).stdout.split()]
    assert ids.count(298) == 3 and ids.count(299) == 2, ids  # the markers as single tokens
    assert len(ids) < len(plain)
    assert turns[0] == (1, len(ids), 0), (turns, ids)
    assert turns[1][2] >= len(ids), turns


def test_chat_template_option(wgllm, demo):
    out, err, turns, generated = chat(wgllm, demo, ["hi"], "-n", 4, "--template", "chatml")
    assert "template chatml" in err and len(generated) == 1, err


# ---- usage errors ----

@pytest.mark.parametrize("command", list(UNKNOWN_OPTION))
def test_unknown_option_is_one_line_and_a_hint(wgllm, command):
    line = usage_lines(wgllm.run(command, *UNKNOWN_OPTION[command]), command)
    assert "--bogus" in line and "unknown option" in line, line


def test_every_command_is_covered(wgllm):
    listed = re.findall(r"^  ([a-z-]+) ", wgllm.ok("--help").stdout.decode(), re.M)
    assert sorted(listed) == sorted(UNKNOWN_OPTION), listed


@pytest.mark.parametrize("args,choices", BAD_CHOICES, ids=lambda a: "-".join(a) if isinstance(a, list) else None)
def test_bad_value_lists_the_choices(wgllm, args, choices):
    command = None if args[0] == "frobnicate" else args[0]
    line = usage_lines(wgllm.run(*args), command)
    assert "choose" in line and all(c in line for c in choices), line


@pytest.mark.parametrize("args,expect", BAD_NUMBERS, ids=lambda a: "-".join(a) if isinstance(a, list) else None)
def test_bad_number_names_the_range(wgllm, args, expect):
    line = usage_lines(wgllm.run(*args), args[0])
    assert f"invalid value '{args[-1]}'" in line and expect in line, line


@pytest.mark.parametrize("args", [["run", "-m", "M", "-n"], ["chat"], ["bench"], ["tokenize", "x"],
                                  ["serve"], ["logits", "-m", "M"], ["info"], ["cache-model"], ["convert"],
                                  ["quantize", "a"], ["synth"], ["perplexity", "-m", "M"], ["imatrix"]])
def test_missing_argument_is_one_line_and_a_hint(wgllm, args):
    usage_lines(wgllm.run(*args), args[0])


# ---- README synopses against --help ----

OPTION = re.compile(r"(?<![\w/.`-])(--?[a-zA-Z][a-zA-Z0-9-]*)")
CHOICES = re.compile(r"(--[a-z][a-z0-9-]*) ([a-z0-9_-]+(?:\|[a-z0-9_-]+)+)")


def readme_synopses():
    """command -> the text of its synopsis lines in README.md's code blocks."""
    blocks, block, inside = [], [], False
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith("```"):
            if inside:
                blocks.append(block)
            inside, block = not inside, []
        elif inside:
            block.append(line)
    out = {}
    for block in blocks:
        current = None
        for line in block:
            m = re.match(r"wgllm ([a-z-]+)\b", line)
            if m:
                current = m.group(1)
                out[current] = out.get(current, "") + line[m.end():] + "\n"
            elif current and line.startswith(" "):
                out[current] += line + "\n"
            else:
                current = None
    return out


def test_readme_synopsis_matches_help(wgllm):
    synopses = readme_synopses()
    for command in UNKNOWN_OPTION:
        assert command in synopses, f"README has no synopsis for `wgllm {command}`"
        help_text = wgllm.ok(command, "--help").stdout.decode()
        readme = set(OPTION.findall(synopses[command]))
        helped = set(OPTION.findall(help_text)) - {"-h", "--help"}
        aliases = {a: b for a, b in re.findall(r"(-[a-z]+), (--[a-z-]+)", help_text)}
        missing = {o for o in helped - readme if aliases.get(o) not in readme}
        assert not missing, f"{command}: in --help, not in the README synopsis: {sorted(missing)}"
        stale = readme - helped
        assert not stale, f"{command}: in the README synopsis, not in --help: {sorted(stale)}"
        readme_choices, help_choices = set(CHOICES.findall(synopses[command])), set(CHOICES.findall(help_text))
        assert help_choices <= readme_choices, f"{command}: {sorted(help_choices - readme_choices)} not in README"


# ---- setup scripts ----

def test_setup_names_the_webgpu_library_version(wgllm):
    """install-webgpu.sh says which wgpu-native it installs by the library's own version (what
    `wgllm devices` reports), not by the version of the Python wheel it comes in; setup.sh
    shows what `wgllm devices` sees."""
    script = (REPO / "scripts" / "install-webgpu.sh").read_text()
    native = re.search(r"^wgpu_native_version=(\S+)", script, re.M).group(1)
    wheel = re.search(r"^wgpu_version=(\S+)", script, re.M).group(1)
    assert native != wheel
    assert "wgpu-native ${wgpu_version}" not in script
    assert "wgpu-native ${wgpu_native_version} installed" in script
    env = {k: v for k, v in os.environ.items() if k != "WGLLM_WEBGPU_LIB"}
    p = subprocess.run([str(wgllm.binary), "devices", "--json"], env=env, capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert json.loads(p.stdout)["version"] == native, p.stdout[:200]
    assert "build/wgllm devices" in (REPO / "scripts" / "setup.sh").read_text()
