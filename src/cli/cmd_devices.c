/* `wgllm devices`: the WebGPU adapters this machine offers, with the limits and features
 * the engine plans with. The index is what `--device N` selects. The backend registry
 * describes them; this file only prints. */
#include <stdio.h>
#include <string.h>

#include "backend/registry.h"
#ifdef WGLLM_HAVE_WEBGPU_BACKEND
#include "backend/webgpu/wgpu_autotune.h"
#endif
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/json_out.h"

static void usage(FILE *out) {
    fprintf(out, "usage: wgllm devices [--json]\n\n"
                 "Lists WebGPU adapters (name, backend, type, limits, features).\n"
                 "  --json   machine-readable output\n\n"
                 "environment:\n"
                 "  WGLLM_WEBGPU_LIB=PATH       webgpu.h library to load (default: the bundled wgpu-native; see README)\n"
                 "  WGLLM_WEBGPU_BACKEND=NAME   vulkan, gl, metal, dx12 or all (wgpu-native only)\n"
                 "  WGLLM_WEBGPU_AUTOTUNE_FILE=PATH  the kernel choices measured per adapter (see README)\n");
}

static void print_text(const wg_backend_device_list *l) {
    printf("WebGPU library: %s (version %s%s%s)\n", l->library, l->version, l->revision ? "; " : "",
           l->revision ? l->revision : "");
    for (int i = 0; i < l->n_devices; i++) {
        const wg_backend_device *a = &l->devices[i];
        printf("\ndevice %d: %s\n", i, a->name);
        printf("  backend       %s\n", a->api);
        printf("  type          %s\n", a->type);
        printf("  vendor        %s (0x%04x), device id 0x%04x\n", a->vendor[0] ? a->vendor : "-", a->vendor_id,
               a->device_id);
        if (a->architecture[0]) printf("  architecture  %s\n", a->architecture);
        if (a->driver[0]) printf("  driver        %s\n", a->driver);
#ifdef WGLLM_HAVE_WEBGPU_BACKEND
        /* the kernel choices measured on this adapter and driver, if cached */
        const wgb_tune_adapter ta = {a->api, a->name, a->architecture, a->driver, a->vendor_id, a->device_id};
        wgb_autotune_print(stdout, &ta);
#endif
        printf("  features     ");
        for (int k = 0; k < a->n_features; k++) printf(" %s", a->features[k]);
        if (a->n_features) printf("\n");
        else printf(" (none of %s)\n", l->known_features);
        if (a->subgroup_max_size) printf("  subgroup size %u..%u\n", a->subgroup_min_size, a->subgroup_max_size);
        printf("  limits:\n");
        for (int k = 0; k < a->n_limits; k++)
            printf("    %-35s%llu\n", a->limits[k].name, (unsigned long long)a->limits[k].value);
    }
}

static void json_str(const char *s) {
    json_write_string(stdout, s, strlen(s));
}

static void print_json(const wg_backend_device_list *l) {
    printf("{\"library\": ");
    json_str(l->library);
    printf(", \"version\": ");
    json_str(l->version);
    printf(", \"adapters\": [");
    for (int i = 0; i < l->n_devices; i++) {
        const wg_backend_device *a = &l->devices[i];
        printf("%s\n  {\"index\": %d, \"name\": ", i ? "," : "", i);
        json_str(a->name);
        printf(", \"backend\": ");
        json_str(a->api);
        printf(", \"type\": ");
        json_str(a->type);
        printf(", \"vendor\": ");
        json_str(a->vendor);
        printf(", \"architecture\": ");
        json_str(a->architecture);
        printf(", \"driver\": ");
        json_str(a->driver);
        printf(", \"vendor_id\": %u, \"device_id\": %u", a->vendor_id, a->device_id);
        printf(", \"subgroup_min_size\": %u, \"subgroup_max_size\": %u", a->subgroup_min_size, a->subgroup_max_size);
        printf(",\n   \"features\": [");
        for (int k = 0; k < a->n_features; k++) {
            printf("%s", k ? ", " : "");
            json_str(a->features[k]);
        }
        printf("],\n   \"limits\": {");
        for (int k = 0; k < a->n_limits; k++) {
            printf("%s", k ? ", " : "");
            json_str(a->limits[k].name);
            printf(": %llu", (unsigned long long)a->limits[k].value);
        }
        printf("}}");
    }
    printf("%s]}\n", l->n_devices ? "\n" : "");
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
    wg_backend_device_list *l = wg_backend_devices_list(WGLLM_BACKEND_WEBGPU, err, sizeof err);
    if (!l) {
        fprintf(stderr, "wgllm devices: error: %s\n", err);
        return 1;
    }
    if (json) print_json(l);
    else print_text(l);
    int rc = 0;
    if (l->n_devices == 0) {
        fprintf(stderr, "wgllm devices: error: no WebGPU adapter found (without a GPU, install Mesa's Vulkan "
                        "drivers: scripts/install-webgpu.sh)\n");
        rc = 1;
    }
    wg_backend_devices_free(l);
    return rc;
}
