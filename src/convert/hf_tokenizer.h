/* Hugging Face tokenizer.json (a byte-level BPE model with Llama 3's or Qwen2's
 * pre-tokenizer) to the GGUF tokenizer.ggml.* keys that llama.cpp and wgllm read:
 * model "gpt2", pre "llama-bpe" or "qwen2", tokens, token_type, merges, bos/eos/pad ids and
 * add_bos/add_eos flags. */
#ifndef WGLLM_CONVERT_HF_TOKENIZER_H
#define WGLLM_CONVERT_HF_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "tokenizer/vocab.h"

/* Parses tokenizer.json text (and, when config is non-NULL, tokenizer_config.json
 * text) into a byte-level BPE vocabulary (kind WG_VOCAB_BPE; caller frees with
 * wg_vocab_clear). Rules:
 *  - model.type must be "BPE" and the pre-tokenizer Llama 3's or Qwen2's: a
 *    Split on its regex and a ByteLevel step; anything else is refused (the
 *    normalizer is not read: llama.cpp ignores Qwen2's NFC too);
 *  - ids come from model.vocab and added_tokens; added tokens are CONTROL when
 *    "special", else USER_DEFINED; ids no token names become "[PAD<id>]" UNUSED;
 *  - merges may be "a b" strings or ["a", "b"] pairs; rank = position;
 *  - bos/eos/pad/unk: the config's bos_token/eos_token/pad_token/unk_token (a
 *    string or {"content": ...}); without a config, bos is the special token the
 *    post-processor puts first, and eos the token spelled <|end_of_text|>,
 *    <|endoftext|> or </s> if one exists;
 *  - add_bos/add_eos: the config's add_bos_token/add_eos_token when present,
 *    else whether the post-processor's template starts/ends with a special token.
 * false + one-line err on malformed or unsupported input. */
bool wg_hf_tokenizer_parse(const char *json, size_t json_len, const char *config, size_t config_len, wg_vocab *out,
                           char *err, size_t err_size);

/* Sets the tokenizer.ggml.* keys of a byte-level BPE vocabulary on w. */
bool wg_bpe_set_vocab_kv(gguf_writer *w, const wg_vocab *v);

/* Reads both files, parses them as above and sets the keys on w (nothing else:
 * the caller writes general.* and the tensors). The config path may be NULL. */
bool wg_hf_tokenizer_to_gguf(const char *tokenizer_json_path, const char *tokenizer_config_json_path_or_NULL,
                             gguf_writer *w, char *err, size_t err_size);

/* The same for a model folder: the vocabulary is padded to n_vocab, config.json's
 * vocab_size, with "[PAD<id>]" UNUSED tokens (Qwen2's embeddings have 151,936 rows for
 * 151,646 tokens; more tokens than n_vocab is an error), and the bos/eos/unk/pad ids
 * the two files leave unset come from the model's config.json (bos_token_id, ...), as
 * llama.cpp's converter takes them (Qwen2's tokenizer_config.json has no bos_token, its
 * config.json has). */
bool wg_hf_folder_tokenizer_to_gguf(const char *tokenizer_json_path, const char *tokenizer_config_json_path_or_NULL,
                                    const char *config_json_path, int32_t n_vocab, gguf_writer *w, char *err,
                                    size_t err_size);

#endif
