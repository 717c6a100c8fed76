/* Token ids of a text from llama.cpp's own tokenizer, with the bos/eos it adds by default
 * (the file's tokenizer.ggml.add_bos_token/add_eos_token, else llama.cpp's defaults for its
 * tokenizer model and pre-tokenizer), for the tests that compare wgllm's with llama.cpp's.
 *
 *   llama_cpp_tokenize MODEL.gguf TEXT
 *
 * Prints the ids on one line, space-separated. Special tokens in TEXT are not parsed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

static void quiet_log(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.gguf TEXT\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet_log, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    int rc = 1;
    llama_token *ids = NULL;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "llama.cpp could not load %s\n", argv[1]);
        goto done;
    }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int32_t len = (int32_t)strlen(argv[2]);
    int32_t cap = len + 8; /* at most one id per byte, plus bos/eos */
    ids = malloc(sizeof *ids * (size_t)cap);
    int32_t n = ids ? llama_tokenize(vocab, argv[2], len, ids, cap, true, false) : -1;
    if (n < 0) {
        fprintf(stderr, "llama_tokenize failed\n");
        goto done;
    }
    for (int32_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    free(ids);
    if (model) llama_model_free(model);
    llama_backend_free();
    return rc;
}
