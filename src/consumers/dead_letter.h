/*
 * The dead-letter producer of a serve process (internal to serve): invalid
 * events go to --dlq-topic with headers saying why and where they came
 * from, and a checkpoint never passes a dead letter that is not confirmed
 * delivered.
 *
 * No message can stop a partition: a message the topic cannot take whole
 * (larger than the producer's message.max.bytes, or refused by the broker
 * as too large) is sent cut to its first bytes, with the headers
 * `truncated: true` and `original_size: N`; if even that is refused, it is
 * sent with the headers alone (`truncated: true`, empty value). Either way
 * it is counted (readmodel_dead_letters_cut_total) and logged. Only a
 * producer that fails for good on every message (authorisation, unknown
 * topic) stops the pipeline, as a sink outage would not: that is a
 * configuration error, not a poison message.
 *
 * Thread-safety: rm_dlq_send and rm_dlq_drain may be called by every worker
 * of the pipeline at once (librdkafka producers are thread-safe; the
 * counters are atomics). new and free from one thread.
 */
#ifndef READMODEL_DEAD_LETTER_H
#define READMODEL_DEAD_LETTER_H

#include "readmodel/config.h"
#include "readmodel/event.h"
#include "readmodel/stats.h"

#include <librdkafka/rdkafka.h>

typedef struct rm_dlq rm_dlq_t;

/* A producer for cfg->dlq_topic; stats (borrowed) receives the counts.
 * NULL with one line in err. */
rm_dlq_t *rm_dlq_new(const rm_config_t *cfg, rm_stats_t *stats, char *err, size_t errlen);
/* Queues the dead letter of m (invalid for `why`). Waits while the local
 * queue is full; gives up (returns -1) only when the process is stopping and
 * stop_deadline (a time(NULL) value, set on first need) has passed, or when
 * the producer failed for good. 0 when queued. */
int rm_dlq_send(rm_dlq_t *q, const rd_kafka_message_t *m, const rm_reject_t *why,
                time_t *stop_deadline);
/* Waits until every queued dead letter is delivered. 0, or -1 when one
 * failed for good or the process is stopping past stop_deadline. */
int rm_dlq_drain(rm_dlq_t *q, time_t *stop_deadline);
/* Flushes (up to 5 s) and frees; -1 when dead letters were left undelivered
 * or one failed. NULL is a no-op returning 0. */
int rm_dlq_free(rm_dlq_t *q);

/* The bytes of a dead letter's value that fit a producer limit of
 * max_bytes for a message with key_len bytes of key and headers_len bytes
 * of headers (a margin for the record's framing is kept); 0 when nothing
 * fits. Exposed for tests. */
size_t rm_dlq_cut_size(size_t max_bytes, size_t key_len, size_t headers_len);

#endif
