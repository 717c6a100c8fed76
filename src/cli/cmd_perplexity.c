/* `wgllm perplexity`: perplexity of a model over a text file, and KL divergence
 * against a base model's saved log-probabilities. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "eval/kl_file.h"
#include "eval/kl_stats.h"
#include "eval/perplexity.h"
#include "wgllm.h"

#define PPL_DEFAULT_CTX 512

static void ppl_usage(FILE *out) {
    fprintf(out,
            "usage: wgllm perplexity -m FILE -f TEXT [options]\n"
            "  --ctx N              tokens per window (default: the model's context, at most 512)\n"
            "  --stride S           tokens between window starts, 1..ctx-1 (default ctx/2)\n"
            "  -t THREADS           CPU threads (default: all online CPUs)\n"
            "  --backend cpu|webgpu|auto  compute backend (default auto)\n"
            "  --device N           WebGPU adapter (see `wgllm devices`)\n"
            "  --save-logits OUT    write every scored token's log-probabilities (a KL base file)\n"
            "  --kl-base BASE       compare with a KL base file made from the same text: KL(base||model),\n"
            "                       top-token agreement; ctx and stride default to the base's\n"
            "  --json               one JSON object instead of text\n"
            "Window rule: the text is tokenized once, with BOS (N tokens). Window k covers tokens\n"
            "[k*S, min(k*S+ctx, N)), evaluated from an empty cache. The first window scores all its\n"
            "tokens but the first; each later one scores only the tokens past the previous window's\n"
            "end. Every token but the first is scored exactly once (N-1 tokens), each with at least\n"
            "ctx-S tokens of context outside the first window. PPL = exp(mean NLL); its +/- is\n"
            "PPL times the standard error of the mean NLL.\n");
}

typedef struct ppl_opts {
    const char *model, *text, *save, *kl_base;
    long long ctx, stride, threads, device;
    wgllm_backend_kind backend;
    bool json;
} ppl_opts;

static int parse(int argc, char **argv, ppl_opts *o) {
    memset(o, 0, sizeof *o);
    o->device = -1;
    o->backend = WGLLM_BACKEND_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
#define VALUE() \
    if (!(v = arg_value(argc, argv, &i, "perplexity"))) return 2
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            ppl_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            VALUE();
            o->model = v;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            VALUE();
            o->text = v;
        } else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) {
            VALUE();
            if (!opt_int("perplexity", a, v, 2, 1 << 24, &o->ctx)) return 2;
        } else if (!strcmp(a, "--stride")) {
            VALUE();
            if (!opt_int("perplexity", a, v, 1, 1 << 24, &o->stride)) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            VALUE();
            if (!opt_int("perplexity", a, v, 1, 1024, &o->threads)) return 2;
        } else if (!strcmp(a, "--backend")) {
            VALUE();
            if (!opt_backend("perplexity", a, v, &o->backend)) return 2;
        } else if (!strcmp(a, "--device")) {
            VALUE();
            if (!opt_int("perplexity", a, v, 0, 64, &o->device)) return 2;
        } else if (!strcmp(a, "--save-logits")) {
            VALUE();
            o->save = v;
        } else if (!strcmp(a, "--kl-base")) {
            VALUE();
            o->kl_base = v;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else {
            return usage_error("perplexity", "unknown option '%s'", a);
        }
#undef VALUE
    }
    if (!o->model || !o->text) {
        return usage_error("perplexity", "%s", !o->model ? "no model given (-m FILE)" : "no text given (-f TEXT)");
    }
    if (o->ctx && o->stride && o->stride >= o->ctx) {
        return usage_error("perplexity", "--stride %lld must be smaller than --ctx %lld", o->stride, o->ctx);
    }
    return -1;
}

/* State shared with the per-token callback. */
typedef struct ppl_run {
    wg_mean_acc nll;
    double *lp;      /* log-softmax in double */
    float *lp_f32;   /* the same rounded to float: what is saved and compared */
    float *base_lp;  /* the base file's row */
    wg_kl_writer *save;
    wg_kl_reader *base;
    wg_kl_stats kl;
} ppl_run;

static bool score_token(void *user, int64_t index, wgllm_token target, const float *logits, int n_vocab, char *err,
                        size_t err_size) {
    ppl_run *r = user;
    double lse = wg_log_softmax(logits, n_vocab, r->lp);
    if (!isfinite(lse)) {
        snprintf(err, err_size, "non-finite logits predicting token %lld", (long long)index);
        return false;
    }
    wg_mean_add(&r->nll, -r->lp[target]);
    if (!r->save && !r->base) return true;
    for (int i = 0; i < n_vocab; i++) r->lp_f32[i] = r->lp[i] > -1e30 ? (float)r->lp[i] : -1e30f;
    if (r->save && !wg_kl_writer_row(r->save, r->lp_f32)) {
        snprintf(err, err_size, "writing the log-probabilities failed");
        return false;
    }
    if (r->base) {
        if (!wg_kl_reader_row(r->base, r->base_lp, err, err_size)) return false;
        if (!wg_kl_stats_add(&r->kl, r->base_lp, r->lp_f32, n_vocab, target)) {
            snprintf(err, err_size, "out of memory");
            return false;
        }
    }
    return true;
}

static void print_results(const ppl_opts *o, ppl_run *r, int64_t n_tokens, int ctx, int stride) {
    const double ppl = exp(r->nll.mean), nll_se = wg_mean_stderr(&r->nll);
    const int64_t windows = wg_ppl_n_windows(n_tokens, ctx, stride);
    double p99 = 0, same_pct = 0, base_ppl = 0, kl_se = 0;
    if (r->base) {
        p99 = wg_kl_stats_percentile(&r->kl, 0.99);
        same_pct = 100.0 * (double)r->kl.same_top / (double)r->kl.kl.n;
        base_ppl = exp(r->kl.base_nll.mean);
        kl_se = wg_mean_stderr(&r->kl.kl);
    }
    if (o->json) {
        printf("{\"tokens\":%lld,\"scored\":%lld,\"windows\":%lld,\"ctx\":%d,\"stride\":%d,\"mean_nll\":%.17g,"
               "\"mean_nll_se\":%.17g,\"ppl\":%.17g,\"ppl_se\":%.17g",
               (long long)n_tokens, (long long)r->nll.n, (long long)windows, ctx, stride, r->nll.mean, nll_se, ppl,
               ppl * nll_se);
        if (r->base)
            printf(",\"kl\":{\"base_ppl\":%.17g,\"mean\":%.17g,\"mean_se\":%.17g,\"max\":%.17g,\"p99\":%.17g,"
                   "\"same_top\":%lld,\"same_top_pct\":%.17g}",
                   base_ppl, r->kl.kl.mean, kl_se, r->kl.max, p99, (long long)r->kl.same_top, same_pct);
        printf("}\n");
        return;
    }
    printf("tokens: %lld (with BOS), scored: %lld, windows: %lld (ctx %d, stride %d)\n", (long long)n_tokens,
           (long long)r->nll.n, (long long)windows, ctx, stride);
    printf("mean NLL: %.6f +/- %.6f nats\n", r->nll.mean, nll_se);
    printf("perplexity: %.4f +/- %.4f\n", ppl, ppl * nll_se);
    if (r->base) {
        printf("base perplexity: %.4f\n", base_ppl);
        printf("KL divergence: mean %.6f +/- %.6f, max %.6f, 99th percentile %.6f\n", r->kl.kl.mean, kl_se, r->kl.max,
               p99);
        printf("same top token: %.2f%% (%lld of %lld)\n", same_pct, (long long)r->kl.same_top, (long long)r->kl.kl.n);
    }
}

/* Checks the base file against this run: same vocabulary, same text, same windows. */
static bool check_base(const wg_kl_header *h, int n_vocab, const wgllm_token *ids, int64_t n, int ctx, int stride,
                       const char *path, char *err, size_t err_size) {
    if (h->n_vocab != (uint32_t)n_vocab) {
        snprintf(err, err_size, "KL base '%s' has a vocabulary of %u tokens, this model %d", path, h->n_vocab, n_vocab);
        return false;
    }
    if (h->n_text != (uint64_t)n || h->ids_hash != wg_kl_ids_hash(ids, n)) {
        snprintf(err, err_size,
                 "KL base '%s' was computed on a different text (%llu tokens, this text %lld, or the token ids differ)",
                 path, (unsigned long long)h->n_text, (long long)n);
        return false;
    }
    if (h->ctx != (uint32_t)ctx || h->stride != (uint32_t)stride) {
        snprintf(err, err_size, "KL base '%s' was computed with ctx %u, stride %u; this run uses ctx %d, stride %d",
                 path, h->ctx, h->stride, ctx, stride);
        return false;
    }
    return true;
}

int cmd_perplexity(int argc, char **argv) {
    ppl_opts o;
    int prc = parse(argc, argv, &o);
    if (prc >= 0) return prc;
    char err[512];
    int rc = 1;
    size_t text_len = 0;
    char *text = NULL;
    wgllm_model *m = NULL;
    wgllm_context *c = NULL;
    wgllm_token *ids = NULL;
    ppl_run r = {0};

    if (!(text = read_file_bytes(o.text, &text_len, err, sizeof err))) goto fail;
    if (o.kl_base && !(r.base = wg_kl_reader_open(o.kl_base, err, sizeof err))) goto fail;
    wgllm_model_params mp = wgllm_model_default_params();
    mp.n_threads = (int)o.threads;
    mp.backend = o.backend;
    mp.device = (int)o.device;
    if (wgllm_model_load(o.model, &mp, &m, err, sizeof err) != WGLLM_OK) goto fail;
    wgllm_model_info info;
    wgllm_model_get_info(m, &info);
    if (!o.json) fprintf(stderr, "backend: %s\n", info.backend);

    int64_t n = wgllm_tokenize(m, text, text_len, true, NULL, 0);
    if (n < 0 || !(ids = malloc(sizeof *ids * (size_t)(n + 1))) || wgllm_tokenize(m, text, text_len, true, ids, n) != n) {
        snprintf(err, sizeof err, "cannot tokenize '%s'", o.text);
        goto fail;
    }

    /* Window: explicit options, else the base file's, else the defaults. */
    const wg_kl_header *bh = r.base ? wg_kl_reader_header(r.base) : NULL;
    long long ctx = o.ctx ? o.ctx : bh ? (long long)bh->ctx : (info.n_ctx_train < PPL_DEFAULT_CTX ? info.n_ctx_train : PPL_DEFAULT_CTX);
    long long stride = o.stride ? o.stride : bh && !o.ctx ? (long long)bh->stride : ctx / 2;
    if (ctx > info.n_ctx_train) {
        snprintf(err, sizeof err, "--ctx %lld exceeds the model's training context %d", ctx, info.n_ctx_train);
        goto fail;
    }
    if (!wg_ppl_check(n, (int)ctx, (int)stride, err, sizeof err)) goto fail;
    if (bh && !check_base(bh, info.n_vocab, ids, n, (int)ctx, (int)stride, o.kl_base, err, sizeof err)) goto fail;

    wgllm_context_params cp = wgllm_context_default_params();
    cp.n_ctx = (int)ctx;
    if (wgllm_context_create(m, &cp, &c, err, sizeof err) != WGLLM_OK) goto fail;
    r.lp = malloc(sizeof *r.lp * (size_t)info.n_vocab);
    r.lp_f32 = malloc(sizeof *r.lp_f32 * (size_t)info.n_vocab);
    r.base_lp = malloc(sizeof *r.base_lp * (size_t)info.n_vocab);
    if (!r.lp || !r.lp_f32 || !r.base_lp) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    if (o.save) {
        wg_kl_header h = {.n_vocab = (uint32_t)info.n_vocab, .ctx = (uint32_t)ctx, .stride = (uint32_t)stride,
                          .n_text = (uint64_t)n, .n_scored = (uint64_t)(n - 1), .ids_hash = wg_kl_ids_hash(ids, n)};
        if (!(r.save = wg_kl_writer_open(o.save, &h, err, sizeof err))) goto fail;
    }
    double t0 = now_seconds();
    if (!wg_ppl_run(m, c, ids, n, (int)ctx, (int)stride, score_token, &r, err, sizeof err)) goto fail;
    double dt = now_seconds() - t0;
    if (r.save) {
        wg_kl_writer *w = r.save;
        r.save = NULL;
        if (!wg_kl_writer_close(w, err, sizeof err)) goto fail;
    }
    print_results(&o, &r, n, (int)ctx, (int)stride);
    if (!o.json) fprintf(stderr, "evaluated in %.2f s\n", dt);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "wgllm perplexity: error: %s\n", err);
done:
    if (r.save) wg_kl_writer_abort(r.save);
    wg_kl_reader_free(r.base);
    wg_kl_stats_free(&r.kl);
    free(r.lp);
    free(r.lp_f32);
    free(r.base_lp);
    free(ids);
    free(text);
    wgllm_context_free(c);
    wgllm_model_free(m);
    return rc;
}
