/* A real Apache Kafka for tests: see kafka_real.h. */
#include "kafka_real.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_NODES 3

typedef struct {
    pid_t pid; /* also its process group */
    int port;  /* PLAINTEXT listener */
    int cport; /* CONTROLLER listener */
    char conf[256];
    char log[256];
} node_t;

struct kafka_real {
    int n;
    node_t nodes[MAX_NODES];
    char dir[128];
    char *classpath;
    char version[32];
    char bootstraps[128];
    double start_s;
};

/* Brokers of every cluster still running, killed at exit. */
static pid_t live[16];
static int nlive;

static void kill_live(void) {
    for (int i = 0; i < nlive; i++)
        if (live[i] > 0 && kill(-live[i], SIGKILL) == 0)
            waitpid(live[i], NULL, 0);
}

static void live_add(pid_t pid) {
    static int registered;
    if (!registered++)
        atexit(kill_live);
    for (int i = 0; i < nlive; i++)
        if (live[i] == 0) {
            live[i] = pid;
            return;
        }
    if (nlive < 16)
        live[nlive++] = pid;
}

static void live_forget(pid_t pid) {
    for (int i = 0; i < nlive; i++)
        if (live[i] == pid)
            live[i] = 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A port free on loopback now (the kernel's pick). */
static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) {
        buf[len] = '\0';
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
            buf[--len] = '\0';
    }
    return buf;
}

/* The classpath (and version) that scripts/setup.d/20-kafka.sh cached. */
static int load_classpath(kafka_real_t *k) {
    const char *home = getenv("HOME");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *want = getenv("RM_KAFKA_VERSION");
    char base[256], path[320];
    if (xdg && *xdg)
        snprintf(base, sizeof(base), "%s/readmodel", xdg);
    else
        snprintf(base, sizeof(base), "%s/.cache/readmodel", home ? home : "/root");
    if (want && *want) {
        snprintf(path, sizeof(path), "%s/kafka-%s.classpath", base, want);
        snprintf(k->version, sizeof(k->version), "%s", want);
    } else {
        snprintf(path, sizeof(path), "%s/kafka.version", base);
        char *v = read_file(path);
        snprintf(k->version, sizeof(k->version), "%s", v ? v : "?");
        free(v);
        snprintf(path, sizeof(path), "%s/kafka.classpath", base);
    }
    k->classpath = read_file(path);
    if (!k->classpath || !*k->classpath) {
        fprintf(stderr,
                "kafka_real: no Apache Kafka classpath at %s: run `bash scripts/setup.sh --real` "
                "(scripts/setup.d/20-kafka.sh resolves Kafka from Maven Central)\n",
                path);
        return -1;
    }
    return 0;
}

static int write_conf(kafka_real_t *k, int i) {
    node_t *nd = &k->nodes[i];
    char voters[256] = "";
    for (int j = 0; j < k->n; j++) {
        size_t len = strlen(voters);
        snprintf(voters + len, sizeof(voters) - len, "%s%d@127.0.0.1:%d", j ? "," : "", j + 1,
                 k->nodes[j].cport);
    }
    snprintf(nd->conf, sizeof(nd->conf), "%s/node%d.properties", k->dir, i + 1);
    snprintf(nd->log, sizeof(nd->log), "%s/node%d.log", k->dir, i + 1);
    FILE *f = fopen(nd->conf, "w");
    if (!f)
        return -1;
    int rf = k->n, isr = k->n > 1 ? 2 : 1;
    fprintf(f,
            "process.roles=broker,controller\nnode.id=%d\ncontroller.quorum.voters=%s\n"
            "listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d\n"
            "advertised.listeners=PLAINTEXT://127.0.0.1:%d\n"
            "controller.listener.names=CONTROLLER\n"
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
            "inter.broker.listener.name=PLAINTEXT\nlog.dirs=%s/data%d\n"
            "num.partitions=1\ndefault.replication.factor=%d\nmin.insync.replicas=%d\n"
            "offsets.topic.replication.factor=%d\noffsets.topic.num.partitions=4\n"
            "transaction.state.log.replication.factor=%d\ntransaction.state.log.min.isr=%d\n"
            "transaction.state.log.num.partitions=4\n"
            "share.coordinator.state.topic.replication.factor=%d\n"
            "share.coordinator.state.topic.min.isr=%d\n"
            "auto.create.topics.enable=false\ngroup.initial.rebalance.delay.ms=0\n"
            /* Small for a test: fewer threads and a 16 MiB cleaner buffer
             * (the default is 128 MiB); the cleaner looks every 200 ms so
             * a compaction test need not wait 15 s. */
            "num.network.threads=2\nnum.io.threads=2\nbackground.threads=2\n"
            "num.recovery.threads.per.data.dir=1\nlog.cleaner.threads=1\n"
            "log.cleaner.dedupe.buffer.size=16777216\nlog.cleaner.backoff.ms=200\n"
            "log.retention.check.interval.ms=1000\n"
            /* A killed leader is noticed within seconds. */
            "broker.session.timeout.ms=6000\nbroker.heartbeat.interval.ms=1000\n"
            "controller.quorum.election.timeout.ms=1000\ncontroller.quorum.fetch.timeout.ms=2000\n"
            "unclean.leader.election.enable=false\n",
            i + 1, voters, nd->port, nd->cport, nd->port, k->dir, i + 1, rf, isr, rf, rf, isr, rf,
            isr);
    return fclose(f) == 0 ? 0 : -1;
}

/* Starts java with args in its own process group, output to log; the JVM
 * dies with this process (parent-death signal). The pid, or -1. */
static pid_t spawn_java(kafka_real_t *k, const char *log, const char *const *args) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        if (!freopen(log, "a", stdout) || dup2(fileno(stdout), 2) < 0)
            _exit(126);
        char log4j[300];
        snprintf(log4j, sizeof(log4j), "-Dlog4j2.configurationFile=%s/log4j2.properties", k->dir);
        /* A test broker starts on a loaded machine: the client compiler
         * only and the serial collector cost a starting JVM the least CPU.
         * RM_KAFKA_JVM_OPTS replaces these (bench/ runs with the server
         * compiler and G1, as production does). */
        const char *opts = getenv("RM_KAFKA_JVM_OPTS");
        char optbuf[512];
        snprintf(optbuf, sizeof(optbuf), "%s",
                 opts && *opts ? opts
                               : "-Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "
                                 "-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true");
        const char *argv[40] = {"java"};
        int n = 1;
        for (char *save = NULL, *tok = strtok_r(optbuf, " ", &save); tok && n < 24;
             tok = strtok_r(NULL, " ", &save))
            argv[n++] = tok;
        argv[n++] = log4j;
        argv[n++] = "-cp";
        argv[n++] = k->classpath;
        for (int i = 0; args[i] && n < 39; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execvp("java", (char *const *)argv);
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

static int wait_exit(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void print_log_tail(const char *log) {
    char cmd[320];
    snprintf(cmd, sizeof(cmd), "tail -n 30 '%s' >&2", log);
    if (system(cmd) != 0)
        fprintf(stderr, "(no log at %s)\n", log);
}

/* kafka-storage format for every node, in parallel. */
static int format_all(kafka_real_t *k) {
    pid_t pids[MAX_NODES];
    /* A fixed cluster id: 22 characters of URL-safe base64, 16 bytes. */
    for (int i = 0; i < k->n; i++) {
        const char *args[] = {"kafka.tools.StorageTool", "format", "-t",
                              "cmVhZG1vZGVsLXRlc3QxMg",  "-c",     k->nodes[i].conf,
                              "--ignore-formatted",      NULL};
        pids[i] = spawn_java(k, k->nodes[i].log, args);
    }
    int rc = 0;
    for (int i = 0; i < k->n; i++)
        if (pids[i] < 0 || wait_exit(pids[i]) != 0) {
            fprintf(stderr, "kafka_real: storage format of node %d failed:\n", i + 1);
            print_log_tail(k->nodes[i].log);
            rc = -1;
        }
    return rc;
}

int kafka_real_restart(kafka_real_t *k, int i) {
    const char *args[] = {"kafka.Kafka", k->nodes[i].conf, NULL};
    pid_t pid = spawn_java(k, k->nodes[i].log, args);
    if (pid < 0)
        return -1;
    k->nodes[i].pid = pid;
    live_add(pid);
    return 0;
}

int kafka_real_kill(kafka_real_t *k, int i, int sig) {
    pid_t pid = k->nodes[i].pid;
    if (pid <= 0)
        return -1;
    kill(-pid, sig);
    wait_exit(pid);
    live_forget(pid);
    k->nodes[i].pid = 0;
    return 0;
}

/* The number of brokers in the cluster's metadata, asked of bootstrap. */
static int brokers_up(const char *bootstrap) {
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk)
        return -1;
    const struct rd_kafka_metadata *md = NULL;
    int n = 0;
    if (rd_kafka_metadata(rk, 0, NULL, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        n = md->broker_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy(rk);
    return n;
}

static void write_log4j(const kafka_real_t *k) {
    char path[200];
    snprintf(path, sizeof(path), "%s/log4j2.properties", k->dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    /* RM_KAFKA_LOG_LEVEL=INFO shows what the brokers do (in their logs
     * in the data directory; RM_KEEP_KAFKA=1 keeps it). */
    const char *level = getenv("RM_KAFKA_LOG_LEVEL");
    fprintf(f,
            "appender.out.type=Console\nappender.out.name=out\n"
            "appender.out.layout.type=PatternLayout\n"
            "appender.out.layout.pattern=[%%d] %%p %%m (%%c)%%n\n"
            "rootLogger.level=%s\nrootLogger.appenderRef.out.ref=out\n",
            level && *level ? level : "WARN");
    fclose(f);
}

kafka_real_t *kafka_real_start(int n, int timeout_s) {
    if (n < 1 || n > MAX_NODES)
        return NULL;
    kafka_real_t *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->n = n;
    snprintf(k->dir, sizeof(k->dir), "/tmp/rm-kafka-XXXXXX");
    if (load_classpath(k) != 0 || !mkdtemp(k->dir)) {
        kafka_real_stop(k);
        return NULL;
    }
    write_log4j(k);
    double t0 = now_s();
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        k->nodes[i].port = free_port();
        k->nodes[i].cport = free_port();
        len += (size_t)snprintf(k->bootstraps + len, sizeof(k->bootstraps) - len, "%s127.0.0.1:%d",
                                i ? "," : "", k->nodes[i].port);
    }
    int ok = 1;
    for (int i = 0; i < n && ok; i++)
        ok = write_conf(k, i) == 0;
    ok = ok && format_all(k) == 0;
    for (int i = 0; i < n && ok; i++)
        ok = kafka_real_restart(k, i) == 0;
    int up = 0;
    while (ok && (up = brokers_up(k->bootstraps)) < n && now_s() - t0 < timeout_s) {
        if (getenv("RM_KAFKA_DEBUG"))
            fprintf(stderr, "kafka_real: %.1f s: %d broker(s) up\n", now_s() - t0, up);
        for (int i = 0; i < n && ok; i++)
            if (waitpid(k->nodes[i].pid, NULL, WNOHANG) == k->nodes[i].pid) {
                fprintf(stderr, "kafka_real: broker %d exited during start-up:\n", i + 1);
                print_log_tail(k->nodes[i].log);
                live_forget(k->nodes[i].pid);
                k->nodes[i].pid = 0;
                ok = 0;
            }
        sleep_ms(200);
    }
    if (ok && up < n) {
        fprintf(stderr, "kafka_real: %d of %d brokers up after %d s\n", up, n, timeout_s);
        for (int i = 0; i < n; i++)
            print_log_tail(k->nodes[i].log);
        ok = 0;
    }
    if (!ok) {
        kafka_real_stop(k);
        return NULL;
    }
    k->start_s = now_s() - t0;
    return k;
}

void kafka_real_stop(kafka_real_t *k) {
    if (!k)
        return;
    for (int i = 0; i < k->n; i++)
        if (k->nodes[i].pid > 0)
            kafka_real_kill(k, i, SIGKILL);
    if (k->dir[0] && strncmp(k->dir, "/tmp/rm-kafka-", 14) == 0 && !getenv("RM_KEEP_KAFKA")) {
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", k->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "kafka_real: could not remove %s\n", k->dir);
    }
    free(k->classpath);
    free(k);
}

const char *kafka_real_bootstraps(const kafka_real_t *k) {
    return k->bootstraps;
}

const char *kafka_real_dir(const kafka_real_t *k) {
    return k->dir;
}

const char *kafka_real_version(const kafka_real_t *k) {
    return k->version;
}

double kafka_real_start_seconds(const kafka_real_t *k) {
    return k->start_s;
}

long kafka_real_rss_kib(const kafka_real_t *k) {
    long total = 0;
    for (int i = 0; i < k->n; i++) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)k->nodes[i].pid);
        FILE *f = k->nodes[i].pid > 0 ? fopen(path, "r") : NULL;
        while (f && fgets(line, sizeof(line), f))
            if (strncmp(line, "VmRSS:", 6) == 0)
                total += atol(line + 6);
        if (f)
            fclose(f);
    }
    return total;
}

void kafka_real_report(const kafka_real_t *k) {
    fprintf(stderr, "kafka %s: %d broker(s) ready in %.1f s, RSS %ld MiB\n", k->version, k->n,
            k->start_s, kafka_real_rss_kib(k) / 1024);
}

int kafka_real_wait_up(kafka_real_t *k, int timeout_s) {
    double t0 = now_s();
    while (brokers_up(k->bootstraps) < k->n) {
        if (now_s() - t0 > timeout_s) {
            fprintf(stderr, "kafka_real: not every broker up after %d s\n", timeout_s);
            return -1;
        }
        sleep_ms(200);
    }
    return 0;
}

int kafka_real_leader(kafka_real_t *k, const char *topic, int partition) {
    rd_kafka_t *rk = kafka_real_producer(k, NULL);
    if (!rk)
        return -1;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int leader = -1;
    if (rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < md->topic_cnt; i++)
            for (int p = 0; p < md->topics[i].partition_cnt; p++)
                if (md->topics[i].partitions[p].id == partition)
                    leader = md->topics[i].partitions[p].leader - 1;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(rk);
    return leader;
}

rd_kafka_t *kafka_real_producer(const kafka_real_t *k, const char *const *props) {
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", k->bootstraps, err, sizeof(err));
    for (int i = 0; props && props[i] && props[i + 1]; i += 2)
        if (rd_kafka_conf_set(conf, props[i], props[i + 1], err, sizeof(err)) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "kafka_real: %s\n", err);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk)
        fprintf(stderr, "kafka_real: %s\n", err);
    return rk;
}

/* Runs one admin request on a fresh producer handle and waits for its
 * result event; 0 when the request and every item in it succeeded. */
typedef void (*admin_fn)(rd_kafka_t *rk, rd_kafka_queue_t *q, void *arg);
typedef int (*result_fn)(rd_kafka_event_t *ev);

static int admin_run(kafka_real_t *k, admin_fn fn, result_fn check, void *arg) {
    rd_kafka_t *rk = kafka_real_producer(k, NULL);
    if (!rk)
        return -1;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    fn(rk, q, arg);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 35000);
    int rc = -1;
    if (!ev)
        fprintf(stderr, "kafka_real: admin request timed out\n");
    else if (rd_kafka_event_error(ev))
        fprintf(stderr, "kafka_real: admin: %s\n", rd_kafka_event_error_string(ev));
    else
        rc = check(ev);
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

static rd_kafka_AdminOptions_t *admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op) {
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, op);
    char err[128];
    rd_kafka_AdminOptions_set_request_timeout(o, 30000, err, sizeof(err));
    if (op != RD_KAFKA_ADMIN_OP_DELETERECORDS)
        rd_kafka_AdminOptions_set_operation_timeout(o, 30000, err, sizeof(err));
    return o;
}

static int topic_results(const rd_kafka_topic_result_t **res, size_t n) {
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (rd_kafka_topic_result_error(res[i])) {
            fprintf(stderr, "kafka_real: %s: %s\n", rd_kafka_topic_result_name(res[i]),
                    rd_kafka_topic_result_error_string(res[i]));
            rc = -1;
        }
    return rc;
}

typedef struct {
    const char *topic;
    int partitions, rf;
    const char *const *configs;
    long long before;
} admin_arg_t;

static void create_req(rd_kafka_t *rk, rd_kafka_queue_t *q, void *arg) {
    admin_arg_t *a = arg;
    char err[256];
    rd_kafka_NewTopic_t *t =
        rd_kafka_NewTopic_new(a->topic, a->partitions, a->rf, err, sizeof(err));
    for (int i = 0; a->configs && a->configs[i] && a->configs[i + 1]; i += 2)
        rd_kafka_NewTopic_set_config(t, a->configs[i], a->configs[i + 1]);
    rd_kafka_AdminOptions_t *o = admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(rk, &t, 1, o, q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_NewTopic_destroy(t);
}

static int create_res(rd_kafka_event_t *ev) {
    size_t n;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    return topic_results(res, n);
}

int kafka_real_create_topic(kafka_real_t *k, const char *topic, int partitions, int rf,
                            const char *const *configs) {
    admin_arg_t a = {
        .topic = topic, .partitions = partitions, .rf = rf > 0 ? rf : k->n, .configs = configs};
    if (admin_run(k, create_req, create_res, &a) != 0)
        return -1;
    /* Created is not yet led everywhere: wait until every partition has a
     * leader, so the first produce does not race the election. */
    for (int tries = 0; tries < 300; tries++) {
        int p = 0;
        while (p < partitions && kafka_real_leader(k, topic, p) >= 0)
            p++;
        if (p == partitions)
            return 0;
        sleep_ms(100);
    }
    fprintf(stderr, "kafka_real: %s: partitions without a leader after 30 s\n", topic);
    return -1;
}

static void partitions_req(rd_kafka_t *rk, rd_kafka_queue_t *q, void *arg) {
    admin_arg_t *a = arg;
    char err[256];
    rd_kafka_NewPartitions_t *np =
        rd_kafka_NewPartitions_new(a->topic, (size_t)a->partitions, err, sizeof(err));
    rd_kafka_AdminOptions_t *o = admin_options(rk, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
    rd_kafka_CreatePartitions(rk, &np, 1, o, q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_NewPartitions_destroy(np);
}

static int partitions_res(rd_kafka_event_t *ev) {
    size_t n;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
    return topic_results(res, n);
}

int kafka_real_add_partitions(kafka_real_t *k, const char *topic, int total) {
    admin_arg_t a = {.topic = topic, .partitions = total};
    return admin_run(k, partitions_req, partitions_res, &a);
}

static void delete_req(rd_kafka_t *rk, rd_kafka_queue_t *q, void *arg) {
    admin_arg_t *a = arg;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, a->topic, a->partitions)->offset = a->before;
    rd_kafka_DeleteRecords_t *d = rd_kafka_DeleteRecords_new(l);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_AdminOptions_t *o = admin_options(rk, RD_KAFKA_ADMIN_OP_DELETERECORDS);
    rd_kafka_DeleteRecords(rk, &d, 1, o, q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_DeleteRecords_destroy(d);
}

static int delete_res(rd_kafka_event_t *ev) {
    const rd_kafka_topic_partition_list_t *l =
        rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
    int rc = 0;
    for (int i = 0; l && i < l->cnt; i++)
        if (l->elems[i].err) {
            fprintf(stderr, "kafka_real: delete records [%d]: %s\n", l->elems[i].partition,
                    rd_kafka_err2str(l->elems[i].err));
            rc = -1;
        }
    return l ? rc : -1;
}

int kafka_real_delete_records(kafka_real_t *k, const char *topic, int partition, long long before) {
    admin_arg_t a = {.topic = topic, .partitions = partition, .before = before};
    return admin_run(k, delete_req, delete_res, &a);
}
