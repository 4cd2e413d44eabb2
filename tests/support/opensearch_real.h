/*
 * A real OpenSearch node for tests (label `real`): OpenSearch 2.19 from
 * Maven Central, started by tests/support/opensearch-node's launcher on
 * Java 17 (scripts/setup.d/30-opensearch.sh resolves and compiles it into
 * ~/.cache/readmodel/opensearch-node; READMODEL_OPENSEARCH_NODE=
 * opensearch-node-3 takes the 3.x node it builds when a Java 21+ JDK is
 * there). One node, security off, HTTP on a
 * loopback port the kernel picks, data in a fresh temporary directory.
 *
 * The node runs in its own process group, which is killed when the test
 * program exits (atexit), aborts or is signalled; and the node exits by
 * itself when the test program's end of its stdin pipe closes (even on
 * SIGKILL), then removing its data directory (atexit removes it too). Not thread-safe: one thread
 * of the test program drives it.
 */
#ifndef RM_OPENSEARCH_REAL_H
#define RM_OPENSEARCH_REAL_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct os_real os_real_t;

/* Starts a node and waits until it answers (at most 180 s). NULL on
 * failure, with the reason on stderr (a node not built names
 * `bash scripts/setup.sh --real`; a node that died shows its log's tail). */
os_real_t *os_real_start(void);
/* Stops the node (SIGTERM, then SIGKILL after 30 s), removes its data and
 * frees; NULL is a no-op. */
void os_real_stop(os_real_t *n);
/* The HTTP port, and "http://127.0.0.1:PORT" (owned by n). */
int os_real_port(const os_real_t *n);
const char *os_real_url(const os_real_t *n);
/* The OpenSearch version (e.g. "2.19.6"), owned by n. */
const char *os_real_version(const os_real_t *n);
/* The JVM's pid (also its process group). */
pid_t os_real_pid(const os_real_t *n);
/* Seconds from exec to the node answering, for the last (re)start. */
double os_real_start_seconds(const os_real_t *n);
/* Resident memory of the JVM in KiB now (VmRSS), -1 when not running. */
long os_real_rss_kib(const os_real_t *n);
/* The JVM's peak resident memory since its last (re)start (VmHWM), -1 when
 * not running. */
long os_real_peak_rss_kib(const os_real_t *n);

/* SIGSTOP / SIGCONT to the node's process group. */
void os_real_pause(os_real_t *n);
void os_real_resume(os_real_t *n);
/* SIGKILL to the process group, waited for; the data stays. */
void os_real_kill(os_real_t *n);
/* Starts the node again on the same port, with its data (keep_data) or
 * with an empty data directory; 0 when it answers again, -1 otherwise. */
int os_real_restart(os_real_t *n, bool keep_data);

/* One HTTP request to the node: the parsed JSON body (NULL when the body is
 * not JSON or nothing answered) and the status in *status (0: no answer).
 * body may be NULL. */
json_t *os_real_http(const os_real_t *n, const char *method, const char *path, const char *body,
                     long *status);
/* Deletes every index (hidden ones too), so that a test starts empty;
 * 0 on success. */
int os_real_wipe(os_real_t *n);

/* os_server.h over the real node (os_server_real.c), so that the e2e cases
 * written for the test server run unchanged against it: os_server_start
 * starts the program's one node on first use and otherwise deletes every
 * index (each case starts empty); os_server_stop keeps the node for the
 * next case; the inspection functions read the node (os_server_ids and
 * os_server_get are realtime: the index is refreshed first);
 * os_server_requests("bulk") counts indexing operations. The fault
 * functions exist only in the test server. os_server_real_node is that
 * node (NULL before the first start); os_server_real_shutdown stops it. */
os_real_t *os_server_real_node(void);
void os_server_real_shutdown(void);

#endif
