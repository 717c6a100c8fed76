/* Generator.GenerateToken (streamed) and Generator.Generate (unary): the request is checked
 * and tokenized as the HTTP API does, then queued on the shared scheduler; a client that
 * cancels or runs out of time cancels the job, which leaves its slot at the next step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/grpc/grpc_call.h"
#include "server/grpc/grpc_codec.h"
#include "wgllm/v1/generate.pb-c.h"

#define POLL_MS 20 /* how often a waiting call checks that its client is still there */

/* What the job produced since the last response, copied out under its lock. */
typedef struct delta {
    char *text;
    size_t len;
    srv_token_logprob *lps;
    int n_lps;
    bool done;
    srv_finish finish;
    int n_generated;
    char error[256];
} delta;

/* Takes the new output; waits a little first when there is none. false when out of memory. */
static bool take(srv_job *j, size_t *sent_text, int *sent_lps, delta *d) {
    memset(d, 0, sizeof *d);
    pthread_mutex_lock(&j->mu);
    if (!j->done && j->text_len == *sent_text && j->n_lps == *sent_lps) srv_job_wait(j, POLL_MS);
    d->len = j->text_len - *sent_text;
    d->n_lps = j->n_lps - *sent_lps;
    if (!d->len && !d->n_lps && !j->done) { /* nothing yet */
        pthread_mutex_unlock(&j->mu);
        return true;
    }
    d->text = malloc(d->len + 1);
    d->lps = malloc(sizeof *d->lps * (size_t)(d->n_lps ? d->n_lps : 1));
    bool ok = d->text && d->lps;
    if (ok) {
        if (d->len) memcpy(d->text, j->text + *sent_text, d->len);
        d->text[d->len] = 0;
        if (d->n_lps) memcpy(d->lps, j->lps + *sent_lps, sizeof *d->lps * (size_t)d->n_lps);
        *sent_text = j->text_len;
        *sent_lps = j->n_lps;
        d->done = j->done;
        d->finish = j->finish;
        d->n_generated = j->n_generated;
        memcpy(d->error, j->error, sizeof d->error);
    }
    pthread_mutex_unlock(&j->mu);
    return ok;
}

static void delta_free(delta *d) {
    free(d->text);
    free(d->lps);
}

/* A response message over borrowed storage (nothing in it is freed separately). */
typedef struct response {
    Wgllm__V1__GenerateResponse msg;
    Wgllm__V1__Usage usage;
    Wgllm__V1__Token *tokens, **token_ptrs;
    Wgllm__V1__TopLogprob *tops, **top_ptrs;
} response;

static bool response_build(response *r, const srv_job *j, const char *id, const char *text,
                           const srv_token_logprob *lps, int n_lps, srv_finish finish) {
    memset(r, 0, sizeof *r);
    wgllm__v1__generate_response__init(&r->msg);
    r->msg.text = (char *)text;
    r->msg.id = (char *)id;
    r->msg.model = (char *)j->model->id;
    int n_tops = 0;
    for (int i = 0; i < n_lps; i++) n_tops += lps[i].n_top;
    r->tokens = calloc((size_t)n_lps + 1, sizeof *r->tokens);
    r->token_ptrs = calloc((size_t)n_lps + 1, sizeof *r->token_ptrs);
    r->tops = calloc((size_t)n_tops + 1, sizeof *r->tops);
    r->top_ptrs = calloc((size_t)n_tops + 1, sizeof *r->top_ptrs);
    if (!r->tokens || !r->token_ptrs || !r->tops || !r->top_ptrs) return false;
    int t = 0;
    for (int i = 0; i < n_lps; i++) {
        Wgllm__V1__Token *k = &r->tokens[i];
        wgllm__v1__token__init(k);
        k->id = lps[i].id;
        size_t len = 0;
        const char *bytes = wgllm_token_bytes(j->model->model, lps[i].id, &len);
        k->piece.data = (uint8_t *)bytes;
        k->piece.len = bytes ? len : 0;
        if (j->req.logprobs && !isnan(lps[i].logprob)) {
            k->logprob_opt_case = WGLLM__V1__TOKEN__LOGPROB_OPT_LOGPROB;
            k->logprob = lps[i].logprob;
        }
        k->top_logprobs = &r->top_ptrs[t];
        for (int a = 0; a < lps[i].n_top; a++, t++) {
            wgllm__v1__top_logprob__init(&r->tops[t]);
            r->tops[t].id = lps[i].top[a].id;
            r->tops[t].logprob = lps[i].top[a].logprob;
            r->top_ptrs[t] = &r->tops[t];
        }
        k->n_top_logprobs = (size_t)lps[i].n_top;
        r->token_ptrs[i] = k;
    }
    r->msg.n_tokens = (size_t)n_lps;
    r->msg.tokens = r->token_ptrs;
    if (finish != SRV_FINISH_NONE) {
        r->msg.finish_reason =
            finish == SRV_FINISH_LENGTH ? WGLLM__V1__FINISH_REASON__FINISH_REASON_LENGTH : WGLLM__V1__FINISH_REASON__FINISH_REASON_STOP;
        wgllm__v1__usage__init(&r->usage);
        r->usage.prompt_tokens = j->n_prompt;
        r->usage.completion_tokens = j->n_generated;
        r->msg.usage = &r->usage;
    }
    return true;
}

static void response_free(response *r) {
    free(r->tokens);
    free(r->token_ptrs);
    free(r->tops);
    free(r->top_ptrs);
}

/* Sends one response; false when the client is gone or memory ran out (the call is then
   finished or abandoned). */
static bool send_response(srv_gcall *g, const srv_job *j, const char *id, const delta *d, srv_finish finish,
                          bool last) {
    response r;
    bool ok = response_build(&r, j, id, d->text, d->lps, d->n_lps, finish);
    if (!ok)
        srv_gcall_finish(g, SRV_GRPC_INTERNAL, "out of memory", NULL);
    else if (last)
        srv_gcall_finish(g, SRV_GRPC_OK, NULL, &r.msg.base);
    else
        ok = srv_gcall_send(g, &r.msg.base);
    response_free(&r);
    return ok;
}

static void job_failed(srv_gcall *g, const char *error) {
    char msg[300];
    snprintf(msg, sizeof msg, "generation failed: %s", error);
    bool shutting = strstr(error, "shutting down") != NULL;
    srv_gcall_finish(g, shutting ? SRV_GRPC_UNAVAILABLE : SRV_GRPC_INTERNAL, msg, NULL);
}

void srv_grpc_generate(srv_gcall *g, bool stream) {
    srv_server *srv = g->srv;
    g->streamed = stream;
    size_t len = 0;
    uint8_t *bytes = srv_gcall_recv(g, &len);
    if (!bytes) return;
    srv_request req;
    srv_error e;
    bool ok = srv_grpc_decode_generate(bytes, len, &req, &e);
    free(bytes);
    if (!ok) {
        srv_gcall_fail(g, &e);
        return;
    }
    req.stream = stream;
    srv_job *j = srv_generate_prepare(srv, &req, &e);
    if (!j) {
        srv_gcall_fail(g, &e);
        return;
    }
    j->token_ids = true;
    g->prompt_tokens = j->n_prompt;
    if (srv_sched_submit(srv->sched, j) == SRV_SUBMIT_FULL) {
        srv_metrics_rejected(srv->metrics);
        char msg[128];
        snprintf(msg, sizeof msg, "the server is busy: %d requests are waiting; retry later", srv->opt.max_queue);
        srv_gcall_finish(g, SRV_GRPC_RESOURCE_EXHAUSTED, msg, NULL);
        srv_job_release(j);
        return;
    }
    char id[48];
    srv_new_id(srv, "gen-", id, sizeof id);
    size_t sent_text = 0;
    int sent_lps = 0;
    for (;;) {
        if (!stream) { /* the unary answer waits for the end, then takes everything at once */
            pthread_mutex_lock(&j->mu);
            if (!j->done) srv_job_wait(j, POLL_MS);
            bool done = j->done;
            pthread_mutex_unlock(&j->mu);
            if (!done) {
                if (srv_gcall_gone(g)) {
                    srv_sched_cancel(srv->sched, j);
                    break;
                }
                continue;
            }
        }
        delta d;
        if (!take(j, &sent_text, &sent_lps, &d)) {
            delta_free(&d);
            srv_sched_cancel(srv->sched, j);
            srv_gcall_finish(g, SRV_GRPC_INTERNAL, "out of memory", NULL);
            break;
        }
        if (srv_gcall_gone(g)) {
            delta_free(&d);
            srv_sched_cancel(srv->sched, j);
            break;
        }
        if (d.done && d.finish == SRV_FINISH_ERROR) {
            delta_free(&d);
            job_failed(g, j->error);
            break;
        }
        if (d.done) {
            g->completion_tokens = d.n_generated;
            send_response(g, j, id, &d, d.finish, true);
            delta_free(&d);
            break;
        }
        bool sent = (d.len == 0 && d.n_lps == 0) || send_response(g, j, id, &d, SRV_FINISH_NONE, false);
        delta_free(&d);
        if (!sent) {
            srv_sched_cancel(srv->sched, j);
            break;
        }
    }
    srv_job_release(j);
}
