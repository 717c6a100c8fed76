/* The tokenizers of GGUF files, chosen by tokenizer.ggml.model:
 *  - "llama": SentencePiece BPE, merges by piece score, byte fallback to <0xNN>,
 *    leading-space (dummy prefix) rule;
 *  - "gpt2" with the Llama 3 ("llama-bpe") or Qwen2 ("qwen2") pre-tokenizer:
 *    byte-level BPE, merges by rank (see bpe.h). Bytes that are not valid UTF-8 go through the byte
 *    alphabet unchanged (each one splits like a punctuation character), so every
 *    byte string decodes back exactly.
 * Both have special tokens matched whole in the text (CONTROL on request,
 * USER_DEFINED always for "gpt2"), an end-of-generation set, and a detokenizer
 * that streams valid UTF-8. A wg_tokenizer is immutable after creation and may
 * be shared by threads. */
#ifndef WGLLM_TOKENIZER_H
#define WGLLM_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "tokenizer/vocab.h"

typedef struct wg_tokenizer wg_tokenizer;

/* Builds from the tokenizer.ggml.* keys. NULL + one-line err on failure
 * (missing keys, unsupported tokenizer.ggml.model, inconsistent array lengths). */
wg_tokenizer *wg_tokenizer_from_gguf(const gguf_file *f, char *err, size_t err_size);
/* Builds from a vocab (copied; caller keeps ownership of v). */
wg_tokenizer *wg_tokenizer_from_vocab(const wg_vocab *v, char *err, size_t err_size);
void wg_tokenizer_free(wg_tokenizer *t);

int32_t wg_tokenizer_n_vocab(const wg_tokenizer *t);
int32_t wg_tokenizer_bos(const wg_tokenizer *t); /* -1 if none */
int32_t wg_tokenizer_eos(const wg_tokenizer *t);
bool wg_tokenizer_add_bos(const wg_tokenizer *t); /* the file's default */
bool wg_tokenizer_add_space_prefix(const wg_tokenizer *t);
/* The tokenizer's vocabulary (owned by t, read-only). */
const wg_vocab *wg_tokenizer_vocab(const wg_tokenizer *t);
/* Longest wg_token_to_bytes result over the vocabulary. */
size_t wg_tokenizer_max_token_bytes(const wg_tokenizer *t);

/* Encodes len bytes of text (any bytes; invalid UTF-8 goes through byte fallback).
 * As in SentencePiece, a U+2581 already in the text is read as a space, so it
 * decodes back as ' '; every other byte string decodes back exactly.
 * Writes at most max_out ids; returns the total count, which may exceed max_out
 * (then call again with a larger buffer), or -1 on internal failure (OOM). */
int64_t wg_tokenize(const wg_tokenizer *t, const char *text, size_t len, bool add_bos,
                    int32_t *out, int64_t max_out);

/* wg_tokenize with special-token parsing: when parse_special, the text of a
 * CONTROL token (e.g. "<|eot_id|>") anywhere in the input becomes that token
 * (leftmost, then longest match); otherwise it is ordinary text. USER_DEFINED
 * tokens of a "gpt2" vocabulary are matched either way (as Hugging Face's
 * non-special added tokens). For "llama" without parse_special this is exactly
 * wg_tokenize; with it, the dummy-prefix space is also added after each special
 * token (as llama.cpp does). */
int64_t wg_tokenize_ex(const wg_tokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
                       int32_t *out, int64_t max_out);

/* True for the tokens that end a generation: eos, the file's eot/eom ids, and
 * the CONTROL/USER_DEFINED tokens spelled <|eot_id|>, <|eom_id|>, <|end_of_text|>. */
bool wg_tokenizer_is_eog(const wg_tokenizer *t, int32_t id);

/* Decoded bytes of one token as they would appear in running text that is not
 * at the start: U+2581 -> ' ', "<0xNN>" -> that byte, control tokens -> "";
 * for "gpt2", byte-level pieces -> their bytes, USER_DEFINED pieces -> their
 * text, CONTROL/UNKNOWN/UNUSED/BYTE -> "" (llama.cpp's token_to_piece with
 * special = false).
 * Returns a pointer owned by t and its length; NULL for an out-of-range id. */
const char *wg_token_to_bytes(const wg_tokenizer *t, int32_t id, size_t *len);

/* Decodes a whole id sequence to bytes, exactly inverting wg_tokenize (the
 * dummy-prefix space of the first piece is removed). Returns the byte count
 * (may exceed cap: call again); out is NUL-terminated when cap > count. */
size_t wg_detokenize(const wg_tokenizer *t, const int32_t *ids, size_t n, char *out, size_t cap);

/* Streaming detokenizer: feed ids one at a time, receive text that is always
 * valid UTF-8 (incomplete sequences are held back until completed; bytes that
 * can never form a valid sequence become U+FFFD). */
typedef struct wg_detok_stream {
    unsigned char pending[8];
    int n_pending;
    bool at_start; /* true until the first non-control piece: strips the dummy prefix */
} wg_detok_stream;

void wg_detok_stream_init(wg_detok_stream *s);
/* Appends the text released by `id` to out (cap bytes, NUL-terminated); returns its length.
 * With cap >= wg_detok_stream_max_out(t) nothing is ever cut; with less, the text is cut
 * at a character boundary and the rest is lost. Out-of-range ids release nothing. */
size_t wg_detok_stream_push(const wg_tokenizer *t, wg_detok_stream *s, int32_t id, char *out, size_t cap);
/* Releases what is still pending (as U+FFFD) at end of stream. cap >= 10 always suffices. */
size_t wg_detok_stream_flush(wg_detok_stream *s, char *out, size_t cap);
/* A buffer size for push (NUL included) that is always large enough. */
size_t wg_detok_stream_max_out(const wg_tokenizer *t);

/* Copies len bytes to out as valid UTF-8, replacing each maximal invalid subpart
 * (Unicode ch. 3, "U+FFFD substitution of maximal subparts") with U+FFFD. Writes
 * at most cap bytes (NUL-terminated when it fits) and returns the full length. */
size_t wg_utf8_sanitize(const char *in, size_t len, char *out, size_t cap);

#endif
