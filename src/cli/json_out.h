#ifndef WGLLM_CLI_JSON_OUT_H
#define WGLLM_CLI_JSON_OUT_H

#include <stddef.h>
#include <stdio.h>

/* Writes s (len bytes of UTF-8) as a JSON string literal, quotes included. */
void json_write_string(FILE *out, const char *s, size_t len);

#endif
