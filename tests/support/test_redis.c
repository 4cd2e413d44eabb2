/* Starts and stops a real redis-server (Debian package) for tests. */
#include "test_redis.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Servers still running when the test binary exits (an assertion failed
 * before the test stopped them) are killed, so none outlives the run. */
static pid_t servers[64];
static int nservers;

static void kill_servers(void) {
    for (int i = 0; i < nservers; i++)
        if (servers[i] > 0 && kill(servers[i], SIGKILL) == 0)
            waitpid(servers[i], NULL, 0);
}

static int spawn(rm_test_redis_t *r) {
    static int registered;
    if (!registered++)
        atexit(kill_servers);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", r->sock,
               "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", r->dir,
               "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    r->pid = pid;
    if (nservers < 64)
        servers[nservers++] = pid;
    for (int i = 0; i < 500; i++) {
        redisContext *c = redisConnectUnix(r->sock);
        if (c && !c->err) {
            redisReply *rep = redisCommand(c, "PING");
            int ok = rep && rep->type == REDIS_REPLY_STATUS;
            freeReplyObject(rep);
            redisFree(c);
            if (ok)
                return 0;
        } else if (c) {
            redisFree(c);
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "redis-server did not start on %s\n", r->sock);
    return -1;
}

int rm_test_redis_start(rm_test_redis_t *r) {
    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "/tmp/rm-redis-XXXXXX");
    if (!mkdtemp(r->dir))
        return -1;
    snprintf(r->sock, sizeof(r->sock), "%s/redis.sock", r->dir);
    snprintf(r->url, sizeof(r->url), "unix://%s", r->sock);
    return spawn(r);
}

int rm_test_redis_restart(rm_test_redis_t *r) {
    return spawn(r);
}

void rm_test_redis_stop(rm_test_redis_t *r, int hard) {
    if (r->pid > 0) {
        kill(r->pid, hard ? SIGKILL : SIGTERM);
        waitpid(r->pid, NULL, 0);
        for (int i = 0; i < nservers; i++)
            if (servers[i] == r->pid)
                servers[i] = 0;
        r->pid = 0;
    }
    unlink(r->sock);
}

void rm_test_redis_destroy(rm_test_redis_t *r) {
    rm_test_redis_stop(r, 1);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", r->dir);
}

redisContext *rm_test_redis_connect(const rm_test_redis_t *r) {
    redisContext *c = redisConnectUnix(r->sock);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    return c;
}
