/*
 * A real Apache Kafka for tests (label `real`): one KRaft broker (combined
 * broker and controller) or a cluster of three (each combined; replication
 * factor 3 and min.insync.replicas 2 as in production), started from the
 * Maven Central jars that scripts/setup.d/20-kafka.sh resolved (its cached
 * classpath, ~/.cache/readmodel/kafka.classpath, or kafka-$RM_KAFKA_VERSION
 * .classpath) on free loopback ports, each broker in its own process group
 * and data directory. Start a cluster once per test program: a broker takes
 * seconds to start.
 *
 * Brokers still running when the test program exits, aborts or is killed are
 * killed with their process group (atexit, and the JVM's parent-death
 * signal), so none outlives the run. Not thread-safe: call from the test's
 * main thread.
 */
#ifndef RM_KAFKA_REAL_H
#define RM_KAFKA_REAL_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct kafka_real kafka_real_t;

/* Formats the storage of n (1 or 3) brokers and starts them; waits until
 * every broker is in the cluster's metadata (at most timeout_s). NULL on
 * failure, after printing why to stderr (a missing classpath names
 * `bash scripts/setup.sh --real`). */
kafka_real_t *kafka_real_start(int n, int timeout_s);
/* Kills every broker's process group and removes the data directories.
 * NULL is a no-op. */
void kafka_real_stop(kafka_real_t *k);
/* "127.0.0.1:P1,127.0.0.1:P2,..." (owned by k). */
const char *kafka_real_bootstraps(const kafka_real_t *k);
/* The directory holding broker i's data under data{i+1}/ (owned by k). */
const char *kafka_real_dir(const kafka_real_t *k);
/* The Kafka version the brokers run (e.g. "4.4.0"; owned by k). */
const char *kafka_real_version(const kafka_real_t *k);
/* Seconds from the first format to ready, and the brokers' summed resident
 * memory now (KiB, from /proc). */
double kafka_real_start_seconds(const kafka_real_t *k);
long kafka_real_rss_kib(const kafka_real_t *k);
/* Prints "kafka VERSION: N broker(s) ready in S s, RSS M MiB" to stderr. */
void kafka_real_report(const kafka_real_t *k);

/* Broker i (0-based; node id i+1): kill -sig its process group and wait
 * for it (SIGKILL: a crash); start it again on the same ports and data. */
int kafka_real_kill(kafka_real_t *k, int i, int sig);
int kafka_real_restart(kafka_real_t *k, int i);
/* Waits until every broker is in the cluster's metadata again (after
 * kafka_real_restart); 0, or -1 after timeout_s. */
int kafka_real_wait_up(kafka_real_t *k, int timeout_s);
/* The broker index (0-based) leading topic/partition, or -1. */
int kafka_real_leader(kafka_real_t *k, const char *topic, int partition);

/* Admin operations through librdkafka (timeouts of 30 s); 0 on success,
 * else -1 after printing the error. configs: NULL-terminated name, value
 * pairs (NULL: none). rf 0: the cluster's size. */
int kafka_real_create_topic(kafka_real_t *k, const char *topic, int partitions, int rf,
                            const char *const *configs);
int kafka_real_add_partitions(kafka_real_t *k, const char *topic, int total);
/* Deletes the records before offset `before` of topic/partition (what
 * retention does): the partition's earliest offset becomes `before`. */
int kafka_real_delete_records(kafka_real_t *k, const char *topic, int partition, long long before);
/* A producer on k with the given extra properties (NULL-terminated name,
 * value pairs), or NULL. The caller destroys it. */
rd_kafka_t *kafka_real_producer(const kafka_real_t *k, const char *const *props);

#endif
