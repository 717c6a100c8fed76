"""Files from `wgllm convert hf` load in llama.cpp's own CPU build (the pinned sdist's tree,
scripts/build-llama-cpp.sh), and llama.cpp's greedy tokens and logits on them equal wgllm's.

The two models of test_convert_hf_transformers.py: llama2 (multi-head attention, untied output,
SentencePiece vocabulary) and llama3 (Llama 3.1's llama3 RoPE scaling, which llama.cpp reads only
from a rope_freqs.weight tensor: a file with a `llama.rope.scaling.type` of "llama3" makes it abort
in GGML_ASSERT(hparams.rope_scaling_type_train != LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED)).
"""

import llama_cpp_ref
from conftest import relative_error
from test_convert_hf_transformers import PROMPT, convert_f32, llama2, llama3  # noqa: F401 (fixtures)

N_PREDICT = 16
BOUND = 1e-4  # wgllm's logits against llama.cpp's; both match transformers to about 1e-6


def check_against_llama_cpp(wgllm, path, name):
    ids = wgllm.tokenize(path, PROMPT)
    theirs, their_logits = llama_cpp_ref.greedy(path, ids, N_PREDICT, logits=True)
    ours = [t["id"] for t in wgllm.run_json("-m", path, "-p", PROMPT, "--temp", "0", "-n", N_PREDICT,
                                            "--ignore-eos", "--backend", "cpu")]
    assert ours == theirs, f"{name}: greedy tokens of wgllm {ours}, of llama.cpp {theirs}"
    err = relative_error(wgllm.logits(path, ids, batch=len(ids)), their_logits)
    print(f"{name}: llama.cpp loads the file; {N_PREDICT} greedy tokens equal; logits differ by {err:.2g}")
    assert err <= BOUND, f"{name}: logits of wgllm and llama.cpp differ by {err:.3g}"


def test_llama2_file_runs_in_llama_cpp(wgllm, llama2):
    folder, _ = llama2
    check_against_llama_cpp(wgllm, convert_f32(wgllm, folder), "llama2")


def test_llama31_file_runs_in_llama_cpp(wgllm, llama3):
    folder, _, _ = llama3
    check_against_llama_cpp(wgllm, convert_f32(wgllm, folder), "llama3")
