/* `wgllm bench --parallel`: aggregate generation speed of several sequences decoding
 * together (wgllm_eval_batch), as a server with continuous batching runs them. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/bench_parallel.h"

double bench_parallel(wgllm_model *m, int n_streams, int n_gen, double (*clock)(void)) {
    int n_vocab = wgllm_n_vocab(m);
    wgllm_context **c = calloc((size_t)n_streams, sizeof *c);
    const wgllm_token **tok = calloc((size_t)n_streams, sizeof *tok);
    wgllm_token *prompt = malloc(sizeof *prompt * (size_t)n_streams * PAR_PROMPT);
    wgllm_token *next = malloc(sizeof *next * (size_t)n_streams);
    int *nt = malloc(sizeof *nt * (size_t)n_streams);
    double rate = -1.0;
    char err[512];
    if (!c || !tok || !prompt || !next || !nt) goto done;
    wgllm_context_params cp = wgllm_context_default_params();
    cp.n_ctx = PAR_PROMPT + n_gen + 1;
    uint64_t s = 777;
    for (int i = 0; i < n_streams; i++) {
        if (wgllm_context_create(m, &cp, &c[i], err, sizeof err) != WGLLM_OK) {
            fprintf(stderr, "wgllm bench: error: %s\n", err);
            goto done;
        }
        for (int j = 0; j < PAR_PROMPT; j++) { /* a different prompt per stream */
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            prompt[i * PAR_PROMPT + j] = (wgllm_token)(3 + (s >> 33) % (uint64_t)(n_vocab - 3));
        }
        tok[i] = prompt + i * PAR_PROMPT;
        nt[i] = PAR_PROMPT;
    }
    if (wgllm_eval_batch(c, tok, nt, n_streams) != WGLLM_OK) {
        fprintf(stderr, "wgllm bench: error: %s\n", wgllm_context_error(c[0]));
        goto done;
    }
    double t0 = clock();
    for (int g = 0; g < n_gen; g++) { /* each step feeds every stream its greedy token */
        if (wgllm_decode_greedy_batch(c, n_streams, next) != WGLLM_OK) {
            for (int i = 0; i < n_streams; i++)
                if (wgllm_context_error(c[i])[0]) fprintf(stderr, "wgllm bench: error: %s\n", wgllm_context_error(c[i]));
            goto done;
        }
    }
    if (wgllm_greedy(c[n_streams - 1]) < 0) { /* waits for the last step, which ran on behind the loop */
        fprintf(stderr, "wgllm bench: error: %s\n", wgllm_context_error(c[n_streams - 1]));
        goto done;
    }
    rate = (double)n_streams * n_gen / (clock() - t0);
done:
    for (int i = 0; c && i < n_streams; i++) wgllm_context_free(c[i]);
    free(c);
    free(tok);
    free(prompt);
    free(next);
    free(nt);
    return rate;
}
