/* A tokenizer vocabulary as stored in GGUF (tokenizer.ggml.* keys). Used by the
 * tokenizer, by the converters that write it, and by `wgllm info`. */
#ifndef WGLLM_TOKENIZER_VOCAB_H
#define WGLLM_TOKENIZER_VOCAB_H

#include <stdbool.h>
#include <stdint.h>

/* Token types, numbered as llama.cpp's llama_token_type / SentencePiece's. */
enum {
    WG_TOKEN_NORMAL = 1,
    WG_TOKEN_UNKNOWN = 2,
    WG_TOKEN_CONTROL = 3,
    WG_TOKEN_USER_DEFINED = 4,
    WG_TOKEN_UNUSED = 5,
    WG_TOKEN_BYTE = 6,
};

/* Which tokenizer a vocabulary is for (tokenizer.ggml.model). */
enum {
    WG_VOCAB_SPM = 0, /* "llama": SentencePiece BPE, merges by score */
    WG_VOCAB_BPE = 1, /* "gpt2": byte-level BPE, merges by rank, pre-tokenizer below */
};

/* Pre-tokenizer split of a byte-level BPE vocabulary (tokenizer.ggml.pre). */
enum {
    WG_PRE_LLAMA3 = 0, /* "llama-bpe": digits in runs of up to 3, whole-piece words not merged */
    WG_PRE_QWEN2 = 1,  /* "qwen2": one digit a piece, every word merged */
};

typedef struct wg_vocab {
    int32_t n;       /* number of pieces */
    char **pieces;   /* n NUL-terminated UTF-8 strings, SentencePiece spelling (U+2581 for space, "<0xNN>" for bytes) */
    float *scores;   /* n */
    int32_t *types;  /* n, WG_TOKEN_* */
    int32_t bos, eos, unk, pad; /* -1 when absent */
    bool add_bos, add_eos, add_space_prefix;
    int32_t kind;    /* WG_VOCAB_* */
    char **merges;   /* BPE only: n_merges "left right" strings, rank = index */
    int32_t n_merges;
    int32_t eot, eom; /* end-of-turn / end-of-message ids, -1 when absent */
    int32_t pre;      /* BPE only: WG_PRE_* */
} wg_vocab;

/* Frees the arrays and strings and zeroes the struct. */
void wg_vocab_clear(wg_vocab *v);

/* Allocates n pieces (all NULL), scores 0, types NORMAL, special ids -1,
 * add_bos/add_space_prefix true, add_eos false, kind SPM, no merges.
 * false (v zeroed) on OOM or n < 0. */
bool wg_vocab_alloc(wg_vocab *v, int32_t n);

/* Appends "[PAD<id>]" pieces of type UNUSED and the given score up to n pieces, as
 * llama.cpp's converter pads a vocabulary to config.json's vocab_size. n < v->n is
 * false; false on OOM (v stays valid for wg_vocab_clear, with the pieces made so far). */
bool wg_vocab_pad(wg_vocab *v, int32_t n, float score);

/* Byte value 0..255 if piece is spelled "<0xNN>" (two uppercase or lowercase hex
 * digits), else -1. */
int wg_piece_byte_value(const char *piece);

/* Allocates n merges (all NULL) on a vocab (replacing none). false on OOM or n < 0. */
bool wg_vocab_alloc_merges(wg_vocab *v, int32_t n);

#endif
