/*
 * Redis sink for the availability read model.
 *
 * Keys (prefix default "rm:"; {id} is a Redis Cluster hash tag):
 *   <prefix>avail:{<id>}:<YYYY-MM-DD>  36-byte bitmap, present iff a slot is free
 *   <prefix>state:{<id>}               hash: p (partition), f (fence offset),
 *                                      s (rm_avail_encode bytes)
 *   <prefix>checkpoint:<topic>:<part>  next offset to consume
 *
 * A practitioner's flush is one Lua script (atomic) that writes its dirty
 * day keys and its state only when the stored fence is still the one the
 * writer last read or wrote (compare-and-set), so a replayed or stale write
 * never moves a practitioner backwards, and a Redis that lost data (restart
 * without persistence, failover, FLUSHALL) is noticed instead of papered over.
 * Checkpoints are written with compare-and-set, so a writer learns when
 * someone else (a rebuild, another consumer, a restarted empty Redis) has
 * moved the checkpoint under it.
 *
 * Errors: every call returns RM_ERR_OK, RM_ERR_IO (connection lost or
 * refused: the context is dropped and the next call reconnects),
 * RM_ERR_REPLY (the server answered with an error) or RM_ERR_INVAL (a key
 * does not fit its buffer of 256 or 512 bytes: the prefix, an id or a topic
 * is too long; that command is not sent). Nothing retries inside the sink,
 * the caller owns the retry policy, with one exception: a script call
 * answered NOSCRIPT (SCRIPT FLUSH, restart, failover: it did not run) loads
 * the script again and is sent again, once.
 *
 * Thread-safety: an rm_redis_sink_t (one connection) belongs to one thread
 * at a time; every worker, writer and health checker opens its own. The key
 * formatters are thread-safe.
 */
#ifndef READMODEL_REDIS_SINK_H
#define READMODEL_REDIS_SINK_H

#include "readmodel/availability.h"
#include "readmodel/config.h"
#include "readmodel/error.h"
#include "readmodel/redis_url.h"
#include "readmodel/sink_item.h"
#include "readmodel/stats.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct rm_redis_sink rm_redis_sink_t;

/* Creates a sink; copies url and prefix (every string, or no sink: never a
 * sink without its credentials). Does not connect. NULL on ENOMEM. */
rm_redis_sink_t *rm_redis_sink_new(const rm_redis_url_t *url, const char *prefix);
/* A sink for cfg's --redis URL, prefix and TLS options (redis_ops.c). NULL
 * with the reason in err (a bad URL, ENOMEM). Does not connect. */
rm_redis_sink_t *rm_redis_sink_open(const rm_config_t *cfg, char *err, size_t errlen);
/* Closes the connection and frees; NULL is a no-op. */
void rm_redis_sink_free(rm_redis_sink_t *s);

/* Connects (when not connected), authenticates, selects the db and loads
 * the scripts. Returns RM_ERR_OK or RM_ERR_IO/RM_ERR_REPLY; the reason is in
 * rm_redis_sink_last_error(). */
rm_err_t rm_redis_sink_connect(rm_redis_sink_t *s);
/* Last error text (static buffer inside the sink; no secrets). */
const char *rm_redis_sink_last_error(const rm_redis_sink_t *s);

/* Loads the stored state of n practitioners in one pipeline: items' st
 * (initialised by the caller), partition, fence and corrupt are filled;
 * profile is not used. A practitioner without stored state is left as
 * initialised with fence -1. RM_ERR_CORRUPT when a stored state cannot be
 * decoded (reported, not trusted). */
rm_err_t rm_redis_sink_load(rm_redis_sink_t *s, rm_sink_item_t *items, size_t n);

/* Writes each practitioner's dirty days and state atomically (one script per
 * practitioner, pipelined; with force, MULTI/EXEC whatever is stored). Uses
 * pid, st, partition, fence, expect_partition/expect_fence and force; sets
 * written. On any error nothing is reported as written. */
rm_err_t rm_redis_sink_flush(rm_redis_sink_t *s, rm_sink_item_t *items, size_t n);

/* Reads a checkpoint: *next = stored next offset, or -1 when there is none. */
rm_err_t rm_redis_sink_checkpoint_get(rm_redis_sink_t *s, const char *topic, int32_t partition,
                                      int64_t *next);
/* Sets the checkpoint to next only if it is still `expected` (-1: absent).
 * *ok tells whether it was set; when not, *current holds the stored value
 * (-1 when absent). RM_ERR_CORRUPT (and *ok false) when the stored value is
 * not an offset. */
rm_err_t rm_redis_sink_checkpoint_cas(rm_redis_sink_t *s, const char *topic, int32_t partition,
                                      int64_t expected, int64_t next, bool *ok, int64_t *current);

/* ---- administration (redis_admin.c): rebuild, verify, status ---- */

/* The lease a rebuild holds on the Redis target: <prefix>lease:redis. */
/* Takes the lease for ttl_ms if free: *got false (and *holder_out filled when
 * non-NULL, cap bytes) when someone else holds it. */
rm_err_t rm_redis_lease_acquire(rm_redis_sink_t *s, const char *holder, int ttl_ms, bool *got,
                                char *holder_out, size_t cap);
/* Extends the lease if still ours: *ok false when it was lost. */
rm_err_t rm_redis_lease_renew(rm_redis_sink_t *s, const char *holder, int ttl_ms, bool *ok);
rm_err_t rm_redis_lease_release(rm_redis_sink_t *s, const char *holder);
/* Current holder ("" when free) and remaining ttl in ms (-1 when free). */
rm_err_t rm_redis_lease_get(rm_redis_sink_t *s, char *holder, size_t cap, long long *ttl_ms);

/* Calls fn for every key matching <prefix>PATTERN (SCAN, COUNT 1000). The
 * key passed to fn is without the prefix and valid during the call.
 * RM_ERR_REPLY on a reply of the wrong shape (fn not called for that page). */
rm_err_t rm_redis_scan(rm_redis_sink_t *s, const char *pattern,
                       void (*fn)(const char *key, size_t len, void *arg), void *arg);
/* Pipelined GET of n keys (without prefix). values[i] receives a malloc'd
 * copy (NULL when absent) and lens[i] its length; the caller frees. On any
 * error every values[i] is NULL. */
rm_err_t rm_redis_get_many(rm_redis_sink_t *s, char *const *keys, size_t n, char **values,
                           size_t *lens);
/* Pipelined HMGET p f of n practitioners' state keys: partitions/fences -1
 * when absent. RM_ERR_CORRUPT when a stored p or f is not a number (that
 * practitioner's are then -1), RM_ERR_REPLY on a reply of the wrong type. */
rm_err_t rm_redis_fences(rm_redis_sink_t *s, char *const *pids, size_t n, int32_t *partitions,
                         int64_t *fences);
/* Pipelined DEL of n keys (without prefix). */
rm_err_t rm_redis_del_many(rm_redis_sink_t *s, char *const *keys, size_t n);
/* Unconditional checkpoint write (rebuild). */
rm_err_t rm_redis_checkpoint_set(rm_redis_sink_t *s, const char *topic, int32_t partition,
                                 int64_t next);
/* Records of the last rebuild and verify (<prefix>rebuild:last:<target>,
 * <prefix>verify:last:<target>; `name` is the part after the prefix), as
 * field/value pairs. */
rm_err_t rm_redis_record_set(rm_redis_sink_t *s, const char *name, const char *const *fields,
                             const char *const *values, size_t n);
/* Writes "field=value" lines of the record to out (empty when absent).
 * RM_ERR_REPLY (out empty) on a reply of the wrong type. */
rm_err_t rm_redis_record_get(rm_redis_sink_t *s, const char *name, char *out, size_t cap);
/* Writes the mode (single server or cluster, TLS) and one line per master
 * with its number of keys (DBSIZE) to out. */
rm_err_t rm_redis_topology(rm_redis_sink_t *s, char *out, size_t cap);
/* PING of every master (connecting first when needed, without loading the
 * scripts, so one master down does not hide the others' answers): RM_ERR_OK
 * when all answer; in a cluster the error names the node that did not. */
rm_err_t rm_redis_sink_ping(rm_redis_sink_t *s);
/* Every master as the last ping found it (all down when it could not
 * connect at all), at most cap into out; returns how many (0 before the
 * first ping that connected). Same thread as the handle; cannot fail. */
int rm_redis_sink_nodes(rm_redis_sink_t *s, rm_sink_node_t *out, int cap);

/* Key formatting, exposed for tools and tests. Returns the length of the
 * key written to out (NUL-terminated), or -1 when it does not fit in cap
 * bytes: out then holds a truncated key that must not be used. */
int rm_redis_key_avail(char *out, size_t cap, const char *prefix, const char *pid, size_t pid_len,
                       uint16_t day);
int rm_redis_key_state(char *out, size_t cap, const char *prefix, const char *pid, size_t pid_len);
int rm_redis_key_checkpoint(char *out, size_t cap, const char *prefix, const char *topic,
                            int32_t partition);

#endif
