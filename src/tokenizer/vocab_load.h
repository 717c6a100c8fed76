/* Loading a wg_vocab from the files that carry one: GGUF metadata
 * (tokenizer.ggml.*), a SentencePiece .model protobuf, or a llama2.c
 * tokenizer.bin. Every loader fills *out (caller frees with wg_vocab_clear) and
 * returns true, or returns false with *out zeroed and a one-line message in err.
 * The parsers check every length against the input and never over-read. */
#ifndef WGLLM_TOKENIZER_VOCAB_LOAD_H
#define WGLLM_TOKENIZER_VOCAB_LOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "gguf/gguf.h"
#include "tokenizer/vocab.h"

/* tokenizer.ggml.model "llama" (SentencePiece BPE) or "gpt2" (byte-level BPE;
 * tokenizer.ggml.pre must then name the Llama 3 split, "llama-bpe", or Qwen2's, "qwen2", and
 * tokenizer.ggml.merges is required); any other model ("bert", ...) is refused
 * with a message naming it. Optional keys take llama.cpp's defaults: scores 0,
 * for "llama" bos 1, eos 2, unk 0 (for "gpt2" none), no pad/eot/eom, add_bos true for
 * "llama" and for "gpt2" with Llama 3's pre-tokenizer (false for Qwen2's: llama.cpp
 * sets it per pre-tokenizer), add_eos false, add_space_prefix true for "llama" (false
 * for "gpt2"); keys present always win; special
 * ids outside the vocabulary fall back to those defaults. Without token_type,
 * pieces are NORMAL except "<0xNN>" of "llama" (BYTE), the unk id (UNKNOWN) and
 * the bos/eos/pad ids (CONTROL). */
bool wg_vocab_from_gguf(const gguf_file *f, wg_vocab *out, char *err, size_t err_size);

/* SentencePiece ModelProto: pieces (piece, score, type), trainer_spec
 * unk/bos/eos/pad ids, normalizer_spec.add_dummy_prefix. Unknown fields are
 * skipped. A model_type other than BPE is refused. The normalizer's character
 * map and whitespace options are not applied (the Llama models use none). */
bool wg_vocab_load_spm(const char *path, wg_vocab *out, char *err, size_t err_size);
bool wg_vocab_parse_spm(const void *data, size_t size, wg_vocab *out, char *err, size_t err_size);

/* llama2.c tokenizer.bin: int32 max_token_length, then per token float score,
 * int32 length, bytes (the vocab size is whatever the file holds). Spaces become
 * U+2581; id 0 is "<unk>", 1 "<s>", 2 "</s>"; "<0xNN>" pieces are BYTE. */
bool wg_vocab_load_llama2c(const char *path, wg_vocab *out, char *err, size_t err_size);
bool wg_vocab_parse_llama2c(const void *data, size_t size, wg_vocab *out, char *err, size_t err_size);

#endif
