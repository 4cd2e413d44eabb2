/*
 * Replay of the log into memory for rebuild and verify: plan (partition
 * count and watermarks), then threads that each read their partitions
 * (partition % threads) from the earliest offset up to the captured end,
 * decode and project every event. The projection is the same pure code that
 * serve uses, so a rebuild and a live projector agree byte for byte.
 */
#include "replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const rm_serve_config_t *cfg;
    rm_replay_t *r;
    int index, nthreads;
    pthread_t thread;
    bool started;
} replay_thread_t;

static replay_thread_t *threads;
static int nthreads;

static rd_kafka_t *new_consumer(const rm_serve_config_t *cfg, const char *suffix) {
    char err[256], group[256];
    snprintf(group, sizeof(group), "%s-%s", cfg->group, suffix);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *defaults[][2] = {{"bootstrap.servers", cfg->brokers},
                                 {"group.id", group},
                                 {"enable.auto.commit", "false"},
                                 {"enable.auto.offset.store", "false"},
                                 {"enable.partition.eof", "true"},
                                 {"auto.offset.reset", "error"},
                                 /* librdkafka 2.0 stops fetching a partition while this
                                  * many messages are queued, counted on the consumer queue
                                  * that every partition forwards to, and resumes only on a
                                  * later broker wakeup. At the default (100000) a replay
                                  * that is slower than a bare consumer spent most of its
                                  * time waiting for fetches (debug=fetch: "queued.min.
                                  * messages exceeded"; bench/replay.sh: 3.4M events in
                                  * 10 s, 4.8 s with 10M). The cost is memory: fetched data
                                  * queues ahead of the projection. */
                                 {"queued.min.messages", "10000000"}};
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], err, sizeof(err))) {
            rm_error("kafka %s: %s", defaults[i][0], err);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    if (rm_kafka_conf_apply(conf, cfg->kafka, cfg->n_kafka) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        rm_error("kafka consumer: %s", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

int rm_replay_plan(const rm_serve_config_t *cfg, rm_replay_t *r) {
    memset(r, 0, sizeof(*r));
    rd_kafka_t *rk = new_consumer(cfg, "replay");
    if (!rk)
        return -1;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, cfg->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    int rc = -1;
    if (err) {
        rm_error("topic %s: metadata from %s: %s", cfg->topic, cfg->brokers, rd_kafka_err2str(err));
    } else if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
        rm_error("topic %s: %s", cfg->topic,
                 md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "not found");
    } else {
        r->partitions = md->topics[0].partition_cnt;
        r->low = calloc((size_t)r->partitions, sizeof(int64_t));
        r->high = calloc((size_t)r->partitions, sizeof(int64_t));
        r->maps = calloc((size_t)r->partitions, sizeof(pract_map_t));
        rc = r->low && r->high && r->maps ? 0 : -1;
        for (int p = 0; rc == 0 && p < r->partitions; p++) {
            err =
                rd_kafka_query_watermark_offsets(rk, cfg->topic, p, &r->low[p], &r->high[p], 10000);
            if (err) {
                rm_error("partition %d: offsets: %s", p, rd_kafka_err2str(err));
                rc = -1;
            }
            r->total += (uint64_t)(r->high[p] - r->low[p]);
        }
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
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
    if (!pr && !(pr = rm_pract_add(map, ev.practitioner_id.ptr, ev.practitioner_id.len)))
        return -1;
    if (rm_avail_apply(&pr->st, &ev) == RM_APPLY_UNKNOWN_BOOKING)
        atomic_fetch_add_explicit(&r->stats.anomalies, 1, memory_order_relaxed);
    if (r->profiles && rm_profile_apply(&pr->profile, &ev) != 0)
        return -1;
    pr->fence = m->offset;
    pr->fence_partition = m->partition;
    count(c, RM_RESULT_APPLIED);
    return 0;
}

static void *replay_main(void *arg) {
    replay_thread_t *t = arg;
    rm_replay_t *r = t->r;
    rd_kafka_t *rk = new_consumer(t->cfg, "replay");
    rm_decoder_t *dec = rm_decoder_new();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->partitions);
    int remaining = 0;
    bool *done = calloc((size_t)r->partitions, sizeof(bool));
    int64_t *next = calloc((size_t)r->partitions, sizeof(int64_t));
    if (!rk || !dec || !done || !next)
        goto fail;
    for (int p = t->index; p < r->partitions; p += t->nthreads) {
        next[p] = r->low[p];
        if (r->high[p] <= r->low[p]) {
            done[p] = true;
            continue;
        }
        rd_kafka_topic_partition_list_add(l, t->cfg->topic, p)->offset = r->low[p];
        remaining++;
    }
    if (remaining && rd_kafka_assign(rk, l)) {
        rm_error("replay: cannot assign partitions");
        goto fail;
    }
    local_counts_t counts = {{0}, 0};
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    rd_kafka_message_t *batch[1024];
    ssize_t nb = 0, bi = 0;
    while (remaining > 0 && rm_serve_running) {
        if (bi == nb) {
            nb = rd_kafka_consume_batch_queue(q, 200, batch, 1024);
            bi = 0;
            if (nb <= 0) {
                nb = 0;
                continue;
            }
        }
        rd_kafka_message_t *m = batch[bi++];
        int32_t p = m->partition;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (p >= 0 && p < r->partitions && !done[p] && m->offset >= r->high[p]) {
                done[p] = true;
                remaining--;
            }
        } else if (m->err) {
            rm_error("replay: partition %d: %s", (int)p, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            goto drain;
        } else if (!done[p]) {
            if (m->offset != next[p]) {
                /* Kafka never skips offsets of a non-compacted topic except
                 * when retention removed them under us. */
                rm_error("replay: partition %d jumped from offset %lld to %lld: history was "
                         "truncated during the replay",
                         (int)p, (long long)next[p], (long long)m->offset);
                rd_kafka_message_destroy(m);
                goto drain;
            }
            if (m->offset < r->high[p]) {
                if (apply(r, &counts, dec, m) < 0) {
                    rd_kafka_message_destroy(m);
                    goto drain;
                }
                if (++counts.done >= FLUSH_EVERY)
                    counts_flush(r, &counts);
                next[p] = m->offset + 1;
            }
            if (m->offset + 1 >= r->high[p]) {
                done[p] = true;
                remaining--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    if (remaining > 0)
        atomic_store(&r->failed, 1);
drain:
    if (remaining > 0)
        atomic_store(&r->failed, 1);
    counts_flush(r, &counts);
    while (bi < nb)
        rd_kafka_message_destroy(batch[bi++]);
    rd_kafka_queue_destroy(q);
    goto out;
fail:
    atomic_store(&r->failed, 1);
out:
    free(done);
    free(next);
    rd_kafka_topic_partition_list_destroy(l);
    rm_decoder_free(dec);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    return NULL;
}

int rm_replay_start(const rm_serve_config_t *cfg, rm_replay_t *r) {
    nthreads = cfg->workers < r->partitions ? cfg->workers : r->partitions;
    if (nthreads < 1)
        nthreads = 1;
    threads = calloc((size_t)nthreads, sizeof(*threads));
    if (!threads)
        return -1;
    for (int i = 0; i < nthreads; i++) {
        threads[i] = (replay_thread_t){cfg, r, i, nthreads, 0, false};
        if (pthread_create(&threads[i].thread, NULL, replay_main, &threads[i]) != 0) {
            rm_error("replay: cannot start thread %d", i);
            atomic_store(&r->failed, 1);
            return -1;
        }
        threads[i].started = true;
    }
    return 0;
}

int rm_replay_join(rm_replay_t *r) {
    for (int i = 0; threads && i < nthreads; i++)
        if (threads[i].started)
            pthread_join(threads[i].thread, NULL);
    free(threads);
    threads = NULL;
    return atomic_load(&r->failed) ? -1 : 0;
}

void rm_replay_free(rm_replay_t *r) {
    for (int p = 0; r->maps && p < r->partitions; p++)
        rm_pract_map_free(&r->maps[p]);
    free(r->maps);
    free(r->low);
    free(r->high);
    memset(r, 0, sizeof(*r));
}
