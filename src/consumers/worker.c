/*
 * Consumer worker: the data flow of one thread.
 *
 *   poll batch -> decode -> project -> flush -> checkpoint -> commit
 *
 * Invariants that make effects exactly-once:
 *  - The worker never polls while it holds unflushed state, so a
 *    revocation (which runs inside poll) finds nothing unflushed except the
 *    messages collected in the current poll loop, which it processes and
 *    flushes before giving the partitions up.
 *  - A practitioner's keys, state and fence change in one atomic sink step;
 *    an event at or below the fence is a duplicate and is skipped.
 *  - The checkpoint (next offset) is written only after the flush that
 *    covers it, with compare-and-set: if it moved under us (a rebuild, a
 *    restarted empty Redis, another consumer), the partition's cache is
 *    dropped and consumption resumes from the stored checkpoint.
 *  - Dead-lettered messages are confirmed delivered before the checkpoint
 *    passes them.
 * On any sink error the batch is retried after a capped exponential
 * backoff; nothing is checkpointed that was not written.
 */
#include "worker.h"
#include "readmodel/kafka.h"
#include "readmodel/clock.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

static void count(rm_worker_t *w, rm_result_t r) {
    atomic_fetch_add_explicit(&w->sh->stats->events[r], 1, memory_order_relaxed);
}

static rm_partition_obs_t *obs(rm_worker_t *w, int32_t partition) {
    return partition >= 0 && partition < RM_MAX_PARTITIONS ? &w->sh->stats->parts[partition] : NULL;
}

static void heartbeat(rm_worker_t *w) {
    if (w->id < RM_MAX_WORKERS)
        atomic_store(&w->sh->stats->heartbeat_ms[w->id], rm_mono_ms());
}

/* Sleeps the current backoff and doubles it (capped). Returns false when
 * the worker is stopping and the stop deadline has passed. */
static bool backoff(rm_worker_t *w, int *ms, time_t *stop_deadline) {
    heartbeat(w);
    if (w->last_err == RM_ERR_CONFIG && w->sh->cfg->until_caught_up) {
        /* No retry can help a run that is meant to end. */
        atomic_store(&w->sh->failed, 1);
        rm_stop_request();
        return false;
    }
    if (!rm_running()) {
        if (!*stop_deadline)
            *stop_deadline = time(NULL) + w->sh->cfg->shutdown_timeout_s;
        if (time(NULL) >= *stop_deadline)
            return false;
    }
    rm_sleep_ms(*ms);
    *ms = *ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *ms * 2;
    return true;
}

/* ---- the pipeline's sink ---- */

static const char *target_name(const rm_worker_t *w) {
    return w->sh->ops->name;
}

static const char *sink_error(const rm_worker_t *w) {
    return w->sink.ops->last_error(w->sink.impl);
}

/* Remembers the result of a sink call, for sink_failed and backoff. */
static rm_err_t track(rm_worker_t *w, rm_err_t e) {
    w->last_err = e;
    return e;
}

static rm_err_t cp_get(rm_worker_t *w, const char *topic, int32_t partition, int64_t *next) {
    return track(w, w->sink.ops->checkpoint_get(w->sink.impl, topic, partition, next));
}

static rm_err_t cp_cas(rm_worker_t *w, int32_t partition, int64_t expected, int64_t next, bool *ok,
                       int64_t *cur) {
    return track(w, w->sink.ops->checkpoint_cas(w->sink.impl, w->sh->cfg->topic, partition,
                                                expected, next, ok, cur));
}

static rm_err_t lease_read(rm_worker_t *w, char *holder, size_t cap, long long *ttl) {
    return track(w, w->sink.ops->lease_get(w->sink.impl, holder, cap, ttl));
}

static void sink_failed(rm_worker_t *w, rm_sink_error_t kind, const char *what, int backoff_ms) {
    atomic_fetch_add_explicit(&w->sh->stats->sink_errors, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->sh->stats->sink_error_kinds[kind], 1, memory_order_relaxed);
    atomic_store(&w->sh->stats->sink_write_ok, 0);
    rm_log_ctx_t ctx = {target_name(w), -1, -1};
    if (w->last_err == RM_ERR_CONFIG) {
        /* A wrong password, missing permission or unknown database: named
         * as such (a rotation may still fix it, so serve keeps trying). */
        atomic_store(&w->sh->stats->sink_refused, 1);
        rm_logc(RM_LOG_ERROR, &ctx,
                "worker %d: %s failed: %s: %s refuses this configuration (credentials, "
                "permissions or database); %s",
                w->id, what, sink_error(w), w->sink.ops->title,
                w->sh->cfg->until_caught_up ? "stopping" : "retrying until it is fixed");
        return;
    }
    rm_log_fields(RM_LOG_WARN, &ctx, "sink operation failed; retrying", RM_LOG_I("worker", w->id),
                  RM_LOG_S("operation", what), RM_LOG_S("error", sink_error(w)),
                  RM_LOG_I("retry_ms", backoff_ms));
}

static part_t *part_get(rm_worker_t *w, int32_t partition) {
    if (partition < 0 || partition >= w->nparts)
        return NULL;
    part_t *p = w->parts[partition];
    return p && p->owned ? p : NULL;
}

static void set_eof(rm_worker_t *w, part_t *p, bool eof) {
    if (p->at_eof != eof) {
        p->at_eof = eof;
        atomic_fetch_add(&w->sh->eof_partitions, eof ? 1 : -1);
    }
}

static void part_drop(rm_worker_t *w, part_t *p) {
    set_eof(w, p, false);
    if (obs(w, p->partition))
        atomic_store(&obs(w, p->partition)->owner, 0);
    rm_pract_map_free(&p->cache);
    p->owned = false;
}

/* ---- load: read stored state of practitioners not in the cache ---- */

/* Starts a practitioner's state afresh (a failed or corrupt load). */
static void pract_reset_state(pract_t *pr) {
    rm_avail_free(&pr->st);
    rm_avail_init(&pr->st);
    rm_profile_free(&pr->profile);
}

static int load_missing(rm_worker_t *w, pract_t **need, int32_t *parts, size_t n) {
    if (n == 0)
        return 0;
    rm_sink_item_t *items = calloc(n, sizeof(*items));
    if (!items)
        return -1;
    bool profiles = w->sh->ops->profiles;
    for (size_t i = 0; i < n; i++)
        items[i] = (rm_sink_item_t){.pid = need[i]->pid,
                                    .pid_len = need[i]->pid_len,
                                    .st = &need[i]->st,
                                    .profile = profiles ? &need[i]->profile : NULL,
                                    .partition = -1,
                                    .fence = -1};
    int ms = BACKOFF_MIN_MS;
    time_t deadline = 0;
    int rc = 0;
    for (;;) {
        rm_err_t e = track(w, w->sink.ops->load(w->sink.impl, items, n));
        if (e == RM_ERR_OK || e == RM_ERR_CORRUPT) {
            if (e == RM_ERR_CORRUPT)
                rm_error("worker %d: %s; its events are skipped and nothing of it is written "
                         "until `readmodel rebuild` repairs it",
                         w->id, sink_error(w));
            break;
        }
        /* A failed load may have half-filled states: start them afresh. */
        for (size_t i = 0; i < n; i++)
            pract_reset_state(need[i]);
        sink_failed(w, RM_SINK_ERROR_LOAD, "loading state", ms);
        if (!backoff(w, &ms, &deadline)) {
            rc = -1;
            break;
        }
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        /* Never project on a half-decoded state, and never write over the
         * stored one: a write from the retained log alone would replace
         * history with less. Quarantined until a rebuild repairs it. */
        need[i]->quarantined = items[i].corrupt;
        if (items[i].corrupt) {
            pract_reset_state(need[i]);
            atomic_fetch_add_explicit(&w->sh->stats->corrupt_states, 1, memory_order_relaxed);
        }
        part_t *p = items[i].fence < 0 && !items[i].corrupt ? part_get(w, parts[i]) : NULL;
        if (p) /* new, or the sink lost it: verify_absent_loads tells which */
            p->loaded_absent = true;
        need[i]->loaded = true;
        need[i]->stored_partition = items[i].partition;
        need[i]->stored_fence = items[i].fence;
        /* A fence from another partition (the topic was repartitioned) does
         * not order offsets of this one. Unsupported (README, "do not add
         * partitions"): said once per partition. */
        bool same = items[i].partition == parts[i];
        part_t *mp = !same && items[i].partition >= 0 ? part_get(w, parts[i]) : NULL;
        if (mp && !mp->moved_warned) {
            mp->moved_warned = true;
            rm_error(
                "worker %d (%s): practitioner %.*s was stored from partition %d and now arrives "
                "on partition %d: the topic's partition count changed, which readmodel "
                "does not support (README, \"do not add partitions\"); move to a new topic "
                "and rebuild",
                w->id, target_name(w), (int)need[i]->pid_len, need[i]->pid, (int)items[i].partition,
                (int)parts[i]);
        }
        need[i]->fence = same ? items[i].fence : -1;
        need[i]->fence_partition = same ? items[i].partition : -1;
    }
    free(items);
    return rc;
}

static bool key_is_pid(const rd_kafka_message_t *m) {
    return m->key && m->key_len >= 1 && m->key_len <= RM_MAX_ID_CHARS;
}

/* Prefetch: every practitioner named by a message key and not cached is
 * loaded in one pipeline before the batch is applied. */
static int prefetch(rm_worker_t *w) {
    pract_t **need = malloc(w->nmsgs * sizeof(*need));
    int32_t *parts = malloc(w->nmsgs * sizeof(*parts));
    size_t n = 0;
    int rc = need && parts ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < w->nmsgs; i++) {
        rd_kafka_message_t *m = w->msgs[i];
        part_t *p = m->err ? NULL : part_get(w, m->partition);
        if (!p || !m->payload || !key_is_pid(m))
            continue;
        pract_t *pr = rm_pract_find(&p->cache, m->key, m->key_len);
        if (pr)
            continue;
        pr = rm_pract_add(&p->cache, m->key, m->key_len);
        if (!pr) {
            rc = -1;
            break;
        }
        need[n] = pr;
        parts[n++] = m->partition;
    }
    if (rc == 0)
        rc = load_missing(w, need, parts, n);
    free(need);
    free(parts);
    return rc;
}

static void log_invalid(rm_worker_t *w, const rd_kafka_message_t *m, const rm_reject_t *why) {
    uint64_t suppressed = 0;
    if (!rm_ratelimit_allow(&w->invalid_log, &suppressed))
        return;
    rm_log_ctx_t ctx = {target_name(w), (int)m->partition, (long long)m->offset};
    rm_log_fields(RM_LOG_WARN, &ctx, "invalid event",
                  RM_LOG_S("reason", rm_reason_name(why->reason)),
                  RM_LOG_S("field", why->field[0] ? why->field : NULL));
    if (suppressed)
        rm_log_fields(RM_LOG_WARN, &ctx, "more invalid events were not logged (rate limit)",
                      RM_LOG_I("count", suppressed));
}

/* ---- project ---- */

static void apply_message(rm_worker_t *w, rd_kafka_message_t *m) {
    if (m->err) {
        part_t *p = part_get(w, m->partition);
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* The event carries the consumer's position: past the commit
             * and abort markers and aborted records that no message
             * reaches (read_committed), so the checkpoint, the lag and
             * --until-caught-up reach the end offset. Every message before
             * it is in this batch or an earlier one. */
            if (p && (p->next_offset < 0 || m->offset >= p->next_offset)) {
                set_eof(w, p, true);
                if (m->offset >= 0)
                    p->next_offset = m->offset;
            }
        } else {
            rm_warn("worker %d: consumer: %s", w->id, rd_kafka_message_errstr(m));
        }
        return;
    }
    if (atomic_load_explicit(&w->sh->stats->kafka_down_since_ms, memory_order_relaxed))
        atomic_store(&w->sh->stats->kafka_down_since_ms, 0);
    part_t *p = part_get(w, m->partition);
    if (!p || (p->next_offset >= 0 && m->offset < p->next_offset))
        return; /* not ours any more, or before a seek point */
    set_eof(w, p, false);
    p->next_offset = m->offset + 1;
    p->last_ts_ms = rd_kafka_message_timestamp(m, NULL);

    rm_event_t ev;
    rm_reject_t why;
    switch (rm_decode(w->dec, m->key, m->key_len, m->payload, m->len, &ev, &why)) {
    case RM_DECODE_TOMBSTONE:
        count(w, RM_RESULT_TOMBSTONE);
        return;
    case RM_DECODE_IGNORED:
        count(w, RM_RESULT_IGNORED);
        return;
    case RM_DECODE_INVALID:
        count(w, RM_RESULT_INVALID);
        atomic_fetch_add_explicit(&w->sh->stats->invalid[why.reason], 1, memory_order_relaxed);
        log_invalid(w, m, &why);
        if (w->sh->dlq && rm_dlq_send(w->sh->dlq, m, &why, &w->dlq_deadline) < 0)
            atomic_store(&w->sh->failed, 1); /* not checkpointed: read again */
        return;
    case RM_DECODE_OK:
        break;
    }
    pract_t *pr = rm_pract_find(&p->cache, ev.practitioner_id.ptr, ev.practitioner_id.len);
    if (!pr) { /* message without a key: load on first touch */
        pr = rm_pract_add(&p->cache, ev.practitioner_id.ptr, ev.practitioner_id.len);
        int32_t part = m->partition;
        if (!pr || load_missing(w, &pr, &part, 1) < 0) {
            atomic_store(&w->sh->failed, 1);
            rm_stop_request();
            return;
        }
    }
    pr->last_used = w->batch_seq;
    if (pr->quarantined) {
        count(w, RM_RESULT_QUARANTINED);
        return;
    }
    if (pr->fence_partition == m->partition && m->offset <= pr->fence) {
        count(w, RM_RESULT_DUPLICATE);
        return;
    }
    if (rm_avail_apply(&pr->st, &ev) == RM_APPLY_UNKNOWN_BOOKING)
        atomic_fetch_add_explicit(&w->sh->stats->anomalies, 1, memory_order_relaxed);
    if (w->sh->ops->profiles && rm_profile_apply(&pr->profile, &ev) != 0) {
        rm_error("worker %d: out of memory", w->id);
        atomic_store(&w->sh->failed, 1);
        rm_stop_request();
        return;
    }
    pr->fence = m->offset;
    pr->fence_partition = m->partition;
    pr->dirty = true;
    count(w, RM_RESULT_APPLIED);
}

/* Resumes a partition from the checkpoint stored in the sink. */
static void part_reset(rm_worker_t *w, part_t *p, int64_t stored) {
    rm_log_ctx_t ctx = {target_name(w), (int)p->partition, (long long)stored};
    if (!w->paused)
        rm_log_fields(RM_LOG_WARN, &ctx,
                      "the sink's state of the partition is not what this worker wrote: dropping "
                      "its cache and resuming from the stored checkpoint (offset)",
                      RM_LOG_I("worker", w->id), RM_LOG_I("expected_checkpoint", p->stored_cp));
    atomic_fetch_add_explicit(&w->sh->stats->resets, 1, memory_order_relaxed);
    rm_pract_map_free(&p->cache);
    set_eof(w, p, false);
    p->loaded_absent = false;
    p->stored_cp = stored;
    p->next_offset = stored;
    if (obs(w, p->partition))
        atomic_store(&obs(w, p->partition)->checkpoint, stored);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, w->sh->cfg->topic, p->partition)->offset =
        stored >= 0 ? stored : RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_error_t *err = rd_kafka_seek_partitions(w->rk, l, 5000);
    if (err || l->elems[0].err)
        rm_log_fields(RM_LOG_ERROR, &ctx, "seek to the stored checkpoint failed",
                      RM_LOG_I("worker", w->id),
                      RM_LOG_S("error", err ? rd_kafka_error_string(err)
                                            : rd_kafka_err2str(l->elems[0].err)));
    if (err)
        rd_kafka_error_destroy(err);
    rd_kafka_topic_partition_list_destroy(l);
}

/* Reads the stored checkpoint and resumes the partition from it. */
static int part_resync(rm_worker_t *w, part_t *p) {
    int64_t cp = -1;
    int ms = BACKOFF_MIN_MS;
    time_t deadline = 0;
    while (cp_get(w, w->sh->cfg->topic, p->partition, &cp) != RM_ERR_OK) {
        sink_failed(w, RM_SINK_ERROR_CHECKPOINT, "reading checkpoint", ms);
        if (!backoff(w, &ms, &deadline))
            return -1;
    }
    part_reset(w, p, cp);
    return 0;
}

/* A practitioner the sink does not hold is either new or lost with the
 * rest of the store (a Redis restarted empty, a dropped index) since this
 * worker read its partition's checkpoint. Projected from the checkpoint on
 * as if new and written, its fence would make the replay that follows the
 * failed checkpoint compare-and-set skip every earlier event of it, and the
 * days those events set would stay missing for good. So before a batch that
 * loaded one is written, the partition's stored checkpoint must still be
 * the one this worker knows (a store that lost data lost it too); if not,
 * the partition resumes from the stored checkpoint and nothing of the batch
 * is written. A loss after this check cannot harm: practitioners loaded
 * with a fence are refused by the flush's fence compare-and-set, and a new
 * one's write holds every event it has. 0, or -1 past the stop deadline. */
static int verify_absent_loads(rm_worker_t *w) {
    for (int pi = 0; pi < w->nparts; pi++) {
        part_t *p = part_get(w, pi);
        if (!p || !p->loaded_absent)
            continue;
        p->loaded_absent = false;
        int64_t cp = -1;
        int ms = BACKOFF_MIN_MS;
        time_t deadline = 0;
        while (cp_get(w, w->sh->cfg->topic, pi, &cp) != RM_ERR_OK) {
            sink_failed(w, RM_SINK_ERROR_CHECKPOINT, "reading checkpoint", ms);
            if (!backoff(w, &ms, &deadline))
                return -1;
        }
        if (cp != p->stored_cp)
            part_reset(w, p, cp); /* drops the batch's practitioners unwritten */
    }
    return 0;
}

/* ---- flush ---- */

/* The dirty practitioners of every owned partition, as sink items (and
 * their cache entries in owners[]). 0, or -1 when out of memory. */
static int collect_dirty(rm_worker_t *w, rm_sink_item_t **items_out, pract_t ***owners_out,
                         size_t *n_out) {
    size_t n = 0, cap = 0;
    rm_sink_item_t *items = NULL;
    pract_t **owners = NULL;
    bool profiles = w->sh->ops->profiles;
    for (int pi = 0; pi < w->nparts; pi++) {
        part_t *p = part_get(w, pi);
        for (uint32_t i = 0; p && i < p->cache.capacity; i++) {
            pract_t *pr = p->cache.slots[i];
            if (!pr || !pr->dirty)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                rm_sink_item_t *ni = realloc(items, cap * sizeof(*items));
                if (ni)
                    items = ni;
                pract_t **no = ni ? realloc(owners, cap * sizeof(*owners)) : NULL;
                if (no)
                    owners = no;
                if (!ni || !no) {
                    free(items);
                    free(owners);
                    return -1;
                }
            }
            items[n] = (rm_sink_item_t){.pid = pr->pid,
                                        .pid_len = pr->pid_len,
                                        .st = &pr->st,
                                        .profile = profiles ? &pr->profile : NULL,
                                        .partition = pi,
                                        .fence = pr->fence,
                                        .expect_partition = pr->stored_partition,
                                        .expect_fence = pr->stored_fence};
            owners[n++] = pr;
        }
    }
    *items_out = items;
    *owners_out = owners;
    *n_out = n;
    return 0;
}

/* Writes the items, retrying with backoff. 0, or -1 past the stop deadline. */
static int write_items(rm_worker_t *w, rm_sink_item_t *items, size_t n) {
    int ms = BACKOFF_MIN_MS;
    time_t deadline = 0;
    for (;;) {
        long long t0 = rm_mono_ms();
        if (track(w, w->sink.ops->flush(w->sink.impl, items, n)) == RM_ERR_OK) {
            atomic_store(&w->sh->stats->sink_refused, 0);
            rm_stats_observe_flush(w->sh->stats, (double)(rm_mono_ms() - t0) / 1000.0, n);
            atomic_store(&w->sh->stats->sink_write_ok, 1);
            return 0;
        }
        sink_failed(w, RM_SINK_ERROR_FLUSH, "flush", ms);
        if (!backoff(w, &ms, &deadline))
            return -1;
    }
}

/* After a successful write: written practitioners are clean and remember
 * the fence they stored; a partition with any practitioner the sink did not
 * take (another writer, a rebuild, or lost data) is re-read from its stored
 * checkpoint, since nothing of it in memory can be trusted any more. */
static int settle(rm_worker_t *w, const rm_sink_item_t *items, pract_t **owners, size_t n) {
    bool *diverged = calloc((size_t)w->nparts + 1, sizeof(bool));
    if (!diverged)
        return -1;
    atomic_fetch_add_explicit(&w->sh->stats->flushes, 1, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        pract_t *pr = owners[i];
        pr->dirty = false;
        if (items[i].rejected)
            atomic_fetch_add_explicit(&w->sh->stats->rejected, 1, memory_order_relaxed);
        if (items[i].written) {
            atomic_fetch_add_explicit(&w->sh->stats->practitioners_written, 1,
                                      memory_order_relaxed);
            rm_avail_clear_dirty(&pr->st);
            pr->stored_partition = items[i].partition;
            pr->stored_fence = items[i].fence;
        } else {
            diverged[items[i].partition] = true;
        }
    }
    int rc = 0;
    for (int pi = 0; rc == 0 && pi < w->nparts; pi++)
        if (diverged[pi] && part_get(w, pi))
            rc = part_resync(w, part_get(w, pi));
    free(diverged);
    return rc;
}

static int flush_dirty(rm_worker_t *w) {
    rm_sink_item_t *items;
    pract_t **owners;
    size_t n;
    if (collect_dirty(w, &items, &owners, &n) < 0)
        return -1;
    int rc = 0;
    if (n > 0 && (rc = write_items(w, items, n)) == 0)
        rc = settle(w, items, owners, n);
    free(items);
    free(owners);
    return rc;
}

static int dlq_drain(rm_worker_t *w) {
    if (rm_dlq_drain(w->sh->dlq, &w->dlq_deadline) < 0)
        atomic_store(&w->sh->failed, 1);
    return atomic_load(&w->sh->failed) ? -1 : 0;
}

static int checkpoint(rm_worker_t *w, bool sync_commit) {
    rd_kafka_topic_partition_list_t *commit = rd_kafka_topic_partition_list_new(4);
    for (int pi = 0; pi < w->nparts; pi++) {
        part_t *p = part_get(w, pi);
        if (!p || p->next_offset < 0 || p->next_offset == p->stored_cp)
            continue;
        int ms = BACKOFF_MIN_MS;
        time_t deadline = 0;
        for (;;) {
            bool ok;
            int64_t cur;
            rm_err_t e = cp_cas(w, pi, p->stored_cp, p->next_offset, &ok, &cur);
            if (e == RM_ERR_OK) {
                if (ok) {
                    atomic_store(&w->sh->stats->sink_write_ok, 1);
                    p->stored_cp = p->next_offset;
                    if (obs(w, pi)) {
                        atomic_store(&obs(w, pi)->checkpoint, p->next_offset);
                        atomic_store(&obs(w, pi)->applied_ts_ms, p->last_ts_ms);
                    }
                    rd_kafka_topic_partition_list_add(commit, w->sh->cfg->topic, pi)->offset =
                        p->next_offset;
                } else {
                    part_reset(w, p, cur);
                }
                break;
            }
            sink_failed(w, RM_SINK_ERROR_CHECKPOINT, "checkpoint", ms);
            if (!backoff(w, &ms, &deadline)) {
                rd_kafka_topic_partition_list_destroy(commit);
                return -1;
            }
        }
    }
    if (commit->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_commit(w->rk, commit, sync_commit ? 0 : 1);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            rm_debug("worker %d: Kafka commit: %s (the sink's checkpoint is authoritative)", w->id,
                     rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(commit);
    return 0;
}

/* ---- rebuild lease ---- */

/* Whether a rebuild holds the lease; a sink error counts as "not known" and
 * is retried like any other sink outage. */
static int lease_held(rm_worker_t *w, bool *held, char *holder, size_t cap) {
    int ms = BACKOFF_MIN_MS;
    time_t deadline = 0;
    long long ttl;
    while (lease_read(w, holder, cap, &ttl) != RM_ERR_OK) {
        sink_failed(w, RM_SINK_ERROR_LEASE, "reading the rebuild lease", ms);
        if (!backoff(w, &ms, &deadline))
            return -1;
    }
    *held = holder[0] != '\0';
    return 0;
}

static void pause_assignment(rm_worker_t *w, bool pause) {
    rd_kafka_topic_partition_list_t *l = NULL;
    if (rd_kafka_assignment(w->rk, &l) == RD_KAFKA_RESP_ERR_NO_ERROR && l) {
        if (pause)
            rd_kafka_pause_partitions(w->rk, l);
        else
            rd_kafka_resume_partitions(w->rk, l);
    }
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
}

/* Forgets the pending batch and every cached practitioner (a rebuild
 * rewrote what they were read from). */
static void drop_all(rm_worker_t *w) {
    for (size_t i = 0; i < w->nmsgs; i++)
        rd_kafka_message_destroy(w->msgs[i]);
    w->nmsgs = 0;
    for (int pi = 0; pi < w->nparts; pi++) {
        part_t *p = part_get(w, pi);
        if (p) {
            rm_pract_map_free(&p->cache);
            set_eof(w, p, false);
        }
    }
}

static void resync_all(rm_worker_t *w) {
    for (int pi = 0; pi < w->nparts; pi++) {
        part_t *p = part_get(w, pi);
        if (p && part_resync(w, p) < 0)
            break;
    }
}

/* A rebuild holds the lease: drop the batch and everything in memory (the
 * rebuild rewrites it), pause the partitions and keep polling so the group
 * membership stays alive, until the lease is released; then resume every
 * partition from the checkpoint the rebuild wrote. */
static void pause_for_rebuild(rm_worker_t *w, const char *holder) {
    rm_log_ctx_t ctx = {target_name(w), -1, -1};
    rm_log_fields(RM_LOG_WARN, &ctx, "paused: a rebuild holds the lease; writes wait for it",
                  RM_LOG_I("worker", w->id), RM_LOG_S("holder", holder));
    w->paused = true;
    atomic_fetch_add(&w->sh->stats->paused, 1);
    drop_all(w);
    pause_assignment(w, true);
    char h[256];
    bool held = true;
    while (rm_running() && held) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->rk, 1000);
        heartbeat(w);
        if (m)
            rd_kafka_message_destroy(m); /* re-read after the resync below */
        if (lease_held(w, &held, h, sizeof(h)) < 0)
            break;
    }
    resync_all(w);
    pause_assignment(w, false);
    w->paused = false;
    atomic_fetch_sub(&w->sh->stats->paused, 1);
    rm_log_fields(RM_LOG_INFO, &ctx, "resumed from the checkpoints written by the rebuild",
                  RM_LOG_I("worker", w->id));
}

/* Decode, project, flush and checkpoint the pending batch. On a sink that
 * stays unreachable past the stop deadline the batch is dropped unwritten
 * (it is not checkpointed, so it is read again by the next owner). */
static int process_pending(rm_worker_t *w, bool sync_commit) {
    int rc = 0;
    w->batch_seq++;
    if (w->paused) { /* a rebalance during a pause: nothing may be written */
        for (size_t i = 0; i < w->nmsgs; i++)
            rd_kafka_message_destroy(w->msgs[i]);
        w->nmsgs = 0;
        return 0;
    }
    if (w->nmsgs > 0) {
        char holder[256];
        bool held = false;
        if (lease_held(w, &held, holder, sizeof(holder)) < 0) {
            rc = -1;
        } else if (held) {
            pause_for_rebuild(w, holder);
            return 0;
        } else if (w->sink.ops->take_moved && w->sink.ops->take_moved(w->sink.impl)) {
            /* A rebuild finished while this worker was idle: nothing it
             * holds belongs to the new generation. */
            rm_info("worker %d: the index moved to a new generation; resuming from its "
                    "checkpoints",
                    w->id);
            drop_all(w);
            resync_all(w);
            return 0;
        }
    }
    if (rc == 0 && w->nmsgs > 0) {
        if (prefetch(w) < 0)
            rc = -1;
        for (size_t i = 0; rc == 0 && i < w->nmsgs; i++)
            apply_message(w, w->msgs[i]);
        if (rc == 0)
            rc = verify_absent_loads(w);
    }
    if (rc == 0 && (rc = flush_dirty(w)) == 0 && (rc = dlq_drain(w)) == 0)
        rc = checkpoint(w, sync_commit);
    for (size_t i = 0; i < w->nmsgs; i++)
        rd_kafka_message_destroy(w->msgs[i]);
    w->nmsgs = 0;
    for (int pi = 0; rc == 0 && pi < w->nparts; pi++) {
        part_t *p = part_get(w, pi);
        if (p) {
            rm_pract_evict(&p->cache, w->sh->cfg->cache_limit, w->batch_seq);
            if (obs(w, pi)) /* everything polled is applied and checkpointed */
                atomic_store(&obs(w, pi)->pending_ts_ms, 0);
        }
    }
    if (rc < 0) {
        atomic_store(&w->sh->failed, 1);
        rm_stop_request();
    }
    return rc;
}

/* ---- rebalance ---- */

static part_t *part_own(rm_worker_t *w, int32_t partition) {
    if (partition >= w->nparts) {
        part_t **np = realloc(w->parts, (size_t)(partition + 1) * sizeof(*np));
        if (!np)
            return NULL;
        for (int i = w->nparts; i <= partition; i++)
            np[i] = NULL;
        w->parts = np;
        w->nparts = partition + 1;
    }
    if (!w->parts[partition] && !(w->parts[partition] = calloc(1, sizeof(part_t))))
        return NULL;
    part_t *p = w->parts[partition];
    p->partition = partition;
    p->owned = true;
    p->at_eof = false;
    p->loaded_absent = false;
    return p;
}

/* Reads a partition's checkpoint, retrying like any sink outage. false
 * when the worker is stopping and gave up. */
static bool read_checkpoint(rm_worker_t *w, const char *topic, int32_t partition, int64_t *cp) {
    int ms = BACKOFF_MIN_MS;
    time_t deadline = 0;
    *cp = -1;
    while (cp_get(w, topic, partition, cp) != RM_ERR_OK) {
        sink_failed(w, RM_SINK_ERROR_CHECKPOINT, "reading checkpoint", ms);
        if (!backoff(w, &ms, &deadline))
            return false;
    }
    return true;
}

/* A checkpoint no position of the log explains: above its end (the topic
 * was recreated, Kafka lost data, or this is another cluster: nothing of
 * the partition would ever be applied) or below its earliest offset
 * (retention deleted events before they were applied: the model misses
 * them). Said once, clearly; /metrics and /readyz show it from then on
 * (readmodel_checkpoint_out_of_range). With --until-caught-up a partition
 * that can never catch up fails the run. */
static void check_log_position(rm_worker_t *w, const char *topic, int32_t partition, int64_t cp) {
    int64_t lo = -1, hi = -1;
    if (cp < 0 || rd_kafka_query_watermark_offsets(w->rk, topic, partition, &lo, &hi, 2000) !=
                      RD_KAFKA_RESP_ERR_NO_ERROR)
        return; /* unknown now: the exporter still compares with the fetched watermarks */
    rm_log_ctx_t ctx = {target_name(w), (int)partition, (long long)cp};
    if (cp > hi) {
        rm_logc(RM_LOG_ERROR, &ctx,
                "checkpoint %lld is above the end of %s [%d] (%lld): the log was reset (topic "
                "recreated, Kafka data lost, or another cluster); nothing of this partition is "
                "applied until `readmodel rebuild --target %s --from-beginning` rewrites the model",
                (long long)cp, topic, (int)partition, (long long)hi, target_name(w));
        if (w->sh->cfg->until_caught_up) {
            atomic_store(&w->sh->failed, 1);
            rm_stop_request();
        }
    } else if (cp < lo) {
        rm_logc(RM_LOG_ERROR, &ctx,
                "checkpoint %lld is below the earliest offset of %s [%d] (%lld): retention "
                "deleted %lld event(s) before they were applied, and the model misses them; "
                "repair with `readmodel rebuild --target %s --from-beginning "
                "--allow-truncated-history`",
                (long long)cp, topic, (int)partition, (long long)lo, (long long)(lo - cp),
                target_name(w));
    }
}

static void on_assign(rm_worker_t *w, rd_kafka_topic_partition_list_t *l) {
    for (int i = 0; i < l->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &l->elems[i];
        int64_t cp;
        if (!read_checkpoint(w, tp->topic, tp->partition, &cp)) {
            /* Stopping with the sink unreachable: the partition is not
             * owned here, so nothing of it is applied or checkpointed. */
            rm_warn("worker %d: %s [%d] not taken: stopping before its checkpoint could be read",
                    w->id, tp->topic, (int)tp->partition);
            continue;
        }
        part_t *p = part_own(w, tp->partition);
        if (!p) {
            atomic_store(&w->sh->failed, 1);
            rm_stop_request();
            continue;
        }
        p->stored_cp = cp;
        p->next_offset = cp;
        tp->offset = cp >= 0 ? cp : RD_KAFKA_OFFSET_BEGINNING;
        check_log_position(w, tp->topic, tp->partition, cp);
        rm_partition_obs_t *o = obs(w, tp->partition);
        if (o) {
            atomic_store(&o->checkpoint, cp);
            atomic_store(&o->end, -1);
            atomic_store(&o->earliest, -1);
            atomic_store(&o->pending_ts_ms, 0);
            atomic_store(&o->applied_ts_ms, 0);
            atomic_store(&o->owner, w->id + 1);
        }
        rm_log_ctx_t ctx = {target_name(w), (int)tp->partition, cp >= 0 ? (long long)cp : -1};
        rm_log_fields(RM_LOG_INFO, &ctx,
                      cp >= 0 ? "assigned: resuming from the checkpoint"
                              : "assigned: resuming from the beginning (no checkpoint)",
                      RM_LOG_I("worker", w->id), RM_LOG_S("topic", tp->topic));
    }
}

static void on_revoke(rm_worker_t *w, rd_kafka_topic_partition_list_t *l, bool lost) {
    /* Flush what was collected before the revocation, then let go. */
    if (lost)
        rm_warn("worker %d: partitions lost (session timeout); unflushed work will be re-read",
                w->id);
    process_pending(w, true);
    for (int i = 0; i < l->cnt; i++) {
        part_t *p = part_get(w, l->elems[i].partition);
        if (p) {
            part_drop(w, p);
            rm_log_ctx_t ctx = {target_name(w), (int)l->elems[i].partition, -1};
            rm_log_fields(RM_LOG_INFO, &ctx, "revoked", RM_LOG_I("worker", w->id),
                          RM_LOG_S("topic", l->elems[i].topic));
        }
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *l, void *opaque) {
    rm_worker_t *w = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t kerr;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(w, l);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, l);
        else if ((kerr = rd_kafka_assign(rk, l)) != RD_KAFKA_RESP_ERR_NO_ERROR)
            rm_error("worker %d: assign: %s", w->id, rd_kafka_err2str(kerr));
        /* librdkafka keeps a partition's pause flag across a revocation and
         * a later re-assignment to this consumer: a partition paused for a
         * rebuild, revoked during the pause and assigned back after it would
         * stay paused for good. Every assignment sets the state it needs. */
        if (w->paused)
            rd_kafka_pause_partitions(rk, l);
        else
            rd_kafka_resume_partitions(rk, l);
    } else {
        on_revoke(w, l, rd_kafka_assignment_lost(rk));
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, l);
        else if ((kerr = rd_kafka_assign(rk, NULL)) != RD_KAFKA_RESP_ERR_NO_ERROR)
            rm_error("worker %d: unassign: %s", w->id, rd_kafka_err2str(kerr));
    }
    if (error) {
        rm_error("worker %d: rebalance: %s", w->id, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
}

/* librdkafka's errors (it logs them itself only without this callback).
 * Every broker down is also what /readyz reports after a grace period;
 * called from rd_kafka_consumer_poll on the worker's thread. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)rk;
    rm_worker_t *w = opaque;
    rm_warn("worker %d: kafka: %s: %s", w->id, rd_kafka_err2name(err), reason);
    long long zero = 0;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        atomic_compare_exchange_strong(&w->sh->stats->kafka_down_since_ms, &zero, rm_mono_ms());
}

static void consumer_setup(rd_kafka_conf_t *conf, void *arg) {
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, arg);
}

rm_err_t rm_worker_init(rm_worker_t *w, int id, rm_serve_shared_t *sh) {
    const rm_config_t *cfg = sh->cfg;
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->sh = sh;
    w->invalid_log = (rm_ratelimit_t){.burst = 10, .window_s = 10};
    w->msgs = calloc(cfg->max_batch, sizeof(*w->msgs));
    w->dec = rm_decoder_new();
    char err[256];
    if (!w->msgs || !w->dec) {
        rm_error("worker %d: out of memory", id);
        return RM_ERR_NOMEM;
    }
    rm_err_t e = rm_sink_open(&w->sink, sh->ops, cfg, err, sizeof(err));
    if (e != RM_ERR_OK) {
        rm_error("%s", err);
        return e;
    }

    char group[256], client[64];
    snprintf(group, sizeof(group), "%s-%s", cfg->group, target_name(w));
    snprintf(client, sizeof(client), "readmodel-%s-%d", target_name(w), id);
    const rm_kafka_prop_t defaults[] = {
        {"bootstrap.servers", cfg->brokers},
        {"group.id", group},
        {"client.id", client},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "true"},
        {"auto.offset.reset", "earliest"},
        {"isolation.level", "read_committed"},
        /* The assignment stays librdkafka's default (range, eager):
         * cooperative-sticky would move only the partitions that must move,
         * but Debian's librdkafka 2.0.2 aborts in its assignor when a
         * consumer is closed before its first assignment (a stop during
         * start-up; librdkafka issue 4312, fixed in 2.3.0). With a newer
         * librdkafka, pass --kafka partition.assignment.strategy=
         * cooperative-sticky: the rebalance callback handles both. */
        /* A crashed member's partitions are reassigned after 10 s instead
         * of librdkafka's 45 s; heartbeats run on librdkafka's own thread,
         * so a busy worker does not miss them. The broker's minimum is 6 s. */
        {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "3000"},
    };
    w->rk = rm_kafka_new(RD_KAFKA_CONSUMER, defaults, sizeof(defaults) / sizeof(defaults[0]),
                         cfg->kafka, cfg->n_kafka, consumer_setup, w, err, sizeof(err));
    if (!w->rk) { /* librdkafka refused a property or could not start */
        rm_error("%s", err);
        return RM_ERR_INVAL;
    }
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, cfg->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t kerr = rd_kafka_subscribe(w->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (kerr) {
        rm_error("kafka subscribe %s: %s", cfg->topic, rd_kafka_err2str(kerr));
        return RM_ERR_IO;
    }
    return RM_ERR_OK;
}

void *rm_worker_main(void *arg) {
    rm_worker_t *w = arg;
    const rm_config_t *cfg = w->sh->cfg;
    if (w->sink.ops->ensure) {
        /* The store must be ready before the consumer joins its group (the
         * first poll); a store that is down delays only this pipeline. */
        int ms = BACKOFF_MIN_MS;
        time_t deadline = 0;
        char diff[1024] = "";
        while (track(w, w->sink.ops->ensure(w->sink.impl, diff, sizeof(diff))) != RM_ERR_OK) {
            sink_failed(w, RM_SINK_ERROR_LOAD, "preparing the store", ms);
            if (!backoff(w, &ms, &deadline))
                break;
        }
        if (diff[0] && w->id == 0)
            rm_warn("%s schema differs from this release's (%s); run `readmodel rebuild --target "
                    "%s` to recreate it with the expected one",
                    w->sink.ops->title, diff, target_name(w));
    }
    while (rm_running()) {
        /* Collect: block briefly for the first message, then take what is
         * already there, up to the batch size. */
        heartbeat(w);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->rk, 100);
        while (m) {
            rm_partition_obs_t *o = m->err ? NULL : obs(w, m->partition);
            long long zero = 0;
            if (o) /* the oldest message in hand that is not yet applied */
                atomic_compare_exchange_strong(&o->pending_ts_ms, &zero,
                                               rd_kafka_message_timestamp(m, NULL));
            w->msgs[w->nmsgs++] = m;
            if (w->nmsgs >= cfg->max_batch)
                break;
            m = rd_kafka_consumer_poll(w->rk, 0);
        }
        process_pending(w, false);
    }
    process_pending(w, true);
    rd_kafka_consumer_close(w->rk); /* runs the final revocation */
    return NULL;
}

void rm_worker_destroy(rm_worker_t *w) {
    if (w->rk)
        rd_kafka_destroy(w->rk);
    for (int i = 0; i < w->nparts; i++) {
        if (w->parts[i]) {
            rm_pract_map_free(&w->parts[i]->cache);
            free(w->parts[i]);
        }
    }
    free(w->parts);
    for (size_t i = 0; i < w->nmsgs; i++)
        rd_kafka_message_destroy(w->msgs[i]);
    free(w->msgs);
    rm_decoder_free(w->dec);
    rm_sink_close(&w->sink);
    memset(w, 0, sizeof(*w));
}
