/*
 * Redis administration for rebuild, verify and status: the rebuild lease
 * (a key with an expiry, renewed by its holder, released only by it), key
 * scans under the prefix, pipelined reads and deletes, unconditional
 * checkpoints and the record of the last rebuild. Same error contract as
 * redis_sink.c: RM_ERR_IO drops the connection, the next call reconnects.
 */
#include "redis_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char renew_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                                "end\n"
                                "return 0\n";
static const char release_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                  "  return redis.call('DEL', KEYS[1])\n"
                                  "end\n"
                                  "return 0\n";

/* "<prefix><name>" into out; RM_ERR_INVAL when it does not fit. */
static rm_err_t prefixed_key(rm_redis_sink_t *s, const char *what, const char *name, char *out,
                             size_t cap) {
    int n = snprintf(out, cap, "%s%s", s->prefix, name);
    return n < 0 || (size_t)n >= cap ? rm_redis_key_error(s, what, cap, false) : RM_ERR_OK;
}

static rm_err_t lease_key(rm_redis_sink_t *s, char *out, size_t cap) {
    return prefixed_key(s, "lease", "lease:redis", out, cap);
}

rm_err_t rm_redis_lease_acquire(rm_redis_sink_t *s, const char *holder, int ttl_ms, bool *got,
                                char *holder_out, size_t cap) {
    rm_err_t e = rm_redis_sink_connect(s);
    if (e)
        return e;
    char key[256], ttl[24];
    if ((e = lease_key(s, key, sizeof(key))))
        return e;
    snprintf(ttl, sizeof(ttl), "%d", ttl_ms);
    const char *argv[] = {"SET", key, holder, "NX", "PX", ttl};
    size_t lens[] = {3, strlen(key), strlen(holder), 2, 2, strlen(ttl)};
    redisReply *r = NULL;
    if ((e = rm_redis_command(s, &r, 1, 6, argv, lens)))
        return e;
    *got = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    if (!*got && holder_out) {
        long long left;
        return rm_redis_lease_get(s, holder_out, cap, &left);
    }
    return RM_ERR_OK;
}

static rm_err_t lease_script(rm_redis_sink_t *s, const char *src, const char *holder, int ttl_ms,
                             long long *result) {
    rm_err_t e = rm_redis_sink_connect(s);
    if (e)
        return e;
    char key[256], ttl[24];
    if ((e = lease_key(s, key, sizeof(key))))
        return e;
    snprintf(ttl, sizeof(ttl), "%d", ttl_ms);
    const char *argv[] = {"EVAL", src, "1", key, holder, ttl};
    size_t lens[] = {4, strlen(src), 1, strlen(key), strlen(holder), strlen(ttl)};
    redisReply *r = NULL;
    if ((e = rm_redis_command(s, &r, 3, 6, argv, lens)))
        return e;
    *result = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    return RM_ERR_OK;
}

rm_err_t rm_redis_lease_renew(rm_redis_sink_t *s, const char *holder, int ttl_ms, bool *ok) {
    long long res = 0;
    rm_err_t e = lease_script(s, renew_lua, holder, ttl_ms, &res);
    *ok = res == 1;
    return e;
}

rm_err_t rm_redis_lease_release(rm_redis_sink_t *s, const char *holder) {
    long long res;
    return lease_script(s, release_lua, holder, 0, &res);
}

rm_err_t rm_redis_lease_get(rm_redis_sink_t *s, char *holder, size_t cap, long long *ttl_ms) {
    rm_err_t e = rm_redis_sink_connect(s);
    if (e)
        return e;
    char key[256];
    if ((e = lease_key(s, key, sizeof(key))))
        return e;
    const char *a1[] = {"GET", key}, *a2[] = {"PTTL", key};
    size_t l[] = {3, strlen(key)}, l2[] = {4, strlen(key)};
    size_t kl = strlen(key);
    if ((e = rm_rclient_append(s->cl, key, kl, 2, a1, l)) ||
        (e = rm_rclient_append(s->cl, key, kl, 2, a2, l2)))
        return rm_redis_io_error(s, e);
    redisReply *r1, *r2;
    if ((e = rm_rclient_reply(s->cl, &r1)))
        return rm_redis_io_error(s, e);
    if ((e = rm_rclient_reply(s->cl, &r2))) {
        freeReplyObject(r1);
        return rm_redis_io_error(s, e);
    }
    snprintf(holder, cap, "%.*s", r1->type == REDIS_REPLY_STRING ? (int)r1->len : 0,
             r1->type == REDIS_REPLY_STRING ? r1->str : "");
    *ttl_ms = r2->type == REDIS_REPLY_INTEGER && r2->integer >= 0 ? r2->integer : -1;
    freeReplyObject(r1);
    freeReplyObject(r2);
    return RM_ERR_OK;
}

/* SCAN of master i (of a cluster: its own keys) to the end. */
static rm_err_t scan_master(rm_redis_sink_t *s, size_t m, const char *match,
                            void (*fn)(const char *key, size_t len, void *arg), void *arg) {
    char cursor[32] = "0";
    size_t plen = strlen(s->prefix);
    rm_err_t e;
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", match, "COUNT", "1000"};
        size_t lens[] = {4, strlen(cursor), 5, strlen(match), 5, 4};
        redisReply *r = NULL;
        if ((e = rm_rclient_master_command(s->cl, m, &r, 6, argv, lens)))
            return rm_redis_io_error(s, e);
        if (r->type == REDIS_REPLY_ERROR) {
            e = rm_redis_reply_error(s, r, "SCAN");
            freeReplyObject(r);
            return e;
        }
        /* [cursor, [key...]], every one a string */
        bool ok = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                  r->element[0]->type == REDIS_REPLY_STRING &&
                  r->element[0]->len < sizeof(cursor) && r->element[1]->type == REDIS_REPLY_ARRAY;
        for (size_t i = 0; ok && i < r->element[1]->elements; i++)
            ok = r->element[1]->element[i]->type == REDIS_REPLY_STRING;
        if (!ok) {
            freeReplyObject(r);
            return rm_redis_reply_error(s, NULL, "SCAN");
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++)
            if (keys->element[i]->len >= plen)
                fn(keys->element[i]->str + plen, keys->element[i]->len - plen, arg);
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return RM_ERR_OK;
}

/* Every master in turn: in a cluster each holds only its slots' keys. A
 * key that migrates during the scan (a reshard) may be seen twice or, moving
 * from a master not yet scanned to one already scanned, not at all. */
rm_err_t rm_redis_scan(rm_redis_sink_t *s, const char *pattern,
                       void (*fn)(const char *key, size_t len, void *arg), void *arg) {
    rm_err_t e = rm_redis_sink_connect(s);
    if (e)
        return e;
    char match[512];
    if ((e = prefixed_key(s, "SCAN pattern", pattern, match, sizeof(match))))
        return e;
    size_t n = rm_rclient_masters(s->cl);
    for (size_t m = 0; m < n && e == RM_ERR_OK; m++)
        e = scan_master(s, m, match, fn, arg);
    return e;
}

/* Appends `cmd <prefix>key [extra...]` for each key, then reads each reply
 * into fn. Pipelined in chunks so memory stays bounded. Every reply is read
 * whatever fn returns; the first error (an error reply, or fn's) is
 * returned at the end of its chunk. */
static rm_err_t
pipeline_keys(rm_redis_sink_t *s, const char *cmd, const char *const *extra, int nextra,
              char *const *keys, size_t n,
              rm_err_t (*fn)(rm_redis_sink_t *s, size_t i, redisReply *r, void *arg), void *arg) {
    rm_err_t e = rm_redis_sink_connect(s);
    if (e)
        return e;
    char key[512];
    const size_t chunk = 1000;
    for (size_t off = 0; off < n; off += chunk) {
        size_t m = n - off < chunk ? n - off : chunk;
        for (size_t i = 0; i < m; i++) {
            const char *argv[8] = {cmd, key};
            size_t lens[8] = {strlen(cmd), 0};
            int kl = snprintf(key, sizeof(key), "%s%s", s->prefix, keys[off + i]);
            if (kl < 0 || (size_t)kl >= sizeof(key))
                return rm_redis_key_error(s, cmd, sizeof(key), i > 0);
            lens[1] = (size_t)kl;
            for (int k = 0; k < nextra; k++) {
                argv[2 + k] = extra[k];
                lens[2 + k] = strlen(extra[k]);
            }
            if ((e = rm_rclient_append(s->cl, key, (size_t)kl, 2 + nextra, argv, lens)))
                return rm_redis_io_error(s, e);
        }
        for (size_t i = 0; i < m; i++) {
            redisReply *r = NULL;
            rm_err_t ce = rm_rclient_reply(s->cl, &r);
            if (ce)
                return rm_redis_io_error(s, ce);
            rm_err_t fe = r->type == REDIS_REPLY_ERROR ? rm_redis_reply_error(s, r, cmd)
                                                       : fn(s, off + i, r, arg);
            if (fe && !e)
                e = fe;
            freeReplyObject(r);
        }
        if (e)
            return e;
    }
    return RM_ERR_OK;
}

typedef struct {
    char **values;
    size_t *lens;
} get_ctx_t;

static rm_err_t on_get(rm_redis_sink_t *s, size_t i, redisReply *r, void *arg) {
    get_ctx_t *g = arg;
    g->values[i] = NULL;
    g->lens[i] = 0;
    if (r->type == REDIS_REPLY_NIL)
        return RM_ERR_OK;
    if (r->type != REDIS_REPLY_STRING)
        return rm_redis_reply_error(s, NULL, "GET");
    if (!(g->values[i] = malloc(r->len + 1)))
        return RM_ERR_NOMEM;
    memcpy(g->values[i], r->str, r->len);
    g->values[i][r->len] = '\0';
    g->lens[i] = r->len;
    return RM_ERR_OK;
}

rm_err_t rm_redis_get_many(rm_redis_sink_t *s, char *const *keys, size_t n, char **values,
                           size_t *lens) {
    get_ctx_t g = {values, lens};
    memset(values, 0, n * sizeof(*values));
    rm_err_t e = pipeline_keys(s, "GET", NULL, 0, keys, n, on_get, &g);
    for (size_t i = 0; e && i < n; i++) { /* all or nothing */
        free(values[i]);
        values[i] = NULL;
    }
    return e;
}

typedef struct {
    char *const *pids;
    int32_t *parts;
    int64_t *fences;
} fence_ctx_t;

static rm_err_t on_fence(rm_redis_sink_t *s, size_t i, redisReply *r, void *arg) {
    fence_ctx_t *f = arg;
    f->parts[i] = -1;
    f->fences[i] = -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return rm_redis_reply_error(s, NULL, "HMGET");
    const redisReply *p = r->element[0], *fe = r->element[1];
    if ((p->type != REDIS_REPLY_STRING && p->type != REDIS_REPLY_NIL) ||
        (fe->type != REDIS_REPLY_STRING && fe->type != REDIS_REPLY_NIL))
        return rm_redis_reply_error(s, NULL, "HMGET");
    if (p->type != REDIS_REPLY_STRING || fe->type != REDIS_REPLY_STRING)
        return RM_ERR_OK; /* no stored state */
    bool ok1, ok2;
    int64_t part = rm_redis_parse_i64(p->str, p->len, &ok1);
    int64_t fence = rm_redis_parse_i64(fe->str, fe->len, &ok2);
    if (!ok1 || !ok2 || part < 0 || part > INT32_MAX || fence < 0) {
        snprintf(s->err, sizeof(s->err), "redis: stored fence of %.64s is corrupt", f->pids[i]);
        return RM_ERR_CORRUPT;
    }
    f->parts[i] = (int32_t)part;
    f->fences[i] = fence;
    return RM_ERR_OK;
}

rm_err_t rm_redis_fences(rm_redis_sink_t *s, char *const *pids, size_t n, int32_t *partitions,
                         int64_t *fences) {
    char **keys = malloc((n ? n : 1) * sizeof(*keys));
    if (!keys)
        return RM_ERR_NOMEM;
    size_t made = 0;
    rm_err_t e = RM_ERR_OK;
    for (; made < n; made++) {
        size_t len = strlen(pids[made]) + 16;
        if (!(keys[made] = malloc(len))) {
            e = RM_ERR_NOMEM;
            break;
        }
        snprintf(keys[made], len, "state:{%s}", pids[made]);
    }
    const char *extra[] = {"p", "f"};
    fence_ctx_t f = {pids, partitions, fences};
    if (e == RM_ERR_OK)
        e = pipeline_keys(s, "HMGET", extra, 2, keys, n, on_fence, &f);
    for (size_t i = 0; i < made; i++)
        free(keys[i]);
    free(keys);
    return e;
}

static rm_err_t on_ignore(rm_redis_sink_t *s, size_t i, redisReply *r, void *arg) {
    (void)s;
    (void)i;
    (void)r;
    (void)arg;
    return RM_ERR_OK;
}

rm_err_t rm_redis_del_many(rm_redis_sink_t *s, char *const *keys, size_t n) {
    return pipeline_keys(s, "DEL", NULL, 0, keys, n, on_ignore, NULL);
}

rm_err_t rm_redis_checkpoint_set(rm_redis_sink_t *s, const char *topic, int32_t partition,
                                 int64_t next) {
    rm_err_t e = rm_redis_sink_connect(s);
    if (e)
        return e;
    char key[512], v[24];
    int kl = rm_redis_key_checkpoint(key, sizeof(key), s->prefix, topic, partition);
    if (kl < 0)
        return rm_redis_key_error(s, "checkpoint", sizeof(key), false);
    snprintf(v, sizeof(v), "%lld", (long long)next);
    const char *argv[] = {"SET", key, v};
    size_t lens[] = {3, (size_t)kl, strlen(v)};
    redisReply *r = NULL;
    if ((e = rm_redis_command(s, &r, 1, 3, argv, lens)))
        return e;
    freeReplyObject(r);
    return RM_ERR_OK;
}

rm_err_t rm_redis_record_set(rm_redis_sink_t *s, const char *name, const char *const *fields,
                             const char *const *values, size_t n) {
    rm_err_t e = rm_redis_sink_connect(s);
    if (e)
        return e;
    char key[256];
    if ((e = prefixed_key(s, "record", name, key, sizeof(key))))
        return e;
    const char **argv = malloc((2 + 2 * n) * sizeof(*argv));
    size_t *lens = malloc((2 + 2 * n) * sizeof(*lens));
    if (!argv || !lens) {
        free(argv);
        free(lens);
        return RM_ERR_NOMEM;
    }
    argv[0] = "HSET", lens[0] = 4;
    argv[1] = key, lens[1] = strlen(key);
    for (size_t i = 0; i < n; i++) {
        argv[2 + 2 * i] = fields[i], lens[2 + 2 * i] = strlen(fields[i]);
        argv[3 + 2 * i] = values[i], lens[3 + 2 * i] = strlen(values[i]);
    }
    redisReply *r = NULL;
    e = rm_redis_command(s, &r, 1, (int)(2 + 2 * n), argv, lens);
    if (!e)
        freeReplyObject(r);
    free(argv);
    free(lens);
    return e;
}

rm_err_t rm_redis_record_get(rm_redis_sink_t *s, const char *name, char *out, size_t cap) {
    rm_err_t e = rm_redis_sink_connect(s);
    if (e)
        return e;
    char key[256];
    if ((e = prefixed_key(s, "record", name, key, sizeof(key))))
        return e;
    const char *argv[] = {"HGETALL", key};
    size_t lens[] = {7, strlen(key)};
    redisReply *r = NULL;
    if ((e = rm_redis_command(s, &r, 1, 2, argv, lens)))
        return e;
    size_t o = 0;
    out[0] = '\0';
    bool ok = r->type == REDIS_REPLY_ARRAY && r->elements % 2 == 0;
    for (size_t i = 0; ok && i < r->elements; i++)
        ok = r->element[i]->type == REDIS_REPLY_STRING;
    if (!ok) {
        freeReplyObject(r);
        return rm_redis_reply_error(s, NULL, "HGETALL");
    }
    for (size_t i = 0; i + 1 < r->elements && o < cap; i += 2)
        o += (size_t)snprintf(out + o, cap - o, "%s=%s\n", r->element[i]->str,
                              r->element[i + 1]->str);
    freeReplyObject(r);
    return RM_ERR_OK;
}

rm_err_t rm_redis_topology(rm_redis_sink_t *s, char *out, size_t cap) {
    rm_err_t e = rm_redis_sink_connect(s);
    if (e)
        return e;
    size_t n = rm_rclient_masters(s->cl), o = 0;
    bool cluster = rm_rclient_is_cluster(s->cl);
    o += (size_t)snprintf(out, cap, "redis: %s%s, %zu master(s)\n",
                          cluster ? "cluster" : "single server", s->url.tls ? " over TLS" : "", n);
    const char *argv[] = {"DBSIZE"};
    size_t lens[] = {6};
    for (size_t m = 0; m < n && o < cap; m++) {
        redisReply *r = NULL;
        if ((e = rm_rclient_master_command(s->cl, m, &r, 1, argv, lens)))
            return rm_redis_io_error(s, e);
        o += (size_t)snprintf(out + o, cap - o, "  %s: %lld keys\n",
                              rm_rclient_master_name(s->cl, m),
                              r->type == REDIS_REPLY_INTEGER ? r->integer : -1);
        freeReplyObject(r);
    }
    return RM_ERR_OK;
}

/* PINGs master m into s->nodes[]; the first failure's reason, naming the
 * node, goes to s->err and *first; *lost tells that a connection failed. */
static void ping_master(rm_redis_sink_t *s, size_t m, rm_err_t *first, bool *lost) {
    static const char *argv[] = {"PING"};
    static const size_t lens[] = {4};
    const char *name = rm_rclient_master_name(s->cl, m);
    rm_sink_node_t *nd = &s->nodes[s->nnodes++];
    snprintf(nd->name, sizeof(nd->name), "%s", name);
    redisReply *r = NULL;
    rm_err_t e = rm_rclient_master_try(s->cl, m, &r, 1, argv, lens);
    char why[sizeof(s->err)];
    if (e) {
        *lost = true;
        snprintf(why, sizeof(why), "%s", rm_rclient_error(s->cl));
    } else if (r->type == REDIS_REPLY_ERROR) {
        e = rm_redis_reply_error(s, r, "PING");
        snprintf(why, sizeof(why), "%s", s->err);
    }
    freeReplyObject(r);
    nd->up = e == RM_ERR_OK;
    if (e && *first == RM_ERR_OK) {
        *first = e;
        snprintf(s->err, sizeof(s->err), strstr(why, name) ? "%.250s" : "%.180s (%.64s)", why,
                 name);
    }
}

/* Every master, each one's answer kept for nodes(): the error names the
 * first node that failed. It connects the client alone, not as
 * rm_redis_sink_connect does: that loads the scripts on every master, so
 * one dead master failed the whole connect and every node was reported
 * down. A PING needs no script (a write on this handle later that finds
 * none loads it: NOSCRIPT). */
rm_err_t rm_redis_sink_ping(rm_redis_sink_t *s) {
    rm_err_t e = rm_rclient_connect(s->cl, NULL);
    if (e) { /* no node answered with a map: every node known is down */
        for (int i = 0; i < s->nnodes; i++)
            s->nodes[i].up = false;
        return rm_redis_io_error(s, e);
    }
    size_t n = rm_rclient_masters(s->cl);
    bool lost = false;
    s->nnodes = 0;
    for (size_t m = 0; m < n && s->nnodes < RM_SINK_NODES_MAX; m++)
        ping_master(s, m, &e, &lost);
    if (lost)
        rm_rclient_reset(s->cl); /* as after any I/O error: reconnect next time */
    return e;
}

int rm_redis_sink_nodes(rm_redis_sink_t *s, rm_sink_node_t *out, int cap) {
    int n = s->nnodes < cap ? s->nnodes : cap;
    memcpy(out, s->nodes, (size_t)(n > 0 ? n : 0) * sizeof(*out));
    return n > 0 ? n : 0;
}
