/*
 * Running chosen cases of a cmocka test program.
 *
 * Every multi-case test program takes an optional argument: a pattern
 * (fnmatch(3): * ? [..]) naming the cases to run. CTest registers each case
 * of the slow programs as its own test (tests/CMakeLists.txt,
 * rm_add_case_tests), so the wait-bound e2e cases run side by side; a
 * pattern that matches no case is an error, so such an entry can never pass
 * by running nothing.
 *
 * Header-only (one inline function); not thread-safe (call from main).
 */
#ifndef RM_TEST_CASES_H
#define RM_TEST_CASES_H

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs the cases of tests[0..n) whose names match argv[1] (all of them
 * when argc < 2) as one cmocka group. Returns cmocka's result (the number
 * of failed cases), or 2 when the pattern matches no case. */
static inline int rm_run_cases(const char *group, const struct CMUnitTest *tests, size_t n,
                               CMFixtureFunction setup, CMFixtureFunction teardown, int argc,
                               char **argv) {
    if (argc < 2)
        return _cmocka_run_group_tests(group, tests, n, setup, teardown);
    struct CMUnitTest *chosen = calloc(n ? n : 1, sizeof(*chosen));
    if (!chosen)
        return 2;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (fnmatch(argv[1], tests[i].name, 0) == 0)
            chosen[k++] = tests[i];
    int rc = 2;
    if (k == 0)
        fprintf(stderr, "%s: no case matches '%s'\n", group, argv[1]);
    else
        rc = _cmocka_run_group_tests(group, chosen, k, setup, teardown);
    free(chosen);
    return rc;
}

#define RM_RUN_CASES(tests, setup, teardown, argc, argv)                                           \
    rm_run_cases(#tests, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown, argc, argv)

#endif
