/*
 * Developer tools that users can run too:
 *   dev-kafka  a local Kafka (librdkafka mock cluster) on loopback
 *   gen        the deterministic booking log generator, into Kafka or a file
 */
#include "commands.h"
#include "readmodel/kafka.h"
#include "readmodel/stop.h"
#include "readmodel/date.h"
#include "readmodel/gen.h"
#include "readmodel/log.h"
#include "readmodel/mock_kafka.h"

#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char dev_kafka_usage[] =
    "Usage: readmodel dev-kafka [options]\n"
    "\n"
    "Start a local Kafka (librdkafka's mock cluster) on loopback, print its bootstrap\n"
    "servers on the first line of stdout, and run until SIGINT/SIGTERM.\n"
    "Limits of the mock: about 5 MiB or 100,000 batches kept per partition, no\n"
    "ListOffsets by timestamp, no CreateTopics (topics are created here).\n"
    "\n"
    "  --topic NAME[:N]   create a topic with N partitions (repeatable;\n"
    "                     default booking.events with --partitions)\n"
    "  --partitions N     partitions of the default topic (default 8)\n"
    "  --brokers-count N  brokers in the cluster (default 1)\n"
    "  -h, --help         this help\n";

static int parse_long(const char *what, const char *v, long min, long max, long *out) {
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        fprintf(stderr, "readmodel: %s: must be a whole number %ld..%ld (got '%s')\n", what, min,
                max, v);
        return -1;
    }
    *out = n;
    return 0;
}

int rm_cmd_dev_kafka(int argc, char **argv) {
    static const struct option opts[] = {{"topic", required_argument, NULL, 't'},
                                         {"partitions", required_argument, NULL, 'p'},
                                         {"brokers-count", required_argument, NULL, 'b'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    long partitions = 8, brokers = 1;
    char *topics[32];
    int ntopics = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(dev_kafka_usage, stdout);
            return 0;
        } else if (c == 't' && ntopics < 32) {
            topics[ntopics++] = optarg;
        } else if (c == 'p') {
            if (parse_long("--partitions", optarg, 1, 1024, &partitions))
                return 2;
        } else if (c == 'b') {
            if (parse_long("--brokers-count", optarg, 1, 16, &brokers))
                return 2;
        } else {
            fprintf(stderr, "readmodel dev-kafka: bad option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    rm_mock_kafka_t *m = rm_mock_kafka_start((int)brokers);
    if (!m)
        return 1;
    int rc = 0;
    if (ntopics == 0)
        rc = rm_mock_kafka_create_topic(m, "booking.events", (int)partitions);
    for (int i = 0; rc == 0 && i < ntopics; i++) {
        char name[256];
        long n = partitions;
        const char *colon = strrchr(topics[i], ':');
        snprintf(name, sizeof(name), "%.*s", colon ? (int)(colon - topics[i]) : 255, topics[i]);
        if (colon && parse_long("--topic partitions", colon + 1, 1, 1024, &n)) {
            rm_mock_kafka_stop(m);
            return 2;
        }
        rc = rm_mock_kafka_create_topic(m, name, (int)n);
    }
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

static const char gen_usage[] =
    "Usage: readmodel gen [options]\n"
    "\n"
    "Generate a deterministic, realistic booking log (same seed, same log) and produce it,\n"
    "keyed by practitioner and lz4-compressed, into Kafka, or write it to a file as\n"
    "KEY<TAB>VALUE lines (for kcat -K'\\t').\n"
    "\n"
    "  --brokers LIST        Kafka bootstrap servers (env READMODEL_BROKERS)\n"
    "  --topic NAME          topic (default booking.events)\n"
    "  --output FILE         write lines to FILE ('-' for stdout) instead of Kafka\n"
    "  --practitioners N     (default 300)\n"
    "  --days N              days of slots per practitioner (default 7)\n"
    "  --start-date DATE     first day, YYYY-MM-DD (default 2026-11-23)\n"
    "  --seed N              (default 1)\n"
    "  --invalid-ratio R     share of invalid events, 0..1 (default 0.01)\n"
    "  --ignored-ratio R     share of unknown-type events, 0..1 (default 0.005)\n"
    "  --kafka KEY=VALUE     librdkafka producer property (repeatable)\n"
    "  -h, --help            this help\n";

static int parse_ratio(const char *what, const char *v, double *out) {
    char *end;
    double r = strtod(v, &end);
    if (end == v || *end || !(r >= 0 && r <= 1)) {
        fprintf(stderr, "readmodel gen: %s: must be a number 0..1 (got '%s')\n", what, v);
        return -1;
    }
    *out = r;
    return 0;
}

static rd_kafka_t *gen_producer(const char *brokers, char **props, int nprops) {
    char err[512];
    const rm_kafka_prop_t defaults[] = {{"bootstrap.servers", brokers},
                                        {"compression.codec", "lz4"},
                                        {"enable.idempotence", "true"},
                                        {"linger.ms", "20"},
                                        {"queue.buffering.max.messages", "1000000"}};
    rd_kafka_t *rk =
        rm_kafka_new(RD_KAFKA_PRODUCER, defaults, sizeof(defaults) / sizeof(defaults[0]), props,
                     (size_t)nprops, NULL, NULL, err, sizeof(err));
    if (!rk)
        fprintf(stderr, "readmodel gen: %s\n", err);
    return rk;
}

int rm_cmd_gen(int argc, char **argv) {
    static const struct option opts[] = {{"brokers", required_argument, NULL, 'B'},
                                         {"topic", required_argument, NULL, 't'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"practitioners", required_argument, NULL, 'p'},
                                         {"days", required_argument, NULL, 'd'},
                                         {"start-date", required_argument, NULL, 's'},
                                         {"seed", required_argument, NULL, 'S'},
                                         {"invalid-ratio", required_argument, NULL, 'i'},
                                         {"ignored-ratio", required_argument, NULL, 'g'},
                                         {"kafka", required_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    rm_gen_config_t cfg = {
        .seed = 1, .practitioners = 300, .days = 7, .invalid_ratio = 0.01, .ignored_ratio = 0.005};
    rm_date_parse("2026-11-23", 10, &cfg.start_day);
    const char *brokers = getenv("READMODEL_BROKERS"), *topic = "booking.events", *output = NULL;
    char *props[64];
    int nprops = 0, c;
    long n;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(gen_usage, stdout);
            return 0;
        case 'B':
            brokers = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 'p':
            if (parse_long("--practitioners", optarg, 1, 10000000, &n))
                return 2;
            cfg.practitioners = (int)n;
            break;
        case 'd':
            if (parse_long("--days", optarg, 1, 3650, &n))
                return 2;
            cfg.days = (int)n;
            break;
        case 's':
            if (!rm_date_parse(optarg, strlen(optarg), &cfg.start_day)) {
                fprintf(stderr,
                        "readmodel gen: --start-date: expected YYYY-MM-DD in 2000..2099 "
                        "(got '%s')\n",
                        optarg);
                return 2;
            }
            break;
        case 'S':
            if (parse_long("--seed", optarg, 0, 0x7fffffffL, &n))
                return 2;
            cfg.seed = (uint64_t)n;
            break;
        case 'i':
            if (parse_ratio("--invalid-ratio", optarg, &cfg.invalid_ratio))
                return 2;
            break;
        case 'g':
            if (parse_ratio("--ignored-ratio", optarg, &cfg.ignored_ratio))
                return 2;
            break;
        case 'k':
            if (nprops < 64)
                props[nprops++] = optarg;
            break;
        default:
            fprintf(stderr, "readmodel gen: bad option '%s' (see --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (!output && (!brokers || !*brokers)) {
        fprintf(stderr, "readmodel gen: --brokers: required unless --output is given\n");
        return 2;
    }
    rm_gen_t *g = rm_gen_new(&cfg);
    if (!g) {
        fprintf(stderr, "readmodel gen: --days: the last day must be on or before 2099-12-31\n");
        return 2;
    }
    FILE *out = NULL;
    rd_kafka_t *rk = NULL;
    if (output) {
        out = strcmp(output, "-") == 0 ? stdout : fopen(output, "w");
        if (!out) {
            fprintf(stderr, "readmodel gen: --output %s: %s\n", output, strerror(errno));
            rm_gen_free(g);
            return 1;
        }
    } else if (!(rk = gen_producer(brokers, props, nprops))) {
        rm_gen_free(g);
        return 2;
    }
    rm_gen_msg_t m;
    unsigned long long total = 0, invalid = 0;
    int rc = 0;
    while (rm_running() && rm_gen_next(g, &m)) {
        total++;
        invalid += m.invalid;
        if (out) {
            fprintf(out, "%.*s\t%.*s\n", (int)m.key_len, m.key, (int)m.value_len, m.value);
            continue;
        }
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY(m.key, m.key_len),
                RD_KAFKA_V_VALUE((void *)(uintptr_t)m.value, m.value_len), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 50);
                continue;
            }
            if (err) {
                fprintf(stderr, "readmodel gen: produce: %s\n", rd_kafka_err2str(err));
                rc = 1;
            }
            break;
        }
        if (rc)
            break;
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
    rm_gen_free(g);
    rm_info("gen: %llu events (%llu invalid) %s %s", total, invalid,
            output ? "written to" : "produced to", output ? output : topic);
    return rc ? rc : rm_stopped_by_signal() ? 1 : 0;
}
