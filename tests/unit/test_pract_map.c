/*
 * The practitioner cache (src/consumers/pract_map.c): open addressing with
 * linear probing. Lookups after additions, removals and evictions (with
 * backward-shift deletion, which keeps probe runs unbroken), and allocation
 * failures: calloc is wrapped for this executable (-Wl,--wrap=calloc) so a
 * chosen call fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../src/consumers/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The calloc call fail_calloc_at calls from now fails (-1: none). */
static int fail_calloc_at = -1;

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);

void *__wrap_calloc(size_t n, size_t size) {
    if (fail_calloc_at >= 0 && fail_calloc_at-- == 0)
        return NULL;
    return __real_calloc(n, size);
}

static void pid_of(int i, char *out, size_t cap) {
    snprintf(out, cap, "pract-%d", i);
}

static pract_t *add(pract_map_t *m, int i) {
    char pid[32];
    pid_of(i, pid, sizeof(pid));
    return rm_pract_add(m, pid, strlen(pid));
}

static pract_t *find(pract_map_t *m, int i) {
    char pid[32];
    pid_of(i, pid, sizeof(pid));
    return rm_pract_find(m, pid, strlen(pid));
}

/* Every entry in the table is found through its own probe run, and count
 * is the number of entries. */
static void assert_consistent(pract_map_t *m) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->capacity; i++) {
        pract_t *p = m->slots[i];
        if (!p)
            continue;
        n++;
        assert_ptr_equal(rm_pract_find(m, p->pid, p->pid_len), p);
    }
    assert_int_equal(n, m->count);
}

static void test_add_find(void **state) {
    (void)state;
    pract_map_t m = {0};
    assert_null(find(&m, 1)); /* empty map, no table yet */
    for (int i = 0; i < 500; i++) {
        pract_t *p = add(&m, i);
        assert_non_null(p);
        assert_false(p->loaded);
        assert_int_equal(p->fence, -1);
    }
    assert_int_equal(m.count, 500);
    assert_true(m.capacity >= 1000); /* at most half full */
    for (int i = 0; i < 500; i++) {
        pract_t *p = find(&m, i);
        assert_non_null(p);
        char pid[32];
        pid_of(i, pid, sizeof(pid));
        assert_int_equal(p->pid_len, strlen(pid));
        assert_memory_equal(p->pid, pid, p->pid_len);
    }
    assert_null(find(&m, 500));
    assert_null(rm_pract_add(&m, "", 0));
    assert_consistent(&m);
    rm_pract_map_free(&m);
    assert_int_equal(m.capacity, 0);
}

/* Removing entries one by one, in an order unrelated to their slots, keeps
 * every other entry reachable (runs of colliding entries included: 31 in
 * a table of 64). */
static void test_remove_backward_shift(void **state) {
    (void)state;
    pract_map_t m = {0};
    for (int i = 0; i < 31; i++)
        assert_non_null(add(&m, i));
    assert_int_equal(m.capacity, 64);
    for (int k = 0; k < 31; k++) {
        int i = (k * 7) % 31; /* 7 and 31 are coprime: each once */
        pract_t *p = find(&m, i);
        assert_non_null(p);
        rm_pract_remove(&m, p);
        assert_null(find(&m, i));
        assert_consistent(&m);
        for (int j = 0; j < 31; j++) {
            bool removed = false;
            for (int q = 0; q <= k; q++)
                removed |= j == (q * 7) % 31;
            if (!removed)
                assert_non_null(find(&m, j));
        }
    }
    assert_int_equal(m.count, 0);
    rm_pract_map_free(&m);
}

/* Eviction frees clean entries not used in the current batch, never dirty
 * or current ones, down to the limit, and leaves the rest reachable. */
static void test_evict(void **state) {
    (void)state;
    pract_map_t m = {0};
    for (int i = 0; i < 200; i++) {
        pract_t *p = add(&m, i);
        p->dirty = i % 3 == 0;
        p->last_used = i % 5 == 0 ? 10 : 1;
    }
    rm_pract_evict(&m, 500, 10); /* under the limit: nothing */
    assert_int_equal(m.count, 200);
    rm_pract_evict(&m, 0, 10);
    assert_consistent(&m);
    for (int i = 0; i < 200; i++) {
        bool keep = i % 3 == 0 || i % 5 == 0;
        if (keep)
            assert_non_null(find(&m, i));
        else
            assert_null(find(&m, i));
    }
    rm_pract_map_free(&m);

    /* Down to a limit: stops there. */
    for (int i = 0; i < 200; i++)
        add(&m, i)->last_used = 1;
    rm_pract_evict(&m, 50, 2);
    assert_int_equal(m.count, 50);
    assert_consistent(&m);
    rm_pract_map_free(&m);
}

/* Out of memory: removal and eviction need none and keep every live entry
 * reachable; an addition that cannot grow the table or allocate its entry
 * returns NULL and leaves the map as it was. */
static void test_allocation_failure(void **state) {
    (void)state;
    pract_map_t m = {0};
    for (int i = 0; i < 32; i++) /* the table is full: the next add grows it */
        assert_non_null(add(&m, i));
    assert_int_equal(m.capacity, 64);

    fail_calloc_at = 0;
    rm_pract_remove(&m, find(&m, 3));
    fail_calloc_at = -1;
    assert_null(find(&m, 3));
    for (int i = 0; i < 32; i++)
        if (i != 3)
            assert_non_null(find(&m, i));
    assert_consistent(&m);

    for (int i = 0; i < 32; i++)
        if (i != 3)
            find(&m, i)->last_used = i < 16 ? 1 : 5;
    fail_calloc_at = 0;
    rm_pract_evict(&m, 0, 5);
    fail_calloc_at = -1;
    assert_int_equal(m.count, 16);
    for (int i = 16; i < 32; i++)
        assert_non_null(find(&m, i));
    assert_consistent(&m);

    for (int i = 100; m.count < 32; i++)
        assert_non_null(add(&m, i));
    uint32_t cap = m.capacity, count = m.count;
    for (int at = 0; at < 2; at++) { /* the new table, then the new entry */
        fail_calloc_at = at;
        assert_null(add(&m, 1000));
        fail_calloc_at = -1;
        assert_int_equal(m.count, count);
        assert_null(find(&m, 1000));
        for (int i = 16; i < 32; i++)
            assert_non_null(find(&m, i));
        assert_consistent(&m);
    }
    assert_true(m.capacity == cap || m.capacity == 2 * cap);
    assert_non_null(add(&m, 1000));
    assert_int_equal(m.count, count + 1);
    assert_consistent(&m);
    rm_pract_map_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_find),
        cmocka_unit_test(test_remove_backward_shift),
        cmocka_unit_test(test_evict),
        cmocka_unit_test(test_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
