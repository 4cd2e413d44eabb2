/*
 * Allocation-failure injection for the test_alloc_fail* programs: malloc,
 * calloc, realloc, strdup and strndup are wrapped (link with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup:
 * only calls from rmcore and the test's objects go through the wrappers,
 * not those of librdkafka, hiredis or CRoaring). Once armed with N, the Nth
 * counted allocation fails (returns NULL). Only the allocations of threads
 * that asked to be counted, and not while they pause, are counted.
 *
 * Thread-safe: the count and the armed number are atomic; the counting and
 * pausing flags are per thread.
 */
#ifndef RM_TEST_ALLOC_FAIL_H
#define RM_TEST_ALLOC_FAIL_H

#include <stdbool.h>

/* Counts from 0 again and makes the nth counted allocation fail (n 0: none
 * fails, the allocations are only counted); disarm stops counting and
 * failing. */
void alloc_fail_arm(long n);
void alloc_fail_disarm(void);
/* Whether the armed allocation was reached (and failed) since arming. */
bool alloc_fail_hit(void);
/* Allocations counted since arming. */
long alloc_fail_counted(void);
/* Whether the calling thread's allocations count (off by default). */
void alloc_fail_count_thread(bool on);
/* Pauses (true) or resumes counting in the calling thread, e.g. under a
 * function that aborts on allocation failure by contract. */
void alloc_fail_pause_thread(bool paused);

#endif
