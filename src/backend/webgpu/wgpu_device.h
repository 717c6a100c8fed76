/* WebGPU instance, adapters and device, plus the few blocking helpers the backend builds
 * on (buffers, upload, read-back, compute pipelines from WGSL).
 *
 * Everything goes through the run-time loaded function table (wgpu_loader.h). Calls that
 * complete asynchronously (adapter/device requests, buffer maps, error scopes) are driven
 * to completion here by polling, so callers see plain blocking functions with timeouts.
 *
 * Environment:
 *   WGLLM_WEBGPU_LIB=/path        webgpu.h library to load (see wgpu_loader.h)
 *   WGLLM_WEBGPU_VALIDATION=1     wgpu-native's debug + validation instance flags, and
 *                                 wg_device.validation, which asks the backend to wrap its
 *                                 submits in error scopes (buffer and pipeline creation here
 *                                 always run inside error scopes, to return their messages)
 *   WGLLM_WEBGPU_BACKEND=NAME     wgpu-native only: vulkan (default: vulkan, metal, dx12),
 *                                 gl, metal, dx12 or all
 *
 * A device is used by one thread at a time.
 */
#ifndef WGLLM_WGPU_DEVICE_H
#define WGLLM_WGPU_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/webgpu/wgpu_loader.h"

#define WG_GPU_MAX_ADAPTERS 16
/* Blocking waits give up after this long (a lost or hung device must not hang wgllm). */
#define WG_GPU_WAIT_TIMEOUT_MS 60000

/* The limits the engine plans with (a subset of WGPULimits). */
typedef struct wg_gpu_limits {
    uint64_t max_storage_buffer_binding_size;
    uint64_t max_buffer_size;
    uint32_t max_compute_workgroup_storage_size;
    uint32_t max_compute_invocations_per_workgroup;
    uint32_t max_compute_workgroup_size_x;
    uint32_t max_compute_workgroup_size_y;
    uint32_t max_compute_workgroup_size_z;
    uint32_t max_storage_buffers_per_shader_stage;
    uint32_t max_compute_workgroups_per_dimension;
    uint32_t max_bind_groups;
    uint32_t min_storage_buffer_offset_alignment;
} wg_gpu_limits;

typedef struct wg_gpu_features {
    bool shader_f16;
    bool subgroups;              /* standard "subgroups" or wgpu-native's Subgroup feature */
    bool timestamp_query;
    bool timestamp_inside_passes; /* wgpu-native: timestamps between dispatches of one pass */
} wg_gpu_features;

typedef struct wg_adapter_info {
    char name[256];         /* WGPUAdapterInfo.device */
    char vendor[128];
    char architecture[128];
    char description[256];  /* usually the driver */
    uint32_t vendor_id, device_id;
    WGPUBackendType backend;
    WGPUAdapterType type;
    uint32_t subgroup_min_size, subgroup_max_size;
    wg_gpu_limits limits;
    wg_gpu_features features;
} wg_adapter_info;

/* A loaded library, one instance and the adapters it found. */
typedef struct wg_gpu {
    wg_wgpu api;
    WGPUInstance instance;
    bool native;      /* wgpu-native extensions present */
    bool validation;  /* WGLLM_WEBGPU_VALIDATION=1 */
    int n_adapters;
    WGPUAdapter adapters[WG_GPU_MAX_ADAPTERS];
    wg_adapter_info info[WG_GPU_MAX_ADAPTERS];
} wg_gpu;

/* Loads the library (`lib_path` NULL: the default choice), creates an instance and lists
 * the adapters. Zero adapters is not an error here (n_adapters == 0). */
wg_gpu *wg_gpu_open(const char *lib_path, char *err, size_t err_size);
void wg_gpu_close(wg_gpu *g);

const char *wg_backend_type_name(WGPUBackendType t);
const char *wg_adapter_type_name(WGPUAdapterType t);

typedef struct wg_device {
    wg_gpu *gpu;  /* must outlive the device */
    const wg_wgpu *api;
    int adapter_index;
    WGPUDevice device;
    WGPUQueue queue;
    wg_gpu_limits limits;      /* granted */
    wg_gpu_features features;  /* enabled */
    bool validation;
    /* Written by the error / device-lost callbacks; read through wg_device_check. */
    int error_count;
    char error[2048];  /* first uncaptured error since the last wg_device_check */
    bool lost;         /* device lost, or a wait timed out: the device is unusable */
    bool closing;
    char lost_message[1024];
    struct wg_device_pending *pending; /* private: results of calls in flight */
} wg_device;

/* Requests a device on adapter `adapter_index` with the limits above raised to what the
 * adapter allows and every feature of wg_gpu_features it offers. */
wg_device *wg_device_create(wg_gpu *g, int adapter_index, char *err, size_t err_size);
void wg_device_destroy(wg_device *d);

/* Lets pending callbacks run, then reports (and clears) any uncaptured error; a lost
 * device stays lost. False with the message in err if something went wrong. */
bool wg_device_check(wg_device *d, char *err, size_t err_size);

/* Polls until *done becomes true (set by a callback), up to timeout_ms.
 * `what` names the operation in the timeout message. */
bool wg_device_wait(wg_device *d, const bool *done, int timeout_ms, const char *what, char *err, size_t err_size);

/* Waits until all submitted work has finished. */
bool wg_device_finish(wg_device *d, char *err, size_t err_size);

/* Storage buffer of `size` bytes (rounded up to 4) usable as STORAGE | COPY_SRC | COPY_DST;
 * size is checked against maxBufferSize. NULL with a message on failure. */
WGPUBuffer wg_buffer_create(wg_device *d, uint64_t size, const char *label, char *err, size_t err_size);
/* Host -> buffer copy (offset and size multiples of 4). Queued; ordered before later submits. */
bool wg_buffer_write(wg_device *d, WGPUBuffer buf, uint64_t offset, const void *src, size_t size, char *err,
                     size_t err_size);
/* Buffer -> host copy through a MAP_READ staging buffer; waits for all queued work first. */
bool wg_buffer_read(wg_device *d, WGPUBuffer buf, uint64_t offset, void *dst, size_t size, char *err,
                    size_t err_size);
void wg_buffer_free(wg_device *d, WGPUBuffer buf);

/* Compiles WGSL and builds a compute pipeline with an automatic layout. On a WGSL or
 * pipeline error returns NULL with the compiler's message (line, column, text) in err. */
WGPUComputePipeline wg_pipeline_create(wg_device *d, const char *label, const char *wgsl, const char *entry,
                                       char *err, size_t err_size);

#endif
