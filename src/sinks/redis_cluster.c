/*
 * One Redis server or a Redis Cluster behind one pipelined interface
 * (include/readmodel/redis_cluster.h). Design (docs/architecture.md, "Redis
 * connections"):
 *  - The server says which it is: CLUSTER SLOTS answers a map, or an error
 *    ("cluster support disabled", or NOPERM for a user without the
 *    permission: treated as one server; a MOVED later switches to cluster
 *    mode all the same).
 *  - Each appended command is an entry with its slot. It is written to the
 *    connection of its slot's master at once (buffered there until a reply
 *    is read), and each node keeps a FIFO of the entries it owes replies
 *    for. Reading the reply of entry i reads the node of entry i, storing
 *    each reply that arrives into the entry at the head of that node's FIFO,
 *    until entry i is complete. A redirect is settled when its entry's
 *    replies are complete: the entry is queued again on its new node, so
 *    replies still come back in the order appended.
 *  - Known nodes survive a reset, so when the URL's node dies (a killed
 *    master) the map is read from any other node.
 */
#include "readmodel/redis_cluster.h"
#include "readmodel/redis_conn.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_INLINE    6 /* replies kept in the entry; more are allocated */
#define MAX_REDIRECTS 16
#define MAX_RETRIES   20
#define NO_NODE       0xFFFF
#define MAX_NODES     256

typedef struct {
    char *cmd;
    size_t len;
    int slot; /* -1: any master */
    int nreplies, got, delivered;
    redisReply *inl[MAX_INLINE];
    redisReply **heap; /* when nreplies > MAX_INLINE */
    int node;
    bool asking; /* an ASKING reply comes first */
    int redirects, retries;
    bool done;
} entry_t;

typedef struct {
    char name[280]; /* host:port, or the socket path */
    char *host;     /* NULL: the URL's Unix socket */
    int port;
    rm_rconn_t *c;
    size_t *q; /* entries owed replies, FIFO */
    size_t qhead, qlen, qcap;
    int replicas;
    bool wrote;
} node_t;

struct rm_rclient {
    const rm_redis_url_t *url;
    rm_rconn_tls_t *tls;
    bool connected, cluster, stale;
    node_t *nodes;
    size_t nnodes, capnodes;
    uint16_t slots[RM_REDIS_SLOTS];
    size_t masters[MAX_NODES];
    size_t nmasters;
    entry_t *ents;
    size_t nents, capents, cur;
    char err[256];
};

/* ---- slots ---------------------------------------------------------------- */

/* CRC16-CCITT (XMODEM), as in the Redis Cluster specification. */
static uint16_t crc16(const char *buf, size_t len) {
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint8_t)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

unsigned rm_redis_slot(const char *key, size_t len) {
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1)
            return crc16(open + 1, (size_t)(close - open - 1)) & (RM_REDIS_SLOTS - 1);
    }
    return crc16(key, len) & (RM_REDIS_SLOTS - 1);
}

/* ---- nodes ---------------------------------------------------------------- */

static rm_err_t fail(rm_rclient_t *cl, rm_err_t e, const char *msg) {
    snprintf(cl->err, sizeof(cl->err), "%s", msg);
    return e;
}

/* The index of node host:port, added when unknown; -1 on ENOMEM. */
static int node_for(rm_rclient_t *cl, const char *host, int port) {
    char name[280];
    snprintf(name, sizeof(name), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    for (size_t i = 0; i < cl->nnodes; i++)
        if (strcmp(cl->nodes[i].name, name) == 0)
            return (int)i;
    if (cl->nnodes >= MAX_NODES)
        return -1;
    if (cl->nnodes == cl->capnodes) {
        size_t cap = cl->capnodes ? cl->capnodes * 2 : 8;
        node_t *n = realloc(cl->nodes, cap * sizeof(*n));
        if (!n)
            return -1;
        cl->nodes = n;
        cl->capnodes = cap;
    }
    node_t *nd = &cl->nodes[cl->nnodes];
    memset(nd, 0, sizeof(*nd));
    memcpy(nd->name, name, sizeof(name));
    if (!(nd->host = strdup(host)))
        return -1;
    nd->port = port;
    return (int)cl->nnodes++;
}

/* The connection's error, naming the node. */
static void node_error(rm_rclient_t *cl, const node_t *nd) {
    snprintf(cl->err, sizeof(cl->err), "%.180s (%.64s)", rm_rconn_error(nd->c), nd->name);
}

static void recompute_masters(rm_rclient_t *cl) {
    cl->nmasters = 0;
    if (!cl->cluster) {
        cl->nmasters = cl->nnodes ? 1 : 0;
        cl->masters[0] = 0;
        return;
    }
    bool seen[MAX_NODES] = {false};
    for (unsigned s = 0; s < RM_REDIS_SLOTS; s++) {
        uint16_t k = cl->slots[s];
        if (k != NO_NODE && !seen[k]) {
            seen[k] = true;
            cl->masters[cl->nmasters++] = k;
        }
    }
}

static void close_node(node_t *nd) {
    rm_rconn_close(nd->c);
    nd->c = NULL;
    nd->qhead = nd->qlen = 0;
    nd->wrote = false;
}

static rm_err_t open_node(rm_rclient_t *cl, int k) {
    node_t *nd = &cl->nodes[k];
    if (nd->c)
        return RM_ERR_OK;
    rm_err_t e;
    nd->c = rm_rconn_open(cl->url, nd->host, nd->port, cl->tls, cl->cluster, &e, cl->err,
                          sizeof(cl->err));
    return nd->c ? RM_ERR_OK : e;
}

/* The entry's replies (entries move when the array grows: never keep a
 * pointer into one). */
static redisReply **replies_of(entry_t *x) {
    return x->heap ? x->heap : x->inl;
}

static void free_entries(rm_rclient_t *cl) {
    for (size_t i = cl->cur; i < cl->nents; i++) {
        entry_t *x = &cl->ents[i];
        free(x->cmd);
        for (int r = x->delivered; r < x->got; r++)
            freeReplyObject(replies_of(x)[r]);
        free(x->heap);
    }
    cl->nents = cl->cur = 0;
}

void rm_rclient_reset(rm_rclient_t *cl) {
    free_entries(cl);
    for (size_t i = 0; i < cl->nnodes; i++)
        close_node(&cl->nodes[i]);
    cl->connected = false;
}

rm_rclient_t *rm_rclient_new(const rm_redis_url_t *url) {
    rm_rclient_t *cl = calloc(1, sizeof(*cl));
    if (cl)
        cl->url = url;
    return cl;
}

void rm_rclient_free(rm_rclient_t *cl) {
    if (!cl)
        return;
    rm_rclient_reset(cl);
    for (size_t i = 0; i < cl->nnodes; i++) {
        free(cl->nodes[i].host);
        free(cl->nodes[i].q);
    }
    free(cl->nodes);
    free(cl->ents);
    rm_rconn_tls_free(cl->tls);
    free(cl);
}

bool rm_rclient_is_cluster(const rm_rclient_t *cl) {
    return cl->cluster;
}

const char *rm_rclient_error(const rm_rclient_t *cl) {
    return cl->err;
}

/* ---- the slot map ----------------------------------------------------------- */

/* Reads CLUSTER SLOTS' reply r (asked of a node at `asked`) into the map.
 * false when it is not a map. */
static bool read_map(rm_rclient_t *cl, const redisReply *r, const char *asked) {
    if (r->type != REDIS_REPLY_ARRAY)
        return false;
    for (unsigned s = 0; s < RM_REDIS_SLOTS; s++)
        cl->slots[s] = NO_NODE;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2 ||
            e->element[2]->element[0]->type != REDIS_REPLY_STRING ||
            e->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
            return false;
        const char *host = e->element[2]->element[0]->str;
        if (!*host || strcmp(host, "?") == 0)
            host = asked; /* the endpoint is unknown: the node asked */
        int k = node_for(cl, host, (int)e->element[2]->element[1]->integer);
        if (k < 0)
            return false;
        cl->nodes[k].replicas = (int)e->elements - 3;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        for (long long s = lo < 0 ? 0 : lo; s <= hi && s < RM_REDIS_SLOTS; s++)
            cl->slots[s] = (uint16_t)k;
    }
    recompute_masters(cl);
    return true;
}

/* Asks conn c for the slot map: sets cl->cluster. An error reply means one
 * server on the first connection (first); when refreshing a cluster's map
 * it is a failure (a node still loading, say): the next node is asked. */
static rm_err_t detect(rm_rclient_t *cl, rm_rconn_t *c, const char *host, bool first) {
    const char *argv[] = {"CLUSTER", "SLOTS"};
    size_t lens[] = {7, 5};
    redisReply *r = NULL;
    rm_err_t e = rm_rconn_command(c, &r, 2, argv, lens);
    if (e) {
        snprintf(cl->err, sizeof(cl->err), "%s", rm_rconn_error(c));
        return e;
    }
    if (r->type == REDIS_REPLY_ERROR && !first) {
        snprintf(cl->err, sizeof(cl->err), "redis CLUSTER SLOTS: %.200s", r->str);
        freeReplyObject(r);
        return RM_ERR_IO;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        cl->cluster = false; /* disabled, or not permitted: one server */
    } else {
        cl->cluster = true;
        if (!read_map(cl, r, host)) {
            freeReplyObject(r);
            return fail(cl, RM_ERR_REPLY, "redis CLUSTER SLOTS: unexpected reply");
        }
    }
    freeReplyObject(r);
    return RM_ERR_OK;
}

/* Connects to the URL's server, or in a cluster known before to any known
 * node, and reads the mode and map. */
static rm_err_t connect_seed(rm_rclient_t *cl) {
    rm_err_t e;
    const rm_redis_url_t *u = cl->url;
    bool was_cluster = cl->cluster; /* then an error reply is a failure, not a mode */
    rm_rconn_t *c = rm_rconn_open(u, NULL, 0, cl->tls, 0, &e, cl->err, sizeof(cl->err));
    const char *host = u->host;
    for (size_t i = 0; !c && e == RM_ERR_IO && cl->cluster && i < cl->nnodes; i++) {
        host = cl->nodes[i].host;
        c = rm_rconn_open(u, host, cl->nodes[i].port, cl->tls, 1, &e, cl->err, sizeof(cl->err));
    }
    if (!c)
        return e;
    if ((e = detect(cl, c, host ? host : "localhost", !was_cluster))) {
        rm_rconn_close(c);
        return e;
    }
    if (cl->cluster) {
        rm_rconn_close(c); /* the nodes open their own */
        if (u->db)
            return fail(cl, RM_ERR_CONFIG,
                        "redis: a cluster has only database 0 (remove /N from --redis)");
        return RM_ERR_OK;
    }
    for (size_t i = 0; i < cl->nnodes; i++)
        free(cl->nodes[i].host), free(cl->nodes[i].q);
    cl->nnodes = 0;
    int k = u->socket_path ? node_for(cl, "unix", 0) : node_for(cl, u->host, u->port);
    if (k < 0) {
        rm_rconn_close(c);
        return fail(cl, RM_ERR_NOMEM, "redis: out of memory");
    }
    if (u->socket_path) {
        free(cl->nodes[k].host);
        cl->nodes[k].host = NULL;
        snprintf(cl->nodes[k].name, sizeof(cl->nodes[k].name), "%s", u->socket_path);
    }
    cl->nodes[k].c = c;
    recompute_masters(cl);
    return RM_ERR_OK;
}

/* Reads the map again from any master that answers. */
static rm_err_t refresh_map(rm_rclient_t *cl) {
    rm_err_t e = RM_ERR_IO;
    for (size_t i = 0; i < cl->nnodes; i++) {
        if ((e = open_node(cl, (int)i)) == RM_ERR_OK &&
            (e = detect(cl, cl->nodes[i].c, cl->nodes[i].host, false)) == RM_ERR_OK)
            return RM_ERR_OK;
        close_node(&cl->nodes[i]);
    }
    return e;
}

rm_err_t rm_rclient_connect(rm_rclient_t *cl, bool *fresh) {
    if (fresh)
        *fresh = false;
    if (cl->connected && !cl->stale)
        return RM_ERR_OK;
    if (cl->url->tls && !cl->tls &&
        !(cl->tls = rm_rconn_tls_new(cl->url, cl->err, sizeof(cl->err))))
        return RM_ERR_CONFIG;
    rm_err_t e = cl->connected ? refresh_map(cl) : connect_seed(cl);
    if (e) {
        rm_rclient_reset(cl);
        return e;
    }
    cl->connected = true;
    cl->stale = false;
    if (fresh)
        *fresh = true;
    return RM_ERR_OK;
}

/* ---- pipelines -------------------------------------------------------------- */

static int route(rm_rclient_t *cl, int slot) {
    if (!cl->cluster)
        return 0;
    if (slot < 0)
        return cl->nmasters ? (int)cl->masters[0] : -1;
    return cl->slots[slot] == NO_NODE ? -1 : cl->slots[slot];
}

static rm_err_t io_error(rm_rclient_t *cl, rm_err_t e) {
    cl->stale = cl->cluster;
    rm_rclient_reset(cl);
    return e;
}

/* Writes entry idx to node k (its buffer) and queues it there. */
static rm_err_t send_entry(rm_rclient_t *cl, size_t idx, int k) {
    static const char asking[] = "*1\r\n$6\r\nASKING\r\n";
    if (k < 0) {
        cl->stale = true;
        return fail(cl, RM_ERR_IO, "redis: a slot has no master in the cluster map");
    }
    rm_err_t e = open_node(cl, k);
    node_t *nd = &cl->nodes[k];
    entry_t *x = &cl->ents[idx];
    if (e == RM_ERR_OK && x->asking)
        e = rm_rconn_append(nd->c, asking, sizeof(asking) - 1);
    if (e == RM_ERR_OK)
        e = rm_rconn_append(nd->c, x->cmd, x->len);
    if (e == RM_ERR_OK && nd->qhead + nd->qlen == nd->qcap) {
        size_t cap = nd->qcap ? nd->qcap * 2 : 64;
        size_t *q = realloc(nd->q, cap * sizeof(*q));
        if (!q)
            e = fail(cl, RM_ERR_NOMEM, "redis: out of memory");
        else
            nd->q = q, nd->qcap = cap;
    }
    if (e)
        return e;
    nd->q[nd->qhead + nd->qlen++] = idx;
    nd->wrote = true;
    x->node = k;
    return RM_ERR_OK;
}

rm_err_t rm_rclient_append_owned(rm_rclient_t *cl, const char *key, size_t klen, char *cmd,
                                 size_t len, int nreplies) {
    if (!cl->connected || nreplies < 1) {
        free(cmd);
        return fail(cl, RM_ERR_IO, "redis: not connected");
    }
    redisReply **heap = NULL;
    if (nreplies > MAX_INLINE && !(heap = calloc((size_t)nreplies, sizeof(*heap)))) {
        free(cmd);
        return fail(cl, RM_ERR_NOMEM, "redis: out of memory");
    }
    if (cl->nents == cl->capents) {
        size_t cap = cl->capents ? cl->capents * 2 : 256;
        entry_t *n = realloc(cl->ents, cap * sizeof(*n));
        if (!n) {
            free(cmd);
            free(heap);
            return fail(cl, RM_ERR_NOMEM, "redis: out of memory");
        }
        cl->ents = n;
        cl->capents = cap;
    }
    size_t idx = cl->nents++;
    entry_t *x = &cl->ents[idx];
    memset(x, 0, sizeof(*x));
    x->cmd = cmd;
    x->len = len;
    x->heap = heap;
    x->nreplies = nreplies;
    x->slot = key ? (int)rm_redis_slot(key, klen) : -1;
    rm_err_t e = send_entry(cl, idx, route(cl, x->slot));
    return e ? io_error(cl, e) : RM_ERR_OK;
}

rm_err_t rm_rclient_append(rm_rclient_t *cl, const char *key, size_t klen, int argc,
                           const char **argv, const size_t *lens) {
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0)
        return fail(cl, RM_ERR_NOMEM, "redis: out of memory");
    return rm_rclient_append_owned(cl, key, klen, cmd, (size_t)len, 1);
}

typedef enum { REDIR_NONE, REDIR_MOVED, REDIR_ASK, REDIR_RETRY } redir_t;

/* The redirect among an entry's replies, with its slot and target. */
static redir_t redirect_of(entry_t *x, int *slot, char *host, size_t cap, int *port) {
    for (int i = 0; i < x->nreplies; i++) {
        const redisReply *r = replies_of(x)[i];
        if (r->type != REDIS_REPLY_ERROR)
            continue;
        if (strncmp(r->str, "TRYAGAIN", 8) == 0 || strncmp(r->str, "CLUSTERDOWN", 11) == 0)
            return REDIR_RETRY;
        bool moved = strncmp(r->str, "MOVED ", 6) == 0, ask = strncmp(r->str, "ASK ", 4) == 0;
        if (!moved && !ask)
            continue;
        const char *at = r->str + (moved ? 6 : 4), *sp = strchr(at, ' ');
        const char *colon = sp ? strrchr(sp, ':') : NULL;
        if (!colon)
            continue;
        *slot = atoi(at);
        snprintf(host, cap, "%.*s", (int)(colon - sp - 1), sp + 1);
        *port = atoi(colon + 1);
        return moved ? REDIR_MOVED : REDIR_ASK;
    }
    return REDIR_NONE;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* An entry's replies are complete: done, or sent again where it belongs. */
static rm_err_t settle(rm_rclient_t *cl, size_t idx) {
    entry_t *x = &cl->ents[idx];
    char host[256];
    int slot = 0, port = 0;
    redir_t d = redirect_of(x, &slot, host, sizeof(host), &port);
    if (d == REDIR_NONE || (d == REDIR_RETRY && x->retries >= MAX_RETRIES) ||
        (d != REDIR_RETRY && x->redirects >= MAX_REDIRECTS)) {
        x->done = true;
        return RM_ERR_OK;
    }
    for (int i = 0; i < x->got; i++)
        freeReplyObject(replies_of(x)[i]);
    x->got = 0;
    int k;
    if (d == REDIR_RETRY) {
        long ms = 10L << (x->retries < 7 ? x->retries : 7);
        sleep_ms(ms > 1000 ? 1000 : ms);
        x->retries++;
        k = route(cl, x->slot);
    } else {
        x->redirects++;
        if (!*host)
            snprintf(host, sizeof(host), "%s", cl->nodes[x->node].host);
        if ((k = node_for(cl, host, port)) < 0)
            return fail(cl, RM_ERR_NOMEM, "redis: out of memory");
        if (d == REDIR_MOVED && slot >= 0 && slot < RM_REDIS_SLOTS) {
            cl->cluster = true;
            cl->stale = true; /* the whole map, before the next pipeline */
            cl->slots[slot] = (uint16_t)k;
            recompute_masters(cl);
        }
        x->asking = d == REDIR_ASK;
    }
    return send_entry(cl, idx, k);
}

/* Reads one reply from node k into the entry it belongs to. */
static rm_err_t read_one(rm_rclient_t *cl, int k) {
    node_t *nd = &cl->nodes[k];
    if (!nd->qlen || !nd->c)
        return fail(cl, RM_ERR_IO, "redis: no reply pending");
    size_t idx = nd->q[nd->qhead];
    redisReply *r = NULL;
    rm_err_t e = rm_rconn_read(nd->c, &r);
    if (e) {
        node_error(cl, nd);
        return e;
    }
    entry_t *x = &cl->ents[idx];
    if (x->asking) { /* ASKING's +OK */
        x->asking = false;
        freeReplyObject(r);
        return RM_ERR_OK;
    }
    replies_of(x)[x->got++] = r;
    if (x->got < x->nreplies)
        return RM_ERR_OK;
    nd->qhead++;
    if (--nd->qlen == 0)
        nd->qhead = 0;
    return settle(cl, idx);
}

rm_err_t rm_rclient_reply(rm_rclient_t *cl, redisReply **out) {
    if (cl->cur >= cl->nents)
        return fail(cl, RM_ERR_IO, "redis: no reply pending");
    while (!cl->ents[cl->cur].done) {
        rm_err_t e = read_one(cl, cl->ents[cl->cur].node);
        if (e)
            return io_error(cl, e);
    }
    entry_t *x = &cl->ents[cl->cur];
    *out = replies_of(x)[x->delivered];
    replies_of(x)[x->delivered++] = NULL;
    if (x->delivered == x->nreplies) {
        free(x->cmd);
        free(x->heap);
        x->cmd = NULL;
        x->heap = NULL;
        if (++cl->cur == cl->nents)
            cl->cur = cl->nents = 0;
    }
    return RM_ERR_OK;
}

rm_err_t rm_rclient_command(rm_rclient_t *cl, redisReply **out, const char *key, size_t klen,
                            int argc, const char **argv, const size_t *lens) {
    rm_err_t e = rm_rclient_append(cl, key, klen, argc, argv, lens);
    return e ? e : rm_rclient_reply(cl, out);
}

/* ---- every master ------------------------------------------------------------- */

size_t rm_rclient_masters(const rm_rclient_t *cl) {
    return cl->connected ? cl->nmasters : 0;
}

const char *rm_rclient_master_name(const rm_rclient_t *cl, size_t i) {
    return i < cl->nmasters ? cl->nodes[cl->masters[i]].name : "?";
}

rm_err_t rm_rclient_master_command(rm_rclient_t *cl, size_t i, redisReply **out, int argc,
                                   const char **argv, const size_t *lens) {
    if (i >= cl->nmasters || !cl->connected)
        return fail(cl, RM_ERR_IO, "redis: no such master");
    int k = (int)cl->masters[i];
    rm_err_t e = open_node(cl, k);
    if (e == RM_ERR_OK && (e = rm_rconn_command(cl->nodes[k].c, out, argc, argv, lens)))
        node_error(cl, &cl->nodes[k]);
    return e ? io_error(cl, e) : RM_ERR_OK;
}

rm_err_t rm_rclient_master_try(rm_rclient_t *cl, size_t i, redisReply **out, int argc,
                               const char **argv, const size_t *lens) {
    if (i >= cl->nmasters || !cl->connected)
        return fail(cl, RM_ERR_IO, "redis: no such master");
    int k = (int)cl->masters[i];
    rm_err_t e = open_node(cl, k);
    if (e == RM_ERR_OK && (e = rm_rconn_command(cl->nodes[k].c, out, argc, argv, lens)))
        node_error(cl, &cl->nodes[k]);
    if (e) {
        close_node(&cl->nodes[k]);
        cl->stale = cl->cluster;
    }
    return e;
}

rm_err_t rm_rclient_wait_replicas(rm_rclient_t *cl, int timeout_ms, int *lagging) {
    *lagging = 0;
    if (!cl->cluster)
        return RM_ERR_OK;
    char ms[16];
    snprintf(ms, sizeof(ms), "%d", timeout_ms);
    const char *argv[] = {"WAIT", "1", ms};
    size_t lens[] = {4, 1, strlen(ms)};
    for (size_t i = 0; i < cl->nnodes; i++) {
        node_t *nd = &cl->nodes[i];
        if (!nd->wrote || !nd->c || nd->replicas < 1)
            continue;
        nd->wrote = false;
        redisReply *r = NULL;
        rm_err_t e = rm_rconn_command(nd->c, &r, 3, argv, lens);
        if (e) {
            node_error(cl, nd);
            return io_error(cl, e);
        }
        *lagging += r->type != REDIS_REPLY_INTEGER || r->integer < 1;
        freeReplyObject(r);
    }
    return RM_ERR_OK;
}

rm_err_t rm_rclient_describe(rm_rclient_t *cl, rm_rclient_describe_fn fn, void *arg) {
    rm_err_t e = rm_rclient_connect(cl, NULL);
    if (e)
        return e;
    char line[1024];
    size_t n = cl->nmasters;
    if (!cl->cluster) {
        snprintf(line, sizeof(line), "redis-mode=single server %s\n",
                 n ? cl->nodes[cl->masters[0]].name : "?");
        fn(arg, NULL, line);
        return RM_ERR_OK;
    }
    snprintf(line, sizeof(line), "redis-mode=cluster of %zu master(s)\n", n);
    fn(arg, NULL, line);
    static const char *argv[] = {"PING"};
    static const size_t lens[] = {4};
    for (size_t m = 0; m < n; m++) {
        char name[300]; /* copied: the PING may refresh the slot map */
        snprintf(name, sizeof(name), "%s", rm_rclient_master_name(cl, m));
        fn(arg, name, NULL);
        redisReply *r = NULL;
        e = rm_rclient_master_try(cl, m, &r, 1, argv, lens);
        bool up = e == RM_ERR_OK && r->type == REDIS_REPLY_STATUS;
        if (e == RM_ERR_CONFIG) /* credentials or TLS: the configuration's fault */
            return e;
        snprintf(line, sizeof(line), "redis-master=%s %s%.200s%s\n", name,
                 up ? "(answers)" : "(does not answer: ",
                 up  ? ""
                 : e ? cl->err
                     : r->str,
                 up ? "" : ")");
        freeReplyObject(r);
        fn(arg, NULL, line);
    }
    return RM_ERR_OK;
}
