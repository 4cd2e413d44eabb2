/*
 * The --redis URL (readmodel/redis_url.h): redis://[user:password@]host
 * [:port][/db] and unix:///path[?db=N] parse into host, port (6379 by
 * default), db, user and a percent-decoded password; IPv6 hosts in
 * brackets; the redacted form never contains the password; freeing twice
 * is a no-op; rediss:// is TLS; and malformed URLs (other schemes, bad ports or db, unknown query
 * options, relative socket paths) are refused with a non-empty error message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "readmodel/redis_cluster.h"
#include "readmodel/redis_url.h"

#include <string.h>

static void test_valid(void **state) {
    (void)state;
    rm_redis_url_t u;
    char err[128], red[256];
    assert_int_equal(rm_redis_url_parse("redis://127.0.0.1:6379", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_null(u.password);
    rm_redis_url_free(&u);

    assert_int_equal(rm_redis_url_parse("redis://app:p%40ss@cache:7000/3", &u, err, sizeof(err)),
                     0);
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "p@ss");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 3);
    rm_redis_url_redacted(&u, red, sizeof(red));
    assert_string_equal(red, "redis://app:***@cache:7000/3");
    assert_null(strstr(red, "p@ss"));
    rm_redis_url_free(&u);

    assert_int_equal(rm_redis_url_parse("redis://:secret@h", &u, err, sizeof(err)), 0);
    assert_null(u.user);
    assert_string_equal(u.password, "secret");
    assert_int_equal(u.port, 6379);
    rm_redis_url_free(&u);

    assert_int_equal(rm_redis_url_parse("redis://[::1]:6380/1", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "::1");
    rm_redis_url_free(&u);

    assert_int_equal(rm_redis_url_parse("unix:///run/redis.sock?db=2", &u, err, sizeof(err)), 0);
    assert_string_equal(u.socket_path, "/run/redis.sock");
    assert_int_equal(u.db, 2);
    rm_redis_url_free(&u);
    rm_redis_url_free(&u); /* no-op */

    assert_int_equal(rm_redis_url_parse("rediss://app:pw@r.example:6380", &u, err, sizeof(err)), 0);
    assert_true(u.tls);
    assert_string_equal(u.host, "r.example");
    rm_redis_url_redacted(&u, red, sizeof(red));
    assert_string_equal(red, "rediss://app:***@r.example:6380/0");
    assert_int_equal(rm_redis_url_set_tls(&u, "/ca.pem", NULL, NULL, "redis.internal"), 0);
    rm_redis_url_t copy;
    assert_int_equal(rm_redis_url_copy(&copy, &u), 0);
    assert_string_equal(copy.tls_ca_file, "/ca.pem");
    assert_string_equal(copy.tls_server_name, "redis.internal");
    assert_string_equal(copy.password, "pw");
    rm_redis_url_free(&u);
    rm_redis_url_free(&copy);
}

/* The cluster slot of a key: the specification's CRC16 check value, and
 * the hash tag rule that keeps a practitioner's keys in one slot. */
static void test_slot(void **state) {
    (void)state;
    assert_int_equal(rm_redis_slot("123456789", 9), 0x31C3 & 16383);
    assert_int_equal(rm_redis_slot("foo", 3), 12182);
    assert_int_equal(rm_redis_slot("rm:avail:{p1}:2026-01-01", 24), rm_redis_slot("p1", 2));
    assert_int_equal(rm_redis_slot("rm:state:{p1}", 13), rm_redis_slot("p1", 2));
    assert_int_equal(rm_redis_slot("a{}b", 4), rm_redis_slot("a{}b", 4)); /* empty tag: whole key */
    assert_int_not_equal(rm_redis_slot("{}x", 3), rm_redis_slot("", 0));
}

static void test_invalid(void **state) {
    (void)state;
    const char *bad[] = {"http://h",        "redis://h:0",  "redis://h:70000", "redis://h/x",
                         "unix://relative", "redis://",     "redis://h?x=1",   "rediss://",
                         "unix:///s?x=1",   "redis://h:abc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rm_redis_url_t u;
        char err[128] = "";
        assert_int_equal(rm_redis_url_parse(bad[i], &u, err, sizeof(err)), -1);
        assert_true(strlen(err) > 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_valid), cmocka_unit_test(test_invalid),
                                       cmocka_unit_test(test_slot)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
