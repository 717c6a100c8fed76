#ifndef WGLLM_BACKEND_CPU_H
#define WGLLM_BACKEND_CPU_H

#include "backend/backend.h"

/* Creates the CPU backend with n_threads workers (<= 0: online CPUs).
 * NULL + message on failure. Destroy with b->ops->destroy(b). */
wg_backend *wg_backend_cpu_create(int n_threads, char *err, size_t err_size);

#endif
