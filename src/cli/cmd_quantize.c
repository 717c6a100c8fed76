/* `wgllm quantize`: a GGUF model to another weight type or llama.cpp mix. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "quantize/quantize.h"

static void quantize_usage(FILE *f) {
    fprintf(f,
            "usage: wgllm quantize IN.gguf OUT.gguf TYPE [--threads N] [--imatrix FILE] [--pure]\n"
            "\n"
            "Rewrites a model with its weights in TYPE, from any type this build reads.\n"
            "TYPE: %s.\n"
            "The k-quant mixes (and every quantized TYPE) pick per-tensor types as llama.cpp's\n"
            "llama-quantize does (output.weight q6_k, attn_v/ffn_down raised on some layers);\n"
            "1-D tensors and norms are copied unchanged; rows that are not a multiple of a\n"
            "type's block size fall back to a compatible type.\n"
            "  --threads N     worker threads (default: all cores)\n"
            "  --imatrix FILE  importance matrix (NAME.in_sum2 / NAME.counts) for the k-quants\n"
            "                  and q4_0..q5_1; tensors without an entry are quantized without it\n"
            "  --pure          every quantizable weight in TYPE's base type (no mix rules)\n",
            wg_ftype_names());
}

static int quantize_usage_error(const char *fmt, const char *arg) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    return usage_error("quantize", "%s", msg);
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3] = {0};
    int n_pos = 0;
    wg_quantize_opts o = {.n_threads = 0, .imatrix_path = NULL, .pure = false, .progress = stderr};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            quantize_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            const char *v = arg_value(argc, argv, &i, "quantize");
            long long n;
            if (!v) return 2;
            if (!opt_int("quantize", a, v, 1, 1024, &n)) return 2;
            o.n_threads = (int)n;
        } else if (!strcmp(a, "--imatrix")) {
            if (!(o.imatrix_path = arg_value(argc, argv, &i, "quantize"))) return 2;
        } else if (!strcmp(a, "--pure")) {
            o.pure = true;
        } else if (a[0] == '-' && a[1] != 0) {
            return quantize_usage_error("unknown option '%s'", a);
        } else {
            if (n_pos == 3) return quantize_usage_error("unexpected argument '%s'", a);
            pos[n_pos++] = a;
        }
    }
    if (n_pos != 3) return quantize_usage_error("%s", "needs IN.gguf, OUT.gguf and TYPE");
    const wg_ftype *ft = wg_ftype_find(pos[2]);
    if (!ft) return usage_error("quantize", "unknown type '%s' (choose %s)", pos[2], wg_ftype_names());
    char err[512];
    if (!wg_quantize_file(pos[0], pos[1], ft, &o, err, sizeof err)) {
        fprintf(stderr, "wgllm quantize: error: %s\n", err);
        return 1;
    }
    return 0;
}
