/* End-to-end helpers: see e2e.h. */
#include "e2e.h"
#include "readmodel/date.h"
#include "readmodel/gen.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Every process a test starts, so none outlives the test binary even when an
 * assertion fails halfway (cmocka leaves the test with longjmp). */
static pid_t children[256];
static int nchildren;

static void forget_child(pid_t pid);

static void kill_children(void) {
    for (int i = 0; i < nchildren; i++)
        if (children[i] > 0 && kill(children[i], SIGKILL) == 0)
            waitpid(children[i], NULL, 0);
}

int e2e_start(e2e_t *e, const char *topic, int partitions) {
    static int registered;
    if (!registered++)
        atexit(kill_children);
    memset(e, 0, sizeof(*e));
    signal(SIGPIPE, SIG_IGN);
    e->topic = topic;
    e->partitions = partitions;
    if (rm_test_redis_start(&e->redis) != 0)
        return -1;
    if (!(e->kafka = rm_mock_kafka_start(1)) ||
        rm_mock_kafka_create_topic(e->kafka, topic, partitions) != 0 ||
        rm_mock_kafka_create_topic(e->kafka, "booking.dlq", 1) != 0)
        return -1;
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", rm_mock_kafka_bootstraps(e->kafka), err,
                      sizeof(err));
    rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err));
    rd_kafka_conf_set(conf, "compression.codec", "lz4", err, sizeof(err));
    rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof(err));
    e->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    e->ref = ref_new();
    return e->producer && e->ref ? 0 : -1;
}

void e2e_stop(e2e_t *e) {
    if (e->producer)
        rd_kafka_destroy(e->producer);
    rm_mock_kafka_stop(e->kafka);
    rm_test_redis_destroy(&e->redis);
    if (e->ref)
        ref_free(e->ref);
}

void e2e_produce(e2e_t *e, const char *key, const char *value, size_t value_len) {
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            e->producer, RD_KAFKA_V_TOPIC(e->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, value_len),
            RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(e->producer, 10);
            continue;
        }
        if (err) {
            fprintf(stderr, "produce: %s\n", rd_kafka_err2str(err));
            abort();
        }
        break;
    }
    ref_apply(e->ref, key, key ? strlen(key) : 0, value, value_len);
    e->produced++;
}

void e2e_flush(e2e_t *e) {
    while (rd_kafka_outq_len(e->producer) > 0)
        rd_kafka_flush(e->producer, 1000);
}

void e2e_produce_generated(e2e_t *e, struct rm_gen *g, long count) {
    rm_gen_msg_t m;
    char key[80];
    for (long i = 0; (count < 0 || i < count) && rm_gen_next(g, &m); i++) {
        snprintf(key, sizeof(key), "%.*s", (int)m.key_len, m.key);
        e2e_produce(e, key, m.value, m.value_len);
    }
    e2e_flush(e);
}

pid_t e2e_command(e2e_t *e, const char *cmd, const char *const *extra) {
    const char *bin = getenv("READMODEL_BIN");
    if (!bin)
        bin = "./readmodel";
    /* RM_TEST_LOG_LEVEL=debug shows what the commands a test runs did. */
    const char *level = getenv("RM_TEST_LOG_LEVEL");
    const char *argv[48] = {bin,         cmd,      "--brokers",   e2e_bootstraps(e),
                            "--topic",   e->topic, "--redis",     e->redis.url,
                            "--workers", "2",      "--log-level", level && *level ? level : "warn"};
    int n = 12;
    if (e->group[0]) {
        argv[n++] = "--group";
        argv[n++] = e->group;
    }
    if (strcmp(cmd, "serve") == 0) {
        /* Port 0: each serve gets a free port, so tests can run several. */
        const char *metrics = getenv("RM_TEST_METRICS_ADDR");
        const char *serve[] = {"--max-batch",    "500",
                               "--kafka",        "session.timeout.ms=6000",
                               "--kafka",        "heartbeat.interval.ms=500",
                               "--metrics-addr", metrics ? metrics : "127.0.0.1:0"};
        for (size_t i = 0; i < sizeof(serve) / sizeof(serve[0]); i++)
            argv[n++] = serve[i];
    }
    for (int i = 0; extra && extra[i] && n < 47; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        execv(bin, (char *const *)argv);
        perror("execv readmodel");
        _exit(127);
    }
    if (pid > 0 && nchildren < 256)
        children[nchildren++] = pid;
    return pid;
}

pid_t e2e_serve(e2e_t *e, const char *const *extra) {
    return e2e_command(e, "serve", extra);
}

int e2e_run(e2e_t *e, const char *cmd, const char *const *extra) {
    return e2e_wait(e2e_command(e, cmd, extra));
}

int e2e_wait(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    forget_child(pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool e2e_wait_caught_up(e2e_t *e, int timeout_s) {
    redisContext *c = rm_test_redis_connect(&e->redis);
    time_t deadline = time(NULL) + timeout_s;
    bool done = false;
    while (!done && time(NULL) < deadline) {
        done = true;
        for (int p = 0; p < e->partitions && done; p++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(e->producer, e->topic, p, &lo, &hi, 5000)) {
                done = false;
                break;
            }
            redisReply *r = redisCommand(c, "GET rm:checkpoint:%s:%d", e->topic, p);
            if (!r) {
                redisFree(c);
                c = rm_test_redis_connect(&e->redis);
                done = false;
                break;
            }
            done = hi == 0 || (r->type == REDIS_REPLY_STRING && atoll(r->str) == hi);
            freeReplyObject(r);
        }
        if (!done)
            usleep(200 * 1000);
    }
    if (c)
        redisFree(c);
    return done;
}

typedef struct {
    redisContext *c;
    int diffs;
    long expected;
} cmp_t;

static void check_key(const char *key, const unsigned char v[36], void *arg) {
    cmp_t *x = arg;
    x->expected++;
    redisReply *r = redisCommand(x->c, "GET rm:%s", key);
    if (!r || r->type != REDIS_REPLY_STRING) {
        if (x->diffs++ < 10)
            fprintf(stderr, "missing key rm:%s\n", key);
    } else if (r->len != 36 || memcmp(r->str, v, 36) != 0) {
        if (x->diffs++ < 10)
            fprintf(stderr, "wrong value for rm:%s\n", key);
    }
    freeReplyObject(r);
}

long e2e_count_keys(e2e_t *e) {
    redisContext *c = rm_test_redis_connect(&e->redis);
    long n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH rm:avail:* COUNT 1000", cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            n = -1;
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        n += (long)r->element[1]->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(c);
    return n;
}

int e2e_compare(e2e_t *e) {
    cmp_t x = {rm_test_redis_connect(&e->redis), 0, 0};
    ref_each_key(e->ref, check_key, &x);
    redisFree(x.c);
    long actual = e2e_count_keys(e);
    if (actual != x.expected) {
        fprintf(stderr, "Redis has %ld availability keys, the reference %ld\n", actual, x.expected);
        x.diffs += (int)(actual > x.expected ? actual - x.expected : x.expected - actual);
    }
    fprintf(stderr, "compared %ld expected keys: %d difference(s)\n", x.expected, x.diffs);
    return x.diffs;
}

struct rm_gen *e2e_generator(uint64_t seed, int practitioners, int days) {
    rm_gen_config_t cfg = {.seed = seed,
                           .practitioners = practitioners,
                           .days = days,
                           .invalid_ratio = 0.02,
                           .ignored_ratio = 0.01};
    rm_date_parse("2026-11-23", 10, &cfg.start_day);
    return rm_gen_new(&cfg);
}

void e2e_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void forget_child(pid_t pid) {
    for (int i = 0; i < nchildren; i++)
        if (children[i] == pid)
            children[i] = 0; /* reaped: never signal a recycled pid */
}

int e2e_wait_timeout(pid_t pid, int timeout_s) {
    int status;
    time_t deadline = time(NULL) + timeout_s;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r < 0)
            return -1;
        if (r == pid)
            break;
        if (time(NULL) >= deadline) {
            fprintf(stderr, "process %d still running after %d s: killed\n", (int)pid, timeout_s);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            forget_child(pid);
            return -2;
        }
        e2e_sleep_ms(50);
    }
    forget_child(pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The inodes of pid's sockets (from /proc/PID/fd); returns their number. */
static int socket_inodes(pid_t pid, unsigned long *inodes, int cap) {
    char dir[64], path[384], link[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < cap) {
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        ssize_t len = readlink(path, link, sizeof(link) - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        if (sscanf(link, "socket:[%lu]", &inodes[n]) == 1)
            n++;
    }
    closedir(d);
    return n;
}

/* A port in LISTEN state (st 0A) in a /proc/net/tcp table whose socket is
 * one of inodes; -1 if none. */
static int listening_port(const char *table, const unsigned long *inodes, int n) {
    FILE *f = fopen(table, "r");
    if (!f)
        return -1;
    char line[512];
    int port = -1;
    while (port < 0 && fgets(line, sizeof(line), f)) {
        unsigned lport, st;
        unsigned long inode;
        /* sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*d %*d %lu", &lport, &st,
                   &inode) != 3 ||
            st != 0x0A)
            continue;
        for (int i = 0; i < n; i++)
            if (inodes[i] == inode)
                port = (int)lport;
    }
    fclose(f);
    return port;
}

int e2e_metrics_port(pid_t pid, int timeout_s) {
    time_t deadline = time(NULL) + timeout_s;
    for (;;) {
        /* The child inherits this process's sockets (the mock brokers'
         * listeners among them): only the ones it opened itself count. */
        unsigned long inodes[512], mine[512];
        int n = socket_inodes(pid, inodes, 512), nmine = socket_inodes(getpid(), mine, 512);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < nmine; j++)
                if (inodes[i] == mine[j]) {
                    inodes[i--] = inodes[--n];
                    break;
                }
        int port = listening_port("/proc/net/tcp", inodes, n);
        if (port < 0)
            port = listening_port("/proc/net/tcp6", inodes, n);
        if (port > 0)
            return port;
        if (time(NULL) >= deadline || kill(pid, 0) != 0) {
            fprintf(stderr, "process %d listens on no TCP port\n", (int)pid);
            return -1;
        }
        e2e_sleep_ms(50);
    }
}

char *e2e_http_get_status(int port, const char *path, int *status) {
    *status = -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char req[256];
    int len = snprintf(req, sizeof(req),
                       "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || write(fd, req, (size_t)len) != len) {
        close(fd);
        return NULL;
    }
    size_t cap = 65536, used = 0;
    char *buf = malloc(cap);
    ssize_t got;
    while (buf && (got = read(fd, buf + used, cap - used - 1)) > 0) {
        used += (size_t)got;
        if (cap - used < 4096) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                free(buf);
            buf = nb;
            cap *= 2;
        }
    }
    close(fd);
    if (!buf)
        return NULL;
    buf[used] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || !body) {
        free(buf);
        return NULL;
    }
    *status = atoi(buf + 8);
    memmove(buf, body + 4, strlen(body + 4) + 1);
    return buf;
}

char *e2e_http_get(int port, const char *path) {
    int status;
    char *body = e2e_http_get_status(port, path, &status);
    if (body && status != 200) {
        free(body);
        body = NULL;
    }
    return body;
}

double e2e_metric_sum(const char *text, const char *prefix) {
    double sum = 0;
    size_t n = strlen(prefix);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, prefix, n) == 0) {
            const char *sp = strchr(l + n, ' ');
            if (sp)
                sum += atof(sp + 1);
        }
    return sum;
}

double e2e_metric(int port, const char *prefix) {
    char *m = e2e_http_get(port, "/metrics");
    if (!m)
        return -1;
    double v = e2e_metric_sum(m, prefix);
    free(m);
    return v;
}

bool e2e_wait_metric(int port, const char *prefix, double at_least, int timeout_s) {
    time_t deadline = time(NULL) + timeout_s;
    double v;
    while ((v = e2e_metric(port, prefix)) < at_least) {
        if (time(NULL) >= deadline) {
            fprintf(stderr, "%s is %g after %d s, expected at least %g\n", prefix, v, timeout_s,
                    at_least);
            return false;
        }
        e2e_sleep_ms(100);
    }
    return true;
}

double e2e_slow_flushes(int port, const char *target) {
    char *m = e2e_http_get(port, "/metrics");
    if (!m)
        return -1;
    char count[128], le1[128];
    snprintf(count, sizeof(count), "readmodel_sink_flush_duration_seconds_count{target=\"%s\"}",
             target);
    snprintf(le1, sizeof(le1),
             "readmodel_sink_flush_duration_seconds_bucket{target=\"%s\",le=\"1\"}", target);
    double v = e2e_metric_sum(m, count) - e2e_metric_sum(m, le1);
    free(m);
    return v;
}

/* Starts `readmodel CMD` with e's connection flags (--workers only for the
 * commands that take it) and stdout on fd out. */
static pid_t command_to(e2e_t *e, const char *cmd, const char *const *extra, int out) {
    const char *bin = getenv("READMODEL_BIN");
    const char *level = getenv("RM_TEST_LOG_LEVEL");
    const char *argv[48] = {bin ? bin : "./readmodel",
                            cmd,
                            "--brokers",
                            e2e_bootstraps(e),
                            "--topic",
                            e->topic,
                            "--redis",
                            e->redis.url,
                            "--log-level",
                            level && *level ? level : "warn"};
    int n = 10;
    if (strcmp(cmd, "status") != 0 && e->group[0]) {
        argv[n++] = "--group";
        argv[n++] = e->group;
    }
    if (strcmp(cmd, "status") != 0) {
        argv[n++] = "--workers";
        argv[n++] = "2";
    }
    for (int i = 0; extra && extra[i] && n < 47; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out, STDOUT_FILENO);
        execv(argv[0], (char *const *)argv);
        perror("execv readmodel");
        _exit(127);
    }
    if (pid > 0 && nchildren < 256)
        children[nchildren++] = pid;
    return pid;
}

char *e2e_capture(e2e_t *e, const char *cmd, const char *const *extra, int *exit_code) {
    int fds[2];
    if (pipe(fds) != 0)
        return NULL;
    pid_t pid = command_to(e, cmd, extra, fds[1]);
    close(fds[1]);
    size_t len = 0, cap = 65536;
    char *out = malloc(cap);
    ssize_t n;
    while (out && (n = read(fds[0], out + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 4096) {
            char *bigger = realloc(out, cap *= 2);
            if (!bigger)
                free(out);
            out = bigger;
        }
    }
    close(fds[0]);
    int rc = pid > 0 ? e2e_wait(pid) : -1;
    if (exit_code)
        *exit_code = rc;
    if (out)
        out[len] = '\0';
    return out;
}

/* ---- on a real broker (the rest is in e2e_real.c) ---- */

const char *e2e_bootstraps(const e2e_t *e) {
    return e->bootstraps ? e->bootstraps : rm_mock_kafka_bootstraps(e->kafka);
}

void e2e_begin(e2e_t *e, const char *topic, int partitions) {
    static int registered;
    if (!registered++)
        atexit(kill_children);
    memset(e, 0, sizeof(*e));
    signal(SIGPIPE, SIG_IGN);
    e->topic = topic;
    e->partitions = partitions;
}

/* ---- a command's log in a file ---- */

pid_t e2e_command_logged(e2e_t *e, const char *cmd, const char *const *extra, const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (fd < 0)
        return -1;
    /* The child inherits stderr: point ours at the file around the fork. */
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    pid_t pid = e2e_command(e, cmd, extra);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    return pid;
}

/* The file's text (caller frees), NULL when it cannot be read. */
static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t len = 0, cap = 65536;
    char *text = malloc(cap);
    size_t got;
    while (text && (got = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 4096) {
            char *bigger = realloc(text, cap *= 2);
            if (!bigger)
                free(text);
            text = bigger;
        }
    }
    fclose(f);
    if (text)
        text[len] = '\0';
    return text;
}

/* Whether text has needle (a substring, or an extended regular expression
 * matched line by line when re is given). */
static bool log_has(const char *text, const char *needle, const regex_t *re) {
    return re ? regexec(re, text, 0, NULL, 0) == 0 : strstr(text, needle) != NULL;
}

static bool wait_log(const char *path, const char *needle, const regex_t *re, int timeout_s) {
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        char *text = read_text(path);
        bool found = text && log_has(text, needle, re);
        free(text);
        if (found)
            return true;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= timeout_s)
            break;
        e2e_sleep_ms(200);
    }
    fprintf(stderr, "%s: no line %s \"%s\" within %d s; the log:\n", path, re ? "matching" : "with",
            needle, timeout_s);
    e2e_log_dump(path);
    return false;
}

bool e2e_wait_log(const char *path, const char *needle, int timeout_s) {
    return wait_log(path, needle, NULL, timeout_s);
}

bool e2e_wait_log_match(const char *path, const char *pattern, int timeout_s) {
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB | REG_NEWLINE) != 0) {
        fprintf(stderr, "bad regular expression: %s\n", pattern);
        return false;
    }
    bool found = wait_log(path, pattern, &re, timeout_s);
    regfree(&re);
    return found;
}

void e2e_log_dump(const char *path) {
    char *text = read_text(path);
    if (text)
        fputs(text, stderr);
    free(text);
}
