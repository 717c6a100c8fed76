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

/* True when this build contains the WebGPU backend. */
bool wg_backend_have_webgpu(void);

#endif
