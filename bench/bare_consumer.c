/*
 * The floor of the replay benchmark: a bare librdkafka consumer that reads
 * every partition of a topic from its earliest offset to the end offset
 * captured at start, with the same number of threads as the rebuild under
 * test, and does nothing with the messages. Prints one line:
 *   events=N seconds=S
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *brokers, *topic;
static int nparts, nthreads;
static int64_t *lo, *hi;
static long long counted[64];

static rd_kafka_t *consumer(void) {
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof(err));
    rd_kafka_conf_set(c, "group.id", "bench-bare", err, sizeof(err));
    rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err));
    rd_kafka_conf_set(c, "enable.partition.eof", "true", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "bare_consumer: %s\n", err);
        exit(1);
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static void *run(void *arg) {
    int idx = (int)(long)arg, remaining = 0;
    char *done = calloc((size_t)nparts, 1);
    rd_kafka_t *rk = consumer();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
    for (int p = idx; p < nparts; p += nthreads)
        if (hi[p] > lo[p]) {
            rd_kafka_topic_partition_list_add(l, topic, p)->offset = lo[p];
            remaining++;
        }
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    while (remaining > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m)
            continue;
        int32_t p = m->partition;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!done[p] && m->offset >= hi[p]) {
                done[p] = 1;
                remaining--;
            }
        } else if (!m->err && !done[p] && m->offset < hi[p]) {
            counted[idx]++;
            if (m->offset + 1 == hi[p]) {
                done[p] = 1;
                remaining--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    free(done);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: bare_consumer BROKERS TOPIC THREADS\n");
        return 2;
    }
    brokers = argv[1];
    topic = argv[2];
    nthreads = atoi(argv[3]);
    if (nthreads < 1 || nthreads > 64)
        return 2;
    rd_kafka_t *rk = consumer();
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) || md->topic_cnt != 1) {
        fprintf(stderr, "bare_consumer: no metadata for %s\n", topic);
        return 1;
    }
    nparts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    lo = calloc((size_t)nparts, sizeof(*lo));
    hi = calloc((size_t)nparts, sizeof(*hi));
    for (int p = 0; p < nparts; p++)
        rd_kafka_query_watermark_offsets(rk, topic, p, &lo[p], &hi[p], 10000);
    rd_kafka_destroy(rk);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pthread_t t[64];
    for (int i = 0; i < nthreads; i++)
        pthread_create(&t[i], NULL, run, (void *)(long)i);
    long long total = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
        total += counted[i];
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("events=%lld seconds=%.3f\n", total,
           (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
    return 0;
}
