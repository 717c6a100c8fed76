/* wgllm_eval_batch and wgllm_decode_greedy_batch: several sequences per step must give each
 * sequence the logits it gets when evaluated alone, on the CPU and on WebGPU (CI: Mesa's
 * lavapipe). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "wgllm.h"

#define N_SEQ 4
#define N_GEN 12

static float rel_err(const float *a, const float *b, int n) {
    float diff = 0.0f, mx = 0.0f;
    for (int i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (d > diff) diff = d;
        if (fabsf(b[i]) > mx) mx = fabsf(b[i]);
    }
    return mx > 0 ? diff / mx : diff;
}

static const char *k_prompts[N_SEQ] = {"Once upon a time", "The cat", "Lily and Ben went to the park to play",
                                       "A"};

/* Greedy continuation of each prompt, one sequence at a time: ids and the logits of
 * every generated position. */
static void run_alone(wgllm_model *m, int n_vocab, wgllm_token ids[N_SEQ][N_GEN], float *logits) {
    for (int s = 0; s < N_SEQ; s++) {
        wgllm_context *c = NULL;
        char err[256];
        CHECK(wgllm_context_create(m, NULL, &c, err, sizeof err) == WGLLM_OK);
        if (!c) return;
        wgllm_token p[64];
        int64_t np = wgllm_tokenize(m, k_prompts[s], strlen(k_prompts[s]), true, p, 64);
        CHECK(np > 0 && wgllm_eval(c, p, (int)np, false) == WGLLM_OK);
        for (int g = 0; g < N_GEN; g++) {
            const float *l = wgllm_get_logits(c, 0);
            CHECK(l != NULL);
            if (!l) break;
            memcpy(logits + ((size_t)s * N_GEN + g) * (size_t)n_vocab, l, sizeof(float) * (size_t)n_vocab);
            ids[s][g] = wgllm_greedy(c);
            CHECK(wgllm_eval(c, &ids[s][g], 1, false) == WGLLM_OK);
        }
        wgllm_context_free(c);
    }
}

/* The same, all sequences in one batch per step; the prompts are fed in chunks of
 * different sizes while other sequences already decode, as a server would. */
static void run_batched(wgllm_model *m, int n_vocab, wgllm_token ids[N_SEQ][N_GEN], const float *ref,
                        float *worst) {
    wgllm_context *c[N_SEQ] = {0};
    wgllm_token p[N_SEQ][64];
    int np[N_SEQ], fed[N_SEQ] = {0}, gen[N_SEQ] = {0};
    char err[256];
    for (int s = 0; s < N_SEQ; s++) {
        CHECK(wgllm_context_create(m, NULL, &c[s], err, sizeof err) == WGLLM_OK);
        np[s] = (int)wgllm_tokenize(m, k_prompts[s], strlen(k_prompts[s]), true, p[s], 64);
    }
    wgllm_token next[N_SEQ];
    for (int step = 0; step < 200; step++) {
        wgllm_context *bc[N_SEQ];
        const wgllm_token *bt[N_SEQ];
        int bn[N_SEQ], who[N_SEQ], k = 0;
        for (int s = 0; s < N_SEQ; s++) {
            if (gen[s] >= N_GEN) continue;
            if (fed[s] < np[s]) { /* prefill chunk of 1..3 tokens, by sequence */
                int chunk = 1 + s % 3;
                if (chunk > np[s] - fed[s]) chunk = np[s] - fed[s];
                bt[k] = p[s] + fed[s];
                bn[k] = chunk;
            } else {
                bt[k] = &next[s];
                bn[k] = 1;
            }
            bc[k] = c[s];
            who[k++] = s;
        }
        if (k == 0) break;
        CHECK(wgllm_eval_batch(bc, bt, bn, k) == WGLLM_OK);
        /* the greedy ids of the sequences that now have logits, read together, must be
         * what wgllm_greedy gives each */
        wgllm_context *gc[N_SEQ];
        wgllm_token gids[N_SEQ];
        int ng = 0;
        for (int i = 0; i < k; i++)
            if (fed[who[i]] + bn[i] >= np[who[i]]) gc[ng++] = bc[i];
        if (ng > 0) {
            CHECK(wgllm_greedy_batch(gc, ng, gids) == WGLLM_OK);
            for (int i = 0; i < ng; i++) CHECK_MSG(gids[i] == wgllm_greedy(gc[i]), "greedy_batch id %d differs", i);
        }
        for (int i = 0; i < k; i++) {
            int s = who[i];
            if (fed[s] < np[s]) {
                fed[s] += bn[i];
                if (fed[s] < np[s]) continue;
            }
            const float *l = wgllm_get_logits(c[s], 0);
            CHECK(l != NULL);
            if (!l) return;
            float e = rel_err(l, ref + ((size_t)s * N_GEN + gen[s]) * (size_t)n_vocab, n_vocab);
            if (e > *worst) *worst = e;
            next[s] = wgllm_greedy(c[s]);
            ids[s][gen[s]++] = next[s];
        }
    }
    for (int s = 0; s < N_SEQ; s++) {
        CHECK(gen[s] == N_GEN);
        wgllm_context_free(c[s]);
    }
}

/* The same through wgllm_decode_greedy_batch after the prompts: each call feeds every
 * sequence its greedy token. The pipelined state must survive what breaks it: a sequence
 * leaving (step 4), the order changing (step 6), another context's evaluation between two
 * calls (step 8), a read of logits (every step). */
static void run_decoded(wgllm_model *m, int n_vocab, wgllm_token ids[N_SEQ][N_GEN], const float *ref,
                        float *worst) {
    wgllm_context *c[N_SEQ] = {0}, *other = NULL;
    wgllm_token p[N_SEQ][64];
    const wgllm_token *pt[N_SEQ];
    int np[N_SEQ];
    char err[256];
    for (int s = 0; s < N_SEQ; s++) {
        CHECK(wgllm_context_create(m, NULL, &c[s], err, sizeof err) == WGLLM_OK);
        np[s] = (int)wgllm_tokenize(m, k_prompts[s], strlen(k_prompts[s]), true, p[s], 64);
        pt[s] = p[s];
    }
    CHECK(wgllm_context_create(m, NULL, &other, err, sizeof err) == WGLLM_OK);
    CHECK(wgllm_eval_batch(c, pt, np, N_SEQ) == WGLLM_OK);
    int gen[N_SEQ] = {0};
    for (int step = 0; step < N_GEN; step++) {
        wgllm_context *dc[N_SEQ];
        int who[N_SEQ], k = 0;
        for (int s = 0; s < N_SEQ; s++) {
            if (s == 1 && step >= 4) continue; /* sequence 1 stops after 4 tokens */
            who[k++] = s;
        }
        if (step >= 6) /* reversed order */
            for (int i = 0; i < k / 2; i++) {
                int t = who[i];
                who[i] = who[k - 1 - i];
                who[k - 1 - i] = t;
            }
        for (int i = 0; i < k; i++) dc[i] = c[who[i]];
        if (step == 8) {
            wgllm_token t3[3] = {1, 2, 3};
            CHECK(wgllm_eval(other, t3, 3, false) == WGLLM_OK);
        }
        wgllm_token got[N_SEQ];
        CHECK(wgllm_decode_greedy_batch(dc, k, got) == WGLLM_OK);
        for (int i = 0; i < k; i++) {
            int s = who[i];
            ids[s][gen[s]++] = got[i];
            if (gen[s] == N_GEN) continue;
            const float *l = wgllm_get_logits(c[s], 0); /* the logits after that token */
            CHECK(l != NULL);
            if (!l) return;
            float e = rel_err(l, ref + ((size_t)s * N_GEN + gen[s]) * (size_t)n_vocab, n_vocab);
            if (e > *worst) *worst = e;
        }
    }
    CHECK(gen[1] == 4 && gen[0] == N_GEN && gen[3] == N_GEN);
    CHECK(wgllm_context_n_past(c[0]) == np[0] + N_GEN);
    for (int s = 0; s < N_SEQ; s++) wgllm_context_free(c[s]);
    wgllm_context_free(other);
}

static void test_backend(const char *path, wgllm_backend_kind kind, const char *name) {
    wgllm_model_params mp = wgllm_model_default_params();
    mp.backend = kind;
    mp.n_threads = 2;
    wgllm_model *m = NULL;
    char err[512];
    if (wgllm_model_load(path, &mp, &m, err, sizeof err) != WGLLM_OK) {
        CHECK_MSG(0, "%s: cannot load %s: %s", name, path, err);
        return;
    }
    int n_vocab = wgllm_n_vocab(m);
    float *ref = malloc(sizeof(float) * (size_t)N_SEQ * N_GEN * (size_t)n_vocab);
    wgllm_token alone[N_SEQ][N_GEN], batched[N_SEQ][N_GEN];
    run_alone(m, n_vocab, alone, ref);
    float worst = 0.0f;
    run_batched(m, n_vocab, batched, ref, &worst);
    CHECK_MSG(memcmp(alone, batched, sizeof alone) == 0, "%s: batched greedy ids differ", name);
    /* Different kernels (batched matrix products vs one-token ones) sum in different orders;
     * with an f16 KV cache (WebGPU with shader-f16) such a difference can flip the f16
     * rounding of a K or V value (2^-11 relative): measured 1.05e-4 there, 2e-6 on the CPU. */
    float bound = kind == WGLLM_BACKEND_CPU ? 1e-4f : 1e-3f;
    CHECK_MSG(worst <= bound, "%s: logits rel. error %.3g", name, worst);
    printf("%s: %d sequences x %d tokens, batched vs alone: ids equal, worst logits rel. error %.3g\n", name, N_SEQ,
           N_GEN, worst);
    wgllm_token decoded[N_SEQ][N_GEN];
    float worst_decoded = 0.0f;
    run_decoded(m, n_vocab, decoded, ref, &worst_decoded);
    for (int s = 0; s < N_SEQ; s++)
        CHECK_MSG(memcmp(alone[s], decoded[s], sizeof(wgllm_token) * (s == 1 ? 4 : N_GEN)) == 0,
                  "%s: decode_greedy_batch ids of sequence %d differ", name, s);
    CHECK_MSG(worst_decoded <= bound, "%s: decode_greedy_batch logits rel. error %.3g", name, worst_decoded);
    printf("%s: decode_greedy_batch vs alone: ids equal, worst logits rel. error %.3g\n", name, worst_decoded);

    /* Bad input changes nothing. */
    wgllm_context *a = NULL, *b = NULL;
    wgllm_context_params cp = wgllm_context_default_params();
    cp.n_ctx = 8;
    CHECK(wgllm_context_create(m, &cp, &a, err, sizeof err) == WGLLM_OK);
    CHECK(wgllm_context_create(m, &cp, &b, err, sizeof err) == WGLLM_OK);
    wgllm_token t5[5] = {1, 2, 3, 4, 5}, bad[1] = {n_vocab};
    wgllm_context *both[2] = {a, b};
    const wgllm_token *tk[2] = {t5, t5};
    int nn[2] = {5, 5};
    CHECK(wgllm_eval_batch(both, tk, nn, 2) == WGLLM_OK);
    nn[0] = 1;
    nn[1] = 4; /* b: 9 > 8 positions */
    CHECK(wgllm_eval_batch(both, tk, nn, 2) == WGLLM_ERR_CONTEXT_FULL);
    CHECK(wgllm_context_n_past(a) == 5 && wgllm_context_n_past(b) == 5);
    CHECK(strstr(wgllm_context_error(b), "do not fit") != NULL);
    tk[1] = bad;
    nn[0] = nn[1] = 1;
    CHECK(wgllm_eval_batch(both, tk, nn, 2) == WGLLM_ERR_INVALID_ARG);
    CHECK(wgllm_context_n_past(a) == 5);
    wgllm_context *twice[2] = {a, a};
    tk[1] = t5;
    CHECK(wgllm_eval_batch(twice, tk, nn, 2) == WGLLM_ERR_INVALID_ARG);
    CHECK(wgllm_eval_batch(both, tk, nn, 0) == WGLLM_ERR_INVALID_ARG);
    wgllm_token ids2[2];
    CHECK(wgllm_greedy_batch(both, 0, ids2) == WGLLM_ERR_INVALID_ARG);
    CHECK(wgllm_greedy_batch(NULL, 2, ids2) == WGLLM_ERR_INVALID_ARG);
    /* decode_greedy_batch: a context twice, one without logits, a full one: nothing changes */
    CHECK(wgllm_decode_greedy_batch(twice, 2, ids2) == WGLLM_ERR_INVALID_ARG);
    CHECK(wgllm_decode_greedy_batch(both, 0, ids2) == WGLLM_ERR_INVALID_ARG);
    wgllm_context *fresh = NULL;
    CHECK(wgllm_context_create(m, &cp, &fresh, err, sizeof err) == WGLLM_OK);
    wgllm_context *with_fresh[2] = {a, fresh};
    CHECK(wgllm_decode_greedy_batch(with_fresh, 2, ids2) == WGLLM_ERR_INVALID_ARG);
    CHECK(strstr(wgllm_context_error(fresh), "no logits") != NULL);
    CHECK(wgllm_context_n_past(a) == 5);
    nn[0] = nn[1] = 3; /* a and b: 8 of 8 positions */
    CHECK(wgllm_eval_batch(both, tk, nn, 2) == WGLLM_OK);
    CHECK(wgllm_decode_greedy_batch(both, 2, ids2) == WGLLM_ERR_CONTEXT_FULL);
    CHECK(wgllm_context_n_past(a) == 8 && wgllm_context_n_past(b) == 8);
    wgllm_context_truncate(a, 7);
    wgllm_context_truncate(b, 7);
    CHECK(wgllm_decode_greedy_batch(both, 2, ids2) == WGLLM_OK);
    CHECK(wgllm_context_n_past(a) == 8 && ids2[0] >= 0 && ids2[0] < n_vocab);
    wgllm_context_free(fresh);
    wgllm_context_free(a);
    wgllm_context_free(b);
    free(ref);
    wgllm_model_free(m);
}

int main(void) {
    const char *shared = getenv("WGLLM_SHARED");
    char path[1024];
    snprintf(path, sizeof path, "%s/models/stories260K-f32.gguf", shared ? shared : "../shared");
    test_backend(path, WGLLM_BACKEND_CPU, "cpu");
#ifdef WGLLM_HAVE_WEBGPU_BACKEND
    test_backend(path, WGLLM_BACKEND_WEBGPU, "webgpu");
#endif
    CHECK_DONE();
}
