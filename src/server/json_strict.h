/* Strict parsing of JSON request bodies. cJSON alone is lenient: it accepts text
 * after the value, raw control bytes inside strings and numbers such as 01, +1,
 * .5 or 1.; it keeps the first of duplicate keys and cuts a string at an escaped
 * NUL. A small RFC 8259 grammar check runs first, so cJSON only sees valid JSON. */
#ifndef WGLLM_SERVER_JSON_STRICT_H
#define WGLLM_SERVER_JSON_STRICT_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "server/request.h"

#define SRV_JSON_MAX_DEPTH 256 /* nesting of arrays and objects; requests need a handful */

/* Checks s[0..len) against the RFC 8259 grammar (one value, whitespace around it).
 * Also refused: lone UTF-16 surrogate escapes (they have no UTF-8 form) and \u0000
 * (C strings would cut the text there). On failure *e says why (400) and, where the
 * problem lies under a top-level key, names that key in param. Needs no NUL terminator
 * and never reads past len. Does not check UTF-8 (see srv_utf8_valid). */
bool srv_json_check(const char *s, size_t len, srv_error *e);

/* The whole body pipeline: valid UTF-8, srv_json_check, cJSON, a JSON object at the
 * top, and no object anywhere with the same key twice. Returns the tree (caller frees
 * with cJSON_Delete) or NULL with *e set. */
cJSON *srv_json_parse_object(const char *s, size_t len, srv_error *e);

#endif
