/* A generation request shared by its HTTP connection and the scheduler: inputs
 * fixed at submission, outputs appended by the scheduler under the job's lock. */
#ifndef WGLLM_SERVER_JOB_H
#define WGLLM_SERVER_JOB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "server/model_ref.h"
#include "server/request.h"

typedef enum srv_finish { SRV_FINISH_NONE = 0, SRV_FINISH_STOP, SRV_FINISH_LENGTH, SRV_FINISH_ERROR } srv_finish;

typedef struct srv_top_logprob {
    wgllm_token id;
    float logprob;
} srv_top_logprob;

typedef struct srv_token_logprob {
    wgllm_token id;
    float logprob;
    int n_top;
    srv_top_logprob top[SRV_MAX_TOP_LOGPROBS];
} srv_token_logprob;

typedef struct srv_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    atomic_bool cancelled;

    /* inputs */
    srv_request req;
    srv_models *models;
    srv_model *model; /* referenced for the job's lifetime */
    wgllm_token *prompt;
    int n_prompt;
    const char *stops[SRV_MAX_STOPS + 1];
    int n_stops;
    wgllm_token stop_token; /* a chat template's end-of-turn token, or -1 */
    double t_arrival;
    bool token_ids; /* record every token (lps) even without logprobs: the gRPC API returns ids */

    /* outputs (under mu) */
    char *text; /* released text: never ends inside a possible stop string */
    size_t text_len, text_cap;
    srv_token_logprob *lps;
    int n_lps, lps_cap;
    int n_generated;
    srv_finish finish;
    bool done;
    char error[256];
} srv_job;

/* Takes ownership of req; holds a reference to model. refs starts at 1. */
srv_job *srv_job_create(srv_request *req, srv_models *models, srv_model *model, wgllm_token *prompt, int n_prompt);
void srv_job_retain(srv_job *j);
void srv_job_release(srv_job *j);

/* Scheduler side (each takes the lock and wakes the waiter). */
bool srv_job_append(srv_job *j, const char *text, size_t len, const srv_token_logprob *lp);
void srv_job_finish(srv_job *j, srv_finish f, int n_generated, const char *error);

/* Waiter side: waits on the job's condition variable for at most ms milliseconds, so that a
 * waiter also notices a client that went away. Under j->mu. */
void srv_job_wait(srv_job *j, int ms);

double srv_now(void); /* monotonic seconds */

#endif
