/* A real Redis Cluster for tests: see redis_cluster_real.h. */
#include "redis_cluster_real.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static rc_cluster_t *live[4]; /* killed at exit */

static void kill_one(rc_cluster_t *c) {
    for (int i = 0; i < c->n; i++)
        if (c->pid[i] > 0) {
            kill(-c->pid[i], SIGKILL);
            waitpid(c->pid[i], NULL, 0);
            c->pid[i] = 0;
        }
}

static void kill_all(void) {
    for (int k = 0; k < 4; k++)
        if (live[k])
            kill_one(live[k]);
}

static void on_signal(int sig) {
    kill_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool port_free(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* A port p with p and p + 10000 (the cluster bus) free, not yet taken. */
static int pick_port(const rc_cluster_t *c) {
    for (int tries = 0; tries < 1000; tries++) {
        int p = 20000 + rand() % 20000;
        bool taken = false;
        for (int i = 0; i < RC_MAX_NODES; i++)
            taken |= c->port[i] == p || c->tls_port[i] == p || c->port[i] + 10000 == p ||
                     c->tls_port[i] + 10000 == p || c->port[i] == p + 10000 ||
                     c->tls_port[i] == p + 10000;
        if (!taken && port_free(p) && port_free(p + 10000))
            return p;
    }
    return -1;
}

static int sh(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int make_certs(rc_cluster_t *c) {
    snprintf(c->ca, sizeof(c->ca), "%s/ca.pem", c->dir);
    snprintf(c->cert, sizeof(c->cert), "%s/server.pem", c->dir);
    snprintf(c->key, sizeof(c->key), "%s/server.key", c->dir);
    snprintf(c->client_cert, sizeof(c->client_cert), "%s/client.pem", c->dir);
    snprintf(c->client_key, sizeof(c->client_key), "%s/client.key", c->dir);
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "set -e; cd '%s';"
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=rm-test-ca"
             " -keyout ca.key -out ca.pem 2>/dev/null;"
             "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key"
             " -out server.csr 2>/dev/null;"
             "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext;"
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
             " -extfile san.ext -out server.pem 2>/dev/null;"
             "openssl req -newkey rsa:2048 -nodes -subj /CN=app -keyout client.key"
             " -out client.csr 2>/dev/null;"
             "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
             " -out client.pem 2>/dev/null;"
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca"
             " -keyout other.key -out other.pem 2>/dev/null",
             c->dir);
    return sh(cmd) == 0 ? 0 : -1;
}

static pid_t spawn_node(rc_cluster_t *c, int i, bool cluster) {
    char port[16], tport[16], conf[200], dir[160], log[200];
    snprintf(port, sizeof(port), "%d", c->port[i]);
    snprintf(tport, sizeof(tport), "%d", c->tls_port[i]);
    snprintf(dir, sizeof(dir), "%s/n%d", c->dir, i);
    snprintf(conf, sizeof(conf), "%s/nodes.conf", dir);
    snprintf(log, sizeof(log), "%s/redis.log", dir);
    char mk[256];
    snprintf(mk, sizeof(mk), "mkdir -p '%s'", dir);
    if (sh(mk) != 0)
        return -1;
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    setpgid(0, 0);
    /* --repl-diskless-sync-delay 0: a replica's first sync starts at once,
     * not after the default 5 s wait for more replicas. */
    const char *argv[64] = {"redis-server",
                            "--port",
                            port,
                            "--bind",
                            "127.0.0.1",
                            "--cluster-enabled",
                            cluster ? "yes" : "no",
                            "--cluster-config-file",
                            conf,
                            "--cluster-node-timeout",
                            "2000",
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--dir",
                            dir,
                            "--logfile",
                            log,
                            "--daemonize",
                            "no",
                            "--repl-diskless-sync-delay",
                            "0"};
    int n = 23;
    if (c->tls) {
        const char *t[] = {"--tls-port", tport, "--tls-cert-file", c->cert, "--tls-key-file",
                           c->key, "--tls-ca-cert-file", c->ca, "--tls-auth-clients", "yes",
                           "--tls-cluster", "yes", "--tls-replication", "yes",
                           /* The readmodel user; the cluster's own links use
                            * the default user (nopass). */
                           "--user", "app", "on", ">app-secret", "~*", "&*", "+@all"};
        for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++)
            argv[n++] = t[k];
    }
    argv[n] = NULL;
    execvp("redis-server", (char *const *)argv);
    _exit(127);
}

redisContext *rc_connect(const rc_cluster_t *c, int i) {
    struct timeval tv = {1, 0};
    redisContext *ctx = redisConnectWithTimeout("127.0.0.1", c->port[i], tv);
    if (ctx && ctx->err) {
        redisFree(ctx);
        return NULL;
    }
    if (ctx) {
        struct timeval cmd = {5, 0};
        redisSetTimeout(ctx, cmd);
    }
    return ctx;
}

static bool node_up(const rc_cluster_t *c, int i) {
    redisContext *ctx = rc_connect(c, i);
    redisReply *r = ctx ? redisCommand(ctx, "PING") : NULL;
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    if (ctx)
        redisFree(ctx);
    return ok;
}

int rc_start(rc_cluster_t *c, int masters, int replicas, bool tls) {
    double t0 = now_s();
    memset(c, 0, sizeof(*c));
    c->n = masters * (1 + replicas);
    c->tls = tls;
    if (sh("command -v redis-server >/dev/null && command -v redis-cli >/dev/null") != 0) {
        fprintf(stderr, "redis-server or redis-cli is missing: run bash scripts/setup.sh --real\n");
        return -1;
    }
    snprintf(c->dir, sizeof(c->dir), "/tmp/rm-cluster-XXXXXX");
    if (!mkdtemp(c->dir) || (tls && make_certs(c) != 0))
        return -1;
    srand((unsigned)(getpid() ^ time(NULL)));
    static int registered;
    for (int k = 0; k < 4; k++)
        if (!live[k]) {
            live[k] = c;
            break;
        }
    if (!registered++)
        atexit(kill_all);
    signal(SIGABRT, on_signal);
    signal(SIGSEGV, on_signal);
    signal(SIGTERM, on_signal);
    for (int i = 0; i < c->n; i++) {
        if ((c->port[i] = pick_port(c)) < 0 || (tls && (c->tls_port[i] = pick_port(c)) < 0))
            return -1;
        if ((c->pid[i] = spawn_node(c, i, c->n > 1)) < 0)
            return -1;
    }
    for (int i = 0; i < c->n; i++) {
        int tries = 0;
        while (!node_up(c, i) && tries++ < 500)
            sleep_ms(10);
        if (tries >= 500) {
            fprintf(stderr, "redis-server node %d did not start (see %s/n%d)\n", i, c->dir, i);
            return -1;
        }
    }
    char cmd[2048];
    if (c->n == 1) /* one server, not a cluster */
        goto done;
    /* redis-cli creates the cluster over the plain ports; with TLS the
     * nodes then talk TLS among themselves (--tls-cluster). */
    int o = snprintf(cmd, sizeof(cmd), "redis-cli --cluster create");
    for (int i = 0; i < c->n; i++)
        o += snprintf(cmd + o, sizeof(cmd) - (size_t)o, " 127.0.0.1:%d", c->port[i]);
    snprintf(cmd + o, sizeof(cmd) - (size_t)o,
             " --cluster-replicas %d --cluster-yes > %s/create.log 2>&1", replicas, c->dir);
    if (sh(cmd) != 0) {
        fprintf(stderr, "redis-cli --cluster create failed: see %s/create.log\n", c->dir);
        return -1;
    }
    if (!rc_wait_ok(c, 60) || !rc_wait_replicas(c, 60))
        return -1;
done:
    if (tls)
        snprintf(c->url, sizeof(c->url), "rediss://app:app-secret@127.0.0.1:%d", c->tls_port[0]);
    else
        snprintf(c->url, sizeof(c->url), "redis://127.0.0.1:%d", c->port[0]);
    c->start_s = now_s() - t0;
    return 0;
}

void rc_stop(rc_cluster_t *c) {
    kill_one(c);
    for (int k = 0; k < 4; k++)
        if (live[k] == c)
            live[k] = NULL;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
    if (sh(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", c->dir);
}

void rc_kill(rc_cluster_t *c, int i) {
    if (c->pid[i] > 0) {
        kill(-c->pid[i], SIGKILL);
        waitpid(c->pid[i], NULL, 0);
        c->pid[i] = 0;
    }
}

void rc_node_id(const rc_cluster_t *c, int i, char *out, size_t cap) {
    out[0] = '\0';
    redisContext *ctx = c->pid[i] > 0 ? rc_connect(c, i) : NULL;
    redisReply *r = ctx ? redisCommand(ctx, "CLUSTER MYID") : NULL;
    if (r && r->type == REDIS_REPLY_STRING)
        snprintf(out, cap, "%s", r->str);
    freeReplyObject(r);
    if (ctx)
        redisFree(ctx);
}

/* CLUSTER NODES of any live node (caller frees), or NULL. */
static redisReply *cluster_nodes(const rc_cluster_t *c) {
    for (int i = 0; i < c->n; i++) {
        redisContext *ctx = c->pid[i] > 0 ? rc_connect(c, i) : NULL;
        redisReply *r = ctx ? redisCommand(ctx, "CLUSTER NODES") : NULL;
        if (ctx)
            redisFree(ctx);
        if (r && r->type == REDIS_REPLY_STRING)
            return r;
        freeReplyObject(r);
    }
    return NULL;
}

int rc_masters(const rc_cluster_t *c, int *idx, int max) {
    if (c->n == 1) {
        idx[0] = 0;
        return 1;
    }
    redisReply *r = cluster_nodes(c);
    int n = 0;
    for (char *line = r ? r->str : NULL; line && *line && n < max;) {
        char *nl = strchr(line, '\n');
        /* <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <state> <slots...> */
        char addr[128], flags[128];
        int fields = 0, slots = 0;
        if (sscanf(line, "%*s %127s %127s", addr, flags) == 2) {
            for (char *p = line; p && p < (nl ? nl : line + strlen(line)); p = strchr(p + 1, ' '))
                fields++;
            slots = fields > 8;
            int port = atoi(strchr(addr, ':') ? strchr(addr, ':') + 1 : "0");
            if (strstr(flags, "master") && !strstr(flags, "fail") && slots)
                for (int i = 0; i < c->n; i++)
                    if (c->port[i] == port || (c->tls && c->tls_port[i] == port))
                        idx[n++] = i;
        }
        line = nl ? nl + 1 : NULL;
    }
    freeReplyObject(r);
    return n;
}

bool rc_wait_ok(const rc_cluster_t *c, int timeout_s) {
    double deadline = now_s() + timeout_s;
    while (now_s() < deadline) {
        bool ok = true;
        for (int i = 0; i < c->n && ok; i++) {
            if (c->pid[i] <= 0)
                continue;
            redisContext *ctx = rc_connect(c, i);
            redisReply *r = ctx ? redisCommand(ctx, "CLUSTER INFO") : NULL;
            ok = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_state:ok") &&
                 strstr(r->str, "cluster_slots_ok:16384");
            freeReplyObject(r);
            if (ctx)
                redisFree(ctx);
        }
        if (ok)
            return true;
        sleep_ms(200);
    }
    fprintf(stderr, "the cluster did not reach cluster_state:ok in %d s\n", timeout_s);
    return false;
}

/* Node i's INFO replication says it is a replica whose link to its master
 * is down (not yet synced). */
static bool replica_unsynced(const rc_cluster_t *c, int i) {
    redisContext *ctx = rc_connect(c, i);
    redisReply *r = ctx ? redisCommand(ctx, "INFO replication") : NULL;
    bool bad = !r || r->type != REDIS_REPLY_STRING ||
               (strstr(r->str, "role:slave") && !strstr(r->str, "master_link_status:up"));
    freeReplyObject(r);
    if (ctx)
        redisFree(ctx);
    return bad;
}

bool rc_wait_replicas(const rc_cluster_t *c, int timeout_s) {
    double deadline = now_s() + timeout_s;
    while (now_s() < deadline) {
        bool ok = true;
        for (int i = 0; i < c->n && ok; i++)
            ok = c->pid[i] <= 0 || !replica_unsynced(c, i);
        if (ok)
            return true;
        sleep_ms(100);
    }
    fprintf(stderr, "a replica did not finish its sync with its master in %d s\n", timeout_s);
    return false;
}

int rc_replica_of(const rc_cluster_t *c, int master) {
    char want[32];
    snprintf(want, sizeof(want), "master_port:%d\r\n", c->port[master]);
    for (int i = 0; i < c->n; i++) {
        redisContext *ctx = c->pid[i] > 0 && i != master ? rc_connect(c, i) : NULL;
        redisReply *r = ctx ? redisCommand(ctx, "INFO replication") : NULL;
        bool mine = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "role:slave") &&
                    strstr(r->str, want);
        freeReplyObject(r);
        if (ctx)
            redisFree(ctx);
        if (mine)
            return i;
    }
    return -1;
}

pid_t rc_reshard(const rc_cluster_t *c, int from, int to, int nslots) {
    char fid[64], tid[64], addr[64], slots[16];
    rc_node_id(c, from, fid, sizeof(fid));
    rc_node_id(c, to, tid, sizeof(tid));
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", c->port[from]);
    snprintf(slots, sizeof(slots), "%d", nslots);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(126);
        execlp("redis-cli", "redis-cli", "--cluster", "reshard", addr, "--cluster-from", fid,
               "--cluster-to", tid, "--cluster-slots", slots, "--cluster-yes", "--cluster-pipeline",
               "100", (char *)NULL);
        _exit(127);
    }
    return pid;
}

redisReply *rc_get(const rc_cluster_t *c, const char *key) {
    int masters[RC_MAX_NODES];
    int n = rc_masters(c, masters, RC_MAX_NODES);
    for (int i = 0; i < n; i++) {
        redisContext *ctx = rc_connect(c, masters[i]);
        redisReply *r = ctx ? redisCommand(ctx, "GET %s", key) : NULL;
        if (ctx)
            redisFree(ctx);
        if (r && r->type != REDIS_REPLY_ERROR) {
            if (r->type == REDIS_REPLY_STRING)
                return r;
            freeReplyObject(r);
            return NULL;
        }
        freeReplyObject(r); /* MOVED: another master */
    }
    return NULL;
}

typedef struct {
    redisContext **ctx;
    int n;
    int diffs;
    long expected;
} cmp_t;

/* GET on each master until one owns the key. */
static void check_key(const char *key, const unsigned char v[36], void *arg) {
    cmp_t *x = arg;
    x->expected++;
    redisReply *r = NULL;
    for (int i = 0; i < x->n; i++) {
        freeReplyObject(r);
        r = redisCommand(x->ctx[i], "GET rm:%s", key);
        if (r && r->type != REDIS_REPLY_ERROR)
            break;
    }
    if (!r || r->type != REDIS_REPLY_STRING) {
        if (x->diffs++ < 10)
            fprintf(stderr, "missing key rm:%s\n", key);
    } else if (r->len != 36 || memcmp(r->str, v, 36) != 0) {
        if (x->diffs++ < 10)
            fprintf(stderr, "wrong value for rm:%s\n", key);
    }
    freeReplyObject(r);
}

static long count_keys(redisContext *ctx) {
    long n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(ctx, "SCAN %s MATCH rm:avail:* COUNT 1000", cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        n += (long)r->element[1]->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

int rc_compare(const rc_cluster_t *c, const ref_model_t *ref) {
    int idx[RC_MAX_NODES];
    redisContext *ctx[RC_MAX_NODES];
    cmp_t x = {ctx, rc_masters(c, idx, RC_MAX_NODES), 0, 0};
    for (int i = 0; i < x.n; i++)
        if (!(ctx[i] = rc_connect(c, idx[i])))
            return -1;
    ref_each_key(ref, check_key, &x);
    long actual = 0;
    for (int i = 0; i < x.n; i++) {
        long k = count_keys(ctx[i]);
        fprintf(stderr, "master 127.0.0.1:%d holds %ld availability keys\n", c->port[idx[i]], k);
        actual += k;
        redisFree(ctx[i]);
    }
    if (actual != x.expected) {
        fprintf(stderr, "the masters hold %ld availability keys, the reference %ld\n", actual,
                x.expected);
        x.diffs += (int)(actual > x.expected ? actual - x.expected : x.expected - actual);
    }
    fprintf(stderr, "compared %ld expected keys on %d masters: %d difference(s)\n", x.expected, x.n,
            x.diffs);
    return x.diffs;
}

double rc_rss_mib(const rc_cluster_t *c) {
    double kib = 0;
    for (int i = 0; i < c->n; i++) {
        if (c->pid[i] <= 0)
            continue;
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)c->pid[i]);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof(line), f))
            if (strncmp(line, "VmRSS:", 6) == 0)
                kib += atof(line + 6);
        if (f)
            fclose(f);
    }
    return kib / 1024;
}
