/* How many threads a CPU run should use by default: the physical cores (not the
 * SMT siblings) among the CPUs this process may run on. */
#ifndef WGLLM_CPU_TOPOLOGY_H
#define WGLLM_CPU_TOPOLOGY_H

#include <sched.h>

#ifndef __wasi__ /* WASI has no affinity masks or sysfs: one thread, below */
/* The number of distinct physical cores among the CPUs in `cpus`, read from the sysfs
 * tree under `root` (normally /sys/devices/system/cpu): a core is named by the first CPU
 * of each CPU's topology/thread_siblings_list, or else by its (physical_package_id,
 * core_id). 0 when the tree does not say (missing or malformed files). */
int wg_cpu_physical_cores(const char *root, const cpu_set_t *cpus);
#endif

/* Physical cores among the CPUs of the process's affinity mask; without sysfs, the
 * number of CPUs in the mask; without that, the online CPU count. At least 1. */
int wg_cpu_default_threads(void);

#endif
