/* Internals shared by redis_sink.c and redis_admin.c. */
#ifndef READMODEL_REDIS_INTERNAL_H
#define READMODEL_REDIS_INTERNAL_H

#include "readmodel/redis_cluster.h"
#include "readmodel/redis_sink.h"
#include "readmodel/stats.h"

#include <hiredis/hiredis.h>

struct rm_redis_sink {
    rm_redis_url_t url;
    char *prefix;
    rm_rclient_t *cl; /* one server or a cluster (redis_cluster.c) */
    char flush_sha[48];
    char cas_sha[48];
    unsigned long lagging;                   /* flushes a master did not replicate in time */
    rm_sink_node_t nodes[RM_SINK_NODES_MAX]; /* every master at the last ping */
    int nnodes;
    char err[256];
};

/* Records the client's error e (RM_ERR_IO, RM_ERR_CONFIG, ...), drops every
 * connection (never reused after an error) and returns e. */
rm_err_t rm_redis_io_error(rm_redis_sink_t *s, rm_err_t e);
/* Records an error reply (r may be NULL) and returns RM_ERR_REPLY. */
rm_err_t rm_redis_reply_error(rm_redis_sink_t *s, const redisReply *r, const char *what);
/* Records that a key of kind `what` does not fit its buffer of cap bytes and
 * returns RM_ERR_INVAL. queued: commands were appended to the context but
 * not sent; the context is then dropped (the next call reconnects) so they
 * never are. */
rm_err_t rm_redis_key_error(rm_redis_sink_t *s, const char *what, size_t cap, bool queued);
/* The decimal integer of str[0..len) (not NUL-terminated); *ok false when it
 * is empty, too long or not entirely a number. */
int64_t rm_redis_parse_i64(const char *str, size_t len, bool *ok);
/* One command routed by its key argv[key_arg] (0: any master); on
 * RM_ERR_OK *out is the (non-error) reply, caller frees. */
rm_err_t rm_redis_command(rm_redis_sink_t *s, redisReply **out, int key_arg, int argc,
                          const char **argv, const size_t *lens);
/* Loads src on every master into sha (48 bytes). */
rm_err_t rm_redis_load_script(rm_redis_sink_t *s, const char *src, char sha[48]);

#endif
