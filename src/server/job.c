/* Generation jobs: shared state between a connection and the scheduler. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/job.h"

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

srv_job *srv_job_create(srv_request *req, srv_models *models, srv_model *model, wgllm_token *prompt, int n_prompt) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&j->cancelled, false);
    j->refs = 1;
    j->stop_token = -1;
    j->req = *req;
    memset(req, 0, sizeof *req);
    j->models = models;
    j->model = model;
    j->prompt = prompt;
    j->n_prompt = n_prompt;
    for (int i = 0; i < j->req.n_stops; i++) j->stops[j->n_stops++] = j->req.stops[i];
    j->t_arrival = srv_now();
    return j;
}

void srv_job_retain(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

void srv_job_release(srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last) return;
    srv_models_release(j->models, j->model);
    srv_request_free(&j->req);
    free(j->prompt);
    free(j->text);
    free(j->lps);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

bool srv_job_append(srv_job *j, const char *text, size_t len, const srv_token_logprob *lp) {
    bool ok = true;
    pthread_mutex_lock(&j->mu);
    if (j->text_len + len + 1 > j->text_cap) {
        size_t cap = (j->text_len + len + 1) * 2;
        char *p = realloc(j->text, cap);
        if (p) {
            j->text = p;
            j->text_cap = cap;
        } else {
            ok = false;
        }
    }
    if (ok) {
        memcpy(j->text + j->text_len, text, len);
        j->text_len += len;
        j->text[j->text_len] = 0;
    }
    if (ok && lp) {
        if (j->n_lps == j->lps_cap) {
            int cap = j->lps_cap ? j->lps_cap * 2 : 16;
            srv_token_logprob *p = realloc(j->lps, sizeof *p * (size_t)cap);
            if (p) {
                j->lps = p;
                j->lps_cap = cap;
            } else {
                ok = false;
            }
        }
        if (ok) j->lps[j->n_lps++] = *lp;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return ok;
}

void srv_job_wait(srv_job *j, int ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += ms * 1000000L;
    while (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&j->cv, &j->mu, &ts);
}

void srv_job_finish(srv_job *j, srv_finish f, int n_generated, const char *error) {
    pthread_mutex_lock(&j->mu);
    j->n_generated = n_generated;
    j->finish = f;
    j->done = true;
    if (error) {
        size_t n = strlen(error);
        if (n >= sizeof j->error) n = sizeof j->error - 1;
        memcpy(j->error, error, n);
        j->error[n] = 0;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}
