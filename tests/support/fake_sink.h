/*
 * A fake sink for worker tests (test_worker, test_alloc_fail): an in-memory
 * store behind a `const rm_sink_ops_t` (fake_sink_ops) with fault knobs, so
 * the worker's flush, checkpoint, resync, pause and revocation paths can be
 * driven and observed without Redis or OpenSearch.
 *
 * The store keeps per practitioner its stored partition, fence and state
 * (rm_avail_encode bytes); per partition the checkpoint; the lease holder;
 * the "moved" flag of take_moved. It also knows which practitioner every
 * produced offset belongs to (fake_sink_expect), so each written fence range
 * counts the events it stores (applied[][]) and each checkpoint CAS checks
 * that every event below it is already stored (cp_violations).
 *
 * The second half (fk_*) drives real serve workers against it: a topic on
 * a mock Kafka, a generated log produced to predicted partitions and
 * offsets, rm_serve_shared_t filled as serve.c does, workers on threads,
 * and the reference states the store must converge to.
 *
 * Thread-safety: every function and every op takes the store's mutex; the
 * test reads fields under fake_sink_lock()/fake_sink_unlock().
 */
#ifndef RM_FAKE_SINK_H
#define RM_FAKE_SINK_H

#include "readmodel/sink.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAKE_MAX_PRACT 256
#define FAKE_MAX_PARTS 8
#define FAKE_MAX_OFFS  2048
#define FAKE_MAX_LOG   8192
#define FAKE_PID_CAP   72

typedef struct {
    char pid[FAKE_PID_CAP];
    int32_t partition;
    int64_t fence;
    char *state; /* rm_avail_encode bytes, owned */
    size_t state_len;
    unsigned writes;
} fake_pract_t;

typedef enum { FAKE_CALL_FLUSH, FAKE_CALL_CAS_OK, FAKE_CALL_CAS_MOVED } fake_call_kind_t;

typedef struct {
    fake_call_kind_t kind;
    int handle;
    int32_t partition; /* CAS: the partition; FLUSH: -1 */
    int64_t value;     /* CAS: next offset; FLUSH: number of items written */
} fake_call_t;

typedef struct {
    pthread_mutex_t mu;
    /* the store */
    fake_pract_t pr[FAKE_MAX_PRACT];
    int npr;
    int64_t cp[FAKE_MAX_PARTS]; /* -1: none */
    char lease[64];             /* "" when free */
    bool moved;
    /* what was produced: the practitioner of each valid event (NULL: none
     * or invalid), to count stored events and check checkpoints */
    const char *ev_pid[FAKE_MAX_PARTS][FAKE_MAX_OFFS];
    unsigned applied[FAKE_MAX_PARTS][FAKE_MAX_OFFS]; /* times each event was stored */
    /* knobs (set by the test under the lock) */
    int fail_flush;      /* fail the next N flushes with RM_ERR_IO */
    int fail_cp_get;     /* fail the next N checkpoint_get with RM_ERR_IO */
    int fail_cas;        /* fail the next N checkpoint_cas with RM_ERR_IO */
    bool cas_move_armed; /* the next CAS whose next > cas_move_to reports "moved" */
    int64_t cas_move_to; /* ... and stores this checkpoint */
    int refuse_items;    /* the next N flushes refuse their first item (fence differs) */
    int flush_delay_ms;  /* each flush takes this long (a slow store) */
    /* observations */
    unsigned flush_calls, flush_ok, flush_failed, flushes_while_leased;
    unsigned cas_calls, cas_ok, cas_moved, cp_get_calls, load_calls;
    unsigned cp_violations; /* a checkpoint passed an event not yet stored */
    int64_t moved_next;     /* the refused CAS: its next offset */
    int32_t moved_partition;
    char refused_pid[FAKE_PID_CAP]; /* the refused item */
    int32_t refused_partition;
    int64_t refused_expect, refused_fence, refused_cp;
    int last_writer[FAKE_MAX_PARTS];  /* handle id, -1 none */
    unsigned writers[FAKE_MAX_PARTS]; /* bitmask of handles that wrote the partition */
    unsigned owner_switches[FAKE_MAX_PARTS];
    unsigned owner_returns[FAKE_MAX_PARTS]; /* a writer came back after another wrote */
    int handles_open, handles_total;
    fake_call_t log[FAKE_MAX_LOG];
    size_t nlog;
} fake_store_t;

extern const rm_sink_ops_t fake_sink_ops;

/* The store every handle opened from now on uses (NULL: open fails). */
void fake_sink_use(fake_store_t *st);
/* A fresh store (checkpoints -1, nothing stored); free with fake_sink_free. */
fake_store_t *fake_sink_new(void);
void fake_sink_free(fake_store_t *st);
void fake_sink_lock(fake_store_t *st);
void fake_sink_unlock(fake_store_t *st);
/* Records that `partition`:`offset` holds a valid event of pid (copied
 * pointer: pid must outlive the store). Under the lock. */
void fake_sink_expect(fake_store_t *st, int32_t partition, int64_t offset, const char *pid);
/* Empties the stored practitioners (a new generation); under the lock. */
void fake_sink_clear(fake_store_t *st);
/* Stores a practitioner as a rebuild would (bytes copied); under the lock.
 * 0, or -1 when the store is full. */
int fake_sink_put(fake_store_t *st, const char *pid, int32_t partition, int64_t fence,
                  const char *state, size_t len);
/* The stored practitioner, or NULL; under the lock. */
fake_pract_t *fake_sink_find(fake_store_t *st, const char *pid);

/* ---- driving real workers against the fake sink and a mock Kafka ---- */

#include "readmodel/mock_kafka.h"
#include "worker.h"

/* One produced message: its bytes, its practitioner (valid events) and
 * where it landed. */
typedef struct {
    char *key, *val;
    size_t klen, vlen;
    char pid[FAKE_PID_CAP]; /* "" unless valid */
    bool valid;
    int32_t partition;
    int64_t offset; /* predicted before producing, checked on delivery */
    bool delivered;
} fk_msg_t;

typedef struct {
    char topic[48], group[48];
    int nparts;
    fk_msg_t *msgs;
    size_t n, nvalid, produced;
    int64_t end[FAKE_MAX_PARTS]; /* offsets produced so far per partition */
    rd_kafka_t *prod;
    char *props[4];
    rm_config_t cfg;
    rm_stats_t *stats;
    rm_serve_shared_t sh;
    rm_worker_t w[2];
    bool inited[2], running[2];
    fake_store_t *fs;
} fk_t;

/* A topic `name` of nparts partitions on mk, a generated log of
 * `practitioners` practitioners (1 day, the given share of invalid events),
 * a producer, a fresh fake store in use, a config (group `name`, max_batch,
 * cache_limit 10000, shutdown 2 s) and a calloc'd stats block. 0 or -1. */
int fk_setup(fk_t *t, rm_mock_kafka_t *mk, const char *name, int nparts, int practitioners,
             double invalid_ratio, size_t max_batch);
/* Produces msgs[from, to) and waits until they are delivered where predicted. 0 or -1. */
int fk_produce(fk_t *t, size_t from, size_t to);
/* rm_worker_init of worker i, then start(&t->w[i]) on its thread. 0 or -1. */
int fk_worker_start(fk_t *t, int i, void *(*start)(void *));
/* rm_stop_request, join, destroy, rm_stop_reset. */
void fk_workers_stop(fk_t *t);
void fk_teardown(fk_t *t);
/* Polls pred every 10 ms until it holds or timeout_ms passes. */
bool fk_wait(fk_t *t, bool (*pred)(fk_t *), int timeout_ms);
/* Every partition's stored checkpoint is its end offset. */
bool fk_caught_up(fk_t *t);
/* Valid events of partition p with offsets in [from, to). */
size_t fk_count_valid(const fk_t *t, int32_t p, int64_t from, int64_t to);
/* Practitioners whose stored state (or fence) differs from the reference
 * built from the valid events below limit[p] (NULL: all produced); printed. */
int fk_compare(fk_t *t, const int64_t *limit);
/* Replaces the store with what a rebuild up to limit[] writes: the
 * reference states, their fences, checkpoints limit[p], applied counts 1
 * below and 0 from limit. Under no lock (takes it). 0 or -1. */
int fk_snapshot(fk_t *t, const int64_t *limit);
/* Produced valid events not stored exactly once; printed. */
unsigned fk_applied_wrong(fk_t *t);
/* An atomic stats counter. */
unsigned long long fk_stat(const atomic_uint_least64_t *c);

#endif
