/* The request-head check: valid heads pass (and every prefix of them is "incomplete", never
 * an error), hostile ones get the right status; each input lies in a buffer of its exact
 * size, so an over-read shows under AddressSanitizer. */
#include "check.h"
#include "server/request_head.h"

#define MAX_BODY 65536

static srv_head_result run(const char *data, size_t len, srv_head_error *e) {
    char *buf = malloc(len ? len : 1);
    memcpy(buf, data, len);
    srv_head_result r = srv_head_check(buf, len, MAX_BODY, e);
    free(buf);
    return r;
}

static void check_valid(const char *head) {
    srv_head_error e;
    size_t n = strlen(head);
    CHECK_MSG(run(head, n, &e) == SRV_HEAD_OK, "not accepted: %s", head);
    for (size_t i = 0; i < n; i++) CHECK_MSG(run(head, i, &e) == SRV_HEAD_INCOMPLETE, "prefix %zu of %s", i, head);
}

static void check_bad(const char *data, size_t len, int status) {
    srv_head_error e = {0};
    srv_head_result r = run(data, len, &e);
    CHECK_MSG(r == SRV_HEAD_BAD && e.status == status && e.code && e.message, "%.60s: result %d status %d", data,
              (int)r, e.status);
}

#define BAD(lit, status) check_bad(lit, sizeof lit - 1, status)

int main(void) {
    check_valid("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    check_valid("GET /health HTTP/1.0\r\n\r\n");
    check_valid("\r\nPOST /v1/completions?a=1 HTTP/1.1\nhost: a\ncontent-length:  12\n\n");
    check_valid("OPTIONS * HTTP/1.1\r\nHost: x\r\nX-Empty:\r\n\r\n");
    check_valid("GET / HTTP/1.2\r\nHost: x\r\n\r\n"); /* HTTP/1.x: served as 1.1 */
    /* what follows the blank line (a body) is not looked at */
    srv_head_error e;
    const char body[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n\x00\xff\x01";
    CHECK(run(body, sizeof body - 1, &e) == SRV_HEAD_OK);

    BAD("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    BAD("GET / HTTP/0.9\r\n\r\n", 505);
    BAD("GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400);
    BAD("GET / http/1.1\r\nHost: x\r\n\r\n", 400);
    BAD("GET /\r\n\r\n", 400);
    BAD("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    BAD("GET / HTTP/1.1 x\r\nHost: x\r\n\r\n", 400);
    BAD("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    BAD(" / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    BAD("GET /a\x00 HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    BAD("GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\n folded\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost: x\r\nA: \x01\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost: x\r\nA: a\x00b\r\n\r\n", 400);
    BAD("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400);
    BAD("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 \r\n\r\n", 400);
    BAD("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", 400);
    BAD("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n", 400);
    BAD("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 413);

    /* the first chunk size of a chunked body, when it came with the head */
    check_valid("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    const char *chunks[] = {"10000\r\n", "fFfF;ext=1\r\n", "0\r\n\r\n", "1a\n", "ffffffffffffffff", "zz"};
    for (int i = 0; i < 6; i++) {
        char head[256];
        int n = snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  Chunked \r\n\r\n%s",
                         chunks[i]);
        CHECK_MSG(run(head, (size_t)n, &e) == SRV_HEAD_OK, "%s", chunks[i]);
    }
    BAD("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10001\r\n", 413);
    BAD("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n", 413);
    BAD("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000000000000001\r\n", 413);
    BAD("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400);
    BAD("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\n", 400);
    BAD("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", 400);

    /* sizes: URL, head, number of fields; also before the head is complete */
    size_t big = SRV_HEAD_MAX_BYTES * 2;
    char *p = malloc(big);
    memcpy(p, "GET /", 5);
    memset(p + 5, 'a', big - 5);
    check_bad(p, SRV_HEAD_MAX_URL + 100, 414); /* request line not finished */
    memcpy(p + SRV_HEAD_MAX_URL + 10, " HTTP/1.1\r\nHost: x\r\n\r\n", 23);
    check_bad(p, SRV_HEAD_MAX_URL + 33, 414);
    memcpy(p, "GET / HTTP/1.1\r\nHost: x\r\nX: ", 28);
    memset(p + 28, 'b', big - 28);
    check_bad(p, SRV_HEAD_MAX_BYTES, 431); /* header not finished */
    memcpy(p + SRV_HEAD_MAX_BYTES + 10, "\r\n\r\n", 4);
    check_bad(p, SRV_HEAD_MAX_BYTES + 14, 431);
    size_t n = (size_t)sprintf(p, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < SRV_HEAD_MAX_FIELDS; i++) n += (size_t)sprintf(p + n, "A: 1\r\n");
    n += (size_t)sprintf(p + n, "\r\n");
    check_bad(p, n, 431);
    free(p);
    CHECK_DONE();
}
