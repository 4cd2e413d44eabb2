/*
 * Allocation-failure injection into the Redis rebuild's write phase: what a
 * rebuild does with the replayed practitioners against a real redis-server
 * (the SCAN of what Redis holds, the diff of each chunk, the forced
 * MULTI/EXEC writes, the leftovers that should not exist and their delete,
 * and --flush's delete of the whole model). The file under test is
 * included, so its static steps are called directly; malloc, calloc,
 * realloc, strdup and strndup are wrapped (tests/support/alloc_fail.c;
 * -Wl,--wrap: calls from this
 * object and from rmcore, not from hiredis or CRoaring).
 *
 * For N = 1, 2, ... the Nth allocation of the phase fails, until a run
 * never reaches N. Each run must not crash or leak (ASan build), must
 * report the failure or complete, and, when it completes, Redis must hold
 * exactly the model of the replayed practitioners (leftovers deleted,
 * wrong and missing days written). This is what found the uninitialised
 * key array and the NULL dereference in leftovers()/flush_model().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../src/admin/redis_rebuild.c"
#include "readmodel/date.h"
#include "alloc_fail.h"
#include "test_redis.h"

#include <hiredis/hiredis.h>
#include <stdatomic.h>

/* ---- the allocator ---- */

static void arm(long n) {
    alloc_fail_count_thread(true); /* the phase runs on this thread */
    alloc_fail_arm(n);
}

static void disarm(void) {
    alloc_fail_disarm();
}

/* ---- the fixture: Redis with a damaged model, practitioners replayed ---- */

#define NPRACT 40
#define DAYS   6

static rm_test_redis_t srv;
static redisContext *admin;
static uint16_t d0;

static int group_setup(void **state) {
    (void)state;
    rm_log_set_level(RM_LOG_ERROR);
    assert_true(rm_date_parse("2026-11-23", 10, &d0));
    if (rm_test_redis_start(&srv) != 0)
        return -1;
    admin = rm_test_redis_connect(&srv);
    return admin ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    redisFree(admin);
    rm_test_redis_destroy(&srv);
    return 0;
}

static rm_redis_sink_t *new_sink(void) {
    rm_redis_url_t u = {.socket_path = srv.sock};
    rm_redis_sink_t *s = rm_redis_sink_new(&u, "rm:");
    assert_non_null(s);
    assert_int_equal(rm_redis_sink_connect(s), RM_ERR_OK);
    return s;
}

static void publish(rm_avail_t *st, uint16_t day, uint16_t start, uint16_t n) {
    rm_event_t e;
    memset(&e, 0, sizeof(e));
    e.type = RM_EV_SLOTS_PUBLISHED;
    e.slots = (rm_slots_t){day, start, n};
    rm_avail_apply(st, &e);
}

/* The replayed practitioners: p-0 .. p-(NPRACT-1), each with some free
 * slots on each of DAYS days, in one map as a finished partition. */
static void replayed(pract_map_t *map, pract_t **all) {
    memset(map, 0, sizeof(*map));
    for (int i = 0; i < NPRACT; i++) {
        char pid[16];
        int len = snprintf(pid, sizeof(pid), "p-%d", i);
        pract_t *p = rm_pract_add(map, pid, (size_t)len);
        assert_non_null(p);
        for (int d = 0; d < DAYS; d++)
            publish(&p->st, (uint16_t)(d0 + d), (uint16_t)(i % 200), (uint16_t)(1 + (i + d) % 40));
        p->fence = 100 + i;
        p->fence_partition = 0;
        all[i] = p;
    }
}

/* Redis as corruption leaves it: the right model for most practitioners,
 * then a deleted day, wrong bits, a day that should not exist, a foreign
 * key and a practitioner the log does not know. */
static void damaged_model(rm_redis_sink_t *s, pract_t **all) {
    freeReplyObject(redisCommand(admin, "FLUSHALL"));
    for (int i = 0; i < NPRACT; i++) {
        rm_avail_mark_all_dirty(&all[i]->st);
        rm_sink_item_t it = {.pid = all[i]->pid,
                             .pid_len = all[i]->pid_len,
                             .st = &all[i]->st,
                             .partition = 0,
                             .fence = all[i]->fence,
                             .force = true};
        assert_int_equal(rm_redis_sink_flush(s, &it, 1), RM_ERR_OK);
    }
    freeReplyObject(redisCommand(admin, "DEL rm:avail:{p-1}:2026-11-24"));
    freeReplyObject(redisCommand(admin, "SETRANGE rm:avail:{p-2}:2026-11-25 0 %b", "\xff\xff", 2));
    freeReplyObject(redisCommand(admin, "SET rm:avail:{p-3}:2026-12-30 %b", "\x01", 1));
    freeReplyObject(redisCommand(admin, "SET rm:avail:not-a-model-key x"));
    freeReplyObject(redisCommand(admin, "SET rm:avail:{ghost}:2026-11-23 x"));
    freeReplyObject(redisCommand(admin, "HSET rm:state:{ghost} p 0 f 7"));
}

/* Redis holds exactly the model of the replayed practitioners. */
static void assert_model(pract_t **all) {
    redisReply *r = redisCommand(admin, "KEYS rm:avail:*");
    long want = 0;
    for (int i = 0; i < NPRACT; i++) {
        uint32_t pos = 0;
        uint8_t day[RM_DAY_BYTES];
        for (int d = 0; d < DAYS; d++)
            want += rm_avail_day_next(&all[i]->st, &pos, (uint16_t)(d0 + d), day) > 0;
    }
    assert_int_equal((long)r->elements, want);
    freeReplyObject(r);
    r = redisCommand(admin, "EXISTS rm:state:{ghost} rm:avail:not-a-model-key");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    r = redisCommand(admin, "GET rm:avail:{p-2}:2026-11-25");
    uint8_t day[RM_DAY_BYTES];
    uint32_t pos = 0;
    rm_avail_day_next(&all[2]->st, &pos, (uint16_t)(d0 + 2), day);
    assert_int_equal(r->len, RM_DAY_BYTES);
    assert_memory_equal(r->str, day, RM_DAY_BYTES);
    freeReplyObject(r);
}

/* One write phase: scan, diff and write the chunk, delete the leftovers.
 * 0 when it completed, -1 when it reported a failure. */
static int write_phase(rm_redis_sink_t *s, pract_t **all, diff_t *d) {
    existing_t ex;
    int rc = scan_existing(s, &ex);
    write_shared_t sh = {.ex = &ex};
    writer_t w = {.sh = &sh};
    if (rc == 0 && !write_chunk(&w, s, all, NPRACT))
        rc = -1;
    char **keys = NULL;
    size_t n = 0;
    if (rc == 0 && leftovers(&ex, &keys, &n, &w.d) < 0)
        rc = -1;
    assert_true(rc == 0 || (keys == NULL && n == 0));
    if (rc == 0 && rm_redis_del_many(s, keys, n) != RM_ERR_OK)
        rc = -1;
    free_keys(keys, n);
    existing_free(&ex);
    *d = w.d;
    return rc;
}

static void test_write_phase_allocation_failures(void **state) {
    (void)state;
    rm_redis_sink_t *s = new_sink();
    pract_map_t map;
    pract_t *all[NPRACT];
    replayed(&map, all);
    long n = 1, failures = 0;
    for (;; n++) {
        damaged_model(s, all);
        diff_t d;
        arm(n);
        int rc = write_phase(s, all, &d);
        disarm();
        if (!alloc_fail_hit()) { /* a run that never reached N: every allocation was tried */
            assert_int_equal(rc, 0);
            assert_model(all);
            assert_true(d.missing >= 1 && d.wrong >= 1 && d.extra >= 2);
            break;
        }
        if (rc == 0)
            assert_model(all); /* a failure handled inside (e.g. an example) */
        else
            failures++;
    }
    fprintf(stderr, "write phase: %ld allocations each failed in turn, %ld reported\n", n - 1,
            failures);
    assert_true(n > 10); /* the phase allocates: the test reached its paths */
    assert_true(failures > 0);
    rm_pract_map_free(&map);
    rm_redis_sink_free(s);
}

static void test_flush_model_allocation_failures(void **state) {
    (void)state;
    rm_redis_sink_t *s = new_sink();
    pract_map_t map;
    pract_t *all[NPRACT];
    replayed(&map, all);
    long n = 1;
    for (;; n++) {
        damaged_model(s, all);
        arm(n);
        int rc = flush_model(s);
        disarm();
        redisReply *r = redisCommand(admin, "DBSIZE");
        long left = r->integer;
        freeReplyObject(r);
        if (rc == 0)
            assert_int_equal(left, 0); /* --flush deleted the whole model */
        if (!alloc_fail_hit())
            break;
    }
    fprintf(stderr, "flush_model: %ld allocations each failed in turn\n", n - 1);
    assert_true(n > 3);
    rm_pract_map_free(&map);
    rm_redis_sink_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_phase_allocation_failures),
        cmocka_unit_test(test_flush_model_allocation_failures),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
