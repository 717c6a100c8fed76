/* Strict parsing of command-line values (the whole string must be a number in range),
 * and the one shape every usage error takes: one line naming the problem and the valid
 * choices, then a hint to --help. */
#ifndef WGLLM_CLI_ARGS_H
#define WGLLM_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "wgllm.h"

bool arg_int(const char *s, long long lo, long long hi, long long *out);
bool arg_float(const char *s, float *out); /* finite values only */

/* Prints "wgllm CMD: error: MESSAGE" and "run 'wgllm CMD --help' for usage" on stderr and
 * returns 2 (the usage-error exit code). cmd NULL: the top-level `wgllm`. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* usage_error for a bad option value: "invalid value 'VALUE' for OPT (EXPECT)". */
int bad_value(const char *cmd, const char *opt, const char *value, const char *expect);

/* Fetches the value of option argv[*i] (advancing *i); a usage error if it is missing. */
const char *arg_value(int argc, char **argv, int *i, const char *cmd);

/* Option values that print their own usage error (naming the range or the choices) and
 * return false when invalid. */
bool opt_int(const char *cmd, const char *opt, const char *v, long long lo, long long hi, long long *out);
bool opt_backend(const char *cmd, const char *opt, const char *v, wgllm_backend_kind *out);
#define BACKEND_CHOICES "cpu, webgpu or auto"

/* "a, b or c" from a NULL-terminated list of names, into buf. */
const char *choice_list(const char *const *names, char *buf, size_t size);

/* Reads a whole file into a malloc'd buffer (NUL-terminated); NULL + message on failure.
 * "-" reads standard input. */
char *read_file_bytes(const char *path, size_t *len, char *err, size_t err_size);
/* Reads a stream to its end into a malloc'd NUL-terminated buffer; NULL + message on failure. */
char *read_stream(FILE *f, const char *name, size_t *len, char *err, size_t err_size);
/* True when standard input is a pipe or a file (not a terminal): text to read. */
bool stdin_has_text(void);

double now_seconds(void);

#endif
