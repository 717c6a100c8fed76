/* Small JSON files (config.json, index files) read whole and parsed with cJSON. */
#ifndef WGLLM_CONVERT_JSON_FILE_H
#define WGLLM_CONVERT_JSON_FILE_H

#include <stddef.h>

#include <cJSON.h>

/* Parses the file at path (at most max_bytes long). NULL with a one-line message
 * ("cannot open ...", "... is not valid JSON (near byte N)") on failure. */
cJSON *wg_json_load_file(const char *path, size_t max_bytes, char *err, size_t err_size);

#endif
