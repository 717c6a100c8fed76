/* Memory available to this process: see host_memory.h. */
#include "model/host_memory.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef __wasi__ /* WASI has no resource limits */
#include <sys/resource.h>
#endif
#include <unistd.h>

#define CGROUP_NO_LIMIT ((uint64_t)1 << 60) /* v1 writes "no limit" as a number near 2^63 */

/* Reads a small text file whole (NUL-terminated); false if it cannot be read. */
static bool read_text(const char *path, char *buf, size_t size) {
    FILE *f = fopen(path, "re");
    if (!f) return false;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}

static bool parse_u64(const char *s, uint64_t *out) {
    while (*s == ' ' || *s == '\t') s++;
    if (*s < '0' || *s > '9') return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return false;
    *out = (uint64_t)v;
    return true;
}

/* The value after "key" at the start of a line of text. */
static bool field(const char *text, const char *key, uint64_t *out) {
    size_t n = strlen(key);
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
        if (!strncmp(line, key, n) && (line[n] == ' ' || line[n] == ':' || line[n] == '\t'))
            return parse_u64(line + n + (line[n] == ':'), out);
    return false;
}

bool wg_meminfo_available(const char *meminfo, uint64_t *bytes) {
    uint64_t kib;
    if (!meminfo || !field(meminfo, "MemAvailable", &kib) || kib > UINT64_MAX / 1024) return false;
    *bytes = kib * 1024;
    return true;
}

bool wg_cgroup_available(const char *limit, const char *usage, const char *stat, uint64_t *bytes) {
    uint64_t lim, used, inactive = 0;
    if (!limit || !usage || !parse_u64(limit, &lim) || lim >= CGROUP_NO_LIMIT || !parse_u64(usage, &used)) return false;
    /* Page cache the kernel reclaims before it kills: v1 names the hierarchical count total_. */
    if (stat && !field(stat, "total_inactive_file", &inactive)) field(stat, "inactive_file", &inactive);
    uint64_t charged = used > inactive ? used - inactive : 0;
    *bytes = lim > charged ? lim - charged : 0;
    return true;
}

/* This process's cgroup path for a controller: "0::PATH" (v2) or "N:...memory...:PATH" (v1). */
static bool cgroup_path(bool v2, char *out, size_t size) {
    char text[4096];
    if (!read_text("/proc/self/cgroup", text, sizeof text)) return false;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = '\0';
        bool match = v2 ? !strcmp(line, "0:") : strstr(c1 + 1, "memory") != NULL;
        if (match) {
            snprintf(out, size, "%s", strcmp(c2 + 1, "/") ? c2 + 1 : "");
            return true;
        }
    }
    return false;
}

/* The cgroup's limit files, in the process's own cgroup or (inside a container, whose
 * namespace hides the path) at the mount's root. */
static bool cgroup_query(uint64_t *bytes) {
    static const struct {
        bool v2;
        const char *root, *limit, *usage;
    } kinds[] = {
        {true, "/sys/fs/cgroup", "memory.max", "memory.current"},
        {false, "/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes"},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        char rel[1024];
        if (!cgroup_path(kinds[k].v2, rel, sizeof rel)) continue;
        const char *dirs[] = {rel, ""};
        for (size_t d = 0; d < 2; d++) {
            char path[1400], limit[64], usage[64], stat[8192];
            snprintf(path, sizeof path, "%s%s/%s", kinds[k].root, dirs[d], kinds[k].limit);
            if (!read_text(path, limit, sizeof limit)) continue;
            snprintf(path, sizeof path, "%s%s/%s", kinds[k].root, dirs[d], kinds[k].usage);
            if (!read_text(path, usage, sizeof usage)) continue;
            snprintf(path, sizeof path, "%s%s/memory.stat", kinds[k].root, dirs[d]);
            bool have_stat = read_text(path, stat, sizeof stat);
            return wg_cgroup_available(limit, usage, have_stat ? stat : NULL, bytes);
        }
    }
    return false;
}

/* RLIMIT_AS less the address space in use (first field of /proc/self/statm, in pages). */
static bool rlimit_query(uint64_t *bytes) {
#ifdef __wasi__
    (void)bytes;
    return false;
#else
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return false;
    char text[256];
    uint64_t pages = 0;
    long page = sysconf(_SC_PAGESIZE);
    if (!read_text("/proc/self/statm", text, sizeof text) || !parse_u64(text, &pages) || page <= 0) return false;
    uint64_t used = pages * (uint64_t)page;
    *bytes = (uint64_t)rl.rlim_cur > used ? (uint64_t)rl.rlim_cur - used : 0;
    return true;
#endif
}

wg_host_memory wg_host_memory_query(void) {
    wg_host_memory m = {UINT64_MAX, ""};
    uint64_t v;
    char text[8192];
    if (read_text("/proc/meminfo", text, sizeof text) && wg_meminfo_available(text, &v) && v < m.available)
        m = (wg_host_memory){v, "MemAvailable"};
    if (cgroup_query(&v) && v < m.available) m = (wg_host_memory){v, "cgroup memory limit"};
    if (rlimit_query(&v) && v < m.available) m = (wg_host_memory){v, "RLIMIT_AS"};
    return m;
}

const char *wg_format_bytes(uint64_t bytes, char *buf, unsigned buf_size) {
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        snprintf(buf, buf_size, "%" PRIu64 " bytes", bytes);
        return buf;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, buf_size, "%.1f %s", v, units[u]);
    return buf;
}
