/* The adapters of a webgpu.h library, described through the backend seam's generic
 * device struct, so that listing them needs no WebGPU types outside this folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/webgpu/wgpu_backend.h"
#include "backend/webgpu/wgpu_device.h"

typedef struct {
    const char *name;
    size_t offset;
} feature_name;

/* Fixed order: the order `wgllm devices` prints them in. */
static const feature_name k_features[] = {
    {"shader-f16", offsetof(wg_gpu_features, shader_f16)},
    {"subgroups", offsetof(wg_gpu_features, subgroups)},
    {"timestamp-query", offsetof(wg_gpu_features, timestamp_query)},
    {"timestamp-query-inside-passes", offsetof(wg_gpu_features, timestamp_inside_passes)},
};
#define N_FEATURES (sizeof k_features / sizeof k_features[0])

static void add_limit(wg_backend_device *d, const char *name, uint64_t value) {
    if (d->n_limits >= WG_BACKEND_DEVICE_MAX_LIMITS) return;
    d->limits[d->n_limits].name = name;
    d->limits[d->n_limits++].value = value;
}

static void describe(const wg_adapter_info *a, wg_backend_device *d) {
    snprintf(d->name, sizeof d->name, "%s", a->name);
    snprintf(d->api, sizeof d->api, "%s", wg_backend_type_name(a->backend));
    snprintf(d->type, sizeof d->type, "%s", wg_adapter_type_name(a->type));
    snprintf(d->vendor, sizeof d->vendor, "%s", a->vendor);
    snprintf(d->architecture, sizeof d->architecture, "%s", a->architecture);
    snprintf(d->driver, sizeof d->driver, "%s", a->description);
    d->vendor_id = a->vendor_id;
    d->device_id = a->device_id;
    d->subgroup_min_size = a->subgroup_min_size;
    d->subgroup_max_size = a->subgroup_max_size;
    for (size_t k = 0; k < N_FEATURES; k++)
        if (*(const bool *)((const char *)&a->features + k_features[k].offset))
            d->features[d->n_features++] = k_features[k].name;
    const wg_gpu_limits *l = &a->limits;
    add_limit(d, "maxStorageBufferBindingSize", l->max_storage_buffer_binding_size);
    add_limit(d, "maxBufferSize", l->max_buffer_size);
    add_limit(d, "maxComputeWorkgroupStorageSize", l->max_compute_workgroup_storage_size);
    add_limit(d, "maxComputeInvocationsPerWorkgroup", l->max_compute_invocations_per_workgroup);
    add_limit(d, "maxComputeWorkgroupSizeX", l->max_compute_workgroup_size_x);
    add_limit(d, "maxStorageBuffersPerShaderStage", l->max_storage_buffers_per_shader_stage);
    add_limit(d, "maxComputeWorkgroupsPerDimension", l->max_compute_workgroups_per_dimension);
    add_limit(d, "minStorageBufferOffsetAlignment", l->min_storage_buffer_offset_alignment);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

wg_backend_device_list *wg_backend_webgpu_devices(char *err, size_t err_size) {
    wg_gpu *g = wg_gpu_open(NULL, err, err_size);
    if (!g) return NULL;
    wg_backend_device_list *l = calloc(1, sizeof *l);
    if (l) {
        l->library = dup_str(g->api.path);
        l->revision = g->api.revision ? dup_str(g->api.revision) : NULL;
        l->devices = g->n_adapters ? calloc((size_t)g->n_adapters, sizeof *l->devices) : NULL;
    }
    if (!l || !l->library || (g->api.revision && !l->revision) || (g->n_adapters && !l->devices)) {
        snprintf(err, err_size, "out of memory listing WebGPU adapters");
        wg_gpu_close(g);
        if (l) free(l->library), free(l->revision), free(l->devices), free(l);
        return NULL;
    }
    if (g->api.GetVersion) {
        unsigned v = g->api.GetVersion();
        snprintf(l->version, sizeof l->version, "%u.%u.%u.%u", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff,
                 v & 0xff);
    } else {
        snprintf(l->version, sizeof l->version, "unknown");
    }
    l->known_features = "shader-f16, subgroups, timestamp-query";
    l->n_devices = g->n_adapters;
    for (int i = 0; i < g->n_adapters; i++) describe(&g->info[i], &l->devices[i]);
    wg_gpu_close(g);
    return l;
}
