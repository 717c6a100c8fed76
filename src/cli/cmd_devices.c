/* `wgllm devices`: the WebGPU adapters this machine offers, with the limits and features
 * the engine plans with. The index is what `--device N` selects. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"

#ifndef WGLLM_HAVE_WEBGPU
/* CPU-only build (configured with -DWGLLM_WEBGPU=OFF). */
int cmd_devices(int argc, char **argv) {
    fprintf(stderr, "wgllm devices: error: this wgllm was built without WebGPU (reconfigure with "
                    "-DWGLLM_WEBGPU=ON after scripts/install-webgpu.sh)\n");
    return 1;
}
#else

#include "backend/webgpu/wgpu_device.h"
#include "cli/json_out.h"

static void usage(FILE *out) {
    fprintf(out, "usage: wgllm devices [--json]\n\n"
                 "Lists WebGPU adapters (name, backend, type, limits, features).\n"
                 "  --json   machine-readable output\n\n"
                 "environment:\n"
                 "  WGLLM_WEBGPU_LIB=PATH       webgpu.h library to load (default: the bundled wgpu-native; see README)\n"
                 "  WGLLM_WEBGPU_BACKEND=NAME   vulkan, gl, metal, dx12 or all (wgpu-native only)\n");
}

static void version_string(const wg_gpu *g, char *buf, size_t size) {
    if (!g->api.GetVersion) {
        snprintf(buf, size, "unknown");
        return;
    }
    unsigned v = g->api.GetVersion();
    snprintf(buf, size, "%u.%u.%u.%u", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
}

typedef struct {
    const char *name;
    size_t offset;
} feature_name;

static const feature_name k_feature_names[] = {
    {"shader-f16", offsetof(wg_gpu_features, shader_f16)},
    {"subgroups", offsetof(wg_gpu_features, subgroups)},
    {"timestamp-query", offsetof(wg_gpu_features, timestamp_query)},
    {"timestamp-query-inside-passes", offsetof(wg_gpu_features, timestamp_inside_passes)},
};
#define N_FEATURE_NAMES (sizeof k_feature_names / sizeof k_feature_names[0])

static bool has_feature(const wg_gpu_features *f, size_t i) {
    return *(const bool *)((const char *)f + k_feature_names[i].offset);
}

static void print_text(const wg_gpu *g) {
    char version[32];
    version_string(g, version, sizeof version);
    printf("WebGPU library: %s (version %s%s%s)\n", g->api.path, version, g->api.revision ? "; " : "",
           g->api.revision ? g->api.revision : "");
    if (g->n_adapters == 0) return;
    for (int i = 0; i < g->n_adapters; i++) {
        const wg_adapter_info *a = &g->info[i];
        const wg_gpu_limits *l = &a->limits;
        printf("\ndevice %d: %s\n", i, a->name);
        printf("  backend       %s\n", wg_backend_type_name(a->backend));
        printf("  type          %s\n", wg_adapter_type_name(a->type));
        printf("  vendor        %s (0x%04x), device id 0x%04x\n", a->vendor[0] ? a->vendor : "-", a->vendor_id,
               a->device_id);
        if (a->architecture[0]) printf("  architecture  %s\n", a->architecture);
        if (a->description[0]) printf("  driver        %s\n", a->description);
        printf("  features     ");
        int n = 0;
        for (size_t k = 0; k < N_FEATURE_NAMES; k++)
            if (has_feature(&a->features, k)) printf(" %s", k_feature_names[k].name), n++;
        printf("%s\n", n ? "" : " (none of shader-f16, subgroups, timestamp-query)");
        if (a->subgroup_max_size) printf("  subgroup size %u..%u\n", a->subgroup_min_size, a->subgroup_max_size);
        printf("  limits:\n");
        printf("    maxStorageBufferBindingSize        %llu\n", (unsigned long long)l->max_storage_buffer_binding_size);
        printf("    maxBufferSize                      %llu\n", (unsigned long long)l->max_buffer_size);
        printf("    maxComputeWorkgroupStorageSize     %u\n", l->max_compute_workgroup_storage_size);
        printf("    maxComputeInvocationsPerWorkgroup  %u\n", l->max_compute_invocations_per_workgroup);
        printf("    maxComputeWorkgroupSizeX           %u\n", l->max_compute_workgroup_size_x);
        printf("    maxStorageBuffersPerShaderStage    %u\n", l->max_storage_buffers_per_shader_stage);
        printf("    maxComputeWorkgroupsPerDimension   %u\n", l->max_compute_workgroups_per_dimension);
        printf("    minStorageBufferOffsetAlignment    %u\n", l->min_storage_buffer_offset_alignment);
    }
}

static void json_str(const char *s) {
    json_write_string(stdout, s, strlen(s));
}

static void print_json(const wg_gpu *g) {
    char version[32];
    version_string(g, version, sizeof version);
    printf("{\"library\": ");
    json_str(g->api.path);
    printf(", \"version\": ");
    json_str(version);
    printf(", \"adapters\": [");
    for (int i = 0; i < g->n_adapters; i++) {
        const wg_adapter_info *a = &g->info[i];
        const wg_gpu_limits *l = &a->limits;
        printf("%s\n  {\"index\": %d, \"name\": ", i ? "," : "", i);
        json_str(a->name);
        printf(", \"backend\": ");
        json_str(wg_backend_type_name(a->backend));
        printf(", \"type\": ");
        json_str(wg_adapter_type_name(a->type));
        printf(", \"vendor\": ");
        json_str(a->vendor);
        printf(", \"architecture\": ");
        json_str(a->architecture);
        printf(", \"driver\": ");
        json_str(a->description);
        printf(", \"vendor_id\": %u, \"device_id\": %u", a->vendor_id, a->device_id);
        printf(", \"subgroup_min_size\": %u, \"subgroup_max_size\": %u", a->subgroup_min_size, a->subgroup_max_size);
        printf(",\n   \"features\": [");
        int n = 0;
        for (size_t k = 0; k < N_FEATURE_NAMES; k++) {
            if (!has_feature(&a->features, k)) continue;
            printf("%s", n++ ? ", " : "");
            json_str(k_feature_names[k].name);
        }
        printf("],\n   \"limits\": {\"maxStorageBufferBindingSize\": %llu, \"maxBufferSize\": %llu, "
               "\"maxComputeWorkgroupStorageSize\": %u, \"maxComputeInvocationsPerWorkgroup\": %u, "
               "\"maxComputeWorkgroupSizeX\": %u, \"maxStorageBuffersPerShaderStage\": %u, "
               "\"maxComputeWorkgroupsPerDimension\": %u, \"minStorageBufferOffsetAlignment\": %u}}",
               (unsigned long long)l->max_storage_buffer_binding_size, (unsigned long long)l->max_buffer_size,
               l->max_compute_workgroup_storage_size, l->max_compute_invocations_per_workgroup,
               l->max_compute_workgroup_size_x, l->max_storage_buffers_per_shader_stage,
               l->max_compute_workgroups_per_dimension, l->min_storage_buffer_offset_alignment);
    }
    printf("%s]}\n", g->n_adapters ? "\n" : "");
}

int cmd_devices(int argc, char **argv) {
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            return usage_error("devices", "unknown option '%s'", argv[i]);
        }
    }
    char err[1024];
    wg_gpu *g = wg_gpu_open(NULL, err, sizeof err);
    if (!g) {
        fprintf(stderr, "wgllm devices: error: %s\n", err);
        return 1;
    }
    if (json) print_json(g);
    else print_text(g);
    int rc = 0;
    if (g->n_adapters == 0) {
        fprintf(stderr, "wgllm devices: error: no WebGPU adapter found (without a GPU, install Mesa's Vulkan "
                        "drivers: scripts/install-webgpu.sh)\n");
        rc = 1;
    }
    wg_gpu_close(g);
    return rc;
}

#endif /* WGLLM_HAVE_WEBGPU */
