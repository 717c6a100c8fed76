/* tokenizer.model + the folder's added tokens and special ids (see hf_spm.h). */
#include "convert/hf_spm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convert/json_file.h"
#include "tokenizer/vocab_load.h"

#define PATH_BYTES 4096
#define MAX_JSON_BYTES ((size_t)256 << 20) /* a tokenizer.json holds the whole vocabulary */

static bool set_piece(wg_vocab *v, int32_t id, const char *text, float score, int32_t type) {
    char *p = strdup(text);
    if (!p) return false;
    free(v->pieces[id]);
    v->pieces[id] = p;
    v->scores[id] = score;
    v->types[id] = type;
    return true;
}

/* config.json's vocab_size pieces: fewer are padded as llama.cpp pads them. */
static bool pad_to(wg_vocab *v, int32_t n_vocab, char *err, size_t err_size) {
    if (v->n > n_vocab) {
        snprintf(err, err_size, "tokenizer.model has %d pieces but config.json's vocab_size is %d", (int)v->n,
                 (int)n_vocab);
        return false;
    }
    if (wg_vocab_pad(v, n_vocab, -10000.0f)) return true;
    snprintf(err, err_size, "out of memory");
    return false;
}

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* dir/name parsed, or NULL when absent (*failed set when present but unreadable). */
static cJSON *optional_json(const char *dir, const char *name, bool *failed, char *err, size_t err_size) {
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!is_file(path)) return NULL;
    cJSON *j = wg_json_load_file(path, MAX_JSON_BYTES, err, err_size);
    if (!j) *failed = true;
    return j;
}

/* An id of the vocabulary from a JSON number, or -1. */
static int32_t json_id(const cJSON *j, int32_t n) {
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= 0.0 && j->valuedouble < (double)n) ||
        j->valuedouble != (double)(int32_t)j->valuedouble)
        return -1;
    return (int32_t)j->valuedouble;
}

/* llama.cpp's does_token_look_special, for the spellings of the families converted. */
static bool looks_special(const char *t) {
    size_t n = strlen(t);
    return n >= 4 && strncmp(t, "<|", 2) == 0 && strcmp(t + n - 2, "|>") == 0;
}

static bool apply_added(wg_vocab *v, bool phi3, const cJSON *added_json, const cJSON *decoder,
                        const cJSON *tok_added, char *err, size_t err_size) {
    const cJSON *item;
    cJSON_ArrayForEach(item, added_json) { /* {"<piece>": id} */
        int32_t id = json_id(item, v->n);
        if (id >= 0 && item->string && !set_piece(v, id, item->string, -1000.0f, WG_TOKEN_USER_DEFINED)) goto oom;
    }
    cJSON_ArrayForEach(item, decoder) { /* {"<id>": {"content": ..., "special": ...}} */
        char *end = NULL;
        long id = item->string ? strtol(item->string, &end, 10) : -1;
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(item, "content");
        if (!end || *end || id < 0 || id >= v->n || !cJSON_IsString(content)) continue;
        bool special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "special")) ||
                       (!phi3 && looks_special(content->valuestring));
        if (!set_piece(v, (int32_t)id, content->valuestring, -1000.0f,
                       special ? WG_TOKEN_CONTROL : WG_TOKEN_USER_DEFINED))
            goto oom;
    }
    cJSON_ArrayForEach(item, tok_added) { /* [{"id": ..., "content": ..., "special": ...}] */
        int32_t id = json_id(cJSON_GetObjectItemCaseSensitive(item, "id"), v->n);
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(item, "content");
        if (id < 0 || !cJSON_IsString(content)) continue;
        bool special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "special"));
        if (!set_piece(v, id, content->valuestring, -1000.0f, special ? WG_TOKEN_CONTROL : WG_TOKEN_USER_DEFINED))
            goto oom;
    }
    return true;
oom:
    snprintf(err, err_size, "out of memory");
    return false;
}

static int32_t find_piece(const wg_vocab *v, const char *text) {
    for (int32_t i = 0; text && i < v->n; i++)
        if (strcmp(v->pieces[i], text) == 0) return i;
    return -1;
}

/* The piece a tokenizer_config.json entry names ("<s>" or {"content": "<s>"}), as an id. */
static int32_t config_token(const wg_vocab *v, const cJSON *tc, const char *key) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(tc, key);
    if (cJSON_IsObject(e)) e = cJSON_GetObjectItemCaseSensitive(e, "content");
    return cJSON_IsString(e) ? find_piece(v, e->valuestring) : -1;
}

static void set_specials(wg_vocab *v, const cJSON *tc, const cJSON *config) {
    static const char *const names[] = {"bos", "eos", "unk", "pad"};
    int32_t *ids[] = {&v->bos, &v->eos, &v->unk, &v->pad};
    for (int i = 0; i < 4; i++) {
        char key[32];
        snprintf(key, sizeof key, "%s_token", names[i]);
        int32_t id = config_token(v, tc, key);
        snprintf(key, sizeof key, "%s_token_id", names[i]);
        if (id < 0) id = json_id(cJSON_GetObjectItemCaseSensitive(config, key), v->n);
        if (id >= 0) *ids[i] = id;
    }
    const cJSON *ab = cJSON_GetObjectItemCaseSensitive(tc, "add_bos_token");
    const cJSON *ae = cJSON_GetObjectItemCaseSensitive(tc, "add_eos_token");
    if (cJSON_IsBool(ab)) v->add_bos = cJSON_IsTrue(ab);
    if (cJSON_IsBool(ae)) v->add_eos = cJSON_IsTrue(ae);
}

bool wg_hf_spm_load(const char *dir, const wg_hf_config *cfg, wg_vocab *v, char *err, size_t err_size) {
    char path[PATH_BYTES], why[300];
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    if (!wg_vocab_load_spm(path, v, why, sizeof why)) {
        snprintf(err, err_size, "%s: %s", path, why);
        return false;
    }
    bool failed = false;
    cJSON *added = optional_json(dir, "added_tokens.json", &failed, err, err_size);
    cJSON *tc = failed ? NULL : optional_json(dir, "tokenizer_config.json", &failed, err, err_size);
    cJSON *tj = failed || cfg->shape.ext.arch != WG_LLAMA_ARCH_PHI3
                    ? NULL
                    : optional_json(dir, "tokenizer.json", &failed, err, err_size);
    cJSON *config = NULL;
    if (!failed) {
        snprintf(path, sizeof path, "%s/config.json", dir);
        config = wg_json_load_file(path, 1u << 20, err, err_size);
        failed = config == NULL;
    }
    bool ok = !failed && pad_to(v, cfg->shape.n_vocab, err, err_size) &&
              apply_added(v, cfg->shape.ext.arch == WG_LLAMA_ARCH_PHI3, cJSON_IsObject(added) ? added : NULL,
                          cJSON_GetObjectItemCaseSensitive(tc, "added_tokens_decoder"),
                          cJSON_GetObjectItemCaseSensitive(tj, "added_tokens"), err, err_size);
    if (ok) set_specials(v, tc, config);
    cJSON_Delete(added);
    cJSON_Delete(tc);
    cJSON_Delete(tj);
    cJSON_Delete(config);
    if (!ok) wg_vocab_clear(v);
    return ok;
}
