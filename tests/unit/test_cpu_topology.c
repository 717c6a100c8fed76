/* The default thread count's topology parser on fake sysfs trees: SMT siblings count
 * once, the affinity mask limits the CPUs, and a tree that does not say gives 0. */
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "util/cpu_topology.h"

static char root[64];

/* Writes root/cpuN/topology/name with `text`. */
static void put(int cpu, const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/cpu%d", root, cpu);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/cpu%d/topology", root, cpu);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/cpu%d/topology/%s", root, cpu, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) { return remove(path); }

static void fresh_tree(void) {
    if (root[0]) nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    snprintf(root, sizeof root, "cpu_topology_XXXXXX");
    CHECK(mkdtemp(root) != NULL);
}

static cpu_set_t cpus_of(const int *list, int n) {
    cpu_set_t s;
    CPU_ZERO(&s);
    for (int i = 0; i < n; i++) CPU_SET(list[i], &s);
    return s;
}

int main(void) {
    /* 4 CPUs on 2 cores with SMT, siblings interleaved as on many x86 hosts: {0,2} {1,3} */
    fresh_tree();
    const char *sib[4] = {"0,2\n", "1,3\n", "0,2\n", "1,3\n"};
    for (int c = 0; c < 4; c++) put(c, "thread_siblings_list", sib[c]);
    cpu_set_t all4 = cpus_of((int[]){0, 1, 2, 3}, 4), pair = cpus_of((int[]){0, 2}, 2),
              cross = cpus_of((int[]){0, 1}, 2), one = cpus_of((int[]){3}, 1);
    CHECK(wg_cpu_physical_cores(root, &all4) == 2);
    CHECK(wg_cpu_physical_cores(root, &pair) == 1);  /* affinity: two siblings of one core */
    CHECK(wg_cpu_physical_cores(root, &cross) == 2); /* one thread of each core */
    CHECK(wg_cpu_physical_cores(root, &one) == 1);

    /* ranges ("0-1") and no SMT */
    fresh_tree();
    for (int c = 0; c < 8; c++) {
        char t[16];
        snprintf(t, sizeof t, "%d-%d\n", c / 2 * 2, c / 2 * 2 + 1);
        put(c, "thread_siblings_list", t);
    }
    cpu_set_t all8 = cpus_of((int[]){0, 1, 2, 3, 4, 5, 6, 7}, 8);
    CHECK(wg_cpu_physical_cores(root, &all8) == 4);
    fresh_tree();
    for (int c = 0; c < 8; c++) {
        char t[16];
        snprintf(t, sizeof t, "%d\n", c);
        put(c, "thread_siblings_list", t);
    }
    CHECK(wg_cpu_physical_cores(root, &all8) == 8);

    /* no siblings list: (package, core id); core ids repeat across the two packages */
    fresh_tree();
    for (int c = 0; c < 8; c++) {
        char t[16];
        snprintf(t, sizeof t, "%d\n", c % 2);
        put(c, "core_id", t);
        snprintf(t, sizeof t, "%d\n", c / 4);
        put(c, "physical_package_id", t);
    }
    CHECK(wg_cpu_physical_cores(root, &all8) == 4);

    /* a tree that does not say: a CPU without topology, empty or malformed files */
    CHECK(wg_cpu_physical_cores(root, &(cpu_set_t){0}) == 0); /* no CPUs at all */
    cpu_set_t nine = cpus_of((int[]){0, 1, 2, 3, 4, 5, 6, 7, 8}, 9);
    CHECK(wg_cpu_physical_cores(root, &nine) == 0);
    const char *bad[] = {"", "x\n", "-1\n", "3x\n", "99999999999999999999\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fresh_tree();
        put(0, "thread_siblings_list", "0\n");
        put(1, "thread_siblings_list", bad[i]);
        cpu_set_t two = cpus_of((int[]){0, 1}, 2);
        CHECK_MSG(wg_cpu_physical_cores(root, &two) == 0, "siblings list \"%s\" was taken", bad[i]);
    }
    CHECK(wg_cpu_physical_cores("no/such/dir", &all4) == 0);
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);

    /* this machine: between 1 and the CPUs this process may use */
    cpu_set_t mine;
    CPU_ZERO(&mine);
    CHECK(sched_getaffinity(0, sizeof mine, &mine) == 0);
    int t = wg_cpu_default_threads();
    CHECK_MSG(t >= 1 && t <= CPU_COUNT(&mine), "default threads %d of %d CPUs", t, CPU_COUNT(&mine));
    /* pinned to one CPU (as by taskset), the default is one thread */
    cpu_set_t first;
    CPU_ZERO(&first);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &mine)) {
            CPU_SET(c, &first);
            break;
        }
    CHECK(sched_setaffinity(0, sizeof first, &first) == 0);
    CHECK(wg_cpu_default_threads() == 1);
    CHECK(sched_setaffinity(0, sizeof mine, &mine) == 0);
    CHECK_DONE();
}
