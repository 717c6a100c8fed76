/* Prometheus text exposition of the server's counters and histograms. */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/metrics.h"

static const char *const k_routes[] = {"/v1/completions", "/v1/chat/completions", "/v1/models", "/tokenize",
                                       "/detokenize",     "/health",              "/ready",     "/metrics",
                                       "/admin/reload",   "/",                    "/webui/",    "/local/",
                                       "other"};
#define N_ROUTES (sizeof k_routes / sizeof k_routes[0])
static const char *const k_grpc_methods[] = {"/wgllm.v1.Generator/GenerateToken", "/wgllm.v1.Generator/Generate",
                                             "/wgllm.v1.Generator/Tokenize",      "/wgllm.v1.Generator/Detokenize",
                                             "/wgllm.v1.Generator/GetModelInfo",  "/grpc.health.v1.Health/Check",
                                             "other"};
#define N_GRPC_METHODS (sizeof k_grpc_methods / sizeof k_grpc_methods[0])
static const char *const k_grpc_codes[] = {
    "OK",      "CANCELLED",           "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
#define N_GRPC_CODES (int)(sizeof k_grpc_codes / sizeof k_grpc_codes[0])
#define N_STATUS 600
#define RATE_WINDOW 10 /* seconds of tokens_per_second */

#define MAX_BUCKETS 16
typedef struct histogram {
    int n;
    const double *bounds;
    uint64_t counts[MAX_BUCKETS + 1]; /* last: +Inf */
    double sum;
    uint64_t count;
} histogram;

static const double k_latency_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
static const double k_token_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

struct srv_metrics {
    pthread_mutex_t mu;
    uint64_t requests[N_ROUTES][N_STATUS];
    uint64_t grpc_calls[N_GRPC_METHODS][N_GRPC_CODES];
    uint64_t prompt_tokens, generated_tokens, rejected, reloads_ok, reloads_failed;
    histogram ttft, per_token, inference;
    /* generated tokens per wall-clock second, for tokens_per_second */
    int64_t rate_second[RATE_WINDOW + 1];
    uint64_t rate_count[RATE_WINDOW + 1];
};

static void hist_init(histogram *h, const double *bounds, int n) {
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n = n;
}

static void hist_observe(histogram *h, double v) {
    int i = 0;
    while (i < h->n && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

srv_metrics *srv_metrics_create(void) {
    srv_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_mutex_init(&m->mu, NULL);
    hist_init(&m->ttft, k_latency_bounds, (int)(sizeof k_latency_bounds / sizeof k_latency_bounds[0]));
    hist_init(&m->inference, k_latency_bounds, (int)(sizeof k_latency_bounds / sizeof k_latency_bounds[0]));
    hist_init(&m->per_token, k_token_bounds, (int)(sizeof k_token_bounds / sizeof k_token_bounds[0]));
    return m;
}

void srv_metrics_free(srv_metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int64_t now_second(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

void srv_metrics_request(srv_metrics *m, const char *route, int status) {
    size_t r = N_ROUTES - 1;
    for (size_t i = 0; i + 1 < N_ROUTES; i++)
        if (route && !strcmp(route, k_routes[i])) r = i;
    if (status < 0 || status >= N_STATUS) status = 0;
    pthread_mutex_lock(&m->mu);
    m->requests[r][status]++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_grpc(srv_metrics *m, const char *method, int code) {
    size_t r = N_GRPC_METHODS - 1;
    for (size_t i = 0; i + 1 < N_GRPC_METHODS; i++)
        if (method && !strcmp(method, k_grpc_methods[i])) r = i;
    if (code < 0 || code >= N_GRPC_CODES) code = 2; /* UNKNOWN */
    pthread_mutex_lock(&m->mu);
    m->grpc_calls[r][code]++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_tokens(srv_metrics *m, uint64_t prompt, uint64_t generated) {
    int64_t s = now_second();
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += prompt;
    m->generated_tokens += generated;
    int slot = (int)(s % (RATE_WINDOW + 1));
    if (m->rate_second[slot] != s) {
        m->rate_second[slot] = s;
        m->rate_count[slot] = 0;
    }
    m->rate_count[slot] += generated;
    pthread_mutex_unlock(&m->mu);
}

#define OBSERVE(fn, field)                      \
    void fn(srv_metrics *m, double seconds) {   \
        pthread_mutex_lock(&m->mu);             \
        hist_observe(&m->field, seconds);       \
        pthread_mutex_unlock(&m->mu);           \
    }
OBSERVE(srv_metrics_first_token, ttft)
OBSERVE(srv_metrics_token_latency, per_token)
OBSERVE(srv_metrics_inference, inference)

void srv_metrics_rejected(srv_metrics *m) {
    pthread_mutex_lock(&m->mu);
    m->rejected++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_reload(srv_metrics *m, int ok) {
    pthread_mutex_lock(&m->mu);
    if (ok)
        m->reloads_ok++;
    else
        m->reloads_failed++;
    pthread_mutex_unlock(&m->mu);
}

typedef struct out {
    char *p;
    size_t len, cap;
    bool oom;
} out;

static void outf(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(out *o, const char *fmt, ...) {
    if (o->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n + 1;
        char *p = realloc(o->p, cap);
        if (!p) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
}

static void header(out *o, const char *name, const char *type, const char *help) {
    outf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(out *o, const char *name, const char *help, double v) {
    header(o, name, "gauge", help);
    outf(o, "%s %.17g\n", name, v);
}

static void counter(out *o, const char *name, const char *help, uint64_t v) {
    header(o, name, "counter", help);
    outf(o, "%s %llu\n", name, (unsigned long long)v);
}

static void hist(out *o, const char *name, const char *help, const histogram *h) {
    header(o, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < h->n; i++) {
        cum += h->counts[i];
        outf(o, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[h->n];
    outf(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    outf(o, "%s_sum %.17g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
}

char *srv_metrics_render(srv_metrics *m, const srv_metrics_gauges *g, size_t *len) {
    out o = {.cap = 8192};
    if (!(o.p = malloc(o.cap))) return NULL;
    o.p[0] = 0;
    pthread_mutex_lock(&m->mu);
    header(&o, "wgllm_http_requests_total", "counter", "HTTP requests answered, by route and status code.");
    for (size_t r = 0; r < N_ROUTES; r++)
        for (int s = 0; s < N_STATUS; s++)
            if (m->requests[r][s])
                outf(&o, "wgllm_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", k_routes[r], s,
                     (unsigned long long)m->requests[r][s]);
    header(&o, "wgllm_grpc_requests_total", "counter", "gRPC calls answered, by method and status code.");
    for (size_t r = 0; r < N_GRPC_METHODS; r++)
        for (int s = 0; s < N_GRPC_CODES; s++)
            if (m->grpc_calls[r][s])
                outf(&o, "wgllm_grpc_requests_total{method=\"%s\",code=\"%s\"} %llu\n", k_grpc_methods[r],
                     k_grpc_codes[s],
                     (unsigned long long)m->grpc_calls[r][s]);
    counter(&o, "wgllm_requests_rejected_total",
            "Requests refused because the queue was full (HTTP 429, gRPC RESOURCE_EXHAUSTED).",
            m->rejected);
    counter(&o, "wgllm_prompt_tokens_total", "Prompt tokens evaluated.", m->prompt_tokens);
    counter(&o, "wgllm_generated_tokens_total", "Tokens generated.", m->generated_tokens);
    header(&o, "wgllm_model_reloads_total", "counter", "Model reloads, by result.");
    outf(&o, "wgllm_model_reloads_total{result=\"ok\"} %llu\n", (unsigned long long)m->reloads_ok);
    outf(&o, "wgllm_model_reloads_total{result=\"error\"} %llu\n", (unsigned long long)m->reloads_failed);
    hist(&o, "wgllm_time_to_first_token_seconds", "Time from a request's arrival to its first generated token.",
         &m->ttft);
    hist(&o, "wgllm_time_per_output_token_seconds", "Time between consecutive generated tokens of a sequence.",
         &m->per_token);
    hist(&o, "gpu_inference_latency_seconds", "Inference time of a request, from its arrival to its last token.",
         &m->inference);
    int64_t now = now_second();
    uint64_t recent = 0;
    for (int i = 0; i <= RATE_WINDOW; i++)
        if (m->rate_second[i] > now - RATE_WINDOW && m->rate_second[i] <= now) recent += m->rate_count[i];
    pthread_mutex_unlock(&m->mu);

    gauge(&o, "tokens_per_second", "Generated tokens per second over the last 10 seconds, all sequences together.",
          (double)recent / RATE_WINDOW);
    gauge(&o, "gpu_memory_usage_bytes", "Bytes the model's backend holds on its GPU (0 on the CPU).",
          (double)g->device_memory);
    gauge(&o, "wgllm_queue_depth", "Requests waiting for a sequence slot.", g->queue_depth);
    gauge(&o, "wgllm_queue_capacity", "Most requests that may wait (--max-queue).", g->queue_capacity);
    gauge(&o, "wgllm_active_sequences", "Sequences being prefilled or decoded.", g->active);
    gauge(&o, "wgllm_parallel_sequences", "Sequence slots (--parallel).", g->parallel);
    gauge(&o, "wgllm_kv_cache_used_tokens", "Tokens held in the KV caches of active sequences.",
          (double)g->kv_used_tokens);
    gauge(&o, "wgllm_kv_cache_capacity_tokens", "Tokens the KV caches of all slots can hold.",
          (double)g->kv_capacity_tokens);
    gauge(&o, "wgllm_kv_cache_usage_ratio", "Used share of the KV cache capacity (0 to 1).",
          g->kv_capacity_tokens ? (double)g->kv_used_tokens / (double)g->kv_capacity_tokens : 0.0);
    gauge(&o, "wgllm_ready", "1 when the server accepts requests (model loaded, not draining).", g->ready);
    gauge(&o, "wgllm_draining", "1 while the server drains before exiting.", g->draining);
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    if (len) *len = o.len;
    return o.p;
}
