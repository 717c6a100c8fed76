/* wgllm_warm_up: on WebGPU (CI: Mesa's lavapipe) it runs every shape of step and leaves the
 * contexts empty, after which evaluations give what a never-warmed context gives; on the CPU
 * (no kernels built at first use) it changes nothing. Bad arguments are refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "wgllm.h"

#define N_CTX 5
#define N_GEN 6

static const char *k_prompt = "Once upon a time";

/* The prompt's logits in a fresh context, then N_GEN greedy ids after it. */
static void reference(wgllm_model *m, const wgllm_token *p, int np, float *logits, wgllm_token *ids) {
    wgllm_context *c = NULL;
    char err[256];
    CHECK(wgllm_context_create(m, NULL, &c, err, sizeof err) == WGLLM_OK);
    if (!c) return;
    CHECK(wgllm_eval(c, p, np, false) == WGLLM_OK);
    const float *l = wgllm_get_logits(c, 0);
    CHECK(l != NULL);
    if (l) memcpy(logits, l, sizeof(float) * (size_t)wgllm_n_vocab(m));
    for (int g = 0; g < N_GEN; g++) {
        ids[g] = wgllm_greedy(c);
        CHECK(wgllm_eval(c, &ids[g], 1, false) == WGLLM_OK);
    }
    wgllm_context_free(c);
}

static void test_backend(const char *path, wgllm_backend_kind kind, const char *name, bool warms) {
    wgllm_model_params mp = wgllm_model_default_params();
    mp.backend = kind;
    mp.n_threads = 2;
    wgllm_model *m = NULL;
    char err[512];
    if (wgllm_model_load(path, &mp, &m, err, sizeof err) != WGLLM_OK) {
        CHECK_MSG(0, "%s: cannot load %s: %s", name, path, err);
        return;
    }
    const int n_vocab = wgllm_n_vocab(m);
    wgllm_token p[64];
    const int np = (int)wgllm_tokenize(m, k_prompt, strlen(k_prompt), true, p, 64);
    CHECK(np > 1);
    float *ref = malloc(sizeof(float) * (size_t)n_vocab);
    wgllm_token ref_ids[N_GEN];
    reference(m, p, np, ref, ref_ids);

    wgllm_context *c[N_CTX] = {0};
    for (int i = 0; i < N_CTX; i++) CHECK(wgllm_context_create(m, NULL, &c[i], err, sizeof err) == WGLLM_OK);
    CHECK(wgllm_eval(c[3], p, 2, false) == WGLLM_OK); /* a context in use: emptied, or (CPU) kept */

    /* widths 1, 2, 3, 5 and prompt steps of 24 tokens in chunks of 7 */
    CHECK_MSG(wgllm_warm_up(c, N_CTX, 24, 7) == WGLLM_OK, "%s: warm-up: %s", name, wgllm_context_error(c[0]));
    for (int i = 0; i < N_CTX; i++)
        CHECK_MSG(wgllm_context_n_past(c[i]) == (warms || i != 3 ? 0 : 2), "%s: context %d holds %d tokens", name, i,
                  wgllm_context_n_past(c[i]));
    if (warms) CHECK_MSG(wgllm_get_logits(c[3], 0) == NULL, "%s: logits left after the warm-up", name);

    /* after it: the same logits as a fresh context, and the same greedy ids in a batch */
    wgllm_context_truncate(c[3], 0);
    const wgllm_token *toks[2] = {p, p};
    int counts[2] = {np, np};
    CHECK(wgllm_eval_batch(c + 1, toks, counts, 2) == WGLLM_OK);
    const float *l = wgllm_get_logits(c[1], 0);
    CHECK(l != NULL);
    float diff = 0.0f, mx = 0.0f;
    for (int v = 0; l && v < n_vocab; v++) {
        float d = l[v] > ref[v] ? l[v] - ref[v] : ref[v] - l[v];
        if (d > diff) diff = d;
        if (ref[v] > mx || -ref[v] > mx) mx = ref[v] > 0 ? ref[v] : -ref[v];
    }
    CHECK_MSG(diff <= 1e-4f * mx, "%s: logits after the warm-up differ: %g of %g", name, diff, mx);
    wgllm_token ids[2];
    for (int g = 0; g < N_GEN; g++) {
        CHECK(wgllm_decode_greedy_batch(c + 1, 2, ids) == WGLLM_OK);
        CHECK_MSG(ids[0] == ref_ids[g] && ids[1] == ref_ids[g], "%s: step %d: ids %d %d, alone %d", name, g, ids[0],
                  ids[1], ref_ids[g]);
    }
    printf("%s: warm-up ok; logits after it vs a fresh context: %g of %g\n", name, diff, mx);

    /* bad arguments: refused, nothing run */
    CHECK(wgllm_warm_up(NULL, 1, 8, 8) == WGLLM_ERR_INVALID_ARG);
    CHECK(wgllm_warm_up(c, 0, 8, 8) == WGLLM_ERR_INVALID_ARG);
    CHECK(wgllm_warm_up(c, 1, 0, 8) == WGLLM_ERR_INVALID_ARG);
    CHECK(wgllm_warm_up(c, 1, 8, 0) == WGLLM_ERR_INVALID_ARG);
    wgllm_context *holey[2] = {c[0], NULL};
    CHECK(wgllm_warm_up(holey, 2, 8, 8) == WGLLM_ERR_INVALID_ARG);
    CHECK(wgllm_context_n_past(c[1]) == np + N_GEN);

    /* contexts too small for a decode step still take the prompt steps they can hold */
    wgllm_context_params cp = wgllm_context_default_params();
    cp.n_ctx = 2;
    wgllm_context *tiny = NULL;
    CHECK(wgllm_context_create(m, &cp, &tiny, err, sizeof err) == WGLLM_OK);
    CHECK(wgllm_warm_up(&tiny, 1, 16, 16) == WGLLM_OK);
    CHECK(wgllm_context_n_past(tiny) == 0);
    wgllm_context_free(tiny);

    for (int i = 0; i < N_CTX; i++) wgllm_context_free(c[i]);
    free(ref);
    wgllm_model_free(m);
}

int main(void) {
    const char *shared = getenv("WGLLM_SHARED");
    char path[1024];
    snprintf(path, sizeof path, "%s/models/stories260K-f32.gguf", shared ? shared : "../shared");
    test_backend(path, WGLLM_BACKEND_CPU, "cpu", false);
#ifdef WGLLM_HAVE_WEBGPU_BACKEND
    setenv("WGLLM_WEBGPU_AUTOTUNE", "0", 1); /* fixed routes: nothing measured or written */
    test_backend(path, WGLLM_BACKEND_WEBGPU, "webgpu", true);
#endif
    CHECK_DONE();
}
