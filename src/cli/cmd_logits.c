/* `wgllm logits`: raw logits of a token sequence, for tests and debugging. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "wgllm.h"

static int parse_ids(const char *s, wgllm_token **out, int *n_out) {
    size_t cap = 16;
    int n = 0;
    wgllm_token *ids = malloc(cap * sizeof *ids);
    while (ids && *s) {
        while (*s == ' ' || *s == ',' || *s == '\n' || *s == '\t') s++;
        if (!*s) break;
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > INT32_MAX) {
            free(ids);
            return -1;
        }
        if ((size_t)n == cap) {
            wgllm_token *p = realloc(ids, 2 * cap * sizeof *ids);
            if (!p) break;
            ids = p;
            cap *= 2;
        }
        ids[n++] = (wgllm_token)v;
        s = end;
    }
    if (!ids) return -1;
    *out = ids;
    *n_out = n;
    return 0;
}

static const char k_logits_usage[] =
    "usage: wgllm logits -m FILE --ids \"1 2 3\" -o OUT.f32 [--batch B] [-t N] [-c CTX] [--backend cpu|webgpu|auto]\n"
    "                    [--device N]\n"
    "Writes the float32 logits of every id (one row of n_vocab per id), evaluated B ids at a time\n"
    "(default 1) on the CPU unless --backend says otherwise.\n";

int cmd_logits(int argc, char **argv) {
    const char *model_path = NULL, *ids_str = NULL, *out_path = NULL, *v;
    long long batch = 1, threads = 0, n_ctx = 0, device = -1;
    wgllm_backend_kind backend = WGLLM_BACKEND_CPU; /* tests name the backend they check */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s", k_logits_usage);
            return 0;
        } else if (!strcmp(a, "-m")) {
            if (!(model_path = arg_value(argc, argv, &i, "logits"))) return 2;
        } else if (!strcmp(a, "--ids")) {
            if (!(ids_str = arg_value(argc, argv, &i, "logits"))) return 2;
        } else if (!strcmp(a, "-o")) {
            if (!(out_path = arg_value(argc, argv, &i, "logits"))) return 2;
        } else if (!strcmp(a, "--batch")) {
            if (!(v = arg_value(argc, argv, &i, "logits")) || !opt_int("logits", a, v, 1, 1 << 20, &batch)) return 2;
        } else if (!strcmp(a, "-t")) {
            if (!(v = arg_value(argc, argv, &i, "logits")) || !opt_int("logits", a, v, 1, 1024, &threads)) return 2;
        } else if (!strcmp(a, "--backend")) {
            if (!(v = arg_value(argc, argv, &i, "logits")) || !opt_backend("logits", a, v, &backend)) return 2;
        } else if (!strcmp(a, "--device")) {
            if (!(v = arg_value(argc, argv, &i, "logits")) || !opt_int("logits", a, v, 0, 64, &device)) return 2;
        } else if (!strcmp(a, "-c")) {
            if (!(v = arg_value(argc, argv, &i, "logits")) || !opt_int("logits", a, v, 1, 1 << 24, &n_ctx)) return 2;
        } else {
            return usage_error("logits", "unknown option '%s'", a);
        }
    }
    wgllm_token *ids = NULL;
    int n = 0;
    if (!model_path || !ids_str || !out_path) return usage_error("logits", "-m, --ids and -o are required");
    if (parse_ids(ids_str, &ids, &n) != 0 || n == 0) {
        free(ids);
        return bad_value("logits", "--ids", ids_str, "expected a list of non-negative token ids");
    }
    char err[512];
    int rc = 1;
    wgllm_model *m = NULL;
    wgllm_context *c = NULL;
    FILE *out = NULL;
    wgllm_model_params mp = wgllm_model_default_params();
    mp.n_threads = (int)threads;
    mp.backend = backend;
    mp.device = (int)device;
    wgllm_context_params cp = wgllm_context_default_params();
    cp.n_ctx = (int)n_ctx;
    if (wgllm_model_load(model_path, &mp, &m, err, sizeof err) != WGLLM_OK ||
        wgllm_context_create(m, &cp, &c, err, sizeof err) != WGLLM_OK) {
        fprintf(stderr, "wgllm logits: error: %s\n", err);
        goto done;
    }
    if (!(out = fopen(out_path, "wb"))) {
        fprintf(stderr, "wgllm logits: error: cannot write '%s'\n", out_path);
        goto done;
    }
    int n_vocab = wgllm_n_vocab(m);
    for (int done = 0; done < n; done += (int)batch) {
        int k = n - done < batch ? n - done : (int)batch;
        if (wgllm_eval(c, ids + done, k, true) != WGLLM_OK) {
            fprintf(stderr, "wgllm logits: error: %s\n", wgllm_context_error(c));
            goto done;
        }
        for (int i = 0; i < k; i++) fwrite(wgllm_get_logits(c, i), sizeof(float), (size_t)n_vocab, out);
    }
    if (fclose(out) != 0) {
        out = NULL;
        fprintf(stderr, "wgllm logits: error: writing '%s' failed\n", out_path);
        goto done;
    }
    out = NULL;
    rc = 0;
done:
    if (out) fclose(out);
    free(ids);
    wgllm_context_free(c);
    wgllm_model_free(m);
    return rc;
}
