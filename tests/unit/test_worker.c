/*
 * The serve worker (src/consumers/worker.c) against a fake sink
 * (tests/support/fake_sink.c) and librdkafka's in-process mock cluster:
 * real workers on their own threads consume generated events, and the
 * fake store checks the exactly-once invariants of worker.c's header:
 *  a. flush then checkpoint: every valid event stored once, checkpoints at
 *     the end offsets, no checkpoint before the flush that covers it;
 *  b. flushes failing with RM_ERR_IO are retried and counted, nothing is
 *     checkpointed before the flush succeeds;
 *  c. a checkpoint CAS that finds the checkpoint moved resumes from the
 *     stored one (the events from there are read again, as duplicates);
 *  d. an item the sink did not write (stored fence differs) resyncs its
 *     partition, which converges;
 *  e. a held rebuild lease pauses the worker (no flush) until released,
 *     then it resumes from the checkpoints the rebuild wrote;
 *  f. take_moved (a new generation) drops the cache and resyncs;
 *  g. a second worker joining the group: the first flushes before giving
 *     partitions up; no event lost or stored twice, one writer at a time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cases.h"

#include "fake_sink.h"
#include "readmodel/log.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define WAIT_MS 20000

/* A timing seam on the worker's librdkafka calls (-Wl,--wrap, references
 * from rmcore only): with `linger` set, the collect loop's non-blocking
 * polls wait up to 300 ms for the next message, so under a steady trickle
 * the worker stays in the loop with messages in hand and a rebalance lands
 * there. Semantics are unchanged (a poll that waits is a later poll). The
 * wrap of rd_kafka_assign sees each eager revocation and records how many
 * messages that thread had collected in its current loop. */
rd_kafka_message_t *__real_rd_kafka_consumer_poll(rd_kafka_t *rk, int timeout_ms);
rd_kafka_resp_err_t __real_rd_kafka_assign(rd_kafka_t *rk,
                                           const rd_kafka_topic_partition_list_t *partitions);
static atomic_int linger;
static atomic_int revoked_holding;     /* most messages in hand at a revocation */
static atomic_int incremental_revokes; /* cooperative revocations seen */
static _Thread_local int in_hand;

rd_kafka_message_t *__wrap_rd_kafka_consumer_poll(rd_kafka_t *rk, int timeout_ms) {
    if (timeout_ms == 100) /* the first poll of a collect loop (worker.c) */
        in_hand = 0;
    rd_kafka_message_t *m = __real_rd_kafka_consumer_poll(
        rk, timeout_ms == 0 && atomic_load(&linger) ? 300 : timeout_ms);
    if (m && !m->err)
        in_hand++;
    return m;
}

rd_kafka_resp_err_t __wrap_rd_kafka_assign(rd_kafka_t *rk,
                                           const rd_kafka_topic_partition_list_t *partitions) {
    if (!partitions && in_hand > atomic_load(&revoked_holding))
        atomic_store(&revoked_holding, in_hand);
    return __real_rd_kafka_assign(rk, partitions);
}

/* The group rebalances incrementally (cooperative-sticky): a revocation
 * gives partitions up with rd_kafka_incremental_unassign. */
rd_kafka_error_t *
__real_rd_kafka_incremental_unassign(rd_kafka_t *rk,
                                     const rd_kafka_topic_partition_list_t *partitions);
rd_kafka_error_t *
__wrap_rd_kafka_incremental_unassign(rd_kafka_t *rk,
                                     const rd_kafka_topic_partition_list_t *partitions) {
    if (in_hand > atomic_load(&revoked_holding))
        atomic_store(&revoked_holding, in_hand);
    atomic_fetch_add(&incremental_revokes, 1);
    return __real_rd_kafka_incremental_unassign(rk, partitions);
}

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
    fk_teardown(&T);
    return 0;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#define STAT(field) fk_stat(&T.stats->field)

/* Everything stored is what the produced events define, each event once. */
static void assert_converged(fk_t *t) {
    assert_int_equal(fk_compare(t, NULL), 0);
    assert_int_equal(fk_applied_wrong(t), 0);
    fake_sink_lock(t->fs);
    unsigned violations = t->fs->cp_violations, leased = t->fs->flushes_while_leased;
    fake_sink_unlock(t->fs);
    assert_int_equal(violations, 0);
    assert_int_equal(leased, 0);
}

static void start_one(fk_t *t) {
    assert_int_equal(fk_worker_start(t, 0, rm_worker_main), 0);
}

static bool is_paused(fk_t *t) {
    return atomic_load(&t->stats->paused) == 1;
}

/* a. */
static void test_flush_then_checkpoint(void **state) {
    (void)state;
    assert_int_equal(fk_setup(&T, mk, "w-a", 3, 16, 0.05, 16), 0);
    assert_int_equal(fk_produce(&T, 0, T.n), 0);
    assert_true(T.n > T.nvalid); /* some invalid events too */
    start_one(&T);
    assert_true(fk_wait(&T, fk_caught_up, WAIT_MS));
    fk_workers_stop(&T);

    assert_int_equal(STAT(events[RM_RESULT_APPLIED]), T.nvalid);
    assert_int_equal(STAT(events[RM_RESULT_INVALID]) + STAT(events[RM_RESULT_IGNORED]) +
                         STAT(events[RM_RESULT_TOMBSTONE]),
                     T.n - T.nvalid);
    assert_int_equal(STAT(events[RM_RESULT_DUPLICATE]), 0);
    assert_int_equal(STAT(resets), 0);
    assert_int_equal(STAT(sink_errors), 0);
    assert_converged(&T);
    for (int p = 0; p < T.nparts; p++)
        assert_int_equal(T.fs->cp[p], T.end[p]);
    /* The call log: each partition's checkpoints ascend, each after a flush. */
    int64_t last[FAKE_MAX_PARTS];
    for (int p = 0; p < FAKE_MAX_PARTS; p++)
        last[p] = -1;
    size_t flushes = 0;
    for (size_t i = 0; i < T.fs->nlog; i++) {
        fake_call_t *c = &T.fs->log[i];
        if (c->kind == FAKE_CALL_FLUSH)
            flushes++;
        assert_int_not_equal(c->kind, FAKE_CALL_CAS_MOVED);
        if (c->kind == FAKE_CALL_CAS_OK) {
            assert_true(flushes > 0);
            assert_true(c->value > last[c->partition]);
            last[c->partition] = c->value;
        }
    }
    assert_int_equal(STAT(flushes), T.fs->flush_ok);
}

/* b. */
static void test_flush_retried(void **state) {
    (void)state;
    assert_int_equal(fk_setup(&T, mk, "w-b", 3, 16, 0, 16), 0);
    T.fs->fail_flush = 2;
    assert_int_equal(fk_produce(&T, 0, T.n), 0);
    start_one(&T);
    assert_true(fk_wait(&T, fk_caught_up, WAIT_MS));
    fk_workers_stop(&T);

    assert_int_equal(STAT(sink_error_kinds[RM_SINK_ERROR_FLUSH]), 2);
    assert_int_equal(STAT(sink_errors), 2);
    assert_int_equal(T.fs->flush_failed, 2);
    /* Nothing was checkpointed before the first flush that succeeded: the
     * log records successful calls only, and starts with that flush. */
    assert_true(T.fs->nlog > 0);
    assert_int_equal(T.fs->log[0].kind, FAKE_CALL_FLUSH);
    assert_int_equal(STAT(events[RM_RESULT_APPLIED]), T.nvalid);
    assert_int_equal(STAT(events[RM_RESULT_DUPLICATE]), 0);
    assert_int_equal(STAT(resets), 0);
    assert_converged(&T);
}

/* c. */
static void test_checkpoint_moved(void **state) {
    (void)state;
    assert_int_equal(fk_setup(&T, mk, "w-c", 3, 16, 0, 16), 0);
    T.fs->cas_move_armed = true;
    T.fs->cas_move_to = 2;
    assert_int_equal(fk_produce(&T, 0, T.n), 0);
    start_one(&T);
    assert_true(fk_wait(&T, fk_caught_up, WAIT_MS));
    fk_workers_stop(&T);

    assert_false(T.fs->cas_move_armed);
    assert_int_equal(T.fs->cas_moved, 1);
    assert_int_equal(STAT(resets), 1);
    /* Resumed from offset 2: everything in [2, the refused checkpoint) of
     * that partition was read again and found already stored. */
    size_t again = fk_count_valid(&T, T.fs->moved_partition, 2, T.fs->moved_next);
    assert_true(again > 0);
    assert_int_equal(STAT(events[RM_RESULT_DUPLICATE]), again);
    assert_int_equal(STAT(events[RM_RESULT_APPLIED]), T.nvalid);
    assert_converged(&T);
}

/* d. */
static void test_item_not_written(void **state) {
    (void)state;
    assert_int_equal(fk_setup(&T, mk, "w-d", 3, 16, 0, 16), 0);
    T.fs->refuse_items = 1;
    assert_int_equal(fk_produce(&T, 0, T.n), 0);
    start_one(&T);
    assert_true(fk_wait(&T, fk_caught_up, WAIT_MS));
    fk_workers_stop(&T);

    assert_int_equal(T.fs->refuse_items, 0);
    assert_true(T.fs->refused_pid[0] != '\0');
    assert_int_equal(STAT(resets), 1);
    /* The refused practitioner's events past its stored fence were applied
     * a second time after the resync; everyone else's were duplicates. */
    size_t extra = 0;
    for (size_t i = 0; i < T.produced; i++) {
        fk_msg_t *x = &T.msgs[i];
        extra += x->valid && strcmp(x->pid, T.fs->refused_pid) == 0 &&
                 x->partition == T.fs->refused_partition && x->offset > T.fs->refused_expect &&
                 x->offset <= T.fs->refused_fence;
    }
    assert_true(extra > 0);
    assert_int_equal(STAT(events[RM_RESULT_APPLIED]), T.nvalid + extra);
    assert_converged(&T);
}

/* d2. A practitioner whose stored state does not decode is quarantined:
 * its events are counted and skipped, its stored bytes are never written
 * over (a write from the retained log alone would replace its history with
 * less), and the partition goes on for everyone else. */
static void test_corrupt_state_quarantined(void **state) {
    (void)state;
    assert_int_equal(fk_setup(&T, mk, "w-q", 3, 16, 0, 16), 0);
    assert_int_equal(fk_produce(&T, 0, T.n), 0);
    const fk_msg_t *victim = NULL;
    for (size_t i = 0; i < T.produced && !victim; i++)
        if (T.msgs[i].valid)
            victim = &T.msgs[i];
    assert_non_null(victim);
    static const char garbage[] = "not a state";
    fake_sink_lock(T.fs);
    assert_int_equal(fake_sink_put(T.fs, victim->pid, victim->partition, victim->offset - 1,
                                   garbage, sizeof(garbage)),
                     0);
    fake_sink_unlock(T.fs);
    size_t of_victim = 0;
    for (size_t i = 0; i < T.produced; i++)
        of_victim += T.msgs[i].valid && strcmp(T.msgs[i].pid, victim->pid) == 0;
    start_one(&T);
    assert_true(fk_wait(&T, fk_caught_up, WAIT_MS));
    fk_workers_stop(&T);

    assert_true(STAT(corrupt_states) >= 1);
    assert_int_equal(STAT(events[RM_RESULT_QUARANTINED]), of_victim);
    assert_int_equal(STAT(events[RM_RESULT_APPLIED]), T.nvalid - of_victim);
    fake_sink_lock(T.fs);
    fake_pract_t *p = fake_sink_find(T.fs, victim->pid);
    bool untouched = p && p->state_len == sizeof(garbage) &&
                     memcmp(p->state, garbage, sizeof(garbage)) == 0 &&
                     p->fence == victim->offset - 1;
    fake_sink_unlock(T.fs);
    assert_true(untouched);
    /* everyone else converged: the victim is the one practitioner that
     * differs, and its events the only ones not stored once */
    assert_int_equal(fk_compare(&T, NULL), 1);
    assert_int_equal(fk_applied_wrong(&T), of_victim);
    for (int p2 = 0; p2 < T.nparts; p2++)
        assert_int_equal(T.fs->cp[p2], T.end[p2]);
}

/* e. */
static void test_lease_pauses(void **state) {
    (void)state;
    assert_int_equal(fk_setup(&T, mk, "w-e", 3, 16, 0, 16), 0);
    snprintf(T.fs->lease, sizeof(T.fs->lease), "rebuild-test-host-1");
    assert_int_equal(fk_produce(&T, 0, T.n), 0);
    start_one(&T);
    assert_true(fk_wait(&T, is_paused, WAIT_MS));
    sleep_ms(1500); /* a paused worker must stay idle: give it time not to */
    fake_sink_lock(T.fs);
    unsigned flush_calls = T.fs->flush_calls, cas_calls = T.fs->cas_calls;
    fake_sink_unlock(T.fs);
    assert_int_equal(flush_calls, 0);
    assert_int_equal(cas_calls, 0);
    assert_int_equal(STAT(events[RM_RESULT_APPLIED]), 0);

    /* The rebuild wrote everything below half of each partition. */
    int64_t limit[FAKE_MAX_PARTS];
    size_t after = 0;
    for (int p = 0; p < T.nparts; p++) {
        limit[p] = T.end[p] / 2;
        after += fk_count_valid(&T, p, limit[p], T.end[p]);
    }
    assert_int_equal(fk_snapshot(&T, limit), 0);
    fake_sink_lock(T.fs);
    T.fs->lease[0] = '\0';
    fake_sink_unlock(T.fs);
    assert_true(fk_wait(&T, fk_caught_up, WAIT_MS));
    fk_workers_stop(&T);

    assert_int_equal(atomic_load(&T.stats->paused), 0);
    assert_int_equal(STAT(resets), (unsigned long long)T.nparts);
    /* Resumed from the rebuild's checkpoints, not from where it paused. */
    assert_int_equal(STAT(events[RM_RESULT_APPLIED]), after);
    assert_int_equal(STAT(events[RM_RESULT_DUPLICATE]), 0);
    assert_converged(&T);
}

/* f. */
static void test_generation_moved(void **state) {
    (void)state;
    assert_int_equal(fk_setup(&T, mk, "w-f", 3, 16, 0, 16), 0);
    size_t half = T.n / 2;
    assert_int_equal(fk_produce(&T, 0, half), 0);
    start_one(&T);
    assert_true(fk_wait(&T, fk_caught_up, WAIT_MS));
    assert_int_equal(STAT(events[RM_RESULT_APPLIED]), fk_count_valid(&T, 0, 0, 1 << 30) +
                                                          fk_count_valid(&T, 1, 0, 1 << 30) +
                                                          fk_count_valid(&T, 2, 0, 1 << 30));

    /* A rebuild made a new generation holding the first quarter. */
    int64_t limit[FAKE_MAX_PARTS];
    size_t again = 0;
    for (int p = 0; p < T.nparts; p++) {
        limit[p] = T.end[p] / 2;
        again += fk_count_valid(&T, p, limit[p], T.end[p]);
    }
    assert_true(again > 0);
    assert_int_equal(fk_snapshot(&T, limit), 0);
    fake_sink_lock(T.fs);
    T.fs->moved = true;
    fake_sink_unlock(T.fs);
    assert_int_equal(fk_produce(&T, half, T.n), 0);
    assert_true(fk_wait(&T, fk_caught_up, WAIT_MS));
    fk_workers_stop(&T);

    assert_false(T.fs->moved);
    assert_int_equal(STAT(resets), (unsigned long long)T.nparts);
    /* The cache was dropped: what the new generation lacks was applied again. */
    assert_int_equal(STAT(events[RM_RESULT_APPLIED]), T.nvalid + again);
    assert_int_equal(STAT(events[RM_RESULT_DUPLICATE]), 0);
    assert_converged(&T);
}

static bool both_own(fk_t *t) {
    bool owns[2] = {false, false};
    for (int p = 0; p < t->nparts; p++) {
        int o = atomic_load(&t->stats->parts[p].owner);
        if (o == 1 || o == 2)
            owns[o - 1] = true;
    }
    return owns[0] && owns[1];
}

/* g. With `eager` the group uses range assignment (serve's default: every
 * partition is revoked from every member on each rebalance), where the
 * timing seam reliably catches a revocation with messages in hand;
 * otherwise cooperative-sticky (--kafka partition.assignment.strategy=...),
 * where only the partitions that move are revoked
 * (rd_kafka_incremental_unassign). The same invariants hold. */
static void revocation_case(bool eager) {
    assert_int_equal(fk_setup(&T, mk, eager ? "w-g-eager" : "w-g-coop", 4, 24, 0, 64), 0);
    static char *range_props[] = {"session.timeout.ms=6000", "heartbeat.interval.ms=200",
                                  "fetch.wait.max.ms=50", "partition.assignment.strategy=range"};
    static char *coop_props[] = {"session.timeout.ms=6000", "heartbeat.interval.ms=200",
                                 "fetch.wait.max.ms=50",
                                 "partition.assignment.strategy=cooperative-sticky"};
    T.cfg.kafka = eager ? range_props : coop_props;
    T.cfg.n_kafka = eager ? sizeof(range_props) / sizeof(range_props[0])
                          : sizeof(coop_props) / sizeof(coop_props[0]);
    atomic_store(&incremental_revokes, 0);
    size_t quarter = T.n / 4;
    assert_int_equal(fk_produce(&T, 0, quarter), 0);
    start_one(&T);
    assert_true(fk_wait(&T, fk_caught_up, WAIT_MS));
    /* The second worker joins while events trickle in and the first lingers
     * in its collect loop, so the rebalance revokes its partitions while it
     * holds messages it has not applied yet. */
    atomic_store(&revoked_holding, 0);
    atomic_store(&linger, 1);
    assert_int_equal(fk_worker_start(&T, 1, rm_worker_main), 0);
    size_t i = quarter;
    for (int rounds = 0; rounds < 1000 && !both_own(&T); rounds++) {
        size_t to = i + 1 < T.n * 3 / 4 ? i + 1 : i;
        assert_int_equal(fk_produce(&T, i, to), 0);
        i = to;
        sleep_ms(20);
    }
    atomic_store(&linger, 0);
    assert_true(both_own(&T));
    assert_int_equal(fk_produce(&T, i, T.n), 0);
    assert_true(fk_wait(&T, fk_caught_up, WAIT_MS));
    /* The path under test ran: a revocation with messages in hand (eager),
     * an incremental revocation (cooperative). */
    if (eager)
        assert_true(atomic_load(&revoked_holding) > 0);
    else
        assert_true(atomic_load(&incremental_revokes) > 0);
    fk_workers_stop(&T);

    assert_int_equal(STAT(events[RM_RESULT_APPLIED]), T.nvalid);
    assert_int_equal(STAT(events[RM_RESULT_DUPLICATE]), 0);
    assert_int_equal(STAT(resets), 0);
    assert_converged(&T);
    unsigned switches = 0;
    for (int p = 0; p < T.nparts; p++) {
        assert_int_equal(T.fs->owner_returns[p], 0); /* no partition went back */
        switches += T.fs->owner_switches[p];
    }
    assert_true(switches > 0); /* the second worker wrote partitions the first had */
    assert_true((T.fs->writers[0] | T.fs->writers[1] | T.fs->writers[2] | T.fs->writers[3]) == 3u);
}

static void test_revocation_eager(void **state) {
    (void)state;
    revocation_case(true);
}

static void test_revocation_cooperative(void **state) {
    (void)state;
    revocation_case(false);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_flush_then_checkpoint, teardown),
        cmocka_unit_test_teardown(test_flush_retried, teardown),
        cmocka_unit_test_teardown(test_checkpoint_moved, teardown),
        cmocka_unit_test_teardown(test_item_not_written, teardown),
        cmocka_unit_test_teardown(test_corrupt_state_quarantined, teardown),
        cmocka_unit_test_teardown(test_lease_pauses, teardown),
        cmocka_unit_test_teardown(test_generation_moved, teardown),
        cmocka_unit_test_teardown(test_revocation_eager, teardown),
        cmocka_unit_test_teardown(test_revocation_cooperative, teardown),
    };
    return RM_RUN_CASES(tests, group_setup, group_teardown, argc, argv);
}
