/* The KL-divergence base file: a reference model's log-probabilities for every
 * scored token of a text, so that another model can be compared with it later.
 *
 * Layout (little-endian), 48-byte header then the rows:
 *   0  "WGKL"           magic
 *   4  u32 version      1
 *   8  u32 n_vocab
 *  12  u32 ctx          window of the run that wrote it
 *  16  u32 stride
 *  20  u32 reserved     0
 *  24  u64 n_text       tokens of the text (with BOS)
 *  32  u64 n_scored     rows that follow; n_text - 1 under the window rule
 *  40  u64 ids_hash     wg_kl_ids_hash of the text's token ids
 *  48  n_scored rows of n_vocab f32 log-probabilities, in text order
 *
 * The reader treats the file as untrusted: every field is checked, the file size
 * must match the header exactly, and each row must hold finite values <= 0.
 */
#ifndef WGLLM_EVAL_KL_FILE_H
#define WGLLM_EVAL_KL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "wgllm.h"

#define WG_KL_VERSION 1
#define WG_KL_HEADER_BYTES 48
#define WG_KL_MAX_VOCAB (1u << 24)

typedef struct wg_kl_header {
    uint32_t version, n_vocab, ctx, stride;
    uint64_t n_text, n_scored, ids_hash;
} wg_kl_header;

/* FNV-1a (64-bit) over the ids as little-endian int32, then their count. */
uint64_t wg_kl_ids_hash(const wgllm_token *ids, int64_t n);

/* Decodes and checks a header against the whole file's size. */
bool wg_kl_header_decode(const uint8_t *buf, size_t len, uint64_t file_size, wg_kl_header *h, char *err,
                         size_t err_size);

typedef struct wg_kl_writer wg_kl_writer;

/* Writes to a temporary file beside path; wg_kl_writer_close renames it onto path. */
wg_kl_writer *wg_kl_writer_open(const char *path, const wg_kl_header *h, char *err, size_t err_size);
bool wg_kl_writer_row(wg_kl_writer *w, const float *logprobs);
/* Checks that n_scored rows were written, flushes and renames. Frees w either way;
 * on failure the temporary file is removed. */
bool wg_kl_writer_close(wg_kl_writer *w, char *err, size_t err_size);
/* Abandons the file (removes the temporary) and frees w. */
void wg_kl_writer_abort(wg_kl_writer *w);

typedef struct wg_kl_reader wg_kl_reader;

wg_kl_reader *wg_kl_reader_open(const char *path, char *err, size_t err_size);
/* Over an open stream of `size` bytes (fuzzing, tests); the reader closes f when freed. */
wg_kl_reader *wg_kl_reader_from_stream(FILE *f, uint64_t size, const char *name, char *err, size_t err_size);
const wg_kl_header *wg_kl_reader_header(const wg_kl_reader *r);
/* Reads the next row (n_vocab floats) into out; false with a message at the end,
 * on a read error or on a value that is not a finite log-probability. */
bool wg_kl_reader_row(wg_kl_reader *r, float *out, char *err, size_t err_size);
void wg_kl_reader_free(wg_kl_reader *r);

#endif
