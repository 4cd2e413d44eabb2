/*
 * The sink interface: what a pipeline (serve's workers) and the admin
 * commands need from a read model's store, whatever it is. Each sink
 * (src/sinks/redis_ops.c, src/sinks/opensearch_ops.c) exports one
 * `const rm_sink_ops_t` and is listed once in src/sinks/sinks.c; serve,
 * rebuild, verify and status loop over the configured sinks and never
 * branch on which one they hold.
 *
 * Items: one neutral rm_sink_item_t carries a practitioner to a sink and its
 * answer back, for load (stored state in), flush (new state out, with the
 * fence compare-and-set) and the rebuild's forced write.
 *
 * Errors: every operation returns RM_ERR_OK, RM_ERR_IO (connection lost,
 * timeout, server overloaded: retry), RM_ERR_REPLY (an answer that cannot be
 * right), RM_ERR_CORRUPT (load: a stored state that does not decode; the
 * others are loaded), RM_ERR_NOMEM or RM_ERR_INVAL. The one-line reason is
 * in last_error(); it never contains a credential. Nothing retries inside a
 * sink: the caller owns the retry policy.
 *
 * Thread-safety: a sink handle is used by one thread at a time (each worker,
 * writer and health checker opens its own); the ops tables are constant.
 */
#ifndef READMODEL_SINK_H
#define READMODEL_SINK_H

#include "readmodel/config.h"
#include "readmodel/error.h"
#include "readmodel/sink_item.h"
#include "readmodel/stats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the sink recorded of the last rebuild and verify (0: no record). */
typedef struct {
    long long rebuild_finished_s;
    bool rebuild_ok;
    long long rebuild_duration_ms;
    long long verify_finished_s;
    long long verify_drift;
} rm_sink_runs_t;

typedef struct rm_sink_ops {
    const char *name;  /* "redis": metrics label, group suffix, record and lease names */
    const char *title; /* "Redis": log lines */
    bool profiles;     /* items carry the profile (the worker projects it too) */
    /* Whether cfg configures this sink for serve (Redis always; OpenSearch
     * with --opensearch). */
    bool (*configured)(const rm_config_t *cfg);
    /* A new handle from cfg (strings copied); does not connect. NULL with a
     * one-line reason in err (bad URL, out of memory). */
    void *(*open)(const rm_config_t *cfg, char *err, size_t errlen);
    void (*free)(void *s); /* NULL is a no-op */
    const char *(*last_error)(const void *s);
    rm_err_t (*ping)(void *s);
    /* Prepares the store before the pipeline's consumers join their group
     * (OpenSearch: the index and aliases); diff receives a description of a
     * live schema that differs from this release's ("" when equal). NULL:
     * nothing to prepare. */
    rm_err_t (*ensure)(void *s, char *diff, size_t cap);
    /* Loads stored states of n practitioners. */
    rm_err_t (*load)(void *s, rm_sink_item_t *items, size_t n);
    /* Writes each practitioner's state atomically (with its fence CAS unless
     * force); on error nothing is reported written. */
    rm_err_t (*flush)(void *s, rm_sink_item_t *items, size_t n);
    /* *next: the stored next offset of a partition, -1 when none. */
    rm_err_t (*checkpoint_get)(void *s, const char *topic, int32_t partition, int64_t *next);
    /* Sets it to next only if it is still `expected` (-1: absent); *ok false
     * when it moved, *current then holds the stored value. */
    rm_err_t (*checkpoint_cas)(void *s, const char *topic, int32_t partition, int64_t expected,
                               int64_t next, bool *ok, int64_t *current);
    /* The rebuild lease: holder "" when free, ttl in ms (-1 when free). */
    rm_err_t (*lease_get)(void *s, char *holder, size_t cap, long long *ttl_ms);
    /* Whether the store moved to another generation since this handle last
     * read or wrote (a rebuild finished while the worker was idle); clears
     * it. NULL: the store has no generations. */
    bool (*take_moved)(void *s);
    /* The records of the last rebuild and verify. */
    rm_err_t (*last_runs)(void *s, rm_sink_runs_t *out);
    /* The store's nodes as the last ping found them (Redis: every master of
     * the slot map, or the one server), at most cap into out (the
     * caller's); returns how many, 0 before the first ping reached any.
     * Cannot fail. NULL: the store reports no nodes (OpenSearch). */
    int (*nodes)(void *s, rm_sink_node_t *out, int cap);
} rm_sink_ops_t;

/* A handle and its operations. */
typedef struct {
    const rm_sink_ops_t *ops;
    void *impl; /* owned */
} rm_sink_t;

extern const rm_sink_ops_t rm_redis_sink_ops;
extern const rm_sink_ops_t rm_os_sink_ops;

/* Every sink this program knows, NULL-terminated, in pipeline order (the
 * first is the one that dead-letters invalid events). */
extern const rm_sink_ops_t *const rm_sinks[];

/* The sink named `name`, NULL when unknown. */
const rm_sink_ops_t *rm_sink_find(const char *name);
/* The sinks serve runs for cfg (into out, at most cap); returns how many. */
size_t rm_sinks_configured(const rm_config_t *cfg, const rm_sink_ops_t **out, size_t cap);
/* The sinks an admin command acts on: the one named by cfg->target, or for
 * "all" every configured one. */
size_t rm_sinks_targeted(const rm_config_t *cfg, const rm_sink_ops_t **out, size_t cap);

/* Opens a handle: RM_ERR_OK, or RM_ERR_INVAL/RM_ERR_NOMEM with err set. */
rm_err_t rm_sink_open(rm_sink_t *s, const rm_sink_ops_t *ops, const rm_config_t *cfg, char *err,
                      size_t errlen);
/* Frees the handle; a zeroed rm_sink_t is a no-op. */
void rm_sink_close(rm_sink_t *s);

#endif
