/*
 * Local Kafka: a librdkafka mock cluster owned by a bare producer handle.
 * The handle is never used to produce; it only hosts the cluster's threads.
 */
#include "readmodel/mock_kafka.h"
#include "readmodel/log.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include "readmodel/kafka.h"

#include <stdlib.h>

struct rm_mock_kafka {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    int brokers;
};

rm_mock_kafka_t *rm_mock_kafka_start(int brokers) {
    rm_mock_kafka_t *m = calloc(1, sizeof(*m));
    char err[256];
    const rm_kafka_prop_t defaults[] = {{"log_level", "3"}};
    if (!m || !(m->rk = rm_kafka_new(RD_KAFKA_PRODUCER, defaults, 1, NULL, 0, NULL, NULL, err,
                                     sizeof(err)))) {
        rm_error("local kafka: %s", m ? err : "out of memory");
        free(m);
        return NULL;
    }
    m->brokers = brokers;
    if (!(m->mc = rd_kafka_mock_cluster_new(m->rk, brokers))) {
        rm_error("local kafka: cannot start the mock cluster");
        rm_mock_kafka_stop(m);
        return NULL;
    }
    return m;
}

int rm_mock_kafka_create_topic(rm_mock_kafka_t *m, const char *topic, int partitions) {
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(m->mc, topic, partitions, 1);
    if (err) {
        rm_error("local kafka: create topic %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

const char *rm_mock_kafka_bootstraps(const rm_mock_kafka_t *m) {
    return rd_kafka_mock_cluster_bootstraps(m->mc);
}

int rm_mock_kafka_set_rtt(rm_mock_kafka_t *m, int rtt_ms) {
    for (int b = 1; b <= m->brokers; b++) { /* the mock numbers brokers from 1 */
        rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_rtt(m->mc, b, rtt_ms);
        if (err) {
            rm_error("local kafka: set rtt of broker %d: %s", b, rd_kafka_err2str(err));
            return -1;
        }
    }
    return 0;
}

void rm_mock_kafka_stop(rm_mock_kafka_t *m) {
    if (!m)
        return;
    if (m->mc)
        rd_kafka_mock_cluster_destroy(m->mc);
    if (m->rk)
        rd_kafka_destroy(m->rk);
    free(m);
}
