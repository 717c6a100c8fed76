/* Synthetic Llama models: random weights of any shape, for tests and
 * benchmarks of shapes we have no trained checkpoint for.
 *
 * Weights are deterministic for a seed: every row is drawn from its own stream
 * seeded by (seed, tensor index, row), so the bytes do not depend on the thread
 * count. Scales keep activations and logits O(1): matrices ~ N(0, 1/fan_in),
 * the two residual projections (attn_output, ffn_down) further divided by
 * sqrt(2 * layers), norm gains ~ 1 +- 0.1, embeddings and classifier with
 * std 2/sqrt(dim) so the logits have a std of about 2. */
#ifndef WGLLM_CONVERT_SYNTH_H
#define WGLLM_CONVERT_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convert/llama_gguf.h"
#include "tokenizer/vocab.h"

typedef struct wg_synth_preset {
    const char *name;
    wg_llama_shape shape;
} wg_synth_preset;

/* The built-in presets (tiny, small, tinyllama, llama2-7b, llama2-13b, llama3-8b). */
const wg_synth_preset *wg_synth_presets(int *count);
/* NULL if no preset has this name. */
const wg_synth_preset *wg_synth_find_preset(const char *name);

/* Smallest vocabulary wg_synth_make_vocab can build: <unk>, <s>, </s> and 256 bytes. */
#define WG_SYNTH_MIN_VOCAB 259

/* Builds a SentencePiece-style vocabulary of n pieces: <unk> <s> </s>, the 256
 * byte pieces <0x00>..<0xFF>, then unique generated pieces ("▁a", "a", "▁b", ...)
 * with descending scores. Caller frees with wg_vocab_clear. */
bool wg_synth_make_vocab(int32_t n, wg_vocab *out, char *err, size_t err_size);

/* Writes a random-weight model of shape s with vocabulary v (v->n == s->n_vocab). */
bool wg_synth_write(const char *path, const wg_llama_shape *s, const wg_vocab *v, uint64_t seed,
                    const wg_llama_write_opts *opts, char *err, size_t err_size);

#endif
