/*
 * Configuration of every command (serve, rebuild, verify, status, gen,
 * dev-kafka), from flags and the environment, described by one option table
 * (src/cli/config.c). Flags override the environment; the environment
 * overrides defaults. Parsing never exits: it returns an error naming the
 * setting, and main() turns that into exit 2.
 *
 * Thread-safety: rm_config_parse is not thread-safe (it uses getopt and
 * sets the process's log level and format); call it once from main. A
 * parsed rm_config_t is read-only afterwards and may be shared by threads.
 */
#ifndef READMODEL_CONFIG_H
#define READMODEL_CONFIG_H

#include "readmodel/gen.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct {
    char *brokers;
    char *topic;
    char *group;
    char *redis_url;
    char *redis_prefix; /* at most RM_REDIS_PREFIX_MAX bytes */
    /* TLS to Redis (rediss://): CA bundle (NULL: the system's), client
     * certificate and key, the name to verify (NULL: the host). */
    char *redis_ca_file, *redis_cert_file, *redis_key_file, *redis_tls_server_name;
    char *dlq_topic; /* NULL: invalid events are only counted and logged */
    int workers;
    char **kafka; /* "key=value" librdkafka properties, applied last */
    size_t n_kafka;
    size_t max_batch;       /* messages per batch */
    size_t cache_limit;     /* practitioners kept in memory per worker */
    bool until_caught_up;   /* exit 0 once every partition is applied to its end */
    int shutdown_timeout_s; /* how long a stop may wait for an unreachable sink */
    bool check_config;      /* only validate and print the configuration */
    char *metrics_addr;     /* host:port of /metrics, /livez, /readyz; NULL: off */

    /* rebuild / verify / status */
    char *target;         /* redis | opensearch | all */
    bool from_beginning;  /* rebuild: required, the only mode */
    bool allow_truncated; /* rebuild/verify: accept partitions starting above offset 0 */
    bool dry_run;         /* rebuild: print the plan only */
    bool flush;           /* rebuild: drop the model first (the seed runbook) */
    bool yes;             /* rebuild --flush: confirmed */
    int lease_ttl_ms;     /* rebuild: lease expiry, renewed at a third of it */
    char *output_format;  /* rebuild --dry-run / verify / status: "text" or "json" */

    /* OpenSearch practitioner index (off when opensearch_url is NULL). */
    char *opensearch_url;
    char *opensearch_prefix;  /* index and alias name prefix, "" by default */
    char *opensearch_ca_file; /* PEM CA bundle */
    char *opensearch_cert_file, *opensearch_key_file; /* client certificate */
    char *opensearch_username, *opensearch_password;  /* from env or a file, never a flag */
    char *opensearch_aws_region;                      /* sign requests with AWS SigV4 */
    char *aws_key, *aws_secret, *aws_token;
    char *credentials_file; /* --opensearch-credentials-file, read at config time */
    size_t opensearch_bulk_docs, opensearch_bulk_bytes;
    bool keep_previous;   /* rebuild: keep the previous index generation */
    int previous_grace_s; /* rebuild: wait before deleting the previous generation */

    /* gen (also brokers, topic, kafka) */
    rm_gen_config_t gen; /* seed, practitioners, days, start day, ratios */
    char *output;        /* KEY<TAB>VALUE lines to this file ("-": stdout); NULL: Kafka */

    /* dev-kafka */
    char **topics; /* "NAME[:N]" (N checked to be 1..1024), created in that order */
    size_t n_topics;
    int partitions;    /* of booking.events, and of a topic without :N */
    int brokers_count; /* brokers in the mock cluster */
} rm_config_t;

/* Longest --redis-prefix: keys stay far below the key formatters' buffers. */
#define RM_REDIS_PREFIX_MAX 64

typedef enum { RM_CONFIG_OK, RM_CONFIG_HELP, RM_CONFIG_ERROR } rm_config_result_t;

typedef enum {
    RM_CMD_SERVE,
    RM_CMD_REBUILD,
    RM_CMD_VERIFY,
    RM_CMD_STATUS,
    RM_CMD_GEN,
    RM_CMD_DEV_KAFKA
} rm_command_t;

/* Parses the arguments of `cmd` (argv[0] is the command name) into *cfg,
 * which owns its strings afterwards: free with rm_config_free, whatever the
 * result. A flag that belongs to another command is an error. On
 * RM_CONFIG_ERROR, err holds one line (control characters escaped) such as
 * "--workers: must be a whole number 1..256 (got '0')"; it never contains a
 * secret. Sets the process's log level and format (--log-level,
 * --log-format, or their defaults). Uses getopt: not thread-safe. */
rm_config_result_t rm_config_parse(rm_command_t cmd, int argc, char **argv, rm_config_t *cfg,
                                   char *err, size_t errlen);
/* Frees what cfg owns and zeroes it; safe on a zeroed or freed cfg. */
void rm_config_free(rm_config_t *cfg);
/* Writes the effective configuration, secrets masked, one setting a line. */
void rm_config_print(const rm_config_t *cfg, FILE *out);
/* --check-config's Redis check, after the static checks passed: asks the
 * configured Redis once (at most about 2 s, in a child process) and writes
 * its mode to out: "redis-mode=single server HOST:PORT", or
 * "redis-mode=cluster of N master(s)" and a "redis-master=..." line per
 * master, or "redis-mode=unknown (not reached: REASON)". Returns 0 then
 * (an unreachable server does not fail a static check), or -1 with one
 * line in err when the server refuses the configuration (credentials,
 * ACL, TLS certificate or name, database on a cluster): a configuration
 * error. No password is written. Does nothing (0) for a command that does
 * not use Redis (--target opensearch, gen, dev-kafka). Forks: call it from
 * the main thread before other threads start. */
int rm_config_check_redis(rm_command_t cmd, const rm_config_t *cfg, FILE *out, char *err,
                          size_t errlen);
/* --help text of each command: prose around the option lines of the table.
 * A static string, built on the first call (not thread-safe then). */
const char *rm_usage(rm_command_t cmd);
/* `readmodel --help`: the commands with one line each. Static, built on the
 * first call (not thread-safe then). */
const char *rm_usage_main(void);
/* The man page readmodel(1) in roff, and a bash completion script, written
 * to out; both generated from the option table and the --help prose, so
 * they list exactly what the parser takes. Not thread-safe (they call
 * rm_usage); errors of out are the caller's to check (ferror). */
void rm_usage_man(FILE *out);
void rm_usage_bash_completion(FILE *out);

#endif
