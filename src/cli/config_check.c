/*
 * The checks of a parsed configuration that involve several options, files
 * or other libraries: broker and Redis URLs, librdkafka properties, the
 * OpenSearch URL, index prefix, PEM files and credentials, and the rules of
 * each command. Every error is one line naming the setting; secrets are
 * never echoed.
 *
 * --check-config's Redis probe (rm_config_check_redis) runs in a child
 * process killed after PROBE_MS, so nothing it does (name resolution, a
 * connect, a TLS handshake, a server that accepts and never answers) can
 * hold the check up longer.
 */
#include "options.h"
#include "readmodel/kafka.h"
#include "readmodel/redis_cluster.h"
#include "readmodel/redis_url.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- validation after parsing -------------------------------------------- */

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

static int check_redis_tls(const rm_config_t *cfg, char *err, size_t errlen);

/* Brokers, topics, the Redis URL and prefix, and every librdkafka property
 * (librdkafka's own check, so a typo is a startup error and --check-config
 * catches it). */
static int validate_connections(const rm_config_t *cfg, char *err, size_t errlen) {
    if (!cfg->brokers) {
        snprintf(err, errlen, "--brokers: required (or set READMODEL_BROKERS)");
        return -1;
    }
    if (!topic_name_ok(cfg->topic)) {
        snprintf(err, errlen, "--topic: not a valid Kafka topic name ('%s')", cfg->topic);
        return -1;
    }
    if (cfg->dlq_topic && !topic_name_ok(cfg->dlq_topic)) {
        snprintf(err, errlen, "--dlq-topic: not a valid Kafka topic name ('%s')", cfg->dlq_topic);
        return -1;
    }
    if (cfg->dlq_topic && strcmp(cfg->dlq_topic, cfg->topic) == 0) {
        snprintf(err, errlen, "--dlq-topic: must differ from --topic");
        return -1;
    }
    rm_redis_url_t u;
    char uerr[200];
    if (rm_redis_url_parse(cfg->redis_url, &u, uerr, sizeof(uerr)) < 0) {
        snprintf(err, errlen, "--redis: %s", uerr);
        return -1;
    }
    rm_redis_url_free(&u);
    if (check_redis_tls(cfg, err, errlen))
        return -1;
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    int kafka_bad = kc ? rm_kafka_conf_set_all(kc, cfg->kafka, cfg->n_kafka, err, errlen) : 0;
    if (kc)
        rd_kafka_conf_destroy(kc);
    if (kafka_bad)
        return -1;
    if (strpbrk(cfg->redis_prefix, " {}\r\n")) {
        snprintf(err, errlen, "--redis-prefix: must not contain spaces or braces");
        return -1;
    }
    return 0;
}

static int check_opensearch_url(const rm_config_t *cfg, char *err, size_t errlen) {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL;
    CURLUcode uc =
        u ? curl_url_set(u, CURLUPART_URL, cfg->opensearch_url, 0) : CURLUE_OUT_OF_MEMORY;
    if (uc == CURLUE_OK)
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (uc == CURLUE_OK)
        curl_url_get(u, CURLUPART_HOST, &host, 0);
    bool ok =
        uc == CURLUE_OK && scheme && host && (!strcmp(scheme, "http") || !strcmp(scheme, "https"));
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
    return ok ? 0 : -1;
}

static int check_index_prefix(const rm_config_t *cfg, char *err, size_t errlen) {
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

/* --redis-ca-file and friends: PEM files. Used (and checked) only with a
 * rediss:// URL, like the OpenSearch ones only with --opensearch. */
static int check_redis_tls(const rm_config_t *cfg, char *err, size_t errlen) {
    static const char cert[] = "-----BEGIN CERTIFICATE-----";
    if (strncmp(cfg->redis_url, "rediss://", 9) != 0)
        return 0;
    if (cfg->redis_ca_file && pem_file("--redis-ca-file", cfg->redis_ca_file, cert, err, errlen))
        return -1;
    if (!cfg->redis_cert_file != !cfg->redis_key_file) {
        snprintf(err, errlen, "--redis-cert-file and --redis-key-file go together");
        return -1;
    }
    if (cfg->redis_cert_file &&
        (pem_file("--redis-cert-file", cfg->redis_cert_file, cert, err, errlen) ||
         pem_file("--redis-key-file", cfg->redis_key_file, "PRIVATE KEY-----", err, errlen)))
        return -1;
    return 0;
}

static int check_tls_files(const rm_config_t *cfg, char *err, size_t errlen) {
    static const char cert[] = "-----BEGIN CERTIFICATE-----";
    if (cfg->opensearch_ca_file &&
        pem_file("--opensearch-ca-file", cfg->opensearch_ca_file, cert, err, errlen))
        return -1;
    if (!cfg->opensearch_cert_file != !cfg->opensearch_key_file) {
        snprintf(err, errlen, "--opensearch-cert-file and --opensearch-key-file go together");
        return -1;
    }
    if (cfg->opensearch_cert_file &&
        (pem_file("--opensearch-cert-file", cfg->opensearch_cert_file, cert, err, errlen) ||
         pem_file("--opensearch-key-file", cfg->opensearch_key_file, "PRIVATE KEY-----", err,
                  errlen)))
        return -1;
    return 0;
}

/* --opensearch-credentials-file: one line USER:PASSWORD, read now. */
static int read_credentials(rm_config_t *cfg, char *err, size_t errlen) {
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
        snprintf(err, errlen, "--opensearch-credentials-file %s: expected one line USER:PASSWORD",
                 cfg->credentials_file);
        return -1;
    }
    *colon = '\0';
    if (rm_cli_set_str(&cfg->opensearch_username, line) ||
        rm_cli_set_str(&cfg->opensearch_password, colon + 1))
        return rm_cli_nomem(err, errlen);
    return 0;
}

static int check_opensearch_auth(const rm_config_t *cfg, char *err, size_t errlen) {
    if (cfg->opensearch_username && !cfg->opensearch_password) {
        snprintf(err, errlen,
                 "READMODEL_OPENSEARCH_USERNAME is set without READMODEL_OPENSEARCH_PASSWORD");
        return -1;
    }
    if (!cfg->opensearch_aws_region)
        return 0;
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
    return 0;
}

/* The OpenSearch options, checked together; reads the credentials file. */
static int validate_opensearch(rm_config_t *cfg, char *err, size_t errlen) {
    if (!cfg->opensearch_url)
        return 0;
    if (check_opensearch_url(cfg, err, errlen) || check_index_prefix(cfg, err, errlen) ||
        check_tls_files(cfg, err, errlen) ||
        (cfg->credentials_file && read_credentials(cfg, err, errlen)))
        return -1;
    return check_opensearch_auth(cfg, err, errlen);
}

/* What one command requires of the options together. */
static int validate_command(rm_command_t cmd, rm_config_t *cfg, char *err, size_t errlen) {
    if (cmd != RM_CMD_SERVE && strcmp(cfg->target, "redis") != 0 && !cfg->opensearch_url) {
        snprintf(err, errlen, "--target %s: needs --opensearch URL (or READMODEL_OPENSEARCH_URL)",
                 cfg->target);
        return -1;
    }
    if (cmd == RM_CMD_REBUILD && !cfg->from_beginning && !cfg->dry_run) {
        snprintf(err, errlen,
                 "--from-beginning: required (a rebuild always replays the whole retained log)");
        return -1;
    }
    if (cmd == RM_CMD_REBUILD && cfg->output_format && strcmp(cfg->output_format, "json") == 0 &&
        !cfg->dry_run) {
        snprintf(err, errlen, "--output json: rebuild takes it only with --dry-run");
        return -1;
    }
    if (cfg->flush && !cfg->yes) {
        snprintf(err, errlen,
                 "--flush: deletes the model before replaying, so readers see it "
                 "empty; add --yes to confirm");
        return -1;
    }
    if (cfg->metrics_addr && strcmp(cfg->metrics_addr, "off") == 0) {
        free(cfg->metrics_addr);
        cfg->metrics_addr = NULL;
    } else if (cfg->metrics_addr && !strrchr(cfg->metrics_addr, ':')) {
        snprintf(err, errlen, "--metrics-addr: expected HOST:PORT or off (got '%s')",
                 cfg->metrics_addr);
        return -1;
    }
    return 0;
}

int rm_config_validate(rm_command_t cmd, rm_config_t *cfg, char *err, size_t errlen) {
    if (cmd == RM_CMD_GEN) {
        if (!cfg->output && !cfg->brokers) {
            snprintf(err, errlen, "--brokers: required unless --output is given");
            return -1;
        }
        return 0;
    }
    if (cmd == RM_CMD_DEV_KAFKA)
        return 0;
    if (validate_connections(cfg, err, errlen) || validate_opensearch(cfg, err, errlen))
        return -1;
    return validate_command(cmd, cfg, err, errlen);
}

/* ---- --check-config: the Redis mode ---------------------------------------- */

#define PROBE_MS 3000 /* above the connection's 2 s connect timeout */

enum { PROBE_REACHED = 0, PROBE_UNREACHED = 1, PROBE_REFUSED = 2 };

/* The child's lines to the parent: the mode lines as they are found,
 * "?HOST:PORT" just before a master is PINGed (so the parent can name the
 * one it waited for when the deadline passes), and "!REASON" when the
 * server was not reached or refused the configuration. */
static void put(int fd, const char *a, const char *b) {
    char buf[1536];
    int n = snprintf(buf, sizeof(buf), "%s%s", a, b);
    for (int o = 0; n > 0 && o < n && o < (int)sizeof(buf);) {
        ssize_t w = write(fd, buf + o, (size_t)n - (size_t)o);
        if (w <= 0)
            return;
        o += (int)w;
    }
}

static void on_found(void *arg, const char *master, const char *line) {
    int fd = *(int *)arg;
    if (master)
        put(fd, "?", master), put(fd, "\n", "");
    else
        put(fd, line, "");
}

/* The child: asks the server and reports as above; ends with a PROBE_
 * status. Never returns. */
static void probe_child(const rm_config_t *cfg, int fd) {
    char text[512] = "redis: out of memory";
    int status = PROBE_UNREACHED;
    rm_redis_url_t u;
    if (rm_redis_url_parse(cfg->redis_url, &u, text, sizeof(text)) == 0) {
        rm_rclient_t *cl = NULL;
        rm_err_t e = RM_ERR_NOMEM;
        if (rm_redis_url_set_tls(&u, cfg->redis_ca_file, cfg->redis_cert_file, cfg->redis_key_file,
                                 cfg->redis_tls_server_name) == 0 &&
            (cl = rm_rclient_new(&u)))
            e = rm_rclient_describe(cl, on_found, &fd);
        if (e && cl)
            snprintf(text, sizeof(text), "%s", rm_rclient_error(cl));
        status = e == RM_ERR_OK ? PROBE_REACHED : e == RM_ERR_CONFIG ? PROBE_REFUSED : status;
        rm_rclient_free(cl);
        rm_redis_url_free(&u);
    }
    if (status != PROBE_REACHED) {
        text[strcspn(text, "\r\n")] = '\0';
        put(fd, "!", text);
        put(fd, "\n", "");
    }
    _exit(status);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads fd into buf until EOF or PROBE_MS from the start; false on
 * timeout. */
static bool read_until_deadline(int fd, char *buf, size_t cap) {
    size_t len = 0;
    long long deadline = now_ms() + PROBE_MS;
    buf[0] = '\0';
    for (;;) {
        long long left = deadline - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || (len += (size_t)r) == cap - 1)
            break;
        buf[len] = '\0';
    }
    buf[len] = '\0';
    return true;
}

/* Runs probe_child with a deadline: the PROBE_ status; the child's lines in
 * buf; *timed_out when the deadline passed first. */
static int probe(const rm_config_t *cfg, char *buf, size_t cap, bool *timed_out) {
    int fds[2];
    buf[0] = '\0';
    *timed_out = false;
    if (pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(buf, cap, "!cannot start the check: %s\n", strerror(errno));
        return PROBE_UNREACHED;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        probe_child(cfg, fds[1]);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        snprintf(buf, cap, "!cannot start the check: %s\n", strerror(errno));
        return PROBE_UNREACHED;
    }
    bool done = read_until_deadline(fds[0], buf, cap);
    close(fds[0]);
    if (!done)
        kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    *timed_out = !done;
    if (!done || !WIFEXITED(st))
        return PROBE_UNREACHED;
    return WEXITSTATUS(st) <= PROBE_REFUSED ? WEXITSTATUS(st) : PROBE_UNREACHED;
}

/* Prints the child's mode lines; the master it was waiting for when the
 * deadline passed, if any; the reason line into why (empty when none). */
static bool print_findings(const char *text, bool timed_out, FILE *out, char *why, size_t cap) {
    bool any = false;
    char pending[256] = "";
    why[0] = '\0';
    for (const char *l = text; *l;) {
        size_t n = strcspn(l, "\n");
        if (l[n] != '\n' && timed_out)
            break; /* a line cut by the deadline */
        if (*l == '?')
            snprintf(pending, sizeof(pending), "%.*s", (int)(n - 1), l + 1);
        else if (*l == '!')
            snprintf(why, cap, "%.*s", (int)(n - 1), l + 1);
        else if (n) {
            fprintf(out, "%.*s\n", (int)n, l);
            any = true;
            pending[0] = '\0';
        }
        l += n + (l[n] == '\n');
    }
    if (timed_out && any && pending[0])
        fprintf(out,
                "redis-master=%s (does not answer within the check's %d s; masters after it "
                "not checked)\n",
                pending, PROBE_MS / 1000);
    return any;
}

int rm_config_check_redis(rm_command_t cmd, const rm_config_t *cfg, FILE *out, char *err,
                          size_t errlen) {
    if (cmd == RM_CMD_GEN || cmd == RM_CMD_DEV_KAFKA ||
        (cmd != RM_CMD_SERVE && cfg->target && strcmp(cfg->target, "opensearch") == 0))
        return 0; /* no Redis in this command */
    char text[8192], why[512];
    bool timed_out;
    fflush(out); /* the child must not inherit unwritten lines */
    int st = probe(cfg, text, sizeof(text), &timed_out);
    bool any = print_findings(text, timed_out, out, why, sizeof(why));
    if (st == PROBE_REFUSED) {
        fprintf(out,
                any ? "redis-refused=%s\n"
                    : "redis-mode=unknown (the server refuses this configuration: %s)\n",
                why);
        snprintf(err, errlen, "--redis: %s", why);
        return -1;
    }
    if (st == PROBE_REACHED || any)
        return 0; /* the mode is known; a master that did not answer is a line */
    if (timed_out)
        snprintf(why, sizeof(why), "no answer within %d s", PROBE_MS / 1000);
    fprintf(out, "redis-mode=unknown (not reached: %s)\n", why);
    return 0;
}
