/* `wgllm synth`: random-weight Llama models of any shape. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "convert/llama_gguf.h"
#include "convert/synth.h"
#include "quant/types.h"
#include "tokenizer/vocab_load.h"

static void synth_print_usage(FILE *f) {
    fputs("usage: wgllm synth [--preset NAME] [--dim D --layers L --heads H --kv-heads K --ffn F --vocab V --ctx C]\n"
          "                   [--tied | --untied] --type f32|f16|q8_0|q4_0 [--vocab-from TOKENIZER.model]\n"
          "                   --seed S [-t THREADS] OUT.gguf\n"
          "\n"
          "Writes a Llama GGUF with random weights (same seed, same bytes). Shape flags override\n"
          "the preset (default: tiny). --vocab-from takes the vocabulary (and its size) from a\n"
          "SentencePiece model; otherwise a synthetic one of V pieces is made (V >= 259).\n"
          "presets:\n",
          f);
    int n;
    const wg_synth_preset *p = wg_synth_presets(&n);
    for (int i = 0; i < n; i++) {
        const wg_llama_shape *s = &p[i].shape;
        fprintf(f, "  %-11s dim %d, layers %d, heads %d, kv-heads %d, ffn %d, vocab %d, ctx %d, %s\n", p[i].name,
                (int)s->n_embd, (int)s->n_layer, (int)s->n_head, (int)s->n_head_kv, (int)s->n_ff, (int)s->n_vocab,
                (int)s->n_ctx, s->tied ? "tied" : "untied");
    }
}

static int synth_usage_error(const char *fmt, const char *arg) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    return usage_error("synth", "%s", msg);
}

static bool parse_int(const char *s, long lo, long hi, int32_t *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = (int32_t)v;
    return true;
}

/* Flags that take a value, and where a shape override goes. */
typedef struct shape_flag {
    const char *flag;
    size_t offset;
} shape_flag;

static const shape_flag k_shape_flags[] = {
    {"--dim", offsetof(wg_llama_shape, n_embd)},      {"--layers", offsetof(wg_llama_shape, n_layer)},
    {"--heads", offsetof(wg_llama_shape, n_head)},    {"--kv-heads", offsetof(wg_llama_shape, n_head_kv)},
    {"--ffn", offsetof(wg_llama_shape, n_ff)},        {"--vocab", offsetof(wg_llama_shape, n_vocab)},
    {"--ctx", offsetof(wg_llama_shape, n_ctx)},
};
#define N_SHAPE_FLAGS (sizeof k_shape_flags / sizeof k_shape_flags[0])
#define VOCAB_FLAG 5 /* index of --vocab above */

int cmd_synth(int argc, char **argv) {
    const char *preset_name = "tiny", *type_name = NULL, *seed_str = NULL, *vocab_from = NULL, *out = NULL;
    int32_t overrides[N_SHAPE_FLAGS];
    bool overridden[N_SHAPE_FLAGS] = {0};
    int tied = -1; /* -1: the preset's choice */
    int32_t n_threads = 0;
    bool options_done = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (options_done || a[0] != '-' || a[1] == 0) {
            if (out) return synth_usage_error("unexpected argument '%s' (only one OUT.gguf)", a);
            out = a;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            synth_print_usage(stdout);
            return 0;
        }
        if (strcmp(a, "--tied") == 0 || strcmp(a, "--untied") == 0) {
            int want = strcmp(a, "--tied") == 0;
            if (tied >= 0 && tied != want) return synth_usage_error("%s", "--tied and --untied are exclusive");
            tied = want;
            continue;
        }
        /* Everything else takes a value: "--flag VALUE" or "--flag=VALUE". */
        char key[32];
        const char *eq = strchr(a, '=');
        size_t key_len = eq ? (size_t)(eq - a) : strlen(a);
        if (key_len >= sizeof key) return synth_usage_error("unknown option '%s'", a);
        memcpy(key, a, key_len);
        key[key_len] = 0;
        const char *val;
        int shape_idx = -1;
        for (size_t k = 0; k < N_SHAPE_FLAGS; k++)
            if (strcmp(key, k_shape_flags[k].flag) == 0) shape_idx = (int)k;
        bool known = shape_idx >= 0 || strcmp(key, "--preset") == 0 || strcmp(key, "--type") == 0 ||
                     strcmp(key, "--seed") == 0 || strcmp(key, "--vocab-from") == 0 || strcmp(key, "-t") == 0 ||
                     strcmp(key, "--threads") == 0;
        if (!known) return synth_usage_error("unknown option '%s'", a);
        if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc) return synth_usage_error("option %s needs a value", key);
            val = argv[++i];
        }
        if (shape_idx >= 0) {
            if (!parse_int(val, 1, WG_LLAMA_MAX_DIM, &overrides[shape_idx])) {
                return usage_error("synth", "invalid value '%s' for %s (expected an integer in 1..%d)", val, key,
                                   WG_LLAMA_MAX_DIM);
            }
            overridden[shape_idx] = true;
        } else if (strcmp(key, "--preset") == 0) {
            preset_name = val;
        } else if (strcmp(key, "--type") == 0) {
            type_name = val;
        } else if (strcmp(key, "--seed") == 0) {
            seed_str = val;
        } else if (strcmp(key, "--vocab-from") == 0) {
            vocab_from = val;
        } else if (!parse_int(val, 1, 1024, &n_threads)) {
            return synth_usage_error("invalid value '%s' for -t (expected an integer in 1..1024)", val);
        }
    }

    if (!out) return synth_usage_error("%s", "missing OUT.gguf");
    const wg_synth_preset *preset = wg_synth_find_preset(preset_name);
    if (!preset) {
        int n;
        const wg_synth_preset *p = wg_synth_presets(&n);
        const char *names[32];
        int k = 0;
        for (; k < n && k < 31; k++) names[k] = p[k].name;
        names[k] = NULL;
        char list[512];
        return usage_error("synth", "invalid value '%s' for --preset (choose %s)", preset_name,
                           choice_list(names, list, sizeof list));
    }
    if (!type_name) return synth_usage_error("%s", "missing --type");
    int type = wg_type_from_name(type_name);
    if (type < 0 || wg_llama_file_type((uint32_t)type) < 0)
        return synth_usage_error("invalid value '%s' for --type (choose f32, f16, q8_0 or q4_0)", type_name);
    if (!seed_str) return synth_usage_error("%s", "missing --seed");
    char *end;
    errno = 0;
    unsigned long long seed = strtoull(seed_str, &end, 0);
    if (errno || end == seed_str || *end || seed_str[0] == '-')
        return synth_usage_error("invalid value '%s' for --seed (expected an unsigned integer)", seed_str);

    wg_llama_shape shape = preset->shape;
    for (size_t k = 0; k < N_SHAPE_FLAGS; k++)
        if (overridden[k]) *(int32_t *)((char *)&shape + k_shape_flags[k].offset) = overrides[k];
    if (tied >= 0) shape.tied = tied;

    char err[512];
    wg_vocab vocab;
    if (vocab_from) {
        if (!wg_vocab_load_spm(vocab_from, &vocab, err, sizeof err)) {
            fprintf(stderr, "wgllm synth: error: %s: %s\n", vocab_from, err);
            return 1;
        }
        if (overridden[VOCAB_FLAG] && overrides[VOCAB_FLAG] != vocab.n) {
            int n_pieces = vocab.n;
            wg_vocab_clear(&vocab);
            return usage_error("synth", "--vocab %d disagrees with the %d pieces of %s", (int)overrides[VOCAB_FLAG],
                               n_pieces, vocab_from);
        }
        shape.n_vocab = vocab.n;
    }
    if (!wg_llama_shape_check(&shape, err, sizeof err)) {
        if (vocab_from) wg_vocab_clear(&vocab);
        return synth_usage_error("%s", err);
    }
    if (!vocab_from && !wg_synth_make_vocab(shape.n_vocab, &vocab, err, sizeof err))
        return synth_usage_error("%s", err);

    wg_llama_write_opts opts = {
        .name = "synthetic",
        .type = (uint32_t)type,
        .n_threads = n_threads,
        .log = stderr,
        .progress = true,
        .log_prefix = "wgllm synth",
    };
    char name[64];
    snprintf(name, sizeof name, "synthetic-%s", preset->name);
    opts.name = name;
    bool ok = wg_synth_write(out, &shape, &vocab, (uint64_t)seed, &opts, err, sizeof err);
    wg_vocab_clear(&vocab);
    if (!ok) {
        fprintf(stderr, "wgllm synth: error: %s\n", err);
        return 1;
    }
    fprintf(stderr, "wgllm synth: wrote %s (dim %d, layers %d, heads %d/%d, ffn %d, vocab %d, %s, %s)\n", out,
            (int)shape.n_embd, (int)shape.n_layer, (int)shape.n_head, (int)shape.n_head_kv, (int)shape.n_ff,
            (int)shape.n_vocab, shape.tied ? "tied" : "untied", wg_type_name((uint32_t)type));
    return 0;
}
