/* WebGPU compute backend: the Llama forward pass in WGSL (kernels/), weights kept in
 * their GGUF block formats on the GPU.
 *
 * Environment:
 *   WGLLM_WEBGPU_MAX_BINDING=BYTES  (testing) split weights and outputs (output_create) into
 *                                   bindings of at most this many bytes, below the device's
 *                                   own limit
 *   WGLLM_WEBGPU_Q4_INT8=0          Q4_0 decode on f32 activations (the reference path);
 *                                   by default x is rounded to int8 blocks of 32 first and
 *                                   the dot products are integer (as llama.cpp does)
 *   WGLLM_WEBGPU_SUBGROUPS=0        (testing) the kernels' workgroup-memory reductions even
 *                                   where the device has subgroups
 *   see also wgpu_device.h (library, validation) and wgpu_pipelines.h (kernel folder)
 */
#ifndef WGLLM_WGPU_BACKEND_H
#define WGLLM_WGPU_BACKEND_H

#include <stddef.h>

#include "backend/backend.h"

/* Creates the backend on adapter `adapter_index` (< 0: the first adapter). NULL with a
 * message when the library, the adapter, the device or a kernel is missing or fails. */
wg_backend *wg_backend_webgpu_create(int adapter_index, char *err, size_t err_size);

/* The adapters of the default webgpu.h library as generic device descriptions (for
 * wg_backend_devices_list). NULL with a message when the library or instance fails. */
wg_backend_device_list *wg_backend_webgpu_devices(char *err, size_t err_size);

#endif
