/*
 * HTTP endpoint on libmicrohttpd's internal threads:
 *   /metrics  Prometheus text format 0.0.4
 *   /livez    200 while every worker turns its loop, else 503
 *   /readyz   200 while the sink answers and accepts writes, else 503
 *
 * Slow clients. Kubernetes restarts the pod when /livez stops answering, so
 * no client may hold the endpoint. Four things see to it:
 *   - epoll (poll where there is none), never select(): select() has an
 *     FD_SETSIZE (1024) ceiling, above which MHD closed every new connection,
 *     the probes' too, once ~1,020 slow connections were open;
 *   - a 3 s idle timeout: a probe's request is one packet;
 *   - connection limits, in all and per client address (MHD's own);
 *   - eviction, below those limits: once a client address holds
 *     RM_HTTP_PER_IP_KEEP connections, or the server RM_HTTP_KEEP(limit),
 *     each newly accepted connection closes the oldest one (of that address,
 *     else of all), oldest by when it was accepted or last finished a
 *     request; a connection whose request has been read is spared while it
 *     is answered. A probe sends its request with its connection and is
 *     answered within milliseconds, so it is never the oldest; a slowloris
 *     connection, which must stay open for seconds to do harm, always is.
 *     New connections are therefore not refused for lack of room however
 *     many slow clients there are, and whether or not they share the
 *     probe's address (kubelet's node address can be shared). What is left
 *     is a connection-rate flood from the probe's own address: at tens of
 *     thousands of connections a second, a probe can lose the race between
 *     its handshake and its request (other addresses are not affected).
 * One thread serves all connections: MHD's I/O is non-blocking and the
 * handler never blocks (it reads atomics and renders text), so one client
 * never delays another's reply and a thread pool (which would also split
 * the connection limit between threads) buys nothing.
 */
#include "readmodel/http.h"
#include "readmodel/clock.h"
#include "readmodel/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

/* Idle timeout, seconds: kubelet and Prometheus send their few hundred
 * bytes at once; a client silent for 3 s is not a probe. */
#define RM_HTTP_TIMEOUT_S 3
/* Connections in all, at most; fewer (a quarter of RLIMIT_NOFILE) when the
 * descriptor limit is low, so that Kafka, Redis and OpenSearch keep theirs.
 * Legitimate use is a handful (kubelet's probes, one or two Prometheus). */
#define RM_HTTP_MAX_CONNS 1024
#define RM_HTTP_MIN_CONNS 128
/* Beyond this many connections in all, each new one evicts the oldest; the
 * quarter above it absorbs the accepts MHD makes before the evicted
 * connections are closed (up to ~10 per loop turn). */
#define RM_HTTP_KEEP(limit) ((limit) - (limit) / 4)
/* Per client address: kubelet (liveness, readiness, startup probes) and a
 * Prometheus replica each need one or two at a time; 32 leaves room for
 * several clients behind one address (the node's, with SNAT), and is the
 * number of newer connections from its own address a probe's connection
 * outlives before its request must have arrived. MHD refuses the 65th
 * outright; evictions keep an address below that (the gap absorbs their
 * lag), so one address can never hold more than 64 of the 1024. */
#define RM_HTTP_PER_IP_KEEP  32
#define RM_HTTP_PER_IP_LIMIT 64
/* Memory per connection: a request and the response headers (the /metrics
 * body is not copied), so RM_HTTP_MAX_CONNS cost at most 16 MiB. */
#define RM_HTTP_CONN_MEMORY (16 * 1024)

/* One accepted connection, for eviction. */
typedef struct {
    struct MHD_Connection *c; /* NULL: free slot */
    int fd;
    int family; /* AF_INET, AF_INET6 */
    unsigned char addr[16];
    unsigned long long since; /* accepted or last request finished (h->seq) */
    long long answer_ms;      /* request read, answer not yet sent: since (monotonic); else 0 */
    bool closing;             /* shut down by eviction, not yet closed by MHD */
} rm_http_conn_t;

struct rm_http {
    struct MHD_Daemon *d;
    rm_stats_t *st;
    char topic[256];
    char target[32];
    int port;
    /* Eviction state, shared by MHD's callbacks. */
    pthread_mutex_t mu;
    rm_http_conn_t *conns; /* `limit` slots: MHD never holds more connections */
    unsigned limit, live;  /* live: tracked and not closing */
    unsigned long long seq;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             char *body) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The tracking record of connection c (NULL for one not tracked). */
static rm_http_conn_t *conn_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

/* The request on c has been read: spare c from eviction while answering. */
static void answering(rm_http_t *h, struct MHD_Connection *c) {
    rm_http_conn_t *n = conn_of(c);
    if (!n)
        return;
    pthread_mutex_lock(&h->mu);
    n->answer_ms = rm_mono_ms();
    pthread_mutex_unlock(&h->mu);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    rm_http_t *h = cls;
    answering(h, c);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(c, 405, "text/plain", strdup("method not allowed\n"));
    if (strcmp(url, "/metrics") == 0) {
        char *body = rm_metrics_render(h->st, h->topic, h->target);
        return body ? reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", body)
                    : reply(c, 500, "text/plain", strdup("out of memory\n"));
    }
    if (strcmp(url, "/livez") == 0 || strcmp(url, "/readyz") == 0) {
        char why[200], *body = malloc(256);
        bool ok = url[1] == 'l' ? rm_metrics_live(h->st, why, sizeof(why))
                                : rm_metrics_ready(h->st, why, sizeof(why));
        if (!body)
            return MHD_NO;
        snprintf(body, 256, "%s\n", why);
        return reply(c, ok ? 200 : 503, "text/plain", body);
    }
    return reply(c, 404, "text/plain", strdup("not found: try /metrics, /livez or /readyz\n"));
}

/* The client address of c in n's form; false when MHD does not say. */
static bool conn_addr(struct MHD_Connection *c, rm_http_conn_t *n) {
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!i || !i->client_addr)
        return false;
    n->family = i->client_addr->sa_family;
    if (n->family == AF_INET)
        memcpy(n->addr, &((const struct sockaddr_in *)(const void *)i->client_addr)->sin_addr, 4);
    else if (n->family == AF_INET6)
        memcpy(n->addr, &((const struct sockaddr_in6 *)(const void *)i->client_addr)->sin6_addr,
               16);
    else
        return false;
    return true;
}

static bool same_addr(const rm_http_conn_t *a, const rm_http_conn_t *b) {
    return a->family == b->family && memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}

/* Closes the oldest live connection other than `except` (of except's
 * address when per_ip); false when there is none. A connection whose
 * request has been read is spared while its answer is under way (for up to
 * the idle timeout: then it is a reader too slow to care for). Caller holds
 * h->mu.
 * shutdown(), not close(): MHD sees end of stream, closes the descriptor
 * and only then reports it closed (notify_connection takes h->mu first),
 * so the descriptor cannot have been reused meanwhile. */
static bool evict_oldest(rm_http_t *h, const rm_http_conn_t *except, bool per_ip) {
    rm_http_conn_t *old = NULL;
    long long spare_from = rm_mono_ms() - RM_HTTP_TIMEOUT_S * 1000;
    for (unsigned i = 0; i < h->limit; i++) {
        rm_http_conn_t *n = &h->conns[i];
        if (!n->c || n->closing || n == except || (per_ip && !same_addr(n, except)) ||
            n->answer_ms > spare_from)
            continue;
        if (!old || n->since < old->since)
            old = n;
    }
    if (!old)
        return false;
    shutdown(old->fd, SHUT_RDWR);
    old->closing = true;
    h->live--;
    return true;
}

static unsigned live_from(const rm_http_t *h, const rm_http_conn_t *of) {
    unsigned k = 0;
    for (unsigned i = 0; i < h->limit; i++)
        k += h->conns[i].c && !h->conns[i].closing && same_addr(&h->conns[i], of);
    return k;
}

/* MHD_OPTION_NOTIFY_CONNECTION: tracks connections and evicts on accept. */
static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe) {
    rm_http_t *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        rm_http_conn_t *n = *socket_context;
        if (!n)
            return;
        pthread_mutex_lock(&h->mu);
        if (!n->closing)
            h->live--;
        n->c = NULL;
        pthread_mutex_unlock(&h->mu);
        *socket_context = NULL;
        return;
    }
    rm_http_conn_t tmp = {.c = c};
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!fd || !conn_addr(c, &tmp))
        return; /* untracked: MHD's own limits still bound it */
    tmp.fd = fd->connect_fd;
    pthread_mutex_lock(&h->mu);
    rm_http_conn_t *n = NULL;
    for (unsigned i = 0; i < h->limit && !n; i++)
        if (!h->conns[i].c)
            n = &h->conns[i];
    if (n) {
        tmp.since = ++h->seq;
        *n = tmp;
        h->live++;
        *socket_context = n;
        unsigned mine = live_from(h, n);
        while (mine > RM_HTTP_PER_IP_KEEP && evict_oldest(h, n, true))
            mine--;
        while (h->live > RM_HTTP_KEEP(h->limit) && evict_oldest(h, n, false))
            ;
    }
    pthread_mutex_unlock(&h->mu);
}

/* MHD_OPTION_NOTIFY_COMPLETED: a connection that finished a request counts
 * as new again (a keep-alive client is not a slow one). */
static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe) {
    (void)con_cls;
    (void)toe;
    rm_http_t *h = cls;
    rm_http_conn_t *n = conn_of(c);
    if (!n)
        return;
    pthread_mutex_lock(&h->mu);
    n->since = ++h->seq;
    n->answer_ms = 0;
    pthread_mutex_unlock(&h->mu);
}

/* Connections in all: RM_HTTP_MAX_CONNS, or a quarter of the descriptors
 * this process may open when that is less. */
static unsigned conn_limit(void) {
    struct rlimit rl;
    unsigned limit = RM_HTTP_MAX_CONNS;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 4 < limit)
        limit = (unsigned)(rl.rlim_cur / 4);
    return limit < RM_HTTP_MIN_CONNS ? RM_HTTP_MIN_CONNS : limit;
}

rm_http_t *rm_http_start(const char *addr, rm_stats_t *stats, const char *topic, const char *target,
                         char *err, size_t errlen) {
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1]) {
        snprintf(err, errlen, "expected host:port (got '%s')", addr);
        return NULL;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
    if (host[0] == '[') { /* [v6]:port */
        size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']') {
            snprintf(err, errlen, "bad IPv6 address in '%s'", addr);
            return NULL;
        }
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM},
                    *ai = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve '%s': %s", addr, gai_strerror(rc));
        return NULL;
    }
    rm_http_t *h = calloc(1, sizeof(*h));
    if (!h) {
        freeaddrinfo(ai);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->st = stats;
    snprintf(h->topic, sizeof(h->topic), "%s", topic);
    snprintf(h->target, sizeof(h->target), "%s", target);
    h->limit = conn_limit();
    h->conns = calloc(h->limit, sizeof(*h->conns));
    if (!h->conns || pthread_mutex_init(&h->mu, NULL) != 0) {
        freeaddrinfo(ai);
        free(h->conns);
        free(h);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* MHD_USE_AUTO: epoll on Linux, else poll; select() is refused below. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)RM_HTTP_TIMEOUT_S,
                            MHD_OPTION_CONNECTION_LIMIT, h->limit,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)RM_HTTP_PER_IP_LIMIT,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)RM_HTTP_CONN_MEMORY,
                            MHD_OPTION_NOTIFY_CONNECTION, notify_connection, h,
                            MHD_OPTION_NOTIFY_COMPLETED, request_completed, h, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        snprintf(err, errlen, "cannot listen on %s (in use, or not an address of this host)", addr);
        pthread_mutex_destroy(&h->mu);
        free(h->conns);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *fl = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_FLAGS);
    if (!fl || !(fl->flags & (MHD_USE_EPOLL | MHD_USE_POLL))) {
        snprintf(err, errlen,
                 "libmicrohttpd offers neither epoll nor poll (select() would cap "
                 "connections at FD_SETSIZE)");
        rm_http_stop(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    return h;
}

int rm_http_port(const rm_http_t *h) {
    return h->port;
}

void rm_http_stop(rm_http_t *h) {
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    pthread_mutex_destroy(&h->mu);
    free(h->conns);
    free(h);
}
