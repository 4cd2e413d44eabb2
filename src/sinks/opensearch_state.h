/*
 * The stored form of a practitioner's state in the OpenSearch state index
 * (opensearch_state.c): one head document and, per stored day, two slot
 * documents of which the head names the committed one.
 *
 *   p:<pid>                      head: partition, fence, profile, the
 *                                rm_avail head bytes, the stored days and,
 *                                per stored day, its committed slot
 *   p:<pid>:<YYYY-MM-DD>:<0|1>   slot: one day's rm_avail_encode_days value
 *
 * A write puts every day whose stored state changed into the slot its head
 * does NOT name, then writes the head (the commit point) naming the new
 * slots. Every document is indexed with version_type=external_gte and
 * version fence + 1. A crash before the head write leaves the old head
 * pointing at untouched slots, so a replay from its fence converges; see
 * docs/architecture.md ("OpenSearch state: head and two slots per day") for
 * why a writer with an older fence cannot damage a newer commit. Practitioner
 * ids are 1..64 characters of A-Z a-z 0-9 . _ - (events.md), so a head id
 * never equals a slot id, and neither starts with "cp:" (checkpoints).
 *
 * Thread-safety: pure functions of their arguments, except that they write
 * the item or state they are given (owned by the calling thread).
 */
#ifndef READMODEL_OPENSEARCH_STATE_H
#define READMODEL_OPENSEARCH_STATE_H

#include "opensearch_internal.h"

#include <roaring/roaring.h>

/* What one write of a practitioner stores. The three sets are owned. */
typedef struct {
    roaring_bitmap_t *stored;  /* days with a stored value after the write */
    roaring_bitmap_t *written; /* days of `stored` this write puts into a slot document */
    roaring_bitmap_t *slot1;   /* days of `stored` whose value is in slot 1 once the
                                * head is written (the others: slot 0) */
} rm_os_plan_t;

/* Plans the write of st: `whole` writes every stored day (a rebuild, a
 * state read in the old single-document form), else only the days whose
 * stored state changed (st->sdirty), each into the slot st->os_slot1 does
 * not name. Cost: one pass over the days and the booking table. RM_ERR_OK,
 * or RM_ERR_NOMEM (*p then holds nothing). */
rm_err_t rm_os_plan(const rm_avail_t *st, bool whole, rm_os_plan_t *p);
/* Frees what *p still owns; a zeroed plan is a no-op. */
void rm_os_plan_free(rm_os_plan_t *p);
/* After the head of p is written: st->os_slot1 takes p->slot1 over. */
void rm_os_plan_commit(rm_avail_t *st, rm_os_plan_t *p);

/* "p:<pid>" and "p:<pid>:<YYYY-MM-DD>:<slot>" (truncated to cap). */
void rm_os_head_id(char *out, size_t cap, const char *pid, size_t len);
void rm_os_slot_id(char *out, size_t cap, const char *pid, size_t len, uint16_t day, int slot);

/* The _source of a head document after the write p, or of a slot document
 * holding one day's value: new malloc'd JSON text (caller frees), NULL when
 * out of memory. */
char *rm_os_head_source(const rm_sink_item_t *it, const rm_os_plan_t *p);
char *rm_os_slot_source(const rm_day_bytes_t *day);

/* A head as read, waiting for its committed slot documents. */
typedef struct {
    long long version; /* the head's _version: fence + 1 of its writer */
    char h[RM_AVAIL_HEAD_BYTES];
    uint16_t *days; /* n stored days, ascending; owned */
    uint8_t *slot;  /* their committed slots (0 or 1); owned */
    size_t n;
    bool pending; /* a head in the per-day form: its slots are still to read */
} rm_os_head_t;

/* Reads one found head (an _mget answer document) into it (partition,
 * fence, profile) and *h (zeroed before). A head in the old form (the whole
 * state in its field `avail`) is decoded into it->st here and marked for a
 * whole rewrite (rm_avail_mark_rewrite); h->pending is then false. 0, or -1
 * when it does not decode (out of memory included); the caller frees *h
 * either way. */
int rm_os_head_read(json_t *doc, rm_sink_item_t *it, rm_os_head_t *h);
/* Decodes the committed slot documents of a pending head, docs[at ..
 * at + h->n) of an _mget answer in the order of h->days, into it->st
 * (freshly initialised) and its os_slot1. -1 when a slot document is
 * missing, does not decode, or is newer than the head (a _version above
 * the head's: a writer with a higher fence wrote a committed slot and
 * never committed its head), else 0. */
int rm_os_head_finish(rm_sink_item_t *it, const rm_os_head_t *h, json_t *docs, size_t at);
void rm_os_head_free(rm_os_head_t *h);

#endif
