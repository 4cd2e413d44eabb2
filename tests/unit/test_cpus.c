/*
 * The default of --workers (src/common/cpus.c): the affinity count capped by
 * the cgroup CPU quota, read from fake cgroup trees (v2 cpu.max, v1
 * cpu.cfs_quota_us/cpu.cfs_period_us, limits on an ancestor, "max" and -1
 * for none, malformed files, a container's namespaced "/" path), and the
 * real affinity mask narrowed with sched_setaffinity.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "readmodel/cpus.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];

/* Writes text to root/rel, creating its directories. */
static void put(const char *rel, const char *text) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state) {
    (void)state;
    snprintf(root, sizeof(root), "/tmp/rm-cpus-XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_no_cgroup_files(void **state) {
    (void)state;
    assert_int_equal(rm_cpus_limit(root, 4), 4);
    assert_int_equal(rm_cpus_limit(root, 0), 1); /* at least 1 */
}

static void test_v2_quota_rounded_up(void **state) {
    (void)state;
    put("proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
    put("sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "150000 100000\n");
    assert_int_equal(rm_cpus_limit(root, 8), 2); /* 1.5 CPUs: 2 workers */
    assert_int_equal(rm_cpus_limit(root, 1), 1); /* affinity is tighter */
    put("sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "max 100000\n");
    assert_int_equal(rm_cpus_limit(root, 8), 8);
    /* a limit on an ancestor (the pod) binds the container */
    put("sys/fs/cgroup/kubepods/pod1/cpu.max", "50000 100000\n");
    assert_int_equal(rm_cpus_limit(root, 8), 1);
    put("sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "300000 100000\n");
    assert_int_equal(rm_cpus_limit(root, 8), 1); /* the tightest wins */
    put("sys/fs/cgroup/kubepods/pod1/cpu.max", "max 100000\n");
    assert_int_equal(rm_cpus_limit(root, 8), 3);
    put("sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "garbage\n");
    assert_int_equal(rm_cpus_limit(root, 8), 8);
}

static void test_v2_namespaced_root(void **state) {
    (void)state;
    /* a container with its own cgroup namespace sees "/" and its files at
     * the mount point */
    put("proc/self/cgroup", "0::/\n");
    put("sys/fs/cgroup/cpu.max", "200000 100000\n");
    assert_int_equal(rm_cpus_limit(root, 16), 2);
}

static void test_v1_cfs_quota(void **state) {
    (void)state;
    put("proc/self/cgroup", "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n");
    put("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "250000\n");
    put("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
    assert_int_equal(rm_cpus_limit(root, 8), 3);
    put("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
    assert_int_equal(rm_cpus_limit(root, 8), 8);
    /* a "cpuacct" line alone is not the cpu controller */
    put("proc/self/cgroup", "2:cpuacct:/x\n1:cpu:/\n0::/\n");
    put("sys/fs/cgroup/cpuacct/x/cpu.cfs_quota_us", "100000\n");
    put("sys/fs/cgroup/cpuacct/x/cpu.cfs_period_us", "100000\n");
    assert_int_equal(rm_cpus_limit(root, 8), 8);
    put("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "100000\n");
    put("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
    assert_int_equal(rm_cpus_limit(root, 8), 1);
}

/* The real mask: narrowed to one CPU, the default follows. */
static void test_real_affinity(void **state) {
    (void)state;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int n = rm_cpus_available();
    assert_true(n >= 1 && n <= online);
    cpu_set_t saved, one;
    assert_int_equal(sched_getaffinity(0, sizeof(saved), &saved), 0);
    int first = 0;
    while (!CPU_ISSET(first, &saved))
        first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
    assert_int_equal(rm_cpus_available(), 1);
    assert_int_equal(sched_setaffinity(0, sizeof(saved), &saved), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_cgroup_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2_quota_rounded_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2_namespaced_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_cfs_quota, setup, teardown),
        cmocka_unit_test(test_real_affinity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
