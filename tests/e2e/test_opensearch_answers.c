/*
 * The test server answers as the real engine does: every kind of request
 * the OpenSearch sink makes, sent in the same order to the test server
 * (tests/support/os_server.c) and to a real OpenSearch 2.19.6 node
 * (tests/support/opensearch_real.h), must get the same HTTP status, the same
 * error type, and a body in which every member the test server sends is
 * also in the real node's answer with the same JSON type (the real node may
 * say more: resource ids, shard numbers, caused_by, build details). Label
 * `real`; needs `bash scripts/setup.sh --real`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_json.h"
#include "opensearch_real.h"
#include "os_server.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *request(int port, const char *method, const char *path, const char *body,
                       bool ndjson, long *status) {
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    return test_http_json(NULL, method, url, body, ndjson ? "application/x-ndjson" : NULL, status);
}

static const char *type_name(json_t *j) {
    static const char *const names[] = {"an object", "an array", "a string", "an integer",
                                        "a real",    "true",     "false",    "null"};
    return j ? names[json_typeof(j)] : "nothing";
}

static const char *error_type(json_t *j) {
    json_t *e = json_object_get(j, "error");
    return json_is_string(e) ? json_string_value(e) : json_string_value(json_object_get(e, "type"));
}

/* Members of `test` missing from `real` or of another JSON type (arrays
 * compared by their first element); prints each under `where`. */
static int shape_diff(json_t *test, json_t *real, const char *where) {
    int n = 0;
    if (json_is_object(test)) {
        const char *k;
        json_t *v;
        json_object_foreach(test, k, v) {
            char sub[512];
            snprintf(sub, sizeof(sub), "%s.%s", where, k);
            json_t *r = json_object_get(real, k);
            if (!r ||
                (json_typeof(r) != json_typeof(v) && !(json_is_boolean(r) && json_is_boolean(v)))) {
                fprintf(stderr, "  %s: test server has %s, real node %s\n", sub, type_name(v),
                        type_name(r));
                n++;
            } else {
                n += shape_diff(v, r, sub);
            }
        }
    } else if (json_is_array(test) && json_array_size(test) && json_array_size(real)) {
        char sub[512];
        snprintf(sub, sizeof(sub), "%s[0]", where);
        n += shape_diff(json_array_get(test, 0), json_array_get(real, 0), sub);
    }
    return n;
}

typedef struct {
    const char *method, *path, *body;
    bool ndjson;
} step_t;

#define MAPPING                                                                                    \
    "\"mappings\":{\"dynamic\":\"strict\",\"properties\":{\"practitioner_id\":{\"type\":"          \
    "\"keyword\"},\"name\":{\"type\":\"text\",\"fields\":{\"keyword\":{\"type\":\"keyword\","      \
    "\"ignore_above\":256}}},\"specialties\":{\"type\":\"keyword\",\"ignore_above\":8191},"        \
    "\"city\":{\"type\":\"keyword\"},\"location\":{\"type\":\"geo_point\"},\"free_dates\":{"       \
    "\"type\":\"date\",\"format\":"                                                                \
    "\"yyyy-MM-dd\"},\"active\":{\"type\":\"boolean\"},\"free_slots_total\":{\"type\":"            \
    "\"integer\"}}}"
#define LOADING                                                                                    \
    "\"settings\":{\"index\":{\"number_of_shards\":1,\"number_of_replicas\":0,"                    \
    "\"refresh_interval\":\"-1\"}}"
#define EXT(id, v)                                                                                 \
    "{\"index\":{\"_index\":\"px\",\"_id\":\"" id "\",\"version\":" #v                             \
    ",\"version_type\":\"external_gte\"}}\n"

/* The sink's requests, in the order of a first start, a rebuild and
 * serve's writes (opensearch_sink.c, opensearch_admin.c). */
static const step_t steps[] = {
    {"GET", "/", NULL, false},
    {"GET", "/_alias/px", NULL, false},
    {"GET", "/px/_mapping", NULL, false},
    {"PUT", "/px-000001", "{" LOADING "," MAPPING "}", false},
    {"PUT", "/px-000001", "{" LOADING "}", false},
    {"PUT", "/px-state-000001", "{" LOADING ",\"mappings\":{\"dynamic\":false}}", false},
    {"PUT", "/px-meta",
     "{\"settings\":{\"index\":{\"number_of_shards\":1}},"
     "\"mappings\":{\"dynamic\":false}}",
     false},
    {"POST", "/_aliases",
     "{\"actions\":[{\"add\":{\"index\":\"px-000001\",\"alias\":\"px\"}},"
     "{\"add\":{\"index\":\"px-state-000001\",\"alias\":\"px-state\"}}]}",
     false},
    {"POST", "/_aliases", "{\"actions\":[{\"remove\":{\"index\":\"px-000009\",\"alias\":\"px\"}}]}",
     false},
    {"GET", "/_alias/px", NULL, false},
    {"GET", "/px/_mapping", NULL, false},
    {"GET", "/px-state/_mapping", NULL, false},
    {"GET", "/px/_settings", NULL, false},
    {"PUT", "/px-000001/_mapping",
     "{\"properties\":{\"city\":{\"type\":\"keyword\",\"ignore_above\":8191}}}", false},
    {"PUT", "/px-000001/_mapping", "{\"properties\":{\"city\":{\"type\":\"integer\"}}}", false},
    {"PUT", "/nope/_mapping", "{\"properties\":{\"city\":{\"type\":\"keyword\"}}}", false},
    {"GET", "/px/_mapping", NULL, false},
    {"POST", "/_bulk?require_alias=true",
     EXT("a", 5) "{\"practitioner_id\":\"a\",\"active\":true,\"free_dates\":[\"2026-12-"
                 "01\"]}\n" EXT("a", 4) "{\"practitioner_id\":\"a\"}\n" EXT(
                     "b", 1) "{\"practitioner_id\":\"b\",\"extra\":1}\n" EXT("c",
                                                                             1) "{\"practitioner"
                                                                                "_id\":\"c\","
                                                                                "\"free_slots_"
                                                                                "total\":\"x\"}"
                                                                                "\n" EXT("d",
                                                                                         1) "{\""
                                                                                            "pra"
                                                                                            "cti"
                                                                                            "tio"
                                                                                            "ner"
                                                                                            "_id"
                                                                                            "\":"
                                                                                            "\"d"
                                                                                            "\","
                                                                                            "\"l"
                                                                                            "oca"
                                                                                            "tio"
                                                                                            "n\""
                                                                                            ":{"
                                                                                            "\"l"
                                                                                            "at"
                                                                                            "\":"
                                                                                            "91,"
                                                                                            "\"l"
                                                                                            "on"
                                                                                            "\":"
                                                                                            "0}}"
                                                                                            "\n",
     true},
    {"POST", "/_bulk?require_alias=true",
     "{\"index\":{\"_index\":\"nope\",\"_id\":\"a\",\"version\":1,\"version_type\":"
     "\"external_gte\"}}\n{\"x\":1}\n",
     true},
    {"POST", "/_bulk", EXT("a", 1), true},
    {"PUT", "/px-000001/_settings",
     "{\"index\":{\"number_of_replicas\":1,\"refresh_interval\":"
     "\"1s\"}}",
     false},
    {"POST", "/px-000001/_refresh", NULL, false},
    {"PUT", "/px-state/_create/cp:t:0?require_alias=true", "{\"next\":1}", false},
    {"PUT", "/px-state/_create/cp:t:0?require_alias=true", "{\"next\":1}", false},
    {"GET", "/px-state/_doc/cp:t:0", NULL, false},
    {"PUT", "/px-state/_doc/cp:t:0?require_alias=true&if_seq_no=7&if_primary_term=1",
     "{\"next\":2}", false},
    {"PUT", "/px-state/_doc/cp:t:1?require_alias=true&if_seq_no=0&if_primary_term=1",
     "{\"next\":2}", false},
    {"PUT", "/nope/_create/cp:t:0?require_alias=true", "{\"next\":1}", false},
    {"POST", "/px-state/_mget", "{\"ids\":[\"cp:t:0\",\"p:zz\"]}", false},
    {"POST", "/nope/_mget", "{\"ids\":[\"p:a\"]}", false},
    {"GET", "/px-state/_doc/p:zz", NULL, false},
    {"GET", "/nope/_doc/p:zz", NULL, false},
    {"PUT", "/px-meta/_create/lease:opensearch", "{\"holder\":\"h\",\"expires_ms\":1}", false},
    {"PUT", "/px-meta/_doc/lease:opensearch?if_seq_no=0&if_primary_term=1",
     "{\"holder\":\"h\",\"expires_ms\":2}", false},
    {"DELETE", "/px-meta/_doc/lease:opensearch?if_seq_no=0&if_primary_term=1", NULL, false},
    {"POST", "/px/_search",
     "{\"size\":1000,\"version\":true,\"query\":{\"match_all\":{}},\"sort\":[{\"_id\":"
     "\"asc\"}]}",
     false},
    {"POST", "/nope/_search", "{\"size\":1}", false},
    {"GET", "/px/_count", NULL, false},
    {"POST", "/_aliases",
     "{\"actions\":[{\"remove\":{\"index\":\"px-000001\",\"alias\":\"px\"}},"
     "{\"add\":{\"index\":\"px-000001\",\"alias\":\"px\"}}]}",
     false},
    {"DELETE", "/px-000009", NULL, false},
    {"DELETE", "/px/_doc/zz", NULL, false},
    {"DELETE", "/px-state-000001", NULL, false},
    {"GET", "/_alias/px-state", NULL, false},
};

static void test_answers_match(void **state) {
    (void)state;
    os_real_t *node = os_real_start();
    assert_non_null(node);
    fprintf(stderr, "OpenSearch %s up in %.1f s\n", os_real_version(node),
            os_real_start_seconds(node));
    os_server_t *srv = os_server_start(0);
    assert_non_null(srv);
    int differ = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        const step_t *s = &steps[i];
        long st_real, st_test;
        json_t *real =
            request(os_real_port(node), s->method, s->path, s->body, s->ndjson, &st_real);
        json_t *test =
            request(os_server_port(srv), s->method, s->path, s->body, s->ndjson, &st_test);
        const char *et = error_type(test), *er = error_type(real);
        /* Both answered (a request that reached neither is not a match). */
        bool same =
            st_real > 0 && st_real == st_test && ((!et && !er) || (et && er && !strcmp(et, er)));
        if (!same)
            fprintf(stderr, "%s %s: real node %ld %s, test server %ld %s\n", s->method, s->path,
                    st_real, er ? er : "", st_test, et ? et : "");
        char where[300];
        snprintf(where, sizeof(where), "%s %s", s->method, s->path);
        int shape = shape_diff(test, real, where);
        differ += !same + (shape > 0);
        json_decref(real);
        json_decref(test);
    }
    fprintf(stderr, "%zu requests, %d answered differently\n", sizeof(steps) / sizeof(steps[0]),
            differ);
    assert_int_equal(differ, 0);
    os_server_stop(srv);
    os_real_stop(node);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_answers_match)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
