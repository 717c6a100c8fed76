/* The request-head check: request line, version, header fields, framing headers.
 * Every index is checked against len; nothing is copied. */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "server/request_head.h"

static srv_head_result bad(srv_head_error *e, int status, const char *code, const char *message) {
    e->status = status;
    e->code = code;
    e->message = message;
    return SRV_HEAD_BAD;
}

static bool is_tchar(unsigned char ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* The line starting at p (< end): its length without CR LF, and where the next starts.
   False when no LF is in [p, end). */
static bool next_line(const char *p, const char *end, size_t *n, const char **next) {
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf) return false;
    *next = lf + 1;
    *n = (size_t)(lf - p) - (lf > p && lf[-1] == '\r');
    return true;
}

static srv_head_result check_request_line(const char *p, size_t n, bool *http11, srv_head_error *e) {
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i])) i++;
    if (i == 0 || i >= n || p[i] != ' ')
        return bad(e, 400, "invalid_request_line", "malformed request line (expected METHOD TARGET HTTP/1.x)");
    size_t url = ++i;
    while (i < n && (unsigned char)p[i] > ' ' && p[i] != 0x7f) i++;
    if (i - url > SRV_HEAD_MAX_URL) return bad(e, 414, "uri_too_long", "the request URL is too long");
    if (i == url || i >= n || p[i] != ' ')
        return bad(e, 400, "invalid_request_line", "malformed request line (expected METHOD TARGET HTTP/1.x)");
    const char *v = p + i + 1;
    size_t vn = n - i - 1;
    if (vn != 8 || memcmp(v, "HTTP/", 5) || v[6] != '.' || v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9')
        return bad(e, 400, "invalid_request_line", "malformed HTTP version in the request line");
    if (v[5] != '1') return bad(e, 505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are supported");
    *http11 = v[7] != '0';
    return SRV_HEAD_OK;
}

/* Content-Length: decimal digits, after optional blanks (libmicrohttpd refuses blanks
   after the number with its own HTML page, so they are refused here). */
static srv_head_result check_length(const char *v, size_t n, srv_head_error *e) {
    while (n && (*v == ' ' || *v == '\t')) v++, n--;
    if (n == 0) return bad(e, 400, "invalid_content_length", "Content-Length must be a decimal number of bytes");
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return bad(e, 400, "invalid_content_length", "Content-Length must be a decimal number of bytes");
    if (n > 18) return bad(e, 413, "request_too_large", "the request body is too large");
    return SRV_HEAD_OK;
}

static int hex_value(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* The chunk-size line at p: hex digits, then the end of the line or ';' (extensions), as
   libmicrohttpd requires. Nothing to say while the line is incomplete. */
static srv_head_result check_first_chunk(const char *p, const char *end, size_t max_body, srv_head_error *e) {
    size_t n;
    const char *next;
    if (!next_line(p, end, &n, &next)) return SRV_HEAD_OK;
    size_t i = 0, size = 0;
    bool over = false;
    for (int d; i < n && (d = hex_value(p[i])) >= 0; i++) {
        over = over || size > (max_body >> 4);
        if (!over) size = size * 16 + (size_t)d;
    }
    if (i == 0 || (i < n && p[i] != ';'))
        return bad(e, 400, "invalid_chunked_body", "malformed chunk size in the chunked request body");
    if (over || size > max_body) return bad(e, 413, "request_too_large", "a chunk of the request body is too large");
    return SRV_HEAD_OK;
}

srv_head_result srv_head_check(const char *buf, size_t len, size_t max_body, srv_head_error *e) {
    const char *p = buf, *end = buf + len, *next;
    size_t n;
    /* blank lines before the request line are allowed (RFC 9112 2.2) */
    while (p < end && (*p == '\r' || *p == '\n')) p++;
    if (!next_line(p, end, &n, &next)) {
        if ((size_t)(end - p) > SRV_HEAD_MAX_URL + 64)
            return bad(e, 414, "uri_too_long", "the request line is too long");
        return len >= SRV_HEAD_MAX_BYTES ? bad(e, 431, "headers_too_large", "the request head is too large")
                                         : SRV_HEAD_INCOMPLETE;
    }
    bool http11 = false;
    if (memchr(p, 0, n)) return bad(e, 400, "invalid_request_line", "the request line contains a NUL byte");
    if (check_request_line(p, n, &http11, e) != SRV_HEAD_OK) return SRV_HEAD_BAD;
    int fields = 0;
    bool host = false, chunked = false;
    for (p = next;; p = next) {
        if ((size_t)(p - buf) > SRV_HEAD_MAX_BYTES)
            return bad(e, 431, "headers_too_large", "the request head is too large");
        if (!next_line(p, end, &n, &next))
            return len >= SRV_HEAD_MAX_BYTES ? bad(e, 431, "headers_too_large", "the request head is too large")
                                             : SRV_HEAD_INCOMPLETE;
        if (n == 0) break; /* the blank line: the head is complete */
        if (++fields > SRV_HEAD_MAX_FIELDS)
            return bad(e, 431, "headers_too_large", "the request has too many header fields");
        if (p[0] == ' ' || p[0] == '\t')
            return bad(e, 400, "invalid_header", "folded header lines are not accepted");
        size_t k = 0;
        while (k < n && is_tchar((unsigned char)p[k])) k++;
        if (k == 0 || k >= n || p[k] != ':') return bad(e, 400, "invalid_header", "malformed header field");
        const char *v = p + k + 1;
        size_t vn = n - k - 1;
        for (size_t i = 0; i < vn; i++)
            if (((unsigned char)v[i] < ' ' && v[i] != '\t') || v[i] == 0x7f)
                return bad(e, 400, "invalid_header", "a header field contains a control character");
        if (k == 4 && !strncasecmp(p, "host", 4)) host = true;
        if (k == 17 && !strncasecmp(p, "transfer-encoding", 17)) {
            while (vn && (*v == ' ' || *v == '\t')) v++, vn--;
            while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t')) vn--;
            chunked = vn == 7 && !strncasecmp(v, "chunked", 7);
        }
        if (k == 14 && !strncasecmp(p, "content-length", 14) && check_length(v, vn, e) != SRV_HEAD_OK)
            return SRV_HEAD_BAD;
    }
    if (http11 && !host) return bad(e, 400, "missing_host", "HTTP/1.1 requests must have a Host header");
    return chunked ? check_first_chunk(next, end, max_body, e) : SRV_HEAD_OK;
}
