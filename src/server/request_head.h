/* Checks the head of an HTTP/1.x request (request line and header fields) before the
 * HTTP library sees it, so that malformed, oversized or unsupported requests get an
 * OpenAI-style JSON error from us instead of the library's built-in HTML pages. */
#ifndef WGLLM_SERVER_REQUEST_HEAD_H
#define WGLLM_SERVER_REQUEST_HEAD_H

#include <stddef.h>

#define SRV_HEAD_MAX_BYTES 16384 /* request line and header fields together */
#define SRV_HEAD_MAX_URL 8192
#define SRV_HEAD_MAX_FIELDS 100

typedef struct srv_head_error {
    int status;          /* 400, 413, 414, 431 or 505 */
    const char *code;    /* OpenAI error code, static */
    const char *message; /* static */
} srv_head_error;

typedef enum srv_head_result {
    SRV_HEAD_INCOMPLETE, /* no blank line yet and within the limits: wait for more */
    SRV_HEAD_OK,
    SRV_HEAD_BAD, /* *e says why */
} srv_head_result;

/* Looks at the first len bytes received on a connection (buf need not be terminated;
   nothing past len is read). For a chunked body, the first chunk-size line is checked too
   when it is already there (libmicrohttpd does not tell its callers chunk sizes): one
   larger than max_body is refused at once with 413. */
srv_head_result srv_head_check(const char *buf, size_t len, size_t max_body, srv_head_error *e);

#endif
