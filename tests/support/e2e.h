/*
 * End-to-end helpers: a local Kafka (mock cluster in the test process), a
 * producer that also feeds the reference model, `readmodel serve` as a real
 * subprocess, and the comparison of Redis with the reference.
 */
#ifndef RM_E2E_H
#define RM_E2E_H

#include "readmodel/mock_kafka.h"
#include "ref_model.h"
#include "test_redis.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    rm_mock_kafka_t *kafka;
    rd_kafka_t *producer;
    rm_test_redis_t redis;
    ref_model_t *ref;
    const char *topic;
    int partitions;
    unsigned long long produced;
    /* A real broker's bootstrap list (e2e_start_real; NULL: the mock). */
    const char *bootstraps;
    /* --group of every command (e2e_start_real: one per e2e_t, so test
     * cases sharing one broker never share a consumer group). */
    char group[64];
} e2e_t;

int e2e_start(e2e_t *e, const char *topic, int partitions);
void e2e_stop(e2e_t *e);

/* Produces one message (key may be NULL, value NULL = tombstone) and applies
 * it to the reference. Waits for delivery when flush is true. */
void e2e_produce(e2e_t *e, const char *key, const char *value, size_t value_len);
void e2e_flush(e2e_t *e);
/* Produces `count` generated messages from generator state g (NULL: make one
 * with seed). */
struct rm_gen;
void e2e_produce_generated(e2e_t *e, struct rm_gen *g, long count);

/* Starts `readmodel serve` with the common flags plus extra ones (NULL
 * terminated). Output goes to the test's stderr. */
pid_t e2e_serve(e2e_t *e, const char *const *extra);
/* Starts `readmodel CMD` with the connection flags of e plus extra. */
pid_t e2e_command(e2e_t *e, const char *cmd, const char *const *extra);
/* Runs `readmodel CMD ...` to completion; returns its exit code. */
int e2e_run(e2e_t *e, const char *cmd, const char *const *extra);
/* Waits for pid; returns its exit code, or 128+signal. */
int e2e_wait(pid_t pid);
/* Waits until every partition's checkpoint in Redis equals its end offset. */
bool e2e_wait_caught_up(e2e_t *e, int timeout_s);
/* Compares Redis with the reference; prints differences, returns their
 * number (missing + wrong + extra keys). */
int e2e_compare(e2e_t *e);
/* A generator of `practitioners` x `days` starting 2026-11-23, with 2%
 * invalid and 1% unknown-type events (caller frees with rm_gen_free). */
struct rm_gen *e2e_generator(uint64_t seed, int practitioners, int days);
void e2e_sleep_ms(long ms);
/* Number of rm:avail:* keys in Redis. */
long e2e_count_keys(e2e_t *e);

/* Waits for pid like e2e_wait, but at most timeout_s (a bound against hangs,
 * not a speed check): on timeout it kills pid and returns -2. */
int e2e_wait_timeout(pid_t pid, int timeout_s);

/* Observing a running command through its own /metrics. serve's
 * --metrics-addr is 127.0.0.1:0 (a port the kernel picks, so tests running
 * in parallel never collide); e2e_metrics_port finds that port among the
 * process's listening sockets in /proc. It waits up to timeout_s; -1 when
 * the process listens on no TCP port. */
int e2e_metrics_port(pid_t pid, int timeout_s);
/* GET http://127.0.0.1:port/path: the body of a 200 (caller frees), or NULL. */
char *e2e_http_get(int port, const char *path);
/* The same for any status: the body (caller frees) with the status in
 * *status, or NULL (and -1) when nothing answered. */
char *e2e_http_get_status(int port, const char *path, int *status);
/* Sum of the samples whose line starts with prefix (e.g.
 * readmodel_sink_errors_total{target="redis",kind="flush"}). */
double e2e_metric_sum(const char *text, const char *prefix);
/* The same, read from port's /metrics now; -1 when unreachable. */
double e2e_metric(int port, const char *prefix);
/* Polls port's /metrics until the sum of prefix is >= at_least, at most
 * timeout_s. Prints the last value read when it gives up. */
bool e2e_wait_metric(int port, const char *prefix, double at_least, int timeout_s);
/* Flushes slower than 1 s so far (readmodel_sink_flush_duration_seconds:
 * count minus the le="1" bucket) for target ("redis", "opensearch"). */
double e2e_slow_flushes(int port, const char *target);

/* Runs `readmodel CMD` like e2e_run, capturing its stdout (its stderr
 * still goes to the test's). Returns what it printed (caller frees; NULL when
 * it could not be started) and stores its exit code in *exit_code. */
char *e2e_capture(e2e_t *e, const char *cmd, const char *const *extra, int *exit_code);

/* ---- the same harness on a real broker (tests/support/kafka_real.h) ----
 * e2e_real.c (link it with kafka_real.c). Starts Redis and the producer like e2e_start, but against
 * the broker whose bootstrap list is given (owned by the caller, not stopped by e2e_stop): creates
 * topic (partitions, replication factor rf; 0: every broker) and, once per broker, booking.dlq.
 * Every command of e then gets
 * --brokers bootstraps and a --group of its own. 0, or -1. */
struct kafka_real;
int e2e_start_real(e2e_t *e, struct kafka_real *k, const char *topic, int partitions, int rf);
/* The bootstrap list commands of e use (real broker or mock). */
const char *e2e_bootstraps(const e2e_t *e);
/* What e2e_start does before it starts servers: clears e, sets the topic,
 * makes sure every child is killed at exit. */
void e2e_begin(e2e_t *e, const char *topic, int partitions);

/* ---- a command's log ----
 * e2e_command with the command's stderr (its log) written to the file at
 * path (created or emptied) instead of the test's. Not thread-safe: it
 * points the test's own stderr at the file around the fork. */
pid_t e2e_command_logged(e2e_t *e, const char *cmd, const char *const *extra, const char *path);
/* Polls the file at path until a line contains needle, at most timeout_s;
 * true when one does. When none does it prints the file to stderr. */
bool e2e_wait_log(const char *path, const char *needle, int timeout_s);
/* The same with a POSIX extended regular expression matched line by line. */
bool e2e_wait_log_match(const char *path, const char *pattern, int timeout_s);
/* Prints the file at path to stderr (for whoever reads a test's output). */
void e2e_log_dump(const char *path);

#endif
