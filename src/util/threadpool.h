/* A fixed pool of worker threads that run one parallel-for at a time.
 * The calling thread takes part, so a pool of size 1 has no extra threads.
 *
 * Between jobs the workers spin for a short while (tens of microseconds) on the
 * job counter, so back-to-back ops start without a system call; after that they
 * sleep in the kernel and an idle pool costs no CPU. The caller waits for the
 * end of a job by spinning on an atomic counter (then yielding), never on a
 * condition variable, and only for the workers that took part: on a busy machine
 * a worker not yet scheduled does not hold it up (the caller does its share). */
#ifndef WGLLM_THREADPOOL_H
#define WGLLM_THREADPOOL_H

#include <stdint.h>

typedef struct wg_threadpool wg_threadpool;

/* Runs items [begin, end) on thread `tid` (0 <= tid < pool size). */
typedef void (*wg_range_fn)(void *arg, int64_t begin, int64_t end, int tid);

/* NULL if threads cannot be created. Free with wg_threadpool_free. */
wg_threadpool *wg_threadpool_create(int n_threads);
void wg_threadpool_free(wg_threadpool *p);
int wg_threadpool_size(const wg_threadpool *p);

/* Calls fn over [0, n) in chunks of `grain` items handed out dynamically; returns
 * when every item is done. Not reentrant: one caller at a time. */
void wg_threadpool_run(wg_threadpool *p, wg_range_fn fn, void *arg, int64_t n, int64_t grain);

#endif
