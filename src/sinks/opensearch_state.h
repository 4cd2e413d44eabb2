/*
 * The stored form of a practitioner's state in the OpenSearch state index
 * (opensearch_state.c): one head document and, per stored day, write-once
 * slot documents whose id carries the fence of the writer that made them;
 * the head names, per stored day, the fence of its committed slot.
 *
 *   p:<pid>                      head: partition, fence, profile, the
 *                                rm_avail head bytes, the stored days and,
 *                                per stored day, its slot's fence
 *   p:<pid>:<YYYY-MM-DD>@<fence> slot: one day's rm_avail_encode_days value
 *
 * A write puts every day whose stored state changed into a new slot
 * document named with its own fence, then writes the head (the commit
 * point) naming them, then deletes the superseded slot documents of those
 * days (best effort: a failure only leaves garbage). Every document is
 * indexed with version_type=external_gte and version fence + 1. A writer
 * never writes over a slot document another writer's head may name, so a
 * crash or a refused head leaves nothing a later writer trips over, whatever
 * its fence; see docs/architecture.md ("OpenSearch state: a head and
 * write-once day slots") for why no writer deletes a slot a committed head
 * names. Practitioner ids are 1..64 characters of A-Z a-z 0-9 . _ -
 * (events.md), so a head id never equals a slot id, and neither starts with
 * "cp:" (checkpoints).
 *
 * Thread-safety: pure functions of their arguments, except that they write
 * the item or state they are given (owned by the calling thread).
 */
#ifndef READMODEL_OPENSEARCH_STATE_H
#define READMODEL_OPENSEARCH_STATE_H

#include "opensearch_internal.h"

#include <roaring/roaring.h>

/* What one write of a practitioner stores. Everything is owned. */
typedef struct {
    roaring_bitmap_t *stored;  /* days with a stored value after the write */
    roaring_bitmap_t *written; /* days of `stored` this write puts into a new slot document */
    uint16_t *days;            /* the n stored days, ascending ... */
    int64_t *fences;           /* ... and the fence of each one's slot once the head is written */
    size_t n;
} rm_os_plan_t;

/* Plans the write of st at `fence`: `whole` writes every stored day (a
 * rebuild, a state read in an older form), else the days whose stored
 * state changed (st->sdirty) and any stored day its committed head does not
 * name (st->os_days). Cost: one pass over the days and the booking table.
 * RM_ERR_OK, or RM_ERR_NOMEM (*p then holds nothing). */
rm_err_t rm_os_plan(const rm_avail_t *st, bool whole, int64_t fence, rm_os_plan_t *p);
/* Frees what *p still owns; a zeroed plan is a no-op. */
void rm_os_plan_free(rm_os_plan_t *p);
/* After the head of p is written: st->os_days and os_fences take p's over. */
void rm_os_plan_commit(rm_avail_t *st, rm_os_plan_t *p);
/* The slot documents the head of p supersedes: those st's committed head
 * names (st->os_days/os_fences) for a day p no longer stores or stores
 * under another fence. Calls fn(arg, day, fence) for each, in day order;
 * stops at and returns fn's first nonzero value, else 0. */
int rm_os_plan_superseded(const rm_avail_t *st, const rm_os_plan_t *p,
                          int (*fn)(void *arg, uint16_t day, int64_t fence), void *arg);

/* "p:<pid>" and "p:<pid>:<YYYY-MM-DD>@<fence>" (truncated to cap). */
void rm_os_head_id(char *out, size_t cap, const char *pid, size_t len);
void rm_os_slot_id(char *out, size_t cap, const char *pid, size_t len, uint16_t day, int64_t fence);

/* The _source of a head document after the write p, or of a slot document
 * holding one day's value: new malloc'd JSON text (caller frees), NULL when
 * out of memory. */
char *rm_os_head_source(const rm_sink_item_t *it, const rm_os_plan_t *p);
char *rm_os_slot_source(const rm_day_bytes_t *day);

/* A head as read, waiting for its committed slot documents. */
typedef struct {
    char h[RM_AVAIL_HEAD_BYTES];
    uint16_t *days;  /* n stored days, ascending; owned */
    int64_t *fences; /* their slots' fences; owned */
    uint8_t *slot;   /* legacy (two fixed slots a day): their committed slots
                      * (0 or 1) instead of fences; owned */
    size_t n;
    bool pending; /* a head in a per-day form: its slots are still to read */
} rm_os_head_t;

/* Reads one found head (an _mget answer document) into it (partition,
 * fence, profile) and *h (zeroed before). A head in the old form (the whole
 * state in its field `avail`) is decoded into it->st here and marked for a
 * whole rewrite (rm_avail_mark_rewrite); h->pending is then false. 0, or -1
 * when it does not decode (out of memory included); the caller frees *h
 * either way. */
int rm_os_head_read(json_t *doc, rm_sink_item_t *it, rm_os_head_t *h);
/* The id of the k-th slot document a pending head names. */
void rm_os_head_slot_id(const rm_sink_item_t *it, const rm_os_head_t *h, size_t k, char *out,
                        size_t cap);
/* Decodes the committed slot documents of a pending head, docs[at ..
 * at + h->n) of _mget answers in the order of h->days, into it->st
 * (freshly initialised) and its os_days/os_fences (a legacy head: none, and
 * the state is marked for a whole rewrite). -1 when a slot document is
 * missing or does not decode, else 0. */
int rm_os_head_finish(rm_sink_item_t *it, const rm_os_head_t *h, json_t *docs, size_t at);
void rm_os_head_free(rm_os_head_t *h);

#endif
