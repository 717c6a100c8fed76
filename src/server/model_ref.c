/* Reference-counted models and the hot-reload switch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gguf/gguf.h"
#include "server/model_cache.h"
#include "server/model_ref.h"

const char *server_resolve_model_path(const srv_models *r, const char *path, char *buf, size_t buf_size, char *err,
                                      size_t err_size) {
    if (!r->model_cache) {
        snprintf(buf, buf_size, "%s", path);
        return buf;
    }
    char why[512];
    if (wg_model_cache_resolve(r->model_cache, path, buf, buf_size, why, sizeof why) != 0) {
        snprintf(err, err_size, "model cache: %s", why);
        return NULL;
    }
    return buf;
}

static void model_id_from_path(const char *path, char *id, size_t size) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".gguf")) n -= 5;
    snprintf(id, size, "%.*s", (int)n, base);
}

static srv_chat_format detect_chat(const char *path) {
    char err[256];
    gguf_file *f = gguf_open_private(path, err, sizeof err); /* reads the metadata only */
    if (!f) return SRV_CHAT_FALLBACK;
    const char *t = NULL;
    size_t len = 0;
    srv_chat_format fmt = SRV_CHAT_FALLBACK;
    if (gguf_get_str(f, "tokenizer.chat_template", &t, &len)) fmt = srv_chat_format_detect(t, len);
    gguf_close(f);
    return fmt;
}

static void model_free(srv_model *m) {
    if (!m) return;
    for (int i = 0; m->ctxs && i < m->parallel; i++) wgllm_context_free(m->ctxs[i]);
    free(m->ctxs);
    free(m->ctx_busy);
    wgllm_model_free(m->model);
    free(m);
}

static srv_model *model_load(srv_models *r, const char *path_in, char *err, size_t err_size) {
    char resolved[1024];
    const char *path = server_resolve_model_path(r, path_in, resolved, sizeof resolved, err, err_size);
    if (!path) return NULL;
    srv_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    m->parallel = r->parallel;
    m->ctxs = calloc((size_t)r->parallel, sizeof *m->ctxs);
    m->ctx_busy = calloc((size_t)r->parallel, sizeof *m->ctx_busy);
    if (!m->ctxs || !m->ctx_busy) {
        snprintf(err, err_size, "out of memory");
        model_free(m);
        return NULL;
    }
    /* A served file may be replaced in place at any time (`cp new.gguf model.gguf`), which
     * would kill a process that maps it (SIGBUS): the weights are read into private memory,
     * unless they come from the model cache's own copy, which is only ever replaced by rename
     * (a hard link to the source is not: it is the source's file). */
    wgllm_model_params mp = r->params;
    struct stat st;
    mp.private_copy = !(r->model_cache && stat(path, &st) == 0 && st.st_nlink == 1);
    if (wgllm_model_load(path, &mp, &m->model, err, err_size) != WGLLM_OK) {
        model_free(m);
        return NULL;
    }
    wgllm_model_info info;
    wgllm_model_get_info(m->model, &info);
    m->n_vocab = info.n_vocab;
    m->n_ctx = r->n_ctx > 0 ? r->n_ctx : info.n_ctx_train;
    m->device_memory = info.device_memory;
    m->created = (int64_t)time(NULL);
    m->chat = detect_chat(path);
    snprintf(m->path, sizeof m->path, "%s", path_in); /* the source: a reload re-reads (and re-caches) it */
    snprintf(m->id, sizeof m->id, "%s", r->id); /* fixed at start: clients keep their id across reloads */
    /* Every slot's KV cache now, as a long-running server holds them anyway: a context size
     * the model cannot take, or a device too small for --parallel of them, fails here with
     * the sizes, not in the middle of a request; and no request waits for an allocation. */
    wgllm_context_params cp = wgllm_context_default_params();
    cp.n_ctx = m->n_ctx;
    char why[512];
    if (wgllm_context_check_memory(m->model, m->n_ctx, m->parallel, why, sizeof why) != WGLLM_OK) {
        snprintf(err, err_size, "KV caches of --parallel %d x --ctx %d: %s; lower --ctx or --parallel", m->parallel,
                 m->n_ctx, why);
        model_free(m);
        return NULL;
    }
    for (int i = 0; i < m->parallel; i++) {
        if (wgllm_context_create(m->model, &cp, &m->ctxs[i], err, err_size) != WGLLM_OK) {
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, err_size, "KV cache for sequence %d of %d (--parallel, %d tokens each): %s", i + 1,
                     m->parallel, m->n_ctx, why);
            model_free(m);
            return NULL;
        }
    }
    /* a GPU builds and tunes kernels at a shape's first run: now, not in the first requests */
    wgllm_status ws = wgllm_warm_up(m->ctxs, m->parallel, r->step_tokens, r->prefill_chunk);
    if (ws != WGLLM_OK) {
        snprintf(err, err_size, "%s", wgllm_context_error(m->ctxs[0])[0] ? wgllm_context_error(m->ctxs[0])
                                                                         : wgllm_status_name(ws));
        model_free(m);
        return NULL;
    }
    wgllm_model_get_info(m->model, &info); /* device memory now includes the KV caches */
    m->device_memory = info.device_memory;
    m->refs = 1; /* the registry's own */
    return m;
}

bool srv_models_init(srv_models *r, const char *path, const char *alias, const char *model_cache,
                     const wgllm_model_params *params, int n_ctx, int parallel, int step_tokens, int prefill_chunk,
                     char *err, size_t err_size) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->reload_mu, NULL);
    r->alias = alias;
    r->model_cache = model_cache;
    r->params = *params;
    r->n_ctx = n_ctx;
    r->parallel = parallel;
    r->step_tokens = step_tokens;
    r->prefill_chunk = prefill_chunk;
    if (alias)
        snprintf(r->id, sizeof r->id, "%s", alias);
    else
        model_id_from_path(path, r->id, sizeof r->id);
    r->current = model_load(r, path, err, err_size);
    return r->current != NULL;
}

void srv_models_destroy(srv_models *r) {
    if (r->current) srv_models_release(r, r->current);
    r->current = NULL;
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->reload_mu);
}

srv_model *srv_models_acquire(srv_models *r) {
    pthread_mutex_lock(&r->mu);
    srv_model *m = r->current;
    if (m) m->refs++;
    pthread_mutex_unlock(&r->mu);
    return m;
}

void srv_models_release(srv_models *r, srv_model *m) {
    if (!m) return;
    pthread_mutex_lock(&r->mu);
    bool last = --m->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last) model_free(m);
}

bool srv_models_reload(srv_models *r, const char *path, char *id_out, size_t id_size, char *err, size_t err_size) {
    pthread_mutex_lock(&r->reload_mu);
    char again[1024] = "";
    if (!path) {
        srv_model *cur = srv_models_acquire(r);
        snprintf(again, sizeof again, "%s", cur ? cur->path : "");
        srv_models_release(r, cur);
        path = again;
    }
    srv_model *fresh = model_load(r, path, err, err_size);
    if (fresh) {
        pthread_mutex_lock(&r->mu);
        srv_model *old = r->current;
        r->current = fresh;
        pthread_mutex_unlock(&r->mu);
        if (id_out) snprintf(id_out, id_size, "%s", fresh->id);
        srv_models_release(r, old); /* freed now, or by the last request still on it */
    }
    pthread_mutex_unlock(&r->reload_mu);
    return fresh != NULL;
}
