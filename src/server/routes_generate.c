/* POST /v1/completions and /v1/chat/completions: validate, tokenize, queue, then
 * either wait for the whole answer or stream it as server-sent events. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/chat_template.h"
#include "server/server_internal.h"

#define POLL_MS 50 /* how often a waiting request checks that its client is still there */

static enum MHD_Result job_error_reply(srv_conn *c, srv_job *j) {
    bool shutting = strstr(j->error, "shutting down") != NULL;
    return srv_reply_errorf(c, shutting ? 503 : 500, "server_error", shutting ? "shutting_down" : "generation_failed",
                            "generation failed: %s", j->error);
}

/* ---- streaming ---- */
typedef struct stream {
    srv_conn *c; /* valid while MHD calls stream_read */
    srv_server *srv;
    srv_job *job;
    char id[48];
    int64_t created;
    size_t sent_text;
    int sent_lps;
    bool first, done_sent, pinged;
    char *echo;
    char *buf;
    size_t len, off, cap;
} stream;

/* Appends one SSE event: prefix ("data: ", or ": " for a comment), text, blank line. */
static bool emit_line(stream *st, const char *prefix, const char *data) {
    size_t k = strlen(prefix), n = strlen(data);
    if (st->len + k + n + 3 > st->cap) {
        size_t cap = (st->len + k + n + 3) * 2;
        char *p = realloc(st->buf, cap);
        if (!p) return false;
        st->buf = p;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, prefix, k);
    memcpy(st->buf + st->len + k, data, n);
    memcpy(st->buf + st->len + k + n, "\n\n", 2);
    st->len += k + n + 2;
    return true;
}

static bool emit(stream *st, const char *data) { return emit_line(st, "data: ", data); }

static bool emit_json(stream *st, cJSON *o) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    bool ok = s && emit(st, s);
    free(s);
    return ok;
}

/* Turns the job's new output into SSE events. Under j->mu. */
static void build_events(stream *st) {
    srv_job *j = st->job;
    size_t n = j->text_len - st->sent_text;
    int n_lps = j->n_lps - st->sent_lps;
    if (n || n_lps || (st->first && !j->done)) {
        const char *text = j->text ? j->text + st->sent_text : "";
        char *joined = NULL;
        if (st->echo) { /* completions with echo: the prompt leads the first chunk */
            size_t e = strlen(st->echo);
            if ((joined = malloc(e + n + 1))) {
                memcpy(joined, st->echo, e);
                memcpy(joined + e, text, n);
                text = joined;
                n += e;
            }
            free(st->echo);
            st->echo = NULL;
        }
        emit_json(st, srv_openai_chunk(j, st->id, st->created, text, n, j->lps + st->sent_lps, n_lps, st->first,
                                       SRV_FINISH_NONE));
        free(joined);
        st->first = false;
        st->sent_text = j->text_len;
        st->sent_lps = j->n_lps;
    }
    if (!j->done) return;
    if (j->finish == SRV_FINISH_ERROR) {
        cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "message", j->error);
        cJSON_AddStringToObject(e, "type", "server_error");
        cJSON_AddNullToObject(e, "param");
        cJSON_AddStringToObject(e, "code", strstr(j->error, "shutting down") ? "shutting_down" : "generation_failed");
        emit_json(st, o);
    } else {
        emit_json(st, srv_openai_chunk(j, st->id, st->created, "", 0, NULL, 0, false, j->finish));
        if (j->req.include_usage) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", st->id);
            cJSON_AddStringToObject(o, "object",
                                    j->req.kind == SRV_REQ_CHAT ? "chat.completion.chunk" : "text_completion");
            cJSON_AddNumberToObject(o, "created", (double)st->created);
            cJSON_AddStringToObject(o, "model", j->model->id);
            cJSON_AddArrayToObject(o, "choices");
            cJSON_AddItemToObject(o, "usage", srv_openai_usage(j->n_prompt, j->n_generated));
            emit_json(st, o);
        }
    }
    emit(st, "[DONE]");
    st->done_sent = true;
    st->c->completion_tokens = j->n_generated;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max) {
    stream *st = cls;
    for (;;) {
        if (st->off < st->len) {
            size_t n = st->len - st->off < max ? st->len - st->off : max;
            memcpy(out, st->buf + st->off, n);
            st->off += n;
            return (ssize_t)n;
        }
        st->off = st->len = 0;
        if (st->done_sent) return MHD_CONTENT_READER_END_OF_STREAM;
        srv_job *j = st->job;
        pthread_mutex_lock(&j->mu);
        if (!j->done && j->text_len == st->sent_text && j->n_lps == st->sent_lps && !st->first)
            srv_job_wait(j, POLL_MS);
        build_events(st);
        pthread_mutex_unlock(&j->mu);
        if (st->len == 0 && srv_client_gone(st->c)) {
            srv_sched_cancel(st->srv->sched, j);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (st->len == 0 && !st->pinged && srv_client_eof(st->c)) {
            /* closed, or only half-closed? A closed socket answers a write with a reset,
               which the check above then sees; an SSE comment is ignored by readers */
            st->pinged = true;
            emit_line(st, ": ", "ping");
        }
    }
}

static void stream_free(void *cls) {
    stream *st = cls;
    srv_job_release(st->job);
    free(st->echo);
    free(st->buf);
    free(st);
}

static enum MHD_Result start_stream(srv_conn *c, srv_job *j, const char *id, int64_t created) {
    stream *st = calloc(1, sizeof *st);
    if (!st) return MHD_NO;
    st->c = c;
    st->srv = c->srv;
    st->job = j;
    srv_job_retain(j);
    snprintf(st->id, sizeof st->id, "%s", id);
    st->created = created;
    st->first = true;
    if (j->req.echo && j->req.prompt) {
        st->echo = malloc(j->req.prompt_len + 1);
        if (st->echo) memcpy(st->echo, j->req.prompt, j->req.prompt_len + 1);
    }
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st, stream_free);
    if (!r) {
        stream_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    if (atomic_load(&c->srv->draining)) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c->mhd, 200, r);
    MHD_destroy_response(r);
    c->status = 200;
    c->responded = true;
    c->streamed = true;
    return ret;
}

/* ---- prompt ---- */

/* Tokenizes the request's prompt for model m. Returns ids (malloc'd) or NULL with *e set. */
static wgllm_token *build_prompt(const srv_request *r, const srv_model *m, int *n_out, srv_error *e) {
    wgllm_token *ids = NULL;
    int64_t n;
    if (r->prompt_ids) {
        n = r->n_prompt_ids;
        for (int i = 0; i < r->n_prompt_ids; i++)
            if (r->prompt_ids[i] >= m->n_vocab) {
                srv_error_set(e, 400, "invalid_request_error", "invalid_value", "prompt",
                              "token id %d is outside the vocabulary of %d", (int)r->prompt_ids[i], m->n_vocab);
                return NULL;
            }
        if (!(ids = malloc(sizeof *ids * (size_t)n))) goto oom;
        memcpy(ids, r->prompt_ids, sizeof *ids * (size_t)n);
    } else {
        char *rendered = NULL;
        const char *text = r->prompt;
        size_t len = r->prompt_len;
        if (r->kind == SRV_REQ_CHAT) {
            if (!(rendered = srv_chat_render(m->chat, r->msgs, r->n_msgs, &len))) goto oom;
            text = rendered;
        }
        bool bos = wgllm_add_bos_default(m->model);
        /* a rendered chat carries the template's special tokens as text (<|im_start|>, ...):
           they are parsed, as llama.cpp's server does; a plain prompt stays plain text */
        bool special = r->kind == SRV_REQ_CHAT;
        n = wgllm_tokenize_special(m->model, text, len, bos, special, NULL, 0);
        if (n > 0 && (ids = malloc(sizeof *ids * (size_t)n)))
            wgllm_tokenize_special(m->model, text, len, bos, special, ids, n);
        free(rendered);
        if (n > 0 && !ids) goto oom;
        if (n < 0) {
            srv_error_set(e, 400, "invalid_request_error", "invalid_value", "prompt", "cannot tokenize the prompt");
            return NULL;
        }
    }
    if (n == 0) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", "prompt", "the prompt is empty");
        free(ids);
        return NULL;
    }
    if (n > m->n_ctx) {
        srv_error_set(e, 400, "invalid_request_error", "context_length_exceeded", "prompt",
                      "the prompt is %lld tokens, more than the context of %d tokens", (long long)n, m->n_ctx);
        free(ids);
        return NULL;
    }
    *n_out = (int)n;
    return ids;
oom:
    srv_error_set(e, 500, "server_error", NULL, "", "out of memory");
    return NULL;
}

srv_job *srv_generate_prepare(srv_server *srv, srv_request *req, srv_error *e) {
    srv_model *m = srv_models_acquire(&srv->models);
    if (req->model && strcmp(req->model, m->id)) { /* no model: the served one */
        srv_error_set(e, 404, "invalid_request_error", "model_not_found", "model",
                      "the model '%.100s' does not exist; this server serves '%s'", req->model, m->id);
        srv_models_release(&srv->models, m);
        srv_request_free(req);
        return NULL;
    }
    int n_prompt = 0;
    wgllm_token *prompt = build_prompt(req, m, &n_prompt, e);
    if (!prompt) {
        srv_models_release(&srv->models, m);
        srv_request_free(req);
        return NULL;
    }
    srv_req_kind kind = req->kind;
    srv_job *j = srv_job_create(req, &srv->models, m, prompt, n_prompt);
    if (!j) {
        free(prompt);
        srv_models_release(&srv->models, m);
        srv_request_free(req);
        srv_error_set(e, 500, "server_error", NULL, "", "out of memory");
        return NULL;
    }
    const char *marker = kind == SRV_REQ_CHAT ? srv_chat_end_marker(m->chat) : NULL;
    if (marker) {
        j->stops[j->n_stops++] = marker;
        /* a marker that is one special token never appears in the text (control tokens print as
           nothing): the token itself ends the turn */
        wgllm_token t[2];
        if (wgllm_tokenize_special(m->model, marker, strlen(marker), false, true, t, 2) == 1) j->stop_token = t[0];
    }
    return j;
}

enum MHD_Result srv_route_generate(srv_conn *c, srv_req_kind kind) {
    srv_server *srv = c->srv;
    srv_request req;
    srv_error e;
    if (!srv_request_parse(c->body, c->body_len, kind, &req, &e)) return srv_reply_error(c, &e);
    srv_job *j = srv_generate_prepare(srv, &req, &e);
    if (!j) return srv_reply_error(c, &e);
    int n_prompt = j->n_prompt;
    c->job = j;
    c->prompt_tokens = n_prompt;
    if (srv_sched_submit(srv->sched, j) == SRV_SUBMIT_FULL) {
        srv_metrics_rejected(srv->metrics);
        return srv_reply_errorf(c, 429, "rate_limit_error", "queue_full",
                                "the server is busy: %d requests are waiting; retry later", srv->opt.max_queue);
    }
    char id[48];
    srv_new_id(srv, kind == SRV_REQ_CHAT ? "chatcmpl-" : "cmpl-", id, sizeof id);
    int64_t created = (int64_t)time(NULL);
    if (j->req.stream) return start_stream(c, j, id, created);

    pthread_mutex_lock(&j->mu);
    while (!j->done) {
        srv_job_wait(j, POLL_MS);
        if (j->done) break;
        pthread_mutex_unlock(&j->mu);
        if (srv_client_gone(c)) {
            srv_sched_cancel(srv->sched, j);
            return MHD_NO;
        }
        pthread_mutex_lock(&j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    c->completion_tokens = j->n_generated;
    if (j->finish == SRV_FINISH_ERROR) return job_error_reply(c, j);
    cJSON *o;
    if (j->req.echo && j->req.prompt) {
        size_t pl = j->req.prompt_len;
        char *all = malloc(pl + j->text_len + 1);
        if (!all) return srv_reply_errorf(c, 500, "server_error", NULL, "out of memory");
        memcpy(all, j->req.prompt, pl);
        if (j->text_len) memcpy(all + pl, j->text, j->text_len);
        o = srv_openai_response(j, id, created, all, pl + j->text_len);
        free(all);
    } else {
        o = srv_openai_response(j, id, created, j->text ? j->text : "", j->text_len);
    }
    return srv_reply_json(c, 200, o);
}
