/* Continuous batching: one thread owns every KV cache slot. Each step, every
 * decoding sequence feeds one token and prefilling sequences feed a chunk of their
 * prompt, all in one wgllm_eval_batch call per model; queued requests join between
 * steps; a cancelled request leaves at the next step. */
#ifndef WGLLM_SERVER_SCHEDULER_H
#define WGLLM_SERVER_SCHEDULER_H

#include <stdint.h>

#include "server/job.h"
#include "server/metrics.h"

#define SRV_MAX_PARALLEL 256

typedef struct srv_sched srv_sched;

typedef struct srv_sched_params {
    int parallel, max_queue, prefill_chunk, step_tokens;
} srv_sched_params;

srv_sched *srv_sched_create(const srv_sched_params *p, srv_metrics *metrics, char *err, size_t err_size);
/* Ends every job still queued or running with the error "server shutting down" (their
 * clients get a 503 or an SSE error event) and joins the thread; later submissions are
 * answered at once with the same error. Idempotent. */
void srv_sched_stop(srv_sched *s);
/* Stops (as above) and frees. */
void srv_sched_free(srv_sched *s);

typedef enum srv_submit { SRV_SUBMIT_OK, SRV_SUBMIT_FULL } srv_submit;
/* Queues the job (the scheduler takes its own reference). */
srv_submit srv_sched_submit(srv_sched *s, srv_job *j);
/* Marks the job cancelled and wakes the scheduler, which drops it at once. */
void srv_sched_cancel(srv_sched *s, srv_job *j);

typedef struct srv_sched_stats {
    int queued, active;
    uint64_t kv_used;
} srv_sched_stats;
void srv_sched_get_stats(srv_sched *s, srv_sched_stats *st);

#endif
