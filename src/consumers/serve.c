/*
 * serve: one pipeline per configured sink (rm_sinks_configured), each with
 * its workers (one consumer per thread in the group `<group>-<sink>`); the
 * first pipeline's dead-letter producer; the metrics endpoint; progress
 * every few seconds; and an orderly stop on rm_stop_request().
 */
#include "worker.h"
#include "readmodel/clock.h"
#include "readmodel/http.h"
#include "readmodel/kafka.h"
#include "readmodel/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PIPELINES 8

static uint64_t total_events(rm_stats_t *st) {
    uint64_t n = 0;
    for (int i = 0; i < RM_RESULT__COUNT; i++)
        n += atomic_load(&st->events[i]);
    return n;
}

/* The pipeline's counts as fields of one line, invalid events also by
 * reason (invalid_<reason>, the non-zero ones). */
static void log_summary(rm_stats_t *st, const char *target) {
    enum { FIXED = 10 };
    rm_log_field_t f[FIXED + RM_REASON__COUNT] = {
        RM_LOG_I("applied", atomic_load(&st->events[RM_RESULT_APPLIED])),
        RM_LOG_I("invalid", atomic_load(&st->events[RM_RESULT_INVALID])),
        RM_LOG_I("ignored", atomic_load(&st->events[RM_RESULT_IGNORED])),
        RM_LOG_I("duplicate", atomic_load(&st->events[RM_RESULT_DUPLICATE])),
        RM_LOG_I("tombstone", atomic_load(&st->events[RM_RESULT_TOMBSTONE])),
        RM_LOG_I("anomalies", atomic_load(&st->anomalies)),
        RM_LOG_I("dead_lettered", atomic_load(&st->dead_lettered)),
        RM_LOG_I("practitioners_written", atomic_load(&st->practitioners_written)),
        RM_LOG_I("flushes", atomic_load(&st->flushes)),
        RM_LOG_I("sink_errors", atomic_load(&st->sink_errors)),
    };
    char keys[RM_REASON__COUNT][64];
    size_t n = FIXED;
    for (int r = 0; r < RM_REASON__COUNT; r++) {
        uint64_t count = atomic_load(&st->invalid[r]);
        if (!count)
            continue;
        snprintf(keys[r], sizeof(keys[r]), "invalid_%s", rm_reason_name((rm_reason_t)r));
        f[n++] = RM_LOG_I(keys[r], count);
    }
    rm_log_ctx_t ctx = {target, -1, -1};
    rm_log_fields_n(RM_LOG_INFO, &ctx, "stopped: events and writes since start", f, n);
}

/* The topic as serve starts: its partition count and, for
 * --until-caught-up, each partition's end offset (the log it must apply).
 * The topic is looked up in a listing of every topic before any consumer
 * subscribes, so a typo is an error rather than a topic that a broker with
 * auto.create.topics.enable creates. 0; 2 when the topic does not exist; 1
 * when no broker answered and --until-caught-up needs the offsets. Without
 * --until-caught-up unreachable brokers are only logged: the workers keep
 * trying and serve is not ready until they own partitions. */
static int topic_at_start(const rm_config_t *cfg, int *partitions, int64_t **ends,
                          rd_kafka_t **client) {
    char err[512];
    const rm_kafka_prop_t defaults[] = {{"bootstrap.servers", cfg->brokers},
                                        {"group.id", "readmodel-topic-check"},
                                        {"isolation.level", "read_committed"}};
    rd_kafka_t *rk = rm_kafka_new(RD_KAFKA_CONSUMER, defaults, 3, cfg->kafka, cfg->n_kafka, NULL,
                                  NULL, err, sizeof(err));
    if (!rk) {
        rm_error("%s", err);
        return 2;
    }
    int n = -1;
    for (int attempt = 0; n < 0 && attempt < (cfg->until_caught_up ? 30 : 1) && rm_running();
         attempt++)
        n = rm_kafka_topic_partitions(rk, cfg->topic, 5000, err, sizeof(err));
    int rc = 0;
    if (n == 0) {
        rm_error("%s", err);
        rc = 2;
    } else if (n < 0) {
        rm_warn("%s from %s; serve keeps trying", err, cfg->brokers);
        rc = cfg->until_caught_up ? 1 : 0;
    } else if (cfg->until_caught_up && !(*ends = calloc((size_t)n, sizeof(**ends)))) {
        rc = 1;
    }
    for (int p = 0; rc == 0 && *ends && p < n; p++) {
        int64_t lo;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(rk, cfg->topic, p, &lo, &(*ends)[p], 10000);
        if (e) {
            rm_error("topic %s [%d]: offsets: %s", cfg->topic, p, rd_kafka_err2str(e));
            rc = 1;
        }
    }
    *partitions = n > 0 ? n : 0;
    if (rc == 0 && *ends)
        *client = rk; /* kept: caught_up compares with the log's current end */
    else
        rd_kafka_destroy(rk);
    return rc;
}

/* One sink's pipeline: its workers (each its own consumer in the group
 * `<group>-<sink>`), what they share, and serve's own health handle of the
 * sink (with --metrics-addr). */
typedef struct {
    rm_serve_shared_t sh;
    rm_worker_t *workers;
    int started, running;
    rm_sink_t health;
} pipeline_t;

/* The last rebuild's and verify's records, for /metrics (and so alerts). */
static void read_records(rm_stats_t *st, rm_sink_t *health) {
    rm_sink_runs_t runs;
    if (health->ops->last_runs(health->impl, &runs) != RM_ERR_OK)
        return;
    if (runs.rebuild_finished_s) {
        atomic_store(&st->rebuild_finished_s, runs.rebuild_finished_s);
        atomic_store(&st->rebuild_ok, runs.rebuild_ok);
        atomic_store(&st->rebuild_duration_ms, runs.rebuild_duration_ms);
    }
    if (runs.verify_finished_s) {
        atomic_store(&st->verify_finished_s, runs.verify_finished_s);
        atomic_store(&st->verify_drift, runs.verify_drift);
    }
}

/* Refreshes what /metrics shows that no worker reports by itself: partition
 * end and earliest offsets (librdkafka's cached watermarks, updated by every
 * fetch response, so lag grows while a worker is stuck on its sink), the
 * sink's records and whether the sink answers. */
static void pipeline_refresh(pipeline_t *pl, const char *topic) {
    rm_stats_t *st = pl->sh.stats;
    int owned = 0;
    for (int p = 0; p < RM_MAX_PARTITIONS; p++) {
        int owner = atomic_load(&st->parts[p].owner);
        if (owner < 1 || owner > pl->started || !pl->workers[owner - 1].rk)
            continue;
        owned++;
        int64_t lo = -1, hi = -1;
        if (rd_kafka_get_watermark_offsets(pl->workers[owner - 1].rk, topic, p, &lo, &hi) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            hi >= 0) {
            atomic_store(&st->parts[p].end, hi);
            atomic_store(&st->parts[p].earliest, lo);
        }
    }
    long long none = 0;
    if (owned > 0)
        atomic_store(&st->unowned_since_ms, 0);
    else
        atomic_compare_exchange_strong(&st->unowned_since_ms, &none, rm_mono_ms());
    if (!pl->health.impl)
        return;
    if (st->records_read_ms == 0 || rm_mono_ms() - st->records_read_ms >= 10000) {
        st->records_read_ms = rm_mono_ms();
        read_records(st, &pl->health);
    }
    rm_err_t pe = pl->health.ops->ping(pl->health.impl);
    bool up = pe == RM_ERR_OK;
    if (pe == RM_ERR_CONFIG)
        atomic_store(&st->sink_refused, 1);
    else if (up && atomic_load(&st->sink_write_ok))
        atomic_store(&st->sink_refused, 0);
    if (!up && atomic_load(&st->sink_ping_ok))
        rm_warn("%s does not answer: %s", pl->health.ops->title,
                pl->health.ops->last_error(pl->health.impl));
    atomic_store(&st->sink_ping_ok, up);
    if (pl->health.ops->nodes) {
        rm_sink_node_t nodes[RM_SINK_NODES_MAX];
        rm_stats_set_nodes(st, nodes,
                           pl->health.ops->nodes(pl->health.impl, nodes, RM_SINK_NODES_MAX));
    }
}

/* 0, 1 (out of memory) or 2 (a client refused the configuration). The
 * first pipeline dead-letters invalid events (once for every sink). */
static int pipeline_init(pipeline_t *pl, const rm_config_t *cfg, const rm_sink_ops_t *ops,
                         bool first, rm_stats_t *stats) {
    pl->sh = (rm_serve_shared_t){.cfg = cfg, .stats = stats, .ops = ops};
    stats->workers = cfg->workers;
    stats->target = ops->name;
    atomic_store(&stats->sink_write_ok, 1);
    atomic_store(&stats->unowned_since_ms, rm_mono_ms()); /* nothing owned before the join */
    if (!(pl->workers = calloc((size_t)cfg->workers, sizeof(*pl->workers))))
        return 1;
    char err[256];
    if (first && cfg->dlq_topic && !(pl->sh.dlq = rm_dlq_new(cfg, stats, err, sizeof(err)))) {
        rm_error("%s", err);
        return 2;
    }
    for (; pl->started < cfg->workers; pl->started++) {
        if (rm_worker_init(&pl->workers[pl->started], pl->started, &pl->sh) != RM_ERR_OK) {
            rm_worker_destroy(&pl->workers[pl->started]);
            return 2;
        }
    }
    /* serve's own handle: health and records for /metrics, checkpoints for
     * --until-caught-up. */
    if ((cfg->metrics_addr || cfg->until_caught_up) &&
        rm_sink_open(&pl->health, ops, cfg, err, sizeof(err)) != RM_ERR_OK) {
        rm_error("%s: %s", ops->title, err);
        return 2;
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
    if (rm_dlq_free(pl->sh.dlq) < 0)
        pl->sh.failed = 1;
    rm_sink_close(&pl->health);
    return atomic_load(&pl->sh.failed) ? 1 : 0;
}

/* --until-caught-up: the pipeline's sink holds a checkpoint at or past the
 * end offset every partition had when serve started, whichever process of
 * the group applied it (so it ends also when other members own some
 * partitions, and a log that keeps growing does not keep it running). A
 * checkpoint above the log's current end is a reset log, not progress: the
 * worker that owns the partition says so and fails the run. */
static bool caught_up(pipeline_t *pl, const int64_t *ends, int partitions, rd_kafka_t *rk) {
    rm_sink_t *s = &pl->health;
    const char *topic = pl->sh.cfg->topic;
    for (int p = 0; p < partitions; p++) {
        int64_t cp = -1, lo, hi;
        if (ends[p] <= 0)
            continue; /* an empty partition has nothing to apply */
        if (s->ops->checkpoint_get(s->impl, topic, p, &cp) != RM_ERR_OK || cp < ends[p])
            return false;
        if (cp > ends[p] && (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000) !=
                                 RD_KAFKA_RESP_ERR_NO_ERROR ||
                             cp > hi))
            return false;
    }
    return true;
}

/* Every pipeline of one serve process. */
typedef struct {
    const rm_config_t *cfg;
    pipeline_t pls[MAX_PIPELINES];
    rm_stats_t *stats[MAX_PIPELINES]; /* [0] is the caller's (or own) block */
    bool owned[MAX_PIPELINES];
    size_t n;
    rm_http_t *http;
    int partitions; /* of the topic when serve started; 0 unknown */
    int64_t *ends;  /* --until-caught-up: each partition's end offset then (owned) */
    rd_kafka_t *rk; /* --until-caught-up: for the log's current end (owned) */
    int32_t leaders[RM_MAX_PARTITIONS]; /* the topic's partition leaders in serve's last
                                           metadata answer; -1 none, -2 not seen yet */
} serve_t;

/* The topic's partition leaders in a metadata answer of serve's probe,
 * compared with the previous answer's: a change (a leader died and the
 * controller elected another, or leadership moved back) is logged in one
 * line, so a leader failover shows in the log when serve has recovered
 * from it: a warning while a partition has no leader, info once it has. */
static void log_leaders(serve_t *sv, const struct rd_kafka_metadata *md) {
    char moves[512];
    size_t o = 0;
    bool leaderless = false;
    for (int t = 0; t < md->topic_cnt; t++) {
        const rd_kafka_metadata_topic_t *tp = &md->topics[t];
        if (tp->err || strcmp(tp->topic, sv->cfg->topic) != 0)
            continue;
        for (int i = 0; i < tp->partition_cnt; i++) {
            int p = tp->partitions[i].id;
            int32_t now = tp->partitions[i].leader;
            if (p < 0 || p >= RM_MAX_PARTITIONS || sv->leaders[p] == now)
                continue;
            int32_t was = sv->leaders[p];
            sv->leaders[p] = now;
            leaderless |= now < 0;
            if (was == -2 || o >= sizeof(moves))
                continue; /* the first answer; or a line long enough */
            char from[24] = "none", to[24] = "none";
            if (was >= 0)
                snprintf(from, sizeof(from), "%d", was);
            if (now >= 0)
                snprintf(to, sizeof(to), "%d", now);
            o += (size_t)snprintf(moves + o, sizeof(moves) - o, "%s[%d] broker %s -> %s",
                                  o ? ", " : "", p, from, to);
        }
    }
    if (o == 0)
        return;
    if (leaderless)
        rm_warn("topic %s: partition leaders changed: %s", sv->cfg->topic, moves);
    else
        rm_info("topic %s: partition leaders changed: %s", sv->cfg->topic, moves);
}

/* Whether Kafka answers, for /readyz: one metadata request (the locally
 * known topics, 1 s at most) a second for the whole process, through the
 * first pipeline's first consumer (every pipeline reads the same cluster),
 * its answer written to every pipeline's block. The workers' consumers also
 * report every broker down (error_cb), but librdkafka 2.0.2 counts only the
 * brokers it has tried to reach again, so with its sparse connections that
 * report can come late or not at all (seen on a fresh machine: no report
 * 25 s after every broker was killed); the probe bounds the time. A
 * failure marks Kafka down (once), an answer clears it; /readyz turns 503
 * only after RM_KAFKA_DOWN_GRACE_MS of it. */
static void kafka_answers(serve_t *sv) {
    rd_kafka_t *rk = NULL;
    for (size_t i = 0; !rk && i < sv->n; i++)
        if (sv->pls[i].started >= 1)
            rk = sv->pls[i].workers[0].rk;
    if (!rk)
        return;
    const struct rd_kafka_metadata *md = NULL;
    bool up = rd_kafka_metadata(rk, 0, NULL, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->broker_cnt > 0;
    bool was_down = false;
    for (size_t i = 0; i < sv->n; i++) {
        rm_stats_t *st = sv->pls[i].sh.stats;
        if (up && atomic_load(&st->kafka_down_since_ms)) {
            was_down = true;
            atomic_store(&st->kafka_down_since_ms, 0);
        } else if (!up) {
            long long zero = 0;
            atomic_compare_exchange_strong(&st->kafka_down_since_ms, &zero, rm_mono_ms());
        }
    }
    if (was_down)
        rm_info("Kafka answers again (%d broker(s))", md->broker_cnt);
    if (up)
        log_leaders(sv, md);
    if (md)
        rd_kafka_metadata_destroy(md);
}

/* Sets up the pipelines, the metrics endpoint and --until-caught-up's
 * partition count. 0, 1 or 2 as pipeline_init. */
static int serve_init(serve_t *sv, rm_stats_t *stats) {
    const rm_config_t *cfg = sv->cfg;
    const rm_sink_ops_t *ops[MAX_PIPELINES];
    for (int p = 0; p < RM_MAX_PARTITIONS; p++)
        sv->leaders[p] = -2;
    sv->n = rm_sinks_configured(cfg, ops, MAX_PIPELINES);
    if (sv->n == 0) {
        rm_error("no sink is configured");
        return 2;
    }
    int rc = topic_at_start(cfg, &sv->partitions, &sv->ends, &sv->rk);
    if (rc != 0) {
        sv->n = 0;
        return rc;
    }
    for (size_t i = 0; i < sv->n; i++) {
        sv->stats[i] = i == 0 && stats ? stats : calloc(1, sizeof(rm_stats_t));
        sv->owned[i] = !(i == 0 && stats);
        if (!sv->stats[i])
            return 1;
        if (i > 0) { /* one /metrics shows every pipeline */
            sv->stats[i]->job = sv->stats[0]->job;
            sv->stats[i - 1]->next = sv->stats[i];
        }
    }
    for (size_t i = 0; i < sv->n && rc == 0; i++)
        rc = pipeline_init(&sv->pls[i], cfg, ops[i], i == 0, sv->stats[i]);
    if (rc == 0 && cfg->metrics_addr) {
        char err[256];
        if (!(sv->http = rm_http_start(cfg->metrics_addr, sv->stats[0], cfg->topic, ops[0]->name,
                                       err, sizeof(err)))) {
            rm_error("--metrics-addr: %s", err);
            return 2;
        }
        rm_info("metrics and health on %s (port %d): /metrics /livez /readyz", cfg->metrics_addr,
                rm_http_port(sv->http));
    }
    for (size_t i = 0; i < sv->n; i++)
        sv->pls[i].sh.topic_partitions = sv->partitions;
    return rc;
}

static void log_started(const serve_t *sv) {
    char groups[512] = "";
    size_t o = 0;
    for (size_t i = 0; i < sv->n && o < sizeof(groups); i++)
        o += (size_t)snprintf(groups + o, sizeof(groups) - o, "%s%s (group %s-%s)", i ? ", " : "",
                              sv->pls[i].sh.ops->title, sv->cfg->group, sv->pls[i].sh.ops->name);
    rm_info("serving %s from %s with %d worker(s) per target: %s", sv->cfg->topic, sv->cfg->brokers,
            sv->cfg->workers, groups);
}

/* The main loop: metrics refresh every second, progress every 10 s, and
 * --until-caught-up's end. */
static void serve_loop(serve_t *sv) {
    const rm_config_t *cfg = sv->cfg;
    time_t last = time(NULL);
    uint64_t last_n = total_events(sv->stats[0]);
    long long last_refresh = 0, last_check = 0;
    while (rm_running()) {
        usleep(100 * 1000);
        if (sv->http && rm_mono_ms() - last_refresh >= 1000) {
            last_refresh = rm_mono_ms();
            kafka_answers(sv);
            for (size_t i = 0; i < sv->n; i++)
                pipeline_refresh(&sv->pls[i], cfg->topic);
        }
        bool all = cfg->until_caught_up && sv->ends && rm_mono_ms() - last_check >= 500;
        if (all)
            last_check = rm_mono_ms();
        for (size_t i = 0; all && i < sv->n; i++)
            all = caught_up(&sv->pls[i], sv->ends, sv->partitions, sv->rk);
        if (all) {
            rm_info("caught up: every partition is applied to its end%s",
                    sv->n > 1 ? " in every target" : "");
            rm_stop_request();
        }
        time_t now = time(NULL);
        if (now - last >= 10) {
            uint64_t n = total_events(sv->stats[0]);
            rm_log_fields(
                RM_LOG_INFO, NULL, "progress", RM_LOG_I("events", n),
                RM_LOG_D("events_per_second", (double)(n - last_n) / (double)(now - last)),
                RM_LOG_I("partitions_at_end", atomic_load(&sv->pls[0].sh.eof_partitions)));
            last = now;
            last_n = n;
        }
    }
}

rm_err_t rm_serve_run(const rm_config_t *cfg, rm_stats_t *stats) {
    serve_t sv = {.cfg = cfg};
    int rc = serve_init(&sv, stats);
    for (size_t i = 0; i < sv.n && rc == 0; i++)
        rc = pipeline_start(&sv.pls[i]);
    if (rc == 0) {
        log_started(&sv);
        serve_loop(&sv);
    }
    rm_stop_request();
    int failed = 0;
    for (size_t i = 0; i < sv.n; i++)
        if (sv.pls[i].sh.cfg)
            failed |= pipeline_stop(&sv.pls[i]);
    for (size_t i = 0; i < sv.n; i++)
        if (sv.stats[i] && sv.pls[i].sh.cfg)
            log_summary(sv.stats[i], sv.pls[i].sh.ops->name);
    rm_http_stop(sv.http);
    if (rc == 0 && failed)
        rc = 1;
    for (size_t i = 0; i < MAX_PIPELINES; i++) {
        if (sv.stats[i])
            sv.stats[i]->next = NULL;
        if (sv.owned[i])
            free(sv.stats[i]);
    }
    free(sv.ends);
    if (sv.rk)
        rd_kafka_destroy(sv.rk);
    return rc == 0 ? RM_ERR_OK : rc == 2 ? RM_ERR_INVAL : RM_ERR_IO;
}
