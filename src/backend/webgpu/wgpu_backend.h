/* WebGPU compute backend: the Llama forward pass in WGSL (kernels/), weights kept in
 * their GGUF block formats on the GPU.
 *
 * Environment:
 *   WGLLM_WEBGPU_MAX_BINDING=BYTES  (testing) split weights into bindings of at most this
 *                                   many bytes, below the device's own limit
 *   see also wgpu_device.h (library, validation) and wgpu_pipelines.h (kernel folder)
 */
#ifndef WGLLM_WGPU_BACKEND_H
#define WGLLM_WGPU_BACKEND_H

#include <stddef.h>

#include "backend/backend.h"

/* Creates the backend on adapter `adapter_index` (< 0: the first adapter). NULL with a
 * message when the library, the adapter, the device or a kernel is missing or fails. */
wg_backend *wg_backend_webgpu_create(int adapter_index, char *err, size_t err_size);

#endif
