/* Evaluation helpers: the KL base file (round trip, hostile headers), KL statistics,
 * the window rule, and the importance-matrix observer (attach, forward unchanged,
 * detach). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "eval/imatrix.h"
#include "eval/kl_file.h"
#include "eval/kl_stats.h"
#include "eval/perplexity.h"
#include "model/model.h"

static void test_windows(void) {
    char err[200];
    CHECK(wg_ppl_n_windows(10, 4, 2) == 4);
    CHECK(wg_ppl_n_windows(3, 8, 4) == 1);
    CHECK(wg_ppl_n_windows(9, 4, 3) == 3);
    CHECK(wg_ppl_n_windows(4, 4, 1) == 1);
    CHECK(wg_ppl_n_windows(5, 4, 1) == 2);
    CHECK(wg_ppl_check(2, 2, 1, err, sizeof err));
    CHECK(!wg_ppl_check(1, 4, 2, err, sizeof err) && strstr(err, "too short"));
    CHECK(!wg_ppl_check(10, 4, 4, err, sizeof err) && strstr(err, "stride"));
    CHECK(!wg_ppl_check(10, 1, 1, err, sizeof err));
    CHECK(!wg_ppl_check(10, 4, 0, err, sizeof err));
}

static void test_stats(void) {
    wg_mean_acc a = {0};
    const double xs[] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++) wg_mean_add(&a, xs[i]);
    CHECK_NEAR(a.mean, 2.5, 1e-15);
    CHECK_NEAR(wg_mean_stderr(&a), sqrt(5.0 / 3.0) / 2.0, 1e-15); /* sample var 5/3, n 4 */

    const float logits[3] = {1.0f, 2.0f, 3.0f};
    double lp[3];
    double lse = wg_log_softmax(logits, 3, lp);
    CHECK_NEAR(lse, log(exp(1.0) + exp(2.0) + exp(3.0)), 1e-12);
    CHECK_NEAR(exp(lp[0]) + exp(lp[1]) + exp(lp[2]), 1.0, 1e-12);

    /* KL(P||Q) for P = (0.5, 0.5), Q = (0.25, 0.75) */
    float p[2] = {(float)log(0.5), (float)log(0.5)}, q[2] = {(float)log(0.25), (float)log(0.75)};
    double want = 0.5 * (double)(p[0] - q[0]) + 0.5 * (double)(p[1] - q[1]);
    CHECK_NEAR(wg_kl_divergence(p, q, 2), want, 1e-7);
    CHECK(wg_kl_divergence(q, q, 2) == 0.0);
    CHECK(wg_argmax_f32(p, 2) == 0 && wg_argmax_f32(q, 2) == 1);

    wg_kl_stats s = {0};
    for (int i = 0; i < 100; i++) {
        float r[2] = {(float)log(0.5 + i * 0.004), (float)log(0.5 - i * 0.004)};
        CHECK(wg_kl_stats_add(&s, p, r, 2, 0));
    }
    CHECK(s.kl.n == 100 && s.same_top == 100); /* first index on the tie at i = 0 */
    CHECK(s.max == s.values[99]);
    double p99 = wg_kl_stats_percentile(&s, 0.99);
    CHECK(p99 == s.values[98] && s.values[98] <= s.values[99] && s.values[0] <= s.values[1]);
    CHECK_NEAR(s.base_nll.mean, log(2.0), 1e-6);
    wg_kl_stats_free(&s);
}

static void put_u32(uint8_t *b, uint32_t v) { memcpy(b, &v, 4); } /* tests run on little-endian hosts */
static void put_u64(uint8_t *b, uint64_t v) { memcpy(b, &v, 8); }

static void test_kl_file(void) {
    char err[300];
    const char *path = "test_eval.kl";
    const wgllm_token ids[4] = {1, 5, 7, 2};
    CHECK(wg_kl_ids_hash(ids, 4) != wg_kl_ids_hash(ids, 3));
    const wgllm_token other[4] = {1, 5, 7, 3};
    CHECK(wg_kl_ids_hash(ids, 4) != wg_kl_ids_hash(other, 4));

    wg_kl_header h = {.n_vocab = 3, .ctx = 4, .stride = 2, .n_text = 4, .n_scored = 3, .ids_hash = wg_kl_ids_hash(ids, 4)};
    float rows[3][3] = {{-1.0f, -2.0f, -0.5f}, {-0.1f, -3.0f, -30.0f}, {0.0f, -90.0f, -1e30f}};
    wg_kl_writer *w = wg_kl_writer_open(path, &h, err, sizeof err);
    CHECK(w != NULL);
    for (int i = 0; i < 3 && w; i++) CHECK(wg_kl_writer_row(w, rows[i]));
    CHECK(w && wg_kl_writer_close(w, err, sizeof err));

    wg_kl_reader *r = wg_kl_reader_open(path, err, sizeof err);
    CHECK_MSG(r != NULL, "%s", err);
    if (r) {
        const wg_kl_header *g = wg_kl_reader_header(r);
        CHECK(g->version == 1 && g->n_vocab == 3 && g->ctx == 4 && g->stride == 2 && g->n_text == 4 &&
              g->n_scored == 3 && g->ids_hash == h.ids_hash);
        float got[3];
        for (int i = 0; i < 3; i++) CHECK(wg_kl_reader_row(r, got, err, sizeof err) && !memcmp(got, rows[i], sizeof got));
        CHECK(!wg_kl_reader_row(r, got, err, sizeof err) && strstr(err, "no row 3"));
        wg_kl_reader_free(r);
    }

    /* closing with too few rows fails and leaves nothing behind */
    remove(path);
    w = wg_kl_writer_open(path, &h, err, sizeof err);
    CHECK(w && wg_kl_writer_row(w, rows[0]));
    CHECK(w && !wg_kl_writer_close(w, err, sizeof err) && strstr(err, "1 rows written"));
    CHECK(access(path, F_OK) != 0 && access("test_eval.kl.tmp", F_OK) != 0);

    /* hostile headers */
    uint8_t b[WG_KL_HEADER_BYTES] = {'W', 'G', 'K', 'L'};
    put_u32(b + 4, 1);
    put_u32(b + 8, 1u << 24);
    put_u32(b + 12, 4);
    put_u32(b + 16, 2);
    put_u64(b + 24, 1ull << 62);
    put_u64(b + 32, (1ull << 62) - 1);
    wg_kl_header d;
    /* 2^62 rows of 2^26 bytes overflow 64 bits: rejected, not wrapped */
    CHECK(!wg_kl_header_decode(b, sizeof b, 48, &d, err, sizeof err) && strstr(err, "does not match"));
    put_u64(b + 24, 3);
    put_u64(b + 32, 2);
    CHECK(wg_kl_header_decode(b, sizeof b, 48 + 2ull * (1u << 24) * 4, &d, err, sizeof err));
    CHECK(!wg_kl_header_decode(b, sizeof b, 48 + 2ull * (1u << 24) * 4 + 1, &d, err, sizeof err));
    put_u32(b + 8, (1u << 24) + 1);
    CHECK(!wg_kl_header_decode(b, sizeof b, 48, &d, err, sizeof err) && strstr(err, "vocabulary"));
    put_u32(b + 8, 3);
    put_u32(b + 16, 4);
    CHECK(!wg_kl_header_decode(b, sizeof b, 48 + 24, &d, err, sizeof err) && strstr(err, "window"));
    put_u32(b + 16, 2);
    put_u32(b + 20, 9);
    CHECK(!wg_kl_header_decode(b, sizeof b, 48 + 24, &d, err, sizeof err));
    put_u32(b + 20, 0);
    put_u64(b + 32, 3);
    CHECK(!wg_kl_header_decode(b, sizeof b, 48 + 36, &d, err, sizeof err) && strstr(err, "scored rows"));
    CHECK(!wg_kl_header_decode(b, 47, 48, &d, err, sizeof err) && strstr(err, "shorter"));
}

/* The observer must not change what the model computes, must count every matmul
 * input, and must leave the model as it was once detached. */
static void test_imatrix_observer(void) {
    const char *shared = getenv("WGLLM_SHARED");
    CHECK_MSG(shared != NULL, "WGLLM_SHARED is not set");
    if (!shared) return;
    char path[1024], err[300];
    snprintf(path, sizeof path, "%s/models/stories260K-f32.gguf", shared);
    wgllm_model_params mp = wgllm_model_default_params();
    mp.backend = WGLLM_BACKEND_CPU;
    mp.n_threads = 2;
    wgllm_model *m = NULL;
    wgllm_context *c = NULL;
    CHECK_MSG(wgllm_model_load(path, &mp, &m, err, sizeof err) == WGLLM_OK, "%s", err);
    if (!m) return;
    CHECK(wgllm_context_create(m, NULL, &c, err, sizeof err) == WGLLM_OK);
    const wgllm_token ids[7] = {1, 300, 42, 17, 400, 9, 260};
    const int nv = wgllm_n_vocab(m);
    float *plain = malloc(sizeof(float) * (size_t)nv * 7);
    CHECK(wgllm_eval(c, ids, 7, true) == WGLLM_OK);
    for (int i = 0; i < 7; i++) memcpy(plain + (size_t)i * (size_t)nv, wgllm_get_logits(c, i), sizeof(float) * (size_t)nv);

    wg_backend *own = m->backend;
    wg_imatrix_collector *im = wg_imatrix_collector_attach(c, err, sizeof err);
    CHECK(im != NULL && m->backend == own); /* the model is not touched */
    wgllm_context *other = NULL; /* a second context of the model is not observed */
    CHECK(wgllm_context_create(m, NULL, &other, err, sizeof err) == WGLLM_OK);
    CHECK(other && wgllm_eval(other, ids, 7, true) == WGLLM_OK);
    CHECK(wg_imatrix_collector_n_entries(im) == 0);
    wgllm_context_free(other);
    wgllm_context_truncate(c, 0);
    CHECK(wgllm_eval(c, ids, 4, true) == WGLLM_OK); /* two chunks: 4 tokens then 3 */
    CHECK(wgllm_eval(c, ids + 4, 3, true) == WGLLM_OK);
    bool same = true;
    for (int i = 0; i < 3; i++)
        same = same && !memcmp(wgllm_get_logits(c, i), plain + (size_t)(4 + i) * (size_t)nv, sizeof(float) * (size_t)nv);
    CHECK(same);
    wg_imatrix_collector_detach(im);
    int n = wg_imatrix_collector_n_entries(im);
    CHECK(n == 5 * 7 + 1);
    for (int i = 0; i < n; i++) CHECK_MSG(wg_imatrix_collector_entry_count(im, i) == 7, "entry %d: %lld", i, (long long)wg_imatrix_collector_entry_count(im, i));
    wgllm_context_truncate(c, 0);
    CHECK(wgllm_eval(c, ids, 7, true) == WGLLM_OK); /* no longer observed */
    CHECK(wg_imatrix_collector_entry_count(im, 0) == 7);
    wg_imatrix_collector_free(im);
    free(plain);
    wgllm_context_free(c);
    wgllm_model_free(m);
}

typedef struct {
    int calls, rows;
    char first[8][40];
} seen;

static void record(void *user, const char *weight, const float *x, int n_rows, int64_t row_len) {
    seen *s = user;
    if (s->calls < 8) snprintf(s->first[s->calls], sizeof s->first[0], "%s", weight);
    s->calls++;
    if (!strcmp(weight, "blk.0.attn_q.weight") && x && row_len > 0) s->rows += n_rows;
}

/* The public hook: weights named in forward order, only the observed context's rows
 * (also inside a batch step of several contexts), nothing once removed. */
static void test_matmul_observer_hook(void) {
    const char *shared = getenv("WGLLM_SHARED");
    if (!shared) return;
    char path[1024], err[300];
    snprintf(path, sizeof path, "%s/models/stories260K-f32.gguf", shared);
    wgllm_model_params mp = wgllm_model_default_params();
    mp.backend = WGLLM_BACKEND_CPU;
    mp.n_threads = 2;
    wgllm_model *m = NULL;
    wgllm_context *a = NULL, *b = NULL;
    CHECK_MSG(wgllm_model_load(path, &mp, &m, err, sizeof err) == WGLLM_OK, "%s", err);
    if (!m) return;
    CHECK(wgllm_context_create(m, NULL, &a, err, sizeof err) == WGLLM_OK);
    CHECK(wgllm_context_create(m, NULL, &b, err, sizeof err) == WGLLM_OK);
    seen s = {0};
    CHECK(wgllm_context_set_matmul_observer(a, record, &s) == WGLLM_OK);
    const wgllm_token ids[5] = {1, 300, 42, 17, 400};
    CHECK(wgllm_eval(a, ids, 5, false) == WGLLM_OK);
    static const char *const order[8] = {"blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight",
                                         "blk.0.attn_output.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight",
                                         "blk.0.ffn_down.weight", "blk.1.attn_q.weight"};
    for (int i = 0; i < 8; i++) CHECK_MSG(!strcmp(s.first[i], order[i]), "call %d: %s", i, s.first[i]);
    CHECK(s.calls == 5 * 7 + 1 && s.rows == 5);
    const wgllm_token *toks[2] = {ids, ids};
    const int n_tok[2] = {2, 3};
    wgllm_context *both[2] = {b, a};
    CHECK(wgllm_eval_batch(both, toks, n_tok, 2) == WGLLM_OK);
    CHECK_MSG(s.rows == 5 + 3, "rows %d", s.rows); /* a's three tokens, not b's two */
    CHECK(wgllm_context_set_matmul_observer(a, NULL, NULL) == WGLLM_OK);
    const int calls = s.calls;
    CHECK(wgllm_eval(a, ids, 1, false) == WGLLM_OK && s.calls == calls);
    CHECK(wgllm_context_set_matmul_observer(NULL, record, &s) == WGLLM_ERR_INVALID_ARG);
    wgllm_context_free(a);
    wgllm_context_free(b);
    wgllm_model_free(m);
}

int main(void) {
    test_windows();
    test_stats();
    test_kl_file();
    test_imatrix_observer();
    test_matmul_observer_hook();
    CHECK_DONE();
}
