/* `wgllm imatrix`: importance matrix of a model over a calibration text, for
 * `wgllm quantize --imatrix`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "eval/imatrix.h"
#include "wgllm.h"

#define IMATRIX_DEFAULT_CTX 512

static void imatrix_usage(FILE *out) {
    fprintf(out,
            "usage: wgllm imatrix -m FILE -f TEXT -o OUT.gguf [options]\n"
            "  --ctx N        tokens per chunk (default: the model's context, at most 512)\n"
            "  --chunks K     evaluate at most the first K chunks (default: all)\n"
            "  -t THREADS     CPU threads (default: all online CPUs)\n"
            "The text is tokenized once, with BOS, and cut into consecutive chunks of N tokens\n"
            "(the last one may be shorter); each chunk is evaluated from an empty cache on the CPU.\n"
            "For every weight matrix NAME the output holds NAME.in_sum2 (sum over tokens of the\n"
            "squared input of each column) and NAME.counts (tokens summed).\n");
}

typedef struct imatrix_opts {
    const char *model, *text, *out;
    long long ctx, chunks, threads;
} imatrix_opts;

static int parse(int argc, char **argv, imatrix_opts *o) {
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
#define VALUE() \
    if (!(v = arg_value(argc, argv, &i, "imatrix"))) return 2
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            imatrix_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            VALUE();
            o->model = v;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            VALUE();
            o->text = v;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            VALUE();
            o->out = v;
        } else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) {
            VALUE();
            if (!opt_int("imatrix", a, v, 1, 1 << 24, &o->ctx)) return 2;
        } else if (!strcmp(a, "--chunks")) {
            VALUE();
            if (!opt_int("imatrix", a, v, 1, 1LL << 40, &o->chunks)) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            VALUE();
            if (!opt_int("imatrix", a, v, 1, 1024, &o->threads)) return 2;
        } else {
            return usage_error("imatrix", "unknown option '%s'", a);
        }
#undef VALUE
    }
    if (!o->model || !o->text || !o->out) {
        return usage_error("imatrix", "%s",
                           !o->model ? "no model given (-m FILE)"
                           : !o->text ? "no text given (-f TEXT)"
                                      : "no output given (-o OUT.gguf)");
    }
    return -1;
}

int cmd_imatrix(int argc, char **argv) {
    imatrix_opts o;
    int prc = parse(argc, argv, &o);
    if (prc >= 0) return prc;
    char err[512];
    int rc = 1;
    size_t text_len = 0;
    char *text = NULL;
    wgllm_model *m = NULL;
    wgllm_context *c = NULL;
    wgllm_token *ids = NULL;
    wg_imatrix_collector *im = NULL;

    if (!(text = read_file_bytes(o.text, &text_len, err, sizeof err))) goto fail;
    wgllm_model_params mp = wgllm_model_default_params();
    mp.backend = WGLLM_BACKEND_CPU; /* the observer reads every matmul input back */
    mp.n_threads = (int)o.threads;
    if (wgllm_model_load(o.model, &mp, &m, err, sizeof err) != WGLLM_OK) goto fail;
    wgllm_model_info info;
    wgllm_model_get_info(m, &info);
    int64_t n = wgllm_tokenize(m, text, text_len, true, NULL, 0);
    if (n < 0 || !(ids = malloc(sizeof *ids * (size_t)(n + 1))) || wgllm_tokenize(m, text, text_len, true, ids, n) != n) {
        snprintf(err, sizeof err, "cannot tokenize '%s'", o.text);
        goto fail;
    }
    if (n < 2) {
        snprintf(err, sizeof err, "text too short: %lld token with BOS, at least 2 are needed", (long long)n);
        goto fail;
    }
    long long ctx = o.ctx ? o.ctx : (info.n_ctx_train < IMATRIX_DEFAULT_CTX ? info.n_ctx_train : IMATRIX_DEFAULT_CTX);
    if (ctx > info.n_ctx_train) {
        snprintf(err, sizeof err, "--ctx %lld exceeds the model's training context %d", ctx, info.n_ctx_train);
        goto fail;
    }
    wgllm_context_params cp = wgllm_context_default_params();
    cp.n_ctx = (int)ctx;
    if (wgllm_context_create(m, &cp, &c, err, sizeof err) != WGLLM_OK) goto fail;
    if (!(im = wg_imatrix_collector_attach(c, err, sizeof err))) goto fail;

    int64_t n_chunks = (n + ctx - 1) / ctx, tokens = 0;
    if (o.chunks && o.chunks < n_chunks) n_chunks = o.chunks;
    double t0 = now_seconds();
    for (int64_t k = 0; k < n_chunks; k++) {
        int64_t start = k * ctx, len = n - start < ctx ? n - start : ctx;
        wgllm_context_truncate(c, 0);
        /* all_logits: the output matrix then sees every token, like the others */
        if (wgllm_eval(c, ids + start, (int)len, true) != WGLLM_OK) {
            snprintf(err, sizeof err, "evaluating chunk %lld: %s", (long long)k, wgllm_context_error(c));
            goto fail;
        }
        tokens += len;
    }
    wg_imatrix_collector_detach(im);
    const char *datasets[1] = {o.text};
    if (!wg_imatrix_collector_write(im, o.out, (uint32_t)n_chunks, (uint32_t)ctx, datasets, 1, err, sizeof err)) goto fail;
    fprintf(stderr, "imatrix: %lld chunks of up to %lld tokens (%lld tokens), %d matrices, %.2f s -> %s\n",
            (long long)n_chunks, ctx, (long long)tokens, wg_imatrix_collector_n_entries(im), now_seconds() - t0, o.out);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "wgllm imatrix: error: %s\n", err);
done:
    wg_imatrix_collector_free(im);
    free(ids);
    free(text);
    wgllm_context_free(c);
    wgllm_model_free(m);
    return rc;
}
