/* The thread pool: every item of a job runs exactly once, on a valid thread id that no
 * other thread uses at the same time, for many tiny jobs, jobs smaller than the pool,
 * odd grains and create/free loops; and an idle pool sleeps instead of spinning. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "util/threadpool.h"

enum { MAX_ITEMS = 4096, MAX_THREADS = 8 };

typedef struct {
    atomic_int hits[MAX_ITEMS];
    atomic_int busy[MAX_THREADS]; /* 1 while a thread id is inside fn */
    atomic_int bad_tid, overlap, calls;
    int n_threads;
} job;

static void count_items(void *arg, int64_t begin, int64_t end, int tid) {
    job *j = arg;
    atomic_fetch_add(&j->calls, 1);
    if (tid < 0 || tid >= j->n_threads) {
        atomic_fetch_add(&j->bad_tid, 1);
        return;
    }
    if (atomic_exchange(&j->busy[tid], 1) != 0) atomic_fetch_add(&j->overlap, 1);
    for (int64_t i = begin; i < end; i++) atomic_fetch_add(&j->hits[i], 1);
    atomic_store(&j->busy[tid], 0);
}

static job jb;

/* Runs one job and checks that items [0, n) were each done once; returns false on a mistake. */
static bool run_and_check(wg_threadpool *p, int64_t n, int64_t grain) {
    memset(&jb, 0, sizeof jb);
    jb.n_threads = wg_threadpool_size(p);
    wg_threadpool_run(p, count_items, &jb, n, grain);
    bool ok = atomic_load(&jb.bad_tid) == 0 && atomic_load(&jb.overlap) == 0;
    for (int64_t i = 0; i < n; i++) ok = ok && atomic_load(&jb.hits[i]) == 1;
    for (int64_t i = n > 0 ? n : 0; i < MAX_ITEMS; i++) ok = ok && atomic_load(&jb.hits[i]) == 0;
    return ok;
}

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double wall_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

int main(void) {
    /* many tiny jobs back to back (the decode pattern), sizes and grains varied */
    wg_threadpool *p = wg_threadpool_create(4);
    CHECK(p && wg_threadpool_size(p) == 4);
    if (!p) CHECK_DONE();
    uint64_t rng = 12345;
    int failures = 0;
    for (int it = 0; it < 20000; it++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        int64_t n = 1 + (int64_t)((rng >> 33) % 64), grain = (int64_t)((rng >> 20) % 10) - 1;
        if (!run_and_check(p, n, grain)) failures++;
    }
    CHECK_MSG(failures == 0, "%d of 20000 tiny jobs went wrong", failures);

    /* fewer items than threads, grain edge cases, a large job */
    const int64_t cases[][2] = {{1, 1}, {2, 1}, {3, 1}, {0, 1}, {-4, 1}, {7, 0}, {7, -3}, {7, 7}, {7, 8},
                                {7, 6}, {7, INT64_MAX}, {MAX_ITEMS, 1}, {MAX_ITEMS, 3}, {MAX_ITEMS, 1000}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_MSG(run_and_check(p, cases[i][0], cases[i][1]), "n=%lld grain=%lld", (long long)cases[i][0],
                  (long long)cases[i][1]);
    /* a job of n items with grain 1 calls fn n times */
    run_and_check(p, 100, 1);
    CHECK(atomic_load(&jb.calls) == 100);

    /* idle: past the short spin the workers sleep. A spinning pool of 3 workers would use
     * hundreds of milliseconds of CPU here; allow 25% of one core for a loaded machine. */
    sleep_ms(20);
    double c0 = cpu_seconds(), w0 = wall_seconds();
    sleep_ms(200);
    double used = cpu_seconds() - c0, wall = wall_seconds() - w0;
    CHECK_MSG(used < 0.25 * wall, "an idle pool used %.3f s of CPU in %.3f s", used, wall);
    /* and wakes up for the next job */
    CHECK(run_and_check(p, 1000, 1));
    for (int i = 0; i < 5; i++) {
        sleep_ms(2);
        CHECK(run_and_check(p, 500 + i, 2));
    }
    wg_threadpool_free(p);

    /* create/free loops, with and without a job in between, sizes 0 (taken as 1) to 8 */
    int loop_failures = 0;
    for (int it = 0; it < 200; it++) {
        wg_threadpool *q = wg_threadpool_create(it % 9);
        if (!q || wg_threadpool_size(q) != (it % 9 > 0 ? it % 9 : 1)) {
            loop_failures++;
            wg_threadpool_free(q);
            continue;
        }
        if (it % 2 && !run_and_check(q, 1 + it % 37, 1 + it % 3)) loop_failures++;
        wg_threadpool_free(q);
    }
    CHECK_MSG(loop_failures == 0, "%d create/free loops went wrong", loop_failures);
    wg_threadpool_free(NULL);
    CHECK_DONE();
}
