/*
 * A Redis client that is either one server or a Redis Cluster, found out
 * from the server (CLUSTER SLOTS answered "cluster support disabled": one
 * server). Commands are pipelined: appended with the key that routes them,
 * then their replies read back in the order appended. In a cluster each
 * command goes to the master of its key's slot (CRC16 of the hash tag), one
 * connection per master, so a pipeline is split per node; a reply
 * MOVED (the slot moved: the map is updated and the command sent again to
 * the new owner; the whole map is read again before the next pipeline),
 * ASK (sent again to the target, preceded by ASKING), TRYAGAIN or
 * CLUSTERDOWN (sent again after a backoff, up to about 15 s) is handled
 * here and never seen by the caller. Each of those replies means the
 * command did not run, so sending it again runs it once.
 *
 * A group of commands that must run together (MULTI ... EXEC) is appended
 * as one formatted unit of several replies, all its keys in one slot: it is
 * routed, and sent again, as a unit.
 *
 * Thread-safety: an rm_rclient_t belongs to one thread at a time.
 *
 * Errors: RM_ERR_IO (a connection failed: every connection is dropped and
 * the pending replies are lost; the next rm_rclient_connect reconnects and
 * reads the slot map again), RM_ERR_CONFIG (credentials, TLS trust,
 * a database other than 0 on a cluster), RM_ERR_NOMEM. The reason is in
 * rm_rclient_error(), without secrets.
 */
#ifndef READMODEL_REDIS_CLUSTER_H
#define READMODEL_REDIS_CLUSTER_H

#include "readmodel/error.h"
#include "readmodel/redis_url.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#define RM_REDIS_SLOTS 16384

typedef struct rm_rclient rm_rclient_t;

/* The cluster slot of a key: CRC16 (XMODEM) of its hash tag (the part
 * between the first '{' and the next '}' when not empty), else of the whole
 * key, modulo 16384. Thread-safe. */
unsigned rm_redis_slot(const char *key, size_t len);

/* A client for url (borrowed: it must outlive the client). Does not
 * connect. NULL on ENOMEM. */
rm_rclient_t *rm_rclient_new(const rm_redis_url_t *url);
/* Closes every connection and frees; NULL is a no-op. */
void rm_rclient_free(rm_rclient_t *cl);

/* Connects to the URL's server when not connected, finds out whether it is
 * a cluster and, for a cluster, reads the slot map (again when a MOVED made
 * it stale). *fresh (may be NULL) tells whether a new connection or map was
 * made: per-server state such as loaded scripts must then be set up again
 * on every master. Must not be called with replies pending. */
rm_err_t rm_rclient_connect(rm_rclient_t *cl, bool *fresh);
/* Drops every connection and anything pending (after an error). */
void rm_rclient_reset(rm_rclient_t *cl);
/* Whether the server is a cluster (false before the first connect). */
bool rm_rclient_is_cluster(const rm_rclient_t *cl);
/* The last error (buffer inside the client). */
const char *rm_rclient_error(const rm_rclient_t *cl);

/* Appends one command routed by key[0..klen) (key NULL: any master). */
rm_err_t rm_rclient_append(rm_rclient_t *cl, const char *key, size_t klen, int argc,
                           const char **argv, const size_t *lens);
/* Appends a formatted unit of nreplies replies (any number) routed by key;
 * takes cmd (malloc'd) in every case. */
rm_err_t rm_rclient_append_owned(rm_rclient_t *cl, const char *key, size_t klen, char *cmd,
                                 size_t len, int nreplies);
/* The next reply, in the order appended (caller frees with
 * freeReplyObject). Redirections are followed here; an error reply that is
 * not one (or one retried too often) is returned as the reply. */
rm_err_t rm_rclient_reply(rm_rclient_t *cl, redisReply **out);
/* One command routed by key: append, then its reply. No reply may be
 * pending. */
rm_err_t rm_rclient_command(rm_rclient_t *cl, redisReply **out, const char *key, size_t klen,
                            int argc, const char **argv, const size_t *lens);

/* The masters (servers owning slots; the one server when not a cluster),
 * for commands every master must run (SCAN, SCRIPT LOAD, PING). The count
 * is valid until the next connect or command. */
size_t rm_rclient_masters(const rm_rclient_t *cl);
/* "host:port" (or the socket path) of master i. */
const char *rm_rclient_master_name(const rm_rclient_t *cl, size_t i);
/* One command on master i (connecting to it when needed). No reply may be
 * pending. */
rm_err_t rm_rclient_master_command(rm_rclient_t *cl, size_t i, redisReply **out, int argc,
                                   const char **argv, const size_t *lens);
/* The same, but a failure drops only master i's connection and marks the
 * map stale (the next rm_rclient_connect reads it again), so the other
 * masters can still be asked: for health checks of every master. */
rm_err_t rm_rclient_master_try(rm_rclient_t *cl, size_t i, redisReply **out, int argc,
                               const char **argv, const size_t *lens);
/* In a cluster: WAIT until every master written to since the last call
 * has its writes on one replica (when the slot map lists one), at most
 * timeout_ms per master; *lagging counts the masters that timed out. A
 * no-op for one server. */
rm_err_t rm_rclient_wait_replicas(rm_rclient_t *cl, int timeout_ms, int *lagging);

/* Receives rm_rclient_describe's findings as they come: (master, NULL)
 * just before a master is PINGed, (NULL, line) for each line (ending in
 * "\n"). Both strings are borrowed for the call. */
typedef void (*rm_rclient_describe_fn)(void *arg, const char *master, const char *line);

/* Connects (as rm_rclient_connect) and reports the mode through fn, as
 * lines of `--check-config`: "redis-mode=single server HOST:PORT", or
 * "redis-mode=cluster of N master(s)" then one "redis-master=HOST:PORT
 * (answers)" or "(does not answer: REASON)" line per master of the slot
 * map, each PINGed once (up to the connection's I/O timeout, so a caller
 * with a deadline learns which master it was waiting for). Returns the
 * connect's error (no line then), or RM_ERR_CONFIG when a master refuses
 * the credentials or its certificate; a master that is down is a line, not
 * an error. No secret is written. */
rm_err_t rm_rclient_describe(rm_rclient_t *cl, rm_rclient_describe_fn fn, void *arg);

#endif
