/* Timestamp-query profiler of the WebGPU backend (WGLLM_WEBGPU_PROFILE=1 or =pass).
 *
 * Each timed scope (one dispatch, or one whole compute pass) writes a timestamp at its
 * beginning and end. Before a command buffer is finished the timestamps are resolved and
 * copied to a mappable buffer, which is read right after the submit: profiling serialises
 * CPU and GPU, so it measures where GPU time goes, not the end-to-end speed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/webgpu/wgpu_internal.h"

static void on_map(WGPUMapAsyncStatus status, WGPUStringView message, void *u1, void *u2) {
    (void)message;
    (void)u2;
    wgb_ctx *c = u1;
    c->map_status = status;
    c->map_done = true;
}

double wgb_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

void wgb_profile_host(wgb_ctx *c, int what, double t0) {
    c->prof.host_ns[what] += wgb_now_ns() - t0;
    c->prof.host_calls[what]++;
}

void wgb_profile_init(wgb_ctx *c) {
    memset(&c->prof, 0, sizeof c->prof);
    const char *v = getenv("WGLLM_WEBGPU_PROFILE");
    if (!v || !*v || strcmp(v, "0") == 0) return;
    if (strcmp(v, "host") == 0) { /* CPU-side times only: no query, nothing serialised */
        c->prof.host = true;
        c->prof.host_t0 = wgb_now_ns();
        return;
    }
    if (!c->dev->features.timestamp_query) {
        fprintf(stderr, "wgllm: WGLLM_WEBGPU_PROFILE ignored: the device has no timestamp-query feature\n");
        return;
    }
    if (!wgb_profile_open(c, strcmp(v, "pass") == 0 ? 2 : 1))
        fprintf(stderr, "wgllm: WGLLM_WEBGPU_PROFILE ignored: cannot create the query set\n");
}

bool wgb_profile_open(wgb_ctx *c, int mode) {
    wgb_profile *p = &c->prof;
    memset(p, 0, sizeof *p);
    const wg_wgpu *api = c->api;
    WGPUQuerySetDescriptor qd = WGPU_QUERY_SET_DESCRIPTOR_INIT;
    qd.type = WGPUQueryType_Timestamp;
    qd.count = 2 * WGB_PROFILE_SLOTS;
    p->queries = api->DeviceCreateQuerySet(c->dev->device, &qd);
    WGPUBufferDescriptor bd = WGPU_BUFFER_DESCRIPTOR_INIT;
    bd.size = 2ull * WGB_PROFILE_SLOTS * sizeof(uint64_t);
    bd.usage = WGPUBufferUsage_QueryResolve | WGPUBufferUsage_CopySrc;
    p->resolve = api->DeviceCreateBuffer(c->dev->device, &bd);
    bd.usage = WGPUBufferUsage_MapRead | WGPUBufferUsage_CopyDst;
    p->readback = api->DeviceCreateBuffer(c->dev->device, &bd);
    if (!p->queries || !p->resolve || !p->readback) {
        wgb_profile_destroy(c);
        return false;
    }
    p->period = api->QueueGetTimestampPeriod ? api->QueueGetTimestampPeriod(c->dev->queue) : 1.0;
    if (p->period <= 0) p->period = 1.0;
    p->mode = mode;
    return true;
}

bool wgb_profile_full(const wgb_ctx *c) { return c->prof.mode && c->prof.n >= WGB_PROFILE_SLOTS; }

WGPUComputePassEncoder wgb_profile_begin_pass(wgb_ctx *c, int kernel) {
    wgb_profile *p = &c->prof;
    bool timed = p->mode && p->n < WGB_PROFILE_SLOTS && ((p->mode == 1) == (kernel >= 0));
    WGPUComputePassDescriptor d = WGPU_COMPUTE_PASS_DESCRIPTOR_INIT;
    WGPUPassTimestampWrites tw = WGPU_PASS_TIMESTAMP_WRITES_INIT;
    if (timed) {
        tw.querySet = p->queries;
        tw.beginningOfPassWriteIndex = 2 * p->n;
        tw.endOfPassWriteIndex = 2 * p->n + 1;
        d.timestampWrites = &tw;
        p->kernel[p->n++] = (int16_t)kernel;
    }
    return c->api->CommandEncoderBeginComputePass(c->enc, &d);
}

void wgb_profile_before_finish(wgb_ctx *c, WGPUCommandEncoder enc) {
    wgb_profile *p = &c->prof;
    if (!p->mode || p->n == 0) return;
    c->api->CommandEncoderResolveQuerySet(enc, p->queries, 0, 2 * p->n, p->resolve, 0);
    c->api->CommandEncoderCopyBufferToBuffer(enc, p->resolve, 0, p->readback, 0, 2ull * p->n * sizeof(uint64_t));
}

void wgb_profile_after_submit(wgb_ctx *c) {
    wgb_profile *p = &c->prof;
    if (!p->mode || p->n == 0) return;
    const wg_wgpu *api = c->api;
    size_t bytes = 2ull * p->n * sizeof(uint64_t);
    c->map_done = false;
    WGPUBufferMapCallbackInfo cb = {NULL, WGPUCallbackMode_AllowProcessEvents, on_map, c, NULL};
    api->BufferMapAsync(p->readback, WGPUMapMode_Read, 0, bytes, cb);
    char err[512];
    if (!wg_device_wait(c->dev, &c->map_done, WG_GPU_WAIT_TIMEOUT_MS, "profile read-back", err, sizeof err) ||
        c->map_status != WGPUMapAsyncStatus_Success) {
        fprintf(stderr, "wgllm: profiling stopped: %s\n", c->map_done ? "map failed" : err);
        p->mode = 0; /* a pending map leaves the buffer unusable */
        return;
    }
    const uint64_t *t = api->BufferGetConstMappedRange(p->readback, 0, bytes);
    if (t) {
        for (uint32_t i = 0; i < p->n; i++) {
            int k = p->kernel[i] < 0 ? WGB_K_COUNT : p->kernel[i];
            if (t[2 * i + 1] >= t[2 * i]) p->ns[k] += (double)(t[2 * i + 1] - t[2 * i]) * p->period;
            p->calls[k]++;
        }
    }
    api->BufferUnmap(p->readback);
    p->submits++;
    p->n = 0;
}

/* Where the CPU's time went: if recording plus submitting is close to the whole time, the
 * GPU waits for the CPU; if waiting is most of it, the CPU waits for the GPU. */
static void report_host(const wgb_profile *p) {
    static const char *const names[3] = {"record dispatches", "finish + submit", "wait for read-backs"};
    const double wall = wgb_now_ns() - p->host_t0;
    fprintf(stderr, "\nWebGPU host profile (CPU side; %.3f ms since the backend opened)\n", wall / 1e6);
    fprintf(stderr, "%-22s %10s %12s %10s %7s\n", "what", "calls", "total ms", "avg us", "share");
    for (int i = 0; i < 3; i++)
        fprintf(stderr, "%-22s %10llu %12.3f %10.2f %6.1f%%\n", names[i], (unsigned long long)p->host_calls[i],
                p->host_ns[i] / 1e6, p->host_calls[i] ? p->host_ns[i] / 1e3 / (double)p->host_calls[i] : 0.0,
                wall > 0 ? 100.0 * p->host_ns[i] / wall : 0.0);
}

void wgb_profile_report(wgb_ctx *c) {
    wgb_profile *p = &c->prof;
    if (p->host) report_host(p);
    if (!p->submits) return;
    double total = 0;
    for (int k = 0; k <= WGB_K_COUNT; k++) total += p->ns[k];
    fprintf(stderr, "\nWebGPU profile (timestamp queries, %s; %llu command buffers)\n",
            p->mode == 2 ? "whole passes" : "one pass per dispatch", (unsigned long long)p->submits);
    fprintf(stderr, "%-22s %10s %12s %10s %7s\n", "kernel", "calls", "total ms", "avg us", "share");
    for (int k = 0; k <= WGB_K_COUNT; k++) {
        if (!p->calls[k]) continue;
        const char *name = k == WGB_K_COUNT ? "(compute passes)" : c->pl.k[k].label;
        fprintf(stderr, "%-22s %10llu %12.3f %10.2f %6.1f%%\n", name, (unsigned long long)p->calls[k], p->ns[k] / 1e6,
                p->ns[k] / 1e3 / (double)p->calls[k], total > 0 ? 100.0 * p->ns[k] / total : 0.0);
    }
    fprintf(stderr, "%-22s %10s %12.3f\n", "total", "", total / 1e6);
}

void wgb_profile_destroy(wgb_ctx *c) {
    wgb_profile *p = &c->prof;
    if (p->readback) wg_buffer_free(c->dev, p->readback);
    if (p->resolve) wg_buffer_free(c->dev, p->resolve);
    if (p->queries) c->api->QuerySetRelease(p->queries);
    p->readback = p->resolve = NULL;
    p->queries = NULL;
    p->mode = 0;
}
