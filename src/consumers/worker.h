/*
 * One consumer worker (internal to serve): its Kafka consumer, its
 * partitions and their practitioner caches, its sink connection.
 */
#ifndef READMODEL_WORKER_H
#define READMODEL_WORKER_H

#include "readmodel/availability.h"
#include "readmodel/log.h"
#include "readmodel/opensearch_sink.h"
#include "readmodel/practitioner_doc.h"
#include "readmodel/redis_sink.h"
#include "readmodel/serve.h"
#include "readmodel/stop.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>

/* The read model a pipeline maintains. */
typedef enum { RM_TARGET_REDIS = 0, RM_TARGET_OPENSEARCH } rm_target_t;

/* Shared by the workers of one pipeline of a serve process. */
typedef struct {
    const rm_config_t *cfg;
    rm_target_t target;
    rm_stats_t *stats;
    rd_kafka_t *dlq; /* producer, or NULL */
    atomic_int eof_partitions;
    int topic_partitions;
    atomic_int failed;
} rm_serve_shared_t;

typedef struct pract {
    char pid[RM_MAX_ID_CHARS + 1];
    uint8_t pid_len;
    bool dirty;  /* an event was applied since the last flush */
    bool loaded; /* stored state has been read */
    int32_t fence_partition;
    int64_t fence;            /* offset of the last event applied, -1 if none */
    int32_t stored_partition; /* the fence the sink holds, as last read or written */
    int64_t stored_fence;     /* -1: the sink holds no state */
    uint64_t last_used;
    rm_avail_t st;
    rm_profile_t profile; /* OpenSearch pipeline only */
} pract_t;

typedef struct {
    pract_t **slots;
    uint32_t capacity, count;
} pract_map_t;

typedef struct {
    bool owned;
    bool at_eof;
    int32_t partition;
    int64_t next_offset; /* next offset to apply; -1 accepts any */
    int64_t stored_cp;   /* checkpoint known to be in the sink; -1 none */
    int64_t last_ts_ms;  /* timestamp of the last message applied */
    pract_map_t cache;
} part_t;

typedef struct {
    int id;
    rm_serve_shared_t *sh;
    rd_kafka_t *rk;
    rm_redis_sink_t *sink; /* the Redis pipeline's sink, or NULL */
    rm_os_sink_t *os;      /* the OpenSearch pipeline's sink, or NULL */
    rm_decoder_t *dec;
    part_t **parts; /* indexed by partition number */
    int nparts;
    rd_kafka_message_t **msgs; /* pending batch */
    size_t nmsgs;
    uint64_t batch_seq;
    rm_ratelimit_t invalid_log;
    bool paused; /* a rebuild holds the lease: partitions paused, nothing written */
    pthread_t thread;
} rm_worker_t;

/* Creates the worker's consumer and sink; 0, or -1 with the reason logged. */
int rm_worker_init(rm_worker_t *w, int id, rm_serve_shared_t *sh);
void *rm_worker_main(void *arg);
void rm_worker_destroy(rm_worker_t *w);

/* Practitioner cache (pract_map.c). */
pract_t *rm_pract_find(pract_map_t *m, const char *pid, size_t len);
/* Inserts a new, loaded=false entry; NULL on ENOMEM. */
pract_t *rm_pract_add(pract_map_t *m, const char *pid, size_t len);
/* Frees entries not used in the current batch until at most `limit` remain
 * (dirty entries are never evicted). */
void rm_pract_evict(pract_map_t *m, size_t limit, uint64_t current_seq);
void rm_pract_remove(pract_map_t *m, pract_t *p);
void rm_pract_map_free(pract_map_t *m);

/* The OpenSearch sink configuration of cfg (strings borrowed). */
rm_os_config_t rm_os_config_of(const rm_config_t *cfg);

#endif
