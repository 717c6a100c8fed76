/* Placeholder for the tokenizer.json (BPE) writer until it is part of the build:
 * delete this file when src/convert/hf_tokenizer.c provides the function. */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "gguf/gguf.h"

bool wg_hf_tokenizer_to_gguf(const char *tokenizer_json_path, const char *tokenizer_config_json_path_or_NULL,
                             gguf_writer *w, char *err, size_t err_size);

bool wg_hf_tokenizer_to_gguf(const char *tokenizer_json_path, const char *tokenizer_config_json_path_or_NULL,
                             gguf_writer *w, char *err, size_t err_size) {
    (void)tokenizer_config_json_path_or_NULL;
    (void)w;
    snprintf(err, err_size, "%s: unsupported: tokenizer.json (this build reads only tokenizer.model)",
             tokenizer_json_path);
    return false;
}
