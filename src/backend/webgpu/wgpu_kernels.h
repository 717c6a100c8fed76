/* WGSL kernel sources (the kernels folder), embedded at build time by cmake/embed_wgsl.cmake. */
#ifndef WGLLM_WGPU_KERNELS_H
#define WGLLM_WGPU_KERNELS_H

/* Source of kernels/NAME.wgsl (NAME without the extension), or NULL if there is none. */
const char *wg_kernel_source(const char *name);

#endif
