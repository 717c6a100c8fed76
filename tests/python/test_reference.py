"""Validates the numpy reference (llama_ref.py) against llama2.c's own logits.

This does not run the engine: it shows the reference that the other tests
trust reproduces llama2.c run.c (an independent implementation) on the two
shared GGUF files.
"""

import numpy as np

from conftest import prompt_length, relative_error

# llama2.c computes in float32 (sums of up to 172 products, softmax, 5 layers);
# the reference computes in float64. Measured: at most 9.6e-6 (stories260K) and
# 2.2e-6 (aidreams260K) of the row's largest logit. A real mistake is far above
# the bound: eps 1e-6 instead of 1e-5 gives 8e-4, a rope base off by 0.1% 3e-3.
REFERENCE_BOUND = 2e-5


def test_reference_reproduces_llama2c_logits(golden, ref_logits):
    ref = ref_logits(golden.gguf, golden.ids[: golden.n_forward])
    err = relative_error(ref, golden.logits)
    assert err <= REFERENCE_BOUND, f"{golden.name}: relative error {err:.3g}"


def test_reference_greedy_matches_golden_ids(golden, ref_logits):
    """Every generated golden id is the reference's argmax: the reference makes the same
    greedy choices as llama2.c at every step (the smallest top-2 gap is 2.3e-4, well
    above the float32-vs-float64 difference)."""
    ref = ref_logits(golden.gguf, golden.ids[: golden.n_forward])
    n_prompt = prompt_length(golden)
    chosen = np.argmax(ref, axis=1)
    # row i predicts ids[i + 1]; rows from the last prompt token on are greedy choices
    expected = golden.ids[n_prompt: golden.n_forward + 1]
    assert list(chosen[n_prompt - 1:]) == expected


def test_prompt_length_spells_prompt(golden):
    n = prompt_length(golden)
    assert golden.ids[0] == 1
    assert 1 <= n < len(golden.ids)
    # the printed text starts with the prompt (llama2.c echoes it, without the dummy space)
    if golden.prompt is not None:
        assert golden.text.startswith(golden.prompt.encode("utf-8"))
