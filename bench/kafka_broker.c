/*
 * A real Apache Kafka broker for the benchmark (bench/kafka_real_bench.py),
 * started by tests/support/kafka_real.c: one KRaft broker on free loopback
 * ports, the topics given as NAME:PARTITIONS created. Prints the bootstrap
 * list on the first line of stdout, its data directory on the second,
 * "kafka VERSION ready in S s, RSS M MiB" on the third; answers a line
 * "rss" on stdin with the broker's RSS in MiB, and stops the broker when
 * stdin closes.
 *
 * Usage: rm_bench_kafka TOPIC:PARTITIONS...
 */
#include "kafka_real.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    kafka_real_t *k = kafka_real_start(1, 300);
    if (!k)
        return 1;
    for (int i = 1; i < argc; i++) {
        char name[256];
        snprintf(name, sizeof(name), "%s", argv[i]);
        char *colon = strrchr(name, ':');
        int parts = colon ? atoi(colon + 1) : 1;
        if (colon)
            *colon = '\0';
        if (kafka_real_create_topic(k, name, parts, 1, NULL) != 0) {
            kafka_real_stop(k);
            return 1;
        }
    }
    printf("%s\n%s/data1\nkafka %s ready in %.1f s, RSS %ld MiB\n", kafka_real_bootstraps(k),
           kafka_real_dir(k), kafka_real_version(k), kafka_real_start_seconds(k),
           kafka_real_rss_kib(k) / 1024);
    fflush(stdout);
    char buf[256];
    while (fgets(buf, sizeof(buf), stdin)) {
        if (strncmp(buf, "rss", 3) == 0) { /* the broker's memory now */
            printf("%ld\n", kafka_real_rss_kib(k) / 1024);
            fflush(stdout);
        }
    }
    kafka_real_stop(k);
    return 0;
}
