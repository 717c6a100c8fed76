/* Prometheus metrics of the server: counters, gauges and histograms behind one
 * lock, rendered in the text exposition format. */
#ifndef WGLLM_SERVER_METRICS_H
#define WGLLM_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct srv_metrics srv_metrics;

srv_metrics *srv_metrics_create(void);
void srv_metrics_free(srv_metrics *m);

/* route: one of the server's paths (anything else counts as "other"). */
void srv_metrics_request(srv_metrics *m, const char *route, int status);
void srv_metrics_tokens(srv_metrics *m, uint64_t prompt, uint64_t generated);
void srv_metrics_first_token(srv_metrics *m, double seconds);
void srv_metrics_token_latency(srv_metrics *m, double seconds);
void srv_metrics_inference(srv_metrics *m, double seconds);
void srv_metrics_rejected(srv_metrics *m);
/* A gRPC call answered: method is one of the served ones (else "other"), code its status. */
void srv_metrics_grpc(srv_metrics *m, const char *method, int code);
void srv_metrics_reload(srv_metrics *m, int ok);

/* The values that live elsewhere, sampled when /metrics is rendered. */
typedef struct srv_metrics_gauges {
    int queue_depth, queue_capacity, active, parallel;
    uint64_t kv_used_tokens, kv_capacity_tokens;
    uint64_t device_memory;
    int ready, draining;
} srv_metrics_gauges;

/* Renders everything; returns a malloc'd string (NULL when out of memory). */
char *srv_metrics_render(srv_metrics *m, const srv_metrics_gauges *g, size_t *len);

#endif
