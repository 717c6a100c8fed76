/* Minimal assertion helpers for the C unit tests. Each test binary ends with
 * CHECK_DONE(), which prints "N passed, N failed" and returns non-zero on failure. */
#ifndef WGLLM_TEST_CHECK_H
#define WGLLM_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_passed_, check_failed_;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            check_passed_++;                                                         \
        } else {                                                                     \
            check_failed_++;                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_MSG(cond, ...)                                          \
    do {                                                              \
        if (cond) {                                                   \
            check_passed_++;                                          \
        } else {                                                      \
            check_failed_++;                                          \
            fprintf(stderr, "%s:%d: CHECK failed: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                             \
            fputc('\n', stderr);                                      \
        }                                                             \
    } while (0)

#define CHECK_NEAR(a, b, tol) CHECK_MSG(fabs((double)(a) - (double)(b)) <= (tol), "%s=%g vs %s=%g (tol %g)", #a, (double)(a), #b, (double)(b), (double)(tol))

#define CHECK_DONE()                                                              \
    do {                                                                          \
        printf("%d passed, %d failed\n", check_passed_, check_failed_);           \
        return (check_failed_ == 0 && check_passed_ > 0) ? 0 : 1;                \
    } while (0)

/* Directory of the shared reference data (env WGLLM_SHARED, default ../shared). */
static inline const char *check_shared_dir(void) {
    const char *s = getenv("WGLLM_SHARED");
    return s && *s ? s : "../shared";
}

#endif
