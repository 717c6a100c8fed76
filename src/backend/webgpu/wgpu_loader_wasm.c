/* The webgpu.h table of a wasm32 build: every entry point is an import of the module
 * (module "webgpu", names wgpuXxx), which the page implements over navigator.gpu
 * (wasm/webgpu.mjs). There is no library to open, and wgpu-native's extensions stay NULL,
 * so the device code takes the standard-API paths it takes for Dawn. */
#ifdef __wasm__

/* webgpu.h's declarations (the loader's header skips them) give each import its type. */
#include <webgpu/webgpu.h>

#include "backend/webgpu/wgpu_loader.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Explicit import names: wasm-ld 14 refuses undefined symbols that have none. */
#define WG_WGPU_DECLARE_IMPORT_(name) \
    __attribute__((import_module("webgpu"), import_name("wgpu" #name))) __typeof__(wgpu##name) wg_import_##name;
WG_WGPU_REQUIRED_PROCS(WG_WGPU_DECLARE_IMPORT_)
#undef WG_WGPU_DECLARE_IMPORT_

/* wasm/webgpu.mjs reads and writes these structs at fixed offsets: keep them in step. */
#define WG_AT_(type, field, at) _Static_assert(offsetof(type, field) == (at), "wasm/webgpu.mjs: " #type "." #field);
WG_AT_(WGPUStringView, length, 4)
WG_AT_(WGPURequestAdapterCallbackInfo, callback, 8) WG_AT_(WGPURequestAdapterCallbackInfo, userdata1, 12)
WG_AT_(WGPURequestAdapterCallbackInfo, userdata2, 16) WG_AT_(WGPURequestDeviceCallbackInfo, callback, 8)
WG_AT_(WGPUBufferMapCallbackInfo, callback, 8) WG_AT_(WGPUPopErrorScopeCallbackInfo, callback, 8)
WG_AT_(WGPUQueueWorkDoneCallbackInfo, callback, 8) WG_AT_(WGPUDeviceLostCallbackInfo, callback, 8)
WG_AT_(WGPUDeviceLostCallbackInfo, userdata1, 12) WG_AT_(WGPUUncapturedErrorCallbackInfo, userdata1, 8)
WG_AT_(WGPUUncapturedErrorCallbackInfo, callback, 4)
WG_AT_(WGPURequestAdapterOptions, powerPreference, 8) WG_AT_(WGPURequestAdapterOptions, forceFallbackAdapter, 12)
WG_AT_(WGPUAdapterInfo, vendor, 4) WG_AT_(WGPUAdapterInfo, architecture, 12) WG_AT_(WGPUAdapterInfo, device, 20)
WG_AT_(WGPUAdapterInfo, description, 28) WG_AT_(WGPUAdapterInfo, backendType, 36)
WG_AT_(WGPUAdapterInfo, adapterType, 40) WG_AT_(WGPUAdapterInfo, subgroupMinSize, 52)
WG_AT_(WGPUAdapterInfo, subgroupMaxSize, 56) _Static_assert(sizeof(WGPUAdapterInfo) == 60, "WGPUAdapterInfo");
WG_AT_(WGPULimits, maxTextureDimension1D, 4) WG_AT_(WGPULimits, maxUniformBufferBindingSize, 64)
WG_AT_(WGPULimits, maxBufferSize, 96) WG_AT_(WGPULimits, maxImmediateSize, 148)
_Static_assert(sizeof(WGPULimits) == 152, "wasm/webgpu.mjs: WGPULimits (LIMIT_FIELDS)");
WG_AT_(WGPUDeviceDescriptor, label, 4) WG_AT_(WGPUDeviceDescriptor, requiredFeatureCount, 12)
WG_AT_(WGPUDeviceDescriptor, requiredFeatures, 16) WG_AT_(WGPUDeviceDescriptor, requiredLimits, 20)
WG_AT_(WGPUDeviceDescriptor, deviceLostCallbackInfo, 36) WG_AT_(WGPUDeviceDescriptor, uncapturedErrorCallbackInfo, 56)
WG_AT_(WGPUBufferDescriptor, label, 4) WG_AT_(WGPUBufferDescriptor, usage, 16) WG_AT_(WGPUBufferDescriptor, size, 24)
WG_AT_(WGPUBufferDescriptor, mappedAtCreation, 32) WG_AT_(WGPUShaderModuleDescriptor, label, 4)
WG_AT_(WGPUChainedStruct, sType, 4) WG_AT_(WGPUShaderSourceWGSL, code, 8)
WG_AT_(WGPUComputePipelineDescriptor, label, 4) WG_AT_(WGPUComputePipelineDescriptor, layout, 12)
WG_AT_(WGPUComputePipelineDescriptor, compute, 16) WG_AT_(WGPUComputeState, module, 4)
WG_AT_(WGPUComputeState, entryPoint, 8) WG_AT_(WGPUComputeState, constantCount, 16) WG_AT_(WGPUComputeState, constants, 20)
WG_AT_(WGPUConstantEntry, key, 4) WG_AT_(WGPUConstantEntry, value, 16) _Static_assert(sizeof(WGPUConstantEntry) == 24, "");
WG_AT_(WGPUBindGroupLayoutDescriptor, label, 4) WG_AT_(WGPUBindGroupLayoutDescriptor, entryCount, 12)
WG_AT_(WGPUBindGroupLayoutDescriptor, entries, 16) WG_AT_(WGPUBindGroupLayoutEntry, binding, 4)
WG_AT_(WGPUBindGroupLayoutEntry, visibility, 8) WG_AT_(WGPUBindGroupLayoutEntry, buffer, 24)
WG_AT_(WGPUBufferBindingLayout, type, 4) WG_AT_(WGPUBufferBindingLayout, hasDynamicOffset, 8)
WG_AT_(WGPUBufferBindingLayout, minBindingSize, 16) _Static_assert(sizeof(WGPUBindGroupLayoutEntry) == 88, "");
WG_AT_(WGPUPipelineLayoutDescriptor, bindGroupLayoutCount, 12) WG_AT_(WGPUPipelineLayoutDescriptor, bindGroupLayouts, 16)
WG_AT_(WGPUBindGroupDescriptor, layout, 12) WG_AT_(WGPUBindGroupDescriptor, entryCount, 16)
WG_AT_(WGPUBindGroupDescriptor, entries, 20) WG_AT_(WGPUBindGroupEntry, binding, 4) WG_AT_(WGPUBindGroupEntry, buffer, 8)
WG_AT_(WGPUBindGroupEntry, offset, 16) WG_AT_(WGPUBindGroupEntry, size, 24) _Static_assert(sizeof(WGPUBindGroupEntry) == 40, "");
WG_AT_(WGPUCommandEncoderDescriptor, label, 4) WG_AT_(WGPUCommandBufferDescriptor, label, 4)
WG_AT_(WGPUComputePassDescriptor, label, 4) WG_AT_(WGPUComputePassDescriptor, timestampWrites, 12)
WG_AT_(WGPUPassTimestampWrites, querySet, 4) WG_AT_(WGPUPassTimestampWrites, beginningOfPassWriteIndex, 8)
WG_AT_(WGPUPassTimestampWrites, endOfPassWriteIndex, 12) WG_AT_(WGPUQuerySetDescriptor, type, 12)
WG_AT_(WGPUQuerySetDescriptor, count, 16) WG_AT_(WGPUSupportedFeatures, features, 4)
#undef WG_AT_

static const char k_page_webgpu[] = "navigator.gpu";

const char *wg_wgpu_default_path(void) { return k_page_webgpu; }

bool wg_wgpu_load(wg_wgpu *api, const char *path, char *err, size_t err_size) {
    memset(api, 0, sizeof *api);
    if (path && *path && strcmp(path, k_page_webgpu) != 0) {
        snprintf(err, err_size, "WebGPU library '%s': a wasm build uses the page's WebGPU (%s) only", path,
                 k_page_webgpu);
        return false;
    }
#define WG_WGPU_BIND_IMPORT_(name) api->name = wg_import_##name;
    WG_WGPU_REQUIRED_PROCS(WG_WGPU_BIND_IMPORT_)
#undef WG_WGPU_BIND_IMPORT_
    snprintf(api->path, sizeof api->path, "%s", k_page_webgpu);
    return true;
}

void wg_wgpu_unload(wg_wgpu *api) { memset(api, 0, sizeof *api); }

void wg_wgpu_keep_loaded(const wg_wgpu *api) { (void)api; }

#else
typedef int wg_wgpu_loader_wasm_unused_; /* a native build has the dlopen loader instead */
#endif
