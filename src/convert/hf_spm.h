/* The SentencePiece vocabulary of a Hugging Face folder (tokenizer.model), completed
 * as llama.cpp's converter completes it from the folder's JSON files. */
#ifndef WGLLM_CONVERT_HF_SPM_H
#define WGLLM_CONVERT_HF_SPM_H

#include <stdbool.h>
#include <stddef.h>

#include "convert/hf_config.h"
#include "tokenizer/vocab.h"

/* Reads dir/tokenizer.model into v (caller frees with wg_vocab_clear) and:
 *  - pads it to config.json's vocab_size with "[PAD<i>]" UNUSED pieces (score -10000);
 *    more pieces than vocab_size is an error;
 *  - writes the added tokens over their ids (score -1000): added_tokens.json (USER_DEFINED),
 *    tokenizer_config.json's added_tokens_decoder (CONTROL when "special" or spelled
 *    <|...|>, else USER_DEFINED) and, for phi3, tokenizer.json's added_tokens; ids past
 *    vocab_size are skipped;
 *  - takes bos/eos/unk/pad from tokenizer_config.json's bos_token, ... (the piece
 *    they name), else config.json's bos_token_id, ..., else the model's own, and
 *    add_bos/add_eos from tokenizer_config.json's add_bos_token/add_eos_token.
 * false + a one-line message on unreadable or malformed files. */
bool wg_hf_spm_load(const char *dir, const wg_hf_config *cfg, wg_vocab *v, char *err, size_t err_size);

#endif
