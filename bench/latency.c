/*
 * Live produce-to-visible latency of a running `readmodel serve`: produces
 * generated events at a fixed rate, notes when each was handed to the
 * producer and, from its delivery report, its partition and offset, and
 * polls the partitions' checkpoints in Redis every millisecond. serve
 * writes a checkpoint only after the flush that made the events before it
 * visible, so an event is visible once its partition's checkpoint is above
 * its offset. Prints one line:
 *   events=N p50_ms=X p99_ms=Y max_ms=Z
 *
 * Usage: rm_bench_latency BROKERS TOPIC PARTITIONS REDIS_SOCKET RATE SECONDS [WARMUP_S]
 */
#include "readmodel/gen.h"

#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    double sent;    /* handed to the producer (monotonic s) */
    int32_t part;   /* from the delivery report; -1 before */
    int64_t offset; /* likewise */
    double seen;    /* checkpoint above it (0: not yet) */
} rec_t;

static rec_t *recs;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    rec_t *r = &recs[(intptr_t)m->_private];
    if (m->err) {
        fprintf(stderr, "latency: delivery failed: %s\n", rd_kafka_err2str(m->err));
        exit(1);
    }
    r->part = m->partition;
    r->offset = m->offset;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Reads every partition's checkpoint into cp (-1 when absent). */
static void read_checkpoints(redisContext *c, const char *topic, int parts, long long *cp) {
    for (int p = 0; p < parts; p++)
        redisAppendCommand(c, "GET rm:checkpoint:%s:%d", topic, p);
    for (int p = 0; p < parts; p++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            fprintf(stderr, "latency: redis: %s\n", c->errstr);
            exit(1);
        }
        cp[p] = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
        freeReplyObject(r);
    }
}

/* Marks the events whose partition's checkpoint passed them; the number
 * still waiting from index from on. */
static long mark_seen(long from, long n, const long long *cp, double t) {
    long waiting = 0;
    for (long i = from; i < n; i++) {
        rec_t *r = &recs[i];
        if (r->seen > 0)
            continue;
        if (r->part >= 0 && cp[r->part] > r->offset)
            r->seen = t;
        else
            waiting++;
    }
    return waiting;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s BROKERS TOPIC PARTITIONS REDIS_SOCKET RATE SECONDS [WARMUP_S]\n",
                argv[0]);
        return 2;
    }
    const char *brokers = argv[1], *topic = argv[2], *sock = argv[4];
    int parts = atoi(argv[3]);
    double rate = atof(argv[5]), seconds = atof(argv[6]), warmup = argc > 7 ? atof(argv[7]) : 2;
    long total = (long)(rate * seconds);
    recs = calloc((size_t)total, sizeof(*recs));
    long long *cp = calloc((size_t)parts, sizeof(*cp));
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err));
    rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof(err));
    rd_kafka_conf_set(conf, "compression.codec", "lz4", err, sizeof(err));
    rd_kafka_conf_set_dr_msg_cb(conf, delivered);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    redisContext *c = redisConnectUnix(sock);
    if (!rk || !c || c->err || !recs || !cp) {
        fprintf(stderr, "latency: cannot start: %s\n", rk ? (c ? c->errstr : "redis") : err);
        return 1;
    }
    rm_gen_config_t gc = {.seed = 7, .practitioners = 20000, .days = 28, .invalid_ratio = 0.01};
    rm_gen_t *g = rm_gen_new(&gc);
    double t0 = now_s(), last_poll = 0;
    long sent = 0, oldest = 0;
    rm_gen_msg_t m;
    while (sent < total && rm_gen_next(g, &m)) {
        double due = t0 + (double)sent / rate;
        while (now_s() < due) {
            rd_kafka_poll(rk, 0);
            if (now_s() - last_poll >= 0.001) {
                last_poll = now_s();
                read_checkpoints(c, topic, parts, cp);
                mark_seen(oldest, sent, cp, last_poll);
                while (oldest < sent && recs[oldest].seen > 0)
                    oldest++;
            }
        }
        recs[sent] = (rec_t){.sent = now_s(), .part = -1, .offset = -1};
        if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_KEY(m.key, m.key_len),
                              RD_KAFKA_V_VALUE((void *)m.value, m.value_len),
                              RD_KAFKA_V_OPAQUE((void *)(intptr_t)sent), RD_KAFKA_V_END)) {
            fprintf(stderr, "latency: produce failed\n");
            return 1;
        }
        sent++;
    }
    rd_kafka_flush(rk, 30000);
    double end = now_s() + 60;
    while (mark_seen(oldest, sent, cp, now_s()) > 0 && now_s() < end) {
        read_checkpoints(c, topic, parts, cp);
        rd_kafka_poll(rk, 1);
    }
    double *lat = calloc((size_t)sent, sizeof(double));
    long n = 0, missing = 0;
    for (long i = 0; i < sent; i++) {
        if (recs[i].sent - t0 < warmup)
            continue;
        if (recs[i].seen > 0)
            lat[n++] = (recs[i].seen - recs[i].sent) * 1000;
        else
            missing++;
    }
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    printf("events=%ld rate=%.0f p50_ms=%.1f p99_ms=%.1f max_ms=%.1f not_seen=%ld\n", n,
           (double)sent / (recs[sent - 1].sent - t0), n ? lat[n / 2] : -1,
           n ? lat[(long)(n * 0.99)] : -1, n ? lat[n - 1] : -1, missing);
    rm_gen_free(g);
    rd_kafka_destroy(rk);
    redisFree(c);
    free(lat);
    free(recs);
    free(cp);
    return missing ? 1 : 0;
}
