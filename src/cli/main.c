/* wgllm: one binary, one subcommand per job. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "wgllm.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} command;

static const command k_commands[] = {
    {"run", cmd_run, "generate text from a prompt"},
    {"chat", cmd_chat, "interactive chat in the model's chat template"},
    {"bench", cmd_bench, "measure prompt and generation speed"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"info", cmd_info, "print a GGUF file's metadata and tensors"},
    {"devices", cmd_devices, "list WebGPU adapters with their limits and features"},
    {"convert", cmd_convert, "convert Hugging Face / llama2.c checkpoints, SentencePiece models to GGUF"},
    {"synth", cmd_synth, "write a random-weight model of any shape"},
    {"quantize", cmd_quantize, "rewrite a model with quantized weights (q4_0 .. q6_k, q4_k_m, q5_k_m)"},
    {"logits", cmd_logits, "dump the logits of a token sequence (testing)"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server with continuous batching"},
    {"cache-model", cmd_cache_model, "copy a model into the shared-memory model cache"},
    {"perplexity", cmd_perplexity, "perplexity of a text; KL divergence against a base model"},
    {"imatrix", cmd_imatrix, "importance matrix of a model over a calibration text"},
};

static void usage(FILE *out) {
    fprintf(out, "wgllm %s: run Llama-family models from GGUF files\n\nusage: wgllm COMMAND [options]\n\ncommands:\n",
            WGLLM_VERSION);
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        fprintf(out, "  %-9s %s\n", k_commands[i].name, k_commands[i].help);
    fprintf(out, "\n'wgllm COMMAND --help' shows a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("wgllm %s\n", WGLLM_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        if (!strcmp(argv[1], k_commands[i].name)) return k_commands[i].fn(argc - 1, argv + 1);
    const char *names[sizeof k_commands / sizeof k_commands[0] + 1];
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++) names[i] = k_commands[i].name;
    names[sizeof k_commands / sizeof k_commands[0]] = NULL;
    char list[512];
    return usage_error(NULL, "unknown command '%s' (choose %s)", argv[1], choice_list(names, list, sizeof list));
}
