/*
 * serve: starts the workers (one consumer per thread in the group
 * `<group>-redis`), the shared dead-letter producer, logs progress every
 * few seconds, and stops everything in order on rm_serve_stop().
 */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const result_names[] = {
#define RM_RESULT_NAME(n, s) s,
    RM_RESULT_MAP(RM_RESULT_NAME)
#undef RM_RESULT_NAME
};

const char *rm_result_name(rm_result_t r) {
    return (unsigned)r < RM_RESULT__COUNT ? result_names[r] : "unknown";
}

void rm_serve_stop(void) {
    rm_serve_running = 0;
}

static uint64_t total_events(rm_serve_stats_t *st) {
    uint64_t n = 0;
    for (int i = 0; i < RM_RESULT__COUNT; i++)
        n += atomic_load(&st->events[i]);
    return n;
}

static void log_summary(rm_serve_stats_t *st, const char *what) {
    char invalid[1024] = "";
    size_t o = 0;
    for (int r = 0; r < RM_REASON__COUNT; r++) {
        uint64_t n = atomic_load(&st->invalid[r]);
        if (n && o < sizeof(invalid))
            o += (size_t)snprintf(invalid + o, sizeof(invalid) - o, " %s=%llu",
                                  rm_reason_name((rm_reason_t)r), (unsigned long long)n);
    }
    rm_info("%s: events applied=%llu invalid=%llu ignored=%llu duplicate=%llu tombstone=%llu "
            "anomalies=%llu dead_lettered=%llu practitioners_written=%llu flushes=%llu "
            "sink_errors=%llu%s%s",
            what, (unsigned long long)atomic_load(&st->events[RM_RESULT_APPLIED]),
            (unsigned long long)atomic_load(&st->events[RM_RESULT_INVALID]),
            (unsigned long long)atomic_load(&st->events[RM_RESULT_IGNORED]),
            (unsigned long long)atomic_load(&st->events[RM_RESULT_DUPLICATE]),
            (unsigned long long)atomic_load(&st->events[RM_RESULT_TOMBSTONE]),
            (unsigned long long)atomic_load(&st->anomalies),
            (unsigned long long)atomic_load(&st->dead_lettered),
            (unsigned long long)atomic_load(&st->practitioners_written),
            (unsigned long long)atomic_load(&st->flushes),
            (unsigned long long)atomic_load(&st->sink_errors), o ? "; invalid by reason:" : "",
            invalid);
}

static rd_kafka_t *dlq_producer(const rm_serve_config_t *cfg) {
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* Never give up on a dead letter: the checkpoint waits for it. */
    const char *defaults[][2] = {{"bootstrap.servers", cfg->brokers},
                                 {"client.id", "readmodel-dlq"},
                                 {"enable.idempotence", "true"},
                                 {"message.timeout.ms", "0"}};
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], err, sizeof(err))) {
            rm_error("dead-letter producer %s: %s", defaults[i][0], err);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    if (rm_kafka_conf_apply(conf, cfg->kafka, cfg->n_kafka) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        rm_error("dead-letter producer: %s", err);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Partition count of the topic, from the workers' first client; 0 when
 * unknown (then --until-caught-up waits for metadata). */
static int topic_partitions(rd_kafka_t *rk, const char *topic) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = 0;
    for (int attempt = 0; attempt < 50 && rm_serve_running; attempt++) {
        if (rd_kafka_metadata(rk, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                n = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
            if (n > 0)
                break;
        }
        sleep(1);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

int rm_serve_run(const rm_serve_config_t *cfg, rm_serve_stats_t *stats) {
    rm_serve_stats_t local;
    if (!stats) {
        memset(&local, 0, sizeof(local));
        stats = &local;
    }
    rm_serve_shared_t sh = {.cfg = cfg, .stats = stats};
    int rc = 0;
    rm_worker_t *workers = calloc((size_t)cfg->workers, sizeof(*workers));
    if (!workers)
        return 1;
    if (cfg->dlq_topic && !(sh.dlq = dlq_producer(cfg))) {
        free(workers);
        return 2;
    }
    int started = 0;
    for (; started < cfg->workers; started++) {
        if (rm_worker_init(&workers[started], started, &sh) < 0) {
            rm_worker_destroy(&workers[started]);
            rc = 2;
            break;
        }
    }
    if (rc == 0 && cfg->until_caught_up) {
        sh.topic_partitions = topic_partitions(workers[0].rk, cfg->topic);
        if (sh.topic_partitions == 0) {
            rm_error("topic %s: no partition metadata from %s", cfg->topic, cfg->brokers);
            rc = 1;
        }
    }
    int running = 0;
    for (int i = 0; rc == 0 && i < started; i++) {
        if (pthread_create(&workers[i].thread, NULL, rm_worker_main, &workers[i]) != 0) {
            rm_error("cannot start worker thread %d", i);
            rc = 1;
            rm_serve_running = 0;
            break;
        }
        running++;
    }
    if (rc == 0)
        rm_info("serving %s from %s into Redis with %d worker(s), group %s-redis", cfg->topic,
                cfg->brokers, cfg->workers, cfg->group);
    time_t last = time(NULL);
    uint64_t last_n = total_events(stats);
    while (rc == 0 && rm_serve_running) {
        usleep(100 * 1000);
        time_t now = time(NULL);
        if (now - last >= 10) {
            uint64_t n = total_events(stats);
            rm_info("progress: %llu events (%.0f/s), %d partition(s) at end of log",
                    (unsigned long long)n, (double)(n - last_n) / (double)(now - last),
                    atomic_load(&sh.eof_partitions));
            last = now;
            last_n = n;
        }
    }
    rm_serve_running = 0;
    for (int i = 0; i < running; i++)
        pthread_join(workers[i].thread, NULL);
    for (int i = 0; i < started; i++)
        rm_worker_destroy(&workers[i]);
    free(workers);
    if (sh.dlq) {
        if (rd_kafka_flush(sh.dlq, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rm_error("dead-letter producer: %d message(s) not delivered",
                     rd_kafka_outq_len(sh.dlq));
            sh.failed = 1;
        }
        rd_kafka_destroy(sh.dlq);
    }
    log_summary(stats, "stopped");
    if (rc == 0 && atomic_load(&sh.failed))
        rc = 1;
    return rc;
}
