/*
 * Allocation-failure injection into one serve flush cycle: malloc, calloc,
 * realloc, strdup and strndup are wrapped (tests/support/alloc_fail.c;
 * -Wl,--wrap, so only calls from rmcore and this test's objects, not
 * librdkafka's), and the Nth allocation of a worker
 * (its init, one batch through it with the fake sink, and its stop) fails,
 * for N = 1, 2, ... until a run never reaches N. Each run must not crash or
 * leak (ASan build), must either complete (every partition checkpointed at
 * its end, the store equal to the events) or report failure (init returned
 * -1, or the shared failed flag), and must never store a partial
 * practitioner or a checkpoint past events not stored.
 *
 * rm_avail_apply aborts on allocation failure by contract (availability.h:
 * never a half-applied event); allocations under it are not counted or
 * failed here (it is wrapped too, to know when a thread is inside it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "alloc_fail.h"
#include "fake_sink.h"
#include "readmodel/log.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the allocator ---- */

rm_apply_t __real_rm_avail_apply(rm_avail_t *st, const rm_event_t *ev);
rm_apply_t __wrap_rm_avail_apply(rm_avail_t *st, const rm_event_t *ev);

rm_apply_t __wrap_rm_avail_apply(rm_avail_t *st, const rm_event_t *ev) {
    alloc_fail_pause_thread(true);
    rm_apply_t r = __real_rm_avail_apply(st, ev);
    alloc_fail_pause_thread(false);
    return r;
}

static void *counted_worker(void *arg) {
    alloc_fail_count_thread(true);
    return rm_worker_main(arg);
}

/* ---- one flush cycle per N ---- */

static rm_mock_kafka_t *mk;
static fk_t T;

static int group_setup(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    rm_log_set_level(RM_LOG_ERROR);
    mk = rm_mock_kafka_start(1);
    return mk ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    rm_mock_kafka_stop(mk);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    alloc_fail_disarm();
    fk_teardown(&T);
    return 0;
}

static bool done_or_failed(fk_t *t) {
    return atomic_load(&t->sh.failed) || fk_caught_up(t);
}

/* No partial practitioner: each stored one is exactly its own events up
 * to its stored fence (the reference of those events, day by day). */
static int stored_matches_fences(fk_t *t) {
    int bad = 0;
    rm_decoder_t *dec = rm_decoder_new();
    assert_non_null(dec);
    fake_sink_lock(t->fs);
    for (int j = 0; j < t->fs->npr; j++) {
        fake_pract_t *p = &t->fs->pr[j];
        rm_avail_t ref, got;
        rm_avail_init(&ref);
        rm_avail_init(&got);
        int64_t last = -1;
        for (size_t i = 0; i < t->produced; i++) {
            fk_msg_t *x = &t->msgs[i];
            if (!x->valid || strcmp(x->pid, p->pid) != 0 || x->partition != p->partition ||
                x->offset > p->fence)
                continue;
            rm_event_t ev;
            rm_reject_t why;
            rm_decode(dec, x->key, x->klen, x->val, x->vlen, &ev, &why);
            __real_rm_avail_apply(&ref, &ev);
            last = x->offset;
        }
        bool ok = last == p->fence && p->state &&
                  rm_avail_decode(&got, p->state, p->state_len) == 0 && got.ndays == ref.ndays;
        for (uint32_t d = 0; ok && d < ref.ndays; d++) {
            uint8_t a[RM_DAY_BYTES], b[RM_DAY_BYTES];
            unsigned na = rm_avail_day(&ref, ref.days[d].day, a);
            ok = na == rm_avail_day(&got, ref.days[d].day, b) && (!na || !memcmp(a, b, sizeof(a)));
        }
        if (!ok) {
            fprintf(stderr, "alloc: %s stored at fence %lld is not its events up to there\n",
                    p->pid, (long long)p->fence);
            bad++;
        }
        rm_avail_free(&ref);
        rm_avail_free(&got);
    }
    fake_sink_unlock(t->fs);
    rm_decoder_free(dec);
    return bad;
}

/* One worker, one batch (init, the cycle, the stop) with the Nth counted
 * allocation failing. Returns whether the Nth allocation was reached. */
static bool run_cycle(long n, long *allocations) {
    char name[32]; /* a fresh topic and group each run */
    snprintf(name, sizeof(name), "af-%ld", n);
    assert_int_equal(fk_setup(&T, mk, name, 2, 6, 0, 1000), 0);
    assert_int_equal(fk_produce(&T, 0, T.n), 0);
    alloc_fail_arm(n);
    alloc_fail_count_thread(true); /* rm_worker_init runs on this thread */
    T.inited[0] = true;
    int init = rm_worker_init(&T.w[0], 0, &T.sh);
    alloc_fail_count_thread(false);
    bool completed = false;
    if (init == 0) {
        assert_int_equal(pthread_create(&T.w[0].thread, NULL, counted_worker, &T.w[0]), 0);
        T.running[0] = true;
        assert_true(fk_wait(&T, done_or_failed, 30000));
        completed = fk_caught_up(&T);
    }
    fk_workers_stop(&T); /* the stop path is counted too */
    alloc_fail_disarm();
    bool reached = alloc_fail_hit();
    *allocations = alloc_fail_counted();

    /* Completed, or reported failure; never a partial or uncovered store. */
    bool reported = init != 0 || atomic_load(&T.sh.failed);
    if (!completed && !reported)
        fail_msg("N=%ld: neither completed nor reported a failure", n);
    if (completed) {
        assert_int_equal(fk_compare(&T, NULL), 0);
        assert_int_equal(fk_applied_wrong(&T), 0);
    }
    fake_sink_lock(T.fs);
    unsigned violations = T.fs->cp_violations; /* a checkpoint past unstored events */
    fake_sink_unlock(T.fs);
    assert_int_equal(violations, 0);
    assert_int_equal(stored_matches_fences(&T), 0);
    if (!reached) {
        assert_true(completed);
        assert_false(reported);
    }
    fk_teardown(&T);
    return reached;
}

/* Shard K of M (the program's argument "K/M", default 0/1) fails the
 * allocations N = K, K+M, K+2M, ... (N >= 1): CTest runs M shards side by
 * side, since each cycle spends its time waiting for the mock's group join. */
static long shard_k, shard_m = 1;

static void test_worker_cycle(void **state) {
    (void)state;
    long total = 0, a;
    run_cycle(0, &total); /* calibration: how many allocations a cycle makes */
    fprintf(stderr, "alloc: a flush cycle makes %ld counted allocations\n", total);
    assert_true(total > 0);
    long first = shard_k > 0 ? shard_k : shard_m, n = first;
    while (n <= total + 50 && run_cycle(n, &a))
        n += shard_m;
    fprintf(stderr, "alloc: N = %ld..%ld (step %ld) failed in turn, N = %ld was never reached\n",
            first, n - shard_m, shard_m, n);
    assert_true(n > total / 2);
}

int main(int argc, char **argv) {
    if (argc > 1 && (sscanf(argv[1], "%ld/%ld", &shard_k, &shard_m) != 2 || shard_m < 1 ||
                     shard_k < 0 || shard_k >= shard_m)) {
        fprintf(stderr, "usage: %s [K/M]  (shard K of M, 0 <= K < M)\n", argv[0]);
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_worker_cycle, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
