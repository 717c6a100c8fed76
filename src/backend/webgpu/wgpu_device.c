#include "backend/webgpu/wgpu_device.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Staging size for uploads and read-backs: bounds the temporary host/GPU copies of big tensors. */
#define WG_STAGING_BYTES ((uint64_t)64 << 20)

/* ---------------------------------------------------------------- names and env */

const char *wg_backend_type_name(WGPUBackendType t) {
    switch (t) {
    case WGPUBackendType_Null: return "null";
    case WGPUBackendType_WebGPU: return "webgpu";
    case WGPUBackendType_D3D11: return "d3d11";
    case WGPUBackendType_D3D12: return "d3d12";
    case WGPUBackendType_Metal: return "metal";
    case WGPUBackendType_Vulkan: return "vulkan";
    case WGPUBackendType_OpenGL: return "opengl";
    case WGPUBackendType_OpenGLES: return "opengles";
    default: return "unknown";
    }
}

const char *wg_adapter_type_name(WGPUAdapterType t) {
    switch (t) {
    case WGPUAdapterType_DiscreteGPU: return "discrete-gpu";
    case WGPUAdapterType_IntegratedGPU: return "integrated-gpu";
    case WGPUAdapterType_CPU: return "cpu";
    default: return "unknown";
    }
}

static bool env_flag(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* wgpu-native's backend mask. GL is left out by default: it is a downlevel compute target,
 * and on a GPU-less Linux machine it lists llvmpipe a second time next to lavapipe. */
static bool backends_from_env(WGPUInstanceBackend *out, char *err, size_t err_size) {
    const char *v = getenv("WGLLM_WEBGPU_BACKEND");
    *out = WGPUInstanceBackend_Primary;
    if (!v || !*v) return true;
    if (!strcasecmp(v, "vulkan")) *out = WGPUInstanceBackend_Vulkan;
    else if (!strcasecmp(v, "gl")) *out = WGPUInstanceBackend_GL;
    else if (!strcasecmp(v, "metal")) *out = WGPUInstanceBackend_Metal;
    else if (!strcasecmp(v, "dx12")) *out = WGPUInstanceBackend_DX12;
    else if (!strcasecmp(v, "all")) *out = WGPUInstanceBackend_Primary | WGPUInstanceBackend_Secondary;
    else {
        snprintf(err, err_size, "WGLLM_WEBGPU_BACKEND='%s' is not one of vulkan, gl, metal, dx12, all", v);
        return false;
    }
    return true;
}

/* wgpu's messages end in blank lines; keep our one-message-per-error output tidy. */
static void copy_message(WGPUStringView v, char *dst, size_t dst_size) {
    wg_sv_copy(v, dst, dst_size);
    size_t n = strlen(dst);
    while (n && (dst[n - 1] == '\n' || dst[n - 1] == ' ' || dst[n - 1] == '\r' || dst[n - 1] == '\t')) dst[--n] = '\0';
}

/* ---------------------------------------------------------------- polling */

static double elapsed_ms(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Drives callbacks until *done (or *lost). wgpuInstanceProcessEvents polls every device of
 * the instance in both wgpu-native and Dawn. wgpu-native's own wgpuDevicePoll is avoided:
 * it aborts the process when the device reports an error (e.g. loss) instead of returning.
 * Spins briefly (a GPU read-back is usually well under a millisecond away), then sleeps
 * between polls so a CPU device (lavapipe) keeps the cores. */
static bool pump(const wg_gpu *g, const bool *done, const bool *lost, int timeout_ms, const char *what, char *err,
                 size_t err_size) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (*done) return true;
        g->api.InstanceProcessEvents(g->instance);
        if (*done) return true;
        if (lost && *lost) { /* the awaited callback may never come */
            snprintf(err, err_size, "WebGPU: device lost while waiting for %s", what);
            return false;
        }
        double ms = elapsed_ms(&t0);
        if (ms > timeout_ms) {
            snprintf(err, err_size, "WebGPU: timed out after %d ms waiting for %s", timeout_ms, what);
            return false;
        }
        if (ms < 1.0) {
            sched_yield();
        } else {
            struct timespec nap = {0, 50 * 1000};
            nanosleep(&nap, NULL);
        }
    }
}

/* ---------------------------------------------------------------- adapters */

static void limits_from(const WGPULimits *l, wg_gpu_limits *out) {
    out->max_storage_buffer_binding_size = l->maxStorageBufferBindingSize;
    out->max_buffer_size = l->maxBufferSize;
    out->max_compute_workgroup_storage_size = l->maxComputeWorkgroupStorageSize;
    out->max_compute_invocations_per_workgroup = l->maxComputeInvocationsPerWorkgroup;
    out->max_compute_workgroup_size_x = l->maxComputeWorkgroupSizeX;
    out->max_compute_workgroup_size_y = l->maxComputeWorkgroupSizeY;
    out->max_compute_workgroup_size_z = l->maxComputeWorkgroupSizeZ;
    out->max_storage_buffers_per_shader_stage = l->maxStorageBuffersPerShaderStage;
    out->max_compute_workgroups_per_dimension = l->maxComputeWorkgroupsPerDimension;
    out->max_bind_groups = l->maxBindGroups;
    out->min_storage_buffer_offset_alignment = l->minStorageBufferOffsetAlignment;
}

/* The features we request, as (name, flag) pairs; native ones only on wgpu-native. */
typedef struct {
    WGPUFeatureName name;
    size_t flag_offset;
    bool native;
} feature_entry;

static const feature_entry k_features[] = {
    {WGPUFeatureName_ShaderF16, offsetof(wg_gpu_features, shader_f16), false},
    {WGPUFeatureName_Subgroups, offsetof(wg_gpu_features, subgroups), false},
    {(WGPUFeatureName)WGPUNativeFeature_Subgroup, offsetof(wg_gpu_features, subgroups), true},
    {WGPUFeatureName_TimestampQuery, offsetof(wg_gpu_features, timestamp_query), false},
    {(WGPUFeatureName)WGPUNativeFeature_TimestampQueryInsidePasses, offsetof(wg_gpu_features, timestamp_inside_passes),
     true},
};
#define N_FEATURES (sizeof k_features / sizeof k_features[0])

static void set_feature(wg_gpu_features *f, size_t i) {
    *(bool *)((char *)f + k_features[i].flag_offset) = true;
}

static bool describe_adapter(wg_gpu *g, WGPUAdapter a, wg_adapter_info *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    WGPUAdapterInfo info = WGPU_ADAPTER_INFO_INIT;
    if (g->api.AdapterGetInfo(a, &info) != WGPUStatus_Success) {
        snprintf(err, err_size, "WebGPU: wgpuAdapterGetInfo failed");
        return false;
    }
    wg_sv_copy(info.device, out->name, sizeof out->name);
    wg_sv_copy(info.vendor, out->vendor, sizeof out->vendor);
    wg_sv_copy(info.architecture, out->architecture, sizeof out->architecture);
    wg_sv_copy(info.description, out->description, sizeof out->description);
    out->vendor_id = info.vendorID;
    out->device_id = info.deviceID;
    out->backend = info.backendType;
    out->type = info.adapterType;
    out->subgroup_min_size = info.subgroupMinSize;
    out->subgroup_max_size = info.subgroupMaxSize;
    g->api.AdapterInfoFreeMembers(info);

    WGPULimits l = WGPU_LIMITS_INIT;
    if (g->api.AdapterGetLimits(a, &l) != WGPUStatus_Success) {
        snprintf(err, err_size, "WebGPU: wgpuAdapterGetLimits failed for '%s'", out->name);
        return false;
    }
    limits_from(&l, &out->limits);
    for (size_t i = 0; i < N_FEATURES; i++) {
        if (k_features[i].native && !g->native) continue;
        if (g->api.AdapterHasFeature(a, k_features[i].name)) set_feature(&out->features, i);
    }
    return true;
}

typedef struct {
    bool done;
    WGPURequestAdapterStatus status;
    WGPUAdapter adapter;
    char message[512];
} adapter_request;

static void on_adapter(WGPURequestAdapterStatus status, WGPUAdapter adapter, WGPUStringView message, void *u1,
                       void *u2) {
    adapter_request *r = u1;
    r->status = status;
    r->adapter = adapter;
    copy_message(message, r->message, sizeof r->message);
    r->done = true;
}

/* Fills g->adapters: every adapter on wgpu-native, else the implementation's default one. */
static bool find_adapters(wg_gpu *g, WGPUInstanceBackend backends, char *err, size_t err_size) {
    if (g->native) {
        WGPUInstanceEnumerateAdapterOptions opts = {NULL, backends};
        size_t n = g->api.InstanceEnumerateAdapters(g->instance, &opts, NULL);
        if (n == 0) return true;
        WGPUAdapter *all = calloc(n, sizeof *all);
        if (!all) {
            snprintf(err, err_size, "out of memory");
            return false;
        }
        size_t got = g->api.InstanceEnumerateAdapters(g->instance, &opts, all);
        if (got > n) got = n;
        for (size_t i = 0; i < got; i++) {
            if (g->n_adapters < WG_GPU_MAX_ADAPTERS) g->adapters[g->n_adapters++] = all[i];
            else g->api.AdapterRelease(all[i]);
        }
        free(all);
        return true;
    }
    adapter_request r = {0};
    WGPURequestAdapterOptions opts = WGPU_REQUEST_ADAPTER_OPTIONS_INIT;
    opts.powerPreference = WGPUPowerPreference_HighPerformance;
    WGPURequestAdapterCallbackInfo cb = {NULL, WGPUCallbackMode_AllowProcessEvents, on_adapter, &r, NULL};
    g->api.InstanceRequestAdapter(g->instance, &opts, cb);
    if (!pump(g, &r.done, NULL, WG_GPU_WAIT_TIMEOUT_MS, "an adapter", err, err_size)) return false;
    if (r.status == WGPURequestAdapterStatus_Success && r.adapter) g->adapters[g->n_adapters++] = r.adapter;
    /* "Unavailable" just means no adapter; anything else is a real failure. */
    else if (r.status != WGPURequestAdapterStatus_Unavailable) {
        snprintf(err, err_size, "WebGPU: adapter request failed: %s", r.message[0] ? r.message : "unknown error");
        return false;
    }
    return true;
}

wg_gpu *wg_gpu_open(const char *lib_path, char *err, size_t err_size) {
    wg_gpu *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    WGPUInstanceBackend backends;
    if (!backends_from_env(&backends, err, err_size) || !wg_wgpu_load(&g->api, lib_path, err, err_size)) {
        free(g);
        return NULL;
    }
    g->native = g->api.InstanceEnumerateAdapters && g->api.DevicePoll && g->api.GetVersion;
    g->validation = env_flag("WGLLM_WEBGPU_VALIDATION");

    WGPUInstanceDescriptor desc = WGPU_INSTANCE_DESCRIPTOR_INIT;
    WGPUInstanceExtras extras;
    memset(&extras, 0, sizeof extras);
    if (g->native) { /* other implementations would reject wgpu-native's chained struct */
        extras.chain.sType = (WGPUSType)WGPUSType_InstanceExtras;
        extras.backends = backends;
        extras.flags = g->validation ? WGPUInstanceFlag_Debugging : WGPUInstanceFlag_Default;
        desc.nextInChain = &extras.chain;
    }
    g->instance = g->api.CreateInstance(&desc);
    if (!g->instance) {
        snprintf(err, err_size, "WebGPU: wgpuCreateInstance failed (library '%s')", g->api.path);
        wg_gpu_close(g);
        return NULL;
    }
    if (!find_adapters(g, backends, err, err_size)) {
        wg_gpu_close(g);
        return NULL;
    }
    for (int i = 0; i < g->n_adapters; i++) {
        if (!describe_adapter(g, g->adapters[i], &g->info[i], err, err_size)) {
            wg_gpu_close(g);
            return NULL;
        }
    }
    return g;
}

void wg_gpu_close(wg_gpu *g) {
    if (!g) return;
    for (int i = 0; i < g->n_adapters; i++) g->api.AdapterRelease(g->adapters[i]);
    wg_wgpu_keep_loaded(&g->api); /* before the Vulkan loader would unload its drivers */
    if (g->instance) g->api.InstanceRelease(g->instance);
    wg_wgpu_unload(&g->api);
    free(g);
}

/* ---------------------------------------------------------------- device */

/* Results of asynchronous calls. They live with the device, not on the stack: after a
 * timeout the callback may still arrive during a later poll. */
typedef struct {
    bool done;
    WGPURequestDeviceStatus status;
    WGPUDevice device;
    char message[1024];
} device_request;

typedef struct {
    bool done;
    WGPUPopErrorScopeStatus status;
    WGPUErrorType type;
    char message[4096];
} scope_result;

typedef struct {
    bool done;
    WGPUMapAsyncStatus status;
    char message[512];
} map_result;

struct wg_device_pending {
    device_request request;
    scope_result scope;
    map_result map;
    bool work_done;
};

/* Waits for a callback; a timeout leaves the device unusable (marked lost). */
static bool device_wait(wg_device *d, const bool *done, const char *what, char *err, size_t err_size) {
    char msg[256];
    if (pump(d->gpu, done, &d->lost, WG_GPU_WAIT_TIMEOUT_MS, what, msg, sizeof msg)) return true;
    if (!d->lost) { /* timed out */
        d->lost = true;
        snprintf(d->lost_message, sizeof d->lost_message, "%s", msg);
    }
    snprintf(err, err_size, "%s", d->lost_message);
    return false;
}

static bool device_alive(const wg_device *d, char *err, size_t err_size) {
    if (!d->lost) return true;
    snprintf(err, err_size, "%s", d->lost_message);
    return false;
}

static void on_uncaptured_error(WGPUDevice const *device, WGPUErrorType type, WGPUStringView message, void *u1,
                                void *u2) {
    wg_device *d = u1;
    if (d->error_count++ == 0) {
        char msg[sizeof d->error - 64];
        copy_message(message, msg, sizeof msg);
        const char *kind = type == WGPUErrorType_Validation    ? "validation"
                           : type == WGPUErrorType_OutOfMemory ? "out-of-memory"
                           : type == WGPUErrorType_Internal    ? "internal"
                                                               : "unknown";
        snprintf(d->error, sizeof d->error, "WebGPU %s error: %s", kind, msg);
    }
}

static void on_device_lost(WGPUDevice const *device, WGPUDeviceLostReason reason, WGPUStringView message, void *u1,
                           void *u2) {
    wg_device *d = u1;
    if (d->closing) return; /* our own wgpuDeviceDestroy */
    char msg[sizeof d->lost_message - 64];
    copy_message(message, msg, sizeof msg);
    d->lost = true;
    snprintf(d->lost_message, sizeof d->lost_message, "WebGPU device lost (reason %d): %s", (int)reason,
             msg[0] ? msg : "no message");
}


static void on_device(WGPURequestDeviceStatus status, WGPUDevice device, WGPUStringView message, void *u1, void *u2) {
    device_request *r = u1;
    r->status = status;
    r->device = device;
    copy_message(message, r->message, sizeof r->message);
    r->done = true;
}

/* Raises the limits the engine cares about to the adapter's maxima; the rest stay default. */
static void required_limits(const WGPULimits *a, WGPULimits *req) {
    *req = (WGPULimits)WGPU_LIMITS_INIT;
    req->maxStorageBufferBindingSize = a->maxStorageBufferBindingSize;
    req->maxBufferSize = a->maxBufferSize;
    req->maxComputeWorkgroupStorageSize = a->maxComputeWorkgroupStorageSize;
    req->maxComputeInvocationsPerWorkgroup = a->maxComputeInvocationsPerWorkgroup;
    req->maxComputeWorkgroupSizeX = a->maxComputeWorkgroupSizeX;
    req->maxComputeWorkgroupSizeY = a->maxComputeWorkgroupSizeY;
    req->maxComputeWorkgroupSizeZ = a->maxComputeWorkgroupSizeZ;
    req->maxStorageBuffersPerShaderStage = a->maxStorageBuffersPerShaderStage;
    req->maxComputeWorkgroupsPerDimension = a->maxComputeWorkgroupsPerDimension;
    req->maxBindGroups = a->maxBindGroups;
}

wg_device *wg_device_create(wg_gpu *g, int adapter_index, char *err, size_t err_size) {
    if (adapter_index < 0 || adapter_index >= g->n_adapters) {
        if (g->n_adapters == 0)
            snprintf(err, err_size, "WebGPU: no adapter found (library '%s'; on Linux without a GPU install "
                     "Mesa's Vulkan drivers: scripts/install-webgpu.sh)", g->api.path);
        else
            snprintf(err, err_size, "WebGPU: no adapter %d (found %d: 0..%d; see `wgllm devices`)", adapter_index,
                     g->n_adapters, g->n_adapters - 1);
        return NULL;
    }
    wg_device *d = calloc(1, sizeof *d);
    struct wg_device_pending *pending = calloc(1, sizeof *pending);
    if (!d || !pending) {
        free(d);
        free(pending);
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    d->pending = pending;
    d->gpu = g;
    d->api = &g->api;
    d->adapter_index = adapter_index;
    d->validation = g->validation;
    WGPUAdapter adapter = g->adapters[adapter_index];

    WGPULimits alim = WGPU_LIMITS_INIT, req;
    if (g->api.AdapterGetLimits(adapter, &alim) != WGPUStatus_Success) {
        snprintf(err, err_size, "WebGPU: wgpuAdapterGetLimits failed");
        free(pending);
        free(d);
        return NULL;
    }
    required_limits(&alim, &req);
    WGPUFeatureName feats[N_FEATURES];
    size_t n_feats = 0;
    for (size_t i = 0; i < N_FEATURES; i++) {
        if (k_features[i].native && !g->native) continue;
        if (g->api.AdapterHasFeature(adapter, k_features[i].name)) feats[n_feats++] = k_features[i].name;
    }

    WGPUDeviceDescriptor desc = WGPU_DEVICE_DESCRIPTOR_INIT;
    desc.label = wg_sv("wgllm");
    desc.requiredFeatureCount = n_feats;
    desc.requiredFeatures = feats;
    desc.requiredLimits = &req;
    desc.deviceLostCallbackInfo.mode = WGPUCallbackMode_AllowProcessEvents;
    desc.deviceLostCallbackInfo.callback = on_device_lost;
    desc.deviceLostCallbackInfo.userdata1 = d;
    desc.uncapturedErrorCallbackInfo.callback = on_uncaptured_error;
    desc.uncapturedErrorCallbackInfo.userdata1 = d;

    device_request *r = &pending->request;
    WGPURequestDeviceCallbackInfo cb = {NULL, WGPUCallbackMode_AllowProcessEvents, on_device, r, NULL};
    g->api.AdapterRequestDevice(adapter, &desc, cb);
    /* On a timeout d stays allocated: the callbacks registered above may still arrive. */
    if (!pump(g, &r->done, NULL, WG_GPU_WAIT_TIMEOUT_MS, "a device", err, err_size)) return NULL;
    if (r->status != WGPURequestDeviceStatus_Success || !r->device) {
        snprintf(err, err_size, "WebGPU: cannot create a device on '%s': %s", g->info[adapter_index].name,
                 r->message[0] ? r->message : "unknown error");
        d->closing = true;
        g->api.InstanceProcessEvents(g->instance); /* a device-lost callback for the failed device */
        free(pending);
        free(d);
        return NULL;
    }
    d->device = r->device;
    d->queue = g->api.DeviceGetQueue(d->device);

    WGPULimits got = WGPU_LIMITS_INIT;
    if (g->api.DeviceGetLimits(d->device, &got) == WGPUStatus_Success) limits_from(&got, &d->limits);
    else d->limits = g->info[adapter_index].limits;
    for (size_t i = 0; i < N_FEATURES; i++) {
        if (k_features[i].native && !g->native) continue;
        if (g->api.DeviceHasFeature(d->device, k_features[i].name)) set_feature(&d->features, i);
    }
    return d;
}

void wg_device_destroy(wg_device *d) {
    if (!d) return;
    const wg_wgpu *api = d->api;
    d->closing = true;
    if (d->device) {
        api->DeviceDestroy(d->device);
        /* Deliver any device-lost callback now, while d is still alive. */
        api->InstanceProcessEvents(d->gpu->instance);
        if (d->queue) api->QueueRelease(d->queue);
        api->DeviceRelease(d->device);
        api->InstanceProcessEvents(d->gpu->instance);
    }
    free(d->pending);
    free(d);
}

bool wg_device_check(wg_device *d, char *err, size_t err_size) {
    d->api->InstanceProcessEvents(d->gpu->instance);
    if (d->lost) {
        snprintf(err, err_size, "%s", d->lost_message);
        return false;
    }
    if (d->error_count) {
        if (d->error_count > 1)
            snprintf(err, err_size, "%.900s (and %d more errors)", d->error, d->error_count - 1);
        else
            snprintf(err, err_size, "%.900s", d->error);
        d->error_count = 0;
        d->error[0] = '\0';
        return false;
    }
    return true;
}

bool wg_device_wait(wg_device *d, const bool *done, int timeout_ms, const char *what, char *err, size_t err_size) {
    if (!device_alive(d, err, err_size)) return false;
    return pump(d->gpu, done, &d->lost, timeout_ms, what, err, err_size);
}

static void on_work_done(WGPUQueueWorkDoneStatus status, WGPUStringView message, void *u1, void *u2) {
    *(bool *)u1 = true;
}

bool wg_device_finish(wg_device *d, char *err, size_t err_size) {
    if (!device_alive(d, err, err_size)) return false;
    bool *done = &d->pending->work_done;
    *done = false;
    WGPUQueueWorkDoneCallbackInfo cb = {NULL, WGPUCallbackMode_AllowProcessEvents, on_work_done, done, NULL};
    d->api->QueueOnSubmittedWorkDone(d->queue, cb);
    if (!device_wait(d, done, "submitted work", err, err_size)) return false;
    return wg_device_check(d, err, err_size);
}

/* ---------------------------------------------------------------- error scopes */

static void on_pop_scope(WGPUPopErrorScopeStatus status, WGPUErrorType type, WGPUStringView message, void *u1,
                         void *u2) {
    scope_result *r = u1;
    r->status = status;
    r->type = type;
    copy_message(message, r->message, sizeof r->message);
    r->done = true;
}

/* Pops one error scope. False if the scope caught an error (message in err) or the pop failed. */
static bool pop_scope(wg_device *d, const char *what, char *err, size_t err_size) {
    scope_result *r = &d->pending->scope;
    memset(r, 0, sizeof *r);
    WGPUPopErrorScopeCallbackInfo cb = {NULL, WGPUCallbackMode_AllowProcessEvents, on_pop_scope, r, NULL};
    d->api->DevicePopErrorScope(d->device, cb);
    if (!device_wait(d, &r->done, what, err, err_size)) return false;
    if (r->status != WGPUPopErrorScopeStatus_Success) {
        snprintf(err, err_size, "WebGPU: error scope for %s failed: %s", what, r->message);
        return false;
    }
    if (r->type != WGPUErrorType_NoError) {
        snprintf(err, err_size, "%s: %s", what, r->message[0] ? r->message : "unknown WebGPU error");
        return false;
    }
    return true;
}

/* Pops the two scopes pushed by push_scopes; the first failure wins. */
static bool pop_scopes(wg_device *d, const char *what, char *err, size_t err_size) {
    char err2[1024];
    bool ok1 = pop_scope(d, what, err, err_size);
    bool ok2 = pop_scope(d, what, ok1 ? err : err2, ok1 ? err_size : sizeof err2);
    return ok1 && ok2;
}

static void push_scopes(wg_device *d) {
    d->api->DevicePushErrorScope(d->device, WGPUErrorFilter_OutOfMemory);
    d->api->DevicePushErrorScope(d->device, WGPUErrorFilter_Validation);
}

/* ---------------------------------------------------------------- buffers */

static WGPUBuffer create_buffer(wg_device *d, uint64_t size, WGPUBufferUsage usage, const char *label, char *err,
                                size_t err_size) {
    if (!device_alive(d, err, err_size)) return NULL;
    if (size == 0) {
        snprintf(err, err_size, "WebGPU: buffer '%s' has size 0", label);
        return NULL;
    }
    size = (size + 3) & ~(uint64_t)3;
    if (size > d->limits.max_buffer_size) {
        snprintf(err, err_size, "WebGPU: buffer '%s' of %llu bytes exceeds the device's maxBufferSize %llu", label,
                 (unsigned long long)size, (unsigned long long)d->limits.max_buffer_size);
        return NULL;
    }
    WGPUBufferDescriptor desc = WGPU_BUFFER_DESCRIPTOR_INIT;
    desc.label = wg_sv(label);
    desc.usage = usage;
    desc.size = size;
    push_scopes(d);
    WGPUBuffer buf = d->api->DeviceCreateBuffer(d->device, &desc);
    char what[160];
    snprintf(what, sizeof what, "creating buffer '%s' (%llu bytes)", label, (unsigned long long)size);
    if (!pop_scopes(d, what, err, err_size) || !buf) {
        if (buf) d->api->BufferRelease(buf);
        else if (!err[0]) snprintf(err, err_size, "WebGPU: %s failed", what);
        return NULL;
    }
    return buf;
}

WGPUBuffer wg_buffer_create(wg_device *d, uint64_t size, const char *label, char *err, size_t err_size) {
    if (err_size) err[0] = '\0';
    return create_buffer(d, size, WGPUBufferUsage_Storage | WGPUBufferUsage_CopySrc | WGPUBufferUsage_CopyDst,
                         label ? label : "storage", err, err_size);
}

void wg_buffer_free(wg_device *d, WGPUBuffer buf) {
    if (!buf) return;
    d->api->BufferDestroy(buf);
    d->api->BufferRelease(buf);
}

static bool check_range(wg_device *d, WGPUBuffer buf, uint64_t offset, uint64_t size, const char *op, char *err,
                        size_t err_size) {
    uint64_t cap = d->api->BufferGetSize(buf);
    if (offset % 4 || size % 4) {
        snprintf(err, err_size, "WebGPU: %s needs offset and size in multiples of 4 (got %llu, %llu)", op,
                 (unsigned long long)offset, (unsigned long long)size);
        return false;
    }
    if (offset > cap || size > cap - offset) {
        snprintf(err, err_size, "WebGPU: %s of %llu bytes at %llu is outside the %llu-byte buffer", op,
                 (unsigned long long)size, (unsigned long long)offset, (unsigned long long)cap);
        return false;
    }
    return true;
}

bool wg_buffer_write(wg_device *d, WGPUBuffer buf, uint64_t offset, const void *src, size_t size, char *err,
                     size_t err_size) {
    if (!device_alive(d, err, err_size) || !check_range(d, buf, offset, size, "buffer write", err, err_size))
        return false;
    const uint8_t *p = src;
    for (uint64_t done = 0; done < size;) {
        uint64_t n = size - done < WG_STAGING_BYTES ? size - done : WG_STAGING_BYTES;
        d->api->QueueWriteBuffer(d->queue, buf, offset + done, p + done, (size_t)n);
        done += n;
    }
    return true;
}


static void on_map(WGPUMapAsyncStatus status, WGPUStringView message, void *u1, void *u2) {
    map_result *r = u1;
    r->status = status;
    copy_message(message, r->message, sizeof r->message);
    r->done = true;
}

/* Copies [offset, offset + n) of buf into the staging buffer, maps it and copies to dst. */
static bool read_chunk(wg_device *d, WGPUBuffer buf, uint64_t offset, WGPUBuffer staging, uint8_t *dst, uint64_t n,
                       char *err, size_t err_size) {
    const wg_wgpu *api = d->api;
    WGPUCommandEncoder enc = api->DeviceCreateCommandEncoder(d->device, NULL);
    api->CommandEncoderCopyBufferToBuffer(enc, buf, offset, staging, 0, n);
    WGPUCommandBuffer cmd = api->CommandEncoderFinish(enc, NULL);
    api->CommandEncoderRelease(enc);
    api->QueueSubmit(d->queue, 1, &cmd);
    api->CommandBufferRelease(cmd);

    map_result *r = &d->pending->map;
    memset(r, 0, sizeof *r);
    WGPUBufferMapCallbackInfo cb = {NULL, WGPUCallbackMode_AllowProcessEvents, on_map, r, NULL};
    api->BufferMapAsync(staging, WGPUMapMode_Read, 0, (size_t)n, cb);
    if (!device_wait(d, &r->done, "a buffer read-back", err, err_size)) return false;
    if (r->status != WGPUMapAsyncStatus_Success) {
        char why[1024];
        if (!wg_device_check(d, why, sizeof why)) snprintf(err, err_size, "WebGPU: buffer read-back failed: %s", why);
        else snprintf(err, err_size, "WebGPU: buffer read-back failed: %s", r->message[0] ? r->message : "map error");
        return false;
    }
    const void *mapped = api->BufferGetConstMappedRange(staging, 0, (size_t)n);
    if (!mapped) {
        api->BufferUnmap(staging);
        snprintf(err, err_size, "WebGPU: buffer read-back failed: no mapped range");
        return false;
    }
    memcpy(dst, mapped, (size_t)n);
    api->BufferUnmap(staging);
    return true;
}

bool wg_buffer_read(wg_device *d, WGPUBuffer buf, uint64_t offset, void *dst, size_t size, char *err,
                    size_t err_size) {
    if (err_size) err[0] = '\0';
    if (!device_alive(d, err, err_size) || !check_range(d, buf, offset, size, "buffer read", err, err_size))
        return false;
    if (size == 0) return true;
    uint64_t chunk = size < WG_STAGING_BYTES ? size : WG_STAGING_BYTES;
    WGPUBuffer staging =
        create_buffer(d, chunk, WGPUBufferUsage_MapRead | WGPUBufferUsage_CopyDst, "read-back staging", err, err_size);
    if (!staging) return false;
    bool ok = true;
    for (uint64_t done = 0; ok && done < size;) {
        uint64_t n = size - done < chunk ? size - done : chunk;
        ok = read_chunk(d, buf, offset + done, staging, (uint8_t *)dst + done, n, err, err_size);
        done += n;
    }
    wg_buffer_free(d, staging);
    return ok && wg_device_check(d, err, err_size);
}

/* ---------------------------------------------------------------- pipelines */

WGPUComputePipeline wg_pipeline_create(wg_device *d, const char *label, const char *wgsl, const char *entry,
                                       char *err, size_t err_size) {
    const wg_wgpu *api = d->api;
    if (err_size) err[0] = '\0';
    if (!label) label = "kernel";
    if (!device_alive(d, err, err_size)) return NULL;
    /* Compile errors are reported through error scopes: wgpu-native does not implement
     * wgpuShaderModuleGetCompilationInfo. */
    push_scopes(d);
    WGPUShaderSourceWGSL src = WGPU_SHADER_SOURCE_WGSL_INIT;
    src.code = wg_sv(wgsl);
    WGPUShaderModuleDescriptor mdesc = {&src.chain, wg_sv(label)};
    WGPUShaderModule module = api->DeviceCreateShaderModule(d->device, &mdesc);
    WGPUComputePipeline pipe = NULL;
    if (module) {
        WGPUComputePipelineDescriptor pdesc = WGPU_COMPUTE_PIPELINE_DESCRIPTOR_INIT;
        pdesc.label = wg_sv(label);
        pdesc.compute.module = module;
        pdesc.compute.entryPoint = wg_sv(entry ? entry : "main");
        pipe = api->DeviceCreateComputePipeline(d->device, &pdesc);
    }
    char what[160];
    snprintf(what, sizeof what, "WGSL kernel '%s'", label);
    bool ok = pop_scopes(d, what, err, err_size);
    if (module) api->ShaderModuleRelease(module);
    if (!ok || !pipe) {
        if (pipe) api->ComputePipelineRelease(pipe);
        if (!err[0]) snprintf(err, err_size, "%s: pipeline creation failed", what);
        return NULL;
    }
    return pipe;
}
