/* Adapter for one older webgpu.h revision: Dawn's of late 2024 (chromium/6940, the build inside
 * PyPI's dawn-python 0.3.0), which exports the names wgllm calls but with its own limits struct,
 * feature numbers, bind-group-layout entries and callback functions (the "2" variants).
 *
 * wg_dawn2024_bind replaces the entries of an api table whose ABI differs with wrappers that
 * translate to that revision; every other entry is called directly. The wrappers reach the
 * library's own functions through one process-wide table, written once by the first bind
 * (a library opened twice has the same entry points). */
#ifndef WGLLM_WGPU_DAWN2024_H
#define WGLLM_WGPU_DAWN2024_H

#include <stdbool.h>
#include <stddef.h>

#include "backend/webgpu/wgpu_loader.h"

/* True if `lib` exports exactly the names that tell this revision apart. */
bool wg_dawn2024_detect(void *lib);

/* Resolves the revision's own entry points and points the differing entries of `api` (already
 * filled from `lib`) at the wrappers. False, with err naming the missing symbol, if one is absent. */
bool wg_dawn2024_bind(wg_wgpu *api, void *lib, char *err, size_t err_size);

#endif
