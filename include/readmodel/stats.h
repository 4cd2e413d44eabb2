/*
 * The metrics model: what the workers of a pipeline count and what a
 * rebuild or verify Job reports, read by the /metrics exporter
 * (observe/metrics.c). Name tables of every label are generated here from
 * one X-macro each (common/stats.c), so the exporter and the logs agree.
 *
 * Thread-safety: see each struct; the name functions are thread-safe.
 */
#ifndef READMODEL_STATS_H
#define READMODEL_STATS_H

#include "readmodel/event.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Results of consuming one message, the `result` label of readmodel_events_total. */
#define RM_RESULT_MAP(X)                                                                           \
    X(APPLIED, "applied")                                                                          \
    X(INVALID, "invalid")                                                                          \
    X(IGNORED, "ignored")                                                                          \
    X(DUPLICATE, "duplicate")                                                                      \
    X(TOMBSTONE, "tombstone")                                                                      \
    X(QUARANTINED, "quarantined")

typedef enum {
#define RM_RESULT_ENUM(n, s) RM_RESULT_##n,
    RM_RESULT_MAP(RM_RESULT_ENUM)
#undef RM_RESULT_ENUM
        RM_RESULT__COUNT
} rm_result_t;

#define RM_MAX_PARTITIONS 1024
#define RM_MAX_WORKERS    256

/* What one partition looks like from this process, for /metrics. Written by
 * the worker that owns it (offsets also by serve's refresher); read by the
 * HTTP thread. Times are wall-clock (they are compared with Kafka message
 * timestamps). */
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

/* One node of a sink that has several (a Redis Cluster's masters), as its
 * last health check found it: the `node` label of readmodel_sink_node_up. */
#define RM_SINK_NODES_MAX 16
#define RM_SINK_NODE_NAME 64
typedef struct {
    char name[RM_SINK_NODE_NAME]; /* "host:port" (or a socket path), NUL-terminated */
    bool up;                      /* answered the last PING */
} rm_sink_node_t;

/* The nodes of a pipeline's sink. Written by serve's refresher
 * (rm_stats_set_nodes), read by the HTTP thread (rm_stats_get_nodes): both
 * copy the whole block under `lock`, a spin lock that is free at 0, so a
 * zeroed block (calloc) is ready and a reader never sees a half-written
 * name. Touch it only through those two functions. */
typedef struct {
    atomic_int lock;
    int n;
    rm_sink_node_t node[RM_SINK_NODES_MAX];
} rm_sink_nodes_t;

#define RM_FLUSH_SECONDS_BUCKETS 9
#define RM_FLUSH_SIZE_BUCKETS    6

/* Progress of a rebuild or verify Job, for that command's own /metrics.
 * Written by the command's main thread (rm_progress_*), read by the HTTP
 * thread. */
typedef struct {
    const char *command;      /* "rebuild" or "verify"; the `command` label */
    atomic_int phase;         /* rm_rebuild_phase_t */
    atomic_llong done, total; /* of the current phase */
    atomic_llong rate;        /* events/s of the replay */
} rm_job_stats_t;

/* The metrics model of one pipeline (a sink and its consumer group) of a
 * serve process, or of a Job. Counters are atomics updated by the worker
 * threads with relaxed order (they publish nothing else); the plain fields
 * (workers, target, next, job) are set before any thread starts and never
 * change; records_read_ms belongs to serve's refresher alone. */
typedef struct rm_stats {
    atomic_uint_least64_t events[RM_RESULT__COUNT];
    atomic_uint_least64_t invalid[RM_REASON__COUNT];
    atomic_uint_least64_t anomalies; /* cancellations of unknown bookings */
    atomic_uint_least64_t dead_lettered;
    atomic_uint_least64_t dead_letters_cut; /* sent cut or as headers only (too large) */
    atomic_uint_least64_t flushes;
    atomic_uint_least64_t practitioners_written;
    atomic_uint_least64_t sink_errors;
    atomic_uint_least64_t resets;         /* checkpoint moved under us: partition re-read */
    atomic_uint_least64_t rejected;       /* documents refused for good (OpenSearch 4xx) */
    atomic_uint_least64_t corrupt_states; /* loads that found a stored state undecodable */

    atomic_uint_least64_t sink_error_kinds[RM_SINK_ERROR__COUNT];
    atomic_int sink_write_ok;      /* last write or read by a worker succeeded */
    atomic_int sink_ping_ok;       /* serve's health connection answers PING */
    atomic_int sink_refused;       /* the sink refuses our credentials, permissions or database */
    atomic_int paused;             /* workers paused by a rebuild lease */
    atomic_llong unowned_since_ms; /* monotonic ms since the pipeline owned no partition
                                      (set by serve's refresher); 0 while it owns one */
    atomic_llong kafka_down_since_ms; /* monotonic ms since serve's refresher got no metadata
                                         answer (or a worker's consumer reported every broker
                                         down); 0 once a broker answers again (a message
                                         arrives, or the refresher gets metadata) */
    atomic_uint_least64_t flush_seconds_bucket[RM_FLUSH_SECONDS_BUCKETS + 1]; /* +Inf last */
    atomic_uint_least64_t flush_seconds_sum_us;
    atomic_uint_least64_t flush_size_bucket[RM_FLUSH_SIZE_BUCKETS + 1];
    atomic_uint_least64_t flush_size_sum;
    atomic_llong heartbeat_ms[RM_MAX_WORKERS]; /* each worker's last loop turn (monotonic) */
    int workers;
    /* Last rebuild and verify, read from their records in the sink. */
    atomic_llong rebuild_finished_s; /* 0: no record */
    atomic_int rebuild_ok;
    atomic_llong rebuild_duration_ms;
    atomic_llong verify_finished_s; /* 0: no record */
    atomic_llong verify_drift;
    long long records_read_ms; /* serve's refresher only (monotonic) */
    rm_sink_nodes_t nodes;     /* the sink's nodes at the last PING; see its type */
    rm_partition_obs_t parts[RM_MAX_PARTITIONS];
    const char *target;    /* label value ("redis"); NULL: the caller's */
    struct rm_stats *next; /* the next pipeline's block (not owned), NULL: last */
    rm_job_stats_t *job;   /* non-NULL in a rebuild or verify: /metrics shows its progress */
} rm_stats_t;

/* How long a pipeline may own no partition before /readyz says so: longer
 * than a rebalance takes (a join waits up to the session timeout, 10 s). */
#define RM_UNOWNED_GRACE_MS 30000

/* How long no broker may answer before /readyz says so: longer than a
 * reconnect to a restarted broker takes, shorter than a session timeout
 * (only after which the partitions would count as unowned). */
#define RM_KAFKA_DOWN_GRACE_MS 5000

/* Where a partition's checkpoint stands against the log: 1 above its end
 * offset (the log was reset), -1 below its earliest offset (retention
 * deleted unapplied events), 0 inside or not known yet. */
int rm_partition_out_of_range(rm_partition_obs_t *o);

/* Records a flush of n practitioners that took `seconds` in the histograms. */
void rm_stats_observe_flush(rm_stats_t *st, double seconds, size_t n);

/* Replaces the pipeline's node list by nodes[0..n) (n above
 * RM_SINK_NODES_MAX: the first ones; names cut to fit). Thread-safe against
 * rm_stats_get_nodes; one writer at a time. No errors. */
void rm_stats_set_nodes(rm_stats_t *st, const rm_sink_node_t *nodes, int n);
/* Copies the node list into out (at most cap; out is the caller's) and
 * returns how many; 0 when the sink has reported none. Thread-safe. */
int rm_stats_get_nodes(rm_stats_t *st, rm_sink_node_t *out, int cap);

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

/* The label value of a phase ("replay"), "unknown" when out of range. */
const char *rm_rebuild_phase_name(rm_rebuild_phase_t phase);

/* Bucket bounds of the two flush histograms. */
extern const double rm_flush_seconds_bounds[RM_FLUSH_SECONDS_BUCKETS];
extern const double rm_flush_size_bounds[RM_FLUSH_SIZE_BUCKETS];
/* The label value of a result ("applied") or sink error kind ("flush"),
 * "unknown" when out of range. */
const char *rm_result_name(rm_result_t r);
const char *rm_sink_error_name(rm_sink_error_t k);

#endif
