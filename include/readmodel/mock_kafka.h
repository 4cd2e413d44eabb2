/*
 * A local Kafka for development and tests: librdkafka's mock cluster
 * (rdkafka_mock.h) listening on loopback. Real clients (kcat, readmodel)
 * talk to it with the Kafka protocol. Limits of the mock: about 5 MiB or
 * 100,000 batches kept per partition (older data is dropped as retention
 * would), no ListOffsets by timestamp, no CreateTopics API (topics are made
 * here, or auto-created with 4 partitions on first produce).
 *
 * Thread-safety: start, create and stop from one thread; clients on any
 * thread may use the cluster meanwhile.
 */
#ifndef READMODEL_MOCK_KAFKA_H
#define READMODEL_MOCK_KAFKA_H

typedef struct rm_mock_kafka rm_mock_kafka_t;

/* Starts a cluster of `brokers` brokers; NULL on failure (logged). */
rm_mock_kafka_t *rm_mock_kafka_start(int brokers);
/* Creates a topic; 0, or -1 (logged). */
int rm_mock_kafka_create_topic(rm_mock_kafka_t *m, const char *topic, int partitions);
/* "127.0.0.1:port,..."; owned by m. */
const char *rm_mock_kafka_bootstraps(const rm_mock_kafka_t *m);
/* Delays every response of every broker by rtt_ms (0: none), to hold a
 * client in a phase long enough to observe it (tests). 0, or -1 (logged). */
int rm_mock_kafka_set_rtt(rm_mock_kafka_t *m, int rtt_ms);
/* Stops the cluster and frees it; NULL is a no-op. */
void rm_mock_kafka_stop(rm_mock_kafka_t *m);

#endif
