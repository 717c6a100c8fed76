/* wg_backend_devices_list: the registry's generic device listing (what `wgllm devices`
 * prints). With WebGPU built in, the adapters (CI: Mesa's lavapipe) come back with a name,
 * a type and the planning limits; without it, and for the CPU, a message instead. */
#include <stdio.h>
#include <string.h>

#include "backend/registry.h"
#include "check.h"

int main(void) {
    char err[1024] = "";
    CHECK(wg_backend_devices_list(WGLLM_BACKEND_CPU, err, sizeof err) == NULL && err[0]);
    wg_backend_devices_free(NULL); /* no-op */

    err[0] = 0;
    wg_backend_device_list *l = wg_backend_devices_list(WGLLM_BACKEND_WEBGPU, err, sizeof err);
    if (!wg_backend_have_webgpu()) {
        CHECK_MSG(l == NULL && strstr(err, "without WebGPU"), "err '%s'", err);
        CHECK_DONE();
    }
    CHECK_MSG(l != NULL, "list: %s", err);
    if (l) {
        CHECK(l->library && l->library[0] && l->version[0] && l->known_features);
        CHECK_MSG(l->n_devices >= 1, "no adapter (install Mesa's Vulkan drivers)");
        for (int i = 0; i < l->n_devices; i++) {
            const wg_backend_device *d = &l->devices[i];
            CHECK(d->name[0] && d->api[0] && d->type[0]);
            CHECK(d->n_features >= 0 && d->n_features <= WG_BACKEND_DEVICE_MAX_FEATURES);
            CHECK(d->n_limits == 8 && !strcmp(d->limits[1].name, "maxBufferSize") && d->limits[1].value > 0);
            for (int k = 0; k < d->n_features; k++) CHECK(d->features[k] && d->features[k][0]);
        }
        wg_backend_devices_free(l);
    }
    CHECK_DONE();
}
