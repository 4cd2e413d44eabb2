/*
 * serve configuration: defaults in one designated initializer, then the
 * environment, then flags (getopt_long). Every value is checked here so a
 * bad setting fails at startup with one line naming it.
 */
#include "readmodel/config.h"
#include "readmodel/log.h"
#include "readmodel/redis_url.h"
#include "readmodel/kafka.h"

#include <ctype.h>
#include <errno.h>
#include <curl/curl.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char serve_usage[] =
    "Usage: readmodel serve [options]\n"
    "\n"
    "Consume the booking log and keep the Redis availability bitmaps (and, with --opensearch,\n"
    "the OpenSearch practitioner index) in step with it. Each target is its own pipeline:\n"
    "one being down or slow never delays the other.\n"
    "\n"
    "Options (flags override the environment):\n"
    "  --brokers LIST          Kafka bootstrap servers (env READMODEL_BROKERS; required)\n"
    "  --topic NAME            booking event topic (default booking.events)\n"
    "  --group NAME            consumer group prefix; the Redis pipeline uses NAME-redis\n"
    "                          (default readmodel)\n"
    "  --redis URL             redis://[[user]:password@]host[:port][/db] or unix:///path.sock\n"
    "                          (env READMODEL_REDIS_URL; default redis://127.0.0.1:6379)\n"
    "  --redis-prefix P        key prefix (default rm:)\n"
    "  --workers N             consumer threads, each owning its partitions\n"
    "                          (default: number of cores)\n"
    "  --dlq-topic NAME        produce invalid events there, unchanged, with headers\n"
    "                          reason, source_topic, source_partition, source_offset\n"
    "  --kafka KEY=VALUE       any librdkafka property (security.protocol, sasl.*, ssl.*);\n"
    "                          repeatable, applied last; from the environment as\n"
    "                          READMODEL_KAFKA_<PROPERTY> (READMODEL_KAFKA_SASL_PASSWORD\n"
    "                          is sasl.password): keeps secrets out of ps\n"
    "  --max-batch N           messages per batch between flushes (default 10000)\n"
    "  --cache-practitioners N practitioners kept in memory per worker (default 100000)\n"
    "  --until-caught-up       exit 0 once every partition of the topic is applied to its\n"
    "                          end by this process (for one process, as in the demo)\n"
    "  --shutdown-timeout S    on SIGTERM, how long to keep retrying an unreachable sink\n"
    "                          before exiting 1 with the batch unwritten (default 10)\n"
    "  --log-format text|json  (default text)\n"
    "  --log-level L           debug, info, warn or error (default info)\n"
    "  --metrics-addr HOST:PORT  serve /metrics, /livez and /readyz there\n"
    "                          (env READMODEL_METRICS_ADDR; default 0.0.0.0:9464; 'off' disables)\n"
    "  --opensearch URL        also maintain the OpenSearch practitioner index there, as its\n"
    "                          own pipeline (group NAME-opensearch); http(s)://host:port\n"
    "                          (env READMODEL_OPENSEARCH_URL; unset: Redis only)\n"
    "  --opensearch-index-prefix P  prefix of the alias and index names (default none:\n"
    "                          alias practitioners)\n"
    "  --opensearch-ca-file F  PEM CA bundle to verify the server's certificate\n"
    "  --opensearch-cert-file F --opensearch-key-file F  client certificate and key (PEM)\n"
    "  --opensearch-credentials-file F  a file holding USER:PASSWORD for basic auth; or\n"
    "                          env READMODEL_OPENSEARCH_USERNAME / _PASSWORD (never a flag)\n"
    "  --opensearch-aws-region R  sign requests with AWS SigV4 (Amazon OpenSearch Service);\n"
    "                          credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and\n"
    "                          AWS_SESSION_TOKEN\n"
    "  --opensearch-bulk-docs N   documents per _bulk request (default 1000)\n"
    "  --opensearch-bulk-bytes N  bytes per _bulk request (default 5242880)\n"
    "  --check-config          validate, print the effective configuration, exit 0 or 2\n"
    "  -h, --help              this help\n"
    "\n"
    "Exit codes: 0 stopped cleanly (SIGTERM/SIGINT or --until-caught-up), 1 runtime failure,\n"
    "2 bad configuration.\n";

static const char rebuild_usage[] =
    "Usage: readmodel rebuild --target redis|opensearch|all --from-beginning [options]\n"
    "\n"
    "Repair the read model while readers keep reading: replay every partition from its\n"
    "earliest offset to the end offsets captured at start into memory, write the final value\n"
    "of every key (fences included; Redis: each partition as soon as it is replayed), delete\n"
    "keys under the prefix that should not exist, then write the checkpoints. Live `serve`\n"
    "processes pause writing while the rebuild holds its lease and resume from the rebuilt\n"
    "checkpoints.\n"
    "\n"
    "  --target redis|opensearch|all  the model to rebuild (opensearch: a new index generation\n"
    "                           is built beside the live one and the alias moved in one call;\n"
    "                           all: Redis, then OpenSearch)\n"
    "  --from-beginning         replay from the earliest offsets (required; the only mode)\n"
    "  --allow-truncated-history  rebuild even when a partition starts above offset 0\n"
    "  --dry-run                print the plan (partitions, offset ranges, events, truncated\n"
    "                           partitions) and change nothing\n"
    "  --flush --yes            the seed runbook: delete the model first, then replay\n"
    "                           (readers see an empty model until it is rebuilt)\n"
    "  --lease-ttl MS           lease expiry, renewed every third of it (default 30000)\n"
    "  --metrics-addr HOST:PORT serve /metrics (phase, progress, events/s) while running\n"
    "                           (default off; READMODEL_METRICS_ADDR is serve's only)\n"
    "  --keep-previous          opensearch: keep the previous index generation (rollback)\n"
    "  --previous-grace S       opensearch: wait S seconds after the alias move before\n"
    "                           deleting the previous generation (default 60)\n"
    "  --brokers, --topic, --group, --redis, --redis-prefix, --kafka, --workers,\n"
    "  --opensearch*, --log-format, --log-level, --check-config: as for serve\n"
    "  -h, --help               this help\n"
    "\n"
    "Progress: a live line on a terminal, otherwise a log line every 5 s; a summary at the end.\n"
    "Exit codes: 0 rebuilt, 1 failed (the model stays consistent; run it again), 2 bad usage,\n"
    "3 truncated history refused, 4 another rebuild holds the lease.\n";

static const char verify_usage[] =
    "Usage: readmodel verify --target redis|opensearch|all [options]\n"
    "\n"
    "Replay the log as rebuild does and compare with the live model instead of writing:\n"
    "missing, extra and wrong keys, practitioner states (fences) and checkpoints, with a few\n"
    "examples of each. Practitioners that a live serve moved past the captured end offsets\n"
    "while verify ran are skipped and counted.\n"
    "\n"
    "  --target redis|opensearch|all  (opensearch: every document behind the alias;\n"
    "                           all: both, the worse exit code wins)\n"
    "  --allow-truncated-history  compare even when a partition starts above offset 0\n"
    "  --metrics-addr HOST:PORT serve /metrics (phase, progress, events/s) while running\n"
    "                           (default off; READMODEL_METRICS_ADDR is serve's only)\n"
    "  --brokers, --topic, --group, --redis, --redis-prefix, --kafka, --workers,\n"
    "  --opensearch*, --log-format, --log-level: as for serve\n"
    "\n"
    "Exit codes: 0 identical, 1 drift found, 2 error, 3 truncated history refused.\n";

static const char status_usage[] =
    "Usage: readmodel status [--target redis|opensearch|all] [options]\n"
    "\n"
    "Per partition: earliest and end offsets, checkpoint and lag; the rebuild lease holder if\n"
    "any; the time and result of the last rebuild.\n"
    "\n"
    "  --brokers, --topic, --redis, --redis-prefix, --kafka, --opensearch*, --log-format,\n"
    "  --log-level: as for serve (opensearch: the alias, its generation, checkpoints)\n"
    "\n"
    "Exit codes: 0 printed, 1 a sink or Kafka could not be read, 2 bad usage.\n";

const char *rm_usage(rm_command_t cmd) {
    switch (cmd) {
    case RM_CMD_REBUILD:
        return rebuild_usage;
    case RM_CMD_VERIFY:
        return verify_usage;
    case RM_CMD_STATUS:
        return status_usage;
    default:
        return serve_usage;
    }
}

static const char *const command_names[] = {"serve", "rebuild", "verify", "status"};

static int set_str(char **dst, const char *v) {
    char *s = strdup(v);
    if (!s)
        return -1;
    free(*dst);
    *dst = s;
    return 0;
}

static int parse_count(const char *name, const char *v, long min, long max, long *out, char *err,
                       size_t errlen) {
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        snprintf(err, errlen, "%s: must be a whole number %ld..%ld (got '%s')", name, min, max, v);
        return -1;
    }
    *out = n;
    return 0;
}

static bool topic_name_ok(const char *t) {
    size_t n = strlen(t);
    if (n == 0 || n > 249 || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

void rm_config_free(rm_config_t *cfg) {
    free(cfg->brokers);
    free(cfg->topic);
    free(cfg->group);
    free(cfg->redis_url);
    free(cfg->redis_prefix);
    free(cfg->dlq_topic);
    free(cfg->target);
    free(cfg->metrics_addr);
    free(cfg->opensearch_url);
    free(cfg->opensearch_prefix);
    free(cfg->opensearch_ca_file);
    free(cfg->opensearch_cert_file);
    free(cfg->opensearch_key_file);
    free(cfg->opensearch_username);
    free(cfg->opensearch_password);
    free(cfg->opensearch_aws_region);
    free(cfg->aws_key);
    free(cfg->aws_secret);
    free(cfg->aws_token);
    free(cfg->credentials_file);
    for (size_t i = 0; i < cfg->n_kafka; i++)
        free(cfg->kafka[i]);
    free(cfg->kafka);
    memset(cfg, 0, sizeof(*cfg));
}

enum {
    OPT_BROKERS = 256,
    OPT_TOPIC,
    OPT_GROUP,
    OPT_REDIS,
    OPT_PREFIX,
    OPT_WORKERS,
    OPT_DLQ,
    OPT_KAFKA,
    OPT_MAX_BATCH,
    OPT_CACHE,
    OPT_UNTIL,
    OPT_SHUTDOWN,
    OPT_LOG_FORMAT,
    OPT_LOG_LEVEL,
    OPT_CHECK,
    OPT_TARGET,
    OPT_FROM_BEGINNING,
    OPT_ALLOW_TRUNCATED,
    OPT_DRY_RUN,
    OPT_FLUSH,
    OPT_YES,
    OPT_LEASE_TTL,
    OPT_METRICS_ADDR,
    OPT_OS_URL,
    OPT_OS_PREFIX,
    OPT_OS_CA,
    OPT_OS_CERT,
    OPT_OS_KEY,
    OPT_OS_CREDS,
    OPT_OS_AWS,
    OPT_OS_BULK_DOCS,
    OPT_OS_BULK_BYTES,
    OPT_KEEP_PREVIOUS,
    OPT_PREVIOUS_GRACE,
};

static const struct option options[] = {
    {"brokers", required_argument, NULL, OPT_BROKERS},
    {"topic", required_argument, NULL, OPT_TOPIC},
    {"group", required_argument, NULL, OPT_GROUP},
    {"redis", required_argument, NULL, OPT_REDIS},
    {"redis-prefix", required_argument, NULL, OPT_PREFIX},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"dlq-topic", required_argument, NULL, OPT_DLQ},
    {"kafka", required_argument, NULL, OPT_KAFKA},
    {"max-batch", required_argument, NULL, OPT_MAX_BATCH},
    {"cache-practitioners", required_argument, NULL, OPT_CACHE},
    {"until-caught-up", no_argument, NULL, OPT_UNTIL},
    {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"check-config", no_argument, NULL, OPT_CHECK},
    {"target", required_argument, NULL, OPT_TARGET},
    {"from-beginning", no_argument, NULL, OPT_FROM_BEGINNING},
    {"allow-truncated-history", no_argument, NULL, OPT_ALLOW_TRUNCATED},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"flush", no_argument, NULL, OPT_FLUSH},
    {"yes", no_argument, NULL, OPT_YES},
    {"lease-ttl", required_argument, NULL, OPT_LEASE_TTL},
    {"metrics-addr", required_argument, NULL, OPT_METRICS_ADDR},
    {"opensearch", required_argument, NULL, OPT_OS_URL},
    {"opensearch-index-prefix", required_argument, NULL, OPT_OS_PREFIX},
    {"opensearch-ca-file", required_argument, NULL, OPT_OS_CA},
    {"opensearch-cert-file", required_argument, NULL, OPT_OS_CERT},
    {"opensearch-key-file", required_argument, NULL, OPT_OS_KEY},
    {"opensearch-credentials-file", required_argument, NULL, OPT_OS_CREDS},
    {"opensearch-aws-region", required_argument, NULL, OPT_OS_AWS},
    {"opensearch-bulk-docs", required_argument, NULL, OPT_OS_BULK_DOCS},
    {"opensearch-bulk-bytes", required_argument, NULL, OPT_OS_BULK_BYTES},
    {"keep-previous", no_argument, NULL, OPT_KEEP_PREVIOUS},
    {"previous-grace", required_argument, NULL, OPT_PREVIOUS_GRACE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char *option_name(int c) {
    for (const struct option *o = options; o->name; o++)
        if (o->val == c)
            return o->name;
    return "?";
}

/* Which flags each command takes. */
static bool allowed(rm_command_t cmd, int c) {
    switch (c) {
    case OPT_BROKERS:
    case OPT_TOPIC:
    case OPT_REDIS:
    case OPT_PREFIX:
    case OPT_KAFKA:
    case OPT_LOG_FORMAT:
    case OPT_LOG_LEVEL:
    case OPT_TARGET:
        return cmd != RM_CMD_SERVE || c != OPT_TARGET;
    case OPT_GROUP:
    case OPT_WORKERS:
    case OPT_CHECK:
        return cmd != RM_CMD_STATUS;
    case OPT_METRICS_ADDR:
    case OPT_OS_BULK_DOCS:
    case OPT_OS_BULK_BYTES:
        return cmd != RM_CMD_STATUS;
    case OPT_DLQ:
    case OPT_MAX_BATCH:
    case OPT_CACHE:
    case OPT_UNTIL:
    case OPT_SHUTDOWN:
        return cmd == RM_CMD_SERVE;
    case OPT_ALLOW_TRUNCATED:
        return cmd == RM_CMD_REBUILD || cmd == RM_CMD_VERIFY;
    case OPT_KEEP_PREVIOUS:
    case OPT_PREVIOUS_GRACE:
    case OPT_FROM_BEGINNING:
    case OPT_DRY_RUN:
    case OPT_FLUSH:
    case OPT_YES:
    case OPT_LEASE_TTL:
        return cmd == RM_CMD_REBUILD;
    default:
        return true;
    }
}

/* Appends a "key=value" property (len bytes of kv). 0, or -1 out of memory. */
static int add_kafka(rm_config_t *cfg, const char *kv, size_t len) {
    char **k = realloc(cfg->kafka, (cfg->n_kafka + 1) * sizeof(*k));
    if (!k)
        return -1;
    cfg->kafka = k;
    if (!(cfg->kafka[cfg->n_kafka] = strndup(kv, len)))
        return -1;
    cfg->n_kafka++;
    return 0;
}

/* READMODEL_KAFKA_<PROPERTY>=VALUE: a librdkafka property from the
 * environment, the name lower-cased with '_' read as '.'
 * (READMODEL_KAFKA_SASL_PASSWORD -> sasl.password), so secrets can come
 * from a Kubernetes Secret instead of a flag that `ps` shows. Applied before
 * the --kafka flags, which override them. In environ order, which is
 * irrelevant: each property appears once. */
static int kafka_from_env(rm_config_t *cfg) {
    static const char prefix[] = "READMODEL_KAFKA_";
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, prefix, sizeof(prefix) - 1) != 0 || !eq || eq == *e + sizeof(prefix) - 1)
            continue;
        size_t len = strlen(*e + sizeof(prefix) - 1);
        char *kv = strdup(*e + sizeof(prefix) - 1);
        if (!kv)
            return -1;
        for (char *c = kv; *c != '='; c++)
            *c = *c == '_' ? '.' : (char)tolower((unsigned char)*c);
        int rc = add_kafka(cfg, kv, len);
        free(kv);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* A readable PEM file containing `marker`: a wrong path or a file of the
 * wrong kind is a startup error naming the flag, not a TLS failure later. */
static int pem_file(const char *flag, const char *path, const char *marker, char *err,
                    size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s %s: cannot read it: %s", flag, path, strerror(errno));
        return -1;
    }
    char *buf = calloc(1, 1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    bool ok = buf && n > 0 && strstr(buf, marker);
    free(buf);
    if (!ok) {
        snprintf(err, errlen, "%s %s: not a PEM file with a %s", flag, path,
                 strstr(marker, "KEY") ? "private key" : "certificate");
        return -1;
    }
    return 0;
}

/* The OpenSearch options, checked together; reads the credentials file. */
static int check_opensearch(rm_config_t *cfg, char *err, size_t errlen) {
    if (!cfg->opensearch_url)
        return 0;
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    CURLUcode uc =
        u ? curl_url_set(u, CURLUPART_URL, cfg->opensearch_url, 0) : CURLUE_OUT_OF_MEMORY;
    if (uc == CURLUE_OK)
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (uc == CURLUE_OK)
        curl_url_get(u, CURLUPART_HOST, &host, 0);
    bool ok =
        uc == CURLUE_OK && scheme && host && (!strcmp(scheme, "http") || !strcmp(scheme, "https"));
    char *user = NULL;
    if (ok && curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK && user) {
        curl_free(user);
        snprintf(err, errlen,
                 "--opensearch: credentials must not be in the URL (they would "
                 "show in ps and logs); use READMODEL_OPENSEARCH_USERNAME/_PASSWORD or "
                 "--opensearch-credentials-file");
        ok = false;
    } else if (!ok) {
        snprintf(err, errlen, "--opensearch: expected http(s)://host[:port][/path] (got '%s'%s%s)",
                 cfg->opensearch_url, uc != CURLUE_OK ? ": " : "",
                 uc != CURLUE_OK ? curl_url_strerror(uc) : "");
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    if (!ok)
        return -1;
    const char *pfx = cfg->opensearch_prefix ? cfg->opensearch_prefix : "";
    for (const char *c = pfx; *c; c++)
        if ((*c >= 'A' && *c <= 'Z') || strchr("\\/*?\"<>| ,#:", *c)) {
            snprintf(err, errlen,
                     "--opensearch-index-prefix: index names are lowercase without "
                     "spaces or \\/*?\"<>|,#: (got '%s')",
                     pfx);
            return -1;
        }
    if (pfx[0] == '_' || pfx[0] == '-' || pfx[0] == '+') {
        snprintf(err, errlen, "--opensearch-index-prefix: must not start with _, - or +");
        return -1;
    }
    if (cfg->opensearch_ca_file && pem_file("--opensearch-ca-file", cfg->opensearch_ca_file,
                                            "-----BEGIN CERTIFICATE-----", err, errlen))
        return -1;
    if (!cfg->opensearch_cert_file != !cfg->opensearch_key_file) {
        snprintf(err, errlen, "--opensearch-cert-file and --opensearch-key-file go together");
        return -1;
    }
    if (cfg->opensearch_cert_file && (pem_file("--opensearch-cert-file", cfg->opensearch_cert_file,
                                               "-----BEGIN CERTIFICATE-----", err, errlen) ||
                                      pem_file("--opensearch-key-file", cfg->opensearch_key_file,
                                               "PRIVATE KEY-----", err, errlen)))
        return -1;
    if (cfg->credentials_file) {
        FILE *f = fopen(cfg->credentials_file, "r");
        char line[1024];
        if (!f) {
            snprintf(err, errlen, "--opensearch-credentials-file %s: cannot read it: %s",
                     cfg->credentials_file, strerror(errno));
            return -1;
        }
        bool got = fgets(line, sizeof(line), f) != NULL;
        fclose(f);
        line[got ? strcspn(line, "\r\n") : 0] = '\0';
        char *colon = strchr(line, ':');
        if (!colon || colon == line) {
            snprintf(err, errlen,
                     "--opensearch-credentials-file %s: expected one line "
                     "USER:PASSWORD",
                     cfg->credentials_file);
            return -1;
        }
        *colon = '\0';
        if (set_str(&cfg->opensearch_username, line) ||
            set_str(&cfg->opensearch_password, colon + 1))
            return -1;
    }
    if (cfg->opensearch_username && !cfg->opensearch_password) {
        snprintf(err, errlen,
                 "READMODEL_OPENSEARCH_USERNAME is set without "
                 "READMODEL_OPENSEARCH_PASSWORD");
        return -1;
    }
    if (cfg->opensearch_aws_region) {
        if (cfg->opensearch_username) {
            snprintf(err, errlen,
                     "--opensearch-aws-region: AWS SigV4 and basic auth exclude each "
                     "other; unset the OpenSearch username/password");
            return -1;
        }
        if (!cfg->aws_key || !cfg->aws_secret) {
            snprintf(err, errlen,
                     "--opensearch-aws-region: needs AWS_ACCESS_KEY_ID and "
                     "AWS_SECRET_ACCESS_KEY in the environment");
            return -1;
        }
    }
    return 0;
}

rm_config_result_t rm_config_parse(rm_command_t cmd, int argc, char **argv, rm_config_t *cfg,
                                   char *err, size_t errlen) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    *cfg = (rm_config_t){
        .workers = cores > 0 ? (int)cores : 1,
        .max_batch = 10000,
        .cache_limit = 100000,
        .shutdown_timeout_s = 10,
        .lease_ttl_ms = 30000,
        .opensearch_bulk_docs = 1000,
        .opensearch_bulk_bytes = 5u << 20,
        .previous_grace_s = 60,
    };
    const char *env_brokers = getenv("READMODEL_BROKERS");
    const char *env_redis = getenv("READMODEL_REDIS_URL");
    if (set_str(&cfg->topic, "booking.events") || set_str(&cfg->group, "readmodel") ||
        set_str(&cfg->redis_url, env_redis && *env_redis ? env_redis : "redis://127.0.0.1:6379") ||
        set_str(&cfg->redis_prefix, "rm:") || set_str(&cfg->target, "redis") ||
        (cmd == RM_CMD_SERVE &&
         set_str(&cfg->metrics_addr,
                 getenv("READMODEL_METRICS_ADDR") && *getenv("READMODEL_METRICS_ADDR")
                     ? getenv("READMODEL_METRICS_ADDR")
                     : "0.0.0.0:9464")) ||
        (env_brokers && *env_brokers && set_str(&cfg->brokers, env_brokers)))
        goto nomem;
    if (kafka_from_env(cfg) < 0)
        goto nomem;
    static const struct {
        const char *env;
        size_t offset;
    } os_env[] = {
        {"READMODEL_OPENSEARCH_URL", offsetof(rm_config_t, opensearch_url)},
        {"READMODEL_OPENSEARCH_INDEX_PREFIX", offsetof(rm_config_t, opensearch_prefix)},
        {"READMODEL_OPENSEARCH_USERNAME", offsetof(rm_config_t, opensearch_username)},
        {"READMODEL_OPENSEARCH_PASSWORD", offsetof(rm_config_t, opensearch_password)},
        {"READMODEL_OPENSEARCH_CREDENTIALS_FILE", offsetof(rm_config_t, credentials_file)},
        {"AWS_ACCESS_KEY_ID", offsetof(rm_config_t, aws_key)},
        {"AWS_SECRET_ACCESS_KEY", offsetof(rm_config_t, aws_secret)},
        {"AWS_SESSION_TOKEN", offsetof(rm_config_t, aws_token)},
    };
    for (size_t i = 0; i < sizeof(os_env) / sizeof(os_env[0]); i++) {
        const char *v = getenv(os_env[i].env);
        if (v && *v && set_str((char **)((char *)cfg + os_env[i].offset), v))
            goto nomem;
    }
    bool check = false;
    long n;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        if (c >= OPT_BROKERS && !allowed(cmd, c)) {
            snprintf(err, errlen, "--%s is not an option of %s (see readmodel %s --help)",
                     option_name(c), command_names[cmd], command_names[cmd]);
            return RM_CONFIG_ERROR;
        }
        switch (c) {
        case 'h':
            return RM_CONFIG_HELP;
        case OPT_BROKERS:
        case OPT_TOPIC:
        case OPT_GROUP:
        case OPT_REDIS:
        case OPT_PREFIX:
        case OPT_DLQ: {
            char **dst = c == OPT_BROKERS  ? &cfg->brokers
                         : c == OPT_TOPIC  ? &cfg->topic
                         : c == OPT_GROUP  ? &cfg->group
                         : c == OPT_REDIS  ? &cfg->redis_url
                         : c == OPT_PREFIX ? &cfg->redis_prefix
                                           : &cfg->dlq_topic;
            if (!*optarg) {
                snprintf(err, errlen, "--%s: must not be empty", option_name(c));
                return RM_CONFIG_ERROR;
            }
            if (set_str(dst, optarg))
                goto nomem;
            break;
        }
        case OPT_WORKERS:
            if (parse_count("--workers", optarg, 1, 256, &n, err, errlen))
                return RM_CONFIG_ERROR;
            cfg->workers = (int)n;
            break;
        case OPT_MAX_BATCH:
            if (parse_count("--max-batch", optarg, 1, 1000000, &n, err, errlen))
                return RM_CONFIG_ERROR;
            cfg->max_batch = (size_t)n;
            break;
        case OPT_CACHE:
            if (parse_count("--cache-practitioners", optarg, 1, 100000000, &n, err, errlen))
                return RM_CONFIG_ERROR;
            cfg->cache_limit = (size_t)n;
            break;
        case OPT_SHUTDOWN:
            if (parse_count("--shutdown-timeout", optarg, 0, 3600, &n, err, errlen))
                return RM_CONFIG_ERROR;
            cfg->shutdown_timeout_s = (int)n;
            break;
        case OPT_KAFKA: {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                snprintf(err, errlen, "--kafka: expected KEY=VALUE (got '%s')", optarg);
                return RM_CONFIG_ERROR;
            }
            if (add_kafka(cfg, optarg, strlen(optarg)) < 0)
                goto nomem;
            break;
        }
        case OPT_UNTIL:
            cfg->until_caught_up = true;
            break;
        case OPT_LOG_FORMAT:
            if (strcmp(optarg, "text") && strcmp(optarg, "json")) {
                snprintf(err, errlen, "--log-format: must be text or json (got '%s')", optarg);
                return RM_CONFIG_ERROR;
            }
            rm_log_set_json(strcmp(optarg, "json") == 0);
            break;
        case OPT_LOG_LEVEL: {
            rm_log_level_t lvl;
            if (!rm_log_parse_level(optarg, &lvl)) {
                snprintf(err, errlen, "--log-level: must be debug, info, warn or error (got '%s')",
                         optarg);
                return RM_CONFIG_ERROR;
            }
            rm_log_set_level(lvl);
            break;
        }
        case OPT_CHECK:
            check = true;
            break;
        case OPT_TARGET:
            if (strcmp(optarg, "redis") && strcmp(optarg, "opensearch") && strcmp(optarg, "all")) {
                snprintf(err, errlen, "--target: must be redis, opensearch or all (got '%s')",
                         optarg);
                return RM_CONFIG_ERROR;
            }
            if (set_str(&cfg->target, optarg))
                goto nomem;
            break;
        case OPT_FROM_BEGINNING:
            cfg->from_beginning = true;
            break;
        case OPT_ALLOW_TRUNCATED:
            cfg->allow_truncated = true;
            break;
        case OPT_DRY_RUN:
            cfg->dry_run = true;
            break;
        case OPT_FLUSH:
            cfg->flush = true;
            break;
        case OPT_YES:
            cfg->yes = true;
            break;
        case OPT_METRICS_ADDR:
            if (set_str(&cfg->metrics_addr, optarg))
                goto nomem;
            break;
        case OPT_OS_URL:
        case OPT_OS_PREFIX:
        case OPT_OS_CA:
        case OPT_OS_CERT:
        case OPT_OS_KEY:
        case OPT_OS_CREDS:
        case OPT_OS_AWS: {
            char **dst = c == OPT_OS_URL      ? &cfg->opensearch_url
                         : c == OPT_OS_PREFIX ? &cfg->opensearch_prefix
                         : c == OPT_OS_CA     ? &cfg->opensearch_ca_file
                         : c == OPT_OS_CERT   ? &cfg->opensearch_cert_file
                         : c == OPT_OS_KEY    ? &cfg->opensearch_key_file
                         : c == OPT_OS_CREDS  ? &cfg->credentials_file
                                              : &cfg->opensearch_aws_region;
            if (!*optarg && c != OPT_OS_PREFIX) {
                snprintf(err, errlen, "--%s: must not be empty", option_name(c));
                return RM_CONFIG_ERROR;
            }
            if (set_str(dst, optarg))
                goto nomem;
            break;
        }
        case OPT_OS_BULK_DOCS:
            if (parse_count("--opensearch-bulk-docs", optarg, 1, 100000, &n, err, errlen))
                return RM_CONFIG_ERROR;
            cfg->opensearch_bulk_docs = (size_t)n;
            break;
        case OPT_OS_BULK_BYTES:
            if (parse_count("--opensearch-bulk-bytes", optarg, 1024, 100L << 20, &n, err, errlen))
                return RM_CONFIG_ERROR;
            cfg->opensearch_bulk_bytes = (size_t)n;
            break;
        case OPT_KEEP_PREVIOUS:
            cfg->keep_previous = true;
            break;
        case OPT_PREVIOUS_GRACE:
            if (parse_count("--previous-grace", optarg, 0, 86400, &n, err, errlen))
                return RM_CONFIG_ERROR;
            cfg->previous_grace_s = (int)n;
            break;
        case OPT_LEASE_TTL:
            if (parse_count("--lease-ttl", optarg, 1000, 3600000, &n, err, errlen))
                return RM_CONFIG_ERROR;
            cfg->lease_ttl_ms = (int)n;
            break;
        case ':':
            snprintf(err, errlen, "%s: needs a value", argv[optind - 1]);
            return RM_CONFIG_ERROR;
        default:
            snprintf(err, errlen, "unknown option '%s' (see readmodel serve --help)",
                     argv[optind - 1]);
            return RM_CONFIG_ERROR;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (see readmodel serve --help)",
                 argv[optind]);
        return RM_CONFIG_ERROR;
    }
    if (!cfg->brokers) {
        snprintf(err, errlen, "--brokers: required (or set READMODEL_BROKERS)");
        return RM_CONFIG_ERROR;
    }
    if (!topic_name_ok(cfg->topic)) {
        snprintf(err, errlen, "--topic: not a valid Kafka topic name ('%s')", cfg->topic);
        return RM_CONFIG_ERROR;
    }
    if (cfg->dlq_topic && !topic_name_ok(cfg->dlq_topic)) {
        snprintf(err, errlen, "--dlq-topic: not a valid Kafka topic name ('%s')", cfg->dlq_topic);
        return RM_CONFIG_ERROR;
    }
    if (cfg->dlq_topic && strcmp(cfg->dlq_topic, cfg->topic) == 0) {
        snprintf(err, errlen, "--dlq-topic: must differ from --topic");
        return RM_CONFIG_ERROR;
    }
    rm_redis_url_t u;
    char uerr[200];
    if (rm_redis_url_parse(cfg->redis_url, &u, uerr, sizeof(uerr)) < 0) {
        snprintf(err, errlen, "--redis: %s", uerr);
        return RM_CONFIG_ERROR;
    }
    rm_redis_url_free(&u);
    /* librdkafka's own check of every property, so a typo is a startup
     * error (exit 2) and --check-config catches it. */
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    int kafka_bad = kc ? rm_kafka_conf_set_all(kc, cfg->kafka, cfg->n_kafka, err, errlen) : 0;
    if (kc)
        rd_kafka_conf_destroy(kc);
    if (kafka_bad)
        return RM_CONFIG_ERROR;
    if (strpbrk(cfg->redis_prefix, " {}\r\n")) {
        snprintf(err, errlen, "--redis-prefix: must not contain spaces or braces");
        return RM_CONFIG_ERROR;
    }
    if (check_opensearch(cfg, err, errlen) < 0)
        return RM_CONFIG_ERROR;
    if (cmd != RM_CMD_SERVE && strcmp(cfg->target, "redis") != 0 && !cfg->opensearch_url) {
        snprintf(err, errlen, "--target %s: needs --opensearch URL (or READMODEL_OPENSEARCH_URL)",
                 cfg->target);
        return RM_CONFIG_ERROR;
    }

    if (cmd == RM_CMD_REBUILD && !cfg->from_beginning && !cfg->dry_run) {
        snprintf(err, errlen,
                 "--from-beginning: required (a rebuild always replays the whole "
                 "retained log)");
        return RM_CONFIG_ERROR;
    }
    if (cfg->flush && !cfg->yes) {
        snprintf(err, errlen,
                 "--flush: deletes the model before replaying, so readers see it "
                 "empty; add --yes to confirm");
        return RM_CONFIG_ERROR;
    }
    if (cfg->metrics_addr && strcmp(cfg->metrics_addr, "off") == 0) {
        free(cfg->metrics_addr);
        cfg->metrics_addr = NULL;
    } else if (cfg->metrics_addr && !strrchr(cfg->metrics_addr, ':')) {
        snprintf(err, errlen, "--metrics-addr: expected HOST:PORT or off (got '%s')",
                 cfg->metrics_addr);
        return RM_CONFIG_ERROR;
    }
    cfg->check_config = check;
    return RM_CONFIG_OK;
nomem:
    snprintf(err, errlen, "out of memory");
    return RM_CONFIG_ERROR;
}

static bool secret_key(const char *kv) {
    static const char *const words[] = {"password", "secret", "sasl.oauthbearer.config", "key.pem",
                                        "token"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(kv, words[i]) && strchr(kv, '=') > strstr(kv, words[i]))
            return true;
    return false;
}

void rm_config_print(const rm_config_t *cfg, FILE *out) {
    rm_redis_url_t u;
    char err[200], redacted[512] = "(invalid)";
    if (rm_redis_url_parse(cfg->redis_url, &u, err, sizeof(err)) == 0) {
        rm_redis_url_redacted(&u, redacted, sizeof(redacted));
        rm_redis_url_free(&u);
    }
    fprintf(out, "brokers=%s\ntopic=%s\ngroup=%s (Redis pipeline: %s-redis)\nredis=%s\n",
            cfg->brokers, cfg->topic, cfg->group, cfg->group, redacted);
    fprintf(out, "redis-prefix=%s\nworkers=%d\ndlq-topic=%s\nmax-batch=%zu\n", cfg->redis_prefix,
            cfg->workers, cfg->dlq_topic ? cfg->dlq_topic : "(none)", cfg->max_batch);
    fprintf(out, "metrics-addr=%s\n", cfg->metrics_addr ? cfg->metrics_addr : "off");
    fprintf(out, "cache-practitioners=%zu\nuntil-caught-up=%s\nshutdown-timeout=%d\n",
            cfg->cache_limit, cfg->until_caught_up ? "true" : "false", cfg->shutdown_timeout_s);
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        const char *eq = strchr(cfg->kafka[i], '=');
        if (secret_key(cfg->kafka[i]))
            fprintf(out, "kafka.%.*s=***\n", (int)(eq - cfg->kafka[i]), cfg->kafka[i]);
        else
            fprintf(out, "kafka.%s\n", cfg->kafka[i]);
    }
    if (!cfg->opensearch_url) {
        fprintf(out, "opensearch=off\n");
        return;
    }
    fprintf(out, "opensearch=%s (pipeline: %s-opensearch)\nopensearch-index-prefix=%s\n",
            cfg->opensearch_url, cfg->group, cfg->opensearch_prefix ? cfg->opensearch_prefix : "");
    fprintf(out, "opensearch-ca-file=%s\nopensearch-cert-file=%s\n",
            cfg->opensearch_ca_file ? cfg->opensearch_ca_file : "(system CAs)",
            cfg->opensearch_cert_file ? cfg->opensearch_cert_file : "(none)");
    fprintf(out, "opensearch-auth=%s%s%s\n",
            cfg->opensearch_aws_region ? "aws-sigv4 region "
            : cfg->opensearch_username ? "basic user "
                                       : "none",
            cfg->opensearch_aws_region ? cfg->opensearch_aws_region
            : cfg->opensearch_username ? cfg->opensearch_username
                                       : "",
            cfg->opensearch_username && !cfg->opensearch_aws_region ? " password ***" : "");
    fprintf(out, "opensearch-bulk-docs=%zu\nopensearch-bulk-bytes=%zu\n", cfg->opensearch_bulk_docs,
            cfg->opensearch_bulk_bytes);
}
