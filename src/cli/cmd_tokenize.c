/* `wgllm tokenize`: print the token ids of a text, or (--decode) the exact
 * bytes of a list of ids (vocabulary only, no weights). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "wgllm.h"

/* Writes the bytes of whitespace-separated ids s to stdout. 0 ok, 1 bad id. */
static int decode_ids(const wgllm_model *m, const char *s) {
    size_t cap = 64, n = 0;
    wgllm_token *ids = malloc(cap * sizeof *ids);
    while (ids) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == ',') s++;
        if (!*s) break;
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v >= wgllm_n_vocab(m)) {
            fprintf(stderr, "wgllm tokenize: error: bad token id '%.20s' (expected 0..%d)\n", s, wgllm_n_vocab(m) - 1);
            free(ids);
            return 1;
        }
        if (n == cap) {
            wgllm_token *nb = realloc(ids, 2 * cap * sizeof *ids);
            if (!nb) break;
            ids = nb;
            cap *= 2;
        }
        ids[n++] = (wgllm_token)v;
        s = end;
    }
    size_t len = ids ? wgllm_detokenize(m, ids, n, NULL, 0) : 0;
    char *out = ids ? malloc(len + 1) : NULL;
    if (!out) {
        fprintf(stderr, "wgllm tokenize: error: out of memory\n");
        free(ids);
        return 1;
    }
    wgllm_detokenize(m, ids, n, out, len + 1);
    fwrite(out, 1, len, stdout);
    free(out);
    free(ids);
    return 0;
}

static void tokenize_usage(FILE *out) {
    fprintf(out, "usage: wgllm tokenize -m FILE [--no-bos] [--special] [--decode] [--file PATH | TEXT]\n"
                 "  TEXT           the text (default: standard input when it is not a terminal)\n"
                 "  --file PATH    read the text from a file; - reads standard input\n"
                 "  --no-bos       do not prepend the BOS token\n"
                 "  --special      turn the text of special tokens (<|eot_id|>, ...) into those tokens\n"
                 "  --decode       read token ids instead and write their exact bytes\n");
}

int cmd_tokenize(int argc, char **argv) {
    const char *model_path = NULL, *file = NULL, *text = NULL;
    bool no_bos = false, special = false, decode = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            if (!(model_path = arg_value(argc, argv, &i, "tokenize"))) return 2;
        } else if (!strcmp(argv[i], "--file") || !strcmp(argv[i], "-f")) {
            if (!(file = arg_value(argc, argv, &i, "tokenize"))) return 2;
        } else if (!strcmp(argv[i], "--no-bos")) {
            no_bos = true;
        } else if (!strcmp(argv[i], "--special")) {
            special = true;
        } else if (!strcmp(argv[i], "--decode")) {
            decode = true;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            tokenize_usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1] != 0 && !text) {
            return usage_error("tokenize", "unknown option '%s'", argv[i]);
        } else if (!text) {
            text = argv[i];
        } else {
            return usage_error("tokenize", "more than one text given (quote it)");
        }
    }
    if (!model_path) return usage_error("tokenize", "no model given (-m FILE)");
    if (file && text) return usage_error("tokenize", "give either --file or TEXT, not both");
    /* Without TEXT, a pipe or a file on standard input is the text (as with --file -). */
    if (!file && !text && stdin_has_text()) file = "-";
    char err[512];
    size_t len = text ? strlen(text) : 0;
    char *buf = NULL;
    if (file && !(buf = read_file_bytes(file, &len, err, sizeof err))) {
        fprintf(stderr, "wgllm tokenize: error: %s\n", err);
        return 1;
    }
    const char *s = buf ? buf : (text ? text : "");
    wgllm_model_params mp = wgllm_model_default_params();
    mp.vocab_only = true;
    wgllm_model *m = NULL;
    if (wgllm_model_load(model_path, &mp, &m, err, sizeof err) != WGLLM_OK) {
        fprintf(stderr, "wgllm tokenize: error: %s\n", err);
        free(buf);
        return 1;
    }
    if (decode) {
        char *ids_text = malloc(len + 1);
        int rc = ids_text ? 0 : 1;
        if (ids_text) {
            memcpy(ids_text, s, len);
            ids_text[len] = 0;
            rc = decode_ids(m, ids_text);
        }
        free(ids_text);
        free(buf);
        wgllm_model_free(m);
        return rc;
    }
    bool add_bos = !no_bos && wgllm_add_bos_default(m);
    int64_t n = wgllm_tokenize_special(m, s, len, add_bos, special, NULL, 0);
    wgllm_token *ids = n >= 0 ? malloc(sizeof *ids * (size_t)(n + 1)) : NULL;
    int rc = 1;
    if (!ids) {
        fprintf(stderr, "wgllm tokenize: error: tokenization failed\n");
    } else {
        wgllm_tokenize_special(m, s, len, add_bos, special, ids, n);
        for (int64_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        putchar('\n');
        rc = 0;
    }
    free(ids);
    free(buf);
    wgllm_model_free(m);
    return rc;
}
