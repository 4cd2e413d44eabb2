/*
 * rebuild, verify and status end to end: each kind of corruption is found
 * by verify and repaired by rebuild; a rebuild while serve runs and events
 * keep arriving; readers never see fewer keys than should exist; a rebuild
 * killed midway and run again; one rebuild at a time; truncated history.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cases.h"

#include "e2e.h"
#include "readmodel/date.h"
#include "readmodel/gen.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOPIC "booking.events"

static rm_gen_t *generator(uint64_t seed, int practitioners) {
    return e2e_generator(seed, practitioners, 7);
}

#define sleep_ms e2e_sleep_ms

static void redis_cmd(e2e_t *e, const char *fmt, const char *arg) {
    redisContext *c = rm_test_redis_connect(&e->redis);
    freeReplyObject(redisCommand(c, fmt, arg));
    redisFree(c);
}

/* A model built by serve from a generated log, checked against the reference. */
static void built_model(e2e_t *e, int partitions, uint64_t seed, int practitioners) {
    assert_int_equal(e2e_start(e, TOPIC, partitions), 0);
    rm_gen_t *g = generator(seed, practitioners);
    e2e_produce_generated(e, g, -1);
    rm_gen_free(g);
    const char *until[] = {"--until-caught-up", NULL};
    assert_int_equal(e2e_wait(e2e_serve(e, until)), 0);
    assert_int_equal(e2e_compare(e), 0);
}

static const char *const rebuild_args[] = {"--target", "redis", "--from-beginning", NULL};
static const char *const verify_args[] = {"--target", "redis", NULL};

typedef struct {
    const char *name;
    const char *commands[4]; /* redis commands with one %s: a real key */
} corruption_t;

static void test_each_corruption_found_and_repaired(void **state) {
    (void)state;
    e2e_t e;
    built_model(&e, 3, 7, 60);
    assert_int_equal(e2e_run(&e, "verify", verify_args), 0);
    const corruption_t kinds[] = {
        {"deleted keys", {"DEL %s", NULL}},
        {"wrong bits", {"SETRANGE %s 0 \x5a\xa5", NULL}}, /* slots 0-15 are never published */
        {"foreign keys under the prefix",
         {"SET rm:avail:{ghost}:2026-11-24 %s", "SET rm:avail:not-a-model-key %s",
          "HSET rm:state:{ghost} p 0 f 1 s %s", NULL}},
        {"deleted fences and checkpoints",
         {"DEL rm:state:{p-00001} rm:state:{p-00002}", "DEL rm:checkpoint:booking.events:1", NULL}},
    };
    redisContext *c = rm_test_redis_connect(&e.redis);
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        fprintf(stderr, "corruption: %s\n", kinds[k].name);
        redisReply *keys = redisCommand(c, "KEYS rm:avail:{p-0000*");
        assert_true(keys->elements >= 3);
        for (int i = 0; kinds[k].commands[i]; i++)
            for (size_t j = 0; j < 3; j++)
                freeReplyObject(redisCommand(c, kinds[k].commands[i], keys->element[j]->str));
        freeReplyObject(keys);
        assert_int_equal(e2e_run(&e, "verify", verify_args), 1);
        assert_int_equal(e2e_run(&e, "rebuild", rebuild_args), 0);
        assert_int_equal(e2e_run(&e, "verify", verify_args), 0);
        assert_int_equal(e2e_compare(&e), 0);
        redisReply *r = redisCommand(c, "EXISTS rm:avail:not-a-model-key rm:state:{ghost}");
        assert_int_equal(r->integer, 0);
        freeReplyObject(r);
    }
    /* status prints the partitions and the last rebuild. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "'%s' status --brokers %s --redis %s | grep -q 'result=ok'",
             getenv("READMODEL_BIN"), rm_mock_kafka_bootstraps(e.kafka), e.redis.url);
    assert_int_equal(system(cmd), 0);
    redisFree(c);
    e2e_stop(&e);
}

/* Counts rm:avail:* keys continuously and records the smallest count.
 * `during` counts the samples taken entirely while the rebuild process ran
 * (started after it was forked, finished before it was reaped). */
typedef struct {
    e2e_t *e;
    atomic_int stop, running;
    atomic_long samples;
    long min, during;
} sampler_t;

static void *sample_main(void *arg) {
    sampler_t *s = arg;
    s->min = -1;
    while (!atomic_load(&s->stop)) {
        int before = atomic_load(&s->running);
        long n = e2e_count_keys(s->e);
        if (n >= 0 && (s->min < 0 || n < s->min))
            s->min = n;
        if (before && atomic_load(&s->running))
            s->during++;
        atomic_fetch_add(&s->samples, 1);
    }
    return NULL;
}

static void rebuild_sampled(e2e_t *e, const char *const *args, sampler_t *s) {
    memset(s, 0, sizeof(*s));
    s->e = e;
    pthread_t t;
    pthread_create(&t, NULL, sample_main, s);
    while (atomic_load(&s->samples) < 1) /* the sampler runs before the rebuild starts */
        sleep_ms(5);
    atomic_store(&s->running, 1);
    pid_t pid = e2e_command(e, "rebuild", args);
    int rc = e2e_wait(pid);
    atomic_store(&s->running, 0);
    atomic_store(&s->stop, 1);
    pthread_join(t, NULL);
    assert_int_equal(rc, 0);
}

static void test_readers_never_see_fewer_keys(void **state) {
    (void)state;
    e2e_t e;
    built_model(&e, 4, 8, 300);
    long expected = e2e_count_keys(&e);
    /* Corrupt bits everywhere so that the rebuild really rewrites keys. */
    redisContext *c = rm_test_redis_connect(&e.redis);
    redisReply *keys = redisCommand(c, "KEYS rm:avail:*");
    for (size_t j = 0; j < keys->elements; j += 2)
        freeReplyObject(redisCommand(c, "SETRANGE %s 0 \x01", keys->element[j]->str));
    freeReplyObject(keys);
    redisFree(c);
    sampler_t s;
    rebuild_sampled(&e, rebuild_args, &s);
    fprintf(stderr, "in-place rebuild: %ld samples (%ld while it ran), fewest keys %ld of %ld\n",
            atomic_load(&s.samples), s.during, s.min, expected);
    assert_true(s.during >= 1); /* no count of samples: that would measure speed */
    assert_true(s.min >= expected);
    assert_int_equal(e2e_compare(&e), 0);

    /* The sampler does see the drop of the seed runbook's --flush. */
    const char *flush[] = {"--target", "redis", "--from-beginning", "--flush", "--yes", NULL};
    rebuild_sampled(&e, flush, &s);
    fprintf(stderr, "--flush rebuild: %ld samples while it ran, fewest keys %ld of %ld\n", s.during,
            s.min, expected);
    assert_true(s.min < expected);
    assert_int_equal(e2e_compare(&e), 0);
    e2e_stop(&e);
}

/* One replay thread with twelve partitions: it reads two at a time (the
 * rest paused, then resumed one by one), and the rebuild writes each
 * partition as soon as it ends while the others are still being read. No
 * event may be lost or read twice on the way. */
static void test_many_partitions_per_replay_thread(void **state) {
    (void)state;
    e2e_t e;
    built_model(&e, 12, 11, 240);
    redisContext *c = rm_test_redis_connect(&e.redis);
    redisReply *keys = redisCommand(c, "KEYS rm:avail:*");
    assert_true(keys->elements > 24);
    for (size_t j = 0; j < keys->elements; j += 4) /* keys of many partitions */
        freeReplyObject(
            redisCommand(c, j % 8 ? "DEL %s" : "SETRANGE %s 35 \xff", keys->element[j]->str));
    freeReplyObject(keys);
    freeReplyObject(redisCommand(c, "SET rm:avail:{ghost}:2026-11-24 x"));
    redisFree(c);
    const char *verify1[] = {"--target", "redis", "--workers", "1", NULL};
    const char *rebuild1[] = {"--target", "redis", "--from-beginning", "--workers", "1", NULL};
    assert_int_equal(e2e_run(&e, "verify", verify1), 1);
    /* A write that fails while the replay runs (Redis refuses MSET here)
     * stops the replay too: the rebuild ends with exit 1, records the
     * failure and releases its lease. */
    c = rm_test_redis_connect(&e.redis);
    freeReplyObject(redisCommand(c, "ACL SETUSER default -mset"));
    assert_int_equal(e2e_run(&e, "rebuild", rebuild1), 1);
    freeReplyObject(redisCommand(c, "ACL SETUSER default +mset"));
    redisReply *res = redisCommand(c, "HGET rm:rebuild:last:redis result");
    assert_non_null(res->str);
    assert_string_equal(res->str, "failed");
    freeReplyObject(res);
    redisFree(c);
    assert_int_equal(e2e_run(&e, "rebuild", rebuild1), 0); /* no lease left behind */
    assert_int_equal(e2e_run(&e, "verify", verify1), 0);
    assert_int_equal(e2e_compare(&e), 0);
    e2e_stop(&e);
}

typedef struct {
    e2e_t *e;
    rm_gen_t *g;
} producer_t;

static void *produce_slowly(void *arg) {
    producer_t *p = arg;
    for (int i = 0; i < 20; i++) {
        e2e_produce_generated(p->e, p->g, 150);
        sleep_ms(100);
    }
    e2e_produce_generated(p->e, p->g, -1);
    return NULL;
}

static void test_rebuild_while_serve_runs(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 4), 0);
    rm_gen_t *g = generator(9, 150);
    e2e_produce_generated(&e, g, 4000);
    pid_t serve = e2e_serve(&e, NULL);
    assert_true(e2e_wait_caught_up(&e, 60));
    /* Corrupt, then rebuild while serve runs and events keep arriving. */
    redis_cmd(&e, "DEL %s", "rm:checkpoint:booking.events:2");
    redis_cmd(&e, "SET rm:avail:{ghost}:2026-11-25 %s", "x");
    producer_t p = {&e, g};
    pthread_t t;
    pthread_create(&t, NULL, produce_slowly, &p);
    sleep_ms(300);
    assert_int_equal(e2e_run(&e, "rebuild", rebuild_args), 0);
    pthread_join(t, NULL);
    rm_gen_free(g);
    assert_true(e2e_wait_caught_up(&e, 90));
    assert_int_equal(e2e_compare(&e), 0);
    kill(serve, SIGTERM);
    assert_int_equal(e2e_wait(serve), 0);
    assert_int_equal(e2e_run(&e, "verify", verify_args), 0);
    e2e_stop(&e);
}

/* A partition revoked from a serve while a rebuild's lease paused it, and
 * assigned back to the same consumer after the pause, is consumed again
 * (librdkafka keeps a partition's pause flag across revocation and
 * re-assignment). One worker per serve, so every partition the second
 * serve gives up goes back to the consumer that paused it. */
static void test_partition_back_after_pause(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 4), 0);
    rm_gen_t *g = generator(9, 150);
    e2e_produce_generated(&e, g, 4000);
    const char *one[] = {"--workers", "1", NULL};
    const char *paused = "readmodel_target_paused{target=\"redis\"}";
    const char *assigned = "readmodel_assigned_partitions{target=\"redis\"}";
    pid_t serve = e2e_serve(&e, one);
    int port = e2e_metrics_port(serve, 30);
    assert_true(port > 0);
    assert_true(e2e_wait_caught_up(&e, 60));

    redis_cmd(&e, "SET rm:lease:redis %s PX 300000", "test-holder");
    e2e_produce_generated(&e, g, 500);
    assert_true(e2e_wait_metric(port, paused, 1, 30)); /* all four partitions paused */
    pid_t serve2 = e2e_serve(&e, one);
    int port2 = e2e_metrics_port(serve2, 30);
    assert_true(port2 > 0);
    assert_true(e2e_wait_metric(port2, assigned, 1, 90)); /* some moved during the pause */
    redis_cmd(&e, "DEL %s", "rm:lease:redis");
    time_t deadline = time(NULL) + 30;
    while (e2e_metric(port, paused) != 0 && time(NULL) < deadline)
        sleep_ms(100);
    assert_true(e2e_metric(port, paused) == 0);
    /* The second serve leaves: its partitions go back to the first. */
    kill(serve2, SIGTERM);
    assert_int_equal(e2e_wait(serve2), 0);
    e2e_produce_generated(&e, g, 500);
    assert_true(e2e_wait_metric(port, assigned, 4, 90));
    assert_true(e2e_wait_caught_up(&e, 60));
    assert_int_equal(e2e_compare(&e), 0);
    kill(serve, SIGTERM);
    assert_int_equal(e2e_wait(serve), 0);
    rm_gen_free(g);
    e2e_stop(&e);
}

static void test_killed_rebuild_then_rerun_and_one_at_a_time(void **state) {
    (void)state;
    e2e_t e;
    built_model(&e, 4, 10, 300);
    /* Another holder: a second rebuild must not start. */
    redis_cmd(&e, "SET rm:lease:redis %s PX 60000", "someone-else");
    assert_int_equal(e2e_run(&e, "rebuild", rebuild_args), 4);
    redis_cmd(&e, "DEL %s", "rm:lease:redis");

    /* How long a whole rebuild takes here, so the kills land inside one. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(e2e_run(&e, "rebuild", rebuild_args), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long full_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    fprintf(stderr, "a full rebuild takes %ld ms\n", full_ms);
    /* Kill points spread over the run; writes start when the first
     * partition has been replayed and run alongside the rest. */
    const int kill_permille[] = {200, 350, 420, 470, 520, 570, 650};
    redisContext *c = rm_test_redis_connect(&e.redis);
    for (int round = 0; round < 7; round++) {
        redisReply *keys = redisCommand(c, "KEYS rm:avail:*");
        for (size_t j = 0; j < keys->elements; j++)
            freeReplyObject(redisCommand(c, "SETRANGE %s 30 \xaa", keys->element[j]->str));
        freeReplyObject(keys);
        const char *args[] = {"--target", "redis", "--from-beginning", "--lease-ttl", "2000", NULL};
        pid_t pid = e2e_command(&e, "rebuild", args);
        sleep_ms(full_ms * kill_permille[round] / 1000);
        kill(pid, SIGKILL);
        e2e_wait(pid);
        fprintf(stderr, "killed; verify now exits %d\n", e2e_run(&e, "verify", verify_args));
        /* Run again until the dead one's lease has expired. */
        int rc;
        time_t deadline = time(NULL) + 20;
        while ((rc = e2e_run(&e, "rebuild", args)) == 4 && time(NULL) < deadline)
            sleep_ms(500);
        assert_int_equal(rc, 0);
        assert_int_equal(e2e_run(&e, "verify", verify_args), 0);
        assert_int_equal(e2e_compare(&e), 0);
    }
    redisFree(c);
    e2e_stop(&e);
}

static void test_truncated_history(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 1), 0);
    /* Fill the one partition past what the local Kafka retains (about 5 MiB)
     * with events that compress poorly, so its earliest offset moves up. */
    char v[1024], pad[601];
    unsigned x = 12345;
    for (int i = 0; i < 15000; i++) {
        for (int k = 0; k < 600; k++) {
            x = x * 1103515245u + 12345u;
            pad[k] = "0123456789abcdef"[(x >> 16) & 15];
        }
        pad[600] = '\0';
        int n =
            snprintf(v, sizeof(v),
                     "{\"event_id\":\"t%d\",\"type\":\"SlotsPublished\",\"schema_version\":1,"
                     "\"occurred_at\":\"2026-11-20T10:15:00Z\",\"practitioner_id\":\"t-%d\","
                     "\"date\":\"2026-11-23\",\"start_slot\":%d,\"slot_count\":1,\"pad\":\"%s\"}",
                     i, i % 50, i % 288, pad);
        char key[16];
        snprintf(key, sizeof(key), "t-%d", i % 50);
        e2e_produce(&e, key, v, (size_t)n);
    }
    e2e_flush(&e);
    int64_t lo, hi;
    assert_int_equal(rd_kafka_query_watermark_offsets(e.producer, TOPIC, 0, &lo, &hi, 5000), 0);
    fprintf(stderr, "partition 0 retains offsets %lld..%lld\n", (long long)lo, (long long)hi);
    assert_true(lo > 0);
    assert_int_equal(e2e_run(&e, "rebuild", rebuild_args), 3);
    assert_int_equal(e2e_count_keys(&e), 0); /* refused before writing anything */
    assert_int_equal(e2e_run(&e, "verify", verify_args), 3);
    const char *dry[] = {"--target", "redis", "--from-beginning", "--dry-run", NULL};
    assert_int_equal(e2e_run(&e, "rebuild", dry), 3);
    const char *allow[] = {"--target", "redis", "--from-beginning", "--allow-truncated-history",
                           NULL};
    assert_int_equal(e2e_run(&e, "rebuild", allow), 0);
    assert_true(e2e_count_keys(&e) > 0);
    e2e_stop(&e);
}

static void test_usage_errors(void **state) {
    (void)state;
    char cmd[512];
    const char *bin = getenv("READMODEL_BIN");
    const char *cases[] = {
        "rebuild --brokers x --target redis",                          /* no --from-beginning */
        "rebuild --brokers x --target opensearch --from-beginning",    /* not built yet */
        "rebuild --brokers x --target redis --from-beginning --flush", /* no --yes */
        "rebuild --brokers x --target nope --from-beginning",          /* bad target */
        "verify --brokers x --dlq-topic d",                            /* serve-only flag */
        "status --brokers x --workers 2",                              /* not a status flag */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(cmd, sizeof(cmd), "'%s' %s 2>/dev/null", bin, cases[i]);
        int st = system(cmd);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 2);
    }
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_each_corruption_found_and_repaired),
        cmocka_unit_test(test_readers_never_see_fewer_keys),
        cmocka_unit_test(test_many_partitions_per_replay_thread),
        cmocka_unit_test(test_rebuild_while_serve_runs),
        cmocka_unit_test(test_partition_back_after_pause),
        cmocka_unit_test(test_killed_rebuild_then_rerun_and_one_at_a_time),
        cmocka_unit_test(test_truncated_history),
    };
    return RM_RUN_CASES(tests, NULL, NULL, argc, argv);
}
