/* `wgllm run`: generate text from a prompt, streaming it to stdout. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/json_out.h"
#include "wgllm.h"

static void run_usage(FILE *out) {
    fprintf(out,
            "usage: wgllm run -m FILE [-p PROMPT | -f PROMPT_FILE] [options]\n"
            "  -n N                 tokens to generate (default 128)\n"
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
            "  --json               one JSON object per generated token instead of text\n"
            "  --ignore-eos         keep generating after an end-of-generation token (eos, <|eot_id|>, ...)\n"
            "  --no-bos             do not prepend the BOS token\n");
}

typedef struct run_opts {
    const char *model, *prompt, *prompt_file;
    long long n_predict, threads, n_ctx, device;
    wgllm_backend_kind backend;
    wgllm_sampler_params sp;
    bool seed_given, json, ignore_eos, no_bos;
} run_opts;

static int parse(int argc, char **argv, run_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = 128;
    o->device = -1;
    o->backend = WGLLM_BACKEND_AUTO;
    o->sp = wgllm_sampler_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        long long n;
        float f;
#define VALUE() \
    if (!(v = arg_value(argc, argv, &i, "run"))) return 2
#define BAD()                                                                     \
    do {                                                                          \
        fprintf(stderr, "wgllm run: error: invalid value '%s' for %s\n", v, a); \
        return 2;                                                                 \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            run_usage(stdout);
            exit(0);
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            VALUE();
            o->model = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            VALUE();
            o->prompt = v;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            VALUE();
            o->prompt_file = v;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            VALUE();
            if (!arg_int(v, 0, 1 << 30, &o->n_predict)) BAD();
        } else if (!strcmp(a, "--temp")) {
            VALUE();
            if (!arg_float(v, &f) || f < 0) BAD();
            o->sp.temperature = f;
        } else if (!strcmp(a, "--top-k")) {
            VALUE();
            if (!arg_int(v, 0, 1 << 30, &n)) BAD();
            o->sp.top_k = (int)n;
        } else if (!strcmp(a, "--top-p")) {
            VALUE();
            if (!arg_float(v, &f) || !(f > 0) || f > 1) BAD();
            o->sp.top_p = f;
        } else if (!strcmp(a, "--min-p")) {
            VALUE();
            if (!arg_float(v, &f) || f < 0 || f > 1) BAD();
            o->sp.min_p = f;
        } else if (!strcmp(a, "--repeat-penalty")) {
            VALUE();
            if (!arg_float(v, &f) || !(f > 0)) BAD();
            o->sp.repeat_penalty = f;
        } else if (!strcmp(a, "--repeat-last-n")) {
            VALUE();
            if (!arg_int(v, 0, 1 << 20, &n)) BAD();
            o->sp.repeat_last_n = (int)n;
        } else if (!strcmp(a, "--seed")) {
            VALUE();
            if (!arg_int(v, 0, INT64_MAX, &n)) BAD();
            o->sp.seed = (uint64_t)n;
            o->seed_given = true;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            VALUE();
            if (!arg_int(v, 1, 1024, &o->threads)) BAD();
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            VALUE();
            if (!arg_int(v, 1, 1 << 24, &o->n_ctx)) BAD();
        } else if (!strcmp(a, "--backend")) {
            VALUE();
            if (!wgllm_backend_kind_from_name(v, &o->backend)) BAD();
        } else if (!strcmp(a, "--device")) {
            VALUE();
            if (!arg_int(v, 0, 64, &o->device)) BAD();
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--ignore-eos")) {
            o->ignore_eos = true;
        } else if (!strcmp(a, "--no-bos")) {
            o->no_bos = true;
        } else {
            fprintf(stderr, "wgllm run: error: unknown option '%s'\n", a);
            run_usage(stderr);
            return 2;
        }
#undef VALUE
#undef BAD
    }
    if (!o->model) {
        fprintf(stderr, "wgllm run: error: no model given (-m FILE)\n");
        run_usage(stderr);
        return 2;
    }
    if (o->prompt && o->prompt_file) {
        fprintf(stderr, "wgllm run: error: give either -p or -f, not both\n");
        return 2;
    }
    return 0;
}

typedef struct {
    const wgllm_model *model;
    wgllm_detokenizer *detok;
    long long n;
    bool eog;
} greedy_out;

/* Streams one greedy token's text. */
static bool print_token(wgllm_token t, void *user) {
    greedy_out *g = user;
    size_t len;
    const char *piece = wgllm_detokenizer_push(g->detok, t, &len);
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    g->n++;
    g->eog = wgllm_token_is_eog(g->model, t);
    return true;
}

int cmd_run(int argc, char **argv) {
    run_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    if (!o.seed_given) {
        o.sp.seed = (uint64_t)time(NULL);
        if (o.sp.temperature > 0) fprintf(stderr, "seed: %llu\n", (unsigned long long)o.sp.seed);
    }
    char err[512];
    char *prompt_buf = NULL;
    size_t prompt_len = o.prompt ? strlen(o.prompt) : 0;
    if (o.prompt_file && !(prompt_buf = read_file_bytes(o.prompt_file, &prompt_len, err, sizeof err))) {
        fprintf(stderr, "wgllm run: error: %s\n", err);
        return 1;
    }
    const char *prompt = prompt_buf ? prompt_buf : (o.prompt ? o.prompt : "");

    wgllm_model *model = NULL;
    wgllm_context *ctx = NULL;
    wgllm_sampler *smp = NULL;
    wgllm_detokenizer *detok = NULL;
    wgllm_token *ids = NULL;
    rc = 1;

    wgllm_model_params mp = wgllm_model_default_params();
    mp.n_threads = (int)o.threads;
    mp.backend = o.backend;
    mp.device = (int)o.device;
    if (wgllm_model_load(o.model, &mp, &model, err, sizeof err) != WGLLM_OK) {
        fprintf(stderr, "wgllm run: error: %s\n", err);
        goto done;
    }
    wgllm_model_info minfo;
    wgllm_model_get_info(model, &minfo);
    fprintf(stderr, "backend: %s\n", minfo.backend);
    wgllm_context_params cp = wgllm_context_default_params();
    cp.n_ctx = (int)o.n_ctx;
    if (wgllm_context_create(model, &cp, &ctx, err, sizeof err) != WGLLM_OK) {
        fprintf(stderr, "wgllm run: error: %s\n", err);
        goto done;
    }
    if (!(smp = wgllm_sampler_create(&o.sp, err, sizeof err))) {
        fprintf(stderr, "wgllm run: error: %s\n", err);
        rc = 2;
        goto done;
    }
    bool add_bos = !o.no_bos && wgllm_add_bos_default(model);
    int64_t n_prompt = wgllm_tokenize(model, prompt, prompt_len, add_bos, NULL, 0);
    if (n_prompt < 0 || !(ids = malloc(sizeof *ids * (size_t)(n_prompt > 0 ? n_prompt : 1)))) {
        fprintf(stderr, "wgllm run: error: cannot tokenize the prompt\n");
        goto done;
    }
    wgllm_tokenize(model, prompt, prompt_len, add_bos, ids, n_prompt);
    const int n_ctx = wgllm_context_n_ctx(ctx);
    if (n_prompt == 0) {
        fprintf(stderr, "wgllm run: error: the prompt is empty and --no-bos was given: nothing to evaluate\n");
        goto done;
    }
    if (n_prompt > n_ctx) {
        fprintf(stderr, "wgllm run: error: the prompt is %lld tokens, longer than the context of %d tokens\n",
                (long long)n_prompt, n_ctx);
        goto done;
    }
    detok = wgllm_detokenizer_create(model);
    if (!detok) {
        fprintf(stderr, "wgllm run: error: out of memory\n");
        goto done;
    }
    /* The prompt goes through the detokenizer unprinted, so the first generated
     * piece keeps its leading space (only the text's very start loses it). */
    for (int64_t i = 0; i < n_prompt; i++) {
        wgllm_sampler_accept(smp, ids[i]);
        wgllm_detokenizer_push(detok, ids[i], NULL);
    }

    double t0 = now_seconds();
    if (wgllm_eval(ctx, ids, (int)n_prompt, false) != WGLLM_OK) {
        fprintf(stderr, "wgllm run: error: %s\n", wgllm_context_error(ctx));
        goto done;
    }
    double t1 = now_seconds();
    const int n_vocab = wgllm_n_vocab(model);
    long long n_gen = 0;
    const char *stop = "length";
    /* Plain greedy text needs no logits on the host: the backend picks the token, and
     * queues the next step before the token reaches the CPU where it can. */
    const bool device_greedy = o.sp.temperature <= 0.0f && o.sp.repeat_penalty == 1.0f && !o.json;
    if (device_greedy && o.n_predict > 0) {
        greedy_out out = {model, detok, 0, false};
        int n = wgllm_generate_greedy(ctx, o.n_predict > INT32_MAX ? INT32_MAX : (int)o.n_predict, print_token, &out,
                                      !o.ignore_eos);
        if (n < 0) {
            fprintf(stderr, "\nwgllm run: error: %s\n", wgllm_context_error(ctx));
            goto done;
        }
        n_gen = n;
        stop = out.eog ? "eos" : n_gen >= o.n_predict ? "length" : "context full";
    }
    while (!device_greedy && n_gen < o.n_predict) {
        float logprob = 0.0f;
        wgllm_token tok;
        if (device_greedy) {
            tok = wgllm_greedy(ctx);
        } else {
            const float *logits = wgllm_get_logits(ctx, 0);
            tok = logits ? wgllm_sampler_sample(smp, logits, n_vocab, &logprob) : -1;
        }
        if (tok < 0) {
            fprintf(stderr, "\nwgllm run: error: sampling failed: %s\n",
                    wgllm_context_error(ctx)[0] ? wgllm_context_error(ctx) : "out of memory");
            goto done;
        }
        wgllm_sampler_accept(smp, tok);
        n_gen++;
        size_t len;
        const char *piece = wgllm_detokenizer_push(detok, tok, &len);
        if (o.json) {
            printf("{\"id\":%d,\"piece\":", tok);
            json_write_string(stdout, piece, len);
            printf(",\"logprob\":%.6f}\n", (double)logprob);
        } else {
            fwrite(piece, 1, len, stdout);
        }
        fflush(stdout);
        if (wgllm_token_is_eog(model, tok) && !o.ignore_eos) {
            stop = "eos";
            break;
        }
        if (n_gen >= o.n_predict) break;
        if (wgllm_context_n_past(ctx) >= n_ctx) {
            stop = "context full";
            break;
        }
        if (wgllm_eval(ctx, &tok, 1, false) != WGLLM_OK) {
            fprintf(stderr, "\nwgllm run: error: %s\n", wgllm_context_error(ctx));
            goto done;
        }
    }
    double t2 = now_seconds();
    size_t len;
    const char *tail = wgllm_detokenizer_flush(detok, &len);
    if (!o.json) {
        fwrite(tail, 1, len, stdout);
        putchar('\n');
    }
    fflush(stdout);
    fprintf(stderr, "prompt: %lld tokens in %.3f s (%.1f tok/s); generation: %lld tokens in %.3f s (%.1f tok/s); stop: %s\n",
            (long long)n_prompt, t1 - t0, (double)n_prompt / (t1 - t0 > 0 ? t1 - t0 : 1e-9), n_gen, t2 - t1,
            (double)n_gen / (t2 - t1 > 0 ? t2 - t1 : 1e-9), stop);
    rc = 0;
done:
    free(ids);
    free(prompt_buf);
    wgllm_detokenizer_free(detok);
    wgllm_sampler_free(smp);
    wgllm_context_free(ctx);
    wgllm_model_free(model);
    return rc;
}
