/*
 * OpenSearch sink for the practitioner index (libcurl + jansson).
 *
 * Layout (prefix from --opensearch-index-prefix, default empty):
 *   <prefix>practitioners            alias readers query
 *   <prefix>practitioners-<gen>      concrete index of one generation
 *   <prefix>practitioners-state      alias of the pipeline's own state
 *   <prefix>practitioners-state-<gen>  per practitioner: a head (partition,
 *                                    fence, profile, stored days) and two
 *                                    slot documents per stored day, the
 *                                    head naming the committed one
 *                                    (src/sinks/opensearch_state.h);
 *                                    per partition: the checkpoint
 *   <prefix>readmodel-meta           rebuild lease and last-run records
 * A rebuild builds generation N+1 of both indices and moves both aliases in
 * one _aliases call.
 *
 * Writes are idempotent and monotonic: a document and a state are indexed
 * with version_type=external_gte and version = fence + 1, so a replay
 * rewrites the same version and a stale writer gets a 409 instead of moving
 * a practitioner backwards. A practitioner's document is written before its
 * state (the changed days' slots, then the head: the commit point), and
 * states before the checkpoint, so a crash between steps only causes a
 * replay. Checkpoints use compare-and-set (if_seq_no /
 * if_primary_term, or op_type=create when there is none).
 *
 * Errors: RM_ERR_OK, RM_ERR_IO (connection, timeout, HTTP 429 or 5xx:
 * retry), RM_ERR_REPLY (an answer that cannot be right: 4xx or a body that
 * does not parse), RM_ERR_CORRUPT (a stored state that does not decode).
 * The reason is in rm_os_sink_last_error(); credentials never appear in it.
 *
 * Thread-safety: an rm_os_sink_t (one libcurl handle) belongs to one
 * thread at a time; every worker, writer and health checker opens its own.
 */
#ifndef READMODEL_OPENSEARCH_SINK_H
#define READMODEL_OPENSEARCH_SINK_H

#include "readmodel/availability.h"
#include "readmodel/error.h"
#include "readmodel/practitioner_doc.h"
#include "readmodel/sink_item.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *url;          /* http(s)://host:port[/path]; required */
    const char *index_prefix; /* "" by default */
    const char *ca_file;      /* PEM bundle to verify the server; NULL: system CAs */
    const char *cert_file;    /* client certificate (PEM), with key_file; NULL: none */
    const char *key_file;
    const char *username; /* basic auth; NULL: none */
    const char *password;
    const char *aws_region; /* non-NULL: sign with AWS SigV4 for service "es" */
    const char *aws_key, *aws_secret, *aws_token;
    size_t bulk_docs;  /* documents per _bulk request */
    size_t bulk_bytes; /* bytes per _bulk request */
    long timeout_ms;   /* per request */
} rm_os_config_t;

typedef struct rm_os_sink rm_os_sink_t;

/* Copies cfg (every string, or no sink). Does not connect. NULL when out of
 * memory. */
rm_os_sink_t *rm_os_sink_new(const rm_os_config_t *cfg);
void rm_os_sink_free(rm_os_sink_t *s);
const char *rm_os_sink_last_error(const rm_os_sink_t *s);
/* The alias readers query, "<prefix>practitioners" (a buffer inside the
 * sink, valid while it lives). */
const char *rm_os_alias(const rm_os_sink_t *s);

/* GET /: RM_ERR_OK when the server answers as OpenSearch. */
rm_err_t rm_os_sink_ping(rm_os_sink_t *s);
/* Creates generation 1 with both aliases when the alias does not exist,
 * and the meta index; checks the live index's mapping against the one this
 * release writes, writing any difference into diff (empty when equal), and
 * sets ignore_above on the free-text keyword fields of a live index made
 * without it (a refusal is logged, not returned). */
rm_err_t rm_os_sink_ensure(rm_os_sink_t *s, char *diff, size_t cap);
/* The mapping and settings of a concrete index (new reference). */
json_t *rm_os_index_body(bool loading);

/* Loads stored states (items' st, profile, partition, fence, corrupt): one
 * _mget of the heads, then _mget requests of their committed slot
 * documents (at most 1,000 ids a request); a state in an earlier form
 * (single document, two fixed slots a day) is decoded and marked for a
 * whole rewrite. RM_ERR_CORRUPT (the item marked corrupt) for
 * a state that does not decode or a missing slot;
 * other errors as for any request (items then half filled: start them
 * afresh). */
rm_err_t rm_os_sink_load(rm_os_sink_t *s, rm_sink_item_t *items, size_t n);

/* What the sink did, for tests and diagnostics (not exported as metrics:
 * the worker counts rejected documents itself from the items). */
typedef struct {
    unsigned long long bulk_requests, item_retries, rejected, http_errors;
    /* superseded slot documents whose best-effort delete failed (garbage
     * left in the state index; a rebuild's new generation drops it) */
    unsigned long long slot_delete_failures;
} rm_os_counters_t;

/* Writes documents, then the changed days' state slots, then the state
 * heads, then deletes the slot documents the heads superseded (best
 * effort; bulk, batched by --opensearch-bulk-docs and -bytes; the items'
 * states remember the slots a written head names). A document refused as
 * stale (409) does not stop its state: the head decides. Items answered 429 or 5xx are retried with
 * capped exponential backoff and jitter up to `attempts` times; RM_ERR_IO when some still fail
 * (nothing is then reported written). A missing alias (index dropped) is
 * re-created empty and every item reported stale, so the caller replays. */
rm_err_t rm_os_sink_flush(rm_os_sink_t *s, rm_sink_item_t *items, size_t n, int attempts);
const rm_os_counters_t *rm_os_sink_counters(const rm_os_sink_t *s);

rm_err_t rm_os_checkpoint_get(rm_os_sink_t *s, const char *topic, int32_t partition, int64_t *next);
/* Compare-and-set against the version last read or written by this sink
 * (none: create), always through the state alias (require_alias, so a
 * dropped index is never re-created by automatic index creation under the
 * alias's name). *ok false when it moved; *current then holds it. When the
 * state alias is gone, the model is re-created empty (as by a flush) and
 * *current is -1: the caller replays. */
rm_err_t rm_os_checkpoint_cas(rm_os_sink_t *s, const char *topic, int32_t partition,
                              int64_t expected, int64_t next, bool *ok, int64_t *current);

/* Lease of the OpenSearch target (document lease:opensearch in the meta
 * index): holder "" when free or expired. The same request reads the
 * `generation` document: when it names another state index than the one
 * this sink last read or wrote, rm_os_sink_take_moved() then says so. */
rm_err_t rm_os_lease_get(rm_os_sink_t *s, char *holder, size_t cap, long long *ttl_ms);
/* Whether the aliases moved to another generation since this sink last read
 * or wrote a checkpoint or state (a rebuild finished); clears the flag. */
bool rm_os_sink_take_moved(rm_os_sink_t *s);
/* Records which concrete indices the aliases point to (meta document
 * `generation`), after creating generation 1 or moving the aliases. */
rm_err_t rm_os_generation_record(rm_os_sink_t *s, const char *docs_index, const char *state_index);
rm_err_t rm_os_lease_acquire(rm_os_sink_t *s, const char *holder, int ttl_ms, bool *got,
                             char *holder_out, size_t cap);
rm_err_t rm_os_lease_renew(rm_os_sink_t *s, const char *holder, int ttl_ms, bool *ok);
rm_err_t rm_os_lease_release(rm_os_sink_t *s, const char *holder);

/* ---- administration (opensearch_admin.c): rebuild and verify ---- */

/* The concrete indices the aliases point to now (NULL-terminated names in
 * out, caller frees with free()); gen is the generation number. On any
 * error both names are NULL (RM_ERR_NOMEM when a name cannot be copied). */
rm_err_t rm_os_current(rm_os_sink_t *s, char **docs_index, char **state_index, long *gen);
/* "<prefix>practitioners-<gen>" and "<prefix>practitioners-state-<gen>"
 * (gen zero-padded to 6 digits) into docs and state, cap bytes each. */
void rm_os_gen_names(const rm_os_sink_t *s, long gen, char *docs, char *state, size_t cap);
/* Creates generation gen (refresh off, no replicas). */
rm_err_t rm_os_generation_create(rm_os_sink_t *s, long gen);
/* Writes flush items straight into generation gen (no aliases). */
rm_err_t rm_os_generation_load(rm_os_sink_t *s, long gen, rm_sink_item_t *items, size_t n,
                               int attempts);
rm_err_t rm_os_generation_checkpoint(rm_os_sink_t *s, long gen, const char *topic,
                                     int32_t partition, int64_t next);
/* Restores refresh interval and replicas, then refreshes. */
rm_err_t rm_os_generation_finish(rm_os_sink_t *s, long gen);
/* Moves both aliases to generation gen in one _aliases call. */
rm_err_t rm_os_generation_activate(rm_os_sink_t *s, long gen);
rm_err_t rm_os_index_delete(rm_os_sink_t *s, const char *index);
/* Calls fn for every document behind the alias, in practitioner_id order
 * (search_after pages of 1000); fn gets the _id, the _source (borrowed) and
 * the _version (fence + 1 of the practitioner's last applied event). */
rm_err_t rm_os_scan(rm_os_sink_t *s,
                    void (*fn)(const char *id, json_t *src, long long version, void *arg),
                    void *arg);
/* Records of the last rebuild and verify in the meta index. */
rm_err_t rm_os_record_set(rm_os_sink_t *s, const char *name, json_t *record);
/* *record: a new reference to the stored record, NULL when there is none. */
rm_err_t rm_os_record_get(rm_os_sink_t *s, const char *name, json_t **record);

#endif
