/* A context: one sequence's KV cache, activation buffers and logits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/host_memory.h"
#include "model/model.h"

#define WG_DEFAULT_BATCH 64

static int batch_rows(const wgllm_model *m, int n_ctx) {
    int batch = m->backend->ops->batch_hint > 0 ? m->backend->ops->batch_hint : WG_DEFAULT_BATCH;
    return n_ctx < batch ? n_ctx : batch;
}

/* a * b, or UINT64_MAX when that overflows: a size no host has, so it is refused. */
static uint64_t mul_sat(uint64_t a, uint64_t b) {
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* Host bytes of one context's KV cache (f32 K and V of every layer) and of its activation
 * and logit buffers (as wg_acts_create and wgllm_context_create make them: one row of
 * logits on the backend and one on the host, more only when all logits are asked for). */
static void context_bytes(const wgllm_model *m, int n_ctx, uint64_t *kv, uint64_t *buffers) {
    const wg_hparams *hp = &m->hp;
    const uint64_t kv_dim = (uint64_t)hp->n_head_kv * (uint64_t)hp->head_dim;
    *kv = mul_sat(mul_sat(2 * sizeof(float) * (uint64_t)hp->n_layer, kv_dim), (uint64_t)n_ctx);
    /* the layers' activations, the last rows, each row's position and sequence */
    const uint64_t row = wg_layer_acts_row_bytes(&m->layer_descs[0]) + sizeof(float) * (uint64_t)hp->n_embd +
                         sizeof(int32_t) + sizeof(wg_layer_seq);
    *buffers = mul_sat(row, (uint64_t)batch_rows(m, n_ctx)) + 2 * sizeof(float) * (uint64_t)hp->n_vocab;
}

wgllm_status wgllm_context_check_memory(const wgllm_model *m, int n_ctx, int n_contexts, char *err,
                                        size_t err_size) {
    char scratch[8];
    if (!err || err_size == 0) {
        err = scratch;
        err_size = sizeof scratch;
    }
    if (!m || n_contexts < 1) return WGLLM_ERR_INVALID_ARG;
    if (!m->backend || !m->backend->ops->host_memory) return WGLLM_OK;
    if (n_ctx <= 0) n_ctx = m->hp.n_ctx_train;
    uint64_t kv, buffers;
    context_bytes(m, n_ctx, &kv, &buffers);
    const uint64_t need = mul_sat(kv > UINT64_MAX - buffers ? UINT64_MAX : kv + buffers, (uint64_t)n_contexts);
    const wg_host_memory host = wg_host_memory_query();
    if (need <= host.available) return WGLLM_OK;
    char b_need[32], b_kv[32], b_avail[32];
    wg_format_bytes(need, b_need, sizeof b_need);
    wg_format_bytes(kv, b_kv, sizeof b_kv);
    wg_format_bytes(host.available, b_avail, sizeof b_avail);
    snprintf(err, err_size,
             "%d context%s of %d tokens need%s %s of host memory (%llu bytes; a KV cache takes %s), but only %s "
             "(%llu bytes) is available (%s)",
             n_contexts, n_contexts == 1 ? "" : "s", n_ctx, n_contexts == 1 ? "s" : "", b_need,
             (unsigned long long)need, b_kv, b_avail, (unsigned long long)host.available, host.limit);
    return WGLLM_ERR_NO_MEMORY;
}

wgllm_context_params wgllm_context_default_params(void) {
    wgllm_context_params p = {.n_ctx = 0};
    return p;
}

void wgllm_context_free(wgllm_context *c) {
    if (!c) return;
    wgllm_model *m = (wgllm_model *)c->model; /* its lock: other contexts may be evaluating */
    wg_backend *b = m->backend;
    pthread_mutex_lock(&m->eval_lock);
    if (c->k_cache) {
        for (int l = 0; l < m->hp.n_layer; l++) {
            if (c->k_cache[l]) b->ops->tensor_free(b, c->k_cache[l]);
            if (c->v_cache && c->v_cache[l]) b->ops->tensor_free(b, c->v_cache[l]);
        }
    }
    wg_acts_free(m, &c->acts);
    pthread_mutex_unlock(&m->eval_lock);
    free(c->k_cache);
    free(c->v_cache);
    free(c->host_logits);
    free(c->observer_rows);
    free(c);
}

wgllm_status wgllm_context_create(const wgllm_model *m, const wgllm_context_params *params, wgllm_context **out,
                                  char *err, size_t err_size) {
    char scratch[8];
    if (!err || err_size == 0) {
        err = scratch;
        err_size = sizeof scratch;
    }
    if (!out || !m) return WGLLM_ERR_INVALID_ARG;
    *out = NULL;
    if (!m->backend) {
        snprintf(err, err_size, "model was loaded vocab-only: it cannot evaluate");
        return WGLLM_ERR_INVALID_ARG;
    }
    const wg_hparams *hp = &m->hp;
    int n_ctx = params && params->n_ctx > 0 ? params->n_ctx : hp->n_ctx_train;
    if (n_ctx > hp->n_ctx_train) {
        snprintf(err, err_size, "context size %d exceeds the model's training context %d", n_ctx, hp->n_ctx_train);
        return WGLLM_ERR_INVALID_ARG;
    }
    wgllm_status st = wgllm_context_check_memory(m, n_ctx, 1, err, err_size);
    if (st != WGLLM_OK) return st;
    wgllm_context *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, err_size, "out of memory");
        return WGLLM_ERR_NO_MEMORY;
    }
    c->model = m;
    c->n_ctx = n_ctx;
    c->n_batch = batch_rows(m, n_ctx);
    wg_backend *b = m->backend;
    const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    const int nb = c->n_batch;
    c->k_cache = calloc((size_t)hp->n_layer, sizeof *c->k_cache);
    c->v_cache = calloc((size_t)hp->n_layer, sizeof *c->v_cache);
    c->cap_logit_rows = 1; /* the last token's; wgllm_eval grows it when all are asked for */
    c->host_logits = malloc(sizeof(float) * (size_t)hp->n_vocab);
    bool ok = c->k_cache && c->v_cache && c->host_logits;
    /* the backend is not thread-safe: other contexts of the model may be evaluating */
    wgllm_model *locked = (wgllm_model *)m; /* the lock is the model's mutable part */
    pthread_mutex_lock(&locked->eval_lock);
    for (int l = 0; ok && l < hp->n_layer; l++) {
        if (b->ops->kv_cache_create)
            ok = (c->k_cache[l] = b->ops->kv_cache_create(b, kv_dim, n_ctx, 2 * l, err, err_size)) != NULL &&
                 (c->v_cache[l] = b->ops->kv_cache_create(b, kv_dim, n_ctx, 2 * l + 1, err, err_size)) != NULL;
        else
            ok = (c->k_cache[l] = b->ops->buffer_create(b, kv_dim, n_ctx, err, err_size)) != NULL &&
                 (c->v_cache[l] = b->ops->buffer_create(b, kv_dim, n_ctx, err, err_size)) != NULL;
    }
    ok = ok && wg_acts_create(m, nb, &c->acts, err, err_size);
    pthread_mutex_unlock(&locked->eval_lock);
    if (!ok) {
        if (!err[0]) snprintf(err, err_size, "out of memory for a context of %d tokens", n_ctx);
        wgllm_context_free(c);
        return WGLLM_ERR_NO_MEMORY;
    }
    *out = c;
    return WGLLM_OK;
}

const char *wgllm_context_error(const wgllm_context *c) { return c ? c->error : "no context"; }

wgllm_status wgllm_context_set_matmul_observer(wgllm_context *c, wgllm_matmul_observer fn, void *user) {
    if (!c) return WGLLM_ERR_INVALID_ARG;
    if (fn && !c->observer_rows) {
        /* rows of the widest input (n_embd, n_head * head_dim or n_ff), a batch of them at a time */
        const wg_hparams *hp = &c->model->hp;
        int64_t width = hp->n_embd;
        if ((int64_t)hp->n_head * hp->head_dim > width) width = (int64_t)hp->n_head * hp->head_dim;
        if (hp->n_ff > width) width = hp->n_ff;
        const int64_t cap = width * c->n_batch;
        if (!(c->observer_rows = malloc(sizeof(float) * (size_t)cap))) {
            snprintf(c->error, sizeof c->error, "out of memory for the matmul observer's rows");
            return WGLLM_ERR_NO_MEMORY;
        }
        c->observer_cap = cap;
    }
    c->observer = fn;
    c->observer_user = user;
    return WGLLM_OK;
}
int wgllm_context_n_ctx(const wgllm_context *c) { return c->n_ctx; }
int wgllm_context_n_past(const wgllm_context *c) { return c->n_past; }

void wgllm_context_truncate(wgllm_context *c, int pos) {
    if (pos >= 0 && pos < c->n_past) c->n_past = pos;
}

static wgllm_status fail(wgllm_context *c, wgllm_status s, const char *msg) {
    snprintf(c->error, sizeof c->error, "%s", msg);
    return s;
}

/* Checks tokens to be appended to c (one sequence of a batch) without changing c. */
static wgllm_status check_tokens(wgllm_context *c, const wgllm_token *tokens, int n) {
    c->error[0] = 0;
    if (!tokens || n <= 0) return fail(c, WGLLM_ERR_INVALID_ARG, "no tokens to evaluate");
    if (n > c->n_ctx - c->n_past) {
        snprintf(c->error, sizeof c->error, "%d tokens do not fit: %d of %d context positions are free", n,
                 c->n_ctx - c->n_past, c->n_ctx);
        return WGLLM_ERR_CONTEXT_FULL;
    }
    const int n_vocab = c->model->hp.n_vocab;
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= n_vocab) {
            snprintf(c->error, sizeof c->error, "token id %d out of range [0, %d)", tokens[i], n_vocab);
            return WGLLM_ERR_INVALID_ARG;
        }
    }
    return WGLLM_OK;
}

wgllm_status wgllm_eval(wgllm_context *c, const wgllm_token *tokens, int n, bool all_logits) {
    if (!c) return WGLLM_ERR_INVALID_ARG;
    wgllm_status st = check_tokens(c, tokens, n);
    if (st != WGLLM_OK) return st;
    const int n_vocab = c->model->hp.n_vocab;
    if (all_logits && n > c->cap_logit_rows) {
        float *p = realloc(c->host_logits, sizeof(float) * (size_t)n_vocab * (size_t)n);
        if (!p) return fail(c, WGLLM_ERR_NO_MEMORY, "out of memory for logits");
        c->host_logits = p;
        c->cap_logit_rows = n;
    }
    wgllm_model *m = (wgllm_model *)c->model; /* the lock is the only mutable part */
    pthread_mutex_lock(&m->eval_lock);
    int start_past = c->n_past;
    char err[200] = "";
    if (all_logits && !wg_acts_reserve_logits(m, &c->acts, n < c->n_batch ? n : c->n_batch, err, sizeof err)) {
        pthread_mutex_unlock(&m->eval_lock);
        snprintf(c->error, sizeof c->error, "cannot allocate logits: %s", err);
        return WGLLM_ERR_NO_MEMORY;
    }
    bool ok = true;
    /* Logits stay on the device unless all rows were asked for (then each chunk's
     * rows are copied before the next chunk overwrites them); wgllm_get_logits
     * and wgllm_greedy fetch what they need. */
    c->logits_on_host = false;
    for (int done = 0; ok && done < n; done += c->n_batch) {
        int chunk = n - done < c->n_batch ? n - done : c->n_batch;
        wg_seq seq = {c, tokens + done, chunk, -1};
        ok = wg_forward(m, &c->acts, &seq, 1, all_logits);
        if (ok && all_logits)
            m->backend->ops->read_rows(m->backend, c->acts.logits, 0, chunk,
                                       c->host_logits + (size_t)done * (size_t)n_vocab);
        ok = m->backend->ops->synchronize(m->backend) && ok;
        if (ok) c->n_past += chunk;
    }
    c->logits_on_host = all_logits;
    if (!ok) {
        snprintf(c->error, sizeof c->error, "backend failure: %s", m->backend->ops->error(m->backend));
        c->n_past = start_past;
    }
    pthread_mutex_unlock(&m->eval_lock);
    if (!ok) return WGLLM_ERR_BACKEND;
    c->n_logit_rows = all_logits ? n : 1;
    return WGLLM_OK;
}

const float *wgllm_get_logits(const wgllm_context *cc, int i) {
    if (!cc || i < 0 || i >= cc->n_logit_rows) return NULL;
    wgllm_context *c = (wgllm_context *)cc; /* the lazy copy is a cache, not a visible change */
    if (!c->logits_on_host) {
        wgllm_model *m = (wgllm_model *)c->model;
        pthread_mutex_lock(&m->eval_lock);
        m->backend->ops->read_rows(m->backend, c->acts.logits, 0, 1, c->host_logits);
        bool ok = m->backend->ops->synchronize(m->backend);
        pthread_mutex_unlock(&m->eval_lock);
        if (!ok) {
            snprintf(c->error, sizeof c->error, "backend failure: %s", m->backend->ops->error(m->backend));
            return NULL;
        }
        c->logits_on_host = true;
    }
    return c->host_logits + (size_t)i * (size_t)c->model->hp.n_vocab;
}

wgllm_token wgllm_greedy(wgllm_context *c) {
    if (!c || c->n_logit_rows < 1) return -1;
    const int row = c->n_logit_rows - 1;
    wgllm_model *m = (wgllm_model *)c->model;
    if (!c->logits_on_host && m->backend->ops->argmax && c->n_logit_rows == 1) {
        pthread_mutex_lock(&m->eval_lock);
        int32_t t = m->backend->ops->argmax(m->backend, c->acts.logits, 0);
        bool ok = m->backend->ops->synchronize(m->backend);
        pthread_mutex_unlock(&m->eval_lock);
        if (!ok || t < 0) {
            snprintf(c->error, sizeof c->error, "backend failure: %s", m->backend->ops->error(m->backend));
            return -1;
        }
        return t;
    }
    const float *l = wgllm_get_logits(c, row);
    if (!l) return -1;
    int best = 0;
    for (int i = 1; i < m->hp.n_vocab; i++)
        if (l[i] > l[best]) best = i;
    return best;
}

#define GREEDY_BATCH_MAX 64

wgllm_status wgllm_greedy_batch(wgllm_context *const *ctxs, int n, wgllm_token *out) {
    if (!ctxs || !out || n <= 0) return WGLLM_ERR_INVALID_ARG;
    for (int i = 0; i < n; i++)
        if (!ctxs[i] || ctxs[i]->model != ctxs[0]->model) return WGLLM_ERR_INVALID_ARG;
    wgllm_model *m = (wgllm_model *)ctxs[0]->model;
    const wg_backend_ops *ops = m->backend->ops;
    bool done[GREEDY_BATCH_MAX] = {0};
    if (ops->argmax_rows && n <= GREEDY_BATCH_MAX) { /* logits still on the device: one read for all */
        const wg_tensor *rows[GREEDY_BATCH_MAX];
        int who[GREEDY_BATCH_MAX], k = 0;
        for (int i = 0; i < n; i++) {
            if (ctxs[i]->logits_on_host || ctxs[i]->n_logit_rows != 1) continue;
            rows[k] = ctxs[i]->acts.logits;
            who[k++] = i;
        }
        int32_t ids[GREEDY_BATCH_MAX];
        pthread_mutex_lock(&m->eval_lock);
        bool taken = k > 1 && ops->argmax_rows(m->backend, rows, k, ids);
        bool ok = !taken || ops->synchronize(m->backend);
        pthread_mutex_unlock(&m->eval_lock);
        for (int j = 0; taken && j < k; j++) {
            if (!ok || ids[j] < 0) {
                snprintf(ctxs[who[j]]->error, sizeof ctxs[who[j]]->error, "backend failure: %s",
                         ops->error(m->backend));
                return WGLLM_ERR_BACKEND;
            }
            out[who[j]] = ids[j];
            done[who[j]] = true;
        }
    }
    for (int i = 0; i < n; i++) {
        if (i < GREEDY_BATCH_MAX && done[i]) continue;
        if ((out[i] = wgllm_greedy(ctxs[i])) < 0) return WGLLM_ERR_BACKEND;
    }
    return WGLLM_OK;
}

wgllm_status wgllm_eval_batch(wgllm_context *const *ctxs, const wgllm_token *const *tokens, const int *n_tokens,
                              int n_seqs) {
    if (!ctxs || !tokens || !n_tokens || n_seqs <= 0) return WGLLM_ERR_INVALID_ARG;
    for (int i = 0; i < n_seqs; i++) {
        if (!ctxs[i] || ctxs[i]->model != ctxs[0]->model) return WGLLM_ERR_INVALID_ARG;
        for (int j = 0; j < i; j++)
            if (ctxs[j] == ctxs[i]) return fail(ctxs[i], WGLLM_ERR_INVALID_ARG, "context appears twice in a batch");
        wgllm_status s = check_tokens(ctxs[i], tokens[i], n_tokens[i]);
        if (s != WGLLM_OK) return s;
    }
    return wg_eval_batch(ctxs, tokens, n_tokens, n_seqs);
}
