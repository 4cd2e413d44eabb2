/*
 * Replay of the log into memory for rebuild and verify: plan (partition
 * count and watermarks), then threads that take partitions from a shared
 * pool (WINDOW at a time), read each from its earliest offset up to the
 * captured end, decode and project every event, and hand each finished
 * partition over (rm_replay_take_partition). The projection is the same pure code that
 * serve uses, so a rebuild and a live projector agree byte for byte.
 */
#include "readmodel/replay.h"
#include "readmodel/clock.h"
#include "readmodel/stop.h"
#include "readmodel/event.h"
#include "readmodel/log.h"
#include "readmodel/kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Each thread reads at most WINDOW partitions at a time, taking the next
 * from the shared pool when one ends. The projection's working set is then
 * the state of two partitions' practitioners instead of all of the thread's,
 * which costs fewer cache misses (measured on the benchmark's 32 partitions
 * and 2 threads: 7% less CPU than fetching all of them at once; 1, 3 and 4
 * were slower), partitions end one after the other, so a rebuild writes
 * them to the sink while the rest is still being read, and a thread that
 * gets more CPU takes more partitions instead of waiting for the other at
 * the end. */
#define WINDOW 2

typedef struct {
    const rm_config_t *cfg;
    rm_replay_t *r;
    int index;
    pthread_t thread;
    bool started;
    _Atomic(rd_kafka_t *) rk;      /* the thread's consumer, closed by teardown_main */
    _Atomic(rd_kafka_queue_t *) q; /* its queue, likewise */
    atomic_bool finished;          /* read to the end (or failed): the waker leaves it */
    atomic_int active[WINDOW];     /* partitions being fetched (-1: none), for the waker */
} replay_thread_t;

/* The threads of one replay, private to this file (rm_replay_t.run). Each
 * replay has its own, so two replays in one process do not share state. */
struct rm_replay_run {
    const rm_config_t *cfg;
    replay_thread_t *threads;
    int nthreads;
    pthread_t waker; /* see below */
    bool waker_started;
    atomic_bool waker_stop;
    atomic_int wakeups;
    pthread_t teardown; /* see teardown_main */
    bool teardown_started;
};

/* The waker. librdkafka 2.0 stops fetching a partition while the consumer
 * queue holds queued.max.messages.kbytes and decides again only when its
 * broker thread next wakes up: on network or queue activity, else after up
 * to a second. A replay that projects more slowly than the broker fetches
 * keeps that queue full, so it spent up to a third of its time idle with an
 * empty queue (16 MB: 8 s for 3.4M events, 256 MB: 3.2 s). Every WAKE_MS
 * this thread asks each consumer for one of its partitions' watermarks: the
 * request is queued on that partition leader's broker thread, which wakes,
 * sees the queue has room and fetches. A consumer whose queue still holds
 * WAKE_BELOW messages is not asked (it is not starving), so a replay that
 * keeps up sends almost none of these requests. */
#define WAKE_MS    20
#define WAKE_BELOW 50000
static void *waker_main(void *arg) {
    struct rm_replay_run *run = arg;
    replay_thread_t *threads = run->threads;
    int round = 0;
    while (!atomic_load(&run->waker_stop)) {
        for (int i = 0; i < run->nthreads && !atomic_load(&run->waker_stop); i++) {
            rd_kafka_t *rk = atomic_load(&threads[i].rk);
            rd_kafka_queue_t *q = atomic_load(&threads[i].q);
            if (!rk || !q || atomic_load(&threads[i].finished) ||
                rd_kafka_queue_length(q) >= WAKE_BELOW)
                continue;
            /* Round robin over the partitions it fetches reaches their leaders. */
            int p = -1;
            for (int k = 0; k < WINDOW && p < 0; k++)
                p = atomic_load(&threads[i].active[(round + k) % WINDOW]);
            if (p < 0)
                continue;
            int64_t lo, hi;
            /* Only the wakeup matters: the answer (or its error) is unused. */
            (void)rd_kafka_query_watermark_offsets(rk, run->cfg->topic, p, &lo, &hi, 500);
            atomic_fetch_add(&run->wakeups, 1);
        }
        round++;
        rm_sleep_ms(WAKE_MS);
    }
    return NULL;
}

static rd_kafka_t *new_consumer(const rm_config_t *cfg, const char *suffix) {
    char err[256], group[256];
    snprintf(group, sizeof(group), "%s-%s", cfg->group, suffix);
    const rm_kafka_prop_t defaults[] = {{"bootstrap.servers", cfg->brokers},
                                        {"group.id", group},
                                        {"enable.auto.commit", "false"},
                                        {"enable.auto.offset.store", "false"},
                                        {"enable.partition.eof", "true"},
                                        {"auto.offset.reset", "error"},
                                        {"isolation.level", "read_committed"},
                                        /* librdkafka 2.0 stops fetching a partition while the
                                         * consumer queue that every partition forwards to holds
                                         * this many messages or kilobytes, and decides again only
                                         * on a broker wakeup (see the waker below). The byte
                                         * bound is the one that matters: 32 MB replayed the
                                         * benchmark's 3.4M events as fast as 64 MB with a peak
                                         * RSS of 330 MB instead of 500 (4 to 16 MB: within a few
                                         * percent, at times slower). The message count is out
                                         * of the way. */
                                        {"queued.min.messages", "10000000"},
                                        {"queued.max.messages.kbytes", "32768"},
                                        /* A replay reads a bounded range and never waits for
                                         * new data; a fetch that reaches a partition's end
                                         * would otherwise sit at the broker for 500 ms while
                                         * the thread's other partition waits behind it (see
                                         * WINDOW). */
                                        {"fetch.wait.max.ms", "10"}};
    rd_kafka_t *rk =
        rm_kafka_new(RD_KAFKA_CONSUMER, defaults, sizeof(defaults) / sizeof(defaults[0]),
                     cfg->kafka, cfg->n_kafka, NULL, NULL, err, sizeof(err));
    if (!rk)
        rm_error("%s", err);
    return rk;
}

/* The earliest and end offsets of every partition (low may be NULL). A
 * leader that dies makes an attempt time out (15 s: a new client connects,
 * asks for metadata and then for the offsets, three round trips that a slow
 * network or broker stretches); the next attempt, with a new client, asks
 * the new leader that the controller elected meanwhile (4 attempts: a
 * minute in all). */
#define OFFSET_ATTEMPTS   4
#define OFFSET_ATTEMPT_MS 15000
static rm_err_t log_offsets(const rm_config_t *cfg, int n, int64_t *low, int64_t *high) {
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__FAIL;
    int attempt = 1;
    for (; attempt <= OFFSET_ATTEMPTS && err && rm_running(); attempt++) {
        rd_kafka_t *rk = new_consumer(cfg, "replay");
        if (!rk)
            return RM_ERR_IO;
        err = rm_kafka_offsets(rk, cfg->topic, n, low, high, OFFSET_ATTEMPT_MS);
        rd_kafka_destroy(rk);
        if (err && attempt < OFFSET_ATTEMPTS)
            rm_warn("topic %s: offsets: %s (attempt %d of %d; a partition leader may have "
                    "failed): asking again",
                    cfg->topic, rd_kafka_err2str(err), attempt, OFFSET_ATTEMPTS);
    }
    if (err)
        rm_error("topic %s: offsets: %s", cfg->topic, rd_kafka_err2str(err));
    else if (attempt > 2) /* the recovery of the warnings above */
        rm_info("topic %s: offsets answered on attempt %d of %d", cfg->topic, attempt - 1,
                OFFSET_ATTEMPTS);
    return err ? RM_ERR_IO : RM_ERR_OK;
}

rm_err_t rm_replay_plan(const rm_config_t *cfg, rm_replay_t *r) {
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->sync_init = true;
    rd_kafka_t *rk = new_consumer(cfg, "replay");
    if (!rk)
        return RM_ERR_IO;
    char why[256];
    int n = rm_kafka_topic_partitions(rk, cfg->topic, 10000, why, sizeof(why));
    rd_kafka_destroy(rk);
    if (n <= 0) {
        rm_error("%s%s%s", why, n < 0 ? " from " : "", n < 0 ? cfg->brokers : "");
        return RM_ERR_IO;
    }
    r->partitions = n;
    r->low = calloc((size_t)r->partitions, sizeof(int64_t));
    r->high = calloc((size_t)r->partitions, sizeof(int64_t));
    r->maps = calloc((size_t)r->partitions, sizeof(pract_map_t));
    r->finished = calloc((size_t)r->partitions, sizeof(int));
    r->prcount = calloc((size_t)r->partitions, sizeof(size_t));
    if (!r->low || !r->high || !r->maps || !r->finished || !r->prcount)
        return RM_ERR_NOMEM;
    rm_err_t rc = log_offsets(cfg, n, r->low, r->high);
    for (int p = 0; rc == RM_ERR_OK && p < r->partitions; p++)
        r->total += (uint64_t)(r->high[p] - r->low[p]);
    return rc;
}

rm_err_t rm_replay_ends(const rm_config_t *cfg, const rm_replay_t *r, int64_t *ends) {
    return log_offsets(cfg, r->partitions, NULL, ends);
}

int rm_replay_truncated(const rm_replay_t *r) {
    int n = 0;
    for (int p = 0; p < r->partitions; p++)
        n += r->low[p] > 0;
    return n;
}

/* Per-thread counts, added to the shared atomics every FLUSH_EVERY events:
 * one contended atomic per event and thread cost measurable time. */
#define FLUSH_EVERY 4096

typedef struct {
    uint64_t events[RM_RESULT__COUNT];
    uint64_t done;
} local_counts_t;

static void counts_flush(rm_replay_t *r, local_counts_t *c) {
    for (int i = 0; i < RM_RESULT__COUNT; i++)
        if (c->events[i])
            atomic_fetch_add_explicit(&r->stats.events[i], c->events[i], memory_order_relaxed);
    atomic_fetch_add_explicit(&r->done, c->done, memory_order_relaxed);
    memset(c, 0, sizeof(*c));
}

static void count(local_counts_t *c, rm_result_t res) {
    c->events[res]++;
}

static int apply(rm_replay_t *r, local_counts_t *c, rm_decoder_t *dec,
                 const rd_kafka_message_t *m) {
    rm_event_t ev;
    rm_reject_t why;
    switch (rm_decode(dec, m->key, m->key_len, m->payload, m->len, &ev, &why)) {
    case RM_DECODE_TOMBSTONE:
        count(c, RM_RESULT_TOMBSTONE);
        return 0;
    case RM_DECODE_IGNORED:
        count(c, RM_RESULT_IGNORED);
        return 0;
    case RM_DECODE_INVALID:
        count(c, RM_RESULT_INVALID);
        atomic_fetch_add_explicit(&r->stats.invalid[why.reason], 1, memory_order_relaxed);
        return 0;
    case RM_DECODE_OK:
        break;
    }
    pract_map_t *map = &r->maps[m->partition];
    pract_t *pr = rm_pract_find(map, ev.practitioner_id.ptr, ev.practitioner_id.len);
    if (!pr) {
        if (!(pr = rm_pract_add(map, ev.practitioner_id.ptr, ev.practitioner_id.len)))
            return -1;
        pr->st.no_dirty_marks = true; /* the write phase marks every day */
    }
    if (rm_avail_apply(&pr->st, &ev) == RM_APPLY_UNKNOWN_BOOKING)
        atomic_fetch_add_explicit(&r->stats.anomalies, 1, memory_order_relaxed);
    if (r->profiles && rm_profile_apply(&pr->profile, &ev) != 0)
        return -1;
    pr->fence = m->offset;
    pr->fence_partition = m->partition;
    count(c, RM_RESULT_APPLIED);
    return 0;
}

/* Hands partition p, read to its end, to rm_replay_take_partition. */
static void partition_finished(rm_replay_t *r, int p) {
    pthread_mutex_lock(&r->mu);
    r->prcount[p] = r->maps[p].count;
    r->finished[r->nfinished++] = p;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void thread_ended(rm_replay_t *r) {
    pthread_mutex_lock(&r->mu);
    r->running--;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

int rm_replay_take_partition(rm_replay_t *r) {
    pthread_mutex_lock(&r->mu);
    while (r->ntaken == r->nfinished && r->running > 0)
        pthread_cond_wait(&r->cv, &r->mu);
    int p = r->ntaken < r->nfinished ? r->finished[r->ntaken++] : -1;
    pthread_mutex_unlock(&r->mu);
    return p;
}

/* The next partition to read, largest first (so the threads end close
 * together), or -1 when every partition has been started. */
static int pool_take(rm_replay_t *r) {
    int i = atomic_fetch_add(&r->pool_next, 1);
    return i < r->pool_len ? r->pool[i] : -1;
}

/* A partition read to its end offset is paused: else every Fetch request
 * would keep asking for it, and a request holding only such partitions
 * waits fetch.wait.max.ms at the broker while the partitions that still
 * have data wait behind it. */
static void stop_fetching(rd_kafka_t *rk, const char *topic, int32_t p) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, p);
    rd_kafka_pause_partitions(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
}

/* Adds the next partition of the pool to the consumer's assignment, from
 * its earliest offset. The partition number, or -1 when the pool is empty
 * (or the assignment failed: *failed is set). */
static int open_next(rm_replay_t *r, rd_kafka_t *rk, const char *topic, bool *failed) {
    int p = pool_take(r);
    if (p < 0)
        return -1;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, p)->offset = r->low[p];
    rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        rm_error("replay: cannot assign partition %d: %s", p, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        *failed = true;
        return -1;
    }
    return p;
}

/* What one replay thread is reading. */
typedef struct {
    replay_thread_t *t;
    rd_kafka_t *rk;
    rm_decoder_t *dec;
    bool *reading;    /* per partition: assigned and not read to its end */
    int64_t *next;    /* per partition: above the last offset applied */
    bool *late_start; /* per partition: its first record came after the planned start */
    int remaining;    /* partitions assigned and not read to their end */
    local_counts_t counts;
    uint64_t mine; /* events this thread applied */
} reader_t;

/* Starts reading the next partition of the pool in window slot w. 0 (also
 * when the pool is empty: the slot is then -1), or -1 when it failed. */
static int reader_open(reader_t *rd, int w) {
    bool failed = false;
    rm_replay_t *r = rd->t->r;
    int p = open_next(r, rd->rk, rd->t->cfg->topic, &failed);
    atomic_store(&rd->t->active[w], p);
    if (failed)
        return -1;
    if (p >= 0) {
        rd->reading[p] = true;
        rd->next[p] = r->low[p];
        rd->remaining++;
    }
    return 0;
}

/* A partition whose first record came after its planned start offset
 * (markers, aborted records or compaction there, or records deleted after
 * the plan): asks its earliest offset again. 0, or -1 (logged) when it
 * moved above the planned start: history was deleted under the replay. */
static int check_start_moved(reader_t *rd, int32_t p) {
    rm_replay_t *r = rd->t->r;
    if (!rd->late_start[p])
        return 0;
    int64_t *lows = calloc((size_t)r->partitions, sizeof(int64_t));
    if (!lows)
        return -1;
    rd_kafka_resp_err_t err =
        rm_kafka_offsets(rd->rk, rd->t->cfg->topic, r->partitions, lows, NULL, 20000);
    int64_t lo = lows[p];
    free(lows);
    if (err) {
        rm_error("replay: partition %d: earliest offset: %s", (int)p, rd_kafka_err2str(err));
        return -1;
    }
    if (lo > r->low[p]) {
        rm_error("replay: partition %d: its earliest offset moved from %lld to %lld during the "
                 "replay: history was truncated (retention or deleted records) under it",
                 (int)p, (long long)r->low[p], (long long)lo);
        return -1;
    }
    return 0;
}

/* Partition p was read to its end: hand it over, take the next one into
 * its window slot. 0, or -1 when the next could not be assigned. */
static int reader_ended(reader_t *rd, int32_t p) {
    rm_replay_t *r = rd->t->r;
    if (rd->next[p] == r->low[p] && r->high[p] > r->low[p])
        rd->late_start[p] = true; /* no record at all: only markers or aborted ones */
    if (check_start_moved(rd, p) < 0)
        return -1;
    if (r->high[p] > rd->next[p]) /* the markers and aborted records at its end */
        rd->counts.done += (uint64_t)(r->high[p] - rd->next[p]);
    rd->reading[p] = false;
    rd->remaining--;
    stop_fetching(rd->rk, rd->t->cfg->topic, p);
    counts_flush(r, &rd->counts); /* totals include p once it is handed out */
    partition_finished(r, p);
    int w = 0;
    while (w < WINDOW - 1 && atomic_load(&rd->t->active[w]) != p)
        w++;
    return reader_open(rd, w);
}

/* Applies one message. Sets *ended when its partition is read to the end.
 * 0, or -1 when the replay must stop (consumer error, out of memory;
 * logged).
 *
 * Offsets of a partition are not contiguous in general: under
 * read_committed (the only isolation level readmodel consumes with) the
 * commit and abort markers of transactions and the records of aborted
 * transactions take offsets that are never delivered, and compaction
 * removes records. So a gap between consecutive offsets is not lost
 * history: lost history is records deleted from the start of the
 * partition (retention, DeleteRecords), which the plan sees as an earliest
 * offset above 0, and which during the replay makes the fetch fail with an
 * out-of-range offset (auto.offset.reset is "error") or, when it happened
 * between the plan and the first fetch, shows at the partition's end as an
 * earliest offset above the planned one (check_start_moved). The end is
 * the consumer's position reaching the planned end offset: the partition
 * EOF event carries it, also when the last offsets are markers that no
 * message ever reaches. */
static int reader_consume(reader_t *rd, const rd_kafka_message_t *m, bool *ended) {
    rm_replay_t *r = rd->t->r;
    int32_t p = m->partition;
    bool ours = p >= 0 && p < r->partitions && rd->reading[p];
    *ended = false;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        *ended = ours && m->offset >= r->high[p];
        return 0;
    }
    if (m->err) {
        rm_error("replay: partition %d: %s", (int)p, rd_kafka_message_errstr(m));
        return -1;
    }
    if (!ours || m->offset < rd->next[p])
        return 0; /* not ours, or before the planned start */
    if (m->offset < r->high[p]) {
        if (apply(r, &rd->counts, rd->dec, m) < 0)
            return -1;
        rd->mine++;
        /* done counts offsets, gaps included, so that it reaches the
         * plan's total (end minus earliest offsets) at the end. */
        rd->counts.done += (uint64_t)(m->offset + 1 - rd->next[p]);
        if (rd->counts.done >= FLUSH_EVERY)
            counts_flush(r, &rd->counts);
        if (rd->next[p] == r->low[p] && m->offset > r->low[p])
            rd->late_start[p] = true;
        rd->next[p] = m->offset + 1;
    }
    *ended = m->offset + 1 >= r->high[p];
    return 0;
}

/* Reads until every partition this thread took is at its end (or a stop).
 * false when it had to stop on an error. */
static bool reader_run(reader_t *rd) {
    rm_replay_t *r = rd->t->r;
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rd->rk);
    atomic_store(&rd->t->q, q);
    atomic_store(&rd->t->rk, rd->rk); /* from now on the waker may use both (seq_cst: q first) */
    rd_kafka_message_t *batch[1024];
    ssize_t nb = 0, bi = 0;
    bool failed = false;
    while (!failed && rd->remaining > 0 && rm_running() &&
           !atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        if (bi == nb) {
            /* This call waits for a full batch or the timeout: take what
             * is queued, and only when nothing is, wait for one message
             * (the end of a partition is rarely a full batch). */
            nb = rd_kafka_consume_batch_queue(q, 0, batch, 1024);
            if (nb == 0)
                nb = rd_kafka_consume_batch_queue(q, 200, batch, 1);
            bi = 0;
            if (nb <= 0) {
                nb = 0;
                continue;
            }
        }
        rd_kafka_message_t *m = batch[bi++];
        bool ended = false;
        int32_t p = m->partition;
        failed = reader_consume(rd, m, &ended) < 0 || (ended && reader_ended(rd, p) < 0);
        rd_kafka_message_destroy(m);
    }
    while (bi < nb)
        rd_kafka_message_destroy(batch[bi++]);
    return !failed;
}

static void *replay_main(void *arg) {
    replay_thread_t *t = arg;
    double t0 = rm_mono_s();
    rm_replay_t *r = t->r;
    reader_t rd = {.t = t,
                   .rk = new_consumer(t->cfg, "replay"),
                   .dec = rm_decoder_new(),
                   .reading = calloc((size_t)r->partitions, sizeof(bool)),
                   .next = calloc((size_t)r->partitions, sizeof(int64_t)),
                   .late_start = calloc((size_t)r->partitions, sizeof(bool))};
    bool ok = rd.rk && rd.dec && rd.reading && rd.next && rd.late_start;
    for (int w = 0; ok && w < WINDOW; w++)
        ok = reader_open(&rd, w) == 0;
    if (ok)
        ok = reader_run(&rd);
    if (!ok || rd.remaining > 0)
        atomic_store(&r->failed, 1);
    counts_flush(r, &rd.counts);
    atomic_store(&t->finished, true);
    thread_ended(r);
    rm_debug("replay: thread %d read its partitions in %.2f s (%llu events)", t->index,
             rm_mono_s() - t0, (unsigned long long)rd.mine);
    free(rd.reading);
    free(rd.next);
    free(rd.late_start);
    rm_decoder_free(rd.dec);
    if (rd.rk && !atomic_load(&t->rk)) { /* never shown to the waker */
        rd_kafka_consumer_close(rd.rk);
        rd_kafka_destroy(rd.rk);
    }
    return NULL;
}

/* Stops the waker and closes the consumers. Runs on its own thread while
 * the rebuild writes: the waker may be inside a watermark request that
 * waits for a broker thread's wakeup (up to 0.5 s measured), and closing
 * consumers takes a few milliseconds each. */
static void *teardown_main(void *arg) {
    struct rm_replay_run *run = arg;
    replay_thread_t *threads = run->threads;
    atomic_store(&run->waker_stop, true);
    if (run->waker_started) {
        pthread_join(run->waker, NULL);
        rm_debug("replay: %d fetch wakeup request(s)", atomic_load(&run->wakeups));
    }
    run->waker_started = false;
    for (int i = 0; threads && i < run->nthreads; i++) {
        rd_kafka_t *rk = atomic_load(&threads[i].rk);
        if (atomic_load(&threads[i].q))
            rd_kafka_queue_destroy(atomic_load(&threads[i].q));
        if (rk) {
            rd_kafka_consumer_close(rk);
            rd_kafka_destroy(rk);
        }
    }
    free(threads);
    run->threads = NULL;
    return NULL;
}

static void teardown_wait(struct rm_replay_run *run) {
    if (run && run->teardown_started)
        pthread_join(run->teardown, NULL);
    if (run)
        run->teardown_started = false;
}

rm_err_t rm_replay_start(const rm_config_t *cfg, rm_replay_t *r) {
    if (r->run) {
        rm_error("replay: already started");
        return RM_ERR_IO;
    }
    struct rm_replay_run *run = r->run = calloc(1, sizeof(*run));
    if (!run)
        return RM_ERR_IO;
    run->cfg = cfg;
    run->nthreads = cfg->workers < r->partitions ? cfg->workers : r->partitions;
    if (run->nthreads < 1)
        run->nthreads = 1;
    replay_thread_t *threads = run->threads = calloc((size_t)run->nthreads, sizeof(*threads));
    free(r->pool);
    r->pool = malloc((size_t)r->partitions * sizeof(int));
    if (!threads || !r->pool)
        return RM_ERR_IO;
    /* The pool: every partition with events, largest first; the others are
     * read to their end already. */
    r->pool_len = 0;
    atomic_store(&r->pool_next, 0);
    for (int p = 0; p < r->partitions; p++) {
        if (r->high[p] <= r->low[p]) {
            partition_finished(r, p);
            continue;
        }
        int k = r->pool_len++;
        for (; k > 0 && r->high[r->pool[k - 1]] - r->low[r->pool[k - 1]] < r->high[p] - r->low[p];
             k--)
            r->pool[k] = r->pool[k - 1];
        r->pool[k] = p;
    }
    for (int i = 0; i < run->nthreads; i++) {
        threads[i] = (replay_thread_t){.cfg = cfg, .r = r, .index = i};
        for (int w = 0; w < WINDOW; w++)
            atomic_store(&threads[i].active[w], -1);
        pthread_mutex_lock(&r->mu);
        r->running++;
        pthread_mutex_unlock(&r->mu);
        if (pthread_create(&threads[i].thread, NULL, replay_main, &threads[i]) != 0) {
            rm_error("replay: cannot start thread %d", i);
            atomic_store(&r->failed, 1);
            thread_ended(r);
            return RM_ERR_IO;
        }
        threads[i].started = true;
    }
    run->waker_started = pthread_create(&run->waker, NULL, waker_main, run) == 0;
    if (!run->waker_started) /* slower, not wrong */
        rm_warn("replay: cannot start the fetch waker thread");
    return RM_ERR_OK;
}

rm_err_t rm_replay_join(rm_replay_t *r) {
    struct rm_replay_run *run = r->run;
    if (!run)
        return RM_ERR_IO;
    for (int i = 0; run->threads && i < run->nthreads; i++)
        if (run->threads[i].started)
            pthread_join(run->threads[i].thread, NULL);
    run->teardown_started = pthread_create(&run->teardown, NULL, teardown_main, run) == 0;
    if (!run->teardown_started)
        teardown_main(run);
    return atomic_load(&r->failed) ? RM_ERR_IO : RM_ERR_OK;
}

void rm_replay_free(rm_replay_t *r) {
    teardown_wait(r->run);
    free(r->run);
    for (int p = 0; r->maps && p < r->partitions; p++)
        rm_pract_map_free(&r->maps[p]);
    free(r->maps);
    free(r->low);
    free(r->high);
    free(r->finished);
    free(r->prcount);
    free(r->pool);
    if (r->sync_init) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
    }
    memset(r, 0, sizeof(*r));
}
