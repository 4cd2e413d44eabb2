/*
 * Replay (for rebuild and verify): reads every partition from its earliest
 * offset to the end offset captured when the plan was made, and projects it
 * into fresh in-memory state, one practitioner map per partition. Threads
 * each own a consumer with a manual assignment (no group membership,
 * nothing committed).
 *
 * Thread-safety: one thread drives a replay (plan, start, join, free);
 * rm_replay_take_partition may be called from any number of threads while
 * it runs. Each rm_replay_t carries its own threads, so several replays may
 * run in one process (they do one after the other for --target all).
 */
#ifndef READMODEL_REPLAY_H
#define READMODEL_REPLAY_H

#include "readmodel/config.h"
#include "readmodel/error.h"
#include "readmodel/pract_map.h"
#include "readmodel/stats.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int partitions;
    int64_t *low;  /* earliest offset when planned */
    int64_t *high; /* end offset captured when planned */
    pract_map_t *maps;
    rm_stats_t stats;
    atomic_uint_least64_t done; /* messages read so far */
    uint64_t total;             /* sum of high - low */
    atomic_int failed;
    atomic_int stop; /* set by the caller: the replay threads end early (failed) */
    bool profiles;   /* also project profiles (the OpenSearch document); set before start */
    /* Hand-off of finished partitions (rm_replay_take_partition), under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool sync_init;
    int *finished;   /* partitions read to their end, in the order they ended */
    int nfinished;   /* entries in finished */
    int ntaken;      /* entries handed out */
    int running;     /* replay threads that have not ended */
    size_t *prcount; /* practitioners of each finished partition, when it ended */
    /* Partitions not started yet, shared by the replay threads. */
    int *pool; /* partitions with events, largest first */
    int pool_len;
    atomic_int pool_next;      /* next index of pool to start */
    struct rm_replay_run *run; /* the threads of a started replay (private to replay.c) */
} rm_replay_t;

/* Reads the topic's partitions and their offsets. RM_ERR_OK, or the
 * failure's code (logged: brokers unreachable, the topic does not exist). */
rm_err_t rm_replay_plan(const rm_config_t *cfg, rm_replay_t *r);
/* The current end offset of each of the plan's partitions (ends holds
 * r->partitions entries), for telling a live serve's progress past the plan
 * from a checkpoint or fence that no log position explains. RM_ERR_OK, or
 * RM_ERR_IO (logged). */
rm_err_t rm_replay_ends(const rm_config_t *cfg, const rm_replay_t *r, int64_t *ends);
/* Number of partitions whose earliest offset is above 0. */
int rm_replay_truncated(const rm_replay_t *r);
/* Starts the replay threads; returns at once. RM_ERR_OK, or the failure's
 * code (logged). */
rm_err_t rm_replay_start(const rm_config_t *cfg, rm_replay_t *r);
/* Blocks until a partition has been read to its end offset, and returns it
 * (each partition once). From then on the replay never touches
 * r->maps[p] again: the caller owns it and may write and free it while the
 * other partitions are still being read. Returns -1 once every replay thread
 * has ended and every finished partition was handed out (a failed replay
 * ends with partitions never handed out). Thread-safe. */
int rm_replay_take_partition(rm_replay_t *r);
/* Waits for the replay threads. RM_ERR_OK when every partition reached its
 * end offset, else RM_ERR_IO (logged). The consumers are closed in the
 * background from then on. */
rm_err_t rm_replay_join(rm_replay_t *r);
/* Waits for that background close, then frees the state. Safe after
 * rm_replay_plan alone. */
void rm_replay_free(rm_replay_t *r);

#endif
