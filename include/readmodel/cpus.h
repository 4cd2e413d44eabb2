/*
 * How many CPUs this process may actually use, for the default of
 * --workers: the CPUs of its affinity mask (sched_getaffinity: taskset,
 * cpuset, a Kubernetes static CPU manager), capped by the CPU quota of its
 * cgroup and every ancestor (cgroup v2 cpu.max, or v1 cpu.cfs_quota_us over
 * cpu.cfs_period_us; a Kubernetes CPU limit), the quota rounded up, and at
 * least 1. A node's core count is the wrong default in a container: with a
 * limit of 2 CPUs on a 64-core node, 64 workers would be throttled.
 *
 * Thread-safety: both functions only read files and are thread-safe.
 * Errors: a file missing or unreadable, or a malformed value, means "no
 * limit there"; they never fail.
 */
#ifndef READMODEL_CPUS_H
#define READMODEL_CPUS_H

/* The CPUs this process may use (>= 1). */
int rm_cpus_available(void);

/* The same computation with the affinity count given and the files read
 * below root ("" for the real /proc and /sys; tests pass a directory
 * holding proc/self/cgroup and sys/fs/cgroup/...). Returns
 * min(affinity, ceil(quota / period) of the tightest cgroup), at least 1. */
int rm_cpus_limit(const char *root, int affinity);

#endif
