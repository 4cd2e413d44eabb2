/*
 * CPUs this process may use (cpus.h). The cgroup of the process comes from
 * /proc/self/cgroup: the "0::/path" line (v2) or the line whose controllers
 * include "cpu" (v1). Its quota is read at the usual mount points
 * (/sys/fs/cgroup for v2; /sys/fs/cgroup/cpu, cpu,cpuacct or cpuacct,cpu
 * for v1), in that cgroup's directory and every ancestor's up to the
 * mount, because a limit set on a parent (a Kubernetes pod's) binds its
 * children; the tightest wins. Inside a container with its own cgroup
 * namespace the path is "/" and the container's own files are at the
 * mount point, which the walk reads too.
 */
#include "readmodel/cpus.h"

#include <math.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole (small) file path, NUL-terminated, into buf; false when absent. */
static bool read_small(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}

/* CPUs allowed by the quota files of dir; 0: none (no file, "max", -1). */
static double quota_of(const char *dir, bool v2) {
    char path[12608], buf[128];
    long long quota, period;
    if (v2) {
        snprintf(path, sizeof(path), "%s/cpu.max", dir);
        if (!read_small(path, buf, sizeof(buf)) || sscanf(buf, "%lld %lld", &quota, &period) != 2)
            return 0; /* "max 100000" fails the first %lld: no limit */
    } else {
        snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir);
        if (!read_small(path, buf, sizeof(buf)) || sscanf(buf, "%lld", &quota) != 1)
            return 0;
        snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir);
        if (!read_small(path, buf, sizeof(buf)) || sscanf(buf, "%lld", &period) != 1)
            return 0;
    }
    return quota > 0 && period > 0 ? (double)quota / (double)period : 0;
}

/* The tightest quota from mount/cgroup up to mount; 0: none. */
static double walk_up(const char *mount, const char *cgroup, bool v2) {
    char dir[12544];
    snprintf(dir, sizeof(dir), "%s%s", mount, strcmp(cgroup, "/") == 0 ? "" : cgroup);
    size_t floor_len = strlen(mount);
    double best = 0;
    for (;;) {
        double q = quota_of(dir, v2);
        if (q > 0 && (best == 0 || q < best))
            best = q;
        char *slash = strrchr(dir, '/');
        if (strlen(dir) <= floor_len || !slash || (size_t)(slash - dir) < floor_len)
            break;
        *slash = '\0';
    }
    return best;
}

/* Whether the comma-separated controller list has "cpu". */
static bool has_cpu(const char *list, size_t len) {
    for (const char *p = list; p < list + len;) {
        size_t n = strcspn(p, ",:");
        if (n == 3 && strncmp(p, "cpu", 3) == 0)
            return true;
        p += n + 1;
    }
    return false;
}

int rm_cpus_limit(const char *root, int affinity) {
    char path[4200], cg[8192];
    snprintf(path, sizeof(path), "%s/proc/self/cgroup", root);
    double quota = 0;
    if (read_small(path, cg, sizeof(cg))) {
        for (char *line = strtok(cg, "\n"); line; line = strtok(NULL, "\n")) {
            char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
            if (!c2)
                continue;
            bool v2 = c2 == c1 + 1 && strncmp(line, "0:", 2) == 0;
            if (!v2 && !has_cpu(c1 + 1, (size_t)(c2 - c1 - 1)))
                continue;
            const char *const mounts[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/cpu",
                                          "/sys/fs/cgroup/cpu,cpuacct",
                                          "/sys/fs/cgroup/cpuacct,cpu"};
            for (size_t m = v2 ? 0 : 1; m < (v2 ? 1 : 4); m++) {
                snprintf(path, sizeof(path), "%s%s", root, mounts[m]);
                double q = walk_up(path, c2 + 1, v2);
                if (q > 0 && (quota == 0 || q < quota))
                    quota = q;
            }
        }
    }
    int n = affinity > 0 ? affinity : 1;
    if (quota > 0 && (int)ceil(quota - 1e-9) < n)
        n = (int)ceil(quota - 1e-9);
    return n > 0 ? n : 1;
}

int rm_cpus_available(void) {
    int affinity = 0;
    for (int size = 1024; size <= 1 << 16 && affinity == 0; size *= 4) {
        cpu_set_t *set = CPU_ALLOC((size_t)size);
        if (!set)
            break;
        size_t bytes = CPU_ALLOC_SIZE((size_t)size);
        if (sched_getaffinity(0, bytes, set) == 0)
            affinity = CPU_COUNT_S(bytes, set);
        CPU_FREE(set);
    }
    return rm_cpus_limit("", affinity);
}
