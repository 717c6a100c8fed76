/* wgllm_generate_greedy: the same tokens and the same context state as the plain
 * wgllm_greedy / wgllm_eval loop, on the CPU and on WebGPU (CI: Mesa's lavapipe), where
 * the next step is queued before a token is read back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "wgllm.h"

#define N_GEN 40

typedef struct {
    wgllm_token ids[N_GEN + 8];
    int n, stop_after;
} collect;

static bool on_token(wgllm_token t, void *user) {
    collect *c = user;
    c->ids[c->n++] = t;
    return c->stop_after <= 0 || c->n < c->stop_after;
}

static void run(const char *path, wgllm_backend_kind kind, const char *name) {
    wgllm_model_params mp = wgllm_model_default_params();
    mp.backend = kind;
    mp.n_threads = 2;
    wgllm_model *m = NULL;
    char err[512];
    if (wgllm_model_load(path, &mp, &m, err, sizeof err) != WGLLM_OK) {
        CHECK_MSG(0, "%s: %s", name, err);
        return;
    }
    const char *prompt = "Once upon a time";
    wgllm_token p[32];
    int np = (int)wgllm_tokenize(m, prompt, strlen(prompt), true, p, 32);
    CHECK(np > 0);

    /* reference: the plain loop */
    wgllm_context *a = NULL, *g = NULL;
    CHECK(wgllm_context_create(m, NULL, &a, err, sizeof err) == WGLLM_OK);
    CHECK(wgllm_context_create(m, NULL, &g, err, sizeof err) == WGLLM_OK);
    if (!a || !g) return;
    wgllm_token ref[N_GEN];
    CHECK(wgllm_eval(a, p, np, false) == WGLLM_OK);
    for (int i = 0; i < N_GEN; i++) {
        ref[i] = wgllm_greedy(a);
        if (i + 1 < N_GEN) CHECK(wgllm_eval(a, &ref[i], 1, false) == WGLLM_OK);
    }

    collect got = {.stop_after = 0};
    CHECK(wgllm_eval(g, p, np, false) == WGLLM_OK);
    int n = wgllm_generate_greedy(g, N_GEN, on_token, &got, false);
    CHECK_MSG(n == N_GEN && got.n == N_GEN, "%s: %d tokens (%s)", name, n, wgllm_context_error(g));
    CHECK_MSG(memcmp(ref, got.ids, sizeof ref) == 0, "%s: generated ids differ from the greedy loop", name);
    /* every token but the last is in the cache, as after the loop */
    CHECK_MSG(wgllm_context_n_past(g) == wgllm_context_n_past(a), "%s: n_past %d vs %d", name,
              wgllm_context_n_past(g), wgllm_context_n_past(a));
    CHECK(wgllm_get_logits(g, 0) == NULL); /* no logits until the next evaluation */

    /* continuing: evaluate the last token, then generate more: same as the loop would */
    CHECK(wgllm_eval(g, &got.ids[N_GEN - 1], 1, false) == WGLLM_OK);
    CHECK(wgllm_eval(a, &ref[N_GEN - 1], 1, false) == WGLLM_OK);
    wgllm_token more_a = wgllm_greedy(a);
    collect more = {.stop_after = 0};
    CHECK(wgllm_generate_greedy(g, 1, on_token, &more, false) == 1);
    CHECK_MSG(more.ids[0] == more_a, "%s: continuation differs", name);

    /* the callback stops it: 5 tokens, 4 in the cache */
    wgllm_context_truncate(g, 0);
    CHECK(wgllm_eval(g, p, np, false) == WGLLM_OK);
    collect five = {.stop_after = 5};
    CHECK(wgllm_generate_greedy(g, N_GEN, on_token, &five, false) == 5);
    CHECK(memcmp(five.ids, ref, 5 * sizeof(wgllm_token)) == 0);
    CHECK(wgllm_context_n_past(g) == np + 4);

    /* a full context stops it: the token sampled at the last position is still produced */
    wgllm_context *s = NULL;
    wgllm_context_params cp = wgllm_context_default_params();
    cp.n_ctx = np + 3;
    CHECK(wgllm_context_create(m, &cp, &s, err, sizeof err) == WGLLM_OK);
    if (s) {
        CHECK(wgllm_eval(s, p, np, false) == WGLLM_OK);
        collect full = {.stop_after = 0};
        CHECK(wgllm_generate_greedy(s, N_GEN, on_token, &full, false) == 4);
        CHECK(memcmp(full.ids, ref, 4 * sizeof(wgllm_token)) == 0);
        CHECK(wgllm_context_n_past(s) == np + 3);
        wgllm_context_free(s);
    }
    /* no logits: an error, not a crash */
    wgllm_context *e = NULL;
    CHECK(wgllm_context_create(m, NULL, &e, err, sizeof err) == WGLLM_OK);
    CHECK(wgllm_generate_greedy(e, 4, NULL, NULL, true) == -1);
    CHECK(strstr(wgllm_context_error(e), "no logits") != NULL);
    wgllm_context_free(e);
    printf("%s: %d tokens as the greedy loop; stops by callback and full context\n", name, N_GEN);
    wgllm_context_free(a);
    wgllm_context_free(g);
    wgllm_model_free(m);
}

int main(void) {
    const char *shared = getenv("WGLLM_SHARED");
    char path[1024];
    snprintf(path, sizeof path, "%s/models/stories260K-f32.gguf", shared ? shared : "../shared");
    run(path, WGLLM_BACKEND_CPU, "cpu");
#ifdef WGLLM_HAVE_WEBGPU_BACKEND
    run(path, WGLLM_BACKEND_WEBGPU, "webgpu");
#endif
    CHECK_DONE();
}
