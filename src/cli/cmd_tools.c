/*
 * Developer tools that users can run too:
 *   dev-kafka  a local Kafka (librdkafka mock cluster) on loopback
 *   gen        the deterministic booking log generator, into Kafka or a file
 * Their options are rows of the one option table (config.c), parsed by
 * rm_config_parse like every other command's.
 */
#include "commands.h"
#include "readmodel/config.h"
#include "readmodel/gen.h"
#include "readmodel/kafka.h"
#include "readmodel/log.h"
#include "readmodel/mock_kafka.h"
#include "readmodel/stop.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parses the options of a tool (the table of config.c) into *cfg: -1 to go
 * on, else the exit code (0 after --help, 2 on an error). */
static int parse_tool(rm_command_t cmd, int argc, char **argv, rm_config_t *cfg) {
    char err[512];
    switch (rm_config_parse(cmd, argc, argv, cfg, err, sizeof(err))) {
    case RM_CONFIG_HELP:
        fputs(rm_usage(cmd), stdout);
        return 0;
    case RM_CONFIG_ERROR:
        fprintf(stderr, "readmodel %s: %s\n", argv[0], err);
        return 2;
    default:
        return -1;
    }
}

/* The topics of dev-kafka: each NAME[:N] given (N checked by the parser),
 * or booking.events; 0, or -1 (logged). */
static int create_topics(rm_mock_kafka_t *m, const rm_config_t *cfg) {
    if (cfg->n_topics == 0)
        return rm_mock_kafka_create_topic(m, "booking.events", cfg->partitions);
    for (size_t i = 0; i < cfg->n_topics; i++) {
        const char *t = cfg->topics[i], *colon = strrchr(t, ':');
        char name[256];
        snprintf(name, sizeof(name), "%.*s", colon ? (int)(colon - t) : 255, t);
        if (rm_mock_kafka_create_topic(m, name, colon ? atoi(colon + 1) : cfg->partitions))
            return -1;
    }
    return 0;
}

int rm_cmd_dev_kafka(int argc, char **argv) {
    rm_config_t cfg;
    int rc = parse_tool(RM_CMD_DEV_KAFKA, argc, argv, &cfg);
    if (rc >= 0) {
        rm_config_free(&cfg);
        return rc;
    }
    rm_mock_kafka_t *m = rm_mock_kafka_start(cfg.brokers_count);
    rc = !m || create_topics(m, &cfg) ? 1 : 0;
    rm_config_free(&cfg);
    if (rc) {
        rm_mock_kafka_stop(m);
        return 1;
    }
    printf("%s\n", rm_mock_kafka_bootstraps(m));
    fflush(stdout);
    rm_info("local Kafka running on %s; stop with Ctrl-C", rm_mock_kafka_bootstraps(m));
    while (rm_running())
        usleep(100 * 1000);
    rm_mock_kafka_stop(m);
    return 0;
}

static rd_kafka_t *gen_producer(const char *brokers, char **props, size_t nprops) {
    char err[512];
    const rm_kafka_prop_t defaults[] = {{"bootstrap.servers", brokers},
                                        {"compression.codec", "lz4"},
                                        {"enable.idempotence", "true"},
                                        {"linger.ms", "20"},
                                        {"queue.buffering.max.messages", "1000000"}};
    rd_kafka_t *rk =
        rm_kafka_new(RD_KAFKA_PRODUCER, defaults, sizeof(defaults) / sizeof(defaults[0]), props,
                     nprops, NULL, NULL, err, sizeof(err));
    if (!rk)
        fprintf(stderr, "readmodel gen: %s\n", err);
    return rk;
}

/* Produces one message, waiting while the local queue is full; 0 or -1. */
static int produce_one(rd_kafka_t *rk, const char *topic, const rm_gen_msg_t *m) {
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY((void *)(uintptr_t)m->key, m->key_len),
            RD_KAFKA_V_VALUE((void *)(uintptr_t)m->value, m->value_len), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 50);
            continue;
        }
        if (err) {
            fprintf(stderr, "readmodel gen: produce: %s\n", rd_kafka_err2str(err));
            return -1;
        }
        return 0;
    }
}

/* Writes g's whole log to --output or produces it to Kafka; the exit code
 * (0, 1 on a write or delivery failure, 2 if the producer is refused). */
static int produce(const rm_config_t *cfg, rm_gen_t *g) {
    FILE *out = NULL;
    rd_kafka_t *rk = NULL;
    if (cfg->output) {
        out = strcmp(cfg->output, "-") == 0 ? stdout : fopen(cfg->output, "w");
        if (!out) {
            fprintf(stderr, "readmodel gen: --output %s: %s\n", cfg->output, strerror(errno));
            return 1;
        }
    } else if (!(rk = gen_producer(cfg->brokers, cfg->kafka, cfg->n_kafka))) {
        return 2;
    }
    rm_gen_msg_t m;
    unsigned long long total = 0, invalid = 0;
    int rc = 0;
    while (rc == 0 && rm_running() && rm_gen_next(g, &m)) {
        total++;
        invalid += m.invalid;
        if (out) {
            fprintf(out, "%.*s\t%.*s\n", (int)m.key_len, m.key, (int)m.value_len, m.value);
            continue;
        }
        rc = produce_one(rk, cfg->topic, &m) ? 1 : 0;
        if (total % 100000 == 0)
            rm_info("gen: %llu events queued", total);
        rd_kafka_poll(rk, 0);
    }
    if (rk) {
        while (rc == 0 && rd_kafka_outq_len(rk) > 0 && rm_running())
            rd_kafka_flush(rk, 1000);
        if (rd_kafka_outq_len(rk) > 0) {
            fprintf(stderr, "readmodel gen: %d message(s) not delivered\n", rd_kafka_outq_len(rk));
            rc = 1;
        }
        rd_kafka_destroy(rk);
    }
    if (out && out != stdout)
        fclose(out);
    rm_info("gen: %llu events (%llu invalid) %s %s", total, invalid,
            cfg->output ? "written to" : "produced to", cfg->output ? cfg->output : cfg->topic);
    return rc;
}

int rm_cmd_gen(int argc, char **argv) {
    rm_config_t cfg;
    int rc = parse_tool(RM_CMD_GEN, argc, argv, &cfg);
    if (rc >= 0) {
        rm_config_free(&cfg);
        return rc;
    }
    rm_gen_t *g = rm_gen_new(&cfg.gen);
    if (!g) {
        fprintf(stderr, "readmodel gen: --days: the last day must be on or before 2099-12-31\n");
        rm_config_free(&cfg);
        return 2;
    }
    rc = produce(&cfg, g);
    rm_gen_free(g);
    rm_config_free(&cfg);
    return rc ? rc : rm_stopped_by_signal() ? 1 : 0;
}
