/* LeakSanitizer canary for the ASan+UBSan build (registered only there): opens and closes the
 * WebGPU backend, then leaks one 77-byte block of its own. The test passes only if LSan reports
 * exactly that block: leak detection is on, leaks in our code are reported, and the Vulkan stack
 * adds nothing (see wg_wgpu_keep_loaded). */
#include <stdio.h>
#include <stdlib.h>

#include "backend/webgpu/wgpu_device.h"

static void *volatile sink;

static void leak_on_purpose(void) {
    sink = malloc(77);
    sink = NULL;
}

int main(void) {
    char err[1024] = "";
    wg_gpu *g = wg_gpu_open(NULL, err, sizeof err);
    if (!g || g->n_adapters == 0) {
        fprintf(stderr, "no WebGPU adapter: %s\n", g ? "none found" : err);
        wg_gpu_close(g);
        return 1;
    }
    wg_gpu_close(g);
    leak_on_purpose();
    printf("leaked 77 bytes on purpose\n");
    return 0;
}
