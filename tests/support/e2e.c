/* End-to-end helpers: see e2e.h. */
#include "e2e.h"
#include "readmodel/date.h"
#include "readmodel/gen.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Every process a test starts, so none outlives the test binary even when an
 * assertion fails halfway (cmocka leaves the test with longjmp). */
static pid_t children[256];
static int nchildren;

static void kill_children(void) {
    for (int i = 0; i < nchildren; i++)
        if (children[i] > 0 && kill(children[i], SIGKILL) == 0)
            waitpid(children[i], NULL, 0);
}

int e2e_start(e2e_t *e, const char *topic, int partitions) {
    static int registered;
    if (!registered++)
        atexit(kill_children);
    memset(e, 0, sizeof(*e));
    signal(SIGPIPE, SIG_IGN);
    e->topic = topic;
    e->partitions = partitions;
    if (rm_test_redis_start(&e->redis) != 0)
        return -1;
    if (!(e->kafka = rm_mock_kafka_start(1)) ||
        rm_mock_kafka_create_topic(e->kafka, topic, partitions) != 0 ||
        rm_mock_kafka_create_topic(e->kafka, "booking.dlq", 1) != 0)
        return -1;
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", rm_mock_kafka_bootstraps(e->kafka), err,
                      sizeof(err));
    rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err));
    rd_kafka_conf_set(conf, "compression.codec", "lz4", err, sizeof(err));
    rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof(err));
    e->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    e->ref = ref_new();
    return e->producer && e->ref ? 0 : -1;
}

void e2e_stop(e2e_t *e) {
    if (e->producer)
        rd_kafka_destroy(e->producer);
    rm_mock_kafka_stop(e->kafka);
    rm_test_redis_destroy(&e->redis);
    if (e->ref)
        ref_free(e->ref);
}

void e2e_produce(e2e_t *e, const char *key, const char *value, size_t value_len) {
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            e->producer, RD_KAFKA_V_TOPIC(e->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, value_len),
            RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(e->producer, 10);
            continue;
        }
        if (err) {
            fprintf(stderr, "produce: %s\n", rd_kafka_err2str(err));
            abort();
        }
        break;
    }
    ref_apply(e->ref, key, key ? strlen(key) : 0, value, value_len);
    e->produced++;
}

void e2e_flush(e2e_t *e) {
    while (rd_kafka_outq_len(e->producer) > 0)
        rd_kafka_flush(e->producer, 1000);
}

void e2e_produce_generated(e2e_t *e, struct rm_gen *g, long count) {
    rm_gen_msg_t m;
    char key[80];
    for (long i = 0; (count < 0 || i < count) && rm_gen_next(g, &m); i++) {
        snprintf(key, sizeof(key), "%.*s", (int)m.key_len, m.key);
        e2e_produce(e, key, m.value, m.value_len);
    }
    e2e_flush(e);
}

pid_t e2e_command(e2e_t *e, const char *cmd, const char *const *extra) {
    const char *bin = getenv("READMODEL_BIN");
    if (!bin)
        bin = "./readmodel";
    const char *argv[48] = {
        bin,         cmd,      "--brokers",   rm_mock_kafka_bootstraps(e->kafka),
        "--topic",   e->topic, "--redis",     e->redis.url,
        "--workers", "2",      "--log-level", "warn"};
    int n = 12;
    if (strcmp(cmd, "serve") == 0) {
        /* Port 0: each serve gets a free port, so tests can run several. */
        const char *metrics = getenv("RM_TEST_METRICS_ADDR");
        const char *serve[] = {"--max-batch",    "500",
                               "--kafka",        "session.timeout.ms=6000",
                               "--kafka",        "heartbeat.interval.ms=500",
                               "--metrics-addr", metrics ? metrics : "127.0.0.1:0"};
        for (size_t i = 0; i < sizeof(serve) / sizeof(serve[0]); i++)
            argv[n++] = serve[i];
    }
    for (int i = 0; extra && extra[i] && n < 47; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        execv(bin, (char *const *)argv);
        perror("execv readmodel");
        _exit(127);
    }
    if (pid > 0 && nchildren < 256)
        children[nchildren++] = pid;
    return pid;
}

pid_t e2e_serve(e2e_t *e, const char *const *extra) {
    return e2e_command(e, "serve", extra);
}

int e2e_run(e2e_t *e, const char *cmd, const char *const *extra) {
    return e2e_wait(e2e_command(e, cmd, extra));
}

int e2e_wait(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    for (int i = 0; i < nchildren; i++)
        if (children[i] == pid)
            children[i] = 0; /* reaped: never signal a recycled pid */
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool e2e_wait_caught_up(e2e_t *e, int timeout_s) {
    redisContext *c = rm_test_redis_connect(&e->redis);
    time_t deadline = time(NULL) + timeout_s;
    bool done = false;
    while (!done && time(NULL) < deadline) {
        done = true;
        for (int p = 0; p < e->partitions && done; p++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(e->producer, e->topic, p, &lo, &hi, 5000)) {
                done = false;
                break;
            }
            redisReply *r = redisCommand(c, "GET rm:checkpoint:%s:%d", e->topic, p);
            if (!r) {
                redisFree(c);
                c = rm_test_redis_connect(&e->redis);
                done = false;
                break;
            }
            done = hi == 0 || (r->type == REDIS_REPLY_STRING && atoll(r->str) == hi);
            freeReplyObject(r);
        }
        if (!done)
            usleep(200 * 1000);
    }
    if (c)
        redisFree(c);
    return done;
}

typedef struct {
    redisContext *c;
    int diffs;
    long expected;
} cmp_t;

static void check_key(const char *key, const unsigned char v[36], void *arg) {
    cmp_t *x = arg;
    x->expected++;
    redisReply *r = redisCommand(x->c, "GET rm:%s", key);
    if (!r || r->type != REDIS_REPLY_STRING) {
        if (x->diffs++ < 10)
            fprintf(stderr, "missing key rm:%s\n", key);
    } else if (r->len != 36 || memcmp(r->str, v, 36) != 0) {
        if (x->diffs++ < 10)
            fprintf(stderr, "wrong value for rm:%s\n", key);
    }
    freeReplyObject(r);
}

long e2e_count_keys(e2e_t *e) {
    redisContext *c = rm_test_redis_connect(&e->redis);
    long n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH rm:avail:* COUNT 1000", cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            n = -1;
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        n += (long)r->element[1]->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(c);
    return n;
}

int e2e_compare(e2e_t *e) {
    cmp_t x = {rm_test_redis_connect(&e->redis), 0, 0};
    ref_each_key(e->ref, check_key, &x);
    redisFree(x.c);
    long actual = e2e_count_keys(e);
    if (actual != x.expected) {
        fprintf(stderr, "Redis has %ld availability keys, the reference %ld\n", actual, x.expected);
        x.diffs += (int)(actual > x.expected ? actual - x.expected : x.expected - actual);
    }
    fprintf(stderr, "compared %ld expected keys: %d difference(s)\n", x.expected, x.diffs);
    return x.diffs;
}

struct rm_gen *e2e_generator(uint64_t seed, int practitioners, int days) {
    rm_gen_config_t cfg = {.seed = seed,
                           .practitioners = practitioners,
                           .days = days,
                           .invalid_ratio = 0.02,
                           .ignored_ratio = 0.01};
    rm_date_parse("2026-11-23", 10, &cfg.start_day);
    return rm_gen_new(&cfg);
}

void e2e_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}
