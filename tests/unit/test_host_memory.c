/* The host memory probe: parsers of /proc/meminfo and of cgroup v1/v2 files, the real
 * query, and RLIMIT_AS as the smallest limit (in a child process). */
#include "model/host_memory.h"

#include "check.h"

#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_meminfo(void) {
    uint64_t v = 0;
    CHECK(wg_meminfo_available("MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   22000000 kB\n", &v));
    CHECK(v == 22000000ull * 1024);
    CHECK(!wg_meminfo_available("MemTotal: 1 kB\nMemFree: 1 kB\n", &v));
    CHECK(!wg_meminfo_available("XMemAvailable: 5 kB\n", &v));
    CHECK(!wg_meminfo_available("MemAvailable: lots\n", &v));
    CHECK(!wg_meminfo_available("", &v) && !wg_meminfo_available(NULL, &v));
}

static void test_cgroup(void) {
    uint64_t v = 0;
    /* v2: a limit, usage, reclaimable page cache */
    CHECK(wg_cgroup_available("8589934592\n", "4294967296\n", "anon 100\nfile 2000\ninactive_file 1073741824\n", &v));
    CHECK(v == 8589934592ull - (4294967296ull - 1073741824ull));
    CHECK(!wg_cgroup_available("max\n", "4294967296\n", NULL, &v));
    /* v1: the hierarchical count wins; "no limit" is a huge number */
    CHECK(wg_cgroup_available("1000000\n", "900000\n", "inactive_file 1\ntotal_inactive_file 400000\n", &v));
    CHECK(v == 500000);
    CHECK(!wg_cgroup_available("9223372036854771712\n", "4348198912\n", NULL, &v));
    /* over the limit (usage counted above it) and inactive above usage */
    CHECK(wg_cgroup_available("100\n", "200\n", NULL, &v) && v == 0);
    CHECK(wg_cgroup_available("100\n", "50\n", "inactive_file 80\n", &v) && v == 100);
    CHECK(!wg_cgroup_available("", "1", NULL, &v) && !wg_cgroup_available("1", "x", NULL, &v));
}

static void test_format(void) {
    char b[32];
    CHECK(!strcmp(wg_format_bytes(17, b, sizeof b), "17 bytes"));
    CHECK(!strcmp(wg_format_bytes(1536, b, sizeof b), "1.5 KiB"));
    CHECK(!strcmp(wg_format_bytes(274877906944ull, b, sizeof b), "256.0 GiB"));
    CHECK(!strcmp(wg_format_bytes(UINT64_MAX, b, sizeof b), "16384.0 PiB"));
}

static void test_query(void) {
    wg_host_memory m = wg_host_memory_query();
    CHECK_MSG(m.available > 0 && m.available < UINT64_MAX && m.limit[0], "available %llu (%s)",
              (unsigned long long)m.available, m.limit);

    /* A child lowers RLIMIT_AS to its address space in use plus 64 MiB: that is the limit. */
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = fopen("/proc/self/statm", "r");
        unsigned long long pages = 0;
        if (!f || fscanf(f, "%llu", &pages) != 1) _exit(2);
        fclose(f);
        const uint64_t used = pages * (uint64_t)sysconf(_SC_PAGESIZE), room = 64ull << 20;
        struct rlimit rl = {(rlim_t)(used + room), RLIM_INFINITY};
        if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(3);
        wg_host_memory r = wg_host_memory_query();
        _exit(strcmp(r.limit, "RLIMIT_AS") == 0 && r.available <= room ? 0 : 4);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}

int main(void) {
    test_meminfo();
    test_cgroup();
    test_format();
    test_query();
    CHECK_DONE();
}
