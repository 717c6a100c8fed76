/* Request bodies: an RFC 8259 grammar check before cJSON, and the checks cJSON
 * cannot make (duplicate keys, \u0000 inside strings). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/json_strict.h"

typedef struct jscan {
    const unsigned char *p, *end, *start;
    char key[48];    /* the top-level key whose value is being read; "" if unnamed */
    const char *why; /* the first problem (static text) */
    bool nul;        /* that problem is a \u0000 escape */
} jscan;

static bool fail(jscan *j, const char *why) {
    if (!j->why) j->why = why;
    return false;
}

static bool is_digit(const jscan *j) { return j->p < j->end && *j->p >= '0' && *j->p <= '9'; }

static void skip_digits(jscan *j) {
    while (is_digit(j)) j->p++;
}

static void skip_ws(jscan *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

/* Code unit of the \uXXXX escape at p, or -1 if there is none. */
static long escape_u(const unsigned char *p, const unsigned char *end) {
    if (end - p < 6 || p[0] != '\\' || p[1] != 'u') return -1;
    long v = 0;
    for (int i = 2; i < 6; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A string at j->p (on its opening quote); body and n: the bytes between the quotes. */
static bool scan_string(jscan *j, const unsigned char **body, size_t *n) {
    const unsigned char *b = ++j->p;
    for (;;) {
        if (j->p >= j->end) return fail(j, "unterminated string");
        unsigned c = *j->p;
        if (c == '"') break;
        if (c < 0x20) return fail(j, "unescaped control character in a string");
        if (c != '\\') {
            j->p++; /* UTF-8 was checked before */
            continue;
        }
        if (j->end - j->p < 2) return fail(j, "unterminated string");
        c = j->p[1];
        if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
            j->p += 2;
            continue;
        }
        long u = escape_u(j->p, j->end);
        if (u < 0) return fail(j, "invalid escape in a string");
        if (u == 0) {
            j->nul = true;
            return fail(j, "\\u0000 in a string");
        }
        if (u >= 0xDC00 && u <= 0xDFFF) return fail(j, "unpaired UTF-16 surrogate escape");
        j->p += 6;
        if (u >= 0xD800 && u <= 0xDBFF) {
            long lo = escape_u(j->p, j->end);
            if (lo < 0xDC00 || lo > 0xDFFF) return fail(j, "unpaired UTF-16 surrogate escape");
            j->p += 6;
        }
    }
    *body = b;
    *n = (size_t)(j->p - b);
    j->p++;
    return true;
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static bool scan_number(jscan *j) {
    if (*j->p == '-') j->p++;
    if (!is_digit(j)) return fail(j, "invalid number");
    if (*j->p == '0') {
        j->p++;
        if (is_digit(j)) return fail(j, "number with a leading zero");
    } else {
        skip_digits(j);
    }
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!is_digit(j)) return fail(j, "invalid number (no digit after '.')");
        skip_digits(j);
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (!is_digit(j)) return fail(j, "invalid number (no digit in the exponent)");
        skip_digits(j);
    }
    return true;
}

static bool scan_literal(jscan *j, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n)) return fail(j, "unexpected character");
    j->p += n;
    return true;
}

/* Keeps a top-level key for error messages when it is plain ASCII. */
static void name_key(jscan *j, const unsigned char *k, size_t n) {
    j->key[0] = 0;
    if (n == 0 || n >= sizeof j->key) return;
    for (size_t i = 0; i < n; i++)
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= '0' && k[i] <= '9') ||
              k[i] == '_' || k[i] == '-' || k[i] == '.'))
            return;
    memcpy(j->key, k, n);
    j->key[n] = 0;
}

static bool scan_value(jscan *j, int depth);

static bool scan_object(jscan *j, int depth) {
    if (depth > SRV_JSON_MAX_DEPTH) return fail(j, "nested too deeply");
    j->p++;
    skip_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return true;
    }
    for (;;) {
        skip_ws(j);
        if (j->p >= j->end || *j->p != '"') return fail(j, "expected a string key");
        if (depth == 1) j->key[0] = 0;
        const unsigned char *k;
        size_t kn;
        if (!scan_string(j, &k, &kn)) return false;
        if (depth == 1) name_key(j, k, kn);
        skip_ws(j);
        if (j->p >= j->end || *j->p != ':') return fail(j, "expected ':' after a key");
        j->p++;
        if (!scan_value(j, depth)) return false;
        skip_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            return true;
        }
        return fail(j, "expected ',' or '}' in an object");
    }
}

static bool scan_array(jscan *j, int depth) {
    if (depth > SRV_JSON_MAX_DEPTH) return fail(j, "nested too deeply");
    j->p++;
    skip_ws(j);
    if (j->p < j->end && *j->p == ']') {
        j->p++;
        return true;
    }
    for (;;) {
        if (!scan_value(j, depth)) return false;
        skip_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            return true;
        }
        return fail(j, "expected ',' or ']' in an array");
    }
}

/* depth: how many arrays and objects enclose the value. */
static bool scan_value(jscan *j, int depth) {
    skip_ws(j);
    if (j->p >= j->end) return fail(j, "unexpected end of the body");
    const unsigned char *b;
    size_t n;
    switch (*j->p) {
    case '{': return scan_object(j, depth + 1);
    case '[': return scan_array(j, depth + 1);
    case '"': return scan_string(j, &b, &n);
    case 't': return scan_literal(j, "true");
    case 'f': return scan_literal(j, "false");
    case 'n': return scan_literal(j, "null");
    default:
        if (*j->p == '-' || is_digit(j)) return scan_number(j);
        return fail(j, "unexpected character");
    }
}

bool srv_json_check(const char *s, size_t len, srv_error *e) {
    if (!s) s = ""; /* an empty body may come as NULL */
    jscan j = {.p = (const unsigned char *)s, .end = (const unsigned char *)s + len, .start = (const unsigned char *)s};
    bool ok = scan_value(&j, 0);
    if (ok) {
        skip_ws(&j);
        if (j.p != j.end) ok = fail(&j, "text after the JSON value");
    }
    if (ok) return true;
    if (j.nul && j.key[0])
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", j.key,
                      "'%s' must not contain NUL characters (\\u0000)", j.key);
    else if (j.nul)
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", "",
                      "strings in the request must not contain NUL characters (\\u0000)");
    else
        srv_error_set(e, 400, "invalid_request_error", "invalid_json", "",
                      "the request body is not valid JSON: %s at byte %zu", j.why, (size_t)(j.p - j.start));
    return false;
}

/* ---- duplicate keys (cJSON keeps them all and lookups find the first) ---- */

static int cmp_key(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* A key that the object o holds twice, or NULL; *oom on allocation failure. */
static const char *twice_in(const cJSON *o, bool *oom) {
    size_t n = 0;
    for (const cJSON *c = o->child; c; c = c->next) n++;
    if (n < 2) return NULL;
    const char **keys = malloc(n * sizeof *keys);
    if (!keys) {
        *oom = true;
        return NULL;
    }
    n = 0;
    for (const cJSON *c = o->child; c; c = c->next) keys[n++] = c->string;
    qsort(keys, n, sizeof *keys, cmp_key);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (!strcmp(keys[i - 1], keys[i])) dup = keys[i];
    free(keys);
    return dup;
}

/* A key held twice by any object in the tree under v (depth bounded by srv_json_check). */
static const char *duplicate_key(const cJSON *v, bool *oom) {
    if (cJSON_IsObject(v)) {
        const char *d = twice_in(v, oom);
        if (d || *oom) return d;
    }
    if (cJSON_IsObject(v) || cJSON_IsArray(v))
        for (const cJSON *c = v->child; c; c = c->next) {
            const char *d = duplicate_key(c, oom);
            if (d || *oom) return d;
        }
    return NULL;
}

cJSON *srv_json_parse_object(const char *s, size_t len, srv_error *e) {
    if (!srv_utf8_valid(s ? s : "", len)) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_utf8", "", "the request body is not valid UTF-8");
        return NULL;
    }
    if (!srv_json_check(s, len, e)) return NULL;
    cJSON *root = cJSON_ParseWithLength(s, len);
    if (!root) { /* the grammar was checked: only memory can fail here */
        srv_error_set(e, 500, "server_error", NULL, "", "out of memory while parsing the request");
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        srv_error_set(e, 400, "invalid_request_error", "invalid_json", "", "the request body must be a JSON object");
        return NULL;
    }
    bool oom = false;
    const char *dup = twice_in(root, &oom), *top = dup;
    for (const cJSON *c = root->child; c && !dup && !oom; c = c->next)
        if ((dup = duplicate_key(c, &oom))) top = c->string;
    if (dup || oom) {
        jscan names = {0};
        name_key(&names, (const unsigned char *)top, oom ? 0 : strlen(top));
        if (oom)
            srv_error_set(e, 500, "server_error", NULL, "", "out of memory while parsing the request");
        else if (names.key[0] && top == dup)
            srv_error_set(e, 400, "invalid_request_error", "duplicate_key", names.key,
                          "the key '%s' appears more than once", names.key);
        else
            srv_error_set(e, 400, "invalid_request_error", "duplicate_key", names.key,
                          "an object in the request holds the same key more than once");
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}
