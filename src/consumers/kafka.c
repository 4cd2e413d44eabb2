/*
 * Construction of every Kafka client of the program (readmodel/kafka.h):
 * one place decides the order in which defaults, pass-through properties
 * and callbacks are applied, and how errors read.
 */
#include "readmodel/kafka.h"
#include "readmodel/log.h"

#include <stdio.h>
#include <string.h>

void rm_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    rm_log(level <= 3   ? RM_LOG_ERROR
           : level <= 4 ? RM_LOG_WARN
                        : RM_LOG_DEBUG,
           "kafka %s: %s", fac, buf);
}

int rm_kafka_conf_set_all(rd_kafka_conf_t *conf, char *const *props, size_t n, char *err,
                          size_t errlen) {
    char why[256];
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(props[i], '=');
        if (!eq || eq == props[i]) {
            snprintf(err, errlen, "--kafka: expected KEY=VALUE (the value is not shown)");
            return -1;
        }
        char key[128];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - props[i]), props[i]);
        if (rd_kafka_conf_set(conf, key, eq + 1, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "--kafka %s: %s", key, why);
            return -1;
        }
    }
    return 0;
}

rd_kafka_t *rm_kafka_new(rd_kafka_type_t type, const rm_kafka_prop_t *defaults, size_t n,
                         char *const *props, size_t nprops,
                         void (*setup)(rd_kafka_conf_t *conf, void *arg), void *arg, char *err,
                         size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[256];
    for (size_t i = 0; i < n; i++) {
        if (rd_kafka_conf_set(conf, defaults[i].key, defaults[i].value, why, sizeof(why)) !=
            RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "kafka %s: %s", defaults[i].key, why);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    if (rm_kafka_conf_set_all(conf, props, nprops, err, errlen) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* Every consumer reads committed records only: read_uncommitted would
     * apply the events of aborted transactions, and end offsets (the last
     * stable offset) would disagree with what is applied. */
    char iso[32] = "";
    size_t isolen = sizeof(iso);
    if (type == RD_KAFKA_CONSUMER &&
        (rd_kafka_conf_get(conf, "isolation.level", iso, &isolen) != RD_KAFKA_CONF_OK ||
         strcmp(iso, "read_committed") != 0)) {
        snprintf(err, errlen,
                 "--kafka isolation.level=%s: readmodel consumes with read_committed only "
                 "(events of aborted transactions must never be applied)",
                 iso);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, rm_kafka_log_cb);
    if (setup)
        setup(conf, arg);
    rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof(why));
    if (!rk) {
        snprintf(err, errlen, "kafka %s: %s", type == RD_KAFKA_CONSUMER ? "consumer" : "producer",
                 why);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* conf is now owned by rk */
    if (type == RD_KAFKA_CONSUMER)
        rd_kafka_poll_set_consumer(rk);
    return rk;
}

int rm_kafka_topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, char *err,
                              size_t errlen) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "topic %s: metadata: %s", topic, rd_kafka_err2str(e));
        return -1;
    }
    int n = 0;
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, topic) == 0 && !md->topics[i].err)
            n = md->topics[i].partition_cnt;
    rd_kafka_metadata_destroy(md);
    if (n == 0)
        snprintf(err, errlen, "topic %s does not exist (check --topic; it is not created here)",
                 topic);
    return n;
}

/* One kind of offset (RD_KAFKA_OFFSET_BEGINNING or _END as the timestamp
 * asked for) of every partition, into out. */
static rd_kafka_resp_err_t offsets_of(rd_kafka_t *rk, const char *topic, int n, int64_t kind,
                                      int64_t *out, int timeout_ms) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    if (!l)
        return RD_KAFKA_RESP_ERR__FAIL;
    for (int p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = kind;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, l, timeout_ms);
    for (int i = 0; e == RD_KAFKA_RESP_ERR_NO_ERROR && i < l->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &l->elems[i];
        if (tp->err)
            e = tp->err;
        else if (tp->partition >= 0 && tp->partition < n)
            out[tp->partition] = tp->offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return e;
}

rd_kafka_resp_err_t rm_kafka_offsets(rd_kafka_t *rk, const char *topic, int n, int64_t *low,
                                     int64_t *high, int timeout_ms) {
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (low)
        e = offsets_of(rk, topic, n, RD_KAFKA_OFFSET_BEGINNING, low, timeout_ms);
    if (high && e == RD_KAFKA_RESP_ERR_NO_ERROR)
        e = offsets_of(rk, topic, n, RD_KAFKA_OFFSET_END, high, timeout_ms);
    return e;
}
