/*
 * Kafka clients of every command, made one way: the caller's defaults
 * first, then the --kafka pass-through properties (which win), then
 * librdkafka's log routed through the project's logger (so its lines have
 * the same format and level filter as ours), then the client. serve's
 * consumers and dead-letter producer, the replay of rebuild and verify, gen,
 * dev-kafka and --check-config all use it.
 *
 * Thread-safety: every function is thread-safe (no shared state).
 */
#ifndef READMODEL_KAFKA_H
#define READMODEL_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

typedef struct {
    const char *key, *value;
} rm_kafka_prop_t;

/* Applies "key=value" properties to conf. 0, or -1 with one line in err
 * naming the property ("--kafka foo: No such configuration property"); the
 * value is never echoed (it may be a secret). */
int rm_kafka_conf_set_all(rd_kafka_conf_t *conf, char *const *props, size_t n, char *err,
                          size_t errlen);

/* Creates a client of `type`. defaults (n of them) are set first, then
 * props (nprops "key=value" strings, may be NULL), then the log callback;
 * `setup`, when not NULL, may set callbacks and the opaque on the
 * configuration before the client is made. Consumers are given
 * rd_kafka_poll_set_consumer. Returns the client (caller destroys), or NULL
 * with one line in err; the configuration is always consumed. */
rd_kafka_t *rm_kafka_new(rd_kafka_type_t type, const rm_kafka_prop_t *defaults, size_t n,
                         char *const *props, size_t nprops,
                         void (*setup)(rd_kafka_conf_t *conf, void *arg), void *arg, char *err,
                         size_t errlen);

/* The partition count of topic, from a listing of every topic (which never
 * auto-creates one, whatever the broker's auto.create.topics.enable says).
 * > 0: the count; 0: the broker answered and the topic does not exist;
 * -1: no broker answered within timeout_ms (err says why). */
int rm_kafka_topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, char *err,
                              size_t errlen);

/* The earliest (*low) and end (*high; under read_committed the last stable
 * offset) offsets of partitions 0..n-1 of topic, asked of each partition's
 * leader with one ListOffsets request per leader and kind, each kind
 * within timeout_ms (a new client first connects and asks for metadata). Unlike
 * rd_kafka_query_watermark_offsets in librdkafka 2.0, which was seen waiting without end for a
 * leader killed -9, it returns RD_KAFKA_RESP_ERR__TIMED_OUT then: a caller retries with a new
 * client, whose metadata names the new leader. low or high may be NULL.
 * Returns the first error (the arrays are then partly filled). */
rd_kafka_resp_err_t rm_kafka_offsets(rd_kafka_t *rk, const char *topic, int n, int64_t *low,
                                     int64_t *high, int timeout_ms);

/* librdkafka's log callback that writes through rm_log. */
void rm_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

#endif
