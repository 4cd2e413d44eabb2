/*
 * HTTP endpoint on libmicrohttpd's internal polling thread:
 *   /metrics  Prometheus text format 0.0.4
 *   /livez    200 while every worker turns its loop, else 503
 *   /readyz   200 while the sink answers and accepts writes, else 503
 */
#include "readmodel/http.h"
#include "readmodel/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rm_http {
    struct MHD_Daemon *d;
    rm_stats_t *st;
    char topic[256];
    char target[32];
    int port;
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

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    rm_http_t *h = cls;
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
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        snprintf(err, errlen, "cannot listen on %s (in use, or not an address of this host)", addr);
        free(h);
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
    free(h);
}
