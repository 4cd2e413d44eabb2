/*
 * Metrics: one table of descriptors (name, type, help) rendered in one
 * place, in the order of the table. Names follow
 * readmodel_<subsystem>_<what>_<unit>[_total]; labels stay bounded (target,
 * topic, partition, result, reason, kind) and never name a practitioner.
 */
#include "readmodel/metrics.h"
#include "readmodel/clock.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef RM_VERSION
#define RM_VERSION "dev"
#endif

static double started_at;

void rm_metrics_process_started(void) {
    started_at = (double)rm_wall_ms() / 1000.0;
}

#define RM_METRIC_MAP(X)                                                                           \
    X(BUILD_INFO, ALL, "readmodel_build_info", "gauge", "Version of this build (value is 1).")     \
    X(EVENTS, SERVE, "readmodel_events_total", "counter",                                          \
      "Messages consumed, by result: applied, invalid, ignored (unknown type), duplicate (at or "  \
      "below a fence), tombstone, quarantined (its practitioner's stored state does not decode).") \
    X(INVALID, SERVE, "readmodel_invalid_events_total", "counter", "Invalid events, by reason.")   \
    X(DEAD_LETTERED, SERVE, "readmodel_dead_lettered_total", "counter",                            \
      "Invalid events produced to the dead-letter topic.")                                         \
    X(DEAD_LETTERS_CUT, SERVE, "readmodel_dead_letters_cut_total", "counter",                      \
      "Dead letters too large for the dead-letter topic, sent cut to their first bytes or as "     \
      "headers only (header truncated=true).")                                                     \
    X(ANOMALIES, SERVE, "readmodel_anomalies_total", "counter",                                    \
      "Valid events that changed nothing, by kind (unknown_booking: a cancellation of an "         \
      "unknown booking).")                                                                         \
    X(REJECTED, SERVE, "readmodel_documents_rejected_total", "counter",                            \
      "Documents the sink refused for good (OpenSearch 4xx item errors); their state is kept and " \
      "the next event of that practitioner writes the document again.")                            \
    X(CORRUPT, SERVE, "readmodel_corrupt_states_total", "counter",                                 \
      "Loads that found a practitioner's stored state undecodable: its events are skipped "        \
      "(readmodel_events_total result quarantined) and nothing of it is written until readmodel "  \
      "rebuild repairs it.")                                                                       \
    X(LAG_MESSAGES, SERVE, "readmodel_consumer_lag_messages", "gauge",                             \
      "End offset minus the next offset to apply, per partition assigned to this process.")        \
    X(LAG_SECONDS, SERVE, "readmodel_consumer_lag_seconds", "gauge",                               \
      "Age of the oldest message not yet applied (0 when caught up); when that message has not "   \
      "been fetched yet, the age of the last applied one, an upper bound.")                        \
    X(END_OFFSET, SERVE, "readmodel_partition_end_offset", "gauge",                                \
      "End offset (high watermark).")                                                              \
    X(EARLIEST_OFFSET, SERVE, "readmodel_partition_earliest_offset", "gauge",                      \
      "Earliest retained offset; above 0 means truncated history.")                                \
    X(CHECKPOINT, SERVE, "readmodel_checkpoint_offset", "gauge",                                   \
      "Next offset to consume, as checkpointed in the sink (-1: none).")                           \
    X(OUT_OF_RANGE, SERVE, "readmodel_checkpoint_out_of_range", "gauge",                           \
      "1 when a partition's checkpoint is above its end offset (the log was reset) or below its "  \
      "earliest offset (retention deleted unapplied events); repair with readmodel rebuild.")      \
    X(ASSIGNED, SERVE, "readmodel_assigned_partitions", "gauge",                                   \
      "Partitions assigned to this process.")                                                      \
    X(FLUSH_SECONDS, SERVE, "readmodel_sink_flush_duration_seconds", "histogram",                  \
      "Duration of successful sink flushes.")                                                      \
    X(FLUSH_SIZE, SERVE, "readmodel_sink_flush_practitioners", "histogram",                        \
      "Practitioners written per flush.")                                                          \
    X(WRITTEN, SERVE, "readmodel_sink_practitioners_written_total", "counter",                     \
      "Practitioner writes (keys, state and fence in one atomic step).")                           \
    X(SINK_ERRORS, SERVE, "readmodel_sink_errors_total", "counter", "Sink errors, by kind.")       \
    X(SINK_UP, SERVE, "readmodel_sink_up", "gauge",                                                \
      "1 when the sink answers and the last write succeeded.")                                     \
    X(SINK_NODE_UP, SERVE, "readmodel_sink_node_up", "gauge",                                      \
      "1 when this node of the sink (each master of a Redis Cluster, or the one Redis server) "    \
      "answered the last health check (PING, once a second), 0 when it did not.")                  \
    X(PAUSED, SERVE, "readmodel_target_paused", "gauge",                                           \
      "1 while a rebuild holds the target's lease and writes are paused.")                         \
    X(RESETS, SERVE, "readmodel_partition_resets_total", "counter",                                \
      "Partitions re-read from the stored checkpoint because the sink was not as last written "    \
      "(rebuild, data loss, another writer).")                                                     \
    X(REBUILD_FINISHED, SERVE, "readmodel_rebuild_last_finish_timestamp_seconds", "gauge",         \
      "When the last rebuild of the target finished (from its record in the sink).")               \
    X(REBUILD_SUCCESS, SERVE, "readmodel_rebuild_last_success", "gauge",                           \
      "1 when the last rebuild completed, 0 when it failed.")                                      \
    X(REBUILD_DURATION, SERVE, "readmodel_rebuild_last_duration_seconds", "gauge",                 \
      "Duration of the last rebuild.")                                                             \
    X(REBUILD_IN_PROGRESS, JOB, "readmodel_rebuild_in_progress", "gauge",                          \
      "1 while this rebuild or verify Job has not finished.")                                      \
    X(REBUILD_PHASE, JOB, "readmodel_rebuild_phase", "gauge",                                      \
      "Phase of this rebuild or verify: 1 for the current one (plan, replay, write or "            \
      "compare, done, failed).")                                                                   \
    X(REBUILD_PROGRESS, JOB, "readmodel_rebuild_progress_ratio", "gauge",                          \
      "Share of the current phase done: events replayed, then practitioners written or "           \
      "compared.")                                                                                 \
    X(REBUILD_RATE, JOB, "readmodel_rebuild_events_per_second", "gauge",                           \
      "Events replayed per second (the replay's rate).")                                           \
    X(VERIFY_FINISHED, SERVE, "readmodel_verify_last_timestamp_seconds", "gauge",                  \
      "When the last verify finished.")                                                            \
    X(VERIFY_DRIFT, SERVE, "readmodel_verify_last_drift", "gauge",                                 \
      "Differences found by the last verify (keys, states, checkpoints); 0: identical.")           \
    X(CPU, ALL, "process_cpu_seconds_total", "counter", "User and system CPU time.")               \
    X(RSS, ALL, "process_resident_memory_bytes", "gauge", "Resident memory.")                      \
    X(FDS, ALL, "process_open_fds", "gauge", "Open file descriptors.")                             \
    X(START, ALL, "process_start_time_seconds", "gauge", "Start time, unix seconds.")

typedef enum {
#define RM_METRIC_ENUM(id, scope, name, type, help) M_##id,
    RM_METRIC_MAP(RM_METRIC_ENUM)
#undef RM_METRIC_ENUM
        M__COUNT
} metric_t;

/* Which processes expose a metric: serve, a rebuild or verify Job, or all. */
enum { SCOPE_SERVE = 1, SCOPE_JOB = 2, SCOPE_ALL = 3 };

static const struct {
    int scope;
    const char *name, *type, *help;
} metrics[M__COUNT] = {
#define RM_METRIC_DESC(id, scope, name, type, help) {SCOPE_##scope, name, type, help},
    RM_METRIC_MAP(RM_METRIC_DESC)
#undef RM_METRIC_DESC
};

typedef struct {
    char *buf;
    size_t len, cap;
    int err;
} out_t;

static void emit(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(out_t *o, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->err = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap + (size_t)n) * 2;
        char *b = realloc(o->buf, cap);
        if (!b) {
            o->err = 1;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
}

static void histogram(out_t *o, const char *name, const char *target,
                      atomic_uint_least64_t *buckets, int nb, const double *bounds, double sum) {
    uint64_t cum = 0;
    for (int b = 0; b < nb; b++) {
        cum += atomic_load(&buckets[b]);
        emit(o, "%s_bucket{target=\"%s\",le=\"%g\"} %llu\n", name, target, bounds[b],
             (unsigned long long)cum);
    }
    cum += atomic_load(&buckets[nb]);
    emit(o, "%s_bucket{target=\"%s\",le=\"+Inf\"} %llu\n", name, target, (unsigned long long)cum);
    emit(o, "%s_sum{target=\"%s\"} %.6f\n%s_count{target=\"%s\"} %llu\n", name, target, sum, name,
         target, (unsigned long long)cum);
}

static long open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    long n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own descriptor */
}

static double resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

/* Counters and gauges of a pipeline that are one sample (or one per label
 * value of a bounded table). */
static void render_counter(out_t *o, int m, rm_stats_t *st, const char *name, const char *target) {
    switch ((metric_t)m) {
    case M_EVENTS:
        for (int r = 0; r < RM_RESULT__COUNT; r++)
            emit(o, "%s{target=\"%s\",result=\"%s\"} %llu\n", name, target,
                 rm_result_name((rm_result_t)r), (unsigned long long)atomic_load(&st->events[r]));
        break;
    case M_INVALID:
        for (int r = 0; r < RM_REASON__COUNT; r++)
            emit(o, "%s{target=\"%s\",reason=\"%s\"} %llu\n", name, target,
                 rm_reason_name((rm_reason_t)r), (unsigned long long)atomic_load(&st->invalid[r]));
        break;
    case M_DEAD_LETTERED:
        emit(o, "%s{target=\"%s\"} %llu\n", name, target,
             (unsigned long long)atomic_load(&st->dead_lettered));
        break;
    case M_DEAD_LETTERS_CUT:
        emit(o, "%s{target=\"%s\"} %llu\n", name, target,
             (unsigned long long)atomic_load(&st->dead_letters_cut));
        break;
    case M_ANOMALIES:
        emit(o, "%s{target=\"%s\",kind=\"unknown_booking\"} %llu\n", name, target,
             (unsigned long long)atomic_load(&st->anomalies));
        break;
    case M_REJECTED:
        emit(o, "%s{target=\"%s\"} %llu\n", name, target,
             (unsigned long long)atomic_load(&st->rejected));
        break;
    case M_CORRUPT:
        emit(o, "%s{target=\"%s\"} %llu\n", name, target,
             (unsigned long long)atomic_load(&st->corrupt_states));
        break;
    case M_WRITTEN:
        emit(o, "%s{target=\"%s\"} %llu\n", name, target,
             (unsigned long long)atomic_load(&st->practitioners_written));
        break;
    case M_SINK_ERRORS:
        for (int k = 0; k < RM_SINK_ERROR__COUNT; k++)
            emit(o, "%s{target=\"%s\",kind=\"%s\"} %llu\n", name, target,
                 rm_sink_error_name((rm_sink_error_t)k),
                 (unsigned long long)atomic_load(&st->sink_error_kinds[k]));
        break;
    case M_SINK_UP:
        emit(o, "%s{target=\"%s\"} %d\n", name, target,
             atomic_load(&st->sink_ping_ok) && atomic_load(&st->sink_write_ok));
        break;
    case M_PAUSED:
        emit(o, "%s{target=\"%s\"} %d\n", name, target, atomic_load(&st->paused) > 0);
        break;
    case M_RESETS:
        emit(o, "%s{target=\"%s\"} %llu\n", name, target,
             (unsigned long long)atomic_load(&st->resets));
        break;
    default:
        break;
    }
}

/* A label value in the exposition format: backslash, double quote and
 * newline escaped. */
static void emit_label(out_t *o, const char *v) {
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            emit(o, "\\%c", *v);
        else if (*v == '\n')
            emit(o, "\\n");
        else
            emit(o, "%c", *v);
    }
}

/* One series per node of the sink, as serve's refresher last found it. */
static void render_nodes(out_t *o, rm_stats_t *st, const char *name, const char *target) {
    rm_sink_node_t nodes[RM_SINK_NODES_MAX];
    int n = rm_stats_get_nodes(st, nodes, RM_SINK_NODES_MAX);
    for (int i = 0; i < n; i++) {
        emit(o, "%s{target=\"%s\",node=\"", name, target);
        emit_label(o, nodes[i].name);
        emit(o, "\"} %d\n", nodes[i].up);
    }
}

/* Per-partition series and the assigned count. */
static void render_partitions(out_t *o, int m, rm_stats_t *st, const char *name, const char *topic,
                              const char *target, long long now) {
    switch ((metric_t)m) {
    case M_LAG_MESSAGES:
    case M_LAG_SECONDS:
    case M_END_OFFSET:
    case M_EARLIEST_OFFSET:
    case M_CHECKPOINT:
        for (int p = 0; p < RM_MAX_PARTITIONS; p++) {
            rm_partition_obs_t *po = &st->parts[p];
            if (!atomic_load(&po->owner))
                continue;
            long long end = atomic_load(&po->end), cp = atomic_load(&po->checkpoint),
                      lo = atomic_load(&po->earliest);
            if ((m != M_CHECKPOINT && end < 0) || (m == M_EARLIEST_OFFSET && lo < 0))
                continue; /* not known yet: absent rather than wrong */
            long long next = cp >= 0 ? cp : (lo >= 0 ? lo : 0);
            long long lag = end > next ? end - next : 0;
            double v = 0;
            if (m == M_LAG_MESSAGES) {
                v = (double)lag;
            } else if (m == M_LAG_SECONDS) {
                long long ts = atomic_load(&po->pending_ts_ms);
                if (!ts)
                    ts = atomic_load(&po->applied_ts_ms);
                v = lag > 0 && ts > 0 && now > ts ? (double)(now - ts) / 1000.0 : 0;
            } else {
                v = (double)(m == M_END_OFFSET ? end : m == M_CHECKPOINT ? cp : lo);
            }
            emit(o, "%s{target=\"%s\",topic=\"%s\",partition=\"%d\"} %.17g\n", name, target, topic,
                 p, v);
        }
        break;
    case M_OUT_OF_RANGE:
        for (int p = 0; p < RM_MAX_PARTITIONS; p++)
            if (atomic_load(&st->parts[p].owner))
                emit(o, "%s{target=\"%s\",topic=\"%s\",partition=\"%d\"} %d\n", name, target, topic,
                     p, rm_partition_out_of_range(&st->parts[p]) != 0);
        break;
    case M_ASSIGNED: {
        int n = 0;
        for (int p = 0; p < RM_MAX_PARTITIONS; p++)
            n += atomic_load(&st->parts[p].owner) != 0;
        emit(o, "%s{target=\"%s\"} %d\n", name, target, n);
        break;
    }
    default:
        break;
    }
}

/* The last rebuild's and verify's records, and a running Job's progress. */
static void render_runs(out_t *o, int m, rm_stats_t *st, const char *name, const char *target) {
    const char *command = st->job ? st->job->command : "";
    switch ((metric_t)m) {
    case M_REBUILD_FINISHED:
    case M_REBUILD_SUCCESS:
    case M_REBUILD_DURATION:
        if (atomic_load(&st->rebuild_finished_s) > 0)
            emit(o, "%s{target=\"%s\"} %.3f\n", name, target,
                 m == M_REBUILD_FINISHED  ? (double)atomic_load(&st->rebuild_finished_s)
                 : m == M_REBUILD_SUCCESS ? (double)atomic_load(&st->rebuild_ok)
                                          : (double)atomic_load(&st->rebuild_duration_ms) / 1e3);
        break;
    case M_REBUILD_IN_PROGRESS: {
        int ph = atomic_load(&st->job->phase);
        emit(o, "%s{target=\"%s\",command=\"%s\"} %d\n", name, target, command,
             ph != RM_PHASE_IDLE && ph != RM_PHASE_DONE && ph != RM_PHASE_FAILED);
        break;
    }
    case M_REBUILD_PHASE:
        for (int ph = 0; ph < RM_PHASE__COUNT; ph++)
            emit(o, "%s{target=\"%s\",command=\"%s\",phase=\"%s\"} %d\n", name, target, command,
                 rm_rebuild_phase_name((rm_rebuild_phase_t)ph), atomic_load(&st->job->phase) == ph);
        break;
    case M_REBUILD_PROGRESS: {
        long long total = atomic_load(&st->job->total), done = atomic_load(&st->job->done);
        emit(o, "%s{target=\"%s\",command=\"%s\"} %.4f\n", name, target, command,
             total > 0 ? (double)done / (double)total : 0.0);
        break;
    }
    case M_REBUILD_RATE:
        emit(o, "%s{target=\"%s\",command=\"%s\"} %lld\n", name, target, command,
             atomic_load(&st->job->rate));
        break;
    case M_VERIFY_FINISHED:
    case M_VERIFY_DRIFT:
        if (atomic_load(&st->verify_finished_s) > 0)
            emit(o, "%s{target=\"%s\"} %lld\n", name, target,
                 m == M_VERIFY_FINISHED ? atomic_load(&st->verify_finished_s)
                                        : atomic_load(&st->verify_drift));
        break;
    default:
        break;
    }
}

static void render_process(out_t *o, int m, const char *name) {
    switch ((metric_t)m) {
    case M_BUILD_INFO:
        emit(o, "%s{version=\"%s\"} 1\n", name, RM_VERSION);
        break;
    case M_CPU: {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        emit(o, "%s %.6f\n", name,
             (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
        break;
    }
    case M_RSS:
        emit(o, "%s %.0f\n", name, resident_bytes());
        break;
    case M_FDS:
        emit(o, "%s %ld\n", name, open_fds());
        break;
    case M_START:
        emit(o, "%s %.3f\n", name, started_at);
        break;
    default:
        break;
    }
}

/* The samples of metric m for one pipeline (st, target); the JOB metrics
 * only for a block with a job (their scope guarantees it). */
static void render_metric(out_t *o, int m, rm_stats_t *st, const char *topic, const char *target,
                          long long now) {
    const char *name = metrics[m].name;
    switch ((metric_t)m) {
    case M_BUILD_INFO:
    case M_CPU:
    case M_RSS:
    case M_FDS:
    case M_START:
        render_process(o, m, name);
        break;
    case M_LAG_MESSAGES:
    case M_LAG_SECONDS:
    case M_END_OFFSET:
    case M_EARLIEST_OFFSET:
    case M_CHECKPOINT:
    case M_OUT_OF_RANGE:
    case M_ASSIGNED:
        render_partitions(o, m, st, name, topic, target, now);
        break;
    case M_FLUSH_SECONDS:
        histogram(o, name, target, st->flush_seconds_bucket, RM_FLUSH_SECONDS_BUCKETS,
                  rm_flush_seconds_bounds, (double)atomic_load(&st->flush_seconds_sum_us) / 1e6);
        break;
    case M_FLUSH_SIZE:
        histogram(o, name, target, st->flush_size_bucket, RM_FLUSH_SIZE_BUCKETS,
                  rm_flush_size_bounds, (double)atomic_load(&st->flush_size_sum));
        break;
    case M_SINK_NODE_UP:
        render_nodes(o, st, name, target);
        break;
    case M_REBUILD_FINISHED:
    case M_REBUILD_SUCCESS:
    case M_REBUILD_DURATION:
    case M_REBUILD_IN_PROGRESS:
    case M_REBUILD_PHASE:
    case M_REBUILD_PROGRESS:
    case M_REBUILD_RATE:
    case M_VERIFY_FINISHED:
    case M_VERIFY_DRIFT:
        render_runs(o, m, st, name, target);
        break;
    default:
        render_counter(o, m, st, name, target);
        break;
    }
}

/* Metrics without a target label, rendered once. */
static bool process_wide(int m) {
    return m == M_BUILD_INFO || m == M_CPU || m == M_RSS || m == M_FDS || m == M_START;
}

char *rm_metrics_render(rm_stats_t *st, const char *topic, const char *target) {
    out_t o = {0};
    long long now = rm_wall_ms(); /* lag seconds: against Kafka message timestamps */
    int scope = st->job ? SCOPE_JOB : SCOPE_SERVE;
    for (int m = 0; m < M__COUNT; m++) {
        const char *name = metrics[m].name;
        if (!(metrics[m].scope & scope))
            continue;
        emit(&o, "# HELP %s %s\n# TYPE %s %s\n", name, metrics[m].help, name, metrics[m].type);
        /* One series per pipeline (Redis, then OpenSearch when it runs). */
        for (rm_stats_t *p = st; p; p = p->next) {
            render_metric(&o, m, p, topic, p->target ? p->target : target, now);
            if (process_wide(m))
                break;
        }
    }
    if (o.err) {
        free(o.buf);
        return NULL;
    }
    return o.buf;
}

bool rm_metrics_ready(rm_stats_t *st, char *why, size_t cap) {
    if (st->job) { /* a Job: nothing to route to it */
        snprintf(why, cap, "%s: %s", st->job->command,
                 rm_rebuild_phase_name((rm_rebuild_phase_t)atomic_load(&st->job->phase)));
        return true;
    }
    if (atomic_load(&st->sink_refused)) {
        snprintf(why, cap,
                 "sink refuses this configuration (credentials, permissions or database); see "
                 "the log");
        return false;
    }
    if (!atomic_load(&st->sink_ping_ok)) {
        rm_sink_node_t nodes[RM_SINK_NODES_MAX];
        int n = rm_stats_get_nodes(st, nodes, RM_SINK_NODES_MAX), down = 0;
        size_t o = (size_t)snprintf(why, cap, "sink unreachable");
        for (int i = 0; i < n; i++)
            if (!nodes[i].up && o < cap)
                o += (size_t)snprintf(why + o, cap - o, "%s%s",
                                      down++ ? ", " : ": node down: ", nodes[i].name);
        return false;
    }
    if (!atomic_load(&st->sink_write_ok)) {
        snprintf(why, cap, "sink writes failing");
        return false;
    }
    for (int p = 0; p < RM_MAX_PARTITIONS; p++)
        if (atomic_load(&st->parts[p].owner) && rm_partition_out_of_range(&st->parts[p]) > 0) {
            snprintf(why, cap,
                     "partition %d: checkpoint above the log's end: the log was reset; run "
                     "readmodel rebuild",
                     p);
            return false;
        }
    long long down = atomic_load(&st->kafka_down_since_ms), now = rm_mono_ms();
    if (down > 0 && now - down > RM_KAFKA_DOWN_GRACE_MS) {
        snprintf(why, cap, "Kafka unreachable: no broker has answered for %lld s",
                 (now - down) / 1000);
        return false;
    }
    long long since = atomic_load(&st->unowned_since_ms);
    if (since > 0 && now - since > RM_UNOWNED_GRACE_MS) {
        snprintf(why, cap,
                 "no partition assigned for %lld s (more consumers than partitions, or the group "
                 "cannot rebalance)",
                 (now - since) / 1000);
        return false;
    }
    snprintf(why, cap, "ok");
    return true;
}

bool rm_metrics_live(rm_stats_t *st, char *why, size_t cap) {
    long long now = rm_mono_ms(); /* heartbeats are monotonic: an NTP step is not a stall */
    for (rm_stats_t *p = st; p; p = p->next) /* every pipeline's workers */
        for (int i = 0; i < p->workers && i < RM_MAX_WORKERS; i++) {
            long long hb = atomic_load(&p->heartbeat_ms[i]);
            if (hb && now - hb > 30000) {
                snprintf(why, cap, "%s worker %d has not turned its loop for %lld s",
                         p->target ? p->target : "", i, (now - hb) / 1000);
                return false;
            }
        }
    snprintf(why, cap, "ok");
    return true;
}
