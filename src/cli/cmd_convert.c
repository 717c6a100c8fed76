/* `wgllm convert`: llama2.c checkpoints, Hugging Face Llama checkpoints, SentencePiece
 * models and Hugging Face byte-level BPE tokenizers to GGUF. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "convert/hf_llama.h"
#include "convert/hf_tokenizer.h"
#include "convert/llama2c.h"
#include "convert/llama_gguf.h"
#include "quant/types.h"
#include "tokenizer/vocab_load.h"

static const char k_convert_usage[] =
    "usage: wgllm convert llama2c CKPT.bin TOKENIZER.bin OUT.gguf [--type f32|f16|q8_0|q4_0] [--name NAME]\n"
    "                     [-t THREADS]\n"
    "       wgllm convert hf DIR OUT.gguf [--type f32|f16|bf16|q8_0|q4_0] [--name NAME] [-t THREADS]\n"
    "       wgllm convert spm TOKENIZER.model OUT.gguf\n"
    "       wgllm convert hf-tokenizer TOKENIZER.json OUT.gguf [--config TOKENIZER_CONFIG.json]\n"
    "\n"
    "  llama2c  a llama2.c legacy checkpoint and its tokenizer.bin to a Llama GGUF\n"
    "           (--type: type of the 2-D weights, default f32; norms stay f32; a matrix\n"
    "           whose rows are not whole blocks is stored as f16)\n"
    "  hf       a Hugging Face folder of LlamaForCausalLM, MistralForCausalLM,\n"
    "           Qwen2ForCausalLM, Qwen3ForCausalLM or Phi3ForCausalLM (config.json,\n"
    "           model.safetensors or model.safetensors.index.json, tokenizer.model or\n"
    "           tokenizer.json) to a GGUF as llama.cpp's converter writes it (--type as for\n"
    "           llama2c, plus bf16; the name defaults to config.json's _name_or_path or\n"
    "           the folder's)\n"
    "  spm      a SentencePiece tokenizer.model to a vocabulary-only GGUF\n"
    "  hf-tokenizer  a Hugging Face tokenizer.json (byte-level BPE with Llama 3's or\n"
    "           Qwen2's pre-tokenizer) to a vocabulary-only GGUF; bos/eos come from --config\n"
    "           (default: tokenizer_config.json beside TOKENIZER.json, if there)\n";

static int convert_usage_error(const char *fmt, const char *arg) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    return usage_error("convert", "%s", msg);
}

/* Parses a thread count in 1..1024. */
static bool parse_threads(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 1024) return false;
    *out = (int)v;
    return true;
}

/* The tokenizer_config.json beside tokenizer.json, if there is one (malloc'ed path or NULL). */
static char *sibling_config(const char *json_path) {
    const char *slash = strrchr(json_path, '/');
    size_t dir_len = slash ? (size_t)(slash - json_path + 1) : 0;
    static const char name[] = "tokenizer_config.json";
    char *p = malloc(dir_len + sizeof name);
    if (!p) return NULL;
    memcpy(p, json_path, dir_len);
    memcpy(p + dir_len, name, sizeof name);
    FILE *f = fopen(p, "rb");
    if (!f) {
        free(p);
        return NULL;
    }
    fclose(f);
    return p;
}

static int convert_hf_tokenizer(const char *json_path, const char *config, const char *out_path) {
    char err[512];
    char *found = config ? NULL : sibling_config(json_path);
    if (found) fprintf(stderr, "wgllm convert: using %s\n", found);
    gguf_writer *w = gguf_writer_create();
    bool ok = w && gguf_writer_set_str(w, "general.architecture", "llama");
    if (!w || !ok) {
        snprintf(err, sizeof err, "%s", w ? gguf_writer_error(w) : "out of memory");
    } else if ((ok = wg_hf_tokenizer_to_gguf(json_path, config ? config : found, w, err, sizeof err))) {
        ok = gguf_writer_begin(w, out_path) && gguf_writer_finish(w);
        if (!ok) snprintf(err, sizeof err, "%s", gguf_writer_error(w));
    }
    gguf_writer_free(w);
    free(found);
    if (!ok) {
        fprintf(stderr, "wgllm convert: error: %s: %s\n", json_path, err);
        return 1;
    }
    fprintf(stderr, "wgllm convert: wrote %s (vocabulary only, byte-level BPE)\n", out_path);
    return 0;
}

int cmd_convert(int argc, char **argv) {
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs(k_convert_usage, stdout);
        return 0;
    }
    if (argc < 2) return convert_usage_error("%s", "missing the input format (choose llama2c, hf, spm or hf-tokenizer)");
    const char *format = argv[1];
    bool is_hf = strcmp(format, "hf") == 0;
    bool is_llama2c = strcmp(format, "llama2c") == 0 || is_hf; /* same options */
    bool is_hf_tok = strcmp(format, "hf-tokenizer") == 0;
    if (!is_llama2c && !is_hf_tok && strcmp(format, "spm") != 0)
        return convert_usage_error("unknown input format '%s' (choose llama2c, hf, spm or hf-tokenizer)", format);

    const char *pos[3] = {0};
    int n_pos = 0;
    const char *type_name = "f32", *name = NULL, *config = NULL;
    int n_threads = 0;
    bool options_done = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (options_done || a[0] != '-' || a[1] == 0) {
            if (n_pos == 3) return convert_usage_error("unexpected argument '%s'", a);
            pos[n_pos++] = a;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(k_convert_usage, stdout);
            return 0;
        }
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        size_t key_len = eq ? (size_t)(eq - a) : strlen(a);
        char key[32];
        if (key_len >= sizeof key) return convert_usage_error("unknown option '%s'", a);
        memcpy(key, a, key_len);
        key[key_len] = 0;
        bool known = (is_llama2c && (strcmp(key, "--type") == 0 || strcmp(key, "--name") == 0 ||
                                     strcmp(key, "-t") == 0 || strcmp(key, "--threads") == 0)) ||
                     (is_hf_tok && strcmp(key, "--config") == 0);
        if (!known) return convert_usage_error("unknown option '%s'", a);
        if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc) return convert_usage_error("option %s needs a value", key);
            val = argv[++i];
        }
        if (strcmp(key, "--config") == 0) {
            config = val;
        } else if (strcmp(key, "--type") == 0) {
            type_name = val;
        } else if (strcmp(key, "--name") == 0) {
            name = val;
        } else if (!parse_threads(val, &n_threads)) {
            return convert_usage_error("invalid value '%s' for -t (expected an integer in 1..1024)", val);
        }
    }

    char err[512];
    if (is_hf_tok) {
        if (n_pos != 2) return convert_usage_error("%s", "hf-tokenizer needs TOKENIZER.json and OUT.gguf");
        return convert_hf_tokenizer(pos[0], config, pos[1]);
    }
    if (!is_llama2c) {
        if (n_pos != 2) return convert_usage_error("%s", "spm needs TOKENIZER.model and OUT.gguf");
        wg_vocab v;
        if (!wg_vocab_load_spm(pos[0], &v, err, sizeof err)) {
            fprintf(stderr, "wgllm convert: error: %s: %s\n", pos[0], err);
            return 1;
        }
        bool ok = wg_llama_write_vocab_gguf(pos[1], &v, err, sizeof err);
        int n = v.n;
        wg_vocab_clear(&v);
        if (!ok) {
            fprintf(stderr, "wgllm convert: error: %s\n", err);
            return 1;
        }
        fprintf(stderr, "wgllm convert: wrote %s (vocabulary only, %d pieces)\n", pos[1], n);
        return 0;
    }

    if (is_hf && n_pos != 2) return convert_usage_error("%s", "hf needs DIR and OUT.gguf");
    if (!is_hf && n_pos != 3) return convert_usage_error("%s", "llama2c needs CKPT.bin, TOKENIZER.bin and OUT.gguf");
    int type = wg_type_from_name(type_name);
    if (is_hf && type == WG_TYPE_BF16) {
        /* accepted for hf only: Hugging Face weights are often bf16 already */
    } else if (type < 0 || type == WG_TYPE_BF16 || wg_llama_file_type((uint32_t)type) < 0) {
        return convert_usage_error(is_hf ? "invalid value '%s' for --type (choose f32, f16, bf16, q8_0 or q4_0)"
                                         : "invalid value '%s' for --type (choose f32, f16, q8_0 or q4_0)",
                                   type_name);
    }
    wg_llama_write_opts opts = {
        .name = name,
        .type = (uint32_t)type,
        .n_threads = n_threads,
        .log = stderr,
        .progress = true,
        .log_prefix = "wgllm convert",
    };
    bool ok = is_hf ? wg_hf_llama_convert(pos[0], pos[1], &opts, err, sizeof err)
                    : wg_llama2c_convert(pos[0], pos[1], pos[2], &opts, err, sizeof err);
    if (!ok) {
        fprintf(stderr, "wgllm convert: error: %s\n", err);
        return 1;
    }
    fprintf(stderr, "wgllm convert: wrote %s (%s)\n", pos[is_hf ? 1 : 2], wg_type_name((uint32_t)type));
    return 0;
}
