/*
 * Internal to the admin commands: the per-target implementations of
 * rebuild, verify and status (one rm_admin_target_t per sink), and the
 * pieces they share (admin_common.c).
 */
#ifndef READMODEL_ADMIN_INTERNAL_H
#define READMODEL_ADMIN_INTERNAL_H

#include "readmodel/config.h"
#include "readmodel/error.h"
#include "readmodel/replay.h"
#include "readmodel/sink.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

/* Runs the replay with progress. RM_ERR_OK when every partition reached its
 * end; otherwise the failure's code (logged; RM_ERR_IO when interrupted). */
rm_err_t rm_admin_replay(const rm_config_t *cfg, rm_replay_t *r);
void rm_admin_log_events(const rm_replay_t *r);

/* Every replayed practitioner, partition by partition (malloc'd array of
 * borrowed pointers, caller frees; NULL when out of memory). */
pract_t **rm_admin_collect(rm_replay_t *r, size_t *n);
/* The name a rebuild holds its lease under: host:pid:start time. */
void rm_admin_holder(char *out, size_t cap);

/* Renews a target's lease every third of its ttl on its own connection
 * (sink) while the work runs; `lost` is set when renewal finds the lease
 * expired or taken, and the work stops at its next check. */
typedef struct {
    const char *target; /* "Redis" / "OpenSearch", for the log */
    void *sink;         /* its own connection, borrowed */
    rm_err_t (*renew)(void *sink, const char *holder, int ttl_ms, bool *ok);
    const char *holder;
    int ttl_ms;
    atomic_int stop, lost;
    bool started;
    pthread_t thread;
} rm_renewer_t;

/* RM_ERR_OK, or RM_ERR_NOMEM when the thread cannot start. */
rm_err_t rm_renewer_start(rm_renewer_t *rn);
/* Stops and joins; true when the lease is still held. */
bool rm_renewer_stop(rm_renewer_t *rn);

/* What rebuild, verify and status do for one sink, after the common part
 * (plan, truncation check, dry run) in admin.c accepted the plan r. Each
 * returns RM_ERR_OK, RM_ERR_DRIFT (verify: differences found),
 * RM_ERR_LEASE_HELD (rebuild: another holds the lease), or the failure's
 * code (logged). A new sink registers its implementation in admin.c's
 * table. */
typedef struct {
    const rm_sink_ops_t *sink;
    rm_err_t (*rebuild)(const rm_config_t *cfg, rm_replay_t *r, int truncated);
    rm_err_t (*verify)(const rm_config_t *cfg, rm_replay_t *r, int truncated);
    rm_err_t (*status)(const rm_config_t *cfg, rm_replay_t *r);
} rm_admin_target_t;

extern const rm_admin_target_t rm_admin_redis;      /* redis_rebuild.c */
extern const rm_admin_target_t rm_admin_opensearch; /* opensearch_rebuild.c */

#endif
