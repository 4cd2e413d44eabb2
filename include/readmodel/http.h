/*
 * The HTTP endpoint of serve (libmicrohttpd, its own thread): /metrics,
 * /livez and /readyz. Documented for Kubernetes probes in the README.
 *
 * Slow clients cannot starve the probes: epoll (no FD_SETSIZE ceiling), a
 * 3 s idle timeout, at most 64 connections per client address and 1024 in
 * all (a quarter of RLIMIT_NOFILE when that is lower, at least 128), and
 * past 32 per address (or three quarters of the total) each new connection
 * closes the oldest one. See src/observe/http.c for why these numbers.
 *
 * Thread-safety: start and stop from one thread; the server reads the
 * stats block (atomics) from its own thread while workers update it.
 */
#ifndef READMODEL_HTTP_H
#define READMODEL_HTTP_H

#include "readmodel/config.h"
#include "readmodel/stats.h"

typedef struct rm_http rm_http_t;

/* Listens on addr ("host:port", "[v6]:port"; port 0 picks a free one).
 * Returns NULL with a one-line reason in err when the address is invalid or
 * cannot be bound, or when libmicrohttpd has neither epoll nor poll. stats
 * must outlive the server; topic and target are copied. */
rm_http_t *rm_http_start(const char *addr, rm_stats_t *stats, const char *topic, const char *target,
                         char *err, size_t errlen);
/* The port actually bound. */
int rm_http_port(const rm_http_t *h);
/* Stops the server; NULL is a no-op. */
void rm_http_stop(rm_http_t *h);

#endif
