/*
 * The option table (src/cli/config.c), tested through the table itself so
 * that a new row is tested without touching this file, except for a sample
 * value (the test fails on a row without one): every option parses from
 * its flag and from its environment variable, a flag overrides the
 * environment, a flag of another command is refused, bounds are enforced
 * with one line naming the option, --check-config masks secrets, and every
 * option of a command is in its --help.
 */
#include "../../src/cli/options.h"
#include "readmodel/date.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

/* A valid value of each option (keyed by flag, or by variable when the
 * option has no flag; cmds 0: any command), and a second one for the
 * flag-overrides-environment test. */
typedef struct {
    const char *key;
    unsigned cmds;
    const char *value, *alt;
} sample_t;

static const sample_t samples[] = {
    {"brokers", 0, "b1:9092", "b2:9092"},
    {"topic", RM_ON(RM_CMD_DEV_KAFKA), "t:3", NULL},
    {"topic", 0, "t.one", NULL},
    {"group", 0, "g1", NULL},
    {"redis", 0, "redis://h:7/2", "redis://h2:8/3"},
    {"redis-prefix", 0, "p:", "q:"},
    {"redis-ca-file", 0, "/tmp/rca.pem", "/tmp/rca2.pem"},
    {"redis-cert-file", 0, "/tmp/rcert.pem", "/tmp/rcert2.pem"},
    {"redis-key-file", 0, "/tmp/rkey.pem", "/tmp/rkey2.pem"},
    {"redis-tls-server-name", 0, "redis.internal", "redis2.internal"},
    {"workers", 0, "7", NULL},
    {"dlq-topic", 0, "dlq", NULL},
    {"max-batch", 0, "77", NULL},
    {"metrics-addr", 0, "127.0.0.1:9", "127.0.0.1:10"},
    {"cache-practitioners", 0, "55", NULL},
    {"until-caught-up", 0, NULL, NULL},
    {"shutdown-timeout", 0, "3", NULL},
    {"kafka", 0, "client.id=c1", "client.id=c2"},
    {"opensearch", 0, "http://os:9200", "http://os2:9200"},
    {"opensearch-index-prefix", 0, "ix-", "jx-"},
    {"opensearch-ca-file", 0, "/tmp/ca.pem", NULL},
    {"opensearch-cert-file", 0, "/tmp/cert.pem", NULL},
    {"opensearch-key-file", 0, "/tmp/key.pem", NULL},
    {"opensearch-credentials-file", 0, "/tmp/creds", "/tmp/creds2"},
    {"READMODEL_OPENSEARCH_USERNAME", 0, "user1", NULL},
    {"READMODEL_OPENSEARCH_PASSWORD", 0, "pw1", NULL},
    {"opensearch-aws-region", 0, "eu-west-1", NULL},
    {"AWS_ACCESS_KEY_ID", 0, "AKIA1", NULL},
    {"AWS_SECRET_ACCESS_KEY", 0, "sk1", NULL},
    {"AWS_SESSION_TOKEN", 0, "tok1", NULL},
    {"opensearch-bulk-docs", 0, "9", NULL},
    {"opensearch-bulk-bytes", 0, "2048", NULL},
    {"target", 0, "all", NULL},
    {"from-beginning", 0, NULL, NULL},
    {"allow-truncated-history", 0, NULL, NULL},
    {"dry-run", 0, NULL, NULL},
    {"flush", 0, NULL, NULL},
    {"yes", 0, NULL, NULL},
    {"lease-ttl", 0, "4000", NULL},
    {"keep-previous", 0, NULL, NULL},
    {"previous-grace", 0, "5", NULL},
    {"output", RM_ON(RM_CMD_REBUILD) | RM_ON(RM_CMD_VERIFY) | RM_ON(RM_CMD_STATUS), "json", "text"},
    {"output", 0, "/tmp/gen.txt", NULL},
    {"practitioners", 0, "12", NULL},
    {"days", 0, "3", NULL},
    {"start-date", 0, "2027-02-03", NULL},
    {"seed", 0, "42", NULL},
    {"invalid-ratio", 0, "0.25", NULL},
    {"ignored-ratio", 0, "0.5", NULL},
    {"partitions", 0, "5", NULL},
    {"brokers-count", 0, "3", NULL},
    {"log-format", 0, "json", NULL},
    {"log-level", 0, "warn", NULL},
    {"check-config", 0, NULL, NULL},
};

static const char *key_of(const rm_opt_t *o) {
    return o->name ? o->name : o->env;
}

static const sample_t *sample_of(const rm_opt_t *o, rm_command_t cmd) {
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
        if (strcmp(samples[i].key, key_of(o)) == 0 &&
            (samples[i].cmds == 0 || (samples[i].cmds & RM_ON(cmd))))
            return &samples[i];
    fail_msg("option %s has no sample value in test_config.c", key_of(o));
    return NULL;
}

static const rm_opt_t *table(size_t *n) {
    return rm_config_options(n);
}

/* Unsets every variable of the table, READMODEL_KAFKA_* included. */
static void clean_env(void) {
    size_t n;
    const rm_opt_t *t = table(&n);
    for (size_t i = 0; i < n; i++)
        if (t[i].env && !(t[i].flags & RM_OPT_ENV_PREFIX))
            unsetenv(t[i].env);
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; *e; e++)
            if (strncmp(*e, "READMODEL_KAFKA_", 16) == 0) {
                char name[256];
                snprintf(name, sizeof(name), "%.*s", (int)strcspn(*e, "="), *e);
                unsetenv(name);
                again = 1;
                break;
            }
    }
}

static int setup(void **state) {
    (void)state;
    clean_env();
    return 0;
}

/* Arguments every parse of cmd needs to pass validation; the one of the
 * option under test is left out. */
static size_t base_args(rm_command_t cmd, const rm_opt_t *skip, char **argv, size_t k) {
    static const struct {
        const char *flag, *value; /* value NULL: a switch */
        unsigned cmds;
    } base[] = {
        {"--brokers", "b",
         RM_ON(RM_CMD_SERVE) | RM_ON(RM_CMD_REBUILD) | RM_ON(RM_CMD_VERIFY) | RM_ON(RM_CMD_STATUS)},
        {"--from-beginning", NULL, RM_ON(RM_CMD_REBUILD)},
        {"--output", "-", RM_ON(RM_CMD_GEN)},
    };
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        if (!(base[i].cmds & RM_ON(cmd)) ||
            (skip && skip->name && strcmp(base[i].flag + 2, skip->name) == 0))
            continue;
        argv[k++] = (char *)base[i].flag;
        if (base[i].value)
            argv[k++] = (char *)base[i].value;
    }
    return k;
}

/* Parses cmd with the base arguments, then `extra` (NULL-terminated). */
static rm_config_result_t parse(rm_command_t cmd, const rm_opt_t *skip, rm_config_t *cfg, char *err,
                                size_t errlen, ...) {
    char *argv[32];
    size_t k = 0;
    argv[k++] = (char *)rm_command_name(cmd);
    k = base_args(cmd, skip, argv, k);
    va_list ap;
    va_start(ap, errlen);
    for (const char *a; (a = va_arg(ap, const char *));)
        argv[k++] = (char *)a;
    va_end(ap);
    argv[k] = NULL;
    err[0] = '\0';
    return rm_config_parse(cmd, (int)k, argv, cfg, err, errlen);
}

/* Whether cfg holds `value` in the field of o (for a LIST: as its last). */
static bool holds(const rm_opt_t *o, const rm_config_t *cfg, const char *value) {
    const char *f = (const char *)cfg + o->offset;
    switch (o->kind) {
    case RM_OPT_STRING:
    case RM_OPT_SECRET:
    case RM_OPT_FILE:
    case RM_OPT_CHOICE:
        return *(char *const *)f && strcmp(*(char *const *)f, value) == 0;
    case RM_OPT_INT:
        return *(const int *)f == atoi(value);
    case RM_OPT_SIZE:
        return *(const size_t *)f == strtoul(value, NULL, 10);
    case RM_OPT_RATIO:
        return *(const double *)f == strtod(value, NULL);
    case RM_OPT_BOOL:
        return *(const bool *)f;
    case RM_OPT_LIST: {
        size_t n = *(const size_t *)(const void *)((const char *)cfg + o->count_offset);
        return n > 0 && strcmp((*(char **const *)f)[n - 1], value) == 0;
    }
    case RM_OPT_CUSTOM:
        if (strcmp(o->name, "seed") == 0)
            return cfg->gen.seed == strtoull(value, NULL, 10);
        if (strcmp(o->name, "start-date") == 0) {
            uint16_t day;
            return rm_date_parse(value, strlen(value), &day) && cfg->gen.start_day == day;
        }
        return true; /* --log-*: the process's log settings, not cfg */
    case RM_OPT_HELP:
        break;
    }
    return false;
}

static void assert_one_line(const char *err) {
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
    assert_null(strchr(err, '\r'));
}

static void test_every_option_parses_from_its_flag(void **state) {
    (void)state;
    size_t n;
    const rm_opt_t *t = table(&n);
    int tested = 0;
    for (size_t i = 0; i < n; i++) {
        if (!t[i].name || t[i].kind == RM_OPT_HELP)
            continue;
        for (int c = 0; c < RM_N_COMMANDS; c++) {
            if (!(t[i].cmds & RM_ON(c)))
                continue;
            const sample_t *s = sample_of(&t[i], (rm_command_t)c);
            char flag[64], err[512];
            rm_config_t cfg;
            snprintf(flag, sizeof(flag), "--%s", t[i].name);
            /* Without the flag the field does not hold the sample... */
            rm_config_result_t r = parse((rm_command_t)c, NULL, &cfg, err, sizeof(err), NULL);
            if (r == RM_CONFIG_OK && t[i].kind != RM_OPT_CUSTOM && s->value)
                assert_false(holds(&t[i], &cfg, s->value));
            rm_config_free(&cfg);
            /* ...with it, it does ("all" needs a URL, --flush needs --yes). */
            const char *more = strcmp(t[i].name, "target") == 0  ? "--opensearch=http://os"
                               : strcmp(t[i].name, "flush") == 0 ? "--yes"
                               : strcmp(t[i].name, "output") == 0 && c == RM_CMD_REBUILD
                                   ? "--dry-run"
                                   : NULL;
            r = s->value ? parse((rm_command_t)c, NULL, &cfg, err, sizeof(err), flag, s->value,
                                 more, NULL)
                         : parse((rm_command_t)c, NULL, &cfg, err, sizeof(err), flag, more, NULL);
            if (r != RM_CONFIG_OK)
                fail_msg("%s %s %s: %s", rm_command_name(c), flag, s->value ? s->value : "", err);
            assert_true(holds(&t[i], &cfg, s->value ? s->value : ""));
            rm_config_free(&cfg);
            tested++;
        }
    }
    assert_true(tested > 60);
}

/* The value a LIST row with an environment prefix reads: KEY=V from
 * <prefix>KEY_UPPER=V. */
static void env_form(const rm_opt_t *o, const char *value, char *name, size_t cap, const char **v) {
    if (!(o->flags & RM_OPT_ENV_PREFIX)) {
        snprintf(name, cap, "%s", o->env);
        *v = value;
        return;
    }
    size_t klen = strcspn(value, "=");
    size_t j = (size_t)snprintf(name, cap, "%s", o->env);
    for (size_t i = 0; i < klen && j + 1 < cap; i++)
        name[j++] =
            value[i] == '.'
                ? '_'
                : (char)(value[i] >= 'a' && value[i] <= 'z' ? value[i] - 'a' + 'A' : value[i]);
    name[j] = '\0';
    *v = value + klen + 1;
}

static void test_every_variable_parses(void **state) {
    (void)state;
    size_t n;
    const rm_opt_t *t = table(&n);
    int tested = 0;
    for (size_t i = 0; i < n; i++) {
        if (!t[i].env)
            continue;
        for (int c = 0; c < RM_N_COMMANDS; c++) {
            if (!(t[i].cmds & RM_ON(c)))
                continue;
            const sample_t *s = sample_of(&t[i], (rm_command_t)c);
            char name[128], err[512];
            const char *v;
            rm_config_t cfg;
            env_form(&t[i], s->value, name, sizeof(name), &v);
            setenv(name, v, 1);
            rm_config_result_t r = parse((rm_command_t)c, &t[i], &cfg, err, sizeof(err), NULL);
            unsetenv(name);
            if (r != RM_CONFIG_OK)
                fail_msg("%s %s=%s: %s", rm_command_name(c), name, v, err);
            assert_true(holds(&t[i], &cfg, s->value));
            rm_config_free(&cfg);
            tested++;
        }
    }
    assert_true(tested >= 15);
}

static void test_flags_override_the_environment(void **state) {
    (void)state;
    size_t n;
    const rm_opt_t *t = table(&n);
    int tested = 0;
    for (size_t i = 0; i < n; i++) {
        if (!t[i].env || !t[i].name)
            continue;
        for (int c = 0; c < RM_N_COMMANDS; c++) {
            if (!(t[i].cmds & RM_ON(c)))
                continue;
            const sample_t *s = sample_of(&t[i], (rm_command_t)c);
            assert_non_null(s->alt);
            char name[128], flag[64], err[512];
            const char *v;
            rm_config_t cfg;
            env_form(&t[i], s->value, name, sizeof(name), &v);
            snprintf(flag, sizeof(flag), "--%s", t[i].name);
            setenv(name, v, 1);
            rm_config_result_t r =
                parse((rm_command_t)c, &t[i], &cfg, err, sizeof(err), flag, s->alt, NULL);
            unsetenv(name);
            if (r != RM_CONFIG_OK)
                fail_msg("%s %s %s: %s", rm_command_name(c), flag, s->alt, err);
            assert_true(holds(&t[i], &cfg, s->alt));
            rm_config_free(&cfg);
            tested++;
        }
    }
    assert_true(tested >= 10);
}

/* READMODEL_METRICS_ADDR is serve's only; rebuild's metrics are off by default. */
static void test_a_variable_of_another_command_is_ignored(void **state) {
    (void)state;
    rm_config_t cfg;
    char err[512];
    setenv("READMODEL_METRICS_ADDR", "127.0.0.1:9", 1);
    assert_int_equal(parse(RM_CMD_VERIFY, NULL, &cfg, err, sizeof(err), NULL), RM_CONFIG_OK);
    assert_null(cfg.metrics_addr);
    rm_config_free(&cfg);
    assert_int_equal(parse(RM_CMD_SERVE, NULL, &cfg, err, sizeof(err), NULL), RM_CONFIG_OK);
    assert_string_equal(cfg.metrics_addr, "127.0.0.1:9");
    rm_config_free(&cfg);
    unsetenv("READMODEL_METRICS_ADDR");
}

/* Whether some row of flag `name` belongs to cmd. */
static bool takes(const rm_opt_t *t, size_t n, const char *name, int cmd) {
    for (size_t i = 0; i < n; i++)
        if (t[i].name && strcmp(t[i].name, name) == 0 && (t[i].cmds & RM_ON(cmd)))
            return true;
    return false;
}

static void test_a_flag_of_another_command_is_refused(void **state) {
    (void)state;
    size_t n;
    const rm_opt_t *t = table(&n);
    int tested = 0;
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; t[i].name && c < RM_N_COMMANDS; c++) {
            if (takes(t, n, t[i].name, c))
                continue;
            char flag[64], err[512], want[256];
            rm_config_t cfg;
            snprintf(flag, sizeof(flag), "--%s", t[i].name);
            char *argv[] = {(char *)rm_command_name(c), flag, "1", NULL};
            assert_int_equal(rm_config_parse((rm_command_t)c, 3, argv, &cfg, err, sizeof(err)),
                             RM_CONFIG_ERROR);
            snprintf(want, sizeof(want), "--%s is not an option of %s (see readmodel %s --help)",
                     t[i].name, rm_command_name(c), rm_command_name(c));
            assert_string_equal(err, want);
            rm_config_free(&cfg);
            tested++;
        }
    }
    assert_true(tested > 100);
}

/* Parses `flag value` for the first command of o; expects `want`. */
static void expect_error(const rm_opt_t *o, const char *value, const char *want) {
    int c = 0;
    while (!(o->cmds & RM_ON(c)))
        c++;
    char flag[64], err[512];
    rm_config_t cfg;
    snprintf(flag, sizeof(flag), "--%s", o->name);
    assert_int_equal(parse((rm_command_t)c, NULL, &cfg, err, sizeof(err), flag, value, NULL),
                     RM_CONFIG_ERROR);
    assert_one_line(err);
    assert_string_equal(err, want);
    rm_config_free(&cfg);
}

static void test_bounds_are_one_line_naming_the_option(void **state) {
    (void)state;
    size_t n;
    const rm_opt_t *t = table(&n);
    char want[256], v[32], list[128];
    for (size_t i = 0; i < n; i++) {
        const rm_opt_t *o = &t[i];
        if (o->kind == RM_OPT_INT || o->kind == RM_OPT_SIZE ||
            (o->kind == RM_OPT_CUSTOM && o->max > 0)) {
            long bad[] = {o->min - 1, o->max + 1};
            for (int k = 0; k < 2; k++) {
                snprintf(v, sizeof(v), "%ld", bad[k]);
                snprintf(want, sizeof(want), "--%s: must be a whole number %ld..%ld (got '%s')",
                         o->name, o->min, o->max, v);
                expect_error(o, v, want);
            }
            snprintf(want, sizeof(want), "--%s: must be a whole number %ld..%ld (got '12x')",
                     o->name, o->min, o->max);
            expect_error(o, "12x", want);
        } else if (o->kind == RM_OPT_RATIO) {
            snprintf(want, sizeof(want), "--%s: must be a number 0..1 (got '1.5')", o->name);
            expect_error(o, "1.5", want);
        } else if (o->choices) {
            size_t j = 0; /* "a|b|c" as "a, b or c" */
            for (const char *p = o->choices; *p; p++)
                j += (size_t)snprintf(list + j, sizeof(list) - j, "%s",
                                      *p != '|'                       ? (char[2]){*p, 0}
                                      : p == strrchr(o->choices, '|') ? " or "
                                                                      : ", ");
            snprintf(want, sizeof(want), "--%s: must be %s (got 'nope')", o->name, list);
            expect_error(o, "nope", want);
        } else if (o->name && (o->kind == RM_OPT_STRING || o->kind == RM_OPT_FILE) &&
                   !(o->flags & RM_OPT_EMPTY_OK)) {
            snprintf(want, sizeof(want), "--%s: must not be empty", o->name);
            expect_error(o, "", want);
        }
    }
}

static void test_redis_prefix_is_at_most_64_bytes(void **state) {
    (void)state;
    char p64[65], p65[66], p200[201], err[512];
    rm_config_t cfg;
    memset(p64, 'p', 64), p64[64] = '\0';
    memset(p65, 'p', 65), p65[65] = '\0';
    memset(p200, 'p', 200), p200[200] = '\0';
    assert_int_equal(parse(RM_CMD_SERVE, NULL, &cfg, err, sizeof(err), "--redis-prefix", p64, NULL),
                     RM_CONFIG_OK);
    assert_string_equal(cfg.redis_prefix, p64);
    rm_config_free(&cfg);
    assert_int_equal(parse(RM_CMD_SERVE, NULL, &cfg, err, sizeof(err), "--redis-prefix", p65, NULL),
                     RM_CONFIG_ERROR);
    assert_string_equal(err, "--redis-prefix: at most 64 bytes (got 65)");
    rm_config_free(&cfg);
    setenv("READMODEL_REDIS_PREFIX", p200, 1);
    assert_int_equal(parse(RM_CMD_STATUS, NULL, &cfg, err, sizeof(err), NULL), RM_CONFIG_ERROR);
    assert_string_equal(err, "READMODEL_REDIS_PREFIX: at most 64 bytes (got 200)");
    rm_config_free(&cfg);
    unsetenv("READMODEL_REDIS_PREFIX");
}

static char *print_of(const rm_config_t *cfg) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rm_config_print(cfg, f);
    fclose(f);
    return buf;
}

static void test_check_config_masks_secrets(void **state) {
    (void)state;
    rm_config_t cfg;
    char err[512];
    setenv("READMODEL_OPENSEARCH_USERNAME", "user1", 1);
    setenv("READMODEL_OPENSEARCH_PASSWORD", "os-secret-1", 1);
    setenv("READMODEL_KAFKA_SASL_PASSWORD", "kafka-secret-2", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-3", 1);
    setenv("AWS_SESSION_TOKEN", "aws-secret-4", 1);
    assert_int_equal(parse(RM_CMD_SERVE, NULL, &cfg, err, sizeof(err), "--redis",
                           "redis://u:redis-secret-5@h:1/0", "--kafka",
                           "ssl.key.password=kafka-secret-6", "--opensearch", "http://os:9200",
                           "--check-config", NULL),
                     RM_CONFIG_OK);
    assert_true(cfg.check_config);
    char *printed = print_of(&cfg), *out = malloc(strlen(printed) + 2);
    sprintf(out, "\n%s", printed); /* every line, the first included, after a \n */
    free(printed);
    assert_null(strstr(out, "secret-"));
    assert_non_null(strstr(out, "\nkafka.sasl.password=***\n"));
    assert_non_null(strstr(out, "\nkafka.ssl.key.password=***\n"));
    assert_non_null(strstr(out, "\nopensearch-auth=basic user user1 password ***\n"));
    assert_non_null(strstr(out, "\nopensearch=http://os:9200 (pipeline: readmodel-opensearch)\n"));
    /* every printed row has its line */
    size_t n;
    const rm_opt_t *t = table(&n);
    for (size_t i = 0; i < n; i++) {
        char line[96];
        snprintf(line, sizeof(line), "\n%s=", t[i].name ? t[i].name : "");
        if ((t[i].flags & RM_OPT_PRINT) && !t[i].print && !strstr(out, line))
            fail_msg("--check-config has no line %s", line + 1);
    }
    free(out);
    rm_config_free(&cfg);
    clean_env();
}

/* rm_config_check_redis's output for cfg; *rc its result. */
static char *check_redis_of(rm_command_t cmd, const rm_config_t *cfg, int *rc, char *err,
                            size_t errlen) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *rc = rm_config_check_redis(cmd, cfg, f, err, errlen);
    fclose(f);
    return buf;
}

/* --check-config asks the configured Redis for its mode: without a server
 * it says why it was not reached and the check still passes (the chart
 * test runs it with no server), never printing the password; a server
 * that accepts and never answers costs about 2 s; a command without Redis
 * asks nothing. (A server's mode, a refused password and TLS failures:
 * test_redis_cluster, test_redis_tls.) */
static void test_check_config_redis_mode_without_server(void **state) {
    (void)state;
    rm_config_t cfg;
    char err[512] = "", url[128];
    int rc;
    assert_int_equal(parse(RM_CMD_SERVE, NULL, &cfg, err, sizeof(err), "--redis",
                           "redis://u:redis-secret-7@127.0.0.1:1/0", "--check-config", NULL),
                     RM_CONFIG_OK);
    char *out = check_redis_of(RM_CMD_SERVE, &cfg, &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "redis-mode=unknown (not reached: redis: cannot connect to "
                                "127.0.0.1:1: Connection refused)\n"));
    assert_null(strstr(out, "secret"));
    free(out);
    rm_config_free(&cfg);
    /* a listening socket nobody accepts on: the connect succeeds, no reply */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", ntohs(a.sin_port));
    assert_int_equal(parse(RM_CMD_VERIFY, NULL, &cfg, err, sizeof(err), "--redis", url, NULL),
                     RM_CONFIG_OK);
    time_t t0 = time(NULL);
    out = check_redis_of(RM_CMD_VERIFY, &cfg, &rc, err, sizeof(err));
    close(fd);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "redis-mode=unknown (not reached: no answer within 3 s)\n"));
    assert_true(time(NULL) - t0 <= 5);
    free(out);
    rm_config_free(&cfg);
    /* --target opensearch: Redis is not used, not asked */
    assert_int_equal(parse(RM_CMD_VERIFY, NULL, &cfg, err, sizeof(err), "--target", "opensearch",
                           "--opensearch", "http://os:9200", "--redis", "redis://127.0.0.1:1",
                           NULL),
                     RM_CONFIG_OK);
    out = check_redis_of(RM_CMD_VERIFY, &cfg, &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_string_equal(out, "");
    free(out);
    rm_config_free(&cfg);
}

/* text with every run of white space as one space. */
static char *squeezed(const char *text) {
    char *s = malloc(strlen(text) + 1), *o = s;
    for (const char *p = text; *p; p++) {
        bool space = *p == ' ' || *p == '\n';
        if (!space)
            *o++ = *p;
        else if (o > s && o[-1] != ' ')
            *o++ = ' ';
    }
    *o = '\0';
    return s;
}

/* What fn wrote (malloc'd). */
static char *written(void (*fn)(FILE *)) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    fn(f);
    assert_int_equal(fclose(f), 0);
    return buf;
}

/* s as roff writes it: '-' as "\\-". */
static void roffed(const char *s, char *out, size_t cap) {
    size_t k = 0;
    for (; *s && k + 3 < cap; s++) {
        if (*s == '-')
            out[k++] = '\\';
        out[k++] = *s;
    }
    out[k] = '\0';
}

/* readmodel(1) and the bash completion come from the same table: each
 * command's section of the man page has each of its options, and its
 * completion line offers exactly its flags. */
static void test_man_page_and_completion_list_every_option(void **state) {
    (void)state;
    size_t n;
    const rm_opt_t *t = table(&n);
    char *man = written(rm_usage_man), *comp = written(rm_usage_bash_completion);
    assert_non_null(strstr(man, ".TH READMODEL 1 "));
    for (int c = 0; c < RM_N_COMMANDS; c++) {
        char head[96], line[160], name[64];
        roffed(rm_command_name(c), name, sizeof(name));
        snprintf(head, sizeof(head), ".SS \"readmodel %s\"\n", name);
        const char *sec = strstr(man, head);
        assert_non_null(sec);
        const char *end = strstr(sec + 1, ".SS ");
        snprintf(head, sizeof(head), "\n    %s) opts=\"", rm_command_name(c));
        const char *cl = strstr(comp, head);
        assert_non_null(cl);
        cl += strlen(head);
        size_t cl_len = strcspn(cl, "\"");
        for (size_t i = 0; i < n; i++) {
            if (!(t[i].cmds & RM_ON(c)) || !t[i].name || t[i].kind == RM_OPT_HELP)
                continue;
            char roff[96];
            roffed(t[i].name, roff, sizeof(roff));
            snprintf(line, sizeof(line), ".TP\n\\fB\\-\\-%s\\fR", roff);
            const char *at = strstr(sec, line);
            if (!at || (end && at > end))
                fail_msg("readmodel(1), %s: no --%s", rm_command_name(c), t[i].name);
            snprintf(line, sizeof(line), "--%s", t[i].name);
            bool offered = false;
            for (const char *w = cl; w < cl + cl_len; w += strcspn(w, " \"") + 1)
                offered = offered || (strncmp(w, line, strlen(line)) == 0 &&
                                      (w[strlen(line)] == ' ' || w[strlen(line)] == '"'));
            if (!offered)
                fail_msg("completion of %s lacks --%s", rm_command_name(c), t[i].name);
        }
    }
    free(man);
    free(comp);
}

static void test_help_lists_every_option_of_the_command(void **state) {
    (void)state;
    size_t n;
    const rm_opt_t *t = table(&n);
    for (int c = 0; c < RM_N_COMMANDS; c++) {
        const char *u = rm_usage((rm_command_t)c);
        char *flat = squeezed(u);
        for (size_t i = 0; i < n; i++) {
            char line[160];
            if (t[i].kind == RM_OPT_HELP)
                snprintf(line, sizeof(line), "\n  -h, --help ");
            else if (t[i].name) /* a switch's name is followed by padding */
                snprintf(line, sizeof(line), "\n  --%s %s", t[i].name, t[i].arg ? t[i].arg : "");
            else
                snprintf(line, sizeof(line), "\n  %s", t[i].env);
            bool listed = strstr(u, line) != NULL;
            if ((t[i].cmds & RM_ON(c)) != 0 && !listed)
                fail_msg("%s --help lacks %s", rm_command_name(c), line + 3);
            if (t[i].name && !takes(t, n, t[i].name, c) && listed)
                fail_msg("%s --help lists %s", rm_command_name(c), line + 3);
            if (!(t[i].cmds & RM_ON(c)))
                continue;
            if (t[i].def) {
                snprintf(line, sizeof(line), "default %s", t[i].def);
                assert_non_null(strstr(flat, line));
            }
            if (t[i].name && t[i].env)
                assert_non_null(strstr(flat, t[i].env));
        }
        free(flat);
    }
}

static void test_errors_name_the_command_and_are_one_line(void **state) {
    (void)state;
    rm_config_t cfg;
    char err[512];
    assert_int_equal(parse(RM_CMD_STATUS, NULL, &cfg, err, sizeof(err), "--bogus", NULL),
                     RM_CONFIG_ERROR);
    assert_string_equal(err, "unknown option '--bogus' (see readmodel status --help)");
    rm_config_free(&cfg);
    assert_int_equal(parse(RM_CMD_VERIFY, NULL, &cfg, err, sizeof(err), "extra", NULL),
                     RM_CONFIG_ERROR);
    assert_string_equal(err, "unexpected argument 'extra' (see readmodel verify --help)");
    rm_config_free(&cfg);
    assert_int_equal(parse(RM_CMD_SERVE, NULL, &cfg, err, sizeof(err), "--topic", "a\nb", NULL),
                     RM_CONFIG_ERROR);
    assert_string_equal(err, "--topic: not a valid Kafka topic name ('a\\nb')");
    rm_config_free(&cfg);
    assert_int_equal(
        parse(RM_CMD_SERVE, NULL, &cfg, err, sizeof(err), "--kafka", "sasl.password:hunter2", NULL),
        RM_CONFIG_ERROR);
    assert_null(strstr(err, "hunter2"));
    rm_config_free(&cfg);
    /* an abbreviation of another command's flag names it */
    assert_int_equal(parse(RM_CMD_VERIFY, NULL, &cfg, err, sizeof(err), "--dlq", "d", NULL),
                     RM_CONFIG_ERROR);
    assert_string_equal(err,
                        "--dlq-topic is not an option of verify (see readmodel verify --help)");
    rm_config_free(&cfg);
    /* and an abbreviation of one's own still works */
    assert_int_equal(parse(RM_CMD_SERVE, NULL, &cfg, err, sizeof(err), "--broker=z", NULL),
                     RM_CONFIG_OK);
    assert_string_equal(cfg.brokers, "z");
    rm_config_free(&cfg);
    assert_int_equal(parse(RM_CMD_GEN, NULL, &cfg, err, sizeof(err), "--days", NULL),
                     RM_CONFIG_ERROR);
    assert_string_equal(err, "--days: needs a value");
    rm_config_free(&cfg);
}

static void test_defaults_and_help(void **state) {
    (void)state;
    rm_config_t cfg;
    char err[512];
    assert_int_equal(parse(RM_CMD_REBUILD, NULL, &cfg, err, sizeof(err), NULL), RM_CONFIG_OK);
    assert_string_equal(cfg.topic, "booking.events");
    assert_string_equal(cfg.target, "redis");
    assert_int_equal(cfg.max_batch, 10000); /* serve's defaults fill every command's fields */
    assert_int_equal(cfg.lease_ttl_ms, 30000);
    assert_true(cfg.workers >= 1);
    rm_config_free(&cfg);
    rm_config_free(&cfg); /* freeing twice is harmless */
    char *argv[] = {"serve", "--bogus-first-is-an-error", "-h", NULL};
    assert_int_equal(rm_config_parse(RM_CMD_SERVE, 3, argv, &cfg, err, sizeof(err)),
                     RM_CONFIG_ERROR);
    rm_config_free(&cfg);
    char *help[] = {"dev-kafka", "--help", NULL};
    assert_int_equal(rm_config_parse(RM_CMD_DEV_KAFKA, 2, help, &cfg, err, sizeof(err)),
                     RM_CONFIG_HELP);
    rm_config_free(&cfg);
    assert_int_equal(parse(RM_CMD_GEN, NULL, &cfg, err, sizeof(err), NULL), RM_CONFIG_OK);
    assert_int_equal(cfg.gen.practitioners, 300);
    assert_true(cfg.gen.invalid_ratio == 0.01);
    rm_config_free(&cfg);
    char *gen[] = {"gen", NULL};
    assert_int_equal(rm_config_parse(RM_CMD_GEN, 1, gen, &cfg, err, sizeof(err)), RM_CONFIG_ERROR);
    assert_string_equal(err, "--brokers: required unless --output is given");
    rm_config_free(&cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_every_option_parses_from_its_flag, setup),
        cmocka_unit_test_setup(test_every_variable_parses, setup),
        cmocka_unit_test_setup(test_flags_override_the_environment, setup),
        cmocka_unit_test_setup(test_a_variable_of_another_command_is_ignored, setup),
        cmocka_unit_test_setup(test_a_flag_of_another_command_is_refused, setup),
        cmocka_unit_test_setup(test_bounds_are_one_line_naming_the_option, setup),
        cmocka_unit_test_setup(test_redis_prefix_is_at_most_64_bytes, setup),
        cmocka_unit_test_setup(test_check_config_masks_secrets, setup),
        cmocka_unit_test_setup(test_help_lists_every_option_of_the_command, setup),
        cmocka_unit_test_setup(test_man_page_and_completion_list_every_option, setup),
        cmocka_unit_test_setup(test_errors_name_the_command_and_are_one_line, setup),
        cmocka_unit_test_setup(test_defaults_and_help, setup),
        cmocka_unit_test_setup(test_check_config_redis_mode_without_server, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
