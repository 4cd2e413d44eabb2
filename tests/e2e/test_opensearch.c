/*
 * End to end for the OpenSearch practitioner index: a local Kafka (mock
 * cluster), a real redis-server, the OpenSearch test server in this process,
 * and `readmodel` as a real subprocess. Documents are compared with the
 * reference projection in tests/support/ref_model.c, written separately
 * from the production code.
 *
 * test_opensearch_real.c includes this file with RM_OS_REAL defined and
 * links os_server_real.c instead of os_server.c: the same cases then run
 * against a real OpenSearch node (the fault-injection ones excepted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cases.h"

#include "e2e.h"
#include "http_json.h"
#include "os_server.h"
#include "readmodel/gen.h"

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOPIC "booking.events"

typedef struct {
    os_server_t *srv;
    const char *index;
    int missing, wrong, seen;
    const char *skip; /* an id not compared (rejected on purpose) */
    bool quiet;
} cmp_t;

static void compare_doc(const char *pid, json_t *want, void *arg) {
    cmp_t *c = arg;
    c->seen++;
    if (c->skip && !strcmp(pid, c->skip))
        return;
    json_t *got = os_server_get(c->srv, c->index, pid);
    if (!got) {
        if (c->missing++ < 3 && !c->quiet)
            fprintf(stderr, "missing document %s\n", pid);
        return;
    }
    if (!json_equal(got, want)) {
        if (c->wrong++ < 3 && !c->quiet) {
            char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
            char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
            fprintf(stderr, "document %s differs:\n  got  %s\n  want %s\n", pid, g, w);
            free(g);
            free(w);
        }
    }
    json_decref(got);
}

/* Differences between the index (through the alias) and the reference:
 * missing + wrong + extra documents. */
static int compare_index(e2e_t *e, os_server_t *srv, const char *skip, bool quiet) {
    cmp_t c = {srv, "practitioners", 0, 0, 0, skip, quiet};
    ref_each_doc(e->ref, compare_doc, &c);
    json_t *ids = os_server_ids(srv, "practitioners");
    int extra = (int)json_array_size(ids) - (c.seen - c.missing);
    json_decref(ids);
    if (!quiet && (c.missing || c.wrong || extra))
        fprintf(stderr, "index: %d missing, %d wrong, %d extra of %d documents\n", c.missing,
                c.wrong, extra, c.seen);
    return c.missing + c.wrong + (extra > 0 ? extra : 0);
}

static bool wait_index(e2e_t *e, os_server_t *srv, const char *skip, int timeout_s) {
    time_t deadline = time(NULL) + timeout_s;
    while (time(NULL) < deadline) {
        if (compare_index(e, srv, skip, true) == 0)
            return true;
        e2e_sleep_ms(250);
    }
    return compare_index(e, srv, skip, false) == 0;
}

static const char *os_url(os_server_t *srv) {
    static char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", os_server_port(srv));
    return url;
}

/* `readmodel rebuild --target opensearch` deleting the previous generation
 * after grace_s; its exit code. */
static int rebuild_os(e2e_t *e, os_server_t *srv, const char *grace_s) {
    const char *args[] = {"--target",     "opensearch", "--from-beginning",
                          "--opensearch", os_url(srv),  "--previous-grace",
                          grace_s,        NULL};
    return e2e_run(e, "rebuild", args);
}

static json_t *http_json(const char *method, const char *url, const char *body, long *status) {
    return test_http_json(NULL, method, url, body, NULL, status);
}

/* The HTTP status of a request (body discarded). */
static long http(const char *method, const char *url, const char *body) {
    long st;
    json_decref(http_json(method, url, body, &st));
    return st;
}

/* Deletes every index whose name contains `containing` but not `except`. */
static void delete_indices(os_server_t *srv, const char *containing, const char *except) {
    json_t *idx = os_server_indices(srv);
    size_t i;
    json_t *n;
    json_array_foreach(idx, i, n) {
        const char *name = json_string_value(n);
        if (!strstr(name, containing) || (except && strstr(name, except)))
            continue;
        char u[256];
        snprintf(u, sizeof(u), "%s/%s", os_url(srv), name);
        assert_int_equal(http("DELETE", u, NULL), 200);
    }
    json_decref(idx);
}

/* serve keeps both models; the index equals the reference projection. */
static void test_serve_builds_index(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 4), 0);
    os_server_t *srv = os_server_start(0);
    assert_non_null(srv);
    rm_gen_t *g = e2e_generator(41, 300, 10);
    e2e_produce_generated(&e, g, 30000);
    const char *extra[] = {"--opensearch", os_url(srv),         "--opensearch-bulk-docs",
                           "100",          "--until-caught-up", NULL};
    assert_int_equal(e2e_run(&e, "serve", extra), 0);
    assert_int_equal(e2e_compare(&e), 0);
    assert_int_equal(compare_index(&e, srv, NULL, false), 0);
    /* More events later: a second run resumes from the stored checkpoints. */
    long bulks = os_server_requests(srv, "bulk");
    e2e_produce_generated(&e, g, 5000);
    assert_int_equal(e2e_run(&e, "serve", extra), 0);
    assert_int_equal(e2e_compare(&e), 0);
    assert_int_equal(compare_index(&e, srv, NULL, false), 0);
    assert_true(os_server_requests(srv, "bulk") > bulks);
    rm_gen_free(g);
    os_server_stop(srv);
    e2e_stop(&e);
}

#ifndef RM_OS_REAL /* injected faults: the test server only */
/* Faults on the OpenSearch side never hold Redis back, and the index
 * converges once they stop, with nothing lost. */
static void test_faults_converge(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 4), 0);
    os_server_t *srv = os_server_start(0);
    assert_non_null(srv);
    rm_gen_t *g = e2e_generator(42, 200, 7);
    e2e_produce_generated(&e, g, 5000);
    const char *extra[] = {"--opensearch", os_url(srv), "--opensearch-bulk-docs", "50", NULL};
    pid_t serve = e2e_serve(&e, extra);
    assert_true(e2e_wait_caught_up(&e, 60));
    assert_true(wait_index(&e, srv, NULL, 60));

    /* 429 storms (whole requests and items), 503s, dropped connections, a
     * slow server, and one document rejected for good. */
    os_fault_bulk_429(srv, 5);
    os_fault_item_429(srv, 400);
    os_fault_503(srv, 5);
    os_fault_drop(srv, 3);
    os_fault_delay_ms(srv, 20);
    /* The practitioner whose document will be rejected: one that exists. */
    json_t *ids = os_server_ids(srv, "practitioners");
    char rejected[80];
    snprintf(rejected, sizeof(rejected), "%s", json_string_value(json_array_get(ids, 0)));
    json_decref(ids);
    os_fault_reject_id(srv, rejected);
    e2e_produce_generated(&e, g, 5000);
    assert_true(e2e_wait_caught_up(&e, 60));
    assert_int_equal(e2e_compare(&e), 0);
    os_fault_delay_ms(srv, 0);
    assert_true(wait_index(&e, srv, rejected, 90));
    assert_int_equal(os_faults_pending(srv), 0); /* every fault hit a real request */

    /* OpenSearch down: Redis stays current; the index catches up after.
     * It comes back only once serve has failed to write to it and retried
     * (three failures among the two OpenSearch workers: one failed twice). */
    int port = e2e_metrics_port(serve, 30);
    assert_true(port > 0);
    const char *os_errors = "readmodel_sink_errors_total{target=\"opensearch\",";
    double errors0 = e2e_metric(port, os_errors);
    assert_true(errors0 >= 0);
    os_server_down(srv);
    e2e_produce_generated(&e, g, 5000);
    assert_true(e2e_wait_caught_up(&e, 60));
    assert_int_equal(e2e_compare(&e), 0);
    assert_true(compare_index(&e, srv, rejected, true) > 0); /* it really was behind */
    assert_true(e2e_wait_metric(port, os_errors, errors0 + 3, 60));
    assert_int_equal(os_server_up(srv), 0);
    assert_true(wait_index(&e, srv, rejected, 90));

    kill(serve, SIGTERM);
    assert_int_equal(e2e_wait(serve), 0);
    rm_gen_free(g);
    os_server_stop(srv);
    e2e_stop(&e);
}
#endif

/* The other way round: Redis down does not hold the index back, and Redis
 * (restarted empty) is rebuilt by serve when it returns. */
static void test_redis_down_index_current(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 2), 0);
    os_server_t *srv = os_server_start(0);
    rm_gen_t *g = e2e_generator(47, 100, 5);
    e2e_produce_generated(&e, g, 2000);
    const char *extra[] = {"--opensearch", os_url(srv), NULL};
    pid_t serve = e2e_serve(&e, extra);
    int port = e2e_metrics_port(serve, 30);
    assert_true(port > 0);
    assert_true(e2e_wait_caught_up(&e, 60));
    assert_true(wait_index(&e, srv, NULL, 60));

    const char *redis_errors = "readmodel_sink_errors_total{target=\"redis\",";
    double errors0 = e2e_metric(port, redis_errors);
    assert_true(errors0 >= 0);
    rm_test_redis_stop(&e.redis, 1);
    e2e_produce_generated(&e, g, 2000);
    assert_true(wait_index(&e, srv, NULL, 60)); /* while Redis is down */
    /* and Redis really was written to and failing meanwhile */
    assert_true(e2e_wait_metric(port, redis_errors, errors0 + 1, 60));
    assert_int_equal(rm_test_redis_restart(&e.redis), 0);
    assert_true(e2e_wait_caught_up(&e, 90));
    assert_int_equal(e2e_compare(&e), 0);
    assert_int_equal(compare_index(&e, srv, NULL, false), 0);
    kill(serve, SIGTERM);
    assert_int_equal(e2e_wait(serve), 0);
    rm_gen_free(g);
    os_server_stop(srv);
    e2e_stop(&e);
}

/* A dropped index heals itself: serve recreates it and replays. A dropped
 * state index alone is reported and repaired by rebuild. */
static void test_dropped_index_heals(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 2), 0);
    os_server_t *srv = os_server_start(0);
    rm_gen_t *g = e2e_generator(43, 100, 5);
    e2e_produce_generated(&e, g, 3000);
    const char *extra[] = {"--opensearch", os_url(srv), NULL};
    pid_t serve = e2e_serve(&e, extra);
    int port = e2e_metrics_port(serve, 30);
    assert_true(port > 0);
    assert_true(wait_index(&e, srv, NULL, 60));
    /* Someone deletes both indices (DELETE /practitioners-000001 ...). */
    delete_indices(srv, "", "meta");
    e2e_produce_generated(&e, g, 500);
    assert_true(wait_index(&e, srv, NULL, 60));

    /* Only the state index deleted: serve cannot repair that alone (the
     * documents' versions are ahead of a replay), says so and waits; the
     * rebuild it names repairs both while serve keeps running. */
    const char *flush_errors = "readmodel_sink_errors_total{target=\"opensearch\",kind=\"flush\"}";
    double errors0 = e2e_metric(port, flush_errors);
    assert_true(errors0 >= 0);
    delete_indices(srv, "practitioners-state-", NULL);
    e2e_produce_generated(&e, g, 500);
    /* The negative check below means something only once serve has tried to
     * write (and failed, and one of its two workers tried again): wait for
     * that, then look. */
    assert_true(e2e_wait_metric(port, flush_errors, errors0 + 3, 60));
    json_t *idx = os_server_indices(srv);
    size_t i;
    json_t *n;
    json_array_foreach(idx, i, n) /* no index auto-created under the alias's name */
        assert_string_not_equal(json_string_value(n), "practitioners-state");
    json_decref(idx);
    assert_int_equal(rebuild_os(&e, srv, "1"), 0);
    e2e_produce_generated(&e, g, 200);
    assert_true(wait_index(&e, srv, NULL, 60));
    const char *verify_args[] = {"--target", "opensearch", "--opensearch", os_url(srv), NULL};
    assert_int_equal(e2e_run(&e, "verify", verify_args), 0);
    kill(serve, SIGTERM);
    assert_int_equal(e2e_wait(serve), 0);
    rm_gen_free(g);
    os_server_stop(srv);
    e2e_stop(&e);
}

/* A reader of the alias, as search would be: _count and _search in a loop. */
typedef struct {
    const char *url;
    atomic_int stop;
    long reads, failures, min_count;
    pthread_t thread;
} reader_t;

static void *reader_main(void *arg) {
    reader_t *rd = arg;
    CURL *c = curl_easy_init();
    rd->min_count = -1;
    while (!atomic_load(&rd->stop)) {
        char u[128];
        bool search = rd->reads % 2;
        snprintf(u, sizeof(u), "%s/practitioners/%s", rd->url, search ? "_search" : "_count");
        long st;
        json_t *j = test_http_json(c, "GET", u, NULL, NULL, &st);
        rd->reads++;
        long n = search ? (long)json_integer_value(json_object_get(
                              json_object_get(json_object_get(j, "hits"), "total"), "value"))
                        : (long)json_integer_value(json_object_get(j, "count"));
        if (st != 200 || !j) {
            if (rd->failures < 5) /* what failed, for whoever reads a failure */
                fprintf(stderr, "reader: %s failed: HTTP %ld (0: no answer)%s\n", u, st,
                        j ? "" : ", no JSON body");
            rd->failures++;
        } else if (rd->min_count < 0 || n < rd->min_count) {
            rd->min_count = n;
        }
        json_decref(j);
    }
    curl_easy_cleanup(c);
    return NULL;
}

/* rebuild --target opensearch while serve runs and readers read the alias:
 * no read fails or sees fewer documents, verify finds the damage before
 * and none after, and serve resumes afterwards. */
static void test_rebuild_while_reading(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 4), 0);
    os_server_t *srv = os_server_start(0);
    rm_gen_t *g = e2e_generator(44, 300, 10);
    e2e_produce_generated(&e, g, 20000);
    const char *os[] = {"--opensearch", os_url(srv), NULL};
    pid_t serve = e2e_serve(&e, os);
    assert_true(wait_index(&e, srv, NULL, 60));
    json_t *ids = os_server_ids(srv, "practitioners");
    long docs = (long)json_array_size(ids);
    assert_true(docs > 100);

    /* Damage: one document deleted, one replaced by a wrong one. */
    char u[256];
    const char *gone = json_string_value(json_array_get(ids, 0));
    const char *bad = json_string_value(json_array_get(ids, 1));
    snprintf(u, sizeof(u), "%s/practitioners/_doc/%s", os_url(srv), gone);
    assert_int_equal(http("DELETE", u, NULL), 200);
    snprintf(u, sizeof(u), "%s/practitioners/_doc/%s?refresh=true", os_url(srv), bad);
    char body[256];
    snprintf(body, sizeof(body), "{\"practitioner_id\":\"%s\",\"active\":false}", bad);
    assert_int_equal(http("PUT", u, body), 200);
    json_decref(ids);
    const char *verify_args[] = {"--target", "opensearch", "--opensearch", os_url(srv), NULL};
    assert_int_equal(e2e_run(&e, "verify", verify_args), 1);

    reader_t rd = {.url = os_url(srv)};
    pthread_create(&rd.thread, NULL, reader_main, &rd);
    e2e_sleep_ms(200);
    assert_int_equal(rebuild_os(&e, srv, "1"), 0);
    /* The lease is released at once (not left to expire). */
    snprintf(u, sizeof(u), "%s/readmodel-meta/_doc/lease:opensearch", os_url(srv));
    assert_int_equal(http("GET", u, NULL), 404);
    e2e_sleep_ms(300);
    atomic_store(&rd.stop, 1);
    pthread_join(rd.thread, NULL);
    fprintf(stderr, "reader: %ld reads, %ld failed, fewest documents seen %ld of %ld\n", rd.reads,
            rd.failures, rd.min_count, docs);
    assert_true(rd.reads > 10);
    assert_int_equal(rd.failures, 0);
    assert_true(rd.min_count >= docs - 1); /* the deleted one was really gone before */

    assert_int_equal(compare_index(&e, srv, NULL, false), 0);
    assert_int_equal(e2e_run(&e, "verify", verify_args), 0);
    /* Generation 2 is live and generation 1 was deleted after the grace. */
    json_t *idx = os_server_indices(srv);
    bool gen1 = false, gen2 = false;
    size_t i;
    json_t *n;
    json_array_foreach(idx, i, n) {
        gen1 |= !strcmp(json_string_value(n), "practitioners-000001");
        gen2 |= !strcmp(json_string_value(n), "practitioners-000002");
    }
    json_decref(idx);
    assert_false(gen1);
    assert_true(gen2);
    /* serve resumed from the rebuilt checkpoints: new events reach the index. */
    e2e_produce_generated(&e, g, 3000);
    assert_true(wait_index(&e, srv, NULL, 60));
    assert_true(e2e_wait_caught_up(&e, 60));
    assert_int_equal(e2e_compare(&e), 0);

    /* --keep-previous keeps generation 2 beside the new 3. */
    const char *keep[] = {
        "--target",        "opensearch", "--from-beginning", "--opensearch", os_url(srv),
        "--keep-previous", NULL};
    assert_int_equal(e2e_run(&e, "rebuild", keep), 0);
    idx = os_server_indices(srv);
    gen2 = false;
    bool gen3 = false;
    json_array_foreach(idx, i, n) {
        gen2 |= !strcmp(json_string_value(n), "practitioners-000002");
        gen3 |= !strcmp(json_string_value(n), "practitioners-000003");
    }
    json_decref(idx);
    assert_true(gen2 && gen3);
    assert_int_equal(compare_index(&e, srv, NULL, false), 0);

    kill(serve, SIGTERM);
    assert_int_equal(e2e_wait(serve), 0);
    rm_gen_free(g);
    os_server_stop(srv);
    e2e_stop(&e);
}

static void produce_slots(e2e_t *e, const char *pid, const char *id, int start) {
    char v[512];
    snprintf(v, sizeof(v),
             "{\"event_id\":\"%s\",\"type\":\"SlotsPublished\",\"schema_version\":1,"
             "\"occurred_at\":\"2026-11-20T10:15:00Z\",\"practitioner_id\":\"%s\","
             "\"date\":\"2026-12-01\",\"start_slot\":%d,\"slot_count\":3}",
             id, pid, start);
    e2e_produce(e, pid, v, strlen(v));
    e2e_flush(e);
}

/* A serve that sat idle through a rebuild holds practitioners read from
 * the previous generation (here a damaged state): it must learn that the
 * aliases moved and reload, not write its old memory into the new index. */
static void test_idle_serve_after_rebuild(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 2), 0);
    os_server_t *srv = os_server_start(0);
    rm_gen_t *g = e2e_generator(45, 50, 5);
    e2e_produce_generated(&e, g, 3000);
    const char *os[] = {"--opensearch", os_url(srv), "--until-caught-up", NULL};
    assert_int_equal(e2e_run(&e, "serve", os), 0);
    assert_int_equal(compare_index(&e, srv, NULL, false), 0);

    /* Damage p-00001's stored state: its first free day, in every slot
     * document of it (the one its head names), holds only slot 0
     * published and no booking. */
    char u[256];
    long st;
    json_t *before = os_server_get(srv, "practitioners", "p-00001");
    const char *day = json_string_value(json_array_get(json_object_get(before, "free_dates"), 0));
    assert_non_null(day);
    /* 36 bytes of published bits (byte 0 = 0x01), then 0 bookings (u16) */
    const char *body = "{\"v\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}";
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "p:p-00001:%s@", day);
    json_t *ids = os_server_ids(srv, "practitioners-state");
    size_t ik;
    json_t *id;
    int damaged = 0;
    json_array_foreach(ids, ik, id) {
        const char *one = json_string_value(id);
        if (strncmp(one, prefix, strlen(prefix)))
            continue;
        /* its own version: fence + 1 */
        snprintf(u, sizeof(u),
                 "%s/practitioners-state/_doc/%s?version=%lld&version_type=external_gte",
                 os_url(srv), one, atoll(one + strlen(prefix)) + 1);
        json_decref(http_json("PUT", u, body, &st));
        assert_int_equal(st, 200);
        damaged++;
    }
    json_decref(ids);
    assert_int_equal(damaged, 1);
    json_decref(before);

    /* A new serve loads the damaged state on p-00001's next event. */
    const char *live[] = {"--opensearch", os_url(srv), NULL};
    pid_t serve = e2e_serve(&e, live);
    produce_slots(&e, "p-00001", "idle-1", 10);
    bool applied = false;
    for (int i = 0; i < 200 && !applied; i++) { /* until serve wrote it */
        json_t *doc = os_server_get(srv, "practitioners", "p-00001");
        size_t k;
        json_t *d;
        json_array_foreach(json_object_get(doc, "free_dates"), k, d) applied |=
            !strcmp(json_string_value(d), "2026-12-01");
        json_decref(doc);
        if (!applied)
            e2e_sleep_ms(100);
    }
    assert_true(applied);
    assert_true(compare_index(&e, srv, NULL, true) > 0); /* the damage shows */

    /* Rebuild while that serve is idle, then one more event for p-00001. */
    assert_int_equal(rebuild_os(&e, srv, "0"), 0);
    assert_int_equal(compare_index(&e, srv, NULL, false), 0);
    produce_slots(&e, "p-00001", "idle-2", 40);
    assert_true(wait_index(&e, srv, NULL, 30));
    e2e_sleep_ms(500); /* and it stays right */
    assert_int_equal(compare_index(&e, srv, NULL, false), 0);
    kill(serve, SIGTERM);
    assert_int_equal(e2e_wait(serve), 0);
    rm_gen_free(g);
    os_server_stop(srv);
    e2e_stop(&e);
}

/* --target all: verify finds damage in both models, rebuild repairs both,
 * status reports the OpenSearch side. */
static void test_all_targets(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 2), 0);
    os_server_t *srv = os_server_start(0);
    rm_gen_t *g = e2e_generator(46, 60, 5);
    e2e_produce_generated(&e, g, 3000);
    const char *os[] = {"--opensearch", os_url(srv), "--until-caught-up", NULL};
    assert_int_equal(e2e_run(&e, "serve", os), 0);
    assert_int_equal(e2e_compare(&e), 0);
    assert_int_equal(compare_index(&e, srv, NULL, false), 0);

    redisContext *c = rm_test_redis_connect(&e.redis);
    redisReply *keys = redisCommand(c, "KEYS rm:avail:*");
    assert_true(keys && keys->elements > 0);
    freeReplyObject(redisCommand(c, "DEL %s", keys->element[0]->str));
    freeReplyObject(keys);
    redisFree(c);
    char u[256];
    snprintf(u, sizeof(u), "%s/practitioners/_doc/p-00003", os_url(srv));
    assert_int_equal(http("DELETE", u, NULL), 200);
    const char *all[] = {"--target", "all", "--opensearch", os_url(srv), NULL};
    assert_int_equal(e2e_run(&e, "verify", all), 1);
    const char *rebuild[] = {
        "--target", "all", "--from-beginning", "--opensearch", os_url(srv), "--previous-grace",
        "0",        NULL};
    assert_int_equal(e2e_run(&e, "rebuild", rebuild), 0);
    assert_int_equal(e2e_run(&e, "verify", all), 0);
    assert_int_equal(e2e_compare(&e), 0);
    assert_int_equal(compare_index(&e, srv, NULL, false), 0);

    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "'%s' status --target opensearch --brokers %s --topic %s --opensearch %s "
             "--log-level warn",
             getenv("READMODEL_BIN"), rm_mock_kafka_bootstraps(e.kafka), TOPIC, os_url(srv));
    FILE *p = popen(cmd, "r");
    char out[8192] = "";
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    fprintf(stderr, "%s", out);
    assert_non_null(strstr(out, "practitioners -> practitioners-000002 (generation 2)"));
    assert_non_null(strstr(out, "lease: free"));
    assert_non_null(strstr(out, "result=ok"));
    assert_non_null(strstr(out, "drift=0"));
    /* every partition's checkpoint is its end: lag 0 */
    long long lo, hi, cp, lag;
    char *row = strstr(out, "\n0 ");
    assert_non_null(row);
    assert_int_equal(sscanf(row, "%*d %lld %lld %lld %lld", &lo, &hi, &cp, &lag), 4);
    assert_int_equal(cp, hi);
    assert_int_equal(lag, 0);
    rm_gen_free(g);
    os_server_stop(srv);
    e2e_stop(&e);
}

/* The status and error type of item k of a _bulk answer. */
static long bulk_item(json_t *r, size_t k, const char **type) {
    json_t *item = json_object_get(json_array_get(json_object_get(r, "items"), k), "index");
    *type = json_string_value(json_object_get(json_object_get(item, "error"), "type"));
    return (long)json_integer_value(json_object_get(item, "status"));
}

/* POST /_bulk (NDJSON, optionally ?require_alias=true): the answer. */
static json_t *post_bulk(os_server_t *srv, const char *ndjson, bool require_alias, long *st) {
    char u[128];
    snprintf(u, sizeof(u), "%s/_bulk%s", os_url(srv), require_alias ? "?require_alias=true" : "");
    return http_json("POST", u, ndjson, st);
}

/* What the sink assumes of the engine, checked on the indices serve made:
 * the mapping is accepted as created (dynamic strict, geo_point, dates);
 * _bulk answers 200 with one result per item under "index", each with its
 * own status and error type; external_gte keeps the newer version and
 * answers 409 version_conflict_engine_exception to a stale one; a document
 * the mapping refuses is rejected alone (400), not the batch; a missing
 * alias with require_alias is a 404 index_not_found_exception item. */
static void test_engine_contract(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 1), 0);
    os_server_t *srv = os_server_start(0);
    assert_non_null(srv);
    rm_gen_t *g = e2e_generator(48, 20, 3);
    e2e_produce_generated(&e, g, 500);
    const char *os[] = {"--opensearch", os_url(srv), "--until-caught-up", NULL};
    assert_int_equal(e2e_run(&e, "serve", os), 0);
    assert_int_equal(compare_index(&e, srv, NULL, false), 0);

    char u[256];
    long st;
    snprintf(u, sizeof(u), "%s/practitioners/_mapping", os_url(srv));
    json_t *m = http_json("GET", u, NULL, &st);
    assert_int_equal(st, 200);
    json_t *mp = json_object_get(json_object_get(m, "practitioners-000001"), "mappings");
    assert_string_equal(json_string_value(json_object_get(mp, "dynamic")), "strict");
    json_t *props = json_object_get(mp, "properties");
    json_t *loc = json_object_get(props, "location"), *fd = json_object_get(props, "free_dates");
    assert_string_equal(json_string_value(json_object_get(loc, "type")), "geo_point");
    assert_string_equal(json_string_value(json_object_get(fd, "type")), "date");
    assert_string_equal(json_string_value(json_object_get(fd, "format")), "yyyy-MM-dd");
    json_decref(m);

    const char *meta = "{\"index\":{\"_index\":\"practitioners\",\"_id\":\"%s\",\"version\":%d,"
                       "\"version_type\":\"external_gte\"}}\n%s\n";
    const char *good = "{\"practitioner_id\":\"c-1\",\"active\":true,\"city\":\"Lyon\","
                       "\"location\":{\"lat\":45.76,\"lon\":4.83},\"free_dates\":[\"2026-12-01\"]}";
    struct {
        const char *id, *doc;
        int version;
        long status;
        const char *type;
    } items[] = {
        {"c-1", good, 10, 201, NULL},
        {"c-1", good, 9, 409, "version_conflict_engine_exception"},
        {"c-1", good, 10, 200, NULL}, /* _gte: an equal version is accepted */
        {"c-2", "{\"practitioner_id\":\"c-2\",\"extra\":1}", 1, 400,
         "strict_dynamic_mapping_exception"},
        {"c-3", "{\"practitioner_id\":\"c-3\",\"location\":\"nowhere\"}", 1, 400,
         "mapper_parsing_exception"},
        {"c-4", "{\"practitioner_id\":\"c-4\",\"free_dates\":[\"2026-13-45\"]}", 1, 400,
         "mapper_parsing_exception"},
        {"c-5", "{\"practitioner_id\":\"c-5\",\"active\":false}", 3, 201, NULL},
    };
    size_t n = sizeof(items) / sizeof(items[0]);
    char body[4096] = "";
    for (size_t k = 0; k < n; k++)
        snprintf(body + strlen(body), sizeof(body) - strlen(body), meta, items[k].id,
                 items[k].version, items[k].doc);
    json_t *r = post_bulk(srv, body, true, &st);
    assert_int_equal(st, 200);
    assert_true(json_is_true(json_object_get(r, "errors")));
    assert_int_equal(json_array_size(json_object_get(r, "items")), n);
    for (size_t k = 0; k < n; k++) {
        const char *type;
        long code = bulk_item(r, k, &type);
        if (code != items[k].status || (items[k].type && (!type || strcmp(type, items[k].type))))
            fprintf(stderr, "item %zu (%s v%d): HTTP %ld %s, expected %ld %s\n", k, items[k].id,
                    items[k].version, code, type ? type : "-", items[k].status,
                    items[k].type ? items[k].type : "-");
        assert_int_equal(code, items[k].status);
        if (items[k].type)
            assert_string_equal(type, items[k].type);
    }
    json_decref(r);
    snprintf(u, sizeof(u), "%s/practitioners/_doc/c-1", os_url(srv));
    r = http_json("GET", u, NULL, &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_integer_value(json_object_get(r, "_version")), 10);
    json_decref(r);
    snprintf(u, sizeof(u), "%s/practitioners/_doc/c-2", os_url(srv));
    assert_int_equal(http("GET", u, NULL), 404);

    /* require_alias: a name that is no alias is a per-item 404. */
    snprintf(body, sizeof(body),
             "{\"index\":{\"_index\":\"no-such-alias\",\"_id\":\"x\",\"version\":1,"
             "\"version_type\":\"external_gte\"}}\n{\"practitioner_id\":\"x\"}\n");
    r = post_bulk(srv, body, true, &st);
    assert_int_equal(st, 200);
    const char *type;
    assert_int_equal(bulk_item(r, 0, &type), 404);
    assert_non_null(type);
    assert_string_equal(type, "index_not_found_exception");
    json_decref(r);
    snprintf(u, sizeof(u), "%s/no-such-alias", os_url(srv));
    assert_int_equal(http("GET", u, NULL), 404); /* and nothing was auto-created */
    rm_gen_free(g);
    os_server_stop(srv);
    e2e_stop(&e);
}

/* A keyword value longer than Lucene's 32,766-byte term limit (a valid
 * event: the spec bounds no profile string) is indexed, not rejected: the
 * document is in the index like any other, with its whole _source. */
static void test_long_keyword_value(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 1), 0);
    os_server_t *srv = os_server_start(0);
    assert_non_null(srv);
    rm_gen_t *g = e2e_generator(49, 20, 3);
    e2e_produce_generated(&e, g, 300);
    size_t big = 33000;
    char *ev = malloc(big + 512);
    assert_non_null(ev);
    int n = snprintf(ev, 512,
                     "{\"event_id\":\"long-1\",\"type\":\"PractitionerRegistered\","
                     "\"schema_version\":1,\"occurred_at\":\"2026-11-20T10:15:00Z\","
                     "\"practitioner_id\":\"p-long\",\"name\":\"Dr L\",\"city\":\"Cork\","
                     "\"location\":{\"lat\":51.9,\"lon\":-8.47},\"languages\":[\"en\"],"
                     "\"accepts_new_patients\":true,\"specialties\":[\"");
    memset(ev + n, 'x', big);
    snprintf(ev + n + big, 512, "\"]}");
    e2e_produce(&e, "p-long", ev, strlen(ev));
    free(ev);
    produce_slots(&e, "p-long", "long-2", 12);
    e2e_produce_generated(&e, g, 300);
    e2e_flush(&e);
    const char *os[] = {"--opensearch", os_url(srv), "--until-caught-up", NULL};
    assert_int_equal(e2e_run(&e, "serve", os), 0);
    assert_int_equal(e2e_compare(&e), 0);
    json_t *doc = os_server_get(srv, "practitioners", "p-long");
    assert_non_null(doc);
    json_decref(doc);
    assert_int_equal(compare_index(&e, srv, NULL, false), 0);
    rm_gen_free(g);
    os_server_stop(srv);
    e2e_stop(&e);
}

#ifndef RM_OS_REAL /* test server only: auth, errors, options; and main */
/* Credentials the server refuses (401) are a configuration error, not an
 * outage: serve --until-caught-up ends with exit 1 instead of retrying
 * forever; with the right ones the same run builds the index. */
static void test_refused_credentials_end_run(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 2), 0);
    os_server_t *srv = os_server_start(0);
    os_server_require_auth(srv, "rm", "right-pw");
    rm_gen_t *g = e2e_generator(47, 20, 3);
    e2e_produce_generated(&e, g, -1);
    rm_gen_free(g);
    char path[] = "/tmp/rm-os-creds-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "rm:wrong-pw\n", 12), 12);
    close(fd);
    const char *until[] = {"--opensearch", os_url(srv),         "--opensearch-credentials-file",
                           path,           "--until-caught-up", NULL};
    assert_int_equal(e2e_wait_timeout(e2e_serve(&e, until), 120), 1);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("rm:right-pw\n", f);
    fclose(f);
    assert_int_equal(e2e_wait_timeout(e2e_serve(&e, until), 120), 0);
    unlink(path);
    assert_int_equal(e2e_compare(&e), 0);
    assert_int_equal(compare_index(&e, srv, NULL, false), 0);
    os_server_stop(srv);
    e2e_stop(&e);
}

/* rebuild/verify errors: no URL, unreachable server. */
static void test_rebuild_errors(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 1), 0);
    const char *no_url[] = {"--target", "opensearch", "--from-beginning", NULL};
    unsetenv("READMODEL_OPENSEARCH_URL");
    assert_int_equal(e2e_run(&e, "rebuild", no_url), 2);
    /* A port nothing listens on: the server that was there is gone. */
    os_server_t *srv = os_server_start(0);
    char url[64];
    snprintf(url, sizeof(url), "%s", os_url(srv));
    os_server_stop(srv);
    const char *down[] = {"--target", "opensearch", "--from-beginning", "--opensearch", url, NULL};
    assert_int_equal(e2e_run(&e, "rebuild", down), 1);
    const char *vdown[] = {"--target", "opensearch", "--opensearch", url, NULL};
    assert_int_equal(e2e_run(&e, "verify", vdown), 2);
    e2e_stop(&e);
}

/* Every OpenSearch option's bad value is a clear configuration error. */
static void test_bad_options(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, 1), 0);
    const char *cases[][4] = {
        {"--opensearch", "localhost:9200", NULL, NULL},
        {"--opensearch", "ftp://h", NULL, NULL},
        {"--opensearch", "http://user:pw@h", NULL, NULL},
        {"--opensearch", "http://h", "--opensearch-ca-file", "/nonexistent/ca.pem"},
        {"--opensearch", "http://h", "--opensearch-credentials-file", "/nonexistent/creds"},
        {"--opensearch", "http://h", "--opensearch-cert-file", "/etc/hostname"},
        {"--opensearch", "http://h", "--opensearch-ca-file", "/etc/hostname"}, /* not PEM */
        {"--opensearch", "http://h", "--opensearch-index-prefix", "Bad Prefix"},
        {"--opensearch", "http://h", "--opensearch-bulk-docs", "0"},
        {"--opensearch", "http://h", "--opensearch-aws-region", "eu-west-1"},
    };
    unsetenv("AWS_ACCESS_KEY_ID");
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const char *extra[] = {cases[k][0], cases[k][1],      cases[k][2],
                               cases[k][3], "--check-config", NULL};
        if (!cases[k][2]) {
            extra[2] = "--check-config";
            extra[3] = NULL;
        }
        assert_int_equal(e2e_run(&e, "serve", extra), 2);
    }
    /* A credentials file without USER:PASSWORD. */
    char path[] = "/tmp/rm-creds-XXXXXX";
    int fd = mkstemp(path);
    assert_true(write(fd, "nocolon\n", 8) == 8);
    close(fd);
    const char *bad[] = {"--opensearch", "http://h",       "--opensearch-credentials-file",
                         path,           "--check-config", NULL};
    assert_int_equal(e2e_run(&e, "serve", bad), 2);
    unlink(path);
    e2e_stop(&e);
}

int main(int argc, char **argv) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve_builds_index),
        cmocka_unit_test(test_faults_converge),
        cmocka_unit_test(test_redis_down_index_current),
        cmocka_unit_test(test_dropped_index_heals),
        cmocka_unit_test(test_rebuild_while_reading),
        cmocka_unit_test(test_idle_serve_after_rebuild),
        cmocka_unit_test(test_all_targets),
        cmocka_unit_test(test_engine_contract),
        cmocka_unit_test(test_long_keyword_value),
        cmocka_unit_test(test_rebuild_errors),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_refused_credentials_end_run),
    };
    int rc = RM_RUN_CASES(tests, NULL, NULL, argc, argv);
    curl_global_cleanup();
    return rc;
}
#endif
