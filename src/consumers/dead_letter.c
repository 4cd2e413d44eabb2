/*
 * Dead letters (see dead_letter.h): produce, cut what is too large, confirm
 * delivery before the checkpoint passes.
 */
#include "dead_letter.h"
#include "readmodel/kafka.h"
#include "readmodel/log.h"
#include "readmodel/stop.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bytes kept free of the limit for the record's own framing (batch and
 * record headers, varints, the CRC): a record batch of one message costs
 * under 100 bytes; 1 KiB leaves room for the broker's accounting too. */
#define FRAMING_MARGIN 1024

struct rm_dlq {
    rd_kafka_t *rk;
    const char *topic; /* borrowed from the configuration */
    rm_stats_t *stats;
    size_t max_bytes;  /* the producer's message.max.bytes */
    int timeout_s;     /* how long a stopping worker waits for the producer */
    atomic_int failed; /* a delivery failed for good */
};

size_t rm_dlq_cut_size(size_t max_bytes, size_t key_len, size_t headers_len) {
    size_t used = key_len + headers_len + FRAMING_MARGIN;
    return max_bytes > used ? max_bytes - used : 0;
}

static size_t headers_size(const rd_kafka_headers_t *h) {
    size_t n = 0;
    const char *name;
    const void *val;
    size_t len;
    for (size_t i = 0; h && rd_kafka_header_get_all(h, i, &name, &val, &len) == 0; i++)
        n += strlen(name) + len + 8;
    return n;
}

/* The headers of a dead letter: why, and where it came from. */
static rd_kafka_headers_t *headers_of(const rd_kafka_message_t *m, const rm_reject_t *why) {
    char reason[96], part[16], off[24];
    snprintf(reason, sizeof(reason), "%s%s%s", rm_reason_name(why->reason),
             why->field[0] ? ":" : "", why->field);
    snprintf(part, sizeof(part), "%d", (int)m->partition);
    snprintf(off, sizeof(off), "%lld", (long long)m->offset);
    rd_kafka_headers_t *h = rd_kafka_headers_new(6);
    rd_kafka_header_add(h, "reason", -1, reason, -1);
    rd_kafka_header_add(h, "source_topic", -1, rd_kafka_topic_name(m->rkt), -1);
    rd_kafka_header_add(h, "source_partition", -1, part, -1);
    rd_kafka_header_add(h, "source_offset", -1, off, -1);
    return h;
}

static bool too_large(rd_kafka_resp_err_t err) {
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

/* Marks h as a cut copy of a value of `size` bytes. */
static void mark_cut(rd_kafka_headers_t *h, size_t size) {
    char n[24];
    snprintf(n, sizeof(n), "%zu", size);
    rd_kafka_header_remove(h, "truncated");
    rd_kafka_header_remove(h, "original_size");
    rd_kafka_header_add(h, "truncated", -1, "true", -1);
    rd_kafka_header_add(h, "original_size", -1, n, -1);
}

static void log_cut(const char *topic, int32_t partition, int64_t offset, size_t size,
                    size_t kept) {
    rm_log_ctx_t ctx = {"dlq", (int)partition, (long long)offset};
    rm_log_fields(RM_LOG_WARN, &ctx,
                  kept ? "dead letter too large for its topic: sent its first bytes "
                         "(header truncated=true)"
                       : "dead letter too large for its topic: sent its headers only "
                         "(header truncated=true)",
                  RM_LOG_S("dlq_topic", topic), RM_LOG_I("original_size", size),
                  RM_LOG_I("kept_bytes", kept));
}

/* Produces value[0..len) with headers h (taken on success). */
static rd_kafka_resp_err_t produce(rm_dlq_t *q, const void *key, size_t key_len, const void *value,
                                   size_t len, rd_kafka_headers_t *h, void *opaque) {
    return rd_kafka_producev(q->rk, RD_KAFKA_V_TOPIC(q->topic),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_KEY((void *)(uintptr_t)key, key_len),
                             RD_KAFKA_V_VALUE((void *)(uintptr_t)value, len), RD_KAFKA_V_HEADERS(h),
                             RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
}

/* Opaque of a cut message: it must not be cut again. */
static char cut_marker;

/* Delivery reports (run inside rd_kafka_flush/poll on a worker's thread):
 * a message the broker refused as too large is sent again with its headers
 * alone; any other failure is permanent for this producer. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    rm_dlq_t *q = opaque;
    if (!m->err)
        return;
    if (too_large(m->err) && m->_private != &cut_marker) {
        rd_kafka_headers_t *old = NULL, *h = NULL;
        if (rd_kafka_message_headers(m, &old) == RD_KAFKA_RESP_ERR_NO_ERROR && old)
            h = rd_kafka_headers_copy(old);
        if (!h)
            h = rd_kafka_headers_new(2);
        mark_cut(h, m->len);
        if (produce(q, m->key, m->key_len, NULL, 0, h, &cut_marker) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            atomic_fetch_add_explicit(&q->stats->dead_letters_cut, 1, memory_order_relaxed);
            log_cut(q->topic, -1, -1, m->len, 0);
            return;
        }
        rd_kafka_headers_destroy(h);
    }
    rm_error("dead-letter delivery to %s failed: %s", q->topic, rd_kafka_err2str(m->err));
    atomic_store(&q->failed, 1);
}

static void setup(rd_kafka_conf_t *conf, void *arg) {
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, arg);
}

rm_dlq_t *rm_dlq_new(const rm_config_t *cfg, rm_stats_t *stats, char *err, size_t errlen) {
    rm_dlq_t *q = calloc(1, sizeof(*q));
    if (!q) {
        snprintf(err, errlen, "dead-letter producer: out of memory");
        return NULL;
    }
    q->topic = cfg->dlq_topic;
    q->stats = stats;
    q->timeout_s = cfg->shutdown_timeout_s;
    /* Never give up on a dead letter: the checkpoint waits for it. */
    const rm_kafka_prop_t defaults[] = {{"bootstrap.servers", cfg->brokers},
                                        {"client.id", "readmodel-dlq"},
                                        {"enable.idempotence", "true"},
                                        {"message.timeout.ms", "0"}};
    q->rk = rm_kafka_new(RD_KAFKA_PRODUCER, defaults, sizeof(defaults) / sizeof(defaults[0]),
                         cfg->kafka, cfg->n_kafka, setup, q, err, errlen);
    if (!q->rk) {
        free(q);
        return NULL;
    }
    char v[32];
    size_t vlen = sizeof(v);
    q->max_bytes = 1000000;
    if (rd_kafka_conf_get(rd_kafka_conf(q->rk), "message.max.bytes", v, &vlen) == RD_KAFKA_CONF_OK)
        q->max_bytes = (size_t)strtoull(v, NULL, 10);
    return q;
}

/* true (and *deadline set on first need) when stopping past the deadline. */
static bool past_deadline(const rm_dlq_t *q, time_t *deadline) {
    if (rm_running())
        return false;
    if (!*deadline)
        *deadline = time(NULL) + q->timeout_s;
    return time(NULL) >= *deadline;
}

int rm_dlq_send(rm_dlq_t *q, const rd_kafka_message_t *m, const rm_reject_t *why,
                time_t *stop_deadline) {
    rd_kafka_headers_t *h = headers_of(m, why);
    size_t len = m->len;
    for (;;) {
        rd_kafka_resp_err_t err = produce(q, m->key, m->key_len, m->payload, len, h, NULL);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            atomic_fetch_add_explicit(&q->stats->dead_lettered, 1, memory_order_relaxed);
            if (len < m->len) {
                atomic_fetch_add_explicit(&q->stats->dead_letters_cut, 1, memory_order_relaxed);
                log_cut(q->topic, m->partition, m->offset, m->len, len);
            }
            return 0; /* headers now owned by the message */
        }
        if (too_large(err) && len > 0) {
            /* First its first bytes, then (if even those do not fit) nothing. */
            size_t fit = rm_dlq_cut_size(q->max_bytes, m->key_len, headers_size(h) + 64);
            len = fit < len ? fit : 0;
            mark_cut(h, m->len);
            continue;
        }
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rm_error("dead-letter produce to %s failed: %s", q->topic, rd_kafka_err2str(err));
            rd_kafka_headers_destroy(h);
            atomic_store(&q->failed, 1);
            return -1;
        }
        if (past_deadline(q, stop_deadline)) {
            rd_kafka_headers_destroy(h);
            return -1;
        }
        rd_kafka_poll(q->rk, 100);
    }
}

int rm_dlq_drain(rm_dlq_t *q, time_t *stop_deadline) {
    while (q && rd_kafka_outq_len(q->rk) > 0 && !atomic_load(&q->failed)) {
        rd_kafka_flush(q->rk, 1000);
        if (past_deadline(q, stop_deadline))
            return -1;
    }
    return q && atomic_load(&q->failed) ? -1 : 0;
}

int rm_dlq_free(rm_dlq_t *q) {
    if (!q)
        return 0;
    int rc = atomic_load(&q->failed) ? -1 : 0;
    if (rd_kafka_flush(q->rk, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rm_error("dead-letter producer: %d message(s) not delivered", rd_kafka_outq_len(q->rk));
        rc = -1;
    }
    rd_kafka_destroy(q->rk);
    free(q);
    return rc;
}
