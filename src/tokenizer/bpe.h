/* Byte-level BPE (GPT-2 style, tokenizer.ggml.model = "gpt2") as used by Llama 3:
 * the Llama 3 pre-tokenizer split, GPT-2's byte-to-unicode alphabet, and merges
 * applied by rank (the index in tokenizer.ggml.merges, lowest first, leftmost on
 * ties). Internal to the tokenizer module; tokenizer.h is the public face. */
#ifndef WGLLM_TOKENIZER_BPE_H
#define WGLLM_TOKENIZER_BPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/vocab.h"

/* Receives one pre-token: bytes [start, start + len) of the text. false stops (OOM). */
typedef bool (*wg_pretok_fn)(void *ctx, size_t start, size_t len);

/* Splits text into Llama 3 pre-tokens, in order, covering every byte. Invalid
 * UTF-8 bytes are single "other" characters (punctuation-like). false on OOM. */
bool wg_pretok_llama3(const char *text, size_t len, wg_pretok_fn fn, void *ctx);
/* The same with the split of vocabulary pre-tokenizer pre (WG_PRE_*). */
bool wg_pretok(int32_t pre, const char *text, size_t len, wg_pretok_fn fn, void *ctx);

/* GPT-2's reversible byte <-> code point alphabet: printable Latin-1 bytes map
 * to themselves, the other 68 bytes to U+0100.. in byte order. */
uint32_t wg_bpe_byte_to_cp(unsigned char b);
/* Inverse: the byte of a code point of the alphabet, or -1. */
int wg_bpe_cp_to_byte(uint32_t cp);

/* Bytes a byte-level piece stands for (each alphabet character -> its byte;
 * a character outside the alphabet is kept as its own UTF-8). Writes to out
 * when non-NULL (room: strlen(piece)); returns the length. */
size_t wg_bpe_piece_bytes(const char *piece, char *out);

typedef struct wg_bpe wg_bpe;

/* Indexes the NORMAL pieces of v and its merges ("left right", rank = index).
 * Merges naming unknown pieces, or whose result is not a piece, are ignored
 * (counted in *n_skipped when non-NULL). NULL + err on OOM. */
wg_bpe *wg_bpe_create(const wg_vocab *v, int32_t *n_skipped, char *err, size_t err_size);
void wg_bpe_free(wg_bpe *b);

typedef void (*wg_bpe_emit_fn)(void *ctx, int32_t id);

/* Encodes one pre-token (raw bytes). With Llama 3's pre-tokenizer a word that
 * is a whole piece is emitted as is (its ignore_merges; Qwen2 has none);
 * otherwise its bytes are merged by rank.
 * A byte whose alphabet character is not a piece becomes unk (v->unk) or is
 * dropped when there is none. false on OOM. */
bool wg_bpe_encode_word(const wg_bpe *b, const char *word, size_t len, wg_bpe_emit_fn emit, void *ctx);

#endif
