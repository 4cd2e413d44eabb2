/*
 * The log shapes real producers write, on one real Apache Kafka broker
 * (KRaft, started once for the whole program by tests/support/kafka_real.c):
 * a transactional producer with committed and aborted transactions
 * interleaved and the topic ending on a commit marker; serve, rebuild,
 * verify and status for both targets (Redis, and OpenSearch through the
 * in-process test server). Each case ends with zero difference from the
 * reference projection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "e2e.h"
#include "kafka_real.h"
#include "os_server.h"
#include "readmodel/gen.h"

#include <fcntl.h>
#include <jansson.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static kafka_real_t *broker;

static void redis_flushall(e2e_t *e) {
    redisContext *c = rm_test_redis_connect(&e->redis);
    assert_non_null(c);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    redisFree(c);
}

/* The sum of the partitions' end offsets (high watermarks). */
static long long end_offsets(e2e_t *e) {
    long long sum = 0;
    for (int p = 0; p < e->partitions; p++) {
        int64_t lo, hi;
        assert_int_equal(
            rd_kafka_query_watermark_offsets(e->producer, e->topic, p, &lo, &hi, 10000), 0);
        sum += hi;
    }
    return sum;
}

/* ---- a transactional producer ---- */

static rd_kafka_t *txn_producer(const char *id) {
    const char *props[] = {"transactional.id", id, "linger.ms", "5", NULL};
    rd_kafka_t *rk = kafka_real_producer(broker, props);
    assert_non_null(rk);
    rd_kafka_error_t *err = rd_kafka_init_transactions(rk, 30000);
    if (err)
        fprintf(stderr, "init_transactions: %s\n", rd_kafka_error_string(err));
    assert_null(err);
    return rk;
}

static void txn_check(rd_kafka_error_t *err, const char *what) {
    if (err)
        fprintf(stderr, "%s: %s\n", what, rd_kafka_error_string(err));
    assert_null(err);
}

/* Produces up to n generated events through rk (in its open transaction);
 * applied to the reference only when `committed` (the caller commits).
 * The number produced. */
static long txn_produce(e2e_t *e, rd_kafka_t *rk, rm_gen_t *g, long n, bool committed) {
    rm_gen_msg_t m;
    long i = 0;
    for (; i < n && rm_gen_next(g, &m); i++) {
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(e->topic),
                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_KEY(m.key, m.key_len),
                                        RD_KAFKA_V_VALUE((void *)m.value, m.value_len),
                                        RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        assert_int_equal(err, 0);
        if (committed) {
            ref_apply(e->ref, m.key, m.key_len, m.value, m.value_len);
            e->produced++;
        }
    }
    return i;
}

/* Two transactional producers on one topic, transactions overlapping in the
 * log: A's committed, B's aborted (its events follow A's in the generated
 * order, so applying them would change the model), then the other way
 * round; every partition ends on A's last commit marker. */
static void produce_transactions(e2e_t *e, rm_gen_t *g, long *aborted) {
    rd_kafka_t *a = txn_producer("rm-test-txn-a"), *b = txn_producer("rm-test-txn-b");
    *aborted = 0;
    for (int round = 0; round < 10; round++) {
        bool b_commits = round % 3 == 2;
        txn_check(rd_kafka_begin_transaction(a), "begin a");
        txn_check(rd_kafka_begin_transaction(b), "begin b");
        /* Flushed in turn, so the log holds the events in the order the
         * reference applies them, while both transactions stay open. */
        txn_produce(e, a, g, 150, true);
        assert_int_equal(rd_kafka_flush(a, 30000), 0);
        long nb = txn_produce(e, b, g, 100, b_commits);
        assert_int_equal(rd_kafka_flush(b, 30000), 0);
        txn_produce(e, a, g, 150, true);
        assert_int_equal(rd_kafka_flush(a, 30000), 0);
        if (b_commits) {
            txn_check(rd_kafka_commit_transaction(b, 30000), "commit b");
        } else {
            txn_check(rd_kafka_abort_transaction(b, 30000), "abort b");
            *aborted += nb;
        }
        txn_check(rd_kafka_commit_transaction(a, 30000), "commit a");
    }
    /* The last transaction: every remaining event, committed last. */
    txn_check(rd_kafka_begin_transaction(a), "begin a");
    txn_produce(e, a, g, 1000000, true);
    txn_check(rd_kafka_commit_transaction(a, 30000), "commit a");
    rd_kafka_destroy(a);
    rd_kafka_destroy(b);
}

static bool ready(int port) {
    char *body = e2e_http_get(port, "/readyz");
    free(body);
    return body != NULL;
}

/* serve (without --until-caught-up) reaches the end by its own measures:
 * lag 0 on every partition, /readyz 200, checkpoints at the high
 * watermarks. */
static void serve_reaches_end(e2e_t *e) {
    pid_t pid = e2e_serve(e, NULL);
    int port = e2e_metrics_port(pid, 30);
    assert_true(port > 0);
    long long ends = end_offsets(e);
    const char *cp = "readmodel_checkpoint_offset{target=\"redis\"";
    assert_true(e2e_wait_metric(port, cp, (double)ends, 120));
    assert_true(e2e_wait_caught_up(e, 60));
    const char *lag = "readmodel_consumer_lag_messages{target=\"redis\"";
    bool zero = false;
    for (int i = 0; i < 600 && !zero; i++) {
        char *m = e2e_http_get(port, "/metrics");
        zero = m && strstr(m, lag) && e2e_metric_sum(m, lag) == 0 &&
               e2e_metric_sum(m, "readmodel_partition_end_offset{target=\"redis\"") == (double)ends;
        free(m);
        if (!zero)
            e2e_sleep_ms(100);
    }
    if (!zero)
        fprintf(stderr, "lag never reached 0: %g\n", e2e_metric(port, lag));
    assert_true(zero);
    assert_true(ready(port));
    kill(pid, SIGTERM);
    assert_int_equal(e2e_wait_timeout(pid, 60), 0);
}

/* ---- serve, rebuild, verify and status for both targets ---- */

typedef struct {
    os_server_t *srv;
    int missing, wrong, seen;
} doc_cmp_t;

static void compare_doc(const char *pid, json_t *want, void *arg) {
    doc_cmp_t *c = arg;
    c->seen++;
    json_t *got = os_server_get(c->srv, "practitioners", pid);
    if (!got) {
        if (c->missing++ < 3)
            fprintf(stderr, "missing document %s\n", pid);
        return;
    }
    if (!json_equal(got, want) && c->wrong++ < 3)
        fprintf(stderr, "document %s differs\n", pid);
    json_decref(got);
}

/* Differences between the index (through its alias) and the reference. */
static int compare_index(e2e_t *e, os_server_t *srv) {
    doc_cmp_t c = {srv, 0, 0, 0};
    ref_each_doc(e->ref, compare_doc, &c);
    json_t *ids = os_server_ids(srv, "practitioners");
    int extra = (int)json_array_size(ids) - (c.seen - c.missing);
    json_decref(ids);
    fprintf(stderr, "compared %d documents: %d missing, %d wrong, %d extra\n", c.seen, c.missing,
            c.wrong, extra);
    return c.missing + c.wrong + (extra > 0 ? extra : 0);
}

static const char *os_url(os_server_t *srv) {
    static char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", os_server_port(srv));
    return url;
}

/* Runs `readmodel status --target all` (status takes no --workers or
 * --group, so not through e2e_command) with its standard output in out
 * (cap bytes); its exit code. */
static int run_status(e2e_t *e, os_server_t *srv, char *out, size_t cap) {
    char path[] = "/tmp/rm-out-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *bin = getenv("READMODEL_BIN");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 1);
        execl(bin ? bin : "./readmodel", "readmodel", "status", "--target", "all", "--brokers",
              e2e_bootstraps(e), "--topic", e->topic, "--redis", e->redis.url, "--opensearch",
              os_url(srv), (char *)NULL);
        _exit(127);
    }
    int rc = e2e_wait_timeout(pid, 120);
    ssize_t n = pread(fd, out, cap - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    fputs(out, stderr);
    return rc;
}

/* status's partition lines (partition, earliest, end, checkpoint, lag):
 * the number of partitions applied to their end. */
static int status_at_end(const char *out) {
    int at_end = 0;
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        int p;
        long long lo, hi, cp, lag;
        if (sscanf(l, "%d %lld %lld %lld %lld", &p, &lo, &hi, &cp, &lag) == 5 && cp == hi &&
            lag == 0)
            at_end++;
    }
    return at_end;
}

static void test_both_targets(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start_real(&e, broker, "both.events", 4, 1), 0);
    os_server_t *srv = os_server_start(0);
    assert_non_null(srv);
    rm_gen_t *g = e2e_generator(41, 300, 10);
    e2e_produce_generated(&e, g, 20000);
    const char *os[] = {"--opensearch", os_url(srv), NULL};
    const char *until[] = {"--opensearch", os_url(srv), "--until-caught-up", NULL};
    assert_int_equal(e2e_wait_timeout(e2e_serve(&e, until), 180), 0);
    assert_int_equal(e2e_compare(&e), 0);
    assert_int_equal(compare_index(&e, srv), 0);

    /* Live: serve applies what arrives while it runs. */
    pid_t serve = e2e_serve(&e, os);
    e2e_produce_generated(&e, g, 5000);
    assert_true(e2e_wait_caught_up(&e, 120));
    bool same = false;
    for (int i = 0; i < 240 && !same; i++) {
        same = compare_index(&e, srv) == 0;
        if (!same)
            e2e_sleep_ms(500);
    }
    assert_true(same);
    assert_int_equal(e2e_compare(&e), 0);
    kill(serve, SIGTERM);
    assert_int_equal(e2e_wait_timeout(serve, 60), 0);

    char out[16384];
    assert_int_equal(run_status(&e, srv, out, sizeof(out)), 0);
    assert_int_equal(status_at_end(out), 2 * e.partitions); /* Redis and OpenSearch */

    const char *rb_redis[] = {"--target", "redis", "--from-beginning", NULL};
    const char *rb_os[] = {"--target",     "opensearch", "--from-beginning",
                           "--opensearch", os_url(srv),  NULL};
    const char *vf_redis[] = {"--target", "redis", NULL};
    const char *vf_os[] = {"--target", "opensearch", "--opensearch", os_url(srv), NULL};
    assert_int_equal(e2e_wait_timeout(e2e_command(&e, "rebuild", rb_redis), 180), 0);
    assert_int_equal(e2e_wait_timeout(e2e_command(&e, "rebuild", rb_os), 180), 0);
    assert_int_equal(e2e_compare(&e), 0);
    assert_int_equal(compare_index(&e, srv), 0);
    assert_int_equal(e2e_wait_timeout(e2e_command(&e, "verify", vf_redis), 180), 0);
    assert_int_equal(e2e_wait_timeout(e2e_command(&e, "verify", vf_os), 180), 0);
    assert_int_equal(run_status(&e, srv, out, sizeof(out)), 0);
    assert_int_equal(status_at_end(out), 2 * e.partitions);
    rm_gen_free(g);
    os_server_stop(srv);
    e2e_stop(&e);
}

static void test_transactional_topic(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start_real(&e, broker, "txn.events", 3, 1), 0);
    rm_gen_t *g = e2e_generator(17, 80, 7);
    long aborted;
    produce_transactions(&e, g, &aborted);
    rm_gen_free(g);
    long long ends = end_offsets(&e);
    fprintf(stderr, "transactional topic: %llu committed, %ld aborted, end offsets sum %lld\n",
            e.produced, aborted, ends);
    /* Markers and aborted records occupy offsets: the offsets have gaps. */
    assert_true(aborted > 0);
    assert_true(ends > (long long)e.produced + aborted);

    const char *rebuild[] = {"--target", "redis", "--from-beginning", NULL};
    const char *verify[] = {"--target", "redis", NULL};
    assert_int_equal(e2e_wait_timeout(e2e_command(&e, "rebuild", rebuild), 120), 0);
    assert_int_equal(e2e_compare(&e), 0);
    assert_true(e2e_wait_caught_up(&e, 5)); /* the rebuild's checkpoints: the end offsets */
    assert_int_equal(e2e_wait_timeout(e2e_command(&e, "verify", verify), 120), 0);

    redis_flushall(&e);
    const char *until[] = {"--until-caught-up", NULL};
    assert_int_equal(e2e_wait_timeout(e2e_serve(&e, until), 120), 0);
    assert_int_equal(e2e_compare(&e), 0);
    assert_true(e2e_wait_caught_up(&e, 5));

    redis_flushall(&e);
    serve_reaches_end(&e);
    assert_int_equal(e2e_compare(&e), 0);
    assert_int_equal(e2e_wait_timeout(e2e_command(&e, "verify", verify), 120), 0);
    e2e_stop(&e);
}

/* ---- shapes of the log: retention, retries, codecs, new partitions,
 * compaction ---- */

/* A reference built from what the topic holds now (read_committed, every
 * partition from its earliest offset to its end), for logs whose history
 * is partly gone (retention, compaction). *records: how many it read. */
static ref_model_t *ref_from_topic(e2e_t *e, long *records) {
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", e2e_bootstraps(e), err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", "rm-test-reference", err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err));
    rd_kafka_conf_set(conf, "isolation.level", "read_committed", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(rk);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(e->partitions);
    for (int p = 0; p < e->partitions; p++)
        rd_kafka_topic_partition_list_add(l, e->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    ref_model_t *ref = ref_new();
    int eof = 0;
    *records = 0;
    time_t deadline = time(NULL) + 120;
    while (eof < e->partitions && time(NULL) < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eof++;
        } else if (!m->err) {
            ref_apply(ref, m->key, m->key_len, m->payload, m->len);
            (*records)++;
        }
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(eof, e->partitions);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return ref;
}

static void use_reference(e2e_t *e, ref_model_t *ref) {
    ref_free(e->ref);
    e->ref = ref;
}

/* Records deleted from the start of a partition (what retention does):
 * rebuild refuses with exit 3, --allow-truncated-history builds the model
 * of what is left. */
static void test_retention_truncates(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start_real(&e, broker, "retention.events", 2, 1), 0);
    rm_gen_t *g = e2e_generator(23, 80, 7);
    e2e_produce_generated(&e, g, 6000);
    rm_gen_free(g);
    assert_int_equal(kafka_real_delete_records(broker, e.topic, 0, 700), 0);
    const char *rebuild[] = {"--target", "redis", "--from-beginning", NULL};
    const char *allow[] = {"--target", "redis", "--from-beginning", "--allow-truncated-history",
                           NULL};
    assert_int_equal(e2e_wait_timeout(e2e_command(&e, "rebuild", rebuild), 120), 3);
    assert_int_equal(e2e_count_keys(&e), 0); /* nothing written */
    assert_int_equal(e2e_wait_timeout(e2e_command(&e, "rebuild", allow), 120), 0);
    long records;
    use_reference(&e, ref_from_topic(&e, &records));
    assert_int_equal(records, (long)e.produced - 700);
    assert_int_equal(e2e_compare(&e), 0);
    e2e_stop(&e);
}

/* An idempotent producer whose broker is killed -9 with requests in flight
 * and comes back: it retries, the broker drops the duplicates, and the
 * model is the reference. */
static void test_idempotent_retries(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start_real(&e, broker, "idempotent.events", 3, 1), 0);
    rm_gen_t *g = e2e_generator(29, 120, 7);
    e2e_produce_generated(&e, g, 3000);
    rm_gen_msg_t m;
    char key[80];
    for (int i = 0; i < 3000 && rm_gen_next(g, &m); i++) { /* queued, not flushed */
        snprintf(key, sizeof(key), "%.*s", (int)m.key_len, m.key);
        e2e_produce(&e, key, m.value, m.value_len);
    }
    rd_kafka_poll(e.producer, 5); /* some requests on the wire */
    assert_int_equal(kafka_real_kill(broker, 0, SIGKILL), 0);
    e2e_sleep_ms(1000);
    assert_int_equal(kafka_real_restart(broker, 0), 0);
    e2e_produce_generated(&e, g, 3000);
    rm_gen_free(g);
    assert_int_equal(end_offsets(&e), (long long)e.produced); /* nothing twice */
    const char *until[] = {"--until-caught-up", NULL};
    assert_int_equal(e2e_wait_timeout(e2e_serve(&e, until), 180), 0);
    assert_int_equal(e2e_compare(&e), 0);
    e2e_stop(&e);
}

/* Each codec in one topic, every message with headers. */
static void test_codecs_and_headers(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start_real(&e, broker, "codecs.events", 3, 1), 0);
    rm_gen_t *g = e2e_generator(31, 100, 7);
    const char *codecs[] = {"gzip", "snappy", "lz4", "zstd", "none"};
    rm_gen_msg_t m;
    for (int round = 0; round < 2; round++)
        for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
            const char *props[] = {"compression.codec",  codecs[c], "linger.ms", "20",
                                   "enable.idempotence", "true",    NULL};
            rd_kafka_t *rk = kafka_real_producer(broker, props);
            assert_non_null(rk);
            for (int i = 0; i < 800 && rm_gen_next(g, &m); i++) {
                rd_kafka_headers_t *h = rd_kafka_headers_new(3);
                rd_kafka_header_add(h, "traceparent", -1, "00-4bf92f3577b34da6-00f067aa0ba902b7-01",
                                    -1);
                rd_kafka_header_add(h, "codec", -1, codecs[c], -1);
                rd_kafka_header_add(h, "empty", -1, NULL, 0);
                rd_kafka_resp_err_t err;
                while ((err = rd_kafka_producev(
                            rk, RD_KAFKA_V_TOPIC(e.topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_KEY(m.key, m.key_len),
                            RD_KAFKA_V_VALUE((void *)m.value, m.value_len), RD_KAFKA_V_HEADERS(h),
                            RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                    rd_kafka_poll(rk, 10);
                assert_int_equal(err, 0);
                ref_apply(e.ref, m.key, m.key_len, m.value, m.value_len);
                e.produced++;
            }
            assert_int_equal(rd_kafka_flush(rk, 30000), 0);
            rd_kafka_destroy(rk);
        }
    rm_gen_free(g);
    const char *until[] = {"--until-caught-up", NULL};
    assert_int_equal(e2e_wait_timeout(e2e_serve(&e, until), 180), 0);
    assert_int_equal(e2e_compare(&e), 0);
    redis_flushall(&e);
    const char *rebuild[] = {"--target", "redis", "--from-beginning", NULL};
    assert_int_equal(e2e_wait_timeout(e2e_command(&e, "rebuild", rebuild), 120), 0);
    assert_int_equal(e2e_compare(&e), 0);
    e2e_stop(&e);
}

/* Partitions added while serve runs are consumed (after librdkafka's next
 * metadata refresh: topic.metadata.refresh.interval.ms, 5 min by default,
 * 1 s here). */
static void test_partitions_added(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start_real(&e, broker, "grow.events", 2, 1), 0);
    rm_gen_t *g = e2e_generator(37, 150, 7);
    e2e_produce_generated(&e, g, 3000);
    const char *refresh[] = {"--kafka", "topic.metadata.refresh.interval.ms=1000", NULL};
    pid_t serve = e2e_serve(&e, refresh);
    assert_true(e2e_wait_caught_up(&e, 120));
    assert_int_equal(kafka_real_add_partitions(broker, e.topic, 5), 0);
    e.partitions = 5;
    /* The producer sees the new partitions at its own metadata refresh. */
    rd_kafka_destroy(e.producer);
    const char *props[] = {"enable.idempotence", "true", "linger.ms", "5", NULL};
    e.producer = kafka_real_producer(broker, props);
    e2e_produce_generated(&e, g, 4000);
    rm_gen_free(g);
    int used = 0;
    for (int p = 2; p < 5; p++) {
        int64_t lo, hi;
        assert_int_equal(rd_kafka_query_watermark_offsets(e.producer, e.topic, p, &lo, &hi, 10000),
                         0);
        used += hi > 0;
    }
    assert_true(used > 0);
    assert_true(e2e_wait_caught_up(&e, 120));
    assert_int_equal(e2e_compare(&e), 0);
    kill(serve, SIGTERM);
    assert_int_equal(e2e_wait_timeout(serve, 60), 0);
    e2e_stop(&e);
}

/* A compacted topic: compaction removes every record but the last of each
 * key (here each practitioner's), leaving gaps that are not truncation.
 * rebuild and serve build the model of the records that remain (README,
 * "Apache Kafka"): not the model of the full history, which is why the
 * booking topic must not be compacted. */
static void test_compacted_topic(void **state) {
    (void)state;
    e2e_t e;
    e2e_begin(&e, "compact.events", 2);
    e.bootstraps = kafka_real_bootstraps(broker);
    snprintf(e.group, sizeof(e.group), "rm-test-compact-%d", (int)getpid());
    const char *cfg[] = {"cleanup.policy",
                         "compact",
                         "segment.ms",
                         "100",
                         "min.cleanable.dirty.ratio",
                         "0.01",
                         "min.compaction.lag.ms",
                         "0",
                         "delete.retention.ms",
                         "100",
                         NULL};
    assert_int_equal(rm_test_redis_start(&e.redis), 0);
    assert_int_equal(kafka_real_create_topic(broker, e.topic, 2, 1, cfg), 0);
    const char *props[] = {"enable.idempotence", "true", "linger.ms", "5", NULL};
    e.producer = kafka_real_producer(broker, props);
    e.ref = ref_new();
    rm_gen_t *g = e2e_generator(43, 40, 7);
    for (int i = 0; i < 10; i++) { /* many segments (each rolls after 100 ms) */
        e2e_produce_generated(&e, g, 300);
        e2e_sleep_ms(150);
    }
    rm_gen_free(g);
    long records = -1, before = -2;
    int stable = 0;
    ref_model_t *ref = NULL;
    for (int i = 0; i < 120 && stable < 3; i++) {
        e2e_sleep_ms(500);
        e2e_produce(&e, "p-roll", NULL, 0); /* a tombstone rolls the active segment */
        e2e_flush(&e);
        if (ref)
            ref_free(ref);
        ref = ref_from_topic(&e, &records);
        stable = records == before && records < (long)e.produced ? stable + 1 : 0;
        before = records;
    }
    fprintf(stderr, "compacted: %ld of %llu records left\n", records, e.produced);
    assert_true(stable >= 3);
    use_reference(&e, ref);
    const char *rebuild[] = {"--target", "redis", "--from-beginning", NULL};
    assert_int_equal(e2e_wait_timeout(e2e_command(&e, "rebuild", rebuild), 120), 0);
    assert_int_equal(e2e_compare(&e), 0);
    redis_flushall(&e);
    const char *until[] = {"--until-caught-up", NULL};
    assert_int_equal(e2e_wait_timeout(e2e_serve(&e, until), 120), 0);
    assert_int_equal(e2e_compare(&e), 0);
    e2e_stop(&e);
}

/* Consuming read_uncommitted would apply aborted events: refused (exit 2). */
static void test_read_uncommitted_refused(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start_real(&e, broker, "iso.events", 1, 1), 0);
    const char *iso[] = {"--kafka", "isolation.level=read_uncommitted", NULL};
    const char *rebuild[] = {
        "--target", "redis", "--from-beginning", "--kafka", "isolation.level=read_uncommitted",
        NULL};
    assert_int_equal(e2e_wait_timeout(e2e_serve(&e, iso), 60), 2);
    assert_int_not_equal(e2e_wait_timeout(e2e_command(&e, "rebuild", rebuild), 60), 0);
    e2e_stop(&e);
}

static int broker_up(void **state) {
    (void)state;
    broker = kafka_real_start(1, 120);
    if (!broker) {
        fprintf(stderr, "no Apache Kafka broker: bash scripts/setup.sh --real\n");
        return -1;
    }
    kafka_real_report(broker);
    return 0;
}

static int broker_down(void **state) {
    (void)state;
    if (broker)
        kafka_real_report(broker);
    kafka_real_stop(broker);
    return 0;
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_uncommitted_refused),
        cmocka_unit_test(test_transactional_topic),
        cmocka_unit_test(test_both_targets),
        cmocka_unit_test(test_retention_truncates),
        cmocka_unit_test(test_codecs_and_headers),
        cmocka_unit_test(test_partitions_added),
        cmocka_unit_test(test_compacted_topic),
        cmocka_unit_test(test_idempotent_retries),
    };
    /* ctest runs every case on each Kafka version (RM_KAFKA_VERSION). */
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, broker_up, broker_down);
}
