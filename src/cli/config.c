/*
 * Configuration of every command from one option table (options.h), in the
 * manner of kcat's defaults and haproxy's metric descriptors: each row says
 * which flag and environment variable set which field of rm_config_t, for
 * which commands, with which bounds, default and help line. The table is
 * read by four loops and nothing else:
 *   - parsing: defaults, then the environment, then flags (getopt_long, so
 *     --name=value and unambiguous abbreviations work as before);
 *   - per-command validation: a flag whose row does not name the command is
 *     "--x is not an option of status";
 *   - --help: the option lines of each command, between prose kept as text;
 *   - --check-config: rm_config_print, secrets masked (then
 *     rm_config_check_redis in config_check.c asks Redis for its mode).
 * Checks that involve several options, files or other libraries (URLs,
 * librdkafka properties, PEM files, credentials) run after parsing, in
 * validate_*(). Every error is one line naming the setting; values are
 * echoed with control characters escaped, secrets never.
 */
#include "options.h"
#include "readmodel/cpus.h"
#include "readmodel/date.h"
#include "readmodel/kafka.h"
#include "readmodel/log.h"
#include "readmodel/redis_url.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- commands and the prose of their --help ---------------------------- */

static const char *const command_names[RM_N_COMMANDS] = {"serve",  "rebuild", "verify",
                                                         "status", "gen",     "dev-kafka"};

const char *rm_command_name(rm_command_t cmd) {
    return (unsigned)cmd < RM_N_COMMANDS ? command_names[cmd] : "?";
}

/* Text before and after each command's option lines. */

/* ---- small helpers -------------------------------------------------------- */

#define FIELD(cfg, o, type)  ((type *)(void *)((char *)(cfg) + (o)->offset))
#define CFIELD(cfg, o, type) ((const type *)(const void *)((const char *)(cfg) + (o)->offset))
typedef char *str_t; /* CFIELD(cfg, o, str_t) is a char *const * */

int rm_opt_parse_long(const char *who, const char *v, long min, long max, long *out, char *err,
                      size_t errlen) {
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        snprintf(err, errlen, "%s: must be a whole number %ld..%ld (got '%s')", who, min, max, v);
        return -1;
    }
    *out = n;
    return 0;
}

/* Rewrites err so that it is one line: control characters (a value echoed
 * from a flag may hold a newline) become \n, \r, \t or \xHH. */
static void one_line(char *err, size_t errlen) {
    char tmp[1024];
    size_t j = 0;
    for (const unsigned char *p = (const unsigned char *)err; *p && j + 5 < sizeof(tmp); p++) {
        if (*p >= 0x20 && *p != 0x7f)
            tmp[j++] = (char)*p;
        else if (*p == '\n' || *p == '\r' || *p == '\t')
            j += (size_t)snprintf(tmp + j, 3, "\\%c", *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't');
        else
            j += (size_t)snprintf(tmp + j, 5, "\\x%02x", *p);
    }
    tmp[j] = '\0';
    snprintf(err, errlen, "%s", tmp);
}

/* "a|b|c" as "a, b or c". */
static void choices_text(const char *choices, char *out, size_t cap) {
    size_t j = 0;
    const char *last = strrchr(choices, '|');
    for (const char *p = choices; *p && j + 5 < cap; p++) {
        if (*p != '|') {
            out[j++] = *p;
            continue;
        }
        const char *sep = p == last ? " or " : ", ";
        memcpy(out + j, sep, strlen(sep));
        j += strlen(sep);
    }
    out[j] = '\0';
}

/* Index of v among o->choices, or -1 with "<who>: must be a, b or c (got 'v')". */
static int choice_index(const rm_opt_t *o, const char *v, const char *who, char *err,
                        size_t errlen) {
    size_t vl = strlen(v);
    int i = 0;
    for (const char *p = o->choices;; i++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == vl && strncmp(p, v, len) == 0)
            return i;
        if (!bar)
            break;
        p = bar + 1;
    }
    char list[128];
    choices_text(o->choices, list, sizeof(list));
    snprintf(err, errlen, "%s: must be %s (got '%s')", who, list, v);
    return -1;
}

/* ---- setters, one per kind, and the custom ones ------------------------- */

static int set_string(const rm_opt_t *o, rm_config_t *cfg, const char *v, const char *who,
                      char *err, size_t errlen) {
    if (!*v && !(o->flags & RM_OPT_EMPTY_OK)) {
        snprintf(err, errlen, "%s: must not be empty", who);
        return -1;
    }
    if (o->max > 0 && strlen(v) > (size_t)o->max) {
        snprintf(err, errlen, "%s: at most %ld bytes (got %zu)", who, o->max, strlen(v));
        return -1;
    }
    if (o->kind == RM_OPT_CHOICE && choice_index(o, v, who, err, errlen) < 0)
        return -1;
    return rm_cli_set_str(FIELD(cfg, o, char *), v) ? rm_cli_nomem(err, errlen) : 0;
}

static int set_number(const rm_opt_t *o, rm_config_t *cfg, const char *v, const char *who,
                      char *err, size_t errlen) {
    long n;
    if (rm_opt_parse_long(who, v, o->min, o->max, &n, err, errlen))
        return -1;
    if (o->kind == RM_OPT_INT)
        *FIELD(cfg, o, int) = (int)n;
    else
        *FIELD(cfg, o, size_t) = (size_t)n;
    return 0;
}

static int set_ratio(const rm_opt_t *o, rm_config_t *cfg, const char *v, const char *who, char *err,
                     size_t errlen) {
    char *end;
    double r = strtod(v, &end);
    if (end == v || *end || !(r >= 0 && r <= 1)) {
        snprintf(err, errlen, "%s: must be a number 0..1 (got '%s')", who, v);
        return -1;
    }
    *FIELD(cfg, o, double) = r;
    return 0;
}

static int set_list(const rm_opt_t *o, rm_config_t *cfg, const char *v, const char *who, char *err,
                    size_t errlen) {
    if (o->check && o->check(who, v, err, errlen))
        return -1;
    char ***list = FIELD(cfg, o, char **);
    size_t *n = (size_t *)(void *)((char *)cfg + o->count_offset);
    char **l = realloc(*list, (*n + 1) * sizeof(*l));
    if (!l)
        return rm_cli_nomem(err, errlen);
    *list = l;
    if (!(l[*n] = strdup(v)))
        return rm_cli_nomem(err, errlen);
    (*n)++;
    return 0;
}

static int set_value(const rm_opt_t *o, rm_config_t *cfg, const char *v, const char *who, char *err,
                     size_t errlen) {
    switch (o->kind) {
    case RM_OPT_STRING:
    case RM_OPT_SECRET:
    case RM_OPT_FILE:
    case RM_OPT_CHOICE:
        return set_string(o, cfg, v, who, err, errlen);
    case RM_OPT_INT:
    case RM_OPT_SIZE:
        return set_number(o, cfg, v, who, err, errlen);
    case RM_OPT_RATIO:
        return set_ratio(o, cfg, v, who, err, errlen);
    case RM_OPT_BOOL:
        *FIELD(cfg, o, bool) = true;
        return 0;
    case RM_OPT_LIST:
        return set_list(o, cfg, v, who, err, errlen);
    case RM_OPT_CUSTOM:
        return o->set(o, cfg, v, who, err, errlen);
    case RM_OPT_HELP:
        break;
    }
    return 0;
}

static int set_log_format(const rm_opt_t *o, rm_config_t *cfg, const char *v, const char *who,
                          char *err, size_t errlen) {
    (void)cfg;
    int i = choice_index(o, v, who, err, errlen);
    if (i < 0)
        return -1;
    rm_log_set_json(i == 1);
    return 0;
}

static int set_log_level(const rm_opt_t *o, rm_config_t *cfg, const char *v, const char *who,
                         char *err, size_t errlen) {
    (void)cfg;
    rm_log_level_t lvl;
    if (choice_index(o, v, who, err, errlen) < 0 || !rm_log_parse_level(v, &lvl))
        return -1;
    rm_log_set_level(lvl);
    return 0;
}

static int set_start_date(const rm_opt_t *o, rm_config_t *cfg, const char *v, const char *who,
                          char *err, size_t errlen) {
    (void)o;
    if (!rm_date_parse(v, strlen(v), &cfg->gen.start_day)) {
        snprintf(err, errlen, "%s: expected YYYY-MM-DD in 2000..2099 (got '%s')", who, v);
        return -1;
    }
    return 0;
}

static int set_seed(const rm_opt_t *o, rm_config_t *cfg, const char *v, const char *who, char *err,
                    size_t errlen) {
    long n;
    if (rm_opt_parse_long(who, v, o->min, o->max, &n, err, errlen))
        return -1;
    cfg->gen.seed = (uint64_t)n;
    return 0;
}

/* --kafka KEY=VALUE; the value may be a secret, so it is never echoed. */
static int check_kafka_prop(const char *who, const char *v, char *err, size_t errlen) {
    const char *eq = strchr(v, '=');
    if (!eq || eq == v) {
        snprintf(err, errlen, "%s: expected KEY=VALUE (the value is not shown)", who);
        return -1;
    }
    return 0;
}

/* dev-kafka --topic NAME[:N] */
static int check_topic_spec(const char *who, const char *v, char *err, size_t errlen) {
    const char *colon = strrchr(v, ':');
    if (!*v || colon == v) {
        snprintf(err, errlen, "%s: expected NAME[:N] (got '%s')", who, v);
        return -1;
    }
    char what[64];
    long n;
    snprintf(what, sizeof(what), "%s partitions", who);
    return colon ? rm_opt_parse_long(what, colon + 1, 1, 1024, &n, err, errlen) : 0;
}

/* ---- --check-config lines ------------------------------------------------- */

static void print_default(const rm_opt_t *o, const rm_config_t *cfg, FILE *out) {
    switch (o->kind) {
    case RM_OPT_INT:
        fprintf(out, "%s=%d\n", o->name, *CFIELD(cfg, o, int));
        break;
    case RM_OPT_SIZE:
        fprintf(out, "%s=%zu\n", o->name, *CFIELD(cfg, o, size_t));
        break;
    case RM_OPT_BOOL:
        fprintf(out, "%s=%s\n", o->name, *CFIELD(cfg, o, bool) ? "true" : "false");
        break;
    case RM_OPT_RATIO:
        fprintf(out, "%s=%g\n", o->name, *CFIELD(cfg, o, double));
        break;
    default: {
        const char *v = *CFIELD(cfg, o, str_t);
        fprintf(out, "%s=%s\n", o->name,
                !v                         ? (o->unset ? o->unset : "")
                : o->kind == RM_OPT_SECRET ? "***"
                                           : v);
    }
    }
}

static void print_group(const rm_opt_t *o, const rm_config_t *cfg, FILE *out) {
    fprintf(out, "%s=%s (Redis pipeline: %s-redis)\n", o->name, cfg->group, cfg->group);
}

static void print_redis(const rm_opt_t *o, const rm_config_t *cfg, FILE *out) {
    rm_redis_url_t u;
    char err[200], redacted[512] = "(invalid)";
    int tls = 0;
    if (cfg->redis_url && rm_redis_url_parse(cfg->redis_url, &u, err, sizeof(err)) == 0) {
        rm_redis_url_redacted(&u, redacted, sizeof(redacted));
        tls = u.tls;
        rm_redis_url_free(&u);
    }
    fprintf(out, "%s=%s\n", o->name, redacted);
    /* redis-mode= comes from the server (rm_config_check_redis); the
     * chart test (kubecheck) looks for "TLS on" */
    fprintf(out, "redis-transport=TLS %s\n",
            tls ? "on, server certificate and name verified" : "off");
}

/* A librdkafka property whose value is a secret. */
static bool secret_key(const char *kv) {
    static const char *const words[] = {"password", "secret", "sasl.oauthbearer.config", "key.pem",
                                        "token"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(kv, words[i]) && strchr(kv, '=') > strstr(kv, words[i]))
            return true;
    return false;
}

static void print_kafka(const rm_opt_t *o, const rm_config_t *cfg, FILE *out) {
    (void)o;
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        const char *eq = strchr(cfg->kafka[i], '=');
        if (secret_key(cfg->kafka[i]))
            fprintf(out, "kafka.%.*s=***\n", (int)(eq - cfg->kafka[i]), cfg->kafka[i]);
        else
            fprintf(out, "kafka.%s\n", cfg->kafka[i]);
    }
}

static void print_opensearch(const rm_opt_t *o, const rm_config_t *cfg, FILE *out) {
    if (cfg->opensearch_url)
        fprintf(out, "%s=%s (pipeline: %s-opensearch)\n", o->name, cfg->opensearch_url, cfg->group);
    else
        fprintf(out, "%s=off\n", o->name);
}

static void print_auth(const rm_opt_t *o, const rm_config_t *cfg, FILE *out) {
    (void)o;
    if (cfg->opensearch_aws_region)
        fprintf(out, "opensearch-auth=aws-sigv4 region %s\n", cfg->opensearch_aws_region);
    else if (cfg->opensearch_username)
        fprintf(out, "opensearch-auth=basic user %s password ***\n", cfg->opensearch_username);
    else
        fprintf(out, "opensearch-auth=none\n");
}

/* ---- the table -------------------------------------------------------- */

#define SERVE   RM_ON(RM_CMD_SERVE)
#define REBUILD RM_ON(RM_CMD_REBUILD)
#define VERIFY  RM_ON(RM_CMD_VERIFY)
#define STATUS  RM_ON(RM_CMD_STATUS)
#define GEN     RM_ON(RM_CMD_GEN)
#define DEVK    RM_ON(RM_CMD_DEV_KAFKA)
#define ALL4    (SERVE | REBUILD | VERIFY | STATUS)
#define NOSTAT  (SERVE | REBUILD | VERIFY)
#define OFF(f)  .offset = offsetof(rm_config_t, f)

static const rm_opt_t options[] = {
    {"brokers", "LIST", "READMODEL_BROKERS", ALL4, RM_OPT_STRING, OFF(brokers),
     .flags = RM_OPT_PRINT, .help = "Kafka bootstrap servers; required"},
    {"brokers", "LIST", "READMODEL_BROKERS", GEN, RM_OPT_STRING, OFF(brokers),
     .help = "Kafka bootstrap servers; required unless --output is given"},
    {"topic", "NAME", NULL, ALL4 | GEN, RM_OPT_STRING, OFF(topic), .def = "booking.events",
     .flags = RM_OPT_PRINT, .help = "booking event topic"},
    {"topic", "NAME[:N]", NULL, DEVK, RM_OPT_LIST, OFF(topics),
     .count_offset = offsetof(rm_config_t, n_topics), .check = check_topic_spec,
     .help = "create a topic with N partitions (repeatable; default booking.events with "
             "--partitions)"},
    {"group", "NAME", NULL, NOSTAT, RM_OPT_STRING, OFF(group), .def = "readmodel",
     .print = print_group, .flags = RM_OPT_PRINT,
     .help = "consumer group prefix; the Redis pipeline uses NAME-redis, the OpenSearch one "
             "NAME-opensearch"},
    {"redis", "URL", "READMODEL_REDIS_URL", ALL4, RM_OPT_STRING, OFF(redis_url),
     .def = "redis://127.0.0.1:6379", .print = print_redis, .flags = RM_OPT_PRINT,
     .help = "redis[s]://[[user]:password@]host[:port][/db] or unix:///path.sock; one server "
             "or any node of a Redis Cluster (found out from the server)"},
    {"redis-prefix", "P", "READMODEL_REDIS_PREFIX", ALL4, RM_OPT_STRING, OFF(redis_prefix),
     .max = RM_REDIS_PREFIX_MAX, .def = "rm:", .flags = RM_OPT_PRINT,
     .help = "key prefix: at most 64 bytes, no spaces or braces"},
    /* Redis over TLS (rediss://), issue 19. */
    {"redis-ca-file", "F", "READMODEL_REDIS_CA_FILE", ALL4, RM_OPT_FILE, OFF(redis_ca_file),
     .unset = "(system CAs)", .flags = RM_OPT_PRINT,
     .help = "PEM CA bundle to verify the Redis server's certificate (rediss:// only)"},
    {"redis-cert-file", "F", "READMODEL_REDIS_CERT_FILE", ALL4, RM_OPT_FILE, OFF(redis_cert_file),
     .unset = "(none)", .flags = RM_OPT_PRINT,
     .help = "client certificate (PEM) for Redis, with --redis-key-file"},
    {"redis-key-file", "F", "READMODEL_REDIS_KEY_FILE", ALL4, RM_OPT_FILE, OFF(redis_key_file),
     .help = "the Redis client certificate's private key (PEM)"},
    {"redis-tls-server-name", "NAME", "READMODEL_REDIS_TLS_SERVER_NAME", ALL4, RM_OPT_STRING,
     OFF(redis_tls_server_name), .unset = "(the host connected to)", .flags = RM_OPT_PRINT,
     .help = "name the Redis server certificate must carry (default: the host of each node)"},
    {"workers", "N", NULL, NOSTAT, RM_OPT_INT, OFF(workers), .min = 1, .max = 256,
     .flags = RM_OPT_PRINT,
     .help = "consumer threads, each owning its partitions (default: the CPUs this process may "
             "use: its affinity mask, capped by the cgroup CPU limit rounded up)"},
    {"dlq-topic", "NAME", NULL, SERVE, RM_OPT_STRING, OFF(dlq_topic), .unset = "(none)",
     .flags = RM_OPT_PRINT,
     .help = "produce invalid events there, unchanged, with headers reason, source_topic, "
             "source_partition, source_offset"},
    {"max-batch", "N", NULL, SERVE, RM_OPT_SIZE, OFF(max_batch), .min = 1, .max = 1000000,
     .def = "10000", .flags = RM_OPT_PRINT, .help = "messages per batch between flushes"},
    {"metrics-addr", "HOST:PORT", "READMODEL_METRICS_ADDR", SERVE, RM_OPT_STRING, OFF(metrics_addr),
     .def = "0.0.0.0:9464", .unset = "off",
     .flags = RM_OPT_EMPTY_OK | RM_OPT_PRINT | RM_OPT_OWN_DEFAULT,
     .help = "serve /metrics, /livez and /readyz there ('off' disables)"},
    {"metrics-addr", "HOST:PORT", NULL, REBUILD | VERIFY, RM_OPT_STRING, OFF(metrics_addr),
     .flags = RM_OPT_EMPTY_OK,
     .help = "serve /metrics (phase, progress, events/s) while running (default off; "
             "READMODEL_METRICS_ADDR is serve's only)"},
    {"cache-practitioners", "N", NULL, SERVE, RM_OPT_SIZE, OFF(cache_limit), .min = 1,
     .max = 100000000, .def = "100000", .flags = RM_OPT_PRINT,
     .help = "practitioners kept in memory per worker"},
    {"until-caught-up", NULL, NULL, SERVE, RM_OPT_BOOL, OFF(until_caught_up), .flags = RM_OPT_PRINT,
     .help = "exit 0 once the sink's checkpoints reach the end every partition had at start, "
             "whoever in the group applied them; 1 on a reset log or a sink that refuses the "
             "configuration"},
    {"shutdown-timeout", "S", NULL, SERVE, RM_OPT_INT, OFF(shutdown_timeout_s), .min = 0,
     .max = 3600, .def = "10", .flags = RM_OPT_PRINT,
     .help = "on SIGTERM, how long to keep retrying an unreachable sink before exiting 1 with "
             "the batch unwritten"},
    {"kafka", "KEY=VALUE", "READMODEL_KAFKA_", ALL4, RM_OPT_LIST, OFF(kafka),
     .count_offset = offsetof(rm_config_t, n_kafka), .check = check_kafka_prop,
     .print = print_kafka, .flags = RM_OPT_ENV_PREFIX | RM_OPT_PRINT,
     .help = "any librdkafka property (security.protocol, sasl.*, ssl.*); repeatable, applied "
             "last; from the environment READMODEL_KAFKA_SASL_PASSWORD is sasl.password, which "
             "keeps secrets out of ps"},
    {"kafka", "KEY=VALUE", NULL, GEN, RM_OPT_LIST, OFF(kafka),
     .count_offset = offsetof(rm_config_t, n_kafka), .check = check_kafka_prop,
     .help = "librdkafka producer property (repeatable)"},
    {"opensearch", "URL", "READMODEL_OPENSEARCH_URL", ALL4, RM_OPT_STRING, OFF(opensearch_url),
     .print = print_opensearch, .flags = RM_OPT_PRINT,
     .help = "also maintain the OpenSearch practitioner index there, as its own pipeline; "
             "http(s)://host[:port][/path]; unset: Redis only"},
    {"opensearch-index-prefix", "P", "READMODEL_OPENSEARCH_INDEX_PREFIX", ALL4, RM_OPT_STRING,
     OFF(opensearch_prefix), .flags = RM_OPT_EMPTY_OK | RM_OPT_PRINT | RM_OPT_IF_OPENSEARCH,
     .help = "prefix of the alias and index names, none by default: alias practitioners"},
    {"opensearch-ca-file", "F", NULL, ALL4, RM_OPT_FILE, OFF(opensearch_ca_file),
     .unset = "(system CAs)", .flags = RM_OPT_PRINT | RM_OPT_IF_OPENSEARCH,
     .help = "PEM CA bundle to verify the server's certificate"},
    {"opensearch-cert-file", "F", NULL, ALL4, RM_OPT_FILE, OFF(opensearch_cert_file),
     .unset = "(none)", .flags = RM_OPT_PRINT | RM_OPT_IF_OPENSEARCH,
     .help = "client certificate (PEM), with --opensearch-key-file"},
    {"opensearch-key-file", "F", NULL, ALL4, RM_OPT_FILE, OFF(opensearch_key_file),
     .help = "the client certificate's private key (PEM)"},
    {"opensearch-credentials-file", "F", "READMODEL_OPENSEARCH_CREDENTIALS_FILE", ALL4, RM_OPT_FILE,
     OFF(credentials_file),
     .help = "a file holding one line USER:PASSWORD for basic auth, never a flag value"},
    {NULL, NULL, "READMODEL_OPENSEARCH_USERNAME", ALL4, RM_OPT_STRING, OFF(opensearch_username),
     .help = "basic auth user, with READMODEL_OPENSEARCH_PASSWORD"},
    {NULL, NULL, "READMODEL_OPENSEARCH_PASSWORD", ALL4, RM_OPT_SECRET, OFF(opensearch_password),
     .help = "basic auth password"},
    {"opensearch-aws-region", "R", NULL, ALL4, RM_OPT_STRING, OFF(opensearch_aws_region),
     .print = print_auth, .flags = RM_OPT_PRINT | RM_OPT_IF_OPENSEARCH,
     .help = "sign requests with AWS SigV4 (Amazon OpenSearch Service); credentials from "
             "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"},
    {NULL, NULL, "AWS_ACCESS_KEY_ID", ALL4, RM_OPT_SECRET, OFF(aws_key),
     .help = "with --opensearch-aws-region"},
    {NULL, NULL, "AWS_SECRET_ACCESS_KEY", ALL4, RM_OPT_SECRET, OFF(aws_secret),
     .help = "with --opensearch-aws-region"},
    {NULL, NULL, "AWS_SESSION_TOKEN", ALL4, RM_OPT_SECRET, OFF(aws_token),
     .help = "with --opensearch-aws-region (temporary credentials)"},
    {"opensearch-bulk-docs", "N", NULL, NOSTAT, RM_OPT_SIZE, OFF(opensearch_bulk_docs), .min = 1,
     .max = 100000, .def = "1000", .flags = RM_OPT_PRINT | RM_OPT_IF_OPENSEARCH,
     .help = "documents per _bulk request"},
    {"opensearch-bulk-bytes", "N", NULL, NOSTAT, RM_OPT_SIZE, OFF(opensearch_bulk_bytes),
     .min = 1024, .max = 100L << 20, .def = "5242880", .flags = RM_OPT_PRINT | RM_OPT_IF_OPENSEARCH,
     .help = "bytes per _bulk request"},
    {"target", "redis|opensearch|all", NULL, REBUILD | VERIFY | STATUS, RM_OPT_CHOICE, OFF(target),
     .def = "redis", .choices = "redis|opensearch|all", .help = "the read model"},
    {"from-beginning", NULL, NULL, REBUILD, RM_OPT_BOOL, OFF(from_beginning),
     .help = "replay from the earliest offsets (required; the only mode)"},
    {"allow-truncated-history", NULL, NULL, REBUILD | VERIFY, RM_OPT_BOOL, OFF(allow_truncated),
     .help = "go on even when a partition starts above offset 0"},
    {"dry-run", NULL, NULL, REBUILD, RM_OPT_BOOL, OFF(dry_run),
     .help = "print the plan (partitions, offset ranges, events, truncated partitions) and "
             "change nothing"},
    {"flush", NULL, NULL, REBUILD, RM_OPT_BOOL, OFF(flush),
     .help = "the seed runbook: delete the model first, then replay (readers see an empty "
             "model until it is rebuilt); needs --yes"},
    {"yes", NULL, NULL, REBUILD, RM_OPT_BOOL, OFF(yes), .help = "confirm --flush"},
    {"lease-ttl", "MS", NULL, REBUILD, RM_OPT_INT, OFF(lease_ttl_ms), .min = 1000, .max = 3600000,
     .def = "30000", .help = "lease expiry, renewed every third of it"},
    {"keep-previous", NULL, NULL, REBUILD, RM_OPT_BOOL, OFF(keep_previous),
     .help = "opensearch: keep the previous index generation (rollback)"},
    {"previous-grace", "S", NULL, REBUILD, RM_OPT_INT, OFF(previous_grace_s), .min = 0,
     .max = 86400, .def = "60",
     .help = "opensearch: wait S seconds after the alias move before deleting the previous "
             "generation"},
    {"output", "FILE", NULL, GEN, RM_OPT_STRING, OFF(output),
     .help = "write lines to FILE ('-' for stdout) instead of Kafka"},
    {"practitioners", "N", NULL, GEN, RM_OPT_INT, OFF(gen.practitioners), .min = 1, .max = 10000000,
     .def = "300", .help = "practitioners in the log"},
    {"days", "N", NULL, GEN, RM_OPT_INT, OFF(gen.days), .min = 1, .max = 3650, .def = "7",
     .help = "days of slots per practitioner"},
    {"start-date", "DATE", NULL, GEN, RM_OPT_CUSTOM, .def = "2026-11-23", .set = set_start_date,
     .help = "first day, YYYY-MM-DD"},
    {"seed", "N", NULL, GEN, RM_OPT_CUSTOM, .min = 0, .max = 0x7fffffffL, .def = "1",
     .set = set_seed, .help = "same seed, same log"},
    {"invalid-ratio", "R", NULL, GEN, RM_OPT_RATIO, OFF(gen.invalid_ratio), .def = "0.01",
     .help = "share of invalid events, 0..1"},
    {"ignored-ratio", "R", NULL, GEN, RM_OPT_RATIO, OFF(gen.ignored_ratio), .def = "0.005",
     .help = "share of unknown-type events, 0..1"},
    {"partitions", "N", NULL, DEVK, RM_OPT_INT, OFF(partitions), .min = 1, .max = 1024, .def = "8",
     .help = "partitions of the default topic and of a topic without :N"},
    {"brokers-count", "N", NULL, DEVK, RM_OPT_INT, OFF(brokers_count), .min = 1, .max = 16,
     .def = "1", .help = "brokers in the cluster"},
    /* ---- operator (issue 16): machine-readable output ---- */
    {"output", "text|json", NULL, REBUILD | VERIFY | STATUS, RM_OPT_CHOICE, OFF(output_format),
     .def = "text", .choices = "text|json", .flags = RM_OPT_OWN_DEFAULT,
     .help = "json: print one JSON object on stdout at the end instead of text (rebuild: only "
             "with --dry-run; fields in docs/output-json.md)"},
    {"log-format", "text|json", NULL, ALL4, RM_OPT_CUSTOM, .def = "text", .choices = "text|json",
     .set = set_log_format, .flags = RM_OPT_OWN_DEFAULT, .help = "log lines as text or JSON"},
    {"log-level", "L", NULL, ALL4, RM_OPT_CUSTOM, .def = "info", .choices = "debug|info|warn|error",
     .set = set_log_level, .flags = RM_OPT_OWN_DEFAULT, .help = "debug, info, warn or error"},
    {"check-config", NULL, NULL, NOSTAT, RM_OPT_BOOL, OFF(check_config),
     .help = "validate, print the effective configuration (secrets masked) and the Redis "
             "mode (asks the server, at most 3 s); exit 0, or 2 on a bad configuration or one "
             "the server refuses (unreachable is not an error)"},
    {"help", NULL, NULL, ALL4 | GEN | DEVK, RM_OPT_HELP, .help = "this help"},
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

const rm_opt_t *rm_config_options(size_t *n) {
    *n = N_OPTIONS;
    return options;
}

/* ---- parsing: defaults, environment, flags -------------------------------- */

/* Every field's default (whatever the command, as one designated initializer
 * would), but a RM_OPT_OWN_DEFAULT row's only for its commands. */
static int apply_defaults(rm_command_t cmd, rm_config_t *cfg, char *err, size_t errlen) {
    cfg->workers = rm_cpus_available(); /* affinity and cgroup quota, not the node's cores */
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const rm_opt_t *o = &options[i];
        bool applies = (o->cmds & RM_ON(cmd)) || !(o->flags & RM_OPT_OWN_DEFAULT);
        if (applies && o->def && set_value(o, cfg, o->def, "default", err, errlen))
            return -1;
    }
    return 0;
}

/* <prefix><PROPERTY>=VALUE in the environment, each as "property=value"
 * (lower-cased, '_' read as '.'): READMODEL_KAFKA_SASL_PASSWORD is
 * sasl.password, so secrets can come from a Kubernetes Secret instead of a
 * flag that ps shows. In environ order, which is irrelevant: each property
 * appears once, and the flags, applied later, override them. */
static int apply_env_prefix(const rm_opt_t *o, rm_config_t *cfg, char *err, size_t errlen) {
    size_t plen = strlen(o->env);
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, o->env, plen) != 0 || !eq || eq == *e + plen)
            continue;
        char *kv = strdup(*e + plen), who[128];
        if (!kv)
            return rm_cli_nomem(err, errlen);
        for (char *c = kv; *c != '='; c++)
            *c = *c == '_' ? '.' : (char)tolower((unsigned char)*c);
        snprintf(who, sizeof(who), "%.*s", (int)(eq - *e), *e);
        int rc = set_value(o, cfg, kv, who, err, errlen);
        free(kv);
        if (rc)
            return -1;
    }
    return 0;
}

/* The environment variables of cmd's options; an empty one is unset. */
static int apply_env(rm_command_t cmd, rm_config_t *cfg, char *err, size_t errlen) {
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const rm_opt_t *o = &options[i];
        if (!o->env || !(o->cmds & RM_ON(cmd)))
            continue;
        if (o->flags & RM_OPT_ENV_PREFIX) {
            if (apply_env_prefix(o, cfg, err, errlen))
                return -1;
            continue;
        }
        const char *v = getenv(o->env);
        if (v && *v && set_value(o, cfg, v, o->env, err, errlen))
            return -1;
    }
    return 0;
}

/* getopt_long's table: the flags of cmd, val 256 + their row. Only cmd's,
 * so that an abbreviation is matched among them alone (--broker is
 * --brokers for serve, whatever dev-kafka's --brokers-count). NULL on
 * ENOMEM; the caller frees. */
static struct option *long_options(rm_command_t cmd) {
    struct option *lo = calloc(N_OPTIONS + 1, sizeof(*lo));
    size_t k = 0;
    for (size_t i = 0; lo && i < N_OPTIONS; i++) {
        const rm_opt_t *o = &options[i];
        if (!o->name || !(o->cmds & RM_ON(cmd)))
            continue;
        bool no_value = o->kind == RM_OPT_BOOL || o->kind == RM_OPT_HELP;
        lo[k++] = (struct option){o->name, no_value ? no_argument : required_argument, NULL,
                                  o->kind == RM_OPT_HELP ? 'h' : 256 + (int)i};
    }
    return lo;
}

/* The error for a flag cmd does not know: another command's (named in full,
 * or abbreviated as getopt allows), or unknown. */
static void unknown_flag(rm_command_t cmd, const char *arg, char *err, size_t errlen) {
    const char *name = command_names[cmd], *match = NULL;
    size_t len = strncmp(arg, "--", 2) == 0 ? strcspn(arg + 2, "=") : 0;
    bool ambiguous = false;
    for (size_t i = 0; len && i < N_OPTIONS; i++) {
        const char *o = options[i].name;
        if (!o || strncmp(o, arg + 2, len) != 0)
            continue;
        if (strlen(o) == len) { /* an exact name wins */
            match = o;
            ambiguous = false;
            break;
        }
        ambiguous = ambiguous || (match && strcmp(match, o) != 0);
        match = match ? match : o;
    }
    if (match && !ambiguous)
        snprintf(err, errlen, "--%s is not an option of %s (see readmodel %s --help)", match, name,
                 name);
    else
        snprintf(err, errlen, "unknown option '%s' (see readmodel %s --help)", arg, name);
}

/* Whether tok, which getopt took for o, is the full name of another option
 * (dev-kafka's --brokers-count must not answer to --brokers). */
static bool abbreviates_another(const rm_opt_t *o, const char *tok) {
    if (strncmp(tok, "--", 2) != 0)
        return false;
    size_t len = strcspn(tok + 2, "=");
    for (size_t i = 0; len != strlen(o->name) && i < N_OPTIONS; i++)
        if (options[i].name && strlen(options[i].name) == len &&
            strncmp(options[i].name, tok + 2, len) == 0)
            return true;
    return false;
}

static rm_config_result_t parse_flags(rm_command_t cmd, int argc, char **argv,
                                      const struct option *lo, rm_config_t *cfg, char *err,
                                      size_t errlen) {
    const char *name = command_names[cmd];
    int c;
    optind = 0; /* GNU getopt: start afresh, argv may differ from the last call's */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (c == 'h')
            return RM_CONFIG_HELP;
        if (c == ':') {
            snprintf(err, errlen, "%s: needs a value", argv[optind - 1]);
            return RM_CONFIG_ERROR;
        }
        if (c < 256) {
            unknown_flag(cmd, argv[optind - 1], err, errlen);
            return RM_CONFIG_ERROR;
        }
        const rm_opt_t *o = &options[c - 256];
        bool takes_value = o->kind != RM_OPT_BOOL && o->kind != RM_OPT_HELP;
        const char *tok = argv[optind - (takes_value && optarg == argv[optind - 1] ? 2 : 1)];
        if (abbreviates_another(o, tok)) {
            unknown_flag(cmd, tok, err, errlen);
            return RM_CONFIG_ERROR;
        }
        char who[64];
        snprintf(who, sizeof(who), "--%s", o->name);
        if (set_value(o, cfg, optarg, who, err, errlen))
            return RM_CONFIG_ERROR;
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (see readmodel %s --help)", argv[optind],
                 name);
        return RM_CONFIG_ERROR;
    }
    return RM_CONFIG_OK;
}

/* ---- the public functions ----------------------------------------------- */

rm_config_result_t rm_config_parse(rm_command_t cmd, int argc, char **argv, rm_config_t *cfg,
                                   char *err, size_t errlen) {
    *cfg = (rm_config_t){0};
    if ((unsigned)cmd >= RM_N_COMMANDS) {
        snprintf(err, errlen, "unknown command");
        return RM_CONFIG_ERROR;
    }
    rm_config_result_t r = RM_CONFIG_ERROR;
    struct option *lo = NULL;
    if (apply_defaults(cmd, cfg, err, errlen) || apply_env(cmd, cfg, err, errlen))
        goto out;
    if (!(lo = long_options(cmd))) {
        rm_cli_nomem(err, errlen);
        goto out;
    }
    r = parse_flags(cmd, argc, argv, lo, cfg, err, errlen);
    if (r == RM_CONFIG_OK && rm_config_validate(cmd, cfg, err, errlen))
        r = RM_CONFIG_ERROR;
out:
    free(lo);
    if (r == RM_CONFIG_ERROR)
        one_line(err, errlen);
    return r;
}

void rm_config_free(rm_config_t *cfg) {
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const rm_opt_t *o = &options[i];
        if (o->kind == RM_OPT_LIST) {
            char ***list = FIELD(cfg, o, char **);
            size_t *n = (size_t *)(void *)((char *)cfg + o->count_offset);
            for (size_t j = 0; j < *n; j++)
                free((*list)[j]);
            free(*list);
            *list = NULL; /* two rows may share a field */
            *n = 0;
        } else if (o->kind == RM_OPT_STRING || o->kind == RM_OPT_SECRET || o->kind == RM_OPT_FILE ||
                   o->kind == RM_OPT_CHOICE) {
            free(*FIELD(cfg, o, char *));
            *FIELD(cfg, o, char *) = NULL;
        }
    }
    memset(cfg, 0, sizeof(*cfg));
}

void rm_config_print(const rm_config_t *cfg, FILE *out) {
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const rm_opt_t *o = &options[i];
        if (!(o->flags & RM_OPT_PRINT) ||
            ((o->flags & RM_OPT_IF_OPENSEARCH) && !cfg->opensearch_url))
            continue;
        if (o->print)
            o->print(o, cfg, out);
        else
            print_default(o, cfg, out);
    }
}
