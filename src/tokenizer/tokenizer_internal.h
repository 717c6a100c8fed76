/* The tokenizer's private state, shared by the files of the tokenizer module
 * (tokenizer.c: construction and SentencePiece encoding; specials.c: special
 * and end-of-generation tokens; bpe*.c: byte-level BPE). */
#ifndef WGLLM_TOKENIZER_INTERNAL_H
#define WGLLM_TOKENIZER_INTERNAL_H

#include "tokenizer/bpe.h"
#include "tokenizer/tokenizer.h"

struct wg_tokenizer {
    wg_vocab v;               /* owned copy */
    uint32_t *piece_len;      /* strlen of each piece */
    int32_t *slots;           /* open-addressing table of matchable pieces: id, or -1 */
    size_t slot_mask;         /* n_slots - 1 (a power of two) */
    size_t max_piece_len;     /* longest matchable piece: longer pairs are not looked up */
    int32_t byte_id[256];     /* the <0xNN> token of each byte, -1 if absent */
    bool has_byte_tokens;
    char *text;               /* decoded bytes of every token, back to back */
    size_t *text_off;         /* n + 1 offsets into text */
    size_t max_text_len;
    wg_bpe *bpe;              /* byte-level BPE tables (kind BPE only) */
    int32_t *specials;        /* CONTROL and USER_DEFINED ids matched whole in text, by first byte then longest */
    int32_t n_specials;
    int32_t special_first[257]; /* specials[special_first[b] .. special_first[b + 1]) start with byte b */
    int32_t *eog;             /* end-of-generation ids, ascending */
    int32_t n_eog;
};

/* Builds specials/special_first and eog from t->v. false on OOM. */
bool wg_specials_build(wg_tokenizer *t);

/* The leftmost, then longest, special token in text[from, len): CONTROL ones only
 * when parse_special, USER_DEFINED ones always. Returns its start and sets *id
 * and *match_len, or returns len when there is none. */
size_t wg_specials_find(const wg_tokenizer *t, const char *text, size_t len, size_t from, bool parse_special,
                        int32_t *id, size_t *match_len);

#endif
