/*
 * The dead-letter producer (src/consumers/dead_letter.c) without a broker:
 * the size a cut dead letter keeps, a message larger than the producer's
 * message.max.bytes queued cut instead of refused, and a full local queue
 * that waits while serve runs but gives up once serve is stopping and its
 * --shutdown-timeout has passed (it used to wait forever, so SIGTERM could
 * not stop that worker while the brokers were away).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dead_letter.h"
#include "readmodel/log.h"
#include "readmodel/stop.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void test_cut_size(void **state) {
    (void)state;
    assert_int_equal(rm_dlq_cut_size(1000000, 10, 200), 1000000 - 10 - 200 - 1024);
    assert_int_equal(rm_dlq_cut_size(1000, 10, 200), 0); /* nothing fits: headers only */
}

/* A message on no broker: the produce is only queued locally. */
static rd_kafka_message_t fake_message(rd_kafka_topic_t *rkt, void *payload, size_t len) {
    rd_kafka_message_t m;
    memset(&m, 0, sizeof(m));
    m.rkt = rkt;
    m.partition = 3;
    m.offset = 42;
    m.key = (void *)(uintptr_t) "p-1";
    m.key_len = 3;
    m.payload = payload;
    m.len = len;
    return m;
}

static void test_oversized_is_cut_and_full_queue_gives_up_when_stopping(void **state) {
    (void)state;
    rm_log_set_level(RM_LOG_ERROR);
    /* Nothing listens on port 1; one message fills the local queue. */
    char *props[] = {"queue.buffering.max.messages=1", "message.max.bytes=10000"};
    rm_config_t cfg = {.brokers = "127.0.0.1:1",
                       .dlq_topic = "dlq",
                       .kafka = props,
                       .n_kafka = 2,
                       .shutdown_timeout_s = 1};
    rm_stats_t *st = calloc(1, sizeof(*st));
    char err[256];
    rm_dlq_t *q = rm_dlq_new(&cfg, st, err, sizeof(err));
    assert_non_null(q);

    /* A handle only to name the source topic in the headers. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, "booking.events", NULL);
    size_t big_len = 50000;
    char *big = malloc(big_len);
    memset(big, 'x', big_len);
    rd_kafka_message_t m = fake_message(rkt, big, big_len);
    rm_reject_t why = {.reason = RM_REASON_TOO_LARGE, .field = ""};
    time_t deadline = 0;
    assert_int_equal(rm_dlq_send(q, &m, &why, &deadline), 0);
    assert_int_equal(atomic_load(&st->dead_lettered), 1);
    assert_int_equal(atomic_load(&st->dead_letters_cut), 1); /* 50 kB > 10 kB: cut */

    /* The queue is full now (one message, no broker). */
    rm_stop_request();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(rm_dlq_send(q, &m, &why, &deadline), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 30); /* a bound against a hang: it gives up */
    assert_int_equal(atomic_load(&st->dead_lettered), 1);
    rm_stop_reset();

    free(big);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    rm_dlq_free(q); /* the queued one is not delivered: -1, logged */
    free(st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_size),
        cmocka_unit_test(test_oversized_is_cut_and_full_queue_gives_up_when_stopping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
