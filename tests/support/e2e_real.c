/* The e2e harness on a real Apache Kafka broker: see e2e.h. */
#include "e2e.h"
#include "kafka_real.h"

#include <stdio.h>
#include <unistd.h>

int e2e_start_real(e2e_t *e, struct kafka_real *k, const char *topic, int partitions, int rf) {
    static int groups;
    static struct kafka_real *dlq_on;
    e2e_begin(e, topic, partitions);
    e->bootstraps = kafka_real_bootstraps(k);
    snprintf(e->group, sizeof(e->group), "rm-test-%d-%d", (int)getpid(), ++groups);
    if (rm_test_redis_start(&e->redis) != 0 ||
        kafka_real_create_topic(k, topic, partitions, rf, NULL) != 0)
        return -1;
    if (dlq_on != k) {
        if (kafka_real_create_topic(k, "booking.dlq", 1, rf, NULL) != 0)
            return -1;
        dlq_on = k;
    }
    const char *props[] = {
        "enable.idempotence", "true", "compression.codec", "lz4", "linger.ms", "5", NULL};
    e->producer = kafka_real_producer(k, props);
    e->ref = ref_new();
    return e->producer && e->ref ? 0 : -1;
}
