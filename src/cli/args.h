/* Strict parsing of command-line values: the whole string must be a number in range. */
#ifndef WGLLM_CLI_ARGS_H
#define WGLLM_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool arg_int(const char *s, long long lo, long long hi, long long *out);
bool arg_float(const char *s, float *out); /* finite values only */

/* Fetches the value of option argv[*i] (advancing *i); prints an error if missing. */
const char *arg_value(int argc, char **argv, int *i, const char *prog);

/* Reads a whole file into a malloc'd buffer (NUL-terminated); NULL + message on failure. */
char *read_file_bytes(const char *path, size_t *len, char *err, size_t err_size);

double now_seconds(void);

#endif
