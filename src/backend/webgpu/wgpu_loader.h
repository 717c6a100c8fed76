/* Run-time binding to a webgpu.h implementation (wgpu-native by default). Another library
 * must implement the same revision of webgpu.h, or Dawn's of late 2024, which is adapted
 * (wgpu_dawn2024.c); loading tells them apart by exported names and refuses others.
 *
 * The library is opened with dlopen and every entry point we call is resolved into a
 * table of function pointers, so wgllm never links against it: a machine without it
 * still runs the CPU backend, and WGLLM_WEBGPU_LIB swaps in another implementation.
 *
 * Library choice (first that applies):
 *   1. the explicit path given to wg_wgpu_load;
 *   2. env WGLLM_WEBGPU_LIB (only that one is tried, so a typo is reported, not skipped);
 *   3. the path baked in at build time (WGLLM_WEBGPU_DEFAULT_LIB), if that file exists;
 *   4. "libwgpu_native.so" through the dynamic loader's search path.
 */
#ifndef WGLLM_WGPU_LOADER_H
#define WGLLM_WGPU_LOADER_H

#include <stdbool.h>
#include <stddef.h>

/* Only the WGPUProc* typedefs are used; no wgpu* symbol may be referenced directly. */
#ifndef WGPU_SKIP_DECLARATIONS
#define WGPU_SKIP_DECLARATIONS
#endif
#include <webgpu/wgpu.h>

/* Standard webgpu.h entry points we need; loading fails if any is missing.
 * To use another function, add its name (without the "wgpu" prefix) here, after checking
 * that wgpu-native implements it: some exported functions are stubs that abort the process
 * (in 0.32.0: InstanceWaitAny, HasInstanceFeature, GetInstanceFeatures,
 * InstanceHasWGSLLanguageFeature, ShaderModuleGetCompilationInfo, BufferReadMappedRange). */
#define WG_WGPU_REQUIRED_PROCS(X)                                                                        \
    X(CreateInstance) X(InstanceRelease) X(InstanceRequestAdapter) X(InstanceProcessEvents)             \
    X(AdapterGetInfo) X(AdapterGetLimits) X(AdapterGetFeatures) X(AdapterHasFeature)                   \
    X(AdapterRequestDevice) X(AdapterRelease) X(AdapterInfoFreeMembers) X(SupportedFeaturesFreeMembers) \
    X(DeviceCreateBuffer) X(DeviceCreateShaderModule) X(DeviceCreateComputePipeline)                    \
    X(DeviceCreateBindGroupLayout) X(DeviceCreatePipelineLayout) X(DeviceCreateBindGroup)               \
    X(DeviceCreateCommandEncoder) X(DeviceCreateQuerySet) X(DeviceGetQueue) X(DeviceGetLimits)          \
    X(DeviceHasFeature) X(DevicePushErrorScope) X(DevicePopErrorScope) X(DeviceDestroy)                 \
    X(DeviceRelease)                                                                                    \
    X(QueueWriteBuffer) X(QueueSubmit) X(QueueOnSubmittedWorkDone) X(QueueRelease)                      \
    X(BufferMapAsync) X(BufferGetConstMappedRange) X(BufferGetMappedRange) X(BufferUnmap)               \
    X(BufferGetSize) X(BufferDestroy) X(BufferRelease)                                                  \
    X(ShaderModuleRelease)                                                                              \
    X(ComputePipelineGetBindGroupLayout) X(ComputePipelineRelease)                                      \
    X(BindGroupLayoutRelease) X(PipelineLayoutRelease) X(BindGroupRelease)                              \
    X(CommandEncoderBeginComputePass) X(CommandEncoderCopyBufferToBuffer) X(CommandEncoderClearBuffer)  \
    X(CommandEncoderResolveQuerySet) X(CommandEncoderFinish) X(CommandEncoderRelease)                   \
    X(ComputePassEncoderSetPipeline) X(ComputePassEncoderSetBindGroup)                                  \
    X(ComputePassEncoderDispatchWorkgroups) X(ComputePassEncoderDispatchWorkgroupsIndirect)             \
    X(ComputePassEncoderEnd) X(ComputePassEncoderRelease) X(CommandBufferRelease)                       \
    X(QuerySetDestroy) X(QuerySetRelease)

/* wgpu-native extensions (wgpu.h declares them without Proc typedefs). Optional: NULL
 * when the library (e.g. Dawn) does not export them; callers fall back to the standard API. */
typedef size_t (*WGLLMProcInstanceEnumerateAdapters)(WGPUInstance instance,
                                                      WGPUInstanceEnumerateAdapterOptions const *options,
                                                      WGPUAdapter *adapters);
typedef WGPUBool (*WGLLMProcDevicePoll)(WGPUDevice device, WGPUBool wait,
                                        WGPUSubmissionIndex const *submission_index);
typedef uint32_t (*WGLLMProcGetVersion)(void);
typedef float (*WGLLMProcQueueGetTimestampPeriod)(WGPUQueue queue);

#define WG_WGPU_NATIVE_PROCS(X) X(InstanceEnumerateAdapters) X(DevicePoll) X(GetVersion) X(QueueGetTimestampPeriod)

typedef struct wg_wgpu {
    void *lib;       /* dlopen handle */
    char path[512];  /* the library actually opened */
    const char *revision; /* NULL: wgllm's webgpu.h; else the older revision adapted (static text) */
#define WG_WGPU_DECLARE_REQUIRED_(name) WGPUProc##name name;
#define WG_WGPU_DECLARE_NATIVE_(name) WGLLMProc##name name;
    WG_WGPU_REQUIRED_PROCS(WG_WGPU_DECLARE_REQUIRED_)
    WG_WGPU_NATIVE_PROCS(WG_WGPU_DECLARE_NATIVE_)
#undef WG_WGPU_DECLARE_REQUIRED_
#undef WG_WGPU_DECLARE_NATIVE_
} wg_wgpu;

/* Opens the library (see the order above; `path` may be NULL), checks that it is a webgpu.h
 * implementation of wgllm's revision (an older one has the same names with other layouts)
 * and resolves all entry points, calling none of them. On failure *api is left empty and
 * err says which library and why (dlerror, or what differs). */
bool wg_wgpu_load(wg_wgpu *api, const char *path, char *err, size_t err_size);

/* Forgets the entry points. The library itself stays mapped: wgpu-native owns threads and
 * thread-local destructors that must not outlive their code. */
void wg_wgpu_unload(wg_wgpu *api);

/* Keeps the library's dependencies and everything loaded since it (the Vulkan loader and its
 * drivers) mapped for the life of the process; call it before releasing the last instance.
 * Like the library itself, drivers are loaded once per process instead of once per instance:
 * Mesa's lavapipe keeps process-lifetime data in globals (on AMD Zen CPUs a 128-byte L3 cache
 * mask from its CPU detection) that an unload drops without freeing, a real loss on each
 * reload and a leak report from LeakSanitizer, which cannot name an unmapped module. */
void wg_wgpu_keep_loaded(const wg_wgpu *api);

/* The library wg_wgpu_load(api, NULL, ...) would try first (env or built-in default). */
const char *wg_wgpu_default_path(void);

/* WGPUStringView <-> C string helpers (a view may be {NULL, WGPU_STRLEN} or unterminated). */
WGPUStringView wg_sv(const char *s);
void wg_sv_copy(WGPUStringView v, char *dst, size_t dst_size);

#endif
