/* The options `wgllm run` and `wgllm chat` share (model, backend, context, sampling),
 * and opening a model, a context and a sampler from them. */
#ifndef WGLLM_CLI_GEN_OPTS_H
#define WGLLM_CLI_GEN_OPTS_H

#include <stdbool.h>
#include <stdio.h>

#include "wgllm.h"

typedef struct gen_opts {
    const char *model;
    long long n_predict, n_predict_min; /* -n and the smallest value it accepts */
    long long threads, n_ctx, device;
    wgllm_backend_kind backend;
    wgllm_sampler_params sp;
    bool seed_given, ignore_eos;
} gen_opts;

void gen_opts_defaults(gen_opts *g, long long n_predict, long long n_predict_min);

/* If argv[*i] is one of the shared options, takes it (and its value, advancing *i) and
 * returns 1; 0 if it is not one; 2 after printing a usage error for a bad value. */
int gen_opts_parse(gen_opts *g, const char *cmd, int argc, char **argv, int *i);

/* The usage lines of the shared options but -m and -n. */
void gen_opts_usage(FILE *out);

/* Loads the model, then a context and a sampler for it (seeding from the clock, and saying
 * so, unless --seed was given). Prints "wgllm CMD: error: ..." and returns 1 (2 for bad
 * sampler parameters) on failure, with whatever was made freed; 0 on success. */
int gen_open(gen_opts *g, const char *cmd, wgllm_model **model, wgllm_context **ctx, wgllm_sampler **smp);

#endif
