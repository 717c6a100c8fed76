/* `wgllm bench`: prompt-processing and generation speed, time to first token
 * and peak memory, as a table and as one JSON line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/args.h"
#include "cli/bench_parallel.h"
#include "cli/commands.h"
#include "wgllm.h"

static void bench_usage(FILE *out) {
    fprintf(out, "usage: wgllm bench -m FILE [-p PROMPT_TOKENS=512] [-n GEN_TOKENS=128] [--reps R=3] [-t THREADS]\n"
                 "                   [-d DEPTH=0] [--backend cpu|webgpu|auto] [--device N] [--parallel N,N,...] [--json]\n"
                 "-p/-n: defaults that do not fit the model's context shrink to fit (said on stderr);\n"
                 "       values given that do not fit are an error\n"
                 "-d: DEPTH tokens already in the KV cache (filled once, untimed) before each pp and tg test\n"
                 "--parallel: also the aggregate generation speed of N streams decoding together (median of --reps)\n"
                 "            (continuous batching; a %d-token prompt each, -n tokens generated)\n",
            PAR_PROMPT);
}

/* Fits the defaults of -p and -n into a context of n_ctx tokens (1 + the number of
 * tokens a test evaluates, past the depth); values the user gave stay as they are.
 * false if they cannot fit. */
static bool fit_context(long long *n_prompt, long long *n_gen, bool p_given, bool n_given, int n_ctx) {
    if (*n_prompt + *n_gen <= n_ctx) return true;
    if (!n_given) *n_gen = p_given ? n_ctx - *n_prompt : n_ctx / 4;
    if (*n_gen < 0) *n_gen = 0;
    if (!p_given) *n_prompt = n_ctx - *n_gen;
    return *n_prompt >= 1 && *n_prompt + *n_gen <= n_ctx;
}

#define DEFAULT_PROMPT 512
#define DEFAULT_GEN 128
#define PAR_EXPECT "expected up to 16 stream counts in 1..256, comma-separated"
#define PAR_MAX_REPS 16 /* --parallel levels run at most this many times */

static double median(double *v, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int cmd_bench(int argc, char **argv) {
    const char *model_path = NULL, *v;
    long long n_prompt = DEFAULT_PROMPT, n_gen = DEFAULT_GEN, reps = 3, threads = 0, device = -1, depth = 0;
    wgllm_backend_kind backend = WGLLM_BACKEND_AUTO;
    bool json = false;
    long long par[16];
    int n_par = 0;
    bool p_given = false, n_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-m")) {
            if (!(model_path = arg_value(argc, argv, &i, "bench"))) return 2;
        } else if (!strcmp(a, "-p")) {
            if (!(v = arg_value(argc, argv, &i, "bench")) || !opt_int("bench", a, v, 1, 1 << 20, &n_prompt)) return 2;
            p_given = true;
        } else if (!strcmp(a, "-n")) {
            if (!(v = arg_value(argc, argv, &i, "bench")) || !opt_int("bench", a, v, 0, 1 << 20, &n_gen)) return 2;
            n_given = true;
        } else if (!strcmp(a, "-d")) {
            if (!(v = arg_value(argc, argv, &i, "bench")) || !opt_int("bench", a, v, 0, 1 << 20, &depth)) return 2;
        } else if (!strcmp(a, "--reps")) {
            if (!(v = arg_value(argc, argv, &i, "bench")) || !opt_int("bench", a, v, 1, 1000, &reps)) return 2;
        } else if (!strcmp(a, "-t")) {
            if (!(v = arg_value(argc, argv, &i, "bench")) || !opt_int("bench", a, v, 1, 1024, &threads)) return 2;
        } else if (!strcmp(a, "--backend")) {
            if (!(v = arg_value(argc, argv, &i, "bench")) || !opt_backend("bench", a, v, &backend)) return 2;
        } else if (!strcmp(a, "--device")) {
            if (!(v = arg_value(argc, argv, &i, "bench")) || !opt_int("bench", a, v, 0, 64, &device)) return 2;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--parallel")) {
            if (!(v = arg_value(argc, argv, &i, "bench"))) return 2;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (n_par == 16 || !arg_int(tok, 1, 256, &par[n_par])) return bad_value("bench", a, v, PAR_EXPECT);
                n_par++;
            }
            if (n_par == 0) return bad_value("bench", a, v, PAR_EXPECT);
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            bench_usage(stdout);
            return 0;
        } else {
            return usage_error("bench", "unknown option '%s'", a);
        }
    }
    if (!model_path) return usage_error("bench", "no model given (-m FILE)");

    char err[512];
    wgllm_model *m = NULL;
    wgllm_context *c = NULL;
    wgllm_token *ids = NULL;
    int rc = 1;
    wgllm_model_params mp = wgllm_model_default_params();
    mp.n_threads = (int)threads;
    mp.backend = backend;
    mp.device = (int)device;
    if (wgllm_model_load(model_path, &mp, &m, err, sizeof err) != WGLLM_OK) {
        fprintf(stderr, "wgllm bench: error: %s\n", err);
        return 1;
    }
    wgllm_model_info info;
    wgllm_model_get_info(m, &info);
    wgllm_context_params cp = wgllm_context_default_params();
    const long long asked_p = n_prompt, asked_n = n_gen;
    if (depth >= info.n_ctx_train) {
        fprintf(stderr, "wgllm bench: error: -d %lld leaves no room for a test in the model's context of %d "
                        "(give a smaller -d)\n",
                depth, info.n_ctx_train);
        goto done;
    }
    const int room = info.n_ctx_train - (int)depth; /* what the tests may use past the depth */
    char less[40] = "";
    if (depth > 0) snprintf(less, sizeof less, " less -d %lld", depth);
    if (!fit_context(&n_prompt, &n_gen, p_given, n_given, room)) {
        if (p_given && n_given)
            fprintf(stderr, "wgllm bench: error: -p %lld + -n %lld = %lld tokens exceed the model's context of %d%s "
                            "(give -p and -n that add up to at most %d)\n",
                    asked_p, asked_n, asked_p + asked_n, info.n_ctx_train, less, room);
        else if (p_given)
            fprintf(stderr, "wgllm bench: error: -p %lld exceeds the model's context of %d%s (give a smaller -p)\n",
                    asked_p, info.n_ctx_train, less);
        else
            fprintf(stderr, "wgllm bench: error: -n %lld leaves no room for a prompt in the model's context of %d%s "
                            "(give a smaller -n)\n",
                    asked_n, info.n_ctx_train, less);
        goto done;
    }
    if (n_prompt != asked_p || n_gen != asked_n) {
        char what[64];
        if (n_prompt != asked_p && n_gen != asked_n)
            snprintf(what, sizeof what, "s -p %d -n %d do", DEFAULT_PROMPT, DEFAULT_GEN);
        else
            snprintf(what, sizeof what, " %s %d does", n_gen != asked_n ? "-n" : "-p",
                     n_gen != asked_n ? DEFAULT_GEN : DEFAULT_PROMPT);
        fprintf(stderr, "bench: using -p %lld -n %lld: the default%s not fit the model's context of %d tokens%s\n",
                n_prompt, n_gen, what, info.n_ctx_train, less);
    }
    if (n_par && PAR_PROMPT + (n_gen > 0 ? n_gen : 1) + 1 > info.n_ctx_train) {
        fprintf(stderr, "wgllm bench: error: --parallel needs %d + -n + 1 = %lld tokens, more than the model's context "
                        "of %d (give a smaller -n)\n",
                PAR_PROMPT, PAR_PROMPT + (n_gen > 0 ? n_gen : 1) + 1, info.n_ctx_train);
        goto done;
    }
    cp.n_ctx = (int)(depth + n_prompt + n_gen);
    if (wgllm_context_create(m, &cp, &c, err, sizeof err) != WGLLM_OK) {
        fprintf(stderr, "wgllm bench: error: %s\n", err);
        goto done;
    }
    /* A fixed pseudo-random prompt: the speed of dense math does not depend on the ids. The
     * depth's tokens come first, then the prompt's. */
    ids = malloc(sizeof *ids * (size_t)(depth + n_prompt));
    if (!ids) goto done;
    uint64_t s = 12345;
    for (long long i = 0; i < depth + n_prompt; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (wgllm_token)(3 + (s >> 33) % (uint64_t)(info.n_vocab - 3));
    }
    if (depth > 0 && wgllm_eval(c, ids, (int)depth, false) != WGLLM_OK) {
        fprintf(stderr, "wgllm bench: error: %s\n", wgllm_context_error(c));
        goto done;
    }
    double pp[1000], tg[1000], ttft[1000];
    for (long long r = 0; r < reps; r++) {
        wgllm_context_truncate(c, (int)depth); /* the depth's cache stays */
        double t0 = now_seconds();
        if (wgllm_eval(c, ids + depth, (int)n_prompt, false) != WGLLM_OK) {
            fprintf(stderr, "wgllm bench: error: %s\n", wgllm_context_error(c));
            goto done;
        }
        wgllm_token first = wgllm_greedy(c); /* the first token is part of its latency */
        double t1 = now_seconds();
        if (first < 0) {
            fprintf(stderr, "wgllm bench: error: %s\n", wgllm_context_error(c));
            goto done;
        }
        pp[r] = (double)n_prompt / (t1 - t0);
        ttft[r] = t1 - t0;
        /* n_gen steps: the first token, then greedy generation (the next step queued on the
         * device before each token is read back, where the backend can) */
        double t2 = now_seconds();
        if (n_gen > 0 && (wgllm_eval(c, &first, 1, false) != WGLLM_OK ||
                          wgllm_generate_greedy(c, (int)n_gen, NULL, NULL, false) != (int)n_gen)) {
            fprintf(stderr, "wgllm bench: error: %s\n", wgllm_context_error(c));
            goto done;
        }
        double t3 = now_seconds();
        tg[r] = n_gen > 0 ? (double)n_gen / (t3 - t2) : 0.0;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    wgllm_model_get_info(m, &info); /* device memory now includes the context's buffers */
    double rss_mib = (double)ru.ru_maxrss / 1024.0;
    double pp_med = median(pp, (int)reps), tg_med = median(tg, (int)reps), ttft_med = median(ttft, (int)reps);
    if (json) {
        printf("{\"model\":\"%s\",\"backend\":\"%s\",\"threads\":%lld,\"n_prompt\":%lld,\"n_gen\":%lld,\"depth\":%lld,\"reps\":%lld,"
               "\"prompt_tok_s\":%.2f,\"gen_tok_s\":%.2f,\"ttft_s\":%.4f,\"peak_rss_mib\":%.1f,\"weight_bytes\":%llu,"
               "\"device_memory_bytes\":%llu}\n",
               info.name, info.backend, threads, n_prompt, n_gen, depth, reps, pp_med, tg_med, ttft_med, rss_mib,
               (unsigned long long)info.weight_bytes, (unsigned long long)info.device_memory);
    } else {
        printf("| model | backend | threads | test | tok/s (median of %lld) |\n|---|---|---|---|---|\n", reps);
        char at[32] = ""; /* llama-bench's name of a test at a depth */
        if (depth > 0) snprintf(at, sizeof at, " @ d%lld", depth);
        printf("| %s | %s | %lld | pp%lld%s | %.2f |\n", info.name, info.backend, threads, n_prompt, at, pp_med);
        printf("| %s | %s | %lld | tg%lld%s | %.2f |\n", info.name, info.backend, threads, n_gen, at, tg_med);
        printf("time to first token (pp%lld): %.3f s; peak RSS %.1f MiB; weights %.1f MiB; device memory %.1f MiB\n",
               n_prompt, ttft_med, rss_mib, (double)info.weight_bytes / (1024.0 * 1024.0),
               (double)info.device_memory / (1024.0 * 1024.0));
    }
    /* Levels interleaved within each repetition, so a drift of the GPU's clock over the run
     * moves every level alike; the median of the repetitions per level. */
    double par_rate[16][PAR_MAX_REPS];
    const int par_reps = reps < PAR_MAX_REPS ? (int)reps : PAR_MAX_REPS;
    for (int r = 0; r < par_reps; r++)
        for (int i = 0; i < n_par; i++)
            if ((par_rate[i][r] = bench_parallel(m, (int)par[i], n_gen > 0 ? (int)n_gen : 1, now_seconds)) < 0)
                goto done;
    for (int i = 0; i < n_par; i++) {
        double rate = median(par_rate[i], par_reps);
        if (json)
            printf("{\"model\":\"%s\",\"backend\":\"%s\",\"streams\":%lld,\"n_gen\":%lld,\"aggregate_gen_tok_s\":%.2f}\n",
                   info.name, info.backend, par[i], n_gen, rate);
        else
            printf("| %s | %s | %lld | tg%lld x %lld streams | %.2f (aggregate, median of %d) |\n", info.name,
                   info.backend, threads, n_gen, par[i], rate, par_reps);
    }
    rc = 0;
done:
    free(ids);
    wgllm_context_free(c);
    wgllm_model_free(m);
    return rc;
}
