/* mmap and munmap for the embeddable module (wgllm.wasm), in place of wasi-libc's
 * emulation: a mapping is memory of the module filled by reads of the file, as there,
 * except for a buffer handed over by wgllm_mman_handoff. A model streamed from a URL
 * is written by the page straight into such a buffer, and the engine's mapping of that
 * file is the buffer itself: its bytes exist once, not twice. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mman_handoff.h"

static void *handoff;
static size_t handoff_size;

void wgllm_mman_handoff(void *buf, size_t size) {
    handoff = buf;
    handoff_size = size;
}

void *wgllm_mman_take_back(void) {
    void *p = handoff;
    handoff = NULL;
    handoff_size = 0;
    return p;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    (void)addr;
    (void)prot;
    if (len == 0 || off < 0) {
        errno = EINVAL;
        return MAP_FAILED;
    }
    if (flags & MAP_ANONYMOUS) {
        void *p = calloc(1, len);
        if (!p) errno = ENOMEM;
        return p ? p : MAP_FAILED;
    }
    /* The whole file that was handed over: the engine maps files from offset 0. */
    if (handoff && off == 0 && len == handoff_size) return wgllm_mman_take_back();
    uint8_t *p = malloc(len);
    if (!p) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, p + got, len - got, off + (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO; /* shorter than asked: the file changed */
            free(p);
            return MAP_FAILED;
        }
        got += (size_t)n;
    }
    return p;
}

int munmap(void *addr, size_t len) {
    (void)len;
    free(addr); /* the engine unmaps only whole mappings */
    return 0;
}
