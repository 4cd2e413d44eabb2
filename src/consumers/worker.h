/*
 * One consumer worker (internal to serve): its Kafka consumer, its
 * partitions and their practitioner caches, its sink connection.
 */
#ifndef READMODEL_WORKER_H
#define READMODEL_WORKER_H

#include "dead_letter.h"
#include "readmodel/availability.h"
#include "readmodel/log.h"
#include "readmodel/pract_map.h"
#include "readmodel/practitioner_doc.h"
#include "readmodel/serve.h"
#include "readmodel/sink.h"
#include "readmodel/stop.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>

/* Shared by the workers of one pipeline (a sink and its consumer group) of
 * a serve process. */
typedef struct {
    const rm_config_t *cfg;
    const rm_sink_ops_t *ops; /* the pipeline's sink */
    rm_stats_t *stats;
    rm_dlq_t *dlq; /* or NULL (only the first pipeline dead-letters) */
    atomic_int eof_partitions;
    int topic_partitions;
    atomic_int failed;
} rm_serve_shared_t;

typedef struct {
    bool owned;
    bool at_eof;
    int32_t partition;
    int64_t next_offset; /* next offset to apply; -1 accepts any */
    int64_t stored_cp;   /* checkpoint known to be in the sink; -1 none */
    int64_t last_ts_ms;  /* timestamp of the last message applied */
    bool loaded_absent;  /* this batch loaded a practitioner the sink did not hold */
    bool moved_warned;   /* a practitioner stored from another partition was logged */
    pract_map_t cache;
} part_t;

typedef struct {
    int id;
    rm_serve_shared_t *sh;
    rd_kafka_t *rk;
    rm_sink_t sink; /* this worker's own handle of the pipeline's sink */
    rm_decoder_t *dec;
    part_t **parts; /* indexed by partition number */
    int nparts;
    rd_kafka_message_t **msgs; /* pending batch */
    size_t nmsgs;
    uint64_t batch_seq;
    rm_ratelimit_t invalid_log;
    bool paused;         /* a rebuild holds the lease: partitions paused, nothing written */
    time_t dlq_deadline; /* stopping: when waiting for the dead-letter producer ends */
    rm_err_t last_err;   /* result of the last sink call (track() in worker.c) */
    pthread_t thread;
} rm_worker_t;

/* Creates the worker's consumer and sink: RM_ERR_OK, or the failure's code
 * with the reason logged (RM_ERR_INVAL: a client refused the
 * configuration). Free with rm_worker_destroy either way. */
rm_err_t rm_worker_init(rm_worker_t *w, int id, rm_serve_shared_t *sh);
void *rm_worker_main(void *arg);
void rm_worker_destroy(rm_worker_t *w);

#endif
