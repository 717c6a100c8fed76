/* How much memory this process can still take, from what Linux states: MemAvailable of
 * /proc/meminfo, the cgroup's memory limit (v2 memory.max or v1 memory.limit_in_bytes, less
 * what the cgroup uses apart from reclaimable file pages), and RLIMIT_AS less the address
 * space already in use. Used to refuse, with the sizes, a KV cache that would not fit
 * before committing it, instead of being killed by the OOM killer later. */
#ifndef WGLLM_MODEL_HOST_MEMORY_H
#define WGLLM_MODEL_HOST_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct wg_host_memory {
    uint64_t available; /* bytes: the smallest of the limits found; UINT64_MAX when none is */
    const char *limit;  /* which one that is ("MemAvailable", "cgroup memory limit", "RLIMIT_AS"), or "" */
} wg_host_memory;

wg_host_memory wg_host_memory_query(void);

/* The parsers, on file contents (tests). False when the value is absent or malformed. */
bool wg_meminfo_available(const char *meminfo, uint64_t *bytes);
/* Memory a cgroup can still charge: limit - usage + inactive_file (from memory.stat); false
 * when the limit is "max" (v2) or absurdly high (v1's "no limit"). */
bool wg_cgroup_available(const char *limit, const char *usage, const char *stat, uint64_t *bytes);

/* "12.3 GiB", "512.0 MiB", "42 KiB" or "17 bytes" into buf (at least 32 bytes). */
const char *wg_format_bytes(uint64_t bytes, char *buf, unsigned buf_size);

#endif
