/* Strict request-body JSON: the RFC 8259 grammar check against cases cJSON alone
 * gets wrong (trailing text, raw control bytes, 01 / 1. / +1 numbers, lone surrogates),
 * the \u0000 refusal naming its top-level key, duplicate keys at any depth, and the
 * request parser on top. Every input is copied into a buffer of its exact size, so
 * AddressSanitizer catches any read past the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "server/json_strict.h"
#include "server/request.h"

static bool check_exact(const char *s, size_t len, srv_error *e) {
    char *buf = malloc(len ? len : 1);
    memcpy(buf, s, len);
    bool ok = srv_json_check(buf, len, e);
    free(buf);
    return ok;
}

static void test_grammar(void) {
    static const char *const valid[] = {
        "{}", "[]", " {} ", "\t\r\n[\n]\r\n", "0", "-0", "1", "-12", "0.5", "-0.0e0", "1E5", "1e+5", "1e-05",
        "123.456e789", "\"\"", "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", "\"\\u00e9\\u00E9\"", "\"\\ud83d\\ude00\"",
        "\"\\uDBFF\\uDFFF\"", "\"caf\xc3\xa9\"", "true", "false", "null", "[1,[2,[3,{}]],{\"a\":{\"b\":[]}}]",
        "{\"\":0}", "{\"a\":1,\"b\":[true,false,null]}",
    };
    static const char *const invalid[] = {
        "", " ", "{", "}", "[", "[1,]", "{\"a\":1,}", "{,}", "{\"a\"}", "{\"a\" 1}", "{a:1}", "{'a':1}",
        "{} x", "{}{}", "[] []", "01", "-", "-a", "1.", ".5", "+1", "1e", "1e+", "0x10", "1.e5", "--1", "Infinity",
        "NaN", "True", "nul", "nulll", "\"a", "\"\\x\"", "\"\\u12\"", "\"\\u12g4\"", "\"\\ud800\"",
        "\"\\ud800x\"", "\"\\ud800\\u0041\"", "\"\\udc00\"", "\"\\ud800\\ud800\"", "\"a\nb\"", "\"a\tb\"",
        "\"\x1f\"", "\"\\", "/* c */ {}", "\xef\xbb\xbf{}",
    };
    srv_error e;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        CHECK_MSG(check_exact(valid[i], strlen(valid[i]), &e), "rejected valid %s: %s", valid[i], e.message);
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        memset(&e, 0, sizeof e);
        bool ok = check_exact(invalid[i], strlen(invalid[i]), &e);
        CHECK_MSG(!ok, "accepted invalid %s", invalid[i]);
        CHECK_MSG(!ok && e.status == 400 && !strcmp(e.code, "invalid_json") && e.message[0], "error for %s",
                  invalid[i]);
    }
    /* a raw NUL inside a string, between tokens and after the value */
    CHECK(!check_exact("{\"a\":1}\0", 8, &e));
    CHECK(!check_exact("\"a\0b\"", 5, &e) && !strcmp(e.code, "invalid_json"));
    CHECK(!check_exact("[1,\0 2]", 7, &e));
    /* nesting: up to the limit, and one more */
    char deep[2 * (SRV_JSON_MAX_DEPTH + 1)];
    for (int d = SRV_JSON_MAX_DEPTH; d <= SRV_JSON_MAX_DEPTH + 1; d++) {
        memset(deep, '[', (size_t)d);
        memset(deep + d, ']', (size_t)d);
        CHECK_MSG(check_exact(deep, 2 * (size_t)d, &e) == (d == SRV_JSON_MAX_DEPTH), "depth %d", d);
    }
    /* every prefix of a valid body is invalid, and no prefix reads past its end */
    const char *body = "{\"model\":\"m\",\"prompt\":\"a\\u00e9\\ud83d\\ude00\",\"stop\":[\"x\"],\"top_p\":0.5e-1}";
    for (size_t n = 0; n < strlen(body); n++) CHECK_MSG(!check_exact(body, n, &e), "prefix %zu accepted", n);
    CHECK(check_exact(body, strlen(body), &e));
}

static void test_nul_names_the_field(void) {
    srv_error e;
    const char *s = "{\"model\":\"m\",\"prompt\":\"Once\\u0000 upon\"}";
    CHECK(!check_exact(s, strlen(s), &e));
    CHECK(e.status == 400 && !strcmp(e.param, "prompt") && strstr(e.message, "NUL"));
    s = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"\\u0000\"}]}]}";
    CHECK(!check_exact(s, strlen(s), &e) && !strcmp(e.param, "messages"));
    s = "{\"model\":\"m\",\"a\\u0000b\":1}"; /* in a key: no name to give */
    CHECK(!check_exact(s, strlen(s), &e) && !strcmp(e.param, "") && strstr(e.message, "NUL"));
    s = "[\"\\u0000\"]";
    CHECK(!check_exact(s, strlen(s), &e) && !strcmp(e.param, "") && strstr(e.message, "NUL"));
}

static void test_duplicate_keys(void) {
    srv_error e;
    static const struct {
        const char *body, *param;
    } dups[] = {
        {"{\"a\":1,\"a\":2}", "a"},
        {"{\"prompt\":\"x\",\"model\":\"m\",\"prompt\":\"y\"}", "prompt"},
        {"{\"a\\u0062\":1,\"ab\":2}", "ab"}, /* equal once the escape is decoded */
        {"{\"messages\":[{\"role\":\"user\",\"role\":\"system\"}]}", "messages"},
        {"{\"x\":{\"y\":{\"z\":1,\"z\":1}}}", "x"},
    };
    for (size_t i = 0; i < sizeof dups / sizeof dups[0]; i++) {
        cJSON *root = srv_json_parse_object(dups[i].body, strlen(dups[i].body), &e);
        CHECK_MSG(!root, "accepted %s", dups[i].body);
        cJSON_Delete(root);
        CHECK_MSG(!root && e.status == 400 && !strcmp(e.code, "duplicate_key") && !strcmp(e.param, dups[i].param),
                  "error for %s: %s / %s", dups[i].body, e.param, e.message);
    }
    const char *ok = "{\"a\":{\"a\":1},\"b\":[{\"a\":1},{\"a\":2}],\"A\":1}";
    cJSON *root = srv_json_parse_object(ok, strlen(ok), &e);
    CHECK(root != NULL);
    cJSON_Delete(root);
    /* many keys, the duplicate far apart: sorted, not quadratic */
    size_t cap = 20000 * 12 + 64, n = 0;
    char *big = malloc(cap);
    n += (size_t)snprintf(big + n, cap - n, "{\"k0\":0");
    for (int i = 1; i < 20000; i++) n += (size_t)snprintf(big + n, cap - n, ",\"k%d\":0", i);
    n += (size_t)snprintf(big + n, cap - n, ",\"k0\":1}");
    CHECK(!srv_json_parse_object(big, n, &e) && !strcmp(e.param, "k0"));
    free(big);
}

static void test_object_pipeline(void) {
    srv_error e;
    CHECK(!srv_json_parse_object(NULL, 0, &e) && e.status == 400);
    CHECK(!srv_json_parse_object("[1]", 3, &e) && !strcmp(e.code, "invalid_json"));
    CHECK(!srv_json_parse_object("{\"a\":\"\xff\"}", 8, &e) && !strcmp(e.code, "invalid_utf8"));
    cJSON *root = srv_json_parse_object(" {\"a\":\"\\u00e9\"} ", 16, &e);
    CHECK(root && !strcmp(cJSON_GetObjectItemCaseSensitive(root, "a")->valuestring, "\xc3\xa9"));
    cJSON_Delete(root);
}

/* The request parser on top: model optional, unsupported fields refused. */
static void test_request_fields(void) {
    srv_request r;
    srv_error e;
    const char *s = "{\"prompt\":\"Once\"}";
    CHECK(srv_request_parse(s, strlen(s), SRV_REQ_COMPLETION, &r, &e) && r.model == NULL && r.prompt);
    srv_request_free(&r);
    s = "{\"model\":null,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"response_format\":{\"type\":\"text\"},"
        "\"tools\":[],\"tool_choice\":\"none\",\"logit_bias\":{}}";
    CHECK(srv_request_parse(s, strlen(s), SRV_REQ_CHAT, &r, &e) && r.model == NULL && r.n_msgs == 1);
    srv_request_free(&r);
    static const struct {
        const char *body, *param;
    } refused[] = {
        {"{\"prompt\":\"a\",\"tools\":[{\"type\":\"function\"}]}", "tools"},
        {"{\"prompt\":\"a\",\"tool_choice\":\"required\"}", "tool_choice"},
        {"{\"prompt\":\"a\",\"functions\":[{}]}", "functions"},
        {"{\"prompt\":\"a\",\"function_call\":{\"name\":\"f\"}}", "function_call"},
        {"{\"prompt\":\"a\",\"response_format\":{\"type\":\"json_object\"}}", "response_format"},
        {"{\"prompt\":\"a\",\"response_format\":{\"type\":\"text\",\"x\":1}}", "response_format"},
        {"{\"prompt\":\"a\",\"response_format\":{}}", "response_format"},
        {"{\"prompt\":\"a\",\"logit_bias\":{\"1\":2}}", "logit_bias"},
        {"{\"prompt\":\"a\",\"suffix\":\"b\"}", "suffix"},
        {"{\"prompt\":\"a\",\"best_of\":2}", "best_of"},
        {"{\"prompt\":\"a\",\"best_of\":\"1\"}", "best_of"},
        {"{\"prompt\":\"a\",\"modalities\":[\"audio\"]}", "modalities"},
        {"{\"prompt\":\"a\",\"grammar\":\"root ::= x\"}", "grammar"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        bool ok = srv_request_parse(refused[i].body, strlen(refused[i].body), SRV_REQ_COMPLETION, &r, &e);
        if (ok) srv_request_free(&r);
        CHECK_MSG(!ok && e.status == 400 && !strcmp(e.code, "unsupported_parameter") &&
                      !strcmp(e.param, refused[i].param),
                  "%s: %s", refused[i].body, ok ? "accepted" : e.message);
    }
    s = "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"1\"}]}]}";
    CHECK(!srv_request_parse(s, strlen(s), SRV_REQ_CHAT, &r, &e) && !strcmp(e.param, "messages"));
}

int main(void) {
    test_grammar();
    test_nul_names_the_field();
    test_duplicate_keys();
    test_object_pipeline();
    test_request_fields();
    CHECK_DONE();
}
