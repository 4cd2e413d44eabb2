/*
 * The metrics/health endpoint under a slow-client flood (slowloris).
 * RM_HTTP_LOAD_CONNS (default 2000) connections from 127.0.0.1 each send a
 * partial request header, then one more header line every 4 s
 * (RM_HTTP_LOAD_LINE_MS); when the server drops one it is reopened at its
 * next beat, as slowloris tools do (RM_HTTP_LOAD_REOPEN=now: at once, a
 * connection flood rather than a slow one). Meanwhile, for
 * RM_HTTP_LOAD_SECONDS (default 18), /livez, /readyz and /metrics asked by a
 * separate client, from 127.0.0.1 and from 127.0.0.2, must answer every
 * time, as they did before the flood, within 5 s each. Prints what it saw
 * (probes, failures, worst latency, flood connections open and reopened).
 *
 * Server and flood share this process, so RLIMIT_NOFILE is raised first;
 * the test is skipped when the hard limit does not allow it. To measure a
 * server in another process (whose sockets then do not share this one's
 * descriptor table), set RM_HTTP_LOAD_PORT to its port on 127.0.0.1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "readmodel/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROBE_DEADLINE_MS 5000

/* Header line interval of the slow connections (RM_HTTP_LOAD_LINE_MS). */
static long long line_every_ms = 4000;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long env_long(const char *name, long def) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : def;
}

/* ---- the flood ---------------------------------------------------------- */

enum { SLOW_CLOSED, SLOW_CONNECTING, SLOW_OPEN };

typedef struct {
    int fd, state;
    long long next_line_ms;
} slow_t;

typedef struct {
    int port, n;
    bool reopen_now; /* reopen dropped connections at once, not at their next beat */
    slow_t *c;
    atomic_bool stop;
    atomic_int open;           /* connected and not yet dropped, now */
    atomic_int open_max;       /* most connected at once */
    atomic_long connects;      /* connections established (first and reopened) */
    atomic_long server_closed; /* dropped by the server (EOF, reset, reply) */
} flood_t;

static int slow_open(flood_t *f, slow_t *s) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    s->fd = fd;
    s->state = SLOW_CONNECTING;
    return 0;
}

static void slow_drop(flood_t *f, slow_t *s, bool by_server) {
    if (s->state == SLOW_OPEN)
        atomic_fetch_sub(&f->open, 1);
    if (by_server)
        atomic_fetch_add(&f->server_closed, 1);
    close(s->fd);
    s->fd = -1;
    s->state = SLOW_CLOSED; /* reopened at next_line_ms, its next beat */
    long long now = now_ms();
    if (s->next_line_ms <= now)
        s->next_line_ms = now + line_every_ms;
}

static void slow_established(flood_t *f, slow_t *s) {
    static const char head[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n";
    if (send(s->fd, head, sizeof(head) - 1, MSG_NOSIGNAL) < 0) {
        slow_drop(f, s, true);
        return;
    }
    s->state = SLOW_OPEN;
    s->next_line_ms = now_ms() + line_every_ms;
    atomic_fetch_add(&f->connects, 1);
    int open = atomic_fetch_add(&f->open, 1) + 1;
    if (open > atomic_load(&f->open_max))
        atomic_store(&f->open_max, open);
}

/* One pass: finish connects, notice drops, send due header lines, reopen
 * up to `reopen` dropped connections. */
static void flood_pass(flood_t *f, struct pollfd *p, int reopen) {
    for (int i = 0; i < f->n; i++) {
        p[i].fd = f->c[i].fd;
        p[i].events = f->c[i].state == SLOW_CONNECTING ? POLLOUT : POLLIN;
        p[i].revents = 0;
    }
    poll(p, (nfds_t)f->n, 50);
    long long now = now_ms();
    for (int i = 0; i < f->n; i++) {
        slow_t *s = &f->c[i];
        if (s->state == SLOW_CONNECTING && p[i].revents) {
            int err = 0;
            socklen_t len = sizeof(err);
            getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err == 0)
                slow_established(f, s);
            else
                slow_drop(f, s, true);
        } else if (s->state == SLOW_OPEN && p[i].revents) {
            char buf[512];
            ssize_t r = recv(s->fd, buf, sizeof(buf), 0);
            if (r >= 0 || errno != EAGAIN) /* EOF, reset, or an error reply: dropped */
                slow_drop(f, s, true);
        } else if (s->state == SLOW_OPEN && now >= s->next_line_ms) {
            static const char line[] = "X-Slow: a\r\n";
            if (send(s->fd, line, sizeof(line) - 1, MSG_NOSIGNAL) < 0)
                slow_drop(f, s, true);
            else
                s->next_line_ms = now + line_every_ms;
        }
        if (s->state == SLOW_CLOSED && reopen > 0 && (f->reopen_now || now >= s->next_line_ms)) {
            reopen--;
            slow_open(f, s);
        }
    }
}

static void *flood_main(void *arg) {
    flood_t *f = arg;
    struct pollfd *p = calloc((size_t)f->n, sizeof(*p));
    if (!p)
        return NULL;
    while (!atomic_load(&f->stop))
        flood_pass(f, p, 200);
    free(p);
    return NULL;
}

/* ---- the probes ----------------------------------------------------------- */

typedef struct {
    int status;   /* HTTP status, 0: no complete answer */
    long long ms; /* how long it took */
    char why[96]; /* what went wrong */
} probe_t;

/* GET path from source address `from` with one deadline for connect, send
 * and the whole answer (read to EOF: Connection: close). */
static probe_t probe(int port, const char *from, const char *path) {
    probe_t pr = {0};
    long long t0 = now_ms(), deadline = t0 + PROBE_DEADLINE_MS;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(pr.why, sizeof(pr.why), "socket: %s", strerror(errno));
        return pr;
    }
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    inet_pton(AF_INET, from, &src.sin_addr);
    dst.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
        (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && errno != EINPROGRESS)) {
        snprintf(pr.why, sizeof(pr.why), "bind/connect: %s", strerror(errno));
        close(fd);
        return pr;
    }
    char req[160], resp[65536];
    int rl = snprintf(req, sizeof(req),
                      "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    size_t sent = 0, got = 0;
    bool connected = false;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            snprintf(pr.why, sizeof(pr.why), "no complete answer within %d ms (%zu bytes)",
                     PROBE_DEADLINE_MS, got);
            break;
        }
        struct pollfd p = {.fd = fd, .events = !connected || sent < (size_t)rl ? POLLOUT : POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        if (!connected) {
            int err = 0;
            socklen_t len = sizeof(err);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) {
                snprintf(pr.why, sizeof(pr.why), "connect: %s", strerror(err));
                break;
            }
            connected = true;
        }
        if (sent < (size_t)rl) {
            ssize_t w = send(fd, req + sent, (size_t)rl - sent, MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN) {
                snprintf(pr.why, sizeof(pr.why), "send: %s", strerror(errno));
                break;
            }
            sent += w > 0 ? (size_t)w : 0;
            continue;
        }
        ssize_t r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
        if (r < 0 && errno == EAGAIN)
            continue;
        if (r < 0) {
            snprintf(pr.why, sizeof(pr.why), "recv after %zu bytes: %s", got, strerror(errno));
            break;
        }
        if (r > 0 && got + (size_t)r < sizeof(resp) - 1) {
            got += (size_t)r;
            continue;
        }
        /* EOF (or the buffer is full): is it a complete answer? */
        resp[got] = '\0';
        const char *body = strstr(resp, "\r\n\r\n");
        const char *cl = strstr(resp, "Content-Length: ");
        int status = 0;
        if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1 || !body || !cl ||
            strtoul(cl + 16, NULL, 10) != got - (size_t)(body + 4 - resp))
            snprintf(pr.why, sizeof(pr.why), "incomplete answer (%zu bytes)", got);
        else
            pr.status = status;
        break;
    }
    close(fd);
    pr.ms = now_ms() - t0;
    return pr;
}

/* ---- the test ------------------------------------------------------------- */

static bool can_bind(const char *addr) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, addr, &a.sin_addr);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void test_probes_answer_during_slow_client_flood(void **state) {
    (void)state;
    int n = (int)env_long("RM_HTTP_LOAD_CONNS", 2000);
    long seconds = env_long("RM_HTTP_LOAD_SECONDS", 18);
    line_every_ms = env_long("RM_HTTP_LOAD_LINE_MS", 4000);
    /* The flood's sockets and, on the server side, up to as many again. */
    rlim_t need = (rlim_t)n * 2 + 512;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < need) {
        if (rl.rlim_max < need) {
            fprintf(stderr,
                    "SKIP: RLIMIT_NOFILE hard limit %llu < %llu needed for %d slow connections "
                    "(raise it, e.g. ulimit -Hn %llu, or set RM_HTTP_LOAD_CONNS lower)\n",
                    (unsigned long long)rl.rlim_max, (unsigned long long)need, n,
                    (unsigned long long)need);
            skip();
        }
        rl.rlim_cur = need > 8192 ? need : 8192;
        if (rl.rlim_cur > rl.rlim_max)
            rl.rlim_cur = rl.rlim_max;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }

    rm_stats_t *st = calloc(1, sizeof(*st));
    assert_non_null(st);
    atomic_store(&st->sink_ping_ok, 1);
    atomic_store(&st->sink_write_ok, 1);
    char err[256];
    int port = (int)env_long("RM_HTTP_LOAD_PORT", 0);
    rm_http_t *h = NULL;
    if (!port) {
        h = rm_http_start("127.0.0.1:0", st, "booking.events", "redis", err, sizeof(err));
        assert_non_null(h);
        port = rm_http_port(h);
    }

    const char *paths[] = {"/livez", "/readyz", "/metrics"};
    const char *froms[2] = {"127.0.0.1", "127.0.0.2"};
    int nfrom = can_bind("127.0.0.2") ? 2 : 1;
    if (nfrom == 1)
        fprintf(stderr, "note: cannot bind 127.0.0.2, probing from 127.0.0.1 only\n");
    int expect[3];
    for (int i = 0; i < 3; i++) {
        probe_t pr = probe(port, "127.0.0.1", paths[i]);
        assert_int_not_equal(pr.status, 0);
        expect[i] = pr.status;
    }

    const char *reopen = getenv("RM_HTTP_LOAD_REOPEN");
    flood_t f = {.port = port, .n = n, .reopen_now = reopen && strcmp(reopen, "now") == 0};
    f.c = calloc((size_t)n, sizeof(*f.c));
    assert_non_null(f.c);
    for (int i = 0; i < n; i++)
        f.c[i] = (slow_t){.fd = -1, .state = SLOW_CLOSED};
    pthread_t flood;
    assert_int_equal(pthread_create(&flood, NULL, flood_main, &f), 0);
    /* Let the flood build up: every connection established once. */
    long long until = now_ms() + 5000;
    while (atomic_load(&f.connects) < n && now_ms() < until)
        usleep(50 * 1000);
    fprintf(stderr, "flood: %ld connections established in the first phase, %d open\n",
            atomic_load(&f.connects), atomic_load(&f.open));

    /* Per source address: probes, failures, and the longest run of
     * consecutive failures of one path (what a kubelet acts on: it restarts
     * a pod after failureThreshold, 3 by default, in a row). */
    int probes = 0, failures = 0, by_from[2] = {0, 0}, failed_from[2] = {0, 0};
    int run[2][3] = {{0}}, longest_run = 0;
    long long worst = 0, end = now_ms() + seconds * 1000;
    while (now_ms() < end) {
        for (int s = 0; s < nfrom; s++)
            for (int i = 0; i < 3; i++) {
                probe_t pr = probe(port, froms[s], paths[i]);
                probes++;
                by_from[s]++;
                worst = pr.ms > worst ? pr.ms : worst;
                if (pr.status != expect[i]) {
                    failed_from[s]++;
                    run[s][i]++;
                    longest_run = run[s][i] > longest_run ? run[s][i] : longest_run;
                    if (failures++ < 10)
                        fprintf(stderr, "probe %s from %s failed after %lld ms: %s (status %d)\n",
                                paths[i], froms[s], pr.ms, pr.why, pr.status);
                } else {
                    run[s][i] = 0;
                }
            }
        usleep(200 * 1000);
    }
    fprintf(stderr,
            "%d slow connections wanted: %d probes, %d failed, worst %lld ms; flood open now %d, "
            "at most %d, %ld connects, %ld dropped by the server\n",
            n, probes, failures, worst, atomic_load(&f.open), atomic_load(&f.open_max),
            atomic_load(&f.connects), atomic_load(&f.server_closed));

    atomic_store(&f.stop, true);
    pthread_join(flood, NULL);
    for (int i = 0; i < n; i++)
        if (f.c[i].fd >= 0)
            close(f.c[i].fd);
    free(f.c);
    /* After the flood the server still answers. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(probe(port, "127.0.0.1", paths[i]).status, expect[i]);
    rm_http_stop(h);
    free(st);
    assert_true(probes > 0);
    fprintf(stderr, "failed: %d of %d from %s (the flood's address), %d of %d from %s\n",
            failed_from[0], by_from[0], froms[0], failed_from[1], by_from[1],
            nfrom > 1 ? froms[1] : "-");
    /* From another address than the flood's (the kubelet's, in a pod):
     * every probe answers. From the flood's own address, a connection-rate
     * flood can make a rare probe fail (README, "Guarantees"), but never
     * enough in a row for a kubelet to act, and never more than 2%. */
    if (nfrom > 1)
        assert_int_equal(failed_from[1], 0);
    assert_true(longest_run < 3);
    assert_true(failed_from[0] * 50 <= by_from[0]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probes_answer_during_slow_client_flood),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
