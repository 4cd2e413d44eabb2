/*
 * readmodel against a real Redis Cluster (label `real`): 3 masters with one
 * replica each on loopback ports, started once for the program. The cases
 * run in order on one log and one cluster, each adding events, and each
 * ends with the union of every master's keys equal to the reference
 * projection:
 *  - serve, then rebuild and verify, on the cluster;
 *  - 2,000 slots resharded while serve writes (MOVED, ASK, TRYAGAIN);
 *  - a rebuild during a reshard;
 *  - one slot's migration held half done for 3 s while serve writes (ASK);
 *  - a master killed -9 while serve writes: its replica is promoted, serve
 *    follows the new topology, the model converges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "e2e.h"
#include "readmodel/gen.h"
#include "redis_cluster_real.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#define TOPIC      "booking.events"
#define PARTITIONS 4

static rc_cluster_t cluster;
static e2e_t env;
static rm_gen_t *gen;

static const char *const rebuild_args[] = {"--target", "redis", "--from-beginning", NULL};
static const char *const verify_args[] = {"--target", "redis", NULL};

/* Every partition's checkpoint (on whichever master owns it) is at the end
 * of the log. */
static bool caught_up(int timeout_s) {
    time_t deadline = time(NULL) + timeout_s;
    while (time(NULL) < deadline) {
        bool done = true;
        for (int p = 0; p < PARTITIONS && done; p++) {
            int64_t lo, hi;
            char key[128];
            snprintf(key, sizeof(key), "rm:checkpoint:%s:%d", TOPIC, p);
            if (rd_kafka_query_watermark_offsets(env.producer, TOPIC, p, &lo, &hi, 5000)) {
                done = false;
                break;
            }
            redisReply *r = rc_get(&cluster, key);
            done = hi == 0 || (r && atoll(r->str) == hi);
            freeReplyObject(r);
        }
        if (done)
            return true;
        e2e_sleep_ms(250);
    }
    fprintf(stderr, "serve did not catch up in %d s\n", timeout_s);
    return false;
}

/* Produces in small steps while pid runs (at most max_s), then the rest of
 * `after`. Returns pid's exit code. */
static int produce_while(pid_t pid, long step, int max_s) {
    time_t deadline = time(NULL) + max_s;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (time(NULL) >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fprintf(stderr, "process %d still running after %d s: killed\n", (int)pid, max_s);
            return -2;
        }
        e2e_produce_generated(&env, gen, step);
        e2e_flush(&env);
        e2e_sleep_ms(100);
    }
}

/* `readmodel status` (which takes no --workers, so not e2e_command). */
static int status(void) {
    const char *bin = getenv("READMODEL_BIN");
    pid_t pid = fork();
    if (pid == 0) {
        execl(bin ? bin : "./readmodel", "readmodel", "status", "--brokers",
              rm_mock_kafka_bootstraps(env.kafka), "--topic", TOPIC, "--redis", cluster.url,
              "--target", "redis", (char *)NULL);
        _exit(127);
    }
    return e2e_wait_timeout(pid, 120);
}

/* Starts readmodel CMD with its stderr in a temporary file (*fd, at 0). */
static pid_t start_logged(const char *cmd, const char *const *extra, int *fd) {
    char path[] = "/tmp/rm-cluster-log-XXXXXX";
    *fd = mkstemp(path);
    assert_true(*fd >= 0);
    unlink(path);
    int saved = dup(2);
    dup2(*fd, 2);
    pid_t pid = e2e_command(&env, cmd, extra);
    dup2(saved, 2);
    close(saved);
    return pid;
}

/* The redirections a reshard causes never reach the log: the client
 * follows them (a broken MOVED or ASK path shows up here as flush errors
 * that the batch retry would otherwise hide). */
static void assert_no_redirect_errors(int fd) {
    off_t len = lseek(fd, 0, SEEK_END);
    char *log = calloc(1, (size_t)len + 1);
    assert_int_equal(pread(fd, log, (size_t)len, 0), len);
    close(fd);
    const char *bad[] = {"MOVED", "ASK ", "TRYAGAIN", "CLUSTERDOWN", "error"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (strstr(log, bad[i])) {
            fprintf(stderr, "the log mentions %s:\n%s", bad[i], log);
            fail();
        }
    free(log);
}

static int setup(void **state) {
    (void)state;
    if (rc_start(&cluster, 3, 1, false) != 0)
        return -1;
    fprintf(stderr, "cluster of %d nodes started in %.1f s, %.0f MiB RSS\n", cluster.n,
            cluster.start_s, rc_rss_mib(&cluster));
    if (e2e_start(&env, TOPIC, PARTITIONS) != 0)
        return -1;
    snprintf(env.redis.url, sizeof(env.redis.url), "%.200s", cluster.url);
    gen = e2e_generator(19, 400, 14);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fprintf(stderr, "cluster RSS at the end: %.0f MiB\n", rc_rss_mib(&cluster));
    rm_gen_free(gen);
    e2e_stop(&env);
    rc_stop(&cluster);
    return 0;
}

static void test_serve_rebuild_verify(void **state) {
    (void)state;
    e2e_produce_generated(&env, gen, 6000);
    e2e_flush(&env);
    const char *until[] = {"--until-caught-up", NULL};
    assert_int_equal(e2e_wait_timeout(e2e_serve(&env, until), 300), 0);
    assert_int_equal(rc_compare(&cluster, env.ref), 0);
    int masters[RC_MAX_NODES];
    assert_int_equal(rc_masters(&cluster, masters, RC_MAX_NODES), 3);
    /* A key deleted and a foreign key on some master: verify finds them,
     * rebuild repairs every master. */
    redisContext *c = rc_connect(&cluster, masters[2]);
    redisReply *keys = redisCommand(c, "SCAN 0 MATCH rm:avail:* COUNT 1000");
    assert_true(keys && keys->type == REDIS_REPLY_ARRAY && keys->element[1]->elements > 0);
    freeReplyObject(redisCommand(c, "DEL %s", keys->element[1]->element[0]->str));
    freeReplyObject(keys);
    redisFree(c);
    assert_int_equal(e2e_wait_timeout(e2e_command(&env, "verify", verify_args), 300), 1);
    assert_int_equal(e2e_wait_timeout(e2e_command(&env, "rebuild", rebuild_args), 300), 0);
    assert_int_equal(rc_compare(&cluster, env.ref), 0);
    assert_int_equal(e2e_wait_timeout(e2e_command(&env, "verify", verify_args), 300), 0);
    assert_int_equal(status(), 0);
    /* --check-config asks the node of --redis and shows the cluster and
     * each master */
    const char *check[] = {"--check-config", NULL};
    int rc;
    char *out = e2e_capture(&env, "serve", check, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(out);
    assert_non_null(strstr(out, "\nredis-mode=cluster of 3 master(s)\n"));
    for (int i = 0; i < 3; i++) {
        char line[64];
        snprintf(line, sizeof(line), "\nredis-master=127.0.0.1:%d (answers)\n",
                 cluster.port[masters[i]]);
        if (!strstr(out, line))
            fail_msg("--check-config lacks %s in:\n%s", line + 1, out);
    }
    free(out);
}

static void test_reshard_while_serving(void **state) {
    (void)state;
    int fd;
    pid_t serve = start_logged("serve", NULL, &fd);
    e2e_produce_generated(&env, gen, 2000);
    int masters[RC_MAX_NODES];
    assert_int_equal(rc_masters(&cluster, masters, RC_MAX_NODES), 3);
    pid_t reshard = rc_reshard(&cluster, masters[0], masters[1], 2000);
    assert_int_equal(produce_while(reshard, 300, 600), 0);
    assert_true(rc_wait_ok(&cluster, 60));
    e2e_produce_generated(&env, gen, 1000);
    e2e_flush(&env);
    assert_true(caught_up(300));
    kill(serve, SIGTERM);
    assert_int_equal(e2e_wait_timeout(serve, 60), 0);
    assert_no_redirect_errors(fd);
    assert_int_equal(rc_compare(&cluster, env.ref), 0);
}

static void test_rebuild_during_reshard(void **state) {
    (void)state;
    e2e_produce_generated(&env, gen, 2000);
    e2e_flush(&env);
    int masters[RC_MAX_NODES];
    assert_int_equal(rc_masters(&cluster, masters, RC_MAX_NODES), 3);
    pid_t reshard = rc_reshard(&cluster, masters[1], masters[2], 2000);
    e2e_sleep_ms(300); /* the migration under way */
    int fd;
    pid_t rebuild = start_logged("rebuild", rebuild_args, &fd);
    assert_int_equal(e2e_wait_timeout(rebuild, 600), 0);
    assert_no_redirect_errors(fd);
    assert_int_equal(e2e_wait_timeout(reshard, 600), 0);
    assert_true(rc_wait_ok(&cluster, 60));
    assert_int_equal(rc_compare(&cluster, env.ref), 0);
    assert_int_equal(e2e_wait_timeout(e2e_command(&env, "verify", verify_args), 300), 0);
}

/* One slot migrated by hand and left half done while serve writes: its
 * practitioners' keys are on the target, the source answers ASK, and the
 * client must send ASKING then the command to the target (a reshard by
 * redis-cli moves each slot too quickly to be caught in that state). */
static void test_ask_during_a_slot_migration(void **state) {
    (void)state;
    int fd, masters[RC_MAX_NODES];
    pid_t serve = start_logged("serve", NULL, &fd);
    assert_int_equal(rc_masters(&cluster, masters, RC_MAX_NODES), 3);
    int a = masters[0], b = masters[1];
    char ida[64], idb[64];
    rc_node_id(&cluster, a, ida, sizeof(ida));
    rc_node_id(&cluster, b, idb, sizeof(idb));
    redisContext *ca = rc_connect(&cluster, a), *cb = rc_connect(&cluster, b);
    redisReply *r = redisCommand(ca, "SCAN 0 MATCH rm:state:* COUNT 1000");
    assert_true(r && r->type == REDIS_REPLY_ARRAY && r->element[1]->elements > 0);
    redisReply *k = redisCommand(ca, "CLUSTER KEYSLOT %s", r->element[1]->element[0]->str);
    long long slot = k->integer;
    freeReplyObject(k);
    freeReplyObject(r);
    freeReplyObject(redisCommand(cb, "CLUSTER SETSLOT %lld IMPORTING %s", slot, ida));
    freeReplyObject(redisCommand(ca, "CLUSTER SETSLOT %lld MIGRATING %s", slot, idb));
    r = redisCommand(ca, "CLUSTER GETKEYSINSLOT %lld 10000", slot);
    assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements > 0);
    fprintf(stderr, "slot %lld: %zu keys moved from :%d to :%d, migration left open\n", slot,
            r->elements, cluster.port[a], cluster.port[b]);
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *m =
            redisCommand(ca, "MIGRATE 127.0.0.1 %d %s 0 5000", cluster.port[b], r->element[i]->str);
        assert_true(m && m->type == REDIS_REPLY_STATUS);
        freeReplyObject(m);
    }
    freeReplyObject(r);
    /* Reads of the moved keys are answered ASK; a script whose keys are
     * partly missing on the target answers TRYAGAIN until the migration
     * ends (Redis's rule for multi-key commands), which the client retries
     * for up to about 15 s: the migration ends after 3 s of writes. */
    e2e_produce_generated(&env, gen, 3000);
    e2e_flush(&env);
    e2e_sleep_ms(3000);
    for (int i = 0; i < cluster.n; i++) {
        redisContext *c = cluster.pid[i] > 0 ? rc_connect(&cluster, i) : NULL;
        if (c) {
            freeReplyObject(redisCommand(c, "CLUSTER SETSLOT %lld NODE %s", slot, idb));
            redisFree(c);
        }
    }
    redisFree(ca);
    redisFree(cb);
    assert_true(rc_wait_ok(&cluster, 60));
    assert_true(caught_up(300));
    kill(serve, SIGTERM);
    assert_int_equal(e2e_wait_timeout(serve, 60), 0);
    assert_no_redirect_errors(fd);
    assert_int_equal(rc_compare(&cluster, env.ref), 0);
}

#define NODE_UP "readmodel_sink_node_up{target=\"redis\",node=\""

/* The value of node's readmodel_sink_node_up in the exposition text, -1
 * when it has no series; *series counts every node's series. */
static double node_up(const char *text, const char *node, int *series) {
    char prefix[128];
    snprintf(prefix, sizeof(prefix), NODE_UP "%s\"} ", node);
    double v = -1;
    *series = 0;
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        *series += strncmp(l, NODE_UP, strlen(NODE_UP)) == 0;
        if (strncmp(l, prefix, strlen(prefix)) == 0)
            v = atof(l + strlen(prefix));
    }
    return v;
}

/* The node series of /metrics, for a failure message. */
static void print_nodes(const char *m) {
    const char *at = m ? strstr(m, NODE_UP) : NULL;
    fprintf(stderr, "node series on /metrics:\n%.600s\n", at ? at : "(none)");
}

/* Polls until /metrics has exactly one series per node in masters[0..n),
 * each 1, and /readyz answers 200; false after timeout_s. */
static bool wait_nodes_up(int port, const int *masters, int n, int timeout_s) {
    time_t deadline = time(NULL) + timeout_s;
    for (;;) {
        char *m = e2e_http_get(port, "/metrics");
        int up = 0, series = 0, status = 0;
        for (int i = 0; m && i < n; i++) {
            char node[32];
            snprintf(node, sizeof(node), "127.0.0.1:%d", cluster.port[masters[i]]);
            up += node_up(m, node, &series) == 1;
        }
        free(e2e_http_get_status(port, "/readyz", &status));
        if (up == n && series == n && status == 200) {
            free(m);
            return true;
        }
        if (time(NULL) >= deadline) {
            print_nodes(m);
            fprintf(stderr, "/readyz: %d\n", status);
            free(m);
            return false;
        }
        free(m);
        e2e_sleep_ms(250);
    }
}

/* Polls until masters[0]'s series (the killed one) is 0 while the other
 * masters' are 1, and /readyz answers 503 naming masters[0] as down and
 * no other; false after timeout_s. */
static bool wait_node_down(int port, const int *masters, int timeout_s) {
    time_t deadline = time(NULL) + timeout_s;
    char node[3][32];
    for (int i = 0; i < 3; i++)
        snprintf(node[i], sizeof(node[i]), "127.0.0.1:%d", cluster.port[masters[i]]);
    bool zero = false, named = false;
    while (!(zero && named)) {
        int status = 0, series = 0;
        char *ready = e2e_http_get_status(port, "/readyz", &status);
        char *m = e2e_http_get(port, "/metrics");
        zero |= m && node_up(m, node[0], &series) == 0 && node_up(m, node[1], &series) == 1 &&
                node_up(m, node[2], &series) == 1;
        named |= status == 503 && ready && strstr(ready, "node down") && strstr(ready, node[0]) &&
                 !strstr(ready, node[1]) && !strstr(ready, node[2]);
        bool late = !(zero && named) && time(NULL) >= deadline;
        if (late) {
            print_nodes(m);
            fprintf(stderr, "/readyz %d: %s\n", status, ready ? ready : "(no answer)");
        }
        free(ready);
        free(m);
        if (late)
            return false;
        e2e_sleep_ms(100);
    }
    return true;
}

/* CONFIG SET name value on node i. */
static void config_set(int i, const char *name, const char *value) {
    redisContext *c = rc_connect(&cluster, i);
    assert_non_null(c);
    redisReply *r = redisCommand(c, "CONFIG SET %s %s", name, value);
    assert_true(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
}

/* Whether any live node's CLUSTER NODES flags the node `id` fail or
 * pfail. */
static bool node_flagged_failed(const char *id) {
    bool flagged = false;
    for (int i = 0; i < cluster.n && !flagged; i++) {
        redisContext *c = rc_connect(&cluster, i);
        redisReply *r = c ? redisCommand(c, "CLUSTER NODES") : NULL;
        const char *l = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, id) : NULL;
        if (l) {
            const char *eol = strchr(l, '\n');
            size_t len = eol ? (size_t)(eol - l) : strlen(l);
            char buf[512];
            snprintf(buf, sizeof(buf), "%.*s", (int)len, l);
            flagged = strstr(buf, "fail") != NULL;
        }
        freeReplyObject(r);
        if (c)
            redisFree(c);
    }
    return flagged;
}

/* --check-config while a master accepts connections but never answers
 * (SIGSTOP): the probe's deadline passes, the mode is still shown, the
 * silent master is named, exit 0. Its replica is held back so the stop
 * does not fail the master over. */
static void test_check_config_silent_master(void **state) {
    (void)state;
    int masters[RC_MAX_NODES], m = -1;
    int n = rc_masters(&cluster, masters, RC_MAX_NODES);
    for (int i = 0; i < n; i++)
        if (masters[i] != 0) /* node 0 is --redis's seed */
            m = masters[i];
    assert_true(m > 0);
    int replica = rc_replica_of(&cluster, m);
    assert_true(replica >= 0);
    config_set(replica, "cluster-replica-no-failover", "yes");
    assert_int_equal(kill(cluster.pid[m], SIGSTOP), 0);
    const char *check[] = {"--check-config", NULL};
    int rc;
    char *out = e2e_capture(&env, "serve", check, &rc);
    kill(cluster.pid[m], SIGCONT);
    /* the replica may fail over again only once no node flags m failed */
    char id[64];
    rc_node_id(&cluster, m, id, sizeof(id));
    time_t deadline = time(NULL) + 120;
    while (node_flagged_failed(id) && time(NULL) < deadline)
        e2e_sleep_ms(100);
    assert_false(node_flagged_failed(id));
    config_set(replica, "cluster-replica-no-failover", "no");
    assert_non_null(out);
    char line[160];
    snprintf(line, sizeof(line), "\nredis-master=127.0.0.1:%d (does not answer within the check's",
             cluster.port[m]);
    if (rc != 0 || !strstr(out, "\nredis-mode=cluster of 3 master(s)\n") || !strstr(out, line))
        fail_msg("exit %d; --check-config lacks the mode or %s in:\n%s", rc, line + 1, out);
    free(out);
    assert_true(rc_wait_ok(&cluster, 120));
}

/* Polls until node i is one of 3 masters owning slots; false after
 * timeout_s. */
static bool wait_promoted(int i, int timeout_s) {
    time_t deadline = time(NULL) + timeout_s;
    for (;;) {
        int masters[RC_MAX_NODES], n = rc_masters(&cluster, masters, RC_MAX_NODES);
        for (int k = 0; n == 3 && k < n; k++)
            if (masters[k] == i)
                return true;
        if (time(NULL) >= deadline) {
            fprintf(stderr, "127.0.0.1:%d was not promoted in %d s\n", cluster.port[i], timeout_s);
            return false;
        }
        e2e_sleep_ms(200);
    }
}

/* A master killed -9 while serve writes. Its replica is held back from the
 * failover (cluster-replica-no-failover) until serve has shown the master
 * down (its readmodel_sink_node_up 0 and the others' 1, /readyz 503 naming
 * it alone), so that window does not depend on the cluster's timing; then the replica takes
 * over, serve follows the new map (the promoted replica's series 1, the
 * dead master's gone, /readyz 200) and the model converges. */
static void test_master_killed_while_serving(void **state) {
    (void)state;
    pid_t serve = e2e_serve(&env, NULL);
    e2e_produce_generated(&env, gen, 2000);
    e2e_flush(&env);
    /* Every worker has connected and read the slot map (a client that has
     * never connected knows only the --redis node, which may be the one
     * killed), then the kill lands while events keep coming. */
    assert_true(caught_up(300));
    int masters[RC_MAX_NODES];
    assert_int_equal(rc_masters(&cluster, masters, RC_MAX_NODES), 3);
    int port = e2e_metrics_port(serve, 30);
    assert_true(port > 0);
    assert_true(wait_nodes_up(port, masters, 3, 60));
    /* a replica that never synced would refuse to fail over for good */
    assert_true(rc_wait_replicas(&cluster, 60));
    int replica = rc_replica_of(&cluster, masters[0]);
    assert_true(replica >= 0);
    config_set(replica, "cluster-replica-no-failover", "yes");
    e2e_produce_generated(&env, gen, 1000);
    char killed[32];
    snprintf(killed, sizeof(killed), "127.0.0.1:%d", cluster.port[masters[0]]);
    fprintf(stderr, "killing master %s (replica 127.0.0.1:%d held back)\n", killed,
            cluster.port[replica]);
    rc_kill(&cluster, masters[0]);
    for (int i = 0; i < 10; i++) {
        e2e_produce_generated(&env, gen, 200);
        e2e_sleep_ms(200);
    }
    assert_true(wait_node_down(port, masters, 60));
    /* the replica's data age no longer matters, then it may take over */
    config_set(replica, "cluster-replica-validity-factor", "0");
    config_set(replica, "cluster-replica-no-failover", "no");
    /* Not rc_wait_ok alone: right after the kill the other nodes have not
     * yet noticed it (cluster-node-timeout) and still report
     * cluster_state:ok with the dead master in the map. */
    assert_true(wait_promoted(replica, 120));
    assert_true(rc_wait_ok(&cluster, 120));
    assert_int_equal(rc_masters(&cluster, masters, RC_MAX_NODES), 3);
    assert_true(wait_nodes_up(port, masters, 3, 60)); /* the killed one gone */
    e2e_produce_generated(&env, gen, -1);
    e2e_flush(&env);
    assert_true(caught_up(300));
    assert_int_equal(waitpid(serve, NULL, WNOHANG), 0); /* still running: no crash */
    kill(serve, SIGTERM);
    assert_int_equal(e2e_wait_timeout(serve, 60), 0);
    assert_int_equal(rc_compare(&cluster, env.ref), 0);
}

int main(int argc, char **argv) {
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve_rebuild_verify),
        cmocka_unit_test(test_reshard_while_serving),
        cmocka_unit_test(test_rebuild_during_reshard),
        cmocka_unit_test(test_ask_during_a_slot_migration),
        cmocka_unit_test(test_check_config_silent_master),
        cmocka_unit_test(test_master_killed_while_serving),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
