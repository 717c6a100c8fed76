/* Structured access log: a single write per line so lines never interleave. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/access_log.h"
#include "server/server_internal.h"

void srv_access_log(const srv_conn *c, bool completed, double seconds) {
    char ts[40];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    cJSON_AddStringToObject(o, "time", ts);
    cJSON_AddStringToObject(o, "remote", c->remote);
    cJSON_AddStringToObject(o, "method", c->method);
    char *path = srv_utf8_sanitize(c->path, strlen(c->path), NULL);
    cJSON_AddStringToObject(o, "path", path ? path : "");
    free(path);
    cJSON_AddNumberToObject(o, "status", c->responded ? c->status : 499);
    cJSON_AddNumberToObject(o, "duration_ms", (double)(long long)(seconds * 1e6) / 1e3);
    cJSON_AddNumberToObject(o, "request_bytes", (double)c->body_len);
    if (c->prompt_tokens || c->completion_tokens) {
        cJSON_AddNumberToObject(o, "prompt_tokens", c->prompt_tokens);
        cJSON_AddNumberToObject(o, "completion_tokens", c->completion_tokens);
    }
    if (c->streamed) cJSON_AddBoolToObject(o, "stream", 1);
    if (!completed) cJSON_AddBoolToObject(o, "client_disconnected", 1);
    if (c->error_code[0]) cJSON_AddStringToObject(o, "error", c->error_code);
    if (c->protocol) {
        cJSON_AddStringToObject(o, "protocol", c->protocol);
        cJSON_AddNumberToObject(o, "grpc_status", c->grpc_status);
    }
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!line) return;
    size_t len = strlen(line);
    char *buf = malloc(len + 2);
    if (buf) {
        memcpy(buf, line, len);
        buf[len] = '\n';
        ssize_t w = write(STDERR_FILENO, buf, len + 1);
        (void)w;
        free(buf);
    }
    free(line);
}
