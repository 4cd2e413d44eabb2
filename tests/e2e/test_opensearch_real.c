/*
 * The OpenSearch end-to-end cases of test_opensearch.c against a real
 * OpenSearch 2.19 node (tests/support/opensearch_real.h, one node for the
 * whole program, every index deleted between cases), plus what only a real
 * node can show: outages of the engine process itself (SIGSTOP for 30 s,
 * kill -9 and a restart with its data, a restart with no data). The cases
 * that inject faults stay with the test server (test_opensearch).
 *
 * Needs `bash scripts/setup.sh --real` (scripts/setup.d/30-opensearch.sh);
 * without it every case fails, naming that command.
 */
#define RM_OS_REAL 1
#include "test_opensearch.c"

#include "opensearch_real.h"

static const char *os_errors = "readmodel_sink_errors_total{target=\"opensearch\",";

/* Produces `count` events and asserts that Redis has them all, exactly,
 * whatever OpenSearch is doing. */
static void produce_redis_current(e2e_t *e, rm_gen_t *g, long count) {
    e2e_produce_generated(e, g, count);
    assert_true(e2e_wait_caught_up(e, 60));
    assert_int_equal(e2e_compare(e), 0);
}

/* serve running with the index current; returns serve's pid and its
 * metrics port in *port. */
static pid_t serve_current(e2e_t *e, os_server_t *srv, rm_gen_t *g, int *port) {
    e2e_produce_generated(e, g, 3000);
    const char *extra[] = {"--opensearch", os_url(srv), NULL};
    pid_t serve = e2e_serve(e, extra);
    *port = e2e_metrics_port(serve, 30);
    assert_true(*port > 0);
    assert_true(e2e_wait_caught_up(e, 60));
    assert_true(wait_index(e, srv, NULL, 90));
    return serve;
}

/* index.creation_date of the concrete index behind the alias, "" when
 * there is none (a restart with its data keeps it, one without data makes
 * a new one). */
static void creation_date(os_real_t *node, char *out, size_t cap) {
    long st;
    json_t *r = os_real_http(node, "GET", "/practitioners/_settings", NULL, &st);
    const char *name;
    json_t *idx;
    out[0] = '\0';
    json_object_foreach(r, name, idx)
        snprintf(out, cap, "%s %s", name,
                 json_string_value(json_object_get(
                     json_object_get(json_object_get(idx, "settings"), "index"), "creation_date")));
    json_decref(r);
}

/* The node frozen (SIGSTOP) for 30 s while serve writes: its requests hang
 * until they time out. Redis stays current throughout; after SIGCONT the
 * index catches up with no difference. */
static void test_real_paused_node(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 2), 0);
    os_server_t *srv = os_server_start(0);
    assert_non_null(srv);
    os_real_t *node = os_server_real_node();
    rm_gen_t *g = e2e_generator(51, 120, 5);
    int port;
    pid_t serve = serve_current(&e, srv, g, &port);
    double errors0 = e2e_metric(port, os_errors);
    assert_true(errors0 >= 0);

    time_t paused = time(NULL);
    os_real_pause(node);
    for (int round = 0; round < 3; round++) {
        produce_redis_current(&e, g, 1000);
        e2e_sleep_ms(2000);
    }
    /* serve really tried to write and failed meanwhile (its requests time
     * out after 30 s); at least 30 s frozen. */
    assert_true(e2e_wait_metric(port, os_errors, errors0 + 1, 60));
    while (time(NULL) - paused < 30)
        e2e_sleep_ms(200);
    produce_redis_current(&e, g, 500);
    fprintf(stderr, "node frozen for %ld s\n", (long)(time(NULL) - paused));
    os_real_resume(node);
    assert_true(wait_index(&e, srv, NULL, 120));
    assert_int_equal(e2e_compare(&e), 0);
    kill(serve, SIGTERM);
    assert_int_equal(e2e_wait(serve), 0);
    rm_gen_free(g);
    os_server_stop(srv);
    e2e_stop(&e);
}

/* kill -9 of the node while serve writes, then a restart on the same port
 * with its data; later a kill and a restart with no data at all (every
 * index, state and the generation record gone). Redis stays current
 * throughout; each time the index catches up with no difference. */
static void test_real_killed_node(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 2), 0);
    os_server_t *srv = os_server_start(0);
    assert_non_null(srv);
    os_real_t *node = os_server_real_node();
    rm_gen_t *g = e2e_generator(52, 120, 5);
    int port;
    pid_t serve = serve_current(&e, srv, g, &port);

    for (int keep = 1; keep >= 0; keep--) {
        char before[128], after[128];
        creation_date(node, before, sizeof(before));
        assert_true(before[0] != '\0');
        double errors0 = e2e_metric(port, os_errors);
        assert_true(errors0 >= 0);
        os_real_kill(node);
        produce_redis_current(&e, g, 1500);
        /* serve failed to write while the node was gone (connection refused) */
        assert_true(e2e_wait_metric(port, os_errors, errors0 + 1, 60));
        produce_redis_current(&e, g, 500);
        assert_int_equal(os_real_restart(node, keep), 0);
        fprintf(stderr, "node restarted %s its data in %.1f s\n", keep ? "with" : "without",
                os_real_start_seconds(node));
        produce_redis_current(&e, g, 500);
        assert_true(wait_index(&e, srv, NULL, 120));
        creation_date(node, after, sizeof(after));
        fprintf(stderr, "index before: %s, after: %s\n", before, after);
        if (keep)
            assert_string_equal(before, after); /* the same index, from its data */
        else
            assert_string_not_equal(before, after); /* made again by serve */
    }
    const char *verify_args[] = {"--target", "opensearch", "--opensearch", os_url(srv), NULL};
    assert_int_equal(e2e_run(&e, "verify", verify_args), 0);
    kill(serve, SIGTERM);
    assert_int_equal(e2e_wait(serve), 0);
    rm_gen_free(g);
    os_server_stop(srv);
    e2e_stop(&e);
}

/* One CTest test (not one per case: the node starts once per program); an
 * optional argument runs only the cases it matches (tests/support/cases.h). */
int main(int argc, char **argv) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve_builds_index),
        cmocka_unit_test(test_redis_down_index_current),
        cmocka_unit_test(test_dropped_index_heals),
        cmocka_unit_test(test_rebuild_while_reading),
        cmocka_unit_test(test_idle_serve_after_rebuild),
        cmocka_unit_test(test_all_targets),
        cmocka_unit_test(test_engine_contract),
        cmocka_unit_test(test_long_keyword_value),
        cmocka_unit_test(test_real_paused_node),
        cmocka_unit_test(test_real_killed_node),
    };
    int rc = RM_RUN_CASES(tests, NULL, NULL, argc, argv);
    os_real_t *node = os_server_real_node();
    if (node) /* the figures the README quotes */
        fprintf(stderr, "opensearch_real: last start %.1f s, RSS now %ld MiB, peak %ld MiB\n",
                os_real_start_seconds(node), os_real_rss_kib(node) / 1024,
                os_real_peak_rss_kib(node) / 1024);
    os_server_real_shutdown();
    curl_global_cleanup();
    return rc;
}
