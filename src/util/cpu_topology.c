#include "util/cpu_topology.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads the small text file root/cpuN/topology/name as one leading non-negative
 * integer; -1 when absent or not a number. */
#ifdef __wasi__
/* WebAssembly without the threads proposal runs on one thread. */
int wg_cpu_default_threads(void) { return 1; }
#else
static long read_topology_int(const char *root, int cpu, const char *name) {
    char path[512];
    int len = snprintf(path, sizeof path, "%s/cpu%d/topology/%s", root, cpu, name);
    if (len < 0 || (size_t)len >= sizeof path) return -1;
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char text[64];
    size_t got = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[got] = '\0';
    if (got == 0 || text[0] < '0' || text[0] > '9') return -1;
    char *end;
    long v = strtol(text, &end, 10);
    /* the number ends the file, a line, or a list ("0-1", "0,4") */
    if (v < 0 || v > 1000000000L || (*end != '\0' && *end != '\n' && *end != '-' && *end != ',')) return -1;
    return v;
}

/* A name for the core of `cpu`, equal for its SMT siblings; -1 if the tree does not say. */
static long long core_key(const char *root, int cpu) {
    long first = read_topology_int(root, cpu, "thread_siblings_list");
    if (first >= 0) return first;
    long core = read_topology_int(root, cpu, "core_id"), pkg = read_topology_int(root, cpu, "physical_package_id");
    if (core < 0 || pkg < 0) return -1;
    return (1LL << 40) + ((long long)pkg << 20) + core; /* apart from the CPU numbers above */
}

int wg_cpu_physical_cores(const char *root, const cpu_set_t *cpus) {
    long long keys[CPU_SETSIZE];
    int n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, cpus)) continue;
        long long k = core_key(root, cpu);
        if (k < 0) return 0;
        bool seen = false;
        for (int i = 0; i < n && !seen; i++) seen = keys[i] == k;
        if (!seen) keys[n++] = k;
    }
    return n;
}

int wg_cpu_default_threads(void) {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    if (sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) > 0) {
        int cores = wg_cpu_physical_cores("/sys/devices/system/cpu", &cpus);
        return cores > 0 ? cores : CPU_COUNT(&cpus);
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}
#endif
