#include "cli/gen_opts.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"

void gen_opts_defaults(gen_opts *g, long long n_predict, long long n_predict_min) {
    memset(g, 0, sizeof *g);
    g->n_predict = n_predict;
    g->n_predict_min = n_predict_min;
    g->device = -1;
    g->backend = WGLLM_BACKEND_AUTO;
    g->sp = wgllm_sampler_default_params();
}

void gen_opts_usage(FILE *out) {
    fprintf(out,
            "  --temp T             temperature, 0 = greedy (default 0.8)\n"
            "  --top-k K            keep the K most likely tokens, 0 = off (default 40)\n"
            "  --top-p P            nucleus sampling, 1 = off (default 0.95)\n"
            "  --min-p P            drop tokens below P x the top probability, 0 = off (default 0.05)\n"
            "  --repeat-penalty R   penalise recent tokens, 1 = off (default 1.0)\n"
            "  --repeat-last-n N    window of the repeat penalty (default 64)\n"
            "  --seed S             random seed (default: from the clock, printed)\n"
            "  -t THREADS           CPU threads (default: all online CPUs)\n"
            "  -c CTX               context size (default: the model's)\n"
            "  --backend cpu|webgpu|auto  compute backend (default auto: a GPU if present, else the CPU)\n"
            "  --device N           WebGPU adapter (see `wgllm devices`)\n"
            "  --ignore-eos         keep generating after an end-of-generation token (eos, <|eot_id|>, ...)\n");
}

/* A float option: finite, and lo <= v <= hi (lo_open: lo < v). */
static bool opt_float(const char *cmd, const char *opt, const char *v, float lo, bool lo_open, float hi,
                      const char *expect, float *out) {
    float f;
    if (!arg_float(v, &f) || f < lo || (lo_open && !(f > lo)) || f > hi) {
        bad_value(cmd, opt, v, expect);
        return false;
    }
    *out = f;
    return true;
}

int gen_opts_parse(gen_opts *g, const char *cmd, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    long long n;
    const float inf = 1e30f;
#define VALUE() \
    if (!(v = arg_value(argc, argv, i, cmd))) return 2
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        VALUE();
        g->model = v;
    } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
        VALUE();
        if (!opt_int(cmd, a, v, g->n_predict_min, 1 << 30, &g->n_predict)) return 2;
    } else if (!strcmp(a, "--temp")) {
        VALUE();
        if (!opt_float(cmd, a, v, 0, false, inf, "expected a number >= 0", &g->sp.temperature)) return 2;
    } else if (!strcmp(a, "--top-k")) {
        VALUE();
        if (!opt_int(cmd, a, v, 0, 1 << 30, &n)) return 2;
        g->sp.top_k = (int)n;
    } else if (!strcmp(a, "--top-p")) {
        VALUE();
        if (!opt_float(cmd, a, v, 0, true, 1, "expected a number in (0, 1]", &g->sp.top_p)) return 2;
    } else if (!strcmp(a, "--min-p")) {
        VALUE();
        if (!opt_float(cmd, a, v, 0, false, 1, "expected a number in [0, 1]", &g->sp.min_p)) return 2;
    } else if (!strcmp(a, "--repeat-penalty")) {
        VALUE();
        if (!opt_float(cmd, a, v, 0, true, inf, "expected a number > 0", &g->sp.repeat_penalty)) return 2;
    } else if (!strcmp(a, "--repeat-last-n")) {
        VALUE();
        if (!opt_int(cmd, a, v, 0, 1 << 20, &n)) return 2;
        g->sp.repeat_last_n = (int)n;
    } else if (!strcmp(a, "--seed")) {
        VALUE();
        if (!opt_int(cmd, a, v, 0, INT64_MAX, &n)) return 2;
        g->sp.seed = (uint64_t)n;
        g->seed_given = true;
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        VALUE();
        if (!opt_int(cmd, a, v, 1, 1024, &g->threads)) return 2;
    } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
        VALUE();
        if (!opt_int(cmd, a, v, 1, 1 << 24, &g->n_ctx)) return 2;
    } else if (!strcmp(a, "--backend")) {
        VALUE();
        if (!opt_backend(cmd, a, v, &g->backend)) return 2;
    } else if (!strcmp(a, "--device")) {
        VALUE();
        if (!opt_int(cmd, a, v, 0, 64, &g->device)) return 2;
    } else if (!strcmp(a, "--ignore-eos")) {
        g->ignore_eos = true;
    } else {
        return 0;
    }
#undef VALUE
    return 1;
}

int gen_open(gen_opts *g, const char *cmd, wgllm_model **model, wgllm_context **ctx, wgllm_sampler **smp) {
    *model = NULL;
    *ctx = NULL;
    *smp = NULL;
    if (!g->seed_given) {
        g->sp.seed = (uint64_t)time(NULL);
        if (g->sp.temperature > 0) fprintf(stderr, "seed: %llu\n", (unsigned long long)g->sp.seed);
    }
    char err[512];
    wgllm_model_params mp = wgllm_model_default_params();
    mp.n_threads = (int)g->threads;
    mp.backend = g->backend;
    mp.device = (int)g->device;
    if (wgllm_model_load(g->model, &mp, model, err, sizeof err) != WGLLM_OK) goto fail;
    wgllm_model_info minfo;
    wgllm_model_get_info(*model, &minfo);
    fprintf(stderr, "backend: %s\n", minfo.backend);
    wgllm_context_params cp = wgllm_context_default_params();
    cp.n_ctx = (int)g->n_ctx;
    if (wgllm_context_create(*model, &cp, ctx, err, sizeof err) != WGLLM_OK) goto fail;
    if (!(*smp = wgllm_sampler_create(&g->sp, err, sizeof err))) {
        fprintf(stderr, "wgllm %s: error: %s\n", cmd, err);
        wgllm_context_free(*ctx);
        wgllm_model_free(*model);
        *ctx = NULL;
        *model = NULL;
        return 2;
    }
    return 0;
fail:
    fprintf(stderr, "wgllm %s: error: %s\n", cmd, err);
    wgllm_context_free(*ctx);
    wgllm_model_free(*model);
    *ctx = NULL;
    *model = NULL;
    return 1;
}
