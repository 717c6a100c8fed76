/* libFuzzer target for the server's request parsing: arbitrary bytes as the body of
 * /v1/completions and /v1/chat/completions, then the chat template renderers and
 * the stop-string scanner on whatever was accepted. Checks the invariants the
 * server relies on: accepted requests hold valid UTF-8, in-range numbers and at
 * most SRV_MAX_STOPS non-empty stop strings; rejected ones carry a 4xx and a message.
 * The strict JSON check must agree with cJSON: whatever it accepts, cJSON parses to
 * the last byte, and cJSON's own printing of an accepted object passes it again. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "server/chat_template.h"
#include "server/json_strict.h"
#include "server/request.h"
#include "server/sampling.h"

static void check(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

static void check_request(const srv_request *r) {
    check(!r->model || srv_utf8_valid(r->model, strlen(r->model)), "model is UTF-8");
    check(r->n_stops >= 0 && r->n_stops <= SRV_MAX_STOPS, "stop count");
    for (int i = 0; i < r->n_stops; i++) check(r->stops[i] && r->stops[i][0], "stop non-empty");
    check(isfinite(r->temperature) && r->temperature >= 0 && r->temperature <= 2, "temperature range");
    check(r->top_p > 0 && r->top_p <= 1, "top_p range");
    check(r->min_p >= 0 && r->min_p <= 1, "min_p range");
    check(fabsf(r->presence_penalty) <= 2 && fabsf(r->frequency_penalty) <= 2, "penalty range");
    check(r->max_tokens == -1 || r->max_tokens >= 1, "max_tokens");
    check(r->top_logprobs >= 0 && r->top_logprobs <= SRV_MAX_TOP_LOGPROBS, "top_logprobs");
    if (r->kind == SRV_REQ_CHAT) {
        check(r->n_msgs >= 1, "messages");
        for (srv_chat_format f = SRV_CHAT_FALLBACK; f <= SRV_CHAT_ZEPHYR; f++) {
            size_t len = 0;
            char *p = srv_chat_render(f, r->msgs, r->n_msgs, &len);
            check(p && strlen(p) == len && srv_utf8_valid(p, len), "rendered prompt");
            const char *stops[SRV_MAX_STOPS + 1];
            int n = 0;
            for (int i = 0; i < r->n_stops; i++) stops[n++] = r->stops[i];
            if (srv_chat_end_marker(f)) stops[n++] = srv_chat_end_marker(f);
            bool matched;
            size_t keep = srv_stop_scan(p, len, stops, n, &matched);
            check(keep <= len, "stop scan length");
            free(p);
        }
    } else {
        check((r->prompt != NULL) != (r->prompt_ids != NULL), "one prompt form");
        if (r->prompt) check(srv_utf8_valid(r->prompt, r->prompt_len), "prompt is UTF-8");
    }
}

static void check_json(const char *s, size_t size) {
    srv_error e;
    if (!srv_json_check(s, size, &e)) {
        check(e.status == 400 && e.message[0], "JSON error status and message");
        return;
    }
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(s, size, &end, false);
    check(v != NULL, "cJSON parses what the strict check accepts");
    while (end && end < s + size && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
    check(end == s + size, "cJSON reads the whole accepted value");
    cJSON_Delete(v);
    cJSON *o = srv_json_parse_object(s, size, &e);
    if (!o) {
        check(e.status >= 400 && e.message[0], "object error status and message");
        return;
    }
    char *printed = cJSON_PrintUnformatted(o);
    check(printed && srv_json_check(printed, strlen(printed), &e), "cJSON's output passes the strict check");
    free(printed);
    cJSON_Delete(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_json((const char *)data, size);
    for (int k = 0; k < 2; k++) {
        srv_request r;
        srv_error e;
        if (srv_request_parse((const char *)data, size, k ? SRV_REQ_CHAT : SRV_REQ_COMPLETION, &r, &e)) {
            check_request(&r);
            srv_request_free(&r);
        } else {
            check(e.status >= 400 && e.status < 600 && e.message[0], "error status and message");
        }
    }
    size_t out_len;
    char *clean = srv_utf8_sanitize((const char *)data, size, &out_len);
    check(clean && srv_utf8_valid(clean, out_len), "sanitized text is UTF-8");
    free(clean);
    return 0;
}
