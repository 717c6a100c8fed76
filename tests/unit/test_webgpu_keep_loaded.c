/* Closing the WebGPU backend keeps the Vulkan loader and drivers mapped (wg_wgpu_keep_loaded).
 * Without it the Vulkan loader unloads the drivers when the instance is released, and on AMD
 * Zen CPUs Mesa's lavapipe loses a buffer it keeps in a global, which LeakSanitizer reports
 * as a leak from "<unknown module>". Needs an adapter (on CI: lavapipe); none is a failure. */
#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>

#include "backend/webgpu/wgpu_device.h"
#include "check.h"

#define MAX_OBJECTS 256

typedef struct {
    char *names[MAX_OBJECTS];
    int n;
} object_list;

static int collect(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    object_list *l = data;
    if (info->dlpi_name && info->dlpi_name[0] && l->n < MAX_OBJECTS) l->names[l->n++] = strdup(info->dlpi_name);
    return 0;
}

static int is_vulkan(const char *path) {
    const char *base = strrchr(path, '/');
    return strncmp(base ? base + 1 : path, "libvulkan", 9) == 0;
}

int main(void) {
    char err[1024] = "";
    wg_gpu *g = wg_gpu_open(NULL, err, sizeof err);
    CHECK_MSG(g != NULL, "open: %s", err);
    if (!g) CHECK_DONE();
    CHECK_MSG(g->n_adapters > 0, "no WebGPU adapter");

    object_list open = {{0}, 0};
    dl_iterate_phdr(collect, &open);
    int vulkan = 0;
    for (int i = 0; i < open.n; i++) vulkan += is_vulkan(open.names[i]);
    /* At least the Vulkan loader (the drivers' names vary: libvulkan_lvp.so on CI, NVIDIA's
     * libGLX_nvidia.so); all of them are checked below. */
    CHECK_MSG(vulkan >= 1, "no libvulkan* object loaded while WebGPU is open");

    wg_gpu_close(g);

    /* Every object that was mapped while the backend was open is still mapped. */
    for (int i = 0; i < open.n; i++) {
        void *h = dlopen(open.names[i], RTLD_LAZY | RTLD_NOLOAD);
        CHECK_MSG(h != NULL, "%s was unloaded when the backend closed", open.names[i]);
        if (h) dlclose(h); /* drops the reference RTLD_NOLOAD took */
        free(open.names[i]);
    }

    /* Opening again reuses the mapped drivers and still finds the adapters. */
    g = wg_gpu_open(NULL, err, sizeof err);
    CHECK_MSG(g && g->n_adapters > 0, "reopen: %s", g ? "no adapter" : err);
    wg_gpu_close(g);
    CHECK_DONE();
}
