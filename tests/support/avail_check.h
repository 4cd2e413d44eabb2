/*
 * A cmocka assertion shared by the sink tests: two projection states are
 * the same when their whole encodings (canonical bytes, rm_avail_encode)
 * are equal. Header-only; include after <cmocka.h>.
 */
#ifndef RM_TEST_AVAIL_CHECK_H
#define RM_TEST_AVAIL_CHECK_H

#include "readmodel/availability.h"

#include <stdlib.h>

/* Fails the running test unless a and b encode to the same bytes. */
static inline void assert_same_state(const rm_avail_t *a, const rm_avail_t *b) {
    char *x, *y;
    size_t lx, ly;
    assert_int_equal(rm_avail_encode(a, &x, &lx), 0);
    assert_int_equal(rm_avail_encode(b, &y, &ly), 0);
    assert_int_equal(lx, ly);
    assert_memory_equal(x, y, lx);
    free(x);
    free(y);
}

#endif
