/* tokenizer.json -> tokenizer.ggml.* keys (see hf_tokenizer.h). */
#include <cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/hf_tokenizer.h"
#include "convert/json_file.h"

/* Vocabularies above this many ids are refused: a hostile id must not make us
 * allocate gigabytes (the largest real vocabularies hold about 260k tokens). */
#define MAX_VOCAB (1 << 22)
#define MAX_FILE_BYTES ((size_t)1 << 30)

static const char k_llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* Qwen2's: one digit a piece (\\p{N} for \\p{N}{1,3}), the rest as Llama 3's. */
static const char k_qwen2_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static bool failf(char *err, size_t err_size, const char *fmt, ...) {
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return false;
}

static const char *str_field(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A JSON number that is an integer id in [0, MAX_VOCAB). */
static bool id_value(const cJSON *v, int32_t *id) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d < MAX_VOCAB) || d != (double)(int32_t)d) return false;
    *id = (int32_t)d;
    return true;
}

/* ---- pre-tokenizer check ---- */

typedef struct pretok_seen {
    bool split, byte_level, other;
    int32_t pre; /* WG_PRE_* of the split's regex */
} pretok_seen;

static void scan_pretok(const cJSON *p, pretok_seen *seen) {
    const char *type = str_field(p, "type");
    if (type && strcmp(type, "Sequence") == 0) {
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(p, "pretokenizers")) scan_pretok(item, seen);
    } else if (type && strcmp(type, "Split") == 0) {
        const char *re = str_field(cJSON_GetObjectItemCaseSensitive(p, "pattern"), "Regex");
        const char *behavior = str_field(p, "behavior");
        bool qwen2 = re && strcmp(re, k_qwen2_regex) == 0;
        bool ok = re && (qwen2 || strcmp(re, k_llama3_regex) == 0) && behavior &&
                  strcmp(behavior, "Isolated") == 0 && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "invert"));
        seen->pre = qwen2 ? WG_PRE_QWEN2 : WG_PRE_LLAMA3;
        if (ok && !seen->split) seen->split = true;
        else seen->other = true;
    } else if (type && strcmp(type, "ByteLevel") == 0) {
        /* Llama 3 has the split done already: no prefix space, no GPT-2 regex. */
        bool ok = !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "add_prefix_space")) &&
                  !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "use_regex"));
        if (ok && seen->split && !seen->byte_level) seen->byte_level = true;
        else seen->other = true;
    } else {
        seen->other = true;
    }
}

/* ---- post-processor: which special tokens it adds ---- */

static const cJSON *find_template(const cJSON *p) {
    const char *type = str_field(p, "type");
    if (!type) return NULL;
    if (strcmp(type, "TemplateProcessing") == 0) return p;
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(p, "processors")) {
            const cJSON *t = find_template(item);
            if (t) return t;
        }
    }
    return NULL;
}

/* The special token at the start (first) or end of the single-sequence template, or NULL. */
static const char *template_special(const cJSON *tmpl, bool first) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(tmpl, "single");
    int n = cJSON_GetArraySize(single);
    if (!cJSON_IsArray(single) || n == 0) return NULL;
    const cJSON *item = cJSON_GetArrayItem(single, first ? 0 : n - 1);
    return str_field(cJSON_GetObjectItemCaseSensitive(item, "SpecialToken"), "id");
}

/* ---- vocabulary ---- */

static bool set_piece(wg_vocab *v, int32_t id, const char *text, int32_t type) {
    size_t len = strlen(text);
    char *p = malloc(len + 1);
    if (!p) return false;
    memcpy(p, text, len + 1);
    free(v->pieces[id]);
    v->pieces[id] = p;
    v->types[id] = type;
    return true;
}

static int32_t find_piece(const wg_vocab *v, const char *text) {
    if (!text) return -1;
    for (int32_t i = 0; i < v->n; i++)
        if (v->pieces[i] && strcmp(v->pieces[i], text) == 0) return i;
    return -1;
}

/* The text of a config entry such as "bos_token": a string or {"content": ...}. */
static const char *config_token(const cJSON *config, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, key);
    if (cJSON_IsString(v)) return v->valuestring;
    return str_field(v, "content");
}

static bool read_ids(const cJSON *vocab, const cJSON *added, wg_vocab *out, char *err, size_t err_size) {
    int32_t n = 0, id, named = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, vocab) {
        if (!item->string || !id_value(item, &id))
            return failf(err, err_size, "model.vocab: entry '%.40s' has no valid id", item->string ? item->string : "");
        if (id + 1 > n) n = id + 1;
        named++;
    }
    cJSON_ArrayForEach(item, added) {
        if (!id_value(cJSON_GetObjectItemCaseSensitive(item, "id"), &id) || !str_field(item, "content"))
            return failf(err, err_size, "added_tokens: an entry lacks a valid id or content");
        if (id + 1 > n) n = id + 1;
        named++;
    }
    if (n == 0) return failf(err, err_size, "model.vocab is empty");
    /* Real vocabularies are dense (a few padding ids at most): a lone huge id is
     * a broken file, not a reason to allocate millions of placeholders. */
    if (n > 2 * named + 1024)
        return failf(err, err_size, "token ids are too sparse (highest id %d for %d tokens)", (int)(n - 1), (int)named);
    if (!wg_vocab_alloc(out, n)) return failf(err, err_size, "out of memory");
    out->kind = WG_VOCAB_BPE;
    out->add_space_prefix = false;
    cJSON_ArrayForEach(item, vocab) {
        id_value(item, &id);
        if (out->pieces[id]) return failf(err, err_size, "model.vocab: id %d given twice", (int)id);
        if (!set_piece(out, id, item->string, WG_TOKEN_NORMAL)) return failf(err, err_size, "out of memory");
    }
    cJSON_ArrayForEach(item, added) {
        id_value(cJSON_GetObjectItemCaseSensitive(item, "id"), &id);
        bool special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "special"));
        if (!set_piece(out, id, str_field(item, "content"), special ? WG_TOKEN_CONTROL : WG_TOKEN_USER_DEFINED))
            return failf(err, err_size, "out of memory");
    }
    for (int32_t i = 0; i < n; i++) {
        if (out->pieces[i]) continue;
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%d]", (int)i);
        if (!set_piece(out, i, pad, WG_TOKEN_UNUSED)) return failf(err, err_size, "out of memory");
    }
    return true;
}

static bool read_merges(const cJSON *merges, wg_vocab *out, char *err, size_t err_size) {
    if (!cJSON_IsArray(merges)) return failf(err, err_size, "model.merges is missing or not an array");
    int n = cJSON_GetArraySize(merges), i = 0;
    if (!wg_vocab_alloc_merges(out, n)) return failf(err, err_size, "out of memory");
    /* Walk the list: cJSON_GetArrayItem(i) is a linear search, quadratic over 280k merges. */
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        const char *a = NULL, *b = NULL;
        size_t al, bl;
        if (cJSON_IsString(m)) {
            const char *s = m->valuestring;
            const char *sp = s[0] ? strchr(s + 1, ' ') : NULL;
            if (!sp || strchr(sp + 1, ' ') || !sp[1]) return failf(err, err_size, "model.merges[%d]: expected \"left right\"", i);
            a = s;
            al = (size_t)(sp - s);
            b = sp + 1;
            bl = strlen(b);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            a = m->child->valuestring;
            b = m->child->next->valuestring;
            al = strlen(a);
            bl = strlen(b);
            /* GGUF stores "left right": a space inside a piece would be ambiguous. */
            if (!al || !bl || memchr(a, ' ', al) || memchr(b, ' ', bl))
                return failf(err, err_size, "model.merges[%d]: a piece is empty or holds a space", i);
        } else {
            return failf(err, err_size, "model.merges[%d]: expected a string or a pair of strings", i);
        }
        char *s = malloc(al + bl + 2);
        if (!s) return failf(err, err_size, "out of memory");
        memcpy(s, a, al);
        s[al] = ' ';
        memcpy(s + al + 1, b, bl);
        s[al + 1 + bl] = '\0';
        out->merges[i++] = s;
    }
    return true;
}

static bool set_specials(const cJSON *root, const cJSON *config, wg_vocab *v, char *err, size_t err_size) {
    const cJSON *tmpl = find_template(cJSON_GetObjectItemCaseSensitive(root, "post_processor"));
    const char *first = tmpl ? template_special(tmpl, true) : NULL;
    const char *last = tmpl ? template_special(tmpl, false) : NULL;
    const char *bos = config ? config_token(config, "bos_token") : first;
    v->bos = find_piece(v, bos);
    if (bos && v->bos < 0) return failf(err, err_size, "bos token '%.40s' is not in the vocabulary", bos);
    const char *eos = config ? config_token(config, "eos_token") : NULL;
    if (!config) {
        static const char *const names[] = {"<|end_of_text|>", "<|endoftext|>", "</s>"};
        for (size_t i = 0; i < sizeof names / sizeof names[0] && !eos; i++)
            if (find_piece(v, names[i]) >= 0) eos = names[i];
    }
    v->eos = find_piece(v, eos);
    if (eos && v->eos < 0) return failf(err, err_size, "eos token '%.40s' is not in the vocabulary", eos);
    v->pad = config ? find_piece(v, config_token(config, "pad_token")) : -1;
    v->unk = config ? find_piece(v, config_token(config, "unk_token")) : -1;
    const cJSON *ab = config ? cJSON_GetObjectItemCaseSensitive(config, "add_bos_token") : NULL;
    const cJSON *ae = config ? cJSON_GetObjectItemCaseSensitive(config, "add_eos_token") : NULL;
    v->add_bos = cJSON_IsBool(ab) ? cJSON_IsTrue(ab) : (first && v->bos >= 0 && strcmp(first, v->pieces[v->bos]) == 0);
    v->add_eos = cJSON_IsBool(ae) ? cJSON_IsTrue(ae) : (last && v->eos >= 0 && strcmp(last, v->pieces[v->eos]) == 0);
    return true;
}

static bool parse_root(const cJSON *root, const cJSON *config, wg_vocab *out, char *err, size_t err_size) {
    if (!cJSON_IsObject(root)) return failf(err, err_size, "tokenizer.json: not a JSON object");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const char *type = str_field(model, "type");
    if (!type || strcmp(type, "BPE") != 0)
        return failf(err, err_size, "unsupported tokenizer model '%.40s' (model.type): only BPE is supported",
                     type ? type : "(missing)");
    pretok_seen seen = {false, false, false, WG_PRE_LLAMA3};
    scan_pretok(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), &seen);
    if (!seen.split || !seen.byte_level || seen.other)
        return failf(err, err_size, "unsupported pre-tokenizer: only Llama 3's and Qwen2's (Split on their regex, "
                                    "then ByteLevel without prefix space or regex) are supported");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab)) return failf(err, err_size, "model.vocab is missing or not an object");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsArray(added) && !cJSON_IsNull(added)) return failf(err, err_size, "added_tokens is not an array");
    if (config && !cJSON_IsObject(config)) return failf(err, err_size, "tokenizer_config.json: not a JSON object");
    if (!read_ids(vocab, cJSON_IsArray(added) ? added : NULL, out, err, err_size)) return false;
    out->pre = seen.pre;
    return read_merges(cJSON_GetObjectItemCaseSensitive(model, "merges"), out, err, err_size) &&
           set_specials(root, config, out, err, err_size);
}

bool wg_hf_tokenizer_parse(const char *json, size_t json_len, const char *config, size_t config_len, wg_vocab *out,
                           char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_ParseWithLength(json, json_len);
    if (!root) return failf(err, err_size, "tokenizer.json: invalid JSON");
    cJSON *cfg = NULL;
    if (config && !(cfg = cJSON_ParseWithLength(config, config_len))) {
        cJSON_Delete(root);
        return failf(err, err_size, "tokenizer_config.json: invalid JSON");
    }
    bool ok = parse_root(root, cfg, out, err, err_size);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    if (!ok) wg_vocab_clear(out);
    return ok;
}

bool wg_bpe_set_vocab_kv(gguf_writer *w, const wg_vocab *v) {
    bool ok = gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    ok = ok && gguf_writer_set_str(w, "tokenizer.ggml.pre", v->pre == WG_PRE_QWEN2 ? "qwen2" : "llama-bpe");
    ok = ok && gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->pieces, (size_t)v->n);
    ok = ok && gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, v->types, (size_t)v->n);
    ok = ok && gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges, (size_t)v->n_merges);
    if (v->bos >= 0) ok = ok && gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos);
    if (v->eos >= 0) ok = ok && gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos);
    if (v->unk >= 0) ok = ok && gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk);
    if (v->pad >= 0) ok = ok && gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)v->pad);
    ok = ok && gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos);
    ok = ok && gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", v->add_eos);
    return ok;
}

static char *read_text_file(const char *path, size_t *len, char *err, size_t err_size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        failf(err, err_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = cap < MAX_FILE_BYTES ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    bool bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        failf(err, err_size, "%s: cannot read the file (error or larger than 1 GiB)", path);
        return NULL;
    }
    *len = n;
    return buf;
}

/* config.json's bos_token_id, ... for the ids the tokenizer files left unset (llama.cpp's
 * SpecialVocab reads them last too). */
static bool model_config_ids(const char *path, wg_vocab *v, char *err, size_t err_size) {
    cJSON *c = wg_json_load_file(path, 1u << 20, err, err_size);
    if (!c) return false;
    static const char *const keys[] = {"bos_token_id", "eos_token_id", "unk_token_id", "pad_token_id"};
    int32_t *ids[] = {&v->bos, &v->eos, &v->unk, &v->pad};
    for (int i = 0; i < 4; i++) {
        int32_t id;
        if (*ids[i] < 0 && id_value(cJSON_GetObjectItemCaseSensitive(c, keys[i]), &id) && id < v->n) *ids[i] = id;
    }
    cJSON_Delete(c);
    return true;
}

static bool to_gguf(const char *json_path, const char *config_path, const char *model_config_path, int32_t n_vocab,
                    gguf_writer *w, char *err, size_t err_size) {
    size_t jl = 0, cl = 0;
    char *json = read_text_file(json_path, &jl, err, err_size);
    if (!json) return false;
    char *cfg = NULL;
    if (config_path && !(cfg = read_text_file(config_path, &cl, err, err_size))) {
        free(json);
        return false;
    }
    wg_vocab v;
    char sub[400];
    bool ok = wg_hf_tokenizer_parse(json, jl, cfg, cl, &v, sub, sizeof sub);
    free(json);
    free(cfg);
    if (!ok) return failf(err, err_size, "%s", sub);
    /* padded before the config's ids are read: they may name a padding id, as llama.cpp allows */
    if (n_vocab > 0 && v.n > n_vocab) {
        failf(err, err_size, "tokenizer.json has %d tokens but config.json's vocab_size is %d", (int)v.n, (int)n_vocab);
        wg_vocab_clear(&v);
        return false;
    }
    if (n_vocab > 0 && !wg_vocab_pad(&v, n_vocab, 0.0f)) {
        wg_vocab_clear(&v);
        return failf(err, err_size, "out of memory");
    }
    if (model_config_path && !model_config_ids(model_config_path, &v, err, err_size)) {
        wg_vocab_clear(&v);
        return false;
    }
    ok = wg_bpe_set_vocab_kv(w, &v);
    wg_vocab_clear(&v);
    if (!ok) return failf(err, err_size, "%s", gguf_writer_error(w));
    return true;
}

bool wg_hf_tokenizer_to_gguf(const char *tokenizer_json_path, const char *tokenizer_config_json_path_or_NULL,
                             gguf_writer *w, char *err, size_t err_size) {
    return to_gguf(tokenizer_json_path, tokenizer_config_json_path_or_NULL, NULL, 0, w, err, err_size);
}

bool wg_hf_folder_tokenizer_to_gguf(const char *tokenizer_json_path, const char *tokenizer_config_json_path_or_NULL,
                                    const char *config_json_path, int32_t n_vocab, gguf_writer *w, char *err,
                                    size_t err_size) {
    return to_gguf(tokenizer_json_path, tokenizer_config_json_path_or_NULL, config_json_path, n_vocab, w, err,
                   err_size);
}
