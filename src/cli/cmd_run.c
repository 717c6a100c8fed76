/* `wgllm run`: generate text from a prompt, streaming it to stdout. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/gen_opts.h"
#include "cli/json_out.h"
#include "wgllm.h"

static void run_usage(FILE *out) {
    fprintf(out,
            "usage: wgllm run -m FILE [-p PROMPT | -f PROMPT_FILE] [options]\n"
            "  -p PROMPT            the prompt (default: standard input when it is not a terminal,\n"
            "                       else only the BOS token)\n"
            "  -f PROMPT_FILE       read the prompt from a file; - reads standard input\n"
            "  -n N                 tokens to generate (default 128)\n");
    gen_opts_usage(out);
    fprintf(out,
            "  --json               one JSON object per generated token instead of text\n"
            "  --no-bos             do not prepend the BOS token\n");
}

typedef struct run_opts {
    gen_opts g;
    const char *prompt, *prompt_file;
    bool json, no_bos;
} run_opts;

/* 0: go on; otherwise the exit code (-h: 0 after the usage, usage errors: 2). */
static int parse(int argc, char **argv, run_opts *o, bool *done) {
    memset(o, 0, sizeof *o);
    gen_opts_defaults(&o->g, 128, 0);
    *done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int taken = gen_opts_parse(&o->g, "run", argc, argv, &i);
        if (taken == 2) return 2;
        if (taken) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            run_usage(stdout);
            *done = true;
            return 0;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(o->prompt = arg_value(argc, argv, &i, "run"))) return 2;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(o->prompt_file = arg_value(argc, argv, &i, "run"))) return 2;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--no-bos")) {
            o->no_bos = true;
        } else {
            return usage_error("run", "unknown option '%s'", a);
        }
    }
    if (!o->g.model) return usage_error("run", "no model given (-m FILE)");
    if (o->prompt && o->prompt_file) return usage_error("run", "give either -p or -f, not both");
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
    bool help_done;
    int rc = parse(argc, argv, &o, &help_done);
    if (rc || help_done) return rc;
    char err[512];
    char *prompt_buf = NULL;
    size_t prompt_len = o.prompt ? strlen(o.prompt) : 0;
    /* Without -p, a pipe or a file on standard input is the prompt (as with -f -). */
    const char *file = o.prompt_file ? o.prompt_file : !o.prompt && stdin_has_text() ? "-" : NULL;
    if (file && !(prompt_buf = read_file_bytes(file, &prompt_len, err, sizeof err))) {
        fprintf(stderr, "wgllm run: error: %s\n", err);
        return 1;
    }
    /* `echo TEXT | wgllm run` means TEXT: the newline echo adds is not part of the prompt. */
    if (file && !strcmp(file, "-") && prompt_len && prompt_buf[prompt_len - 1] == '\n') {
        prompt_buf[--prompt_len] = 0;
        if (prompt_len && prompt_buf[prompt_len - 1] == '\r') prompt_buf[--prompt_len] = 0;
    }
    const char *prompt = prompt_buf ? prompt_buf : (o.prompt ? o.prompt : "");

    wgllm_model *model = NULL;
    wgllm_context *ctx = NULL;
    wgllm_sampler *smp = NULL;
    wgllm_detokenizer *detok = NULL;
    wgllm_token *ids = NULL;
    if ((rc = gen_open(&o.g, "run", &model, &ctx, &smp))) goto done;
    rc = 1;
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
    const bool device_greedy = o.g.sp.temperature <= 0.0f && o.g.sp.repeat_penalty == 1.0f && !o.json;
    if (device_greedy && o.g.n_predict > 0) {
        greedy_out out = {model, detok, 0, false};
        int n = wgllm_generate_greedy(ctx, o.g.n_predict > INT32_MAX ? INT32_MAX : (int)o.g.n_predict, print_token, &out,
                                      !o.g.ignore_eos);
        if (n < 0) {
            fprintf(stderr, "\nwgllm run: error: %s\n", wgllm_context_error(ctx));
            goto done;
        }
        n_gen = n;
        stop = out.eog ? "eos" : n_gen >= o.g.n_predict ? "length" : "context full";
    }
    while (!device_greedy && n_gen < o.g.n_predict) {
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
        if (wgllm_token_is_eog(model, tok) && !o.g.ignore_eos) {
            stop = "eos";
            break;
        }
        if (n_gen >= o.g.n_predict) break;
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
