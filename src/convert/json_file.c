#include "convert/json_file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

cJSON *wg_json_load_file(const char *path, size_t max_bytes, char *err, size_t err_size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "%s: not a regular file", path);
        fclose(f);
        return NULL;
    }
    if ((uint64_t)st.st_size > (uint64_t)max_bytes) {
        snprintf(err, err_size, "%s: %lld bytes, more than the %zu accepted", path, (long long)st.st_size, max_bytes);
        fclose(f);
        return NULL;
    }
    size_t len = (size_t)st.st_size;
    char *buf = malloc(len + 1);
    if (!buf) {
        snprintf(err, err_size, "out of memory reading %s", path);
        fclose(f);
        return NULL;
    }
    size_t got = fread(buf, 1, len, f);
    fclose(f);
    if (got != len) {
        snprintf(err, err_size, "cannot read %s", path);
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    if (root) { /* only white space may follow the value */
        while (end && end < buf + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
        if (end != buf + len) {
            cJSON_Delete(root);
            root = NULL;
        }
    }
    if (!root) {
        /* cJSON leaves `end` at the failure point */
        long at = end && end >= buf && end <= buf + len ? (long)(end - buf) : 0;
        snprintf(err, err_size, "%s is not valid JSON (near byte %ld)", path, at);
    }
    free(buf);
    return root;
}
