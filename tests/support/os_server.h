/*
 * A test server for the subset of the OpenSearch REST API that readmodel
 * uses (libmicrohttpd + jansson), with fault injection. It runs in the test
 * process on 127.0.0.1 (port chosen by the kernel). Which behaviour comes
 * from which part of the OpenSearch documentation is listed in
 * tests/opensearch/README.md; test_opensearch_answers checks its answers
 * against a real node's. os_server_real.c implements the start, stop and
 * inspection functions below over a real node instead (not the faults).
 */
#ifndef RM_OS_SERVER_H
#define RM_OS_SERVER_H

#include <jansson.h>
#include <stdbool.h>

typedef struct os_server os_server_t;

/* Starts on 127.0.0.1:port (0: any free port; -1: not listening yet, for
 * os_server_start_tls). NULL on failure. */
os_server_t *os_server_start(int port);
/* The same over HTTPS (libmicrohttpd with GnuTLS) with a PEM certificate
 * and key read from files. NULL on failure or without TLS support. */
os_server_t *os_server_start_tls(int port, const char *cert_file, const char *key_file);
/* The bound port. */
int os_server_port(const os_server_t *s);
/* Stops and frees; NULL is a no-op. */
void os_server_stop(os_server_t *s);
/* Requires HTTP basic auth with these credentials (NULL: none). */
void os_server_require_auth(os_server_t *s, const char *user, const char *password);
/* Requires an AWS SigV4 Authorization header for service `es` (shape and
 * signed headers are checked, not the signature: no secret is shared). */
void os_server_require_sigv4(os_server_t *s, bool on);

/* Stops listening (clients get "connection refused") while keeping every
 * index, and listens again on the same port. */
void os_server_down(os_server_t *s);
int os_server_up(os_server_t *s);

/* Faults, each applied to the next n matching requests. */
void os_fault_bulk_429(os_server_t *s, int n);           /* whole _bulk answered 429 */
void os_fault_item_429(os_server_t *s, int n);           /* n bulk items get status 429 */
void os_fault_503(os_server_t *s, int n);                /* any request answered 503 */
void os_fault_drop(os_server_t *s, int n);               /* connection closed, no response */
void os_fault_reject_id(os_server_t *s, const char *id); /* items with this _id: 400 */
void os_fault_accept_id(os_server_t *s, const char *id); /* undoes os_fault_reject_id */
void os_fault_delay_ms(os_server_t *s, int ms);          /* every response delayed (0: off) */
/* bulk items with this _id answered 429 the next n times */
void os_fault_busy_id(os_server_t *s, const char *id, int n);
/* After the next _mget is answered, document `to` of the index behind
 * `index` becomes a copy of `from` (a missing `from` deletes it): another
 * writer's commit landing between a reader's two requests. */
void os_fault_copy_after_mget(os_server_t *s, const char *index, const char *from, const char *to);
/* Now: document `to` becomes a copy of `from` (as above). */
void os_server_copy(os_server_t *s, const char *index, const char *from, const char *to);

/* Inspection (under the server's lock): the _source of a document read
 * through an index or alias name (realtime, as GET _doc), a new reference or
 * NULL; the ids of all documents (new array); the concrete indices; requests
 * served so far by endpoint kind ("bulk", "search", ...), or with kind
 * "bulk_bytes" the bytes of all _bulk bodies received, with kind
 * "bulk_bytes:NAME" those of the actions (and sources) whose _index was NAME
 * as written (an alias or an index). */
json_t *os_server_get(os_server_t *s, const char *index, const char *id);
json_t *os_server_ids(os_server_t *s, const char *index);
json_t *os_server_indices(os_server_t *s);
long os_server_requests(os_server_t *s, const char *kind);
/* Faults injected but not yet consumed by a request. */
int os_faults_pending(os_server_t *s);

#endif
