/* Reader for llama2.c "legacy" checkpoints (run.c's format) and their
 * conversion to GGUF.
 *
 * Layout: 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size, seq_len; a negative vocab_size means the classifier is stored
 * separately at the end), then f32 arrays: token_embedding (vocab, dim),
 * rms_att (L, dim), wq (L, dim, dim), wk and wv (L, kv_dim, dim), wo (L, dim, dim),
 * rms_ffn (L, dim), w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim),
 * rms_final (dim), freq_cis_real and freq_cis_imag (seq_len * head_size / 2 each,
 * unused), [wcls (vocab, dim)]. The file size must match the header exactly. */
#ifndef WGLLM_CONVERT_LLAMA2C_H
#define WGLLM_CONVERT_LLAMA2C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convert/llama_gguf.h"

#define WG_LLAMA2C_HEADER_BYTES 28

/* Where each array of a checkpoint starts, in floats from the end of the header. */
typedef struct wg_llama2c_layout {
    wg_llama_shape shape; /* tied = shared classifier */
    uint64_t token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, wcls;
    uint64_t n_floats;    /* total floats after the header */
} wg_llama2c_layout;

/* Validates the header of a checkpoint of file_size bytes whose first bytes are
 * data (at least min(file_size, WG_LLAMA2C_HEADER_BYTES) of them) and computes
 * its layout. Fails with a one-line message if anything is inconsistent. */
bool wg_llama2c_parse(const void *data, uint64_t file_size, wg_llama2c_layout *out, char *err, size_t err_size);

/* Converts CKPT + llama2.c tokenizer file into a GGUF at out_path. opts->name
 * NULL: the checkpoint's file name without directory and extension. */
bool wg_llama2c_convert(const char *ckpt_path, const char *tokenizer_path, const char *out_path,
                        const wg_llama_write_opts *opts, char *err, size_t err_size);

#endif
