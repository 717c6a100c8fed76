/* Hugging Face Llama checkpoints (config.json, safetensors weights, tokenizer) to GGUF.
 *
 * Tensor names map to llama.cpp's (model.embed_tokens -> token_embd, model.layers.N.
 * self_attn.q_proj -> blk.N.attn_q, ...). The rows of q_proj and k_proj are permuted
 * per head: Hugging Face rotates the two halves of a head against each other
 * (rotate_half), GGUF models rotate adjacent pairs, so HF row t * d/2 + j becomes GGUF
 * row 2j + t. Llama 3 rope scaling becomes a rope_freqs.weight tensor of per-pair
 * divisors plus llama.rope.scaling.* keys. The vocabulary comes from tokenizer.model
 * (SentencePiece) or, failing that, tokenizer.json. */
#ifndef WGLLM_CONVERT_HF_LLAMA_H
#define WGLLM_CONVERT_HF_LLAMA_H

#include <stdbool.h>
#include <stddef.h>

#include "convert/llama_gguf.h"

/* Converts the checkpoint folder dir into a GGUF at out_path. opts->name NULL: the
 * folder's name. On failure no output file is left. */
bool wg_hf_llama_convert(const char *dir, const char *out_path, const wg_llama_write_opts *opts, char *err,
                         size_t err_size);

#endif
