/*
 * `readmodel serve`: consumer workers that keep the Redis availability
 * model in step with the booking log.
 *
 * Flow per worker: poll a batch -> decode -> project (per-partition state)
 * -> flush dirty practitioners (sink) -> checkpoint (sink, compare-and-set)
 * -> commit offsets to Kafka (for lag tools). Each worker thread is its own
 * consumer in the group `<group>-redis`, so the partitions it is assigned
 * are owned by that thread alone and rebalance callbacks run on it.
 */
#ifndef READMODEL_SERVE_H
#define READMODEL_SERVE_H

#include "readmodel/event.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *brokers;
    char *topic;
    char *group;
    char *redis_url;
    char *redis_prefix;
    char *dlq_topic; /* NULL: invalid events are only counted and logged */
    int workers;
    char **kafka; /* "key=value" librdkafka properties, applied last */
    size_t n_kafka;
    size_t max_batch;       /* messages per batch */
    size_t cache_limit;     /* practitioners kept in memory per worker */
    bool until_caught_up;   /* exit 0 once every partition is applied to its end */
    int shutdown_timeout_s; /* how long a stop may wait for an unreachable sink */
    bool check_config;      /* only validate and print the configuration */
    char *metrics_addr;     /* host:port of /metrics, /livez, /readyz; NULL: off */

    /* rebuild / verify / status */
    char *target;         /* redis | opensearch | all */
    bool from_beginning;  /* rebuild: required, the only mode */
    bool allow_truncated; /* rebuild/verify: accept partitions starting above offset 0 */
    bool dry_run;         /* rebuild: print the plan only */
    bool flush;           /* rebuild: drop the model first (the seed runbook) */
    bool yes;             /* rebuild --flush: confirmed */
    int lease_ttl_ms;     /* rebuild: lease expiry, renewed at a third of it */

    /* OpenSearch practitioner index (off when opensearch_url is NULL). */
    char *opensearch_url;
    char *opensearch_prefix;  /* index and alias name prefix, "" by default */
    char *opensearch_ca_file; /* PEM CA bundle */
    char *opensearch_cert_file, *opensearch_key_file; /* client certificate */
    char *opensearch_username, *opensearch_password;  /* from env or a file, never a flag */
    char *opensearch_aws_region;                      /* sign requests with AWS SigV4 */
    char *aws_key, *aws_secret, *aws_token;
    char *credentials_file; /* --opensearch-credentials-file, read at config time */
    size_t opensearch_bulk_docs, opensearch_bulk_bytes;
    bool keep_previous;   /* rebuild: keep the previous index generation */
    int previous_grace_s; /* rebuild: wait before deleting the previous generation */
} rm_serve_config_t;

/* Result counters, shared by all workers (relaxed atomics). */
#define RM_RESULT_MAP(X)                                                                           \
    X(APPLIED, "applied")                                                                          \
    X(INVALID, "invalid")                                                                          \
    X(IGNORED, "ignored")                                                                          \
    X(DUPLICATE, "duplicate")                                                                      \
    X(TOMBSTONE, "tombstone")

typedef enum {
#define RM_RESULT_ENUM(n, s) RM_RESULT_##n,
    RM_RESULT_MAP(RM_RESULT_ENUM)
#undef RM_RESULT_ENUM
        RM_RESULT__COUNT
} rm_result_t;

#define RM_MAX_PARTITIONS 1024
#define RM_MAX_WORKERS    256

/* What one partition looks like from this process, for /metrics. Written by
 * the worker that owns it (and offsets by serve's refresher); read by the
 * HTTP thread. */
typedef struct {
    atomic_int owner;           /* worker id + 1; 0 when not assigned here */
    atomic_llong checkpoint;    /* next offset, as checkpointed; -1 none */
    atomic_llong end;           /* end offset (high watermark); -1 unknown */
    atomic_llong earliest;      /* earliest offset; -1 unknown */
    atomic_llong pending_ts_ms; /* timestamp of the oldest message polled but not yet
                                   checkpointed; 0 none */
    atomic_llong applied_ts_ms; /* timestamp of the last checkpointed message; 0 none */
} rm_partition_obs_t;

/* Kinds of sink error, the `kind` label of readmodel_sink_errors_total. */
#define RM_SINK_ERROR_MAP(X)                                                                       \
    X(LOAD, "load")                                                                                \
    X(FLUSH, "flush")                                                                              \
    X(CHECKPOINT, "checkpoint")                                                                    \
    X(LEASE, "lease")

typedef enum {
#define RM_SINK_ERROR_ENUM(n, s) RM_SINK_ERROR_##n,
    RM_SINK_ERROR_MAP(RM_SINK_ERROR_ENUM)
#undef RM_SINK_ERROR_ENUM
        RM_SINK_ERROR__COUNT
} rm_sink_error_t;

#define RM_FLUSH_SECONDS_BUCKETS 9
#define RM_FLUSH_SIZE_BUCKETS    6

typedef struct rm_serve_stats {
    atomic_uint_least64_t events[RM_RESULT__COUNT];
    atomic_uint_least64_t invalid[RM_REASON__COUNT];
    atomic_uint_least64_t anomalies; /* cancellations of unknown bookings */
    atomic_uint_least64_t dead_lettered;
    atomic_uint_least64_t flushes;
    atomic_uint_least64_t practitioners_written;
    atomic_uint_least64_t sink_errors;
    atomic_uint_least64_t resets; /* checkpoint moved under us: partition re-read */

    /* Observability (issue 5). */
    atomic_uint_least64_t sink_error_kinds[RM_SINK_ERROR__COUNT];
    atomic_int sink_write_ok; /* last write or read by a worker succeeded */
    atomic_int sink_ping_ok;  /* serve's health connection answers PING */
    atomic_int paused;        /* workers paused by a rebuild lease */
    atomic_uint_least64_t flush_seconds_bucket[RM_FLUSH_SECONDS_BUCKETS + 1]; /* +Inf last */
    atomic_uint_least64_t flush_seconds_sum_us;
    atomic_uint_least64_t flush_size_bucket[RM_FLUSH_SIZE_BUCKETS + 1];
    atomic_uint_least64_t flush_size_sum;
    atomic_llong heartbeat_ms[RM_MAX_WORKERS]; /* each worker's last loop turn */
    int workers;
    /* Last rebuild and verify, read from their records in the sink. */
    atomic_llong rebuild_finished_s; /* 0: no record */
    atomic_int rebuild_ok;
    atomic_llong rebuild_duration_ms;
    atomic_llong verify_finished_s; /* 0: no record */
    atomic_llong verify_drift;
    long long records_read_ms; /* serve's refresher only */
    /* A running rebuild or verify (their own --metrics-addr). */
    int role;                                 /* rm_role_t: which metrics /metrics shows */
    atomic_int rebuild_phase;                 /* rm_rebuild_phase_t */
    atomic_llong rebuild_done, rebuild_total; /* of the current phase */
    atomic_llong rebuild_rate;                /* events/s of the replay */
    rm_partition_obs_t parts[RM_MAX_PARTITIONS];
    /* Pipelines: serve's Redis stats may chain the OpenSearch pipeline's. */
    const char *target;             /* label value; NULL: the caller's */
    struct rm_serve_stats *next;    /* not owned */
    atomic_uint_least64_t rejected; /* documents refused for good (OpenSearch 4xx) */
} rm_serve_stats_t;

/* Phases of a rebuild or verify, the `phase` label of readmodel_rebuild_phase. */
#define RM_REBUILD_PHASE_MAP(X)                                                                    \
    X(IDLE, "idle")                                                                                \
    X(PLAN, "plan")                                                                                \
    X(REPLAY, "replay")                                                                            \
    X(WRITE, "write")                                                                              \
    X(COMPARE, "compare")                                                                          \
    X(DONE, "done")                                                                                \
    X(FAILED, "failed")

typedef enum {
#define RM_PHASE_ENUM(n, s) RM_PHASE_##n,
    RM_REBUILD_PHASE_MAP(RM_PHASE_ENUM)
#undef RM_PHASE_ENUM
        RM_PHASE__COUNT
} rm_rebuild_phase_t;

/* Which command a stats block belongs to: serve's /metrics shows the
 * pipeline's metrics, a rebuild's or verify's shows its progress. */
typedef enum { RM_ROLE_SERVE = 0, RM_ROLE_REBUILD, RM_ROLE_VERIFY } rm_role_t;

/* The label value of a phase ("replay"), "unknown" when out of range. */
const char *rm_rebuild_phase_name(rm_rebuild_phase_t phase);

/* Bucket bounds of the two flush histograms. */
extern const double rm_flush_seconds_bounds[RM_FLUSH_SECONDS_BUCKETS];
extern const double rm_flush_size_bounds[RM_FLUSH_SIZE_BUCKETS];
/* Wall clock in milliseconds. */
long long rm_now_ms(void);

const char *rm_result_name(rm_result_t r);

/* Runs serve until rm_serve_stop() (or, with until_caught_up, until the end
 * of the log). Returns 0 on a clean stop, 1 on a runtime failure (logged),
 * 2 on a configuration the clients rejected (logged). stats may be NULL. */
int rm_serve_run(const rm_serve_config_t *cfg, rm_serve_stats_t *stats);
/* Async-signal-safe: asks every worker to finish its batch and stop. */
void rm_serve_stop(void);

#endif
