#include "util/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long a worker polls for the next job before it sleeps, and how long the
 * caller polls for the end of a job before it yields its core between polls.
 * The ops of one forward pass follow each other within a few microseconds, so
 * they never reach the sleep; an idle pool is asleep after this long. */
#define SPIN_NS 50000

#define JOB_CLOSED (1 << 30)

/* Fields written by different threads sit on their own cache lines. */
struct wg_threadpool {
    alignas(64) atomic_uint gen; /* bumped for each job (and at quit); workers wait for a change */
    /* workers inside the current job, plus JOB_CLOSED once the caller has taken the last
     * chunk: a worker that comes later stays out, so the caller never waits for a thread
     * that has not started (one the OS has not scheduled yet, on a busy machine) */
    alignas(64) atomic_int inside;
    alignas(64) atomic_int_fast64_t next; /* first item not yet handed out */
    alignas(64) atomic_int n_sleeping; /* workers past their spin, in the condition-variable wait */
    atomic_bool quit;
    /* the current job: written before the job is reopened (inside), read by those who enter */
    wg_range_fn fn;
    void *arg;
    int64_t n, grain;
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu; /* only for the sleep after the spin */
    pthread_cond_t wake_cv;
};

typedef struct {
    wg_threadpool *pool;
    int tid;
} worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void run_chunks(wg_threadpool *p, int tid) {
    const int64_t n = p->n, grain = p->grain;
    for (;;) {
        int64_t begin = atomic_fetch_add_explicit(&p->next, grain, memory_order_relaxed);
        if (begin >= n) break;
        int64_t end = begin + grain < n ? begin + grain : n;
        p->fn(p->arg, begin, end, tid);
    }
}

/* Returns the generation after `seen` once it is published: a short spin, then a sleep. */
static unsigned wait_for_job(wg_threadpool *p, unsigned seen) {
    unsigned g;
    int64_t deadline = 0;
    for (int i = 0;; i++) {
        g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen) return g;
        cpu_relax();
        if ((i & 63) != 63) continue;
        sched_yield(); /* a thread waiting for this core (a busy machine) goes first */
        int64_t t = now_ns();
        if (deadline == 0) {
            deadline = t + SPIN_NS;
        } else if (t >= deadline) {
            break;
        }
    }
    /* The caller bumps gen and then reads n_sleeping; we raise n_sleeping and then read
     * gen (both sequentially consistent): one of us sees the other, so no wake-up is lost. */
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->n_sleeping, 1);
    while ((g = atomic_load(&p->gen)) == seen) pthread_cond_wait(&p->wake_cv, &p->mu);
    atomic_fetch_sub(&p->n_sleeping, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *raw) {
    worker_arg *wa = raw;
    wg_threadpool *p = wa->pool;
    int tid = wa->tid;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        seen = wait_for_job(p, seen);
        if (atomic_load_explicit(&p->quit, memory_order_acquire)) break;
        /* Entering synchronises with the caller's reopening, which follows its writes of the
         * job; a worker that enters a later job than the one it saw still runs it correctly. */
        if (!(atomic_fetch_add_explicit(&p->inside, 1, memory_order_acq_rel) & JOB_CLOSED)) run_chunks(p, tid);
        atomic_fetch_sub_explicit(&p->inside, 1, memory_order_release);
    }
    return NULL;
}

/* Publishes a new generation and wakes the workers that went to sleep. */
static void publish(wg_threadpool *p) {
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake_cv);
        pthread_mutex_unlock(&p->mu);
    }
}

wg_threadpool *wg_threadpool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    size_t size = (sizeof(wg_threadpool) + 63) / 64 * 64;
    wg_threadpool *p = aligned_alloc(64, size);
    if (!p) return NULL;
    memset(p, 0, size);
    atomic_init(&p->gen, 0);
    atomic_init(&p->inside, JOB_CLOSED);
    atomic_init(&p->next, 0);
    atomic_init(&p->n_sleeping, 0);
    atomic_init(&p->quit, false);
    p->n_threads = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake_cv, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) {
            wg_threadpool_free(p);
            return NULL;
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (wa) {
                wa->pool = p;
                wa->tid = i;
            }
            if (!wa || pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0) {
                free(wa);
                wg_threadpool_free(p); /* only threads 1..n_threads-1 exist */
                return NULL;
            }
            p->n_threads = i + 1;
        }
    }
    return p;
}

void wg_threadpool_free(wg_threadpool *p) {
    if (!p) return;
    atomic_store_explicit(&p->quit, true, memory_order_release);
    publish(p);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i - 1], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake_cv);
    free(p);
}

int wg_threadpool_size(const wg_threadpool *p) { return p->n_threads; }

void wg_threadpool_run(wg_threadpool *p, wg_range_fn fn, void *arg, int64_t n, int64_t grain) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    /* Small jobs are not worth waking anyone. */
    if (p->n_threads == 1 || n <= grain) {
        fn(arg, 0, n, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->grain = grain;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    /* reopen: keeps the count of a late worker of the last job that is just backing out */
    atomic_fetch_and_explicit(&p->inside, ~JOB_CLOSED, memory_order_release);
    publish(p);

    run_chunks(p, 0);
    atomic_fetch_or_explicit(&p->inside, JOB_CLOSED, memory_order_acq_rel);

    /* The rest is at most one chunk per worker inside: poll, and past the spin budget give
     * the core to such a worker that may be waiting for one (a busy machine). */
    int64_t deadline = 0;
    for (int i = 0; (atomic_load_explicit(&p->inside, memory_order_acquire) & ~JOB_CLOSED) > 0; i++) {
        if (deadline < 0) {
            sched_yield();
            continue;
        }
        cpu_relax();
        if ((i & 63) != 63) continue;
        sched_yield();
        int64_t t = now_ns();
        if (deadline == 0) {
            deadline = t + SPIN_NS;
        } else if (t >= deadline) {
            deadline = -1;
        }
    }
}
