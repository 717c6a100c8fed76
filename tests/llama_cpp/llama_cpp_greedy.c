/* Greedy token ids (and optionally the prompt's logits) from llama.cpp's own CPU build, for
 * the tests that compare wgllm with llama.cpp on the same GGUF.
 *
 *   llama_cpp_greedy MODEL.gguf N_PREDICT ID[,ID...] [LOGITS.f32]
 *
 * Prints the N_PREDICT greedy ids after the prompt ids on one line, space-separated. With
 * LOGITS.f32, writes the logits of every prompt row (n_prompt x n_vocab little-endian f32).
 * The KV cache is f32 and flash attention off, so the only rounding is llama.cpp's matmuls. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

static void quiet_log(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static int parse_ids(const char *s, llama_token **out) {
    int cap = 16, n = 0;
    llama_token *ids = malloc(sizeof *ids * (size_t)cap);
    while (ids && *s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > 0x7fffffff || (*end && *end != ',')) break;
        if (n == cap) {
            llama_token *grown = realloc(ids, sizeof *ids * (size_t)(cap *= 2));
            if (!grown) break;
            ids = grown;
        }
        ids[n++] = (llama_token)v;
        s = *end ? end + 1 : end;
    }
    if (!ids || *s || n == 0) {
        free(ids);
        return -1;
    }
    *out = ids;
    return n;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s MODEL.gguf N_PREDICT ID[,ID...] [LOGITS.f32]\n", argv[0]);
        return 2;
    }
    int n_predict = atoi(argv[2]);
    llama_token *prompt = NULL;
    int n_prompt = parse_ids(argv[3], &prompt);
    if (n_predict < 0 || n_prompt < 0) {
        fprintf(stderr, "bad N_PREDICT or prompt ids\n");
        return 2;
    }
    llama_log_set(quiet_log, NULL);
    llama_backend_init();

    int rc = 1;
    struct llama_context *ctx = NULL;
    struct llama_batch batch = llama_batch_init(n_prompt, 0, 1);
    struct llama_model *model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) {
        fprintf(stderr, "llama.cpp could not load %s\n", argv[1]);
        goto done;
    }
    int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(n_prompt + n_predict + 1);
    cp.n_batch = cp.n_ubatch = (uint32_t)n_prompt;
    cp.n_threads = cp.n_threads_batch = 1;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.no_perf = true;
    ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "llama.cpp could not create a context\n");
        goto done;
    }

    for (int i = 0; i < n_prompt; i++) {
        batch.token[i] = prompt[i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = n_prompt;
    if (llama_decode(ctx, batch) != 0) {
        fprintf(stderr, "llama_decode failed on the prompt\n");
        goto done;
    }
    if (argc == 5) {
        FILE *f = fopen(argv[4], "wb");
        int ok = f != NULL;
        for (int i = 0; ok && i < n_prompt; i++)
            ok = fwrite(llama_get_logits_ith(ctx, i), sizeof(float), (size_t)n_vocab, f) == (size_t)n_vocab;
        if (f && fclose(f) != 0) ok = 0;
        if (!ok) {
            fprintf(stderr, "could not write %s\n", argv[4]);
            goto done;
        }
    }
    llama_token tok = argmax(llama_get_logits_ith(ctx, n_prompt - 1), n_vocab);
    for (int i = 0; i < n_predict; i++) {
        printf(i ? " %d" : "%d", tok);
        if (i + 1 == n_predict) break;
        struct llama_batch one = llama_batch_get_one(&tok, 1);
        if (llama_decode(ctx, one) != 0) {
            fprintf(stderr, "llama_decode failed at generated token %d\n", i);
            goto done;
        }
        tok = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
    }
    printf("\n");
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    llama_batch_free(batch);
    if (ctx) llama_free(ctx);
    if (model) llama_model_free(model);
    llama_backend_free();
    free(prompt);
    return rc;
}
