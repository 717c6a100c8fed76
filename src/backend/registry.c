#include "backend/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#if defined(WGLLM_HAVE_WEBGPU_BACKEND)
#include "backend/webgpu/wgpu_backend.h"
#include "backend/webgpu/wgpu_device.h"
#endif

bool wg_backend_have_webgpu(void) {
#if defined(WGLLM_HAVE_WEBGPU_BACKEND)
    return true;
#else
    return false;
#endif
}

static const struct {
    const char *name;
    wgllm_backend_kind kind;
} k_backends[] = {
    {"cpu", WGLLM_BACKEND_CPU},
#if defined(WGLLM_HAVE_WEBGPU_BACKEND)
    {"webgpu", WGLLM_BACKEND_WEBGPU},
#endif
};

int wg_backend_registry_count(void) { return (int)(sizeof k_backends / sizeof k_backends[0]); }

const char *wg_backend_registry_name(int i) {
    return i >= 0 && i < wg_backend_registry_count() ? k_backends[i].name : NULL;
}

wgllm_backend_kind wg_backend_registry_kind(int i) {
    return i >= 0 && i < wg_backend_registry_count() ? k_backends[i].kind : WGLLM_BACKEND_CPU;
}

/* Every backend name, also of backends this build lacks (creating one then says so). */
bool wgllm_backend_kind_from_name(const char *name, wgllm_backend_kind *out) {
    static const struct {
        const char *name;
        wgllm_backend_kind kind;
    } names[] = {{"cpu", WGLLM_BACKEND_CPU}, {"auto", WGLLM_BACKEND_AUTO}, {"webgpu", WGLLM_BACKEND_WEBGPU}};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i].name)) {
            *out = names[i].kind;
            return true;
        }
    return false;
}

static wg_backend *make_cpu(int n_threads, const char *why, char *desc, size_t desc_size, char *err,
                            size_t err_size) {
    wg_backend *b = wg_backend_cpu_create(n_threads, err, err_size);
    if (b) snprintf(desc, desc_size, "cpu%s%s", why ? " " : "", why ? why : "");
    return b;
}

#if defined(WGLLM_HAVE_WEBGPU_BACKEND)
/* Index of the adapter AUTO should use: the requested one if it is a real GPU,
 * else the first real GPU; -1 with a reason if there is none. A software
 * adapter (lavapipe, SwiftShader) is slower than the CPU backend, so AUTO skips it. */
static int pick_gpu_adapter(int device, char *why, size_t why_size) {
    char err[256];
    wg_gpu *g = wg_gpu_open(NULL, err, sizeof err);
    if (!g) {
        snprintf(why, why_size, "(WebGPU unavailable: %s)", err);
        return -1;
    }
    int pick = -1;
    for (int i = 0; i < g->n_adapters && pick < 0; i++) {
        if (device >= 0 && i != device) continue;
        if (g->info[i].type != WGPUAdapterType_CPU) pick = i;
    }
    if (pick < 0)
        snprintf(why, why_size, "(%s)",
                 g->n_adapters == 0 ? "no WebGPU adapter found" : "only software WebGPU adapters: the CPU backend is faster");
    wg_gpu_close(g);
    return pick;
}
#endif

wg_backend *wg_backend_create_kind(wgllm_backend_kind kind, int n_threads, int device, char *desc, size_t desc_size,
                                   char *err, size_t err_size) {
    desc[0] = 0;
    switch (kind) {
    case WGLLM_BACKEND_CPU:
        return make_cpu(n_threads, NULL, desc, desc_size, err, err_size);
    case WGLLM_BACKEND_WEBGPU:
#if defined(WGLLM_HAVE_WEBGPU_BACKEND)
    {
        wg_backend *b = wg_backend_webgpu_create(device, err, err_size);
        if (b) snprintf(desc, desc_size, "webgpu");
        return b;
    }
#else
        snprintf(err, err_size, "this build has no WebGPU backend (run scripts/install-webgpu.sh and rebuild)");
        return NULL;
#endif
    case WGLLM_BACKEND_AUTO: {
#if defined(WGLLM_HAVE_WEBGPU_BACKEND)
        char why[300];
        int adapter = pick_gpu_adapter(device, why, sizeof why);
        if (adapter >= 0) {
            char werr[256];
            wg_backend *b = wg_backend_webgpu_create(adapter, werr, sizeof werr);
            if (b) {
                snprintf(desc, desc_size, "webgpu (auto: GPU adapter %d)", adapter);
                return b;
            }
            snprintf(why, sizeof why, "(auto: WebGPU device failed: %s)", werr);
        }
        return make_cpu(n_threads, why, desc, desc_size, err, err_size);
#else
        return make_cpu(n_threads, "(auto: this build has no WebGPU backend)", desc, desc_size, err, err_size);
#endif
    }
    }
    snprintf(err, err_size, "unknown backend kind %d", (int)kind);
    return NULL;
}

wg_backend_device_list *wg_backend_devices_list(wgllm_backend_kind kind, char *err, size_t err_size) {
    if (kind == WGLLM_BACKEND_WEBGPU) {
#if defined(WGLLM_HAVE_WEBGPU_BACKEND)
        return wg_backend_webgpu_devices(err, err_size);
#else
        snprintf(err, err_size, "this wgllm was built without WebGPU (reconfigure with -DWGLLM_WEBGPU=ON after "
                                "scripts/install-webgpu.sh)");
        return NULL;
#endif
    }
    snprintf(err, err_size, "backend kind %d has no devices to list", (int)kind);
    return NULL;
}

void wg_backend_devices_free(wg_backend_device_list *l) {
    if (!l) return;
    free(l->library);
    free(l->revision);
    free(l->devices);
    free(l);
}
