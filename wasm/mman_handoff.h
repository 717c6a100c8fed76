/* The buffer that the next mapping of a whole file of its size becomes (wasm/mman.c). */
#ifndef WGLLM_WASM_MMAN_HANDOFF_H
#define WGLLM_WASM_MMAN_HANDOFF_H

#include <stddef.h>

/* Takes ownership of buf (malloc'd, size bytes): the next mmap of a whole file of that
 * size returns it instead of reading the file, and munmap frees it. */
void wgllm_mman_handoff(void *buf, size_t size);
/* Gives back a buffer that no mapping took (NULL if one did); the caller frees it. */
void *wgllm_mman_take_back(void);

#endif
