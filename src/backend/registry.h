/* Picks and creates a compute backend. The only place that knows which
 * backends this build has. */
#ifndef WGLLM_BACKEND_REGISTRY_H
#define WGLLM_BACKEND_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "backend/backend.h"
#include "wgllm.h"

/* Creates the backend for `kind` (CPU, WEBGPU or AUTO). `device` selects a WebGPU
 * adapter (< 0: the first suitable one). On success `desc` says which backend runs
 * and, for AUTO, why it was chosen. NULL + err on failure. */
wg_backend *wg_backend_create_kind(wgllm_backend_kind kind, int n_threads, int device, char *desc, size_t desc_size,
                                   char *err, size_t err_size);

/* The devices backend `kind` offers (WEBGPU: the adapters of the webgpu.h library);
 * zero devices is not an error. The caller frees the list with wg_backend_devices_free.
 * NULL + err when the backend is not in this build, has no devices to choose from
 * (CPU) or cannot start. */
wg_backend_device_list *wg_backend_devices_list(wgllm_backend_kind kind, char *err, size_t err_size);
void wg_backend_devices_free(wg_backend_device_list *l);

/* The backends of this build, CPU first, for code that treats every backend alike (the op
 * tests): index i in [0, wg_backend_registry_count()) has a short name ("cpu", "webgpu")
 * and a kind for wg_backend_create_kind. */
int wg_backend_registry_count(void);
const char *wg_backend_registry_name(int i);
wgllm_backend_kind wg_backend_registry_kind(int i);

/* True when this build contains the WebGPU backend. */
bool wg_backend_have_webgpu(void);

#endif
