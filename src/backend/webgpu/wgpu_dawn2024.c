#include "backend/webgpu/wgpu_dawn2024.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- that revision's types */

/* Its WGPULimits: no nextInChain, maxInterStageShaderComponents and four per-stage limits
 * that wgllm's revision dropped, no maxImmediateSize. Returned inside WGPUSupportedLimits and
 * requested through WGPURequiredLimits, both {nextInChain, limits}. */
#define D24_LIMITS_U32_A(X)                                                                                   \
    X(maxTextureDimension1D) X(maxTextureDimension2D) X(maxTextureDimension3D) X(maxTextureArrayLayers)      \
    X(maxBindGroups) X(maxBindGroupsPlusVertexBuffers) X(maxBindingsPerBindGroup)                             \
    X(maxDynamicUniformBuffersPerPipelineLayout) X(maxDynamicStorageBuffersPerPipelineLayout)                 \
    X(maxSampledTexturesPerShaderStage) X(maxSamplersPerShaderStage) X(maxStorageBuffersPerShaderStage)      \
    X(maxStorageTexturesPerShaderStage) X(maxUniformBuffersPerShaderStage)
#define D24_LIMITS_U64_A(X) X(maxUniformBufferBindingSize) X(maxStorageBufferBindingSize)
#define D24_LIMITS_U32_B(X) X(minUniformBufferOffsetAlignment) X(minStorageBufferOffsetAlignment) X(maxVertexBuffers)
#define D24_LIMITS_U64_B(X) X(maxBufferSize)
#define D24_LIMITS_U32_C(X)                                                                                   \
    X(maxVertexAttributes) X(maxVertexBufferArrayStride) X(maxInterStageShaderVariables)                      \
    X(maxColorAttachments) X(maxColorAttachmentBytesPerSample) X(maxComputeWorkgroupStorageSize)             \
    X(maxComputeInvocationsPerWorkgroup) X(maxComputeWorkgroupSizeX) X(maxComputeWorkgroupSizeY)             \
    X(maxComputeWorkgroupSizeZ) X(maxComputeWorkgroupsPerDimension)
/* Only in that revision. */
#define D24_LIMITS_U32_OLD(X)                                                                                 \
    X(maxStorageBuffersInVertexStage) X(maxStorageTexturesInVertexStage) X(maxStorageBuffersInFragmentStage) \
    X(maxStorageTexturesInFragmentStage)

#define D24_U32_(name) uint32_t name;
#define D24_U64_(name) uint64_t name;
typedef struct {
    D24_LIMITS_U32_A(D24_U32_)
    D24_LIMITS_U64_A(D24_U64_)
    D24_LIMITS_U32_B(D24_U32_)
    D24_LIMITS_U64_B(D24_U64_)
    /* field order of that header: maxInterStageShaderComponents sits before maxInterStageShaderVariables */
    uint32_t maxVertexAttributes, maxVertexBufferArrayStride, maxInterStageShaderComponents;
    uint32_t maxInterStageShaderVariables, maxColorAttachments, maxColorAttachmentBytesPerSample;
    uint32_t maxComputeWorkgroupStorageSize, maxComputeInvocationsPerWorkgroup;
    uint32_t maxComputeWorkgroupSizeX, maxComputeWorkgroupSizeY, maxComputeWorkgroupSizeZ;
    uint32_t maxComputeWorkgroupsPerDimension;
    D24_LIMITS_U32_OLD(D24_U32_)
} d24_limits;
#undef D24_U32_
#undef D24_U64_
_Static_assert(sizeof(d24_limits) == 160 && offsetof(d24_limits, maxBufferSize) == 88 &&
                   offsetof(d24_limits, maxComputeWorkgroupStorageSize) == 120,
               "WGPULimits layout of that revision");

typedef struct {
    void *nextInChain;
    d24_limits limits;
} d24_limits_chained; /* WGPUSupportedLimits and WGPURequiredLimits */

typedef struct {
    WGPUChainedStruct const *nextInChain;
    WGPUSurface compatibleSurface;
    WGPUFeatureLevel featureLevel;
    WGPUPowerPreference powerPreference;
    WGPUBackendType backendType;
    WGPUBool forceFallbackAdapter;
    WGPUBool compatibilityMode;
} d24_request_adapter_options;
_Static_assert(sizeof(d24_request_adapter_options) == 40, "WGPURequestAdapterOptions layout of that revision");

typedef struct {
    WGPUChainedStruct const *nextInChain;
    WGPUStringView label;
    size_t requiredFeatureCount;
    uint32_t const *requiredFeatures;
    d24_limits_chained const *requiredLimits;
    WGPUQueueDescriptor defaultQueue;
    WGPUDeviceLostCallbackInfo deviceLostCallbackInfo2;             /* same layout as wgllm's */
    WGPUUncapturedErrorCallbackInfo uncapturedErrorCallbackInfo2; /* same layout as wgllm's */
} d24_device_descriptor;
_Static_assert(sizeof(d24_device_descriptor) == 144 && offsetof(d24_device_descriptor, deviceLostCallbackInfo2) == 72,
               "WGPUDeviceDescriptor layout of that revision");

/* No bindingArraySize; buffer binding types numbered from Uniform = 1. */
typedef struct {
    WGPUChainedStruct const *nextInChain;
    uint32_t binding;
    WGPUShaderStage visibility;
    WGPUBufferBindingLayout buffer;
    WGPUSamplerBindingLayout sampler;
    WGPUTextureBindingLayout texture;
    WGPUStorageTextureBindingLayout storageTexture;
} d24_bind_group_layout_entry;
_Static_assert(sizeof(d24_bind_group_layout_entry) == 112 && offsetof(d24_bind_group_layout_entry, buffer) == 24,
               "WGPUBindGroupLayoutEntry layout of that revision");

typedef struct {
    WGPUChainedStruct const *nextInChain;
    WGPUStringView label;
    size_t entryCount;
    d24_bind_group_layout_entry const *entries;
} d24_bind_group_layout_descriptor;

typedef struct { /* no nextInChain */
    WGPUQuerySet querySet;
    uint32_t beginningOfPassWriteIndex;
    uint32_t endOfPassWriteIndex;
} d24_pass_timestamp_writes;

typedef struct {
    WGPUChainedStruct const *nextInChain;
    WGPUStringView label;
    d24_pass_timestamp_writes const *timestampWrites;
} d24_compute_pass_descriptor;

typedef struct { /* chained into WGPUAdapterInfo for the subgroup sizes wgllm's revision has inline */
    WGPUChainedStruct chain;
    uint32_t subgroupMinSize;
    uint32_t subgroupMaxSize;
} d24_adapter_properties_subgroups;
#define D24_STYPE_ADAPTER_PROPERTIES_SUBGROUPS 10

/* The work-done callback has no message. */
typedef void (*d24_work_done_callback)(WGPUQueueWorkDoneStatus status, void *userdata1, void *userdata2);
typedef struct {
    WGPUChainedStruct const *nextInChain;
    WGPUCallbackMode mode;
    d24_work_done_callback callback;
    void *userdata1;
    void *userdata2;
} d24_work_done_callback_info;
_Static_assert(sizeof(d24_work_done_callback_info) == 40, "WGPUQueueWorkDoneCallbackInfo2 layout of that revision");

/* Entry points whose ABI differs, by that revision's names (the "2" callback-info variants). */
#define D24_PROCS(X)                                                                                           \
    X(AdapterGetInfo, WGPUStatus, (WGPUAdapter, WGPUAdapterInfo *))                                            \
    X(AdapterGetLimits, WGPUStatus, (WGPUAdapter, d24_limits_chained *))                                       \
    X(DeviceGetLimits, WGPUStatus, (WGPUDevice, d24_limits_chained *))                                         \
    X(AdapterHasFeature, WGPUBool, (WGPUAdapter, uint32_t))                                                    \
    X(DeviceHasFeature, WGPUBool, (WGPUDevice, uint32_t))                                                      \
    X(AdapterGetFeatures, void, (WGPUAdapter, WGPUSupportedFeatures *))                                        \
    X(InstanceRequestAdapter2, WGPUFuture,                                                                     \
      (WGPUInstance, d24_request_adapter_options const *, WGPURequestAdapterCallbackInfo))                     \
    X(AdapterRequestDevice2, WGPUFuture, (WGPUAdapter, d24_device_descriptor const *, WGPURequestDeviceCallbackInfo)) \
    X(DeviceCreateBindGroupLayout, WGPUBindGroupLayout, (WGPUDevice, d24_bind_group_layout_descriptor const *)) \
    X(CommandEncoderBeginComputePass, WGPUComputePassEncoder,                                                  \
      (WGPUCommandEncoder, d24_compute_pass_descriptor const *))                                               \
    X(BufferMapAsync2, WGPUFuture, (WGPUBuffer, WGPUMapMode, size_t, size_t, WGPUBufferMapCallbackInfo))       \
    X(DevicePopErrorScope2, WGPUFuture, (WGPUDevice, WGPUPopErrorScopeCallbackInfo))                           \
    X(QueueOnSubmittedWorkDone2, WGPUFuture, (WGPUQueue, d24_work_done_callback_info))                         \
    X(DeviceCreateShaderModule, WGPUShaderModule, (WGPUDevice, WGPUShaderModuleDescriptor const *))

#define D24_DECLARE_(name, ret, args) ret(*name) args;
typedef struct {
    D24_PROCS(D24_DECLARE_)
} d24_procs;
#undef D24_DECLARE_

/* Written once, under the lock, by the first bind; read-only afterwards. */
static d24_procs g_d24;
static void *g_d24_lib;
static pthread_mutex_t g_d24_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---------------------------------------------------------------- detection */

/* Names that together single out that revision: Dawn (wgpuDeviceTick), callback-info
 * transition ("2" variants), WGPUSupportedFeatures, the WGSL-feature name of that time, and
 * neither wgpuGetInstanceCapabilities nor wgpuGetInstanceLimits (the later revisions). */
static const char *const k_has[] = {
    "wgpuDeviceTick", "wgpuInstanceRequestAdapter2", "wgpuAdapterRequestDevice2", "wgpuBufferMapAsync2",
    "wgpuDevicePopErrorScope2", "wgpuQueueOnSubmittedWorkDone2", "wgpuSupportedFeaturesFreeMembers",
    "wgpuAdapterInfoFreeMembers", "wgpuInstanceEnumerateWGSLLanguageFeatures",
};
static const char *const k_lacks[] = {"wgpuGetInstanceCapabilities", "wgpuGetInstanceLimits", "wgpuGetVersion"};

bool wg_dawn2024_detect(void *lib) {
    for (size_t i = 0; i < sizeof k_has / sizeof k_has[0]; i++)
        if (!dlsym(lib, k_has[i])) return false;
    for (size_t i = 0; i < sizeof k_lacks / sizeof k_lacks[0]; i++)
        if (dlsym(lib, k_lacks[i])) return false;
    return true;
}

/* ---------------------------------------------------------------- translations */

/* WGPUFeatureName of wgllm's revision -> that revision's number (0: it has no such feature). */
static const struct {
    WGPUFeatureName now;
    uint32_t then;
} k_features[] = {
    {WGPUFeatureName_DepthClipControl, 1},        {WGPUFeatureName_Depth32FloatStencil8, 2},
    {WGPUFeatureName_TimestampQuery, 3},          {WGPUFeatureName_TextureCompressionBC, 4},
    {WGPUFeatureName_TextureCompressionETC2, 5},  {WGPUFeatureName_TextureCompressionASTC, 6},
    {WGPUFeatureName_IndirectFirstInstance, 7},   {WGPUFeatureName_ShaderF16, 8},
    {WGPUFeatureName_RG11B10UfloatRenderable, 9}, {WGPUFeatureName_BGRA8UnormStorage, 10},
    {WGPUFeatureName_Float32Filterable, 11},      {WGPUFeatureName_Float32Blendable, 12},
    {WGPUFeatureName_Subgroups, 13},
};
#define N_FEATURES (sizeof k_features / sizeof k_features[0])

static uint32_t feature_then(WGPUFeatureName f) {
    for (size_t i = 0; i < N_FEATURES; i++)
        if (k_features[i].now == f) return k_features[i].then;
    return 0;
}

static bool feature_now(uint32_t f, WGPUFeatureName *out) {
    for (size_t i = 0; i < N_FEATURES; i++) {
        if (k_features[i].then != f) continue;
        *out = k_features[i].now;
        return true;
    }
    return false;
}

static void limits_now(const d24_limits *then, WGPULimits *now) {
    WGPUChainedStruct *next = now->nextInChain;
    memset(now, 0, sizeof *now);
    now->nextInChain = next;
#define D24_COPY_(name) now->name = then->name;
    D24_LIMITS_U32_A(D24_COPY_) D24_LIMITS_U64_A(D24_COPY_) D24_LIMITS_U32_B(D24_COPY_)
    D24_LIMITS_U64_B(D24_COPY_) D24_LIMITS_U32_C(D24_COPY_)
#undef D24_COPY_
}

static void limits_then(const WGPULimits *now, d24_limits *then) {
    memset(then, 0xff, sizeof *then); /* WGPU_LIMIT_U32_UNDEFINED / _U64_UNDEFINED: the default */
#define D24_COPY_(name) then->name = now->name;
    D24_LIMITS_U32_A(D24_COPY_) D24_LIMITS_U64_A(D24_COPY_) D24_LIMITS_U32_B(D24_COPY_)
    D24_LIMITS_U64_B(D24_COPY_) D24_LIMITS_U32_C(D24_COPY_)
#undef D24_COPY_
}

/* Buffer binding types: wgllm's revision added Undefined = 1 (meaning Uniform) before the rest. */
static WGPUBufferBindingType buffer_binding_then(WGPUBufferBindingType t) {
    switch (t) {
    case WGPUBufferBindingType_BindingNotUsed: return (WGPUBufferBindingType)0;
    case WGPUBufferBindingType_Undefined:
    case WGPUBufferBindingType_Uniform: return (WGPUBufferBindingType)1;
    case WGPUBufferBindingType_Storage: return (WGPUBufferBindingType)2;
    case WGPUBufferBindingType_ReadOnlyStorage: return (WGPUBufferBindingType)3;
    default: return (WGPUBufferBindingType)0x7ffffffe; /* invalid: the library reports a validation error */
    }
}

/* ---------------------------------------------------------------- wrappers */

static WGPUStatus w_adapter_get_info(WGPUAdapter adapter, WGPUAdapterInfo *info) {
    d24_adapter_properties_subgroups sub;
    memset(&sub, 0, sizeof sub);
    sub.chain.sType = (WGPUSType)D24_STYPE_ADAPTER_PROPERTIES_SUBGROUPS;
    /* That revision rejects the chained struct on an adapter without subgroups. */
    bool chain = info->nextInChain == NULL && g_d24.AdapterHasFeature(adapter, feature_then(WGPUFeatureName_Subgroups));
    if (chain) info->nextInChain = &sub.chain;
    WGPUStatus status = g_d24.AdapterGetInfo(adapter, info);
    if (chain) info->nextInChain = NULL;
    /* Its struct has compatibilityMode where wgllm's has subgroupMinSize. */
    info->subgroupMinSize = chain ? sub.subgroupMinSize : 0;
    info->subgroupMaxSize = chain ? sub.subgroupMaxSize : 0;
    return status;
}

static WGPUStatus w_adapter_get_limits(WGPUAdapter adapter, WGPULimits *limits) {
    d24_limits_chained s;
    memset(&s, 0, sizeof s);
    WGPUStatus status = g_d24.AdapterGetLimits(adapter, &s);
    if (status == WGPUStatus_Success) limits_now(&s.limits, limits);
    return status;
}

static WGPUStatus w_device_get_limits(WGPUDevice device, WGPULimits *limits) {
    d24_limits_chained s;
    memset(&s, 0, sizeof s);
    WGPUStatus status = g_d24.DeviceGetLimits(device, &s);
    if (status == WGPUStatus_Success) limits_now(&s.limits, limits);
    return status;
}

static WGPUBool w_adapter_has_feature(WGPUAdapter adapter, WGPUFeatureName feature) {
    uint32_t f = feature_then(feature);
    return f ? g_d24.AdapterHasFeature(adapter, f) : 0;
}

static WGPUBool w_device_has_feature(WGPUDevice device, WGPUFeatureName feature) {
    uint32_t f = feature_then(feature);
    return f ? g_d24.DeviceHasFeature(device, f) : 0;
}

/* Renumbered in place; features wgllm's revision has no name for are left out. */
static void w_adapter_get_features(WGPUAdapter adapter, WGPUSupportedFeatures *features) {
    g_d24.AdapterGetFeatures(adapter, features);
    WGPUFeatureName *list = (WGPUFeatureName *)features->features; /* the library's allocation */
    size_t n = 0;
    for (size_t i = 0; list && i < features->featureCount; i++)
        if (feature_now((uint32_t)list[i], &list[n])) n++;
    features->featureCount = n;
}

/* Chained structs are not passed on: their sTypes are numbered differently. */
static WGPUFuture w_request_adapter(WGPUInstance instance, WGPURequestAdapterOptions const *options,
                                    WGPURequestAdapterCallbackInfo callback) {
    d24_request_adapter_options o;
    memset(&o, 0, sizeof o);
    if (options) {
        o.compatibleSurface = options->compatibleSurface;
        o.featureLevel = options->featureLevel;
        o.powerPreference = options->powerPreference;
        o.backendType = options->backendType;
        o.forceFallbackAdapter = options->forceFallbackAdapter;
        o.compatibilityMode = options->featureLevel == WGPUFeatureLevel_Compatibility;
    }
    return g_d24.InstanceRequestAdapter2(instance, options ? &o : NULL, callback);
}

#define D24_MAX_FEATURES 32

static WGPUFuture w_request_device(WGPUAdapter adapter, WGPUDeviceDescriptor const *desc,
                                   WGPURequestDeviceCallbackInfo callback) {
    d24_device_descriptor d;
    d24_limits_chained required;
    uint32_t features[D24_MAX_FEATURES];
    memset(&d, 0, sizeof d);
    if (desc) {
        if (desc->requiredFeatureCount > D24_MAX_FEATURES) {
            WGPUFuture none = {0};
            if (callback.callback)
                callback.callback(WGPURequestDeviceStatus_Error, NULL, wg_sv("too many required features"),
                                  callback.userdata1, callback.userdata2);
            return none;
        }
        for (size_t i = 0; i < desc->requiredFeatureCount; i++) {
            features[i] = feature_then(desc->requiredFeatures[i]);
            if (!features[i]) features[i] = 0x7ffffffe; /* unknown there: the request fails with its message */
        }
        d.label = desc->label;
        d.requiredFeatureCount = desc->requiredFeatureCount;
        d.requiredFeatures = features;
        if (desc->requiredLimits) {
            memset(&required, 0, sizeof required);
            limits_then(desc->requiredLimits, &required.limits);
            d.requiredLimits = &required;
        }
        d.defaultQueue.label = desc->defaultQueue.label;
        d.deviceLostCallbackInfo2 = desc->deviceLostCallbackInfo;
        d.deviceLostCallbackInfo2.nextInChain = NULL;
        d.uncapturedErrorCallbackInfo2 = desc->uncapturedErrorCallbackInfo;
        d.uncapturedErrorCallbackInfo2.nextInChain = NULL;
    }
    return g_d24.AdapterRequestDevice2(adapter, desc ? &d : NULL, callback);
}

#define D24_MAX_BINDINGS 64

static WGPUBindGroupLayout w_create_bind_group_layout(WGPUDevice device, WGPUBindGroupLayoutDescriptor const *desc) {
    d24_bind_group_layout_entry entries[D24_MAX_BINDINGS];
    d24_bind_group_layout_descriptor d;
    memset(&d, 0, sizeof d);
    d.label = desc->label;
    /* More bindings than wgllm ever uses: one invalid entry, so the library reports the error. */
    size_t n = desc->entryCount <= D24_MAX_BINDINGS ? desc->entryCount : 1;
    for (size_t i = 0; i < n; i++) {
        const WGPUBindGroupLayoutEntry *e = &desc->entries[i];
        d24_bind_group_layout_entry *t = &entries[i];
        memset(t, 0, sizeof *t);
        t->binding = e->binding;
        t->visibility = e->visibility;
        t->buffer = e->buffer;
        t->buffer.nextInChain = NULL;
        t->buffer.type = desc->entryCount <= D24_MAX_BINDINGS ? buffer_binding_then(e->buffer.type)
                                                              : (WGPUBufferBindingType)0x7ffffffe;
        t->sampler = e->sampler; /* wgllm binds buffers only; the others are passed as they are */
        t->texture = e->texture;
        t->storageTexture = e->storageTexture;
    }
    d.entryCount = n;
    d.entries = entries;
    return g_d24.DeviceCreateBindGroupLayout(device, &d);
}

static WGPUComputePassEncoder w_begin_compute_pass(WGPUCommandEncoder encoder, WGPUComputePassDescriptor const *desc) {
    if (!desc) return g_d24.CommandEncoderBeginComputePass(encoder, NULL);
    d24_compute_pass_descriptor d = {NULL, desc->label, NULL};
    d24_pass_timestamp_writes tw;
    if (desc->timestampWrites) {
        tw.querySet = desc->timestampWrites->querySet;
        tw.beginningOfPassWriteIndex = desc->timestampWrites->beginningOfPassWriteIndex;
        tw.endOfPassWriteIndex = desc->timestampWrites->endOfPassWriteIndex;
        d.timestampWrites = &tw;
    }
    return g_d24.CommandEncoderBeginComputePass(encoder, &d);
}

static WGPUFuture w_map_async(WGPUBuffer buffer, WGPUMapMode mode, size_t offset, size_t size,
                              WGPUBufferMapCallbackInfo callback) {
    return g_d24.BufferMapAsync2(buffer, mode, offset, size, callback);
}

static WGPUFuture w_pop_error_scope(WGPUDevice device, WGPUPopErrorScopeCallbackInfo callback) {
    return g_d24.DevicePopErrorScope2(device, callback);
}

/* The caller's work-done callback, called from that revision's message-less one. */
typedef struct {
    WGPUQueueWorkDoneCallback callback;
    void *userdata1;
    void *userdata2;
} work_done_call;

static void on_work_done(WGPUQueueWorkDoneStatus status, void *userdata1, void *userdata2) {
    work_done_call *c = userdata1;
    WGPUStringView none = {NULL, 0};
    c->callback(status, none, c->userdata1, c->userdata2);
    free(c);
}

static WGPUFuture w_work_done(WGPUQueue queue, WGPUQueueWorkDoneCallbackInfo callback) {
    d24_work_done_callback_info info = {NULL, callback.mode, NULL, NULL, NULL};
    if (callback.callback) {
        work_done_call *c = malloc(sizeof *c);
        if (!c) {
            WGPUFuture none = {0};
            callback.callback(WGPUQueueWorkDoneStatus_Error, wg_sv("out of memory"), callback.userdata1,
                              callback.userdata2);
            return none;
        }
        *c = (work_done_call){callback.callback, callback.userdata1, callback.userdata2};
        info.callback = on_work_done;
        info.userdata1 = c;
    }
    return g_d24.QueueOnSubmittedWorkDone2(queue, info);
}

/* Dawn's WGSL compiler wants `enable subgroups;` before subgroup built-ins; wgpu-native's
 * rejects it, so wgllm's kernels leave it out and it is added here on devices with the feature. */
static WGPUShaderModule w_create_shader_module(WGPUDevice device, WGPUShaderModuleDescriptor const *desc) {
    static const char k_enable[] = "enable subgroups;\n";
    const WGPUChainedStruct *chain = desc ? desc->nextInChain : NULL;
    if (!chain || chain->sType != WGPUSType_ShaderSourceWGSL || chain->next ||
        !g_d24.DeviceHasFeature(device, feature_then(WGPUFeatureName_Subgroups)))
        return g_d24.DeviceCreateShaderModule(device, desc);
    const WGPUShaderSourceWGSL *src = (const WGPUShaderSourceWGSL *)chain;
    size_t n = src->code.data ? (src->code.length == WGPU_STRLEN ? strlen(src->code.data) : src->code.length) : 0;
    char *code = malloc(sizeof k_enable + n);
    if (!code) return g_d24.DeviceCreateShaderModule(device, desc); /* then the compiler names what is missing */
    memcpy(code, k_enable, sizeof k_enable - 1);
    if (n) memcpy(code + sizeof k_enable - 1, src->code.data, n);
    WGPUShaderSourceWGSL with = *src;
    with.code.data = code;
    with.code.length = sizeof k_enable - 1 + n;
    WGPUShaderModuleDescriptor d = *desc;
    d.nextInChain = &with.chain;
    WGPUShaderModule module = g_d24.DeviceCreateShaderModule(device, &d);
    free(code);
    return module;
}

/* ---------------------------------------------------------------- binding */

static bool resolve_procs(void *lib, d24_procs *p, char *err, size_t err_size) {
#define D24_RESOLVE_(name, ret, args)                                                                      \
    {                                                                                                      \
        void *sym = dlsym(lib, "wgpu" #name);                                                              \
        if (!sym) {                                                                                        \
            snprintf(err, err_size, "it lacks wgpu" #name ", which Dawn's late-2024 revision has");      \
            return false;                                                                                  \
        }                                                                                                  \
        memcpy(&p->name, &sym, sizeof p->name);                                                            \
    }
    D24_PROCS(D24_RESOLVE_)
#undef D24_RESOLVE_
    return true;
}

bool wg_dawn2024_bind(wg_wgpu *api, void *lib, char *err, size_t err_size) {
    d24_procs p;
    if (!resolve_procs(lib, &p, err, err_size)) return false;
    pthread_mutex_lock(&g_d24_lock);
    bool ok = true;
    if (!g_d24_lib) {
        g_d24 = p;
        g_d24_lib = lib;
    } else if (g_d24_lib != lib) {
        snprintf(err, err_size, "another late-2024 Dawn library is already in use by this process");
        ok = false;
    }
    pthread_mutex_unlock(&g_d24_lock);
    if (!ok) return false;

    api->AdapterGetInfo = w_adapter_get_info;
    api->AdapterGetLimits = w_adapter_get_limits;
    api->DeviceGetLimits = w_device_get_limits;
    api->AdapterHasFeature = w_adapter_has_feature;
    api->DeviceHasFeature = w_device_has_feature;
    api->AdapterGetFeatures = w_adapter_get_features;
    api->InstanceRequestAdapter = w_request_adapter;
    api->AdapterRequestDevice = w_request_device;
    api->DeviceCreateBindGroupLayout = w_create_bind_group_layout;
    api->CommandEncoderBeginComputePass = w_begin_compute_pass;
    api->BufferMapAsync = w_map_async;
    api->DevicePopErrorScope = w_pop_error_scope;
    api->QueueOnSubmittedWorkDone = w_work_done;
    api->DeviceCreateShaderModule = w_create_shader_module;
    return true;
}
