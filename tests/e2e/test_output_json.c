/*
 * --output json of status, verify and rebuild --dry-run (docs/output-json.md):
 * stdout is exactly one JSON object whatever the outcome, with the fields
 * the document promises, the numbers the model has (offsets, lag, drift
 * counts and examples of an injected corruption, the lease, the last
 * rebuild and verify) and times in RFC 3339.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "e2e.h"
#include "os_server.h"
#include "readmodel/gen.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPIC      "booking.events"
#define PARTITIONS 3

static json_t *run_json(e2e_t *e, const char *cmd, const char *const *extra, int want_exit) {
    int rc = -1;
    char *out = e2e_capture(e, cmd, extra, &rc);
    assert_non_null(out);
    json_error_t jerr;
    /* exactly one JSON document: anything around it is an error */
    json_t *j = json_loads(out, 0, &jerr);
    if (!j || rc != want_exit)
        fprintf(stderr, "readmodel %s exit %d (want %d), stdout:\n%s\n(%s)\n", cmd, rc, want_exit,
                out, j ? "" : jerr.text);
    free(out);
    assert_non_null(j);
    assert_int_equal(rc, want_exit);
    assert_string_equal(json_string_value(json_object_get(j, "command")), cmd);
    assert_string_equal(json_string_value(json_object_get(j, "topic")), TOPIC);
    return j;
}

static bool is_rfc3339(json_t *v) {
    regex_t re;
    regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$", REG_EXTENDED);
    bool ok = json_is_string(v) && regexec(&re, json_string_value(v), 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

/* The first (redis) target's object. */
static json_t *redis_target(json_t *j) {
    json_t *t = json_array_get(json_object_get(j, "targets"), 0);
    assert_non_null(t);
    assert_string_equal(json_string_value(json_object_get(t, "target")), "redis");
    return t;
}

static json_int_t iget(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v))
        fprintf(stderr, "%s is not an integer\n", k);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static void check_status(e2e_t *e, bool after_repair) {
    json_t *j = run_json(e, "status", (const char *const[]){"--output", "json", NULL}, 0);
    assert_true(is_rfc3339(json_object_get(j, "generated_at")));
    assert_string_equal(json_string_value(json_object_get(j, "result")), "ok");
    json_t *t = redis_target(j), *parts = json_object_get(t, "partitions");
    assert_string_equal(json_string_value(json_object_get(t, "prefix")), "rm:");
    assert_int_equal(json_array_size(parts), PARTITIONS);
    json_int_t total = 0;
    for (size_t p = 0; p < PARTITIONS; p++) {
        json_t *row = json_array_get(parts, p);
        assert_int_equal(iget(row, "partition"), (json_int_t)p);
        assert_int_equal(iget(row, "earliest"), 0);
        assert_int_equal(iget(row, "checkpoint"), iget(row, "end"));
        assert_int_equal(iget(row, "lag"), 0);
        assert_string_equal(json_string_value(json_object_get(row, "state")), "ok");
        total += iget(row, "end");
    }
    assert_int_equal(total, (json_int_t)e->produced);
    json_t *lease = json_object_get(t, "lease");
    assert_true(json_is_false(json_object_get(lease, "held")));
    assert_true(json_is_null(json_object_get(lease, "holder")));
    json_t *rebuild = json_object_get(t, "last_rebuild"),
           *verify = json_object_get(t, "last_verify");
    if (!after_repair) {
        assert_true(json_is_null(rebuild));
        assert_true(json_is_null(verify));
    } else {
        assert_string_equal(json_string_value(json_object_get(rebuild, "result")), "ok");
        assert_true(is_rfc3339(json_object_get(rebuild, "started_at")));
        assert_true(is_rfc3339(json_object_get(rebuild, "finished_at")));
        assert_int_equal(iget(rebuild, "events"), (json_int_t)e->produced);
        assert_true(iget(rebuild, "keys_written") >= 1);
        assert_true(is_rfc3339(json_object_get(verify, "finished_at")));
        assert_int_equal(iget(verify, "drift"), 0);
    }
    json_decref(j);
}

static void test_output_json(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, PARTITIONS), 0);
    rm_gen_t *g = e2e_generator(5, 30, 7);
    e2e_produce_generated(&e, g, -1);
    rm_gen_free(g);
    assert_int_equal(e2e_wait(e2e_serve(&e, (const char *const[]){"--until-caught-up", NULL})), 0);
    assert_int_equal(e2e_compare(&e), 0);

    check_status(&e, false);

    /* rebuild --dry-run: the plan, nothing changed */
    json_t *j = run_json(&e, "rebuild",
                         (const char *const[]){"--target", "redis", "--from-beginning", "--dry-run",
                                               "--output", "json", NULL},
                         0);
    json_t *t = redis_target(j), *plan = json_object_get(t, "plan");
    assert_string_equal(json_string_value(json_object_get(j, "result")), "dry_run");
    assert_true(json_is_true(json_object_get(t, "dry_run")));
    assert_int_equal(iget(plan, "events"), (json_int_t)e.produced);
    assert_int_equal(iget(plan, "truncated_partitions"), 0);
    assert_int_equal(json_array_size(json_object_get(plan, "partitions")), PARTITIONS);
    json_decref(j);

    /* a missing day key and a missing checkpoint: drift with examples */
    redisContext *c = rm_test_redis_connect(&e.redis);
    redisReply *keys = redisCommand(c, "KEYS rm:avail:*");
    assert_true(keys->elements > 0);
    char victim[256];
    snprintf(victim, sizeof(victim), "%s", keys->element[0]->str);
    freeReplyObject(keys);
    freeReplyObject(redisCommand(c, "DEL %s", victim));
    freeReplyObject(redisCommand(c, "DEL rm:checkpoint:" TOPIC ":1"));
    redisFree(c);
    j = run_json(&e, "verify", (const char *const[]){"--output", "json", NULL}, 1);
    t = redis_target(j);
    assert_string_equal(json_string_value(json_object_get(j, "result")), "drift");
    assert_string_equal(json_string_value(json_object_get(t, "result")), "drift");
    json_t *counts = json_object_get(t, "counts");
    assert_int_equal(iget(counts, "keys_missing"), 1);
    assert_int_equal(iget(counts, "checkpoints_wrong"), 1);
    assert_int_equal(iget(counts, "drift"), 2);
    json_t *missing = json_object_get(json_object_get(t, "examples"), "missing");
    assert_int_equal(json_array_size(missing), 1);
    assert_non_null(strstr(victim, json_string_value(json_array_get(missing, 0))));
    json_t *cp = json_array_get(json_object_get(t, "checkpoints_wrong"), 0);
    assert_int_equal(iget(cp, "partition"), 1);
    assert_true(json_is_null(json_object_get(cp, "checkpoint")));
    assert_string_equal(json_string_value(json_object_get(cp, "reason")), "missing");
    json_decref(j);

    /* status shows the missing checkpoint as such */
    j = run_json(&e, "status", (const char *const[]){"--output", "json", NULL}, 0);
    json_t *row = json_array_get(json_object_get(redis_target(j), "partitions"), 1);
    assert_true(json_is_null(json_object_get(row, "checkpoint")));
    assert_int_equal(iget(row, "lag"), iget(row, "end"));
    json_decref(j);

    /* repaired: the last rebuild and verify appear, with RFC 3339 times */
    assert_int_equal(e2e_run(&e, "rebuild",
                             (const char *const[]){"--target", "redis", "--from-beginning", NULL}),
                     0);
    j = run_json(&e, "verify", (const char *const[]){"--output", "json", NULL}, 0);
    assert_string_equal(json_string_value(json_object_get(j, "result")), "identical");
    json_decref(j);
    check_status(&e, true);

    /* a lease held by another rebuild: its holder and expiry */
    c = rm_test_redis_connect(&e.redis);
    freeReplyObject(redisCommand(c, "SET rm:lease:redis other-host:1:2 PX 600000"));
    redisFree(c);
    j = run_json(&e, "status", (const char *const[]){"--output", "json", NULL}, 0);
    json_t *lease = json_object_get(redis_target(j), "lease");
    assert_true(json_is_true(json_object_get(lease, "held")));
    assert_string_equal(json_string_value(json_object_get(lease, "holder")), "other-host:1:2");
    assert_true(iget(lease, "expires_in_ms") > 500000);
    assert_true(is_rfc3339(json_object_get(lease, "expires_at")));
    json_decref(j);

    /* a real rebuild has no JSON form: refused before anything runs */
    int rc = -1;
    free(e2e_capture(&e, "rebuild",
                     (const char *const[]){"--from-beginning", "--output", "json", NULL}, &rc));
    assert_int_equal(rc, 2);
    e2e_stop(&e);
}

/* --target all: the OpenSearch target's object after Redis's, with its
 * alias, index and generation, partitions, lease and the verify counts. */
static void test_output_json_opensearch(void **state) {
    (void)state;
    e2e_t e;
    assert_int_equal(e2e_start(&e, TOPIC, PARTITIONS), 0);
    os_server_t *srv = os_server_start(0);
    assert_non_null(srv);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", os_server_port(srv));
    rm_gen_t *g = e2e_generator(6, 20, 7);
    e2e_produce_generated(&e, g, -1);
    rm_gen_free(g);
    assert_int_equal(e2e_wait(e2e_serve(&e, (const char *const[]){"--until-caught-up",
                                                                  "--opensearch", url, NULL})),
                     0);
    json_t *j = run_json(
        &e, "status",
        (const char *const[]){"--target", "all", "--opensearch", url, "--output", "json", NULL}, 0);
    json_t *targets = json_object_get(j, "targets"), *os = json_array_get(targets, 1);
    assert_int_equal(json_array_size(targets), 2);
    assert_string_equal(json_string_value(json_object_get(os, "target")), "opensearch");
    assert_string_equal(json_string_value(json_object_get(os, "alias")), "practitioners");
    assert_non_null(strstr(json_string_value(json_object_get(os, "index")), "practitioners-"));
    assert_int_equal(iget(os, "generation"), 1);
    json_t *parts = json_object_get(os, "partitions");
    assert_int_equal(json_array_size(parts), PARTITIONS);
    for (size_t p = 0; p < PARTITIONS; p++)
        assert_int_equal(iget(json_array_get(parts, p), "lag"), 0);
    assert_true(json_is_false(json_object_get(json_object_get(os, "lease"), "held")));
    assert_true(json_is_null(json_object_get(os, "last_rebuild")));
    json_decref(j);
    j = run_json(&e, "verify",
                 (const char *const[]){"--target", "opensearch", "--opensearch", url, "--output",
                                       "json", NULL},
                 0);
    os = json_array_get(json_object_get(j, "targets"), 0);
    assert_string_equal(json_string_value(json_object_get(os, "result")), "identical");
    json_t *counts = json_object_get(os, "counts");
    assert_int_equal(iget(counts, "drift"), 0);
    assert_int_equal(iget(counts, "documents_correct"), 20);
    json_decref(j);
    /* the verify record now shows, with an RFC 3339 time */
    j = run_json(&e, "status",
                 (const char *const[]){"--target", "opensearch", "--opensearch", url, "--output",
                                       "json", NULL},
                 0);
    json_t *rec = json_object_get(json_array_get(json_object_get(j, "targets"), 0), "last_verify");
    assert_true(is_rfc3339(json_object_get(rec, "finished_at")));
    assert_int_equal(iget(rec, "drift"), 0);
    json_decref(j);
    os_server_stop(srv);
    e2e_stop(&e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_json),
        cmocka_unit_test(test_output_json_opensearch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
