/* Loaded models, reference-counted so that a hot reload can switch to a new model
 * while requests in flight finish on the old one, which is freed with its last user. */
#ifndef WGLLM_SERVER_MODEL_REF_H
#define WGLLM_SERVER_MODEL_REF_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "server/chat_template.h"
#include "wgllm.h"

typedef struct srv_model {
    wgllm_model *model;
    char id[128];   /* name in the API */
    char path[1024];
    int n_vocab, n_ctx, parallel;
    int64_t created; /* unix time of the load */
    srv_chat_format chat;
    uint64_t device_memory;
    int refs;                /* guarded by the registry's lock */
    /* KV cache slots, created with the model; touched only by the scheduler thread
     * while a sequence on this model holds a reference. */
    wgllm_context **ctxs;
    bool *ctx_busy;
} srv_model;

typedef struct srv_models {
    pthread_mutex_t mu;
    pthread_mutex_t reload_mu; /* one reload at a time */
    srv_model *current;
    const char *alias;
    char id[128]; /* the served id: --alias, or the start file's name; kept across reloads */
    const char *model_cache; /* --model-cache DIR, or NULL */
    wgllm_model_params params;
    int n_ctx, parallel;
    int step_tokens, prefill_chunk; /* the scheduler's step shapes, run once at each load */
} srv_models;

/* Where a model named on the command line or in a reload request is read from: the file
 * itself, or its verified copy in the shared-memory model cache (made on first use). NULL
 * with a message in err when the cache cannot provide it. */
const char *server_resolve_model_path(const srv_models *r, const char *path, char *buf, size_t buf_size, char *err,
                                      size_t err_size);

/* Loads the model with --parallel KV caches of n_ctx tokens each and runs the scheduler's
 * shapes of step once (wgllm_warm_up): steps of up to step_tokens, prefill chunks of
 * prefill_chunk. */
bool srv_models_init(srv_models *r, const char *path, const char *alias, const char *model_cache,
                     const wgllm_model_params *params, int n_ctx, int parallel, int step_tokens, int prefill_chunk,
                     char *err, size_t err_size);
void srv_models_destroy(srv_models *r);
/* The current model with one more reference (NULL only before init). */
srv_model *srv_models_acquire(srv_models *r);
void srv_models_release(srv_models *r, srv_model *m);
/* Loads path (NULL: the current model's file again) beside the current model and
 * makes it current. On failure the old model stays and err says why. */
bool srv_models_reload(srv_models *r, const char *path, char *id_out, size_t id_size, char *err, size_t err_size);

#endif
