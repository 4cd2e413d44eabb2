/*
 * serve: starts the workers (one consumer per thread in the group
 * `<group>-redis`), the shared dead-letter producer, logs progress every
 * few seconds, and stops everything in order on rm_serve_stop().
 */
#include "worker.h"
#include "readmodel/kafka.h"
#include "readmodel/http.h"
#include "readmodel/metrics.h"
#include "readmodel/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t total_events(rm_stats_t *st) {
    uint64_t n = 0;
    for (int i = 0; i < RM_RESULT__COUNT; i++)
        n += atomic_load(&st->events[i]);
    return n;
}

static void log_summary(rm_stats_t *st, const char *what) {
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

static rd_kafka_t *dlq_producer(const rm_config_t *cfg) {
    char err[256];
    /* Never give up on a dead letter: the checkpoint waits for it. */
    const rm_kafka_prop_t defaults[] = {{"bootstrap.servers", cfg->brokers},
                                        {"client.id", "readmodel-dlq"},
                                        {"enable.idempotence", "true"},
                                        {"message.timeout.ms", "0"}};
    rd_kafka_t *rk =
        rm_kafka_new(RD_KAFKA_PRODUCER, defaults, sizeof(defaults) / sizeof(defaults[0]),
                     cfg->kafka, cfg->n_kafka, NULL, NULL, err, sizeof(err));
    if (!rk)
        rm_error("dead-letter producer: %s", err);
    return rk;
}

/* Partition count of the topic, from the workers' first client; 0 when
 * unknown (then --until-caught-up waits for metadata). */
static int topic_partitions(rd_kafka_t *rk, const char *topic) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = 0;
    for (int attempt = 0; attempt < 50 && rm_running(); attempt++) {
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

/* Value of `field` in "k=v" lines, or NULL. */
static const char *record_field(const char *rec, const char *field, char *out, size_t cap) {
    size_t n = strlen(field);
    for (const char *l = rec; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, field, n) == 0 && l[n] == '=') {
            const char *end = strchr(l, '\n');
            snprintf(out, cap, "%.*s", (int)(end ? end - l - (long)n - 1 : (long)strlen(l + n + 1)),
                     l + n + 1);
            return out;
        }
    return NULL;
}

/* The last rebuild's and verify's records, for /metrics (and so alerts). */
static void read_records(rm_stats_t *st, rm_redis_sink_t *health) {
    char rec[1024], v[64];
    if (rm_redis_record_get(health, "rebuild:last:redis", rec, sizeof(rec)) == RM_ERR_OK &&
        record_field(rec, "finished_at", v, sizeof(v))) {
        atomic_store(&st->rebuild_finished_s, atoll(v));
        atomic_store(&st->rebuild_ok,
                     record_field(rec, "result", v, sizeof(v)) && strcmp(v, "ok") == 0);
        if (record_field(rec, "duration_s", v, sizeof(v)))
            atomic_store(&st->rebuild_duration_ms, (long long)(atof(v) * 1000));
    }
    if (rm_redis_record_get(health, "verify:last:redis", rec, sizeof(rec)) == RM_ERR_OK &&
        record_field(rec, "finished_at", v, sizeof(v))) {
        atomic_store(&st->verify_finished_s, atoll(v));
        if (record_field(rec, "drift", v, sizeof(v)))
            atomic_store(&st->verify_drift, atoll(v));
    }
}

/* Refreshes what /metrics shows that no worker reports by itself: partition
 * end and earliest offsets (librdkafka's cached watermarks, updated by every
 * fetch response, so lag grows while a worker is stuck on its sink) and
 * whether Redis answers. */
static void refresh(rm_stats_t *st, rm_worker_t *workers, int nworkers, const char *topic,
                    rm_redis_sink_t *health) {
    for (int p = 0; p < RM_MAX_PARTITIONS; p++) {
        int owner = atomic_load(&st->parts[p].owner);
        if (owner < 1 || owner > nworkers || !workers[owner - 1].rk)
            continue;
        int64_t lo = -1, hi = -1;
        if (rd_kafka_get_watermark_offsets(workers[owner - 1].rk, topic, p, &lo, &hi) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            hi >= 0) {
            atomic_store(&st->parts[p].end, hi);
            atomic_store(&st->parts[p].earliest, lo);
        }
    }
    if (health && rm_mono_ms() - st->records_read_ms >= 10000) {
        st->records_read_ms = rm_mono_ms();
        read_records(st, health);
    }
    if (health) {
        bool up = rm_redis_sink_ping(health) == RM_ERR_OK;
        if (!up && atomic_load(&st->sink_ping_ok))
            rm_warn("Redis does not answer: %s", rm_redis_sink_last_error(health));
        atomic_store(&st->sink_ping_ok, up);
    }
}

/* One target's pipeline: its workers (each its own consumer in the group
 * `<group>-<target>`) and what they share. */
typedef struct {
    rm_serve_shared_t sh;
    rm_worker_t *workers;
    int started, running;
    rm_redis_sink_t *redis_health;
    rm_os_sink_t *os_health;
} pipeline_t;

static int pipeline_init(pipeline_t *pl, const rm_config_t *cfg, rm_target_t target,
                         rm_stats_t *stats) {
    pl->sh = (rm_serve_shared_t){.cfg = cfg, .stats = stats, .target = target};
    stats->workers = cfg->workers;
    stats->target = target == RM_TARGET_OPENSEARCH ? "opensearch" : "redis";
    atomic_store(&stats->sink_write_ok, 1);
    if (!(pl->workers = calloc((size_t)cfg->workers, sizeof(*pl->workers))))
        return 1;
    /* Invalid events are dead-lettered once, by the Redis pipeline. */
    if (target == RM_TARGET_REDIS && cfg->dlq_topic && !(pl->sh.dlq = dlq_producer(cfg)))
        return 2;
    for (; pl->started < cfg->workers; pl->started++) {
        if (rm_worker_init(&pl->workers[pl->started], pl->started, &pl->sh) < 0) {
            rm_worker_destroy(&pl->workers[pl->started]);
            return 2;
        }
    }
    if (cfg->metrics_addr) {
        if (target == RM_TARGET_OPENSEARCH) {
            rm_os_config_t oc = rm_os_config_of(cfg);
            pl->os_health = rm_os_sink_new(&oc);
        } else {
            rm_redis_url_t url;
            char err[256];
            if (rm_redis_url_parse(cfg->redis_url, &url, err, sizeof(err)) == 0) {
                pl->redis_health = rm_redis_sink_new(&url, cfg->redis_prefix);
                rm_redis_url_free(&url);
            }
        }
    }
    return 0;
}

static int pipeline_start(pipeline_t *pl) {
    for (int i = 0; i < pl->started; i++) {
        if (pthread_create(&pl->workers[i].thread, NULL, rm_worker_main, &pl->workers[i]) != 0) {
            rm_error("cannot start worker thread %d", i);
            rm_stop_request();
            return 1;
        }
        pl->running++;
    }
    return 0;
}

/* Joins and frees; returns 1 when the pipeline failed. */
static int pipeline_stop(pipeline_t *pl) {
    for (int i = 0; i < pl->running; i++)
        pthread_join(pl->workers[i].thread, NULL);
    for (int i = 0; i < pl->started; i++)
        rm_worker_destroy(&pl->workers[i]);
    free(pl->workers);
    if (pl->sh.dlq) {
        if (rd_kafka_flush(pl->sh.dlq, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rm_error("dead-letter producer: %d message(s) not delivered",
                     rd_kafka_outq_len(pl->sh.dlq));
            pl->sh.failed = 1;
        }
        rd_kafka_destroy(pl->sh.dlq);
    }
    rm_redis_sink_free(pl->redis_health);
    rm_os_sink_free(pl->os_health);
    return atomic_load(&pl->sh.failed) ? 1 : 0;
}

static void pipeline_refresh(pipeline_t *pl, const char *topic) {
    rm_stats_t *st = pl->sh.stats;
    refresh(st, pl->workers, pl->started, topic, pl->redis_health);
    if (pl->os_health) {
        bool up = rm_os_sink_ping(pl->os_health) == RM_ERR_OK;
        if (!up && atomic_load(&st->sink_ping_ok))
            rm_warn("OpenSearch does not answer: %s", rm_os_sink_last_error(pl->os_health));
        atomic_store(&st->sink_ping_ok, up);
    }
}

static bool caught_up(pipeline_t *pl) {
    return pl->sh.topic_partitions > 0 &&
           atomic_load(&pl->sh.eof_partitions) >= pl->sh.topic_partitions;
}

rm_err_t rm_serve_run(const rm_config_t *cfg, rm_stats_t *stats) {
    rm_stats_t *local = NULL, *os_stats = NULL;
    if (!stats && !(stats = local = calloc(1, sizeof(*stats))))
        return RM_ERR_NOMEM;
    bool with_os = cfg->opensearch_url != NULL;
    if (with_os && !(os_stats = calloc(1, sizeof(*os_stats)))) {
        free(local);
        return RM_ERR_NOMEM;
    }
    if (os_stats) {
        os_stats->job = stats->job;
        stats->next = os_stats;
    }
    pipeline_t pls[2];
    memset(pls, 0, sizeof(pls));
    int npl = with_os ? 2 : 1;
    int rc = 0;
    rm_http_t *http = NULL;
    for (int i = 0; i < npl && rc == 0; i++)
        rc = pipeline_init(&pls[i], cfg, i ? RM_TARGET_OPENSEARCH : RM_TARGET_REDIS,
                           i ? os_stats : stats);
    if (rc == 0 && cfg->metrics_addr) {
        char err[256];
        if (!(http =
                  rm_http_start(cfg->metrics_addr, stats, cfg->topic, "redis", err, sizeof(err)))) {
            rm_error("--metrics-addr: %s", err);
            rc = 2;
        } else {
            rm_info("metrics and health on %s (port %d): /metrics /livez /readyz",
                    cfg->metrics_addr, rm_http_port(http));
        }
    }
    if (rc == 0 && cfg->until_caught_up) {
        int n = topic_partitions(pls[0].workers[0].rk, cfg->topic);
        for (int i = 0; i < npl; i++)
            pls[i].sh.topic_partitions = n;
        if (n == 0) {
            rm_error("topic %s: no partition metadata from %s", cfg->topic, cfg->brokers);
            rc = 1;
        }
    }
    for (int i = 0; i < npl && rc == 0; i++)
        rc = pipeline_start(&pls[i]);
    if (rc == 0)
        rm_info("serving %s from %s with %d worker(s) per target: Redis (group %s-redis)%s%s%s",
                cfg->topic, cfg->brokers, cfg->workers, cfg->group,
                with_os ? ", OpenSearch (group " : "", with_os ? cfg->group : "",
                with_os ? "-opensearch)" : "");
    time_t last = time(NULL);
    uint64_t last_n = total_events(stats);
    long long last_refresh = 0;
    while (rc == 0 && rm_running()) {
        usleep(100 * 1000);
        if (http && rm_mono_ms() - last_refresh >= 1000) {
            last_refresh = rm_mono_ms();
            for (int i = 0; i < npl; i++)
                pipeline_refresh(&pls[i], cfg->topic);
        }
        if (cfg->until_caught_up && caught_up(&pls[0]) && (npl == 1 || caught_up(&pls[1]))) {
            rm_info("caught up: every partition is applied to its end%s",
                    npl > 1 ? " in every target" : "");
            rm_stop_request();
        }
        time_t now = time(NULL);
        if (now - last >= 10) {
            uint64_t n = total_events(stats);
            rm_info("progress: %llu events (%.0f/s), %d partition(s) at end of log",
                    (unsigned long long)n, (double)(n - last_n) / (double)(now - last),
                    atomic_load(&pls[0].sh.eof_partitions));
            last = now;
            last_n = n;
        }
    }
    rm_stop_request();
    int failed = 0;
    for (int i = 0; i < npl; i++)
        failed |= pipeline_stop(&pls[i]);
    log_summary(stats, "stopped (redis)");
    if (os_stats)
        log_summary(os_stats, "stopped (opensearch)");
    rm_http_stop(http);
    if (rc == 0 && failed)
        rc = 1;
    stats->next = NULL;
    free(os_stats);
    free(local);
    return rc == 0 ? RM_ERR_OK : rc == 2 ? RM_ERR_INVAL : RM_ERR_IO;
}
