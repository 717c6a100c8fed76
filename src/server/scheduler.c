/* The scheduler thread: admission, batched steps, sampling, retirement. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/sampling.h"
#include "server/scheduler.h"

typedef struct seq {
    srv_job *job; /* NULL: free slot */
    bool started;
    wgllm_context *ctx;
    int ctx_index;
    int n_fed;         /* prompt tokens evaluated */
    wgllm_token next;  /* sampled token to feed while decoding */
    int n_gen;
    double t_last;
    wgllm_sampler *smp;
    wgllm_detokenizer *detok;
    bool need_logits;
    bool has_greedy;     /* greedy: `greedy` holds the next token, read with the batch's */
    bool fed;            /* the last token was fed by a pipelined step (decode_step): the logits
                            after it are not sampled yet, and `next` is not to be fed */
    wgllm_token greedy;
    int32_t *counts;   /* per-token counts of generated tokens (penalties) */
    float *work;
    char *pending;     /* generated text held back while it may begin a stop string */
    size_t pending_len, pending_cap;
    /* this step */
    int step_n;
    const wgllm_token *step_tokens;
} seq;

struct srv_sched {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool thread_started, stopping;
    srv_sched_params p;
    srv_metrics *metrics;
    srv_job **queue; /* FIFO: queue[0] is the oldest */
    int q_len;
    seq *seqs;
    int n_active;
    uint64_t kv_used;
    uint64_t seed_counter;
    int rr; /* where prefill starts next step, for fairness */
};

static void retire(srv_sched *s, seq *q, srv_finish f, const char *error) {
    srv_job *j = q->job;
    int n_gen = q->n_gen;
    if (q->ctx) j->model->ctx_busy[q->ctx_index] = false;
    wgllm_sampler_free(q->smp);
    wgllm_detokenizer_free(q->detok);
    free(q->counts);
    free(q->work);
    free(q->pending);
    memset(q, 0, sizeof *q);
    /* the slot is counted free and the latency recorded before the client is woken, so a
       client that reads /metrics right after its response sees its own request finished */
    pthread_mutex_lock(&s->mu);
    s->n_active--;
    pthread_mutex_unlock(&s->mu);
    if (n_gen > 0 || f != SRV_FINISH_ERROR) srv_metrics_inference(s->metrics, srv_now() - j->t_arrival);
    srv_job_finish(j, f, n_gen, error);
    srv_job_release(j);
}

/* Ends a sequence whose step failed, with its context's message (else the status). */
static void retire_failed(srv_sched *s, seq *q, wgllm_status st) {
    const char *e = wgllm_context_error(q->ctx);
    retire(s, q, SRV_FINISH_ERROR, e && e[0] ? e : wgllm_status_name(st));
}

/* Takes a KV slot of the job's model and sets up sampling; false: retired with an error. */
static bool start(srv_sched *s, seq *q) {
    srv_job *j = q->job;
    q->has_greedy = false;
    q->fed = false;
    srv_model *m = j->model;
    char err[256] = "";
    int idx = -1;
    for (int i = 0; i < m->parallel && idx < 0; i++)
        if (!m->ctx_busy[i]) idx = i;
    if (idx < 0) {
        retire(s, q, SRV_FINISH_ERROR, "no free KV cache slot");
        return false;
    }
    if (!m->ctxs[idx]) {
        wgllm_context_params cp = wgllm_context_default_params();
        cp.n_ctx = m->n_ctx;
        if (wgllm_context_create(m->model, &cp, &m->ctxs[idx], err, sizeof err) != WGLLM_OK) {
            retire(s, q, SRV_FINISH_ERROR, err);
            return false;
        }
    }
    m->ctx_busy[idx] = true;
    q->ctx = m->ctxs[idx];
    q->ctx_index = idx;
    wgllm_context_truncate(q->ctx, 0);
    const srv_request *r = &j->req;
    wgllm_sampler_params sp = wgllm_sampler_default_params();
    sp.temperature = r->temperature;
    sp.top_k = r->top_k;
    sp.top_p = r->top_p;
    sp.min_p = r->min_p;
    sp.repeat_penalty = r->repeat_penalty;
    sp.seed = r->has_seed ? r->seed : (uint64_t)time(NULL) * 6364136223846793005ULL + ++s->seed_counter;
    bool penalties = r->presence_penalty != 0 || r->frequency_penalty != 0;
    q->need_logits = r->temperature > 0 || penalties || r->logprobs || r->repeat_penalty != 1.0f;
    q->smp = wgllm_sampler_create(&sp, err, sizeof err);
    q->detok = wgllm_detokenizer_create(m->model);
    if (penalties) {
        q->counts = calloc((size_t)m->n_vocab, sizeof *q->counts);
        q->work = malloc(sizeof *q->work * (size_t)m->n_vocab);
    }
    if (!q->smp || !q->detok || (penalties && (!q->counts || !q->work))) {
        retire(s, q, SRV_FINISH_ERROR, err[0] ? err : "out of memory");
        return false;
    }
    if (r->repeat_penalty != 1.0f)
        for (int i = 0; i < j->n_prompt; i++) wgllm_sampler_accept(q->smp, j->prompt[i]);
    q->started = true;
    q->t_last = srv_now();
    return true;
}

static bool pending_add(seq *q, const char *text, size_t len) {
    if (q->pending_len + len + 1 > q->pending_cap) {
        size_t cap = (q->pending_len + len + 1) * 2;
        char *p = realloc(q->pending, cap);
        if (!p) return false;
        q->pending = p;
        q->pending_cap = cap;
    }
    memcpy(q->pending + q->pending_len, text, len);
    q->pending_len += len;
    return true;
}

/* Releases what can no longer be part of a stop string; true when a stop string matched. */
static bool release_text(seq *q, bool final, const srv_token_logprob *lp) {
    srv_job *j = q->job;
    bool matched;
    size_t n = srv_stop_scan(q->pending, q->pending_len, j->stops, j->n_stops, &matched);
    if (final && !matched) n = q->pending_len;
    srv_job_append(j, q->pending, n, lp);
    memmove(q->pending, q->pending + n, q->pending_len - n);
    q->pending_len -= n;
    return matched;
}

static void handle_token(srv_sched *s, seq *q, wgllm_token tok, srv_token_logprob *lpp, bool fed);

/* Handles the logits after the sequence's last evaluated token. */
static void next_token(srv_sched *s, seq *q) {
    srv_job *j = q->job;
    const srv_request *r = &j->req;
    srv_model *m = j->model;
    wgllm_token tok;
    srv_token_logprob lp, *lpp = NULL;
    if (!q->need_logits) {
        tok = q->has_greedy ? q->greedy : wgllm_greedy(q->ctx);
        q->has_greedy = false;
    } else {
        const float *logits = wgllm_get_logits(q->ctx, 0);
        if (!logits) {
            retire(s, q, SRV_FINISH_ERROR, wgllm_context_error(q->ctx));
            return;
        }
        const float *x = logits;
        if (q->counts) {
            memcpy(q->work, logits, sizeof *q->work * (size_t)m->n_vocab);
            srv_apply_penalties(q->work, q->counts, m->n_vocab, r->presence_penalty, r->frequency_penalty);
            x = q->work;
        }
        tok = wgllm_sampler_sample(q->smp, x, m->n_vocab, NULL);
        if (tok >= 0 && r->logprobs) {
            srv_logprobs(logits, m->n_vocab, tok, r->top_logprobs, &lp);
            lpp = &lp;
        }
    }
    handle_token(s, q, tok, lpp, false);
}

/* Streams a sampled token, or ends the sequence with it. `fed`: a pipelined step has
 * already evaluated it (decode_step), so it is not fed again. */
static void handle_token(srv_sched *s, seq *q, wgllm_token tok, srv_token_logprob *lpp, bool fed) {
    srv_job *j = q->job;
    const srv_request *r = &j->req;
    srv_model *m = j->model;
    srv_token_logprob lp;
    if (tok >= 0 && !lpp && j->token_ids) { /* the id alone; logprob NAN: not computed */
        lp.id = tok;
        lp.logprob = NAN;
        lp.n_top = 0;
        lpp = &lp;
    }
    if (tok < 0) {
        retire(s, q, SRV_FINISH_ERROR, "sampling failed");
        return;
    }
    double now = srv_now();
    if (q->n_gen == 0)
        srv_metrics_first_token(s->metrics, now - j->t_arrival);
    else
        srv_metrics_token_latency(s->metrics, now - q->t_last);
    q->t_last = now;
    /* every end-of-generation token ends it (Llama 3's <|eot_id|> as well as eos), and so does
       the chat template's end-of-turn token where the model does not mark it as one */
    if (!r->ignore_eos && (wgllm_token_is_eog(m->model, tok) || tok == j->stop_token)) {
        size_t n;
        const char *tail = wgllm_detokenizer_flush(q->detok, &n);
        pending_add(q, tail, n);
        release_text(q, true, NULL);
        retire(s, q, SRV_FINISH_STOP, NULL);
        return;
    }
    q->n_gen++;
    srv_metrics_tokens(s->metrics, 0, 1);
    if (q->counts) q->counts[tok]++;
    wgllm_sampler_accept(q->smp, tok);
    size_t n;
    const char *piece = wgllm_detokenizer_push(q->detok, tok, &n);
    if (!pending_add(q, piece, n)) {
        retire(s, q, SRV_FINISH_ERROR, "out of memory");
        return;
    }
    bool ctx_full = !fed && wgllm_context_n_past(q->ctx) + 1 > wgllm_context_n_ctx(q->ctx);
    bool length = (r->max_tokens > 0 && q->n_gen >= r->max_tokens) || ctx_full;
    if (length) {
        const char *tail = wgllm_detokenizer_flush(q->detok, &n);
        pending_add(q, tail, n);
    }
    if (release_text(q, length, lpp)) {
        retire(s, q, SRV_FINISH_STOP, NULL);
    } else if (length) {
        retire(s, q, SRV_FINISH_LENGTH, NULL);
    } else if (!fed) {
        q->next = tok;
    }
}

/* The greedy tokens of a step's sequences that sample greedily, read back together (one
 * device round trip instead of one per sequence); next_token takes them. */
static void greedy_ahead(srv_sched *s, const int *members, int n) {
    wgllm_context *ctxs[SRV_MAX_PARALLEL];
    wgllm_token ids[SRV_MAX_PARALLEL];
    int who[SRV_MAX_PARALLEL], k = 0;
    for (int g = 0; g < n; g++) {
        seq *q = &s->seqs[members[g]];
        if (q->need_logits || q->n_fed + q->step_n < q->job->n_prompt) continue; /* sampled, or still in prefill */
        ctxs[k] = q->ctx;
        who[k++] = members[g];
    }
    if (k < 2 || wgllm_greedy_batch(ctxs, k, ids) != WGLLM_OK) return; /* next_token asks one by one */
    for (int i = 0; i < k; i++) {
        s->seqs[who[i]].greedy = ids[i];
        s->seqs[who[i]].has_greedy = true;
    }
}

/* When every active sequence decodes greedily on one model, one pipelined step feeds each
 * its greedy token (wgllm_decode_greedy_batch): the next step is queued on the device before
 * this one's tokens are read, so the GPU works while the tokens are streamed. False, having
 * done nothing, otherwise. */
static bool decode_step(srv_sched *s) {
    wgllm_context *ctxs[SRV_MAX_PARALLEL];
    wgllm_token ids[SRV_MAX_PARALLEL];
    int who[SRV_MAX_PARALLEL], k = 0;
    srv_model *m = NULL;
    for (int i = 0; i < s->p.parallel; i++) {
        seq *q = &s->seqs[i];
        if (!q->job) continue;
        if (q->n_fed < q->job->n_prompt || q->need_logits || (m && q->job->model != m) ||
            wgllm_context_n_past(q->ctx) >= wgllm_context_n_ctx(q->ctx))
            return false;
        m = q->job->model;
        ctxs[k] = q->ctx;
        who[k++] = i;
    }
    if (k == 0) return false;
    wgllm_status st = wgllm_decode_greedy_batch(ctxs, k, ids);
    for (int g = 0; g < k; g++) {
        seq *q = &s->seqs[who[g]];
        if (st != WGLLM_OK) {
            retire_failed(s, q, st);
            continue;
        }
        /* A sequence that was not fed before had sampled this very token (the greedy
           choice from the same logits) and streamed it already. */
        bool sampled_now = q->fed;
        q->fed = true;
        if (sampled_now)
            handle_token(s, q, ids[g], NULL, true);
        else if (ids[g] != q->next) /* its cache would no longer match its text */
            retire(s, q, SRV_FINISH_ERROR, "internal error: the greedy step fed another token");
    }
    return true;
}

/* Samples the sequences whose last token a pipelined step fed (their logits after it wait),
 * so that a plain step can feed them. */
static void settle_fed(srv_sched *s) {
    int members[SRV_MAX_PARALLEL], n = 0;
    for (int i = 0; i < s->p.parallel; i++)
        if (s->seqs[i].job && s->seqs[i].fed) members[n++] = i;
    if (n == 0) return;
    greedy_ahead(s, members, n);
    for (int g = 0; g < n; g++) {
        seq *q = &s->seqs[members[g]];
        q->fed = false;
        next_token(s, q);
    }
}

static void count_kv(srv_sched *s) {
    uint64_t kv = 0;
    for (int i = 0; i < s->p.parallel; i++)
        if (s->seqs[i].job && s->seqs[i].ctx) kv += (uint64_t)wgllm_context_n_past(s->seqs[i].ctx);
    pthread_mutex_lock(&s->mu);
    s->kv_used = kv;
    pthread_mutex_unlock(&s->mu);
}

/* One batched forward step over every active sequence. */
static void step(srv_sched *s) {
    int P = s->p.parallel, budget = s->p.step_tokens;
    for (int i = 0; i < P; i++) {
        seq *q = &s->seqs[i];
        q->step_n = 0;
        if (!q->job) continue;
        if (atomic_load(&q->job->cancelled)) {
            retire(s, q, SRV_FINISH_ERROR, "cancelled");
            continue;
        }
        if (!q->started) start(s, q);
    }
    if (decode_step(s)) {
        count_kv(s);
        return;
    }
    settle_fed(s);
    for (int i = 0; i < P; i++) {
        seq *q = &s->seqs[i];
        if (q->job && q->n_fed == q->job->n_prompt) { /* decoding: one token */
            q->step_n = 1;
            q->step_tokens = &q->next;
            budget--;
        }
    }
    for (int k = 0; k < P; k++) { /* prefill chunks with what the budget leaves */
        seq *q = &s->seqs[(s->rr + k) % P];
        if (!q->job || q->step_n || q->n_fed == q->job->n_prompt) continue;
        int n = q->job->n_prompt - q->n_fed;
        if (n > s->p.prefill_chunk) n = s->p.prefill_chunk;
        if (n > budget) n = budget;
        if (n <= 0) {
            if (budget == s->p.step_tokens) n = 1; /* always progress */
            else break;
        }
        q->step_n = n;
        q->step_tokens = q->job->prompt + q->n_fed;
        budget -= n;
    }
    s->rr = (s->rr + 1) % P;

    /* one wgllm_eval_batch per model (two only while a reload is in progress) */
    wgllm_context *ctxs[SRV_MAX_PARALLEL];
    const wgllm_token *toks[SRV_MAX_PARALLEL];
    int ns[SRV_MAX_PARALLEL], members[SRV_MAX_PARALLEL];
    bool done[SRV_MAX_PARALLEL] = {0};
    for (int i = 0; i < P; i++) {
        if (done[i] || !s->seqs[i].job || !s->seqs[i].step_n) continue;
        srv_model *m = s->seqs[i].job->model;
        int n = 0;
        for (int k = i; k < P; k++) {
            seq *q = &s->seqs[k];
            if (done[k] || !q->job || !q->step_n || q->job->model != m) continue;
            done[k] = true;
            ctxs[n] = q->ctx;
            toks[n] = q->step_tokens;
            ns[n] = q->step_n;
            members[n++] = k;
        }
        wgllm_status st = wgllm_eval_batch(ctxs, toks, ns, n);
        if (st == WGLLM_OK) greedy_ahead(s, members, n);
        for (int g = 0; g < n; g++) {
            seq *q = &s->seqs[members[g]];
            if (st != WGLLM_OK) {
                retire_failed(s, q, st);
                continue;
            }
            if (q->n_fed < q->job->n_prompt) {
                q->n_fed += q->step_n;
                srv_metrics_tokens(s->metrics, (uint64_t)q->step_n, 0);
                if (q->n_fed < q->job->n_prompt) continue;
            }
            next_token(s, q);
        }
    }
    count_kv(s);
}

/* Drops cancelled jobs from the queue so they give back their place at once. Under mu. */
static void prune_queue(srv_sched *s) {
    int o = 0;
    for (int i = 0; i < s->q_len; i++) {
        srv_job *j = s->queue[i];
        if (atomic_load(&j->cancelled)) {
            srv_job_finish(j, SRV_FINISH_ERROR, 0, "cancelled");
            srv_job_release(j);
        } else {
            s->queue[o++] = j;
        }
    }
    s->q_len = o;
}

static void *sched_main(void *arg) {
    srv_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        prune_queue(s);
        for (int i = 0; i < s->p.parallel && s->q_len > 0; i++) {
            if (s->seqs[i].job) continue;
            s->seqs[i].job = s->queue[0];
            memmove(s->queue, s->queue + 1, sizeof *s->queue * (size_t)(s->q_len - 1));
            s->q_len--;
            s->n_active++;
        }
        if (s->stopping) break;
        if (s->n_active == 0) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        step(s);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->p.parallel; i++)
        if (s->seqs[i].job) retire(s, &s->seqs[i], SRV_FINISH_ERROR, "server shutting down");
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->q_len; i++) {
        srv_job_finish(s->queue[i], SRV_FINISH_ERROR, 0, "server shutting down");
        srv_job_release(s->queue[i]);
    }
    s->q_len = 0;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

srv_sched *srv_sched_create(const srv_sched_params *p, srv_metrics *metrics, char *err, size_t err_size) {
    srv_sched *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    s->p = *p;
    s->metrics = metrics;
    s->queue = calloc((size_t)(p->max_queue + p->parallel) + 1, sizeof *s->queue);
    s->seqs = calloc((size_t)p->parallel, sizeof *s->seqs);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (!s->queue || !s->seqs || pthread_create(&s->thread, NULL, sched_main, s) != 0) {
        snprintf(err, err_size, "cannot start the scheduler thread");
        srv_sched_free(s);
        return NULL;
    }
    s->thread_started = true;
    return s;
}

void srv_sched_stop(srv_sched *s) {
    if (!s || !s->thread_started) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->thread_started = false;
}

void srv_sched_free(srv_sched *s) {
    if (!s) return;
    srv_sched_stop(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->queue);
    free(s->seqs);
    free(s);
}

srv_submit srv_sched_submit(srv_sched *s, srv_job *j) {
    pthread_mutex_lock(&s->mu);
    if (s->stopping) { /* after a drain timed out: answered at once, as the jobs it cut */
        pthread_mutex_unlock(&s->mu);
        srv_job_finish(j, SRV_FINISH_ERROR, 0, "server shutting down");
        return SRV_SUBMIT_OK;
    }
    prune_queue(s);
    /* the queue's first (parallel - n_active) jobs take free slots at the next step; only
       those after them wait, and at most max_queue may (counting them all as waiting
       refused requests that arrived together before the scheduler had woken) */
    int waiting = s->q_len + 1 - (s->p.parallel - s->n_active);
    if (waiting > s->p.max_queue) {
        pthread_mutex_unlock(&s->mu);
        return SRV_SUBMIT_FULL;
    }
    srv_job_retain(j);
    s->queue[s->q_len++] = j;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return SRV_SUBMIT_OK;
}

void srv_sched_cancel(srv_sched *s, srv_job *j) {
    atomic_store(&j->cancelled, true);
    pthread_mutex_lock(&s->mu);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void srv_sched_get_stats(srv_sched *s, srv_sched_stats *st) {
    pthread_mutex_lock(&s->mu);
    st->queued = s->q_len;
    st->active = s->n_active;
    st->kv_used = s->n_active ? s->kv_used : 0;
    pthread_mutex_unlock(&s->mu);
}
