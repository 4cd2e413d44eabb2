/*
 * readmodel to Redis over TLS (label `real`): Debian's redis-server with
 * --tls-port and --tls-auth-clients yes, certificates made with openssl in
 * the test, an ACL user. One server and one 3-master cluster over TLS
 * (--tls-cluster yes), each started once for the program:
 *  - serve with the CA, a client certificate and the ACL user writes the
 *    model (checked through the server's plain port);
 *  - a server certificate from another CA fails with an error that says it
 *    is not trusted;
 *  - a wrong password fails with an error that says so, without printing
 *    the password;
 *  - serve writes the model into the cluster over TLS;
 *  - a server certificate naming only redis.test (not 127.0.0.1): the
 *    connection to 127.0.0.1 fails with an error that says the name does
 *    not match, and with --redis-tls-server-name redis.test serve writes
 *    the model (the certificate swapped with CONFIG SET, same server);
 *  - --check-config shows the mode of the server and of the cluster; a
 *    wrong password or an untrusted certificate fails it (exit 2).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "e2e.h"
#include "readmodel/gen.h"
#include "redis_cluster_real.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOPIC "booking.events"

static rc_cluster_t single, cluster;
static e2e_t env;
static char url[256];
static const char *server_name; /* --redis-tls-server-name of serve_tls, NULL: none */

/* Runs `readmodel serve --until-caught-up` against url_ with the TLS files
 * given (NULL: left out) and server_name; its stderr goes to *out (caller
 * frees). Returns the exit code. */
static int serve_tls(const char *url_, const char *ca, const char *cert, const char *key,
                     char **out) {
    snprintf(env.redis.url, sizeof(env.redis.url), "%.200s", url_);
    const char *extra[14] = {"--until-caught-up"};
    int n = 1;
    if (server_name)
        extra[n++] = "--redis-tls-server-name", extra[n++] = server_name;
    if (ca)
        extra[n++] = "--redis-ca-file", extra[n++] = ca;
    if (cert)
        extra[n++] = "--redis-cert-file", extra[n++] = cert;
    if (key)
        extra[n++] = "--redis-key-file", extra[n++] = key;
    extra[n] = NULL;
    char path[] = "/tmp/rm-tls-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(2);
    dup2(fd, 2);
    pid_t pid = e2e_serve(&env, extra);
    dup2(saved, 2);
    close(saved);
    int rc = e2e_wait_timeout(pid, 120);
    off_t len = lseek(fd, 0, SEEK_END);
    *out = calloc(1, (size_t)len + 1);
    assert_int_equal(pread(fd, *out, (size_t)len, 0), len);
    close(fd);
    unlink(path);
    fprintf(stderr, "serve exited %d; its log:\n%s", rc, *out);
    return rc;
}

static int setup(void **state) {
    (void)state;
    if (rc_start(&single, 1, 0, true) != 0 || rc_start(&cluster, 3, 1, true) != 0)
        return -1;
    fprintf(stderr,
            "TLS server started in %.1f s, TLS cluster of %d nodes in %.1f s; %.0f MiB RSS in "
            "all\n",
            single.start_s, cluster.n, cluster.start_s, rc_rss_mib(&single) + rc_rss_mib(&cluster));
    if (e2e_start(&env, TOPIC, 3) != 0)
        return -1;
    rm_gen_t *g = e2e_generator(23, 200, 7);
    e2e_produce_generated(&env, g, -1);
    e2e_flush(&env);
    rm_gen_free(g);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    e2e_stop(&env);
    rc_stop(&cluster);
    rc_stop(&single);
    return 0;
}

static void test_untrusted_server_certificate(void **state) {
    (void)state;
    char other[256], *log;
    snprintf(other, sizeof(other), "%s/other.pem", single.dir);
    assert_int_equal(serve_tls(single.url, other, single.client_cert, single.client_key, &log), 1);
    assert_non_null(strstr(log, "not trusted"));
    free(log);
}

static void test_wrong_password(void **state) {
    (void)state;
    snprintf(url, sizeof(url), "rediss://app:Wr0ng-Pa55@127.0.0.1:%d", single.tls_port[0]);
    char *log;
    assert_int_equal(serve_tls(url, single.ca, single.client_cert, single.client_key, &log), 1);
    assert_non_null(strstr(log, "WRONGPASS"));
    assert_null(strstr(log, "Wr0ng-Pa55"));
    free(log);
}

static void test_serve_with_ca_client_cert_and_acl_user(void **state) {
    (void)state;
    char *log;
    assert_int_equal(serve_tls(single.url, single.ca, single.client_cert, single.client_key, &log),
                     0);
    assert_null(strstr(log, "app-secret"));
    free(log);
    assert_int_equal(rc_compare(&single, env.ref), 0);
    /* Without a client certificate the server refuses the connection. */
    assert_int_equal(serve_tls(single.url, single.ca, NULL, NULL, &log), 1);
    assert_non_null(strstr(log, "client certificate"));
    free(log);
}

static void test_cluster_over_tls(void **state) {
    (void)state;
    char *log;
    assert_int_equal(
        serve_tls(cluster.url, cluster.ca, cluster.client_cert, cluster.client_key, &log), 0);
    free(log);
    assert_int_equal(rc_compare(&cluster, env.ref), 0);
}

/* `readmodel serve --check-config` against url_ with the TLS files (as
 * serve_tls): what it printed (caller frees), its exit code in *rc. */
static char *check_config(const char *url_, const char *ca, const char *cert, const char *key,
                          int *rc) {
    snprintf(env.redis.url, sizeof(env.redis.url), "%.200s", url_);
    const char *extra[] = {"--check-config",
                           "--redis-ca-file",
                           ca,
                           "--redis-cert-file",
                           cert,
                           "--redis-key-file",
                           key,
                           NULL};
    char *out = e2e_capture(&env, "serve", extra, rc);
    assert_non_null(out);
    fprintf(stderr, "--check-config exited %d:\n%s", *rc, out);
    return out;
}

/* --check-config over TLS shows the mode the server reports; a refused
 * password or an untrusted certificate is a configuration error (exit 2)
 * that says so, and the password is printed nowhere. */
static void test_check_config_shows_the_mode(void **state) {
    (void)state;
    int rc;
    char line[96], other[256];
    char *out = check_config(single.url, single.ca, single.client_cert, single.client_key, &rc);
    snprintf(line, sizeof(line), "\nredis-mode=single server 127.0.0.1:%d\n", single.tls_port[0]);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, line));
    assert_non_null(strstr(out, "\nredis-transport=TLS on"));
    assert_null(strstr(out, "app-secret"));
    free(out);
    out = check_config(cluster.url, cluster.ca, cluster.client_cert, cluster.client_key, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\nredis-mode=cluster of 3 master(s)\n"));
    free(out);
    snprintf(url, sizeof(url), "rediss://app:Wr0ng-Pa55@127.0.0.1:%d", single.tls_port[0]);
    out = check_config(url, single.ca, single.client_cert, single.client_key, &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "redis-mode=unknown (the server refuses this configuration: "));
    assert_non_null(strstr(out, "WRONGPASS"));
    assert_null(strstr(out, "Wr0ng-Pa55"));
    free(out);
    snprintf(other, sizeof(other), "%s/other.pem", single.dir);
    out = check_config(single.url, other, single.client_cert, single.client_key, &rc);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "not trusted"));
    free(out);
}

/* CONFIG SET of the single server's TLS certificate and key (the server
 * reloads them for new connections). */
static void set_server_cert(const char *cert, const char *key) {
    redisContext *c = rc_connect(&single, 0);
    assert_non_null(c);
    redisReply *r = redisCommand(c, "CONFIG SET tls-cert-file %s tls-key-file %s", cert, key);
    assert_true(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
}

static void test_tls_server_name(void **state) {
    (void)state;
    char cmd[1024], cert[256], key[256], *log;
    snprintf(cert, sizeof(cert), "%s/named.pem", single.dir);
    snprintf(key, sizeof(key), "%s/named.key", single.dir);
    snprintf(cmd, sizeof(cmd),
             "set -e; cd '%s'; openssl req -newkey rsa:2048 -nodes -subj /CN=redis.test"
             " -keyout named.key -out named.csr 2>/dev/null;"
             "printf 'subjectAltName=DNS:redis.test\\n' > named.ext;"
             "openssl x509 -req -in named.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
             " -extfile named.ext -out named.pem 2>/dev/null",
             single.dir);
    assert_int_equal(system(cmd), 0);
    set_server_cert(cert, key);
    /* 127.0.0.1 is not among the certificate's names */
    assert_int_equal(serve_tls(single.url, single.ca, single.client_cert, single.client_key, &log),
                     1);
    assert_non_null(strstr(log, "the name 127.0.0.1 does not match the server certificate"));
    assert_non_null(strstr(log, "--redis-tls-server-name"));
    free(log);
    /* with the certificate's name, serve writes the model into the empty
     * server */
    redisContext *c = rc_connect(&single, 0);
    assert_non_null(c);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    redisFree(c);
    server_name = "redis.test";
    int rc = serve_tls(single.url, single.ca, single.client_cert, single.client_key, &log);
    server_name = NULL;
    free(log);
    set_server_cert(single.cert, single.key);
    assert_int_equal(rc, 0);
    assert_int_equal(rc_compare(&single, env.ref), 0);
}

int main(int argc, char **argv) {
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_untrusted_server_certificate),
        cmocka_unit_test(test_wrong_password),
        cmocka_unit_test(test_serve_with_ca_client_cert_and_acl_user),
        cmocka_unit_test(test_cluster_over_tls),
        cmocka_unit_test(test_tls_server_name),
        cmocka_unit_test(test_check_config_shows_the_mode),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
