/*
 * Observability of serve end to end: /metrics accepted by the real promtool,
 * lag that shows while Redis writes are paused and returns to 0, /readyz
 * unready while Redis is down and ready again after, /livez live throughout,
 * bounded labels and Prometheus naming.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cases.h"

#include "e2e.h"
#include "promtool.h"
#include "readmodel/date.h"
#include "readmodel/gen.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOPIC "booking.events"

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* A port on loopback that is in use: listens on it; *port gets its number.
 * Returns the socket (caller closes). */
static int busy_port(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    listen(fd, 1);
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

typedef struct {
    char *buf;
    size_t len;
} body_t;

static size_t on_body(char *p, size_t size, size_t n, void *arg) {
    body_t *b = arg;
    char *nb = realloc(b->buf, b->len + size * n + 1);
    if (!nb)
        return 0;
    memcpy(nb + b->len, p, size * n);
    b->buf = nb;
    b->len += size * n;
    b->buf[b->len] = '\0';
    return size * n;
}

/* GET; returns the HTTP status (0 when unreachable); *out gets the body. */
static long http_get(int port, const char *path, char **out) {
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    body_t b = {calloc(1, 1), 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (out)
        *out = b.buf;
    else
        free(b.buf);
    return status;
}

/* Sum of a metric's samples whose line starts with `prefix`. */
static double sum_metric(const char *text, const char *prefix) {
    double sum = 0;
    size_t n = strlen(prefix);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, prefix, n) == 0) {
            const char *sp = strchr(l, ' ');
            if (sp)
                sum += atof(sp + 1);
        }
    return sum;
}

static bool wait_metric(int port, const char *prefix, int at_least_one, int timeout_s) {
    time_t deadline = time(NULL) + timeout_s;
    while (time(NULL) < deadline) {
        char *m = NULL;
        if (http_get(port, "/metrics", &m) == 200) {
            double v = sum_metric(m, prefix);
            free(m);
            if (at_least_one ? v > 0 : v == 0)
                return true;
        } else {
            free(m);
        }
        usleep(200 * 1000);
    }
    return false;
}

static bool wait_status(int port, const char *path, long want, int timeout_s) {
    time_t deadline = time(NULL) + timeout_s;
    long got = 0;
    char *body = NULL;
    while (time(NULL) < deadline) {
        free(body);
        if ((got = http_get(port, path, &body)) == want) {
            free(body);
            return true;
        }
        usleep(200 * 1000);
    }
    fprintf(stderr, "%s on port %d: status %ld, body: %s\n", path, port, got, body ? body : "");
    free(body);
    return false;
}

/* Polls a command's /metrics until `line` is in it (the command may not be
 * listening yet). Returns the body (caller frees) or NULL after timeout_s. */
static char *wait_metrics_line(int port, const char *line, int timeout_s) {
    time_t deadline = time(NULL) + timeout_s;
    while (time(NULL) < deadline) {
        char *m = NULL;
        if (http_get(port, "/metrics", &m) == 200 && strstr(m, line))
            return m;
        free(m);
        usleep(100 * 1000);
    }
    return NULL;
}

static rm_gen_t *generator(uint64_t seed) {
    return e2e_generator(seed, 40, 5);
}

static void test_metrics_health_and_lag(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 3), 0);
    rm_gen_t *g = generator(3);
    e2e_produce_generated(&e, g, 1500);
    int port = free_port();
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    setenv("RM_TEST_METRICS_ADDR", addr, 1);
    pid_t serve = e2e_serve(&e, NULL);
    unsetenv("RM_TEST_METRICS_ADDR");
    assert_true(e2e_wait_caught_up(&e, 60));
    assert_true(wait_status(port, "/readyz", 200, 20));
    assert_int_equal(http_get(port, "/livez", NULL), 200);
    assert_int_equal(http_get(port, "/nope", NULL), 404);

    /* The exposition is valid for the real promtool, names follow the
     * conventions and no label names a practitioner. */
    /* Offsets are refreshed every second: wait until every partition shows. */
    char *m = NULL;
    const char *last_series =
        "readmodel_consumer_lag_seconds{target=\"redis\",topic=\"" TOPIC "\",partition=\"2\"}";
    for (int i = 0; i < 50; i++) {
        free(m);
        m = NULL;
        if (http_get(port, "/metrics", &m) == 200 && strstr(m, last_series))
            break;
        usleep(200 * 1000);
    }
    assert_non_null(strstr(m, last_series));
    assert_true(sum_metric(m, "readmodel_events_total{target=\"redis\",result=\"applied\"}") > 0);
    assert_true(sum_metric(m, "readmodel_invalid_events_total{") > 0);
    assert_true(sum_metric(m, "readmodel_assigned_partitions{") == 3);
    assert_null(strstr(m, "p-000"));
    for (const char *l = m; (l = strstr(l, "# TYPE ")); l++) {
        char name[128], type[32];
        assert_int_equal(sscanf(l, "# TYPE %127s %31s", name, type), 2);
        if (strcmp(type, "counter") == 0)
            assert_non_null(strstr(name, "_total"));
    }
    assert_promtool_accepts(m);
    free(m);

    /* Lag: writes paused, events produced; lag shows in messages and seconds,
     * then returns to 0 once writes resume. */
    redisContext *c = rm_test_redis_connect(&e.redis);
    freeReplyObject(redisCommand(c, "CLIENT PAUSE 6000 WRITE"));
    redisFree(c);
    e2e_produce_generated(&e, g, 300);
    assert_true(wait_metric(port, "readmodel_consumer_lag_messages{", 1, 5));
    assert_true(wait_metric(port, "readmodel_consumer_lag_seconds{", 1, 5));
    assert_true(wait_metric(port, "readmodel_consumer_lag_messages{", 0, 30));
    assert_true(wait_metric(port, "readmodel_consumer_lag_seconds{", 0, 5));
    assert_true(e2e_wait_caught_up(&e, 30));
    assert_int_equal(e2e_compare(&e), 0);

    /* verify and rebuild results reach serve's /metrics (and so alerts). */
    c = rm_test_redis_connect(&e.redis);
    redisReply *keys = redisCommand(c, "KEYS rm:avail:*");
    assert_true(keys->elements > 0);
    freeReplyObject(redisCommand(c, "DEL %s", keys->element[0]->str));
    freeReplyObject(keys);
    redisFree(c);
    const char *verify[] = {"--target", "redis", NULL};
    assert_int_equal(e2e_run(&e, "verify", verify), 1);
    assert_true(wait_metric(port, "readmodel_verify_last_drift{", 1, 20));
    const char *rebuild[] = {"--target", "redis", "--from-beginning", NULL};
    assert_int_equal(e2e_run(&e, "rebuild", rebuild), 0);
    assert_int_equal(e2e_run(&e, "verify", verify), 0);
    assert_true(wait_metric(port, "readmodel_verify_last_drift{", 0, 20));
    assert_true(wait_metric(port, "readmodel_rebuild_last_success{", 1, 20));
    assert_true(e2e_wait_caught_up(&e, 30));

    /* Redis down: unready within seconds, still live; ready again after. */
    rm_test_redis_stop(&e.redis, 1);
    assert_true(wait_status(port, "/readyz", 503, 10));
    assert_int_equal(http_get(port, "/livez", NULL), 200);
    assert_int_equal(rm_test_redis_restart(&e.redis), 0);
    assert_true(wait_status(port, "/readyz", 200, 20));
    e2e_produce_generated(&e, g, -1);
    rm_gen_free(g);
    assert_true(e2e_wait_caught_up(&e, 60));
    assert_int_equal(e2e_compare(&e), 0);

    kill(serve, SIGTERM);
    assert_int_equal(e2e_wait(serve), 0);
    e2e_stop(&e);
}

/* A real Prometheus server (Debian package prometheus) scrapes serve and a
 * PromQL query returns the lag series of every partition. */
static void test_prometheus_scrapes_serve(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 2), 0);
    rm_gen_t *g = generator(4);
    e2e_produce_generated(&e, g, -1);
    rm_gen_free(g);
    int port = free_port(), prom_port = free_port();
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    setenv("RM_TEST_METRICS_ADDR", addr, 1);
    pid_t serve = e2e_serve(&e, NULL);
    unsetenv("RM_TEST_METRICS_ADDR");
    assert_true(e2e_wait_caught_up(&e, 60));

    char dir[] = "/tmp/rm-prom-XXXXXX", cfg[128], data[128], listen[64];
    assert_non_null(mkdtemp(dir));
    snprintf(cfg, sizeof(cfg), "%s/prometheus.yml", dir);
    snprintf(data, sizeof(data), "--storage.tsdb.path=%s/data", dir);
    snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d", prom_port);
    FILE *f = fopen(cfg, "w");
    fprintf(f,
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: readmodel\n    static_configs:\n"
            "      - targets: ['%s']\n",
            addr);
    fclose(f);
    char config_flag[160];
    snprintf(config_flag, sizeof(config_flag), "--config.file=%s", cfg);
    pid_t prom = fork();
    if (prom == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execlp("prometheus", "prometheus", config_flag, data, listen, (char *)NULL);
        _exit(127);
    }
    bool found = false;
    char *body = NULL;
    for (int i = 0; i < 150 && !found; i++) {
        usleep(200 * 1000);
        free(body);
        body = NULL;
        if (http_get(prom_port, "/api/v1/query?query=readmodel_consumer_lag_messages", &body) ==
            200)
            found = strstr(body, "\"partition\":\"0\"") && strstr(body, "\"partition\":\"1\"");
    }
    if (!found)
        fprintf(stderr, "Prometheus answered: %s\n", body ? body : "(nothing)");
    free(body);
    kill(prom, SIGTERM);
    waitpid(prom, NULL, 0);
    char rm[200];
    snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
    assert_int_equal(system(rm), 0);
    assert_true(found);
    kill(serve, SIGTERM);
    assert_int_equal(e2e_wait(serve), 0);
    e2e_stop(&e);
}

/* Every line of a file is a JSON object with time, level and msg; lines
 * containing must_contain that carry target, partition, offset and reason
 * as fields are counted in *matched. Returns
 * the number of lines; fails the test on any other line. */
static int check_json_lines(const char *path, const char *must_contain, int *matched) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        if (!o || !json_is_string(json_object_get(o, "time")) ||
            !json_is_string(json_object_get(o, "level")) ||
            !json_is_string(json_object_get(o, "msg")))
            fail_msg("not a JSON log line: %s", line);
        if (must_contain && strstr(line, must_contain) && json_object_get(o, "partition") &&
            json_object_get(o, "offset") && json_object_get(o, "target") &&
            json_is_string(json_object_get(o, "reason")))
            (*matched)++;
        json_decref(o);
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

static bool file_contains(const char *path, const char *needle) {
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "grep -q -e '%s' '%s'", needle, path);
    return system(cmd) == 0;
}

static void test_json_logs_and_no_secrets(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 2), 0);
    rm_gen_t *g = generator(5);
    e2e_produce_generated(&e, g, -1);
    rm_gen_free(g);
    const char *bin = getenv("READMODEL_BIN");
    char log[] = "/tmp/rm-log-XXXXXX", cmd[1024];
    close(mkstemp(log));

    /* Reachable Redis: invalid events are logged with their context. */
    snprintf(cmd, sizeof(cmd),
             "'%s' serve --brokers %s --redis %s --metrics-addr off --log-format json "
             "--until-caught-up 2> %s",
             bin, rm_mock_kafka_bootstraps(e.kafka), e.redis.url, log);
    assert_int_equal(system(cmd), 0);
    int matched = 0;
    /* the facts are fields: the message is the fixed sentence */
    assert_true(check_json_lines(log, "\"msg\":\"invalid event\"", &matched) > 0);
    assert_true(matched > 0);

    /* Credentials in the Redis URL and in --kafka never reach a log line,
     * even while Redis is unreachable and errors are logged. */
    snprintf(cmd, sizeof(cmd),
             "timeout -s TERM 5 '%s' serve --brokers %s --redis redis://app:s3cretpw@127.0.0.1:1/0 "
             "--kafka sasl.password=k4fkapw --metrics-addr off --log-format json "
             "--log-level debug --shutdown-timeout 1 2> %s",
             bin, rm_mock_kafka_bootstraps(e.kafka), log);
    int st = system(cmd);
    (void)st;
    assert_true(check_json_lines(log, NULL, &matched) > 0);
    assert_true(file_contains(log, "redis"));
    assert_false(file_contains(log, "s3cretpw"));
    assert_false(file_contains(log, "k4fkapw"));
    unlink(log);
    e2e_stop(&e);
}

/* rebuild and verify serve their own /metrics while they run (a Kubernetes
 * Job is observable): phase, progress and rate, accepted by promtool, and
 * none of serve's pipeline series (a Job must not look like a sink that is
 * down). Every broker answers 3 s late, which holds the command in its
 * replay phase long enough to be seen whatever the machine's speed. */
static void test_rebuild_and_verify_metrics(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 3), 0);
    rm_gen_t *g = generator(6);
    e2e_produce_generated(&e, g, -1);
    rm_gen_free(g);
    struct {
        const char *cmd;
        int want_rc;
    } runs[] = {{"rebuild", 0}, {"verify", 0}};
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        int port = free_port();
        char addr[64], replay_line[160];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        const char *rebuild[] = {"--target",       "redis", "--from-beginning",
                                 "--metrics-addr", addr,    NULL};
        const char *verify[] = {"--target", "redis", "--metrics-addr", addr, NULL};
        assert_int_equal(rm_mock_kafka_set_rtt(e.kafka, 3000), 0);
        pid_t pid = e2e_command(&e, runs[i].cmd, i == 0 ? rebuild : verify);
        snprintf(replay_line, sizeof(replay_line),
                 "readmodel_rebuild_phase{target=\"redis\",command=\"%s\",phase=\"replay\"} 1",
                 runs[i].cmd);
        char *m = wait_metrics_line(port, replay_line, 60);
        assert_non_null(m);
        assert_promtool_accepts(m);
        char in_progress[128];
        snprintf(in_progress, sizeof(in_progress),
                 "readmodel_rebuild_in_progress{target=\"redis\",command=\"%s\"} 1", runs[i].cmd);
        assert_non_null(strstr(m, in_progress));
        double ratio = sum_metric(m, "readmodel_rebuild_progress_ratio{");
        assert_true(ratio >= 0 && ratio <= 1);
        assert_non_null(strstr(m, "readmodel_rebuild_events_per_second{"));
        assert_non_null(strstr(m, "process_resident_memory_bytes "));
        assert_null(strstr(m, "readmodel_sink_up{"));
        assert_null(strstr(m, "readmodel_consumer_lag_messages{"));
        free(m);
        assert_int_equal(http_get(port, "/livez", NULL), 200);
        assert_int_equal(http_get(port, "/readyz", NULL), 200);
        /* only now let the command finish */
        assert_int_equal(rm_mock_kafka_set_rtt(e.kafka, 0), 0);
        assert_int_equal(e2e_wait(pid), runs[i].want_rc);
        /* the endpoint goes away with the command */
        assert_int_equal(http_get(port, "/metrics", NULL), 0);
    }
    /* A busy --metrics-addr: the command refuses to start (exit 2). */
    int busy_at;
    int fd = busy_port(&busy_at);
    char busy[64];
    snprintf(busy, sizeof(busy), "127.0.0.1:%d", busy_at);
    const char *busy_rebuild[] = {"--target",       "redis", "--from-beginning",
                                  "--metrics-addr", busy,    NULL};
    assert_int_equal(e2e_run(&e, "rebuild", busy_rebuild), 2);
    close(fd);
    e2e_stop(&e);
}

static void test_metrics_addr_errors(void **state) {
    (void)state;
    char cmd[512];
    const char *bin = getenv("READMODEL_BIN");
    snprintf(cmd, sizeof(cmd), "'%s' serve --brokers x --metrics-addr nope 2>/dev/null", bin);
    int st = system(cmd);
    assert_int_equal(WEXITSTATUS(st), 2);
    /* A port in use: serve refuses to start (exit 2) with the reason. */
    int busy_at;
    int fd = busy_port(&busy_at);
    snprintf(cmd, sizeof(cmd),
             "'%s' serve --brokers 127.0.0.1:1 --metrics-addr 127.0.0.1:%d 2>&1 | grep -q "
             "'cannot listen'",
             bin, busy_at);
    assert_int_equal(system(cmd), 0);
    close(fd);
}

int main(int argc, char **argv) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_addr_errors),
        cmocka_unit_test(test_metrics_health_and_lag),
        cmocka_unit_test(test_prometheus_scrapes_serve),
        cmocka_unit_test(test_rebuild_and_verify_metrics),
        cmocka_unit_test(test_json_logs_and_no_secrets),
    };
    int rc = RM_RUN_CASES(tests, NULL, NULL, argc, argv);
    curl_global_cleanup();
    return rc;
}
