/*
 * OpenSearch sink against the test server: layout and mapping check, bulk
 * writes and their per-item outcomes under injected faults, monotonic
 * versions, checkpoints, the lease, generations and the alias move, auth,
 * and the per-day state form (bounded write cost, a failed head write,
 * states stored by an earlier release).
 * The test server's own contract checks (malformed NDJSON, aliases) are
 * exercised here too, through raw requests.
 */
#include "readmodel/error.h"
#include "readmodel/event.h"
#include "readmodel/opensearch_sink.h"
#include "os_server.h"

#include <curl/curl.h>
#include <pthread.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "avail_check.h"

typedef struct {
    os_server_t *srv;
    rm_os_sink_t *s;
    char url[64];
} fx_t;

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof(*f));
    f->srv = os_server_start(0);
    assert_non_null(f->srv);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", os_server_port(f->srv));
    rm_os_config_t cfg = {.url = f->url, .bulk_docs = 7, .timeout_ms = 5000};
    f->s = rm_os_sink_new(&cfg);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    rm_os_sink_free(f->s);
    os_server_stop(f->srv);
    free(f);
    return 0;
}

/* n practitioners "p-<i>", each with slots on one day and a name. */
typedef struct {
    char pid[16][16];
    rm_avail_t st[16];
    rm_profile_t prof[16];
    rm_sink_item_t items[16];
} batch_t;

static void batch_init(batch_t *b, int n, int64_t fence) {
    memset(b, 0, sizeof(*b));
    for (int i = 0; i < n; i++) {
        snprintf(b->pid[i], sizeof(b->pid[i]), "p-%d", i);
        assert_int_equal(rm_avail_init(&b->st[i]), 0);
        rm_event_t pub = {.type = RM_EV_SLOTS_PUBLISHED, .slots = {100, 0, (uint16_t)(i + 1)}};
        rm_avail_apply(&b->st[i], &pub);
        b->prof[i].set = RM_PROFILE_NAME;
        b->prof[i].name = strdup("\"Dr X\"");
        b->items[i] = (rm_sink_item_t){.pid = b->pid[i],
                                       .pid_len = strlen(b->pid[i]),
                                       .st = &b->st[i],
                                       .profile = &b->prof[i],
                                       .partition = 0,
                                       .fence = fence + i,
                                       .expect_partition = -1,
                                       .expect_fence = -1};
    }
}

static void batch_free(batch_t *b, int n) {
    for (int i = 0; i < n; i++) {
        rm_avail_free(&b->st[i]);
        rm_profile_free(&b->prof[i]);
    }
}

static void test_ensure_and_mapping(void **state) {
    fx_t *f = *state;
    char diff[512];
    assert_int_equal(rm_os_sink_ping(f->s), RM_ERR_OK);
    assert_int_equal(rm_os_sink_ensure(f->s, diff, sizeof(diff)), RM_ERR_OK);
    assert_string_equal(diff, "");
    json_t *idx = os_server_indices(f->srv);
    assert_int_equal(json_array_size(idx), 3); /* meta, generation 1 of docs and state */
    json_decref(idx);
    /* A second ensure changes nothing. */
    assert_int_equal(rm_os_sink_ensure(f->s, diff, sizeof(diff)), RM_ERR_OK);
    idx = os_server_indices(f->srv);
    assert_int_equal(json_array_size(idx), 3);
    json_decref(idx);

    /* An index someone created with another mapping is reported. */
    rm_os_config_t cfg = {.url = f->url, .index_prefix = "other-"};
    rm_os_sink_t *o = rm_os_sink_new(&cfg);
    CURL *c = curl_easy_init();
    char u[128];
    snprintf(u, sizeof(u), "%s/other-practitioners-000001", f->url);
    const char *body = "{\"mappings\":{\"properties\":{\"location\":{\"type\":\"keyword\"}}},"
                       "\"aliases\":{\"other-practitioners\":{}}}";
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    fclose(devnull);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    assert_int_equal(rm_os_sink_ensure(o, diff, sizeof(diff)), RM_ERR_OK);
    assert_non_null(strstr(diff, "location: geo_point expected, keyword found"));
    rm_os_sink_free(o);
}

/* An index made before the free-text keyword fields carried ignore_above
 * (as this release's body without it) gets it from ensure, in place. */
static void test_ensure_upgrades_keywords(void **state) {
    fx_t *f = *state;
    json_t *body = rm_os_index_body(false);
    json_t *props = json_object_get(json_object_get(body, "mappings"), "properties");
    const char *fields[] = {"specialties", "city", "languages"};
    for (size_t i = 0; i < 3; i++)
        json_object_del(json_object_get(props, fields[i]), "ignore_above");
    json_object_set_new(body, "aliases", json_pack("{s:{}}", "old-practitioners"));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    CURL *c = curl_easy_init();
    char u[128];
    snprintf(u, sizeof(u), "%s/old-practitioners-000001", f->url);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    fclose(devnull);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(text);

    rm_os_config_t cfg = {.url = f->url, .index_prefix = "old-"};
    rm_os_sink_t *o = rm_os_sink_new(&cfg);
    char diff[512];
    assert_int_equal(rm_os_sink_ensure(o, diff, sizeof(diff)), RM_ERR_OK);
    assert_string_equal(diff, "");
    assert_int_equal(os_server_requests(f->srv, "mapping"), 1);
    /* what GET _mapping now shows: every field has it */
    c = curl_easy_init();
    snprintf(u, sizeof(u), "%s/old-practitioners/_mapping", f->url);
    char *got = NULL;
    size_t got_len = 0;
    FILE *mem = open_memstream(&got, &got_len);
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    fclose(mem);
    json_t *m = json_loads(got, 0, NULL);
    free(got);
    json_t *live = json_object_get(
        json_object_get(json_object_get(m, "old-practitioners-000001"), "mappings"), "properties");
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(live, fields[i]), "ignore_above")),
            8191);
    json_decref(m);
    /* A second ensure has nothing to change. */
    assert_int_equal(rm_os_sink_ensure(o, diff, sizeof(diff)), RM_ERR_OK);
    assert_int_equal(os_server_requests(f->srv, "mapping"), 1);
    rm_os_sink_free(o);
}

static void test_flush_load_versions(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    batch_t b;
    batch_init(&b, 16, 100);
    assert_int_equal(rm_os_sink_flush(f->s, b.items, 16, 3), RM_ERR_OK);
    for (int i = 0; i < 16; i++) {
        assert_true(b.items[i].written);
        assert_false(b.items[i].stale);
        json_t *doc = os_server_get(f->srv, "practitioners", b.pid[i]);
        assert_non_null(doc);
        assert_int_equal(json_integer_value(json_object_get(doc, "free_slots_total")), i + 1);
        assert_string_equal(json_string_value(json_object_get(doc, "name")), "Dr X");
        json_decref(doc);
    }
    /* 16 items in bulks of 7: 3 requests for documents, 3 for the states'
     * slot documents (one day each), 3 for their heads. */
    assert_int_equal(rm_os_sink_counters(f->s)->bulk_requests, 9);

    /* Rewriting the same fences is idempotent. */
    assert_int_equal(rm_os_sink_flush(f->s, b.items, 16, 3), RM_ERR_OK);
    assert_true(b.items[3].written);

    /* Load returns the stored state and fence. */
    rm_avail_t st;
    rm_profile_t prof = {0};
    rm_avail_init(&st);
    rm_sink_item_t l = {
        .pid = "p-3", .pid_len = 3, .st = &st, .profile = &prof, .partition = -9, .fence = -9};
    rm_sink_item_t none_l;
    rm_avail_t st2;
    rm_profile_t prof2 = {0};
    rm_avail_init(&st2);
    none_l = (rm_sink_item_t){
        .pid = "nobody", .pid_len = 6, .st = &st2, .profile = &prof2, .partition = -9, .fence = -9};
    rm_sink_item_t two[2] = {l, none_l};
    assert_int_equal(rm_os_sink_load(f->s, two, 2), RM_ERR_OK);
    assert_int_equal(two[0].fence, 103);
    assert_int_equal(two[0].partition, 0);
    uint8_t day[RM_DAY_BYTES];
    assert_int_equal(rm_avail_day(&st, 100, day), 4);
    assert_string_equal(prof.name, "\"Dr X\"");
    assert_int_equal(two[1].fence, -1);
    rm_avail_free(&st);
    rm_avail_free(&st2);
    rm_profile_free(&prof);
    rm_profile_free(&prof2);

    /* A stale writer (lower fence) is refused and told so. */
    batch_t old;
    batch_init(&old, 2, 10);
    assert_int_equal(rm_os_sink_flush(f->s, old.items, 2, 3), RM_ERR_OK);
    assert_true(old.items[0].stale);
    assert_false(old.items[0].written);
    json_t *doc = os_server_get(f->srv, "practitioners", "p-0");
    assert_int_equal(json_integer_value(json_object_get(doc, "free_slots_total")), 1);
    json_decref(doc);
    batch_free(&old, 2);
    batch_free(&b, 16);
}

static void test_faults(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    batch_t b;
    /* Item-level 429s are retried until written. */
    batch_init(&b, 10, 0);
    os_fault_item_429(f->srv, 12);
    assert_int_equal(rm_os_sink_flush(f->s, b.items, 10, 5), RM_ERR_OK);
    for (int i = 0; i < 10; i++)
        assert_true(b.items[i].written);
    assert_true(rm_os_sink_counters(f->s)->item_retries >= 10);
    batch_free(&b, 10);

    /* Whole-request 429, 503 and a dropped connection: retried. */
    batch_init(&b, 10, 100);
    os_fault_bulk_429(f->srv, 1);
    os_fault_503(f->srv, 1);
    os_fault_drop(f->srv, 1);
    assert_int_equal(rm_os_sink_flush(f->s, b.items, 10, 6), RM_ERR_OK);
    for (int i = 0; i < 10; i++)
        assert_true(b.items[i].written);
    batch_free(&b, 10);

    /* More failures than attempts: an error, and the caller retries. */
    batch_init(&b, 3, 200);
    os_fault_503(f->srv, 50);
    assert_int_equal(rm_os_sink_flush(f->s, b.items, 3, 2), RM_ERR_IO);
    assert_non_null(strstr(rm_os_sink_last_error(f->s), "503"));
    os_fault_503(f->srv, 0);
    assert_int_equal(rm_os_sink_flush(f->s, b.items, 3, 2), RM_ERR_OK);
    batch_free(&b, 3);

    /* Server down: an I/O error naming the connection. */
    batch_init(&b, 3, 300);
    os_server_down(f->srv);
    assert_int_equal(rm_os_sink_flush(f->s, b.items, 3, 1), RM_ERR_IO);
    assert_int_equal(os_server_up(f->srv), 0);
    assert_int_equal(rm_os_sink_flush(f->s, b.items, 3, 1), RM_ERR_OK);
    batch_free(&b, 3);

    /* A document rejected for good (400) is counted, its state kept. */
    batch_init(&b, 3, 400);
    os_fault_reject_id(f->srv, "p-1");
    assert_int_equal(rm_os_sink_flush(f->s, b.items, 3, 3), RM_ERR_OK);
    assert_true(b.items[1].rejected);
    assert_false(b.items[0].rejected);
    assert_true(b.items[0].written && b.items[1].written);
    assert_int_equal(rm_os_sink_counters(f->s)->rejected, 1);
    batch_free(&b, 3);
}

/* Deletes the live generation's state index, and its documents' index too
 * when `docs` (as an operator's DELETE would). */
static void drop_model(fx_t *f, bool docs) {
    char *d, *st;
    long gen;
    assert_int_equal(rm_os_current(f->s, &d, &st, &gen), RM_ERR_OK);
    if (docs)
        assert_int_equal(rm_os_index_delete(f->s, d), RM_ERR_OK);
    assert_int_equal(rm_os_index_delete(f->s, st), RM_ERR_OK);
    free(d);
    free(st);
}

/* No concrete index has this name (automatic index creation did not run). */
static void assert_no_index(fx_t *f, const char *name) {
    json_t *idx = os_server_indices(f->srv);
    size_t i;
    json_t *n;
    json_array_foreach(idx, i, n) assert_string_not_equal(json_string_value(n), name);
    json_decref(idx);
}

static void test_dropped_index_recreated(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    bool ok;
    int64_t cur;
    assert_int_equal(rm_os_checkpoint_cas(f->s, "t", 0, -1, 50, &ok, &cur), RM_ERR_OK);
    assert_true(ok);
    drop_model(f, true);
    batch_t b;
    batch_init(&b, 2, 60);
    assert_int_equal(rm_os_sink_flush(f->s, b.items, 2, 3), RM_ERR_OK);
    assert_true(b.items[0].stale); /* the caller must replay */
    int64_t next;
    assert_int_equal(rm_os_checkpoint_get(f->s, "t", 0, &next), RM_ERR_OK);
    assert_int_equal(next, -1);
    /* No index named like the alias was auto-created by the write. */
    assert_no_index(f, "practitioners");
    batch_free(&b, 2);
}

/* Dropped again, and this time a checkpoint is written before any document:
 * the write must not auto-create an index named like the state alias (that
 * would block the alias for good); it re-creates the model and says the
 * stored checkpoint is gone. */
static void test_dropped_index_checkpoint_first(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    bool ok;
    int64_t cur = 7;
    assert_int_equal(rm_os_checkpoint_cas(f->s, "t", 0, -1, 50, &ok, &cur), RM_ERR_OK);
    drop_model(f, true);
    assert_int_equal(rm_os_checkpoint_cas(f->s, "t", 0, 50, 80, &ok, &cur), RM_ERR_OK);
    assert_false(ok);
    assert_int_equal(cur, -1);
    assert_no_index(f, "practitioners-state");
    /* The model exists again: the replay's first checkpoint is created. */
    assert_int_equal(rm_os_checkpoint_cas(f->s, "t", 0, -1, 80, &ok, &cur), RM_ERR_OK);
    assert_true(ok);

    /* Only the state index dropped: documents are left with versions a
     * replay could not overwrite, so this is refused with the repair named. */
    drop_model(f, false);
    assert_int_equal(rm_os_checkpoint_cas(f->s, "t", 0, 80, 90, &ok, &cur), RM_ERR_REPLY);
    assert_non_null(strstr(rm_os_sink_last_error(f->s), "rebuild --target opensearch"));
    assert_no_index(f, "practitioners-state");
}

static void test_checkpoint_cas(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    int64_t next, cur;
    bool ok;
    assert_int_equal(rm_os_checkpoint_get(f->s, "t", 3, &next), RM_ERR_OK);
    assert_int_equal(next, -1);
    assert_int_equal(rm_os_checkpoint_cas(f->s, "t", 3, -1, 10, &ok, &cur), RM_ERR_OK);
    assert_true(ok);
    assert_int_equal(rm_os_checkpoint_cas(f->s, "t", 3, 10, 20, &ok, &cur), RM_ERR_OK);
    assert_true(ok);
    /* Another writer moves it: our next compare-and-set fails and says where. */
    rm_os_config_t cfg = {.url = f->url};
    rm_os_sink_t *other = rm_os_sink_new(&cfg);
    assert_int_equal(rm_os_checkpoint_cas(other, "t", 3, 20, 99, &ok, &cur), RM_ERR_OK);
    assert_true(ok);
    assert_int_equal(rm_os_checkpoint_cas(f->s, "t", 3, 20, 30, &ok, &cur), RM_ERR_OK);
    assert_false(ok);
    assert_int_equal(cur, 99);
    assert_int_equal(rm_os_checkpoint_cas(f->s, "t", 3, -1, 5, &ok, &cur), RM_ERR_OK);
    assert_false(ok);
    assert_int_equal(cur, 99);
    rm_os_sink_free(other);
}

static void test_lease(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    rm_os_config_t cfg = {.url = f->url};
    rm_os_sink_t *other = rm_os_sink_new(&cfg);
    bool got, ok;
    char holder[64];
    long long ttl;
    assert_int_equal(rm_os_lease_acquire(f->s, "a", 60000, &got, holder, sizeof(holder)), 0);
    assert_true(got);
    assert_int_equal(rm_os_lease_acquire(other, "b", 60000, &got, holder, sizeof(holder)), 0);
    assert_false(got);
    assert_string_equal(holder, "a");
    assert_int_equal(rm_os_lease_get(other, holder, sizeof(holder), &ttl), 0);
    assert_string_equal(holder, "a");
    assert_true(ttl > 0);
    assert_int_equal(rm_os_lease_renew(f->s, "a", 60000, &ok), 0);
    assert_true(ok);
    assert_int_equal(rm_os_lease_release(f->s, "a"), 0);
    assert_int_equal(rm_os_lease_get(other, holder, sizeof(holder), &ttl), 0);
    assert_string_equal(holder, "");
    /* An expired lease can be taken over. */
    assert_int_equal(rm_os_lease_acquire(f->s, "a", 1, &got, NULL, 0), 0);
    assert_true(got);
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(rm_os_lease_acquire(other, "b", 60000, &got, holder, sizeof(holder)), 0);
    assert_true(got);
    assert_int_equal(rm_os_lease_renew(f->s, "a", 60000, &ok), 0);
    assert_false(ok); /* a lost lease is noticed on renewal */
    rm_os_sink_free(other);
}

static void collect(const char *id, json_t *src, long long version, void *arg) {
    (void)src;
    assert_true(version >= 1);
    json_array_append_new(arg, json_string(id));
}

static void test_generation_swap(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    batch_t b;
    batch_init(&b, 5, 0);
    assert_int_equal(rm_os_sink_flush(f->s, b.items, 5, 3), RM_ERR_OK);
    batch_free(&b, 5);
    assert_int_equal(rm_os_generation_create(f->s, 2), RM_ERR_OK);
    batch_init(&b, 12, 1000);
    assert_int_equal(rm_os_generation_load(f->s, 2, b.items, 12, 3), RM_ERR_OK);
    assert_int_equal(rm_os_generation_checkpoint(f->s, 2, "t", 0, 1012), RM_ERR_OK);
    /* Not visible through the alias before the move. */
    json_t *ids = json_array();
    assert_int_equal(rm_os_scan(f->s, collect, ids), RM_ERR_OK);
    assert_int_equal(json_array_size(ids), 5);
    json_decref(ids);
    assert_int_equal(rm_os_generation_finish(f->s, 2), RM_ERR_OK);
    assert_int_equal(rm_os_generation_activate(f->s, 2), RM_ERR_OK);
    char *docs, *st;
    long gen;
    assert_int_equal(rm_os_current(f->s, &docs, &st, &gen), RM_ERR_OK);
    assert_int_equal(gen, 2);
    assert_string_equal(docs, "practitioners-000002");
    assert_string_equal(st, "practitioners-state-000002");
    free(docs);
    free(st);
    ids = json_array();
    assert_int_equal(rm_os_scan(f->s, collect, ids), RM_ERR_OK);
    assert_int_equal(json_array_size(ids), 12);
    assert_string_equal(json_string_value(json_array_get(ids, 0)), "p-0");
    assert_string_equal(json_string_value(json_array_get(ids, 1)), "p-1");
    assert_string_equal(json_string_value(json_array_get(ids, 2)), "p-10");
    json_decref(ids);
    int64_t next;
    assert_int_equal(rm_os_checkpoint_get(f->s, "t", 0, &next), RM_ERR_OK);
    assert_int_equal(next, 1012);
    batch_free(&b, 12);
}

static void test_auth(void **state) {
    fx_t *f = *state;
    os_server_require_auth(f->srv, "reader", "s3cret");
    /* a configuration the server refuses, not a passing state */
    assert_int_equal(rm_os_sink_ping(f->s), RM_ERR_CONFIG);
    assert_non_null(strstr(rm_os_sink_last_error(f->s), "401"));
    rm_os_config_t cfg = {.url = f->url, .username = "reader", .password = "s3cret"};
    rm_os_sink_t *a = rm_os_sink_new(&cfg);
    assert_int_equal(rm_os_sink_ping(a), RM_ERR_OK);
    assert_null(strstr(rm_os_sink_last_error(a), "s3cret"));
    rm_os_sink_free(a);
    os_server_require_auth(f->srv, NULL, NULL);
    os_server_require_sigv4(f->srv, true);
    assert_int_equal(rm_os_sink_ping(f->s), RM_ERR_CONFIG); /* unsigned: 403 */
    rm_os_config_t sv = {.url = f->url,
                         .aws_region = "eu-west-1",
                         .aws_key = "AKIDEXAMPLE",
                         .aws_secret = "wJalrXUtnFEMI"};
    rm_os_sink_t *v = rm_os_sink_new(&sv);
    assert_int_equal(rm_os_sink_ping(v), RM_ERR_OK);
    rm_os_sink_free(v);
}

/* strdup, interposed for this executable (the sink is linked in
 * statically), and jansson's allocator: the call fail_*_at calls from now
 * on this thread fails (-1: none). The test server's thread is unaffected. */
static _Thread_local int fail_strdup_at = -1, fail_json_at = -1;

char *strdup(const char *str) {
    if (fail_strdup_at >= 0 && fail_strdup_at-- == 0)
        return NULL;
    size_t n = strlen(str) + 1;
    char *p = malloc(n);
    return p ? memcpy(p, str, n) : NULL;
}

static void *json_alloc(size_t n) {
    if (fail_json_at >= 0 && fail_json_at-- == 0)
        return NULL;
    return malloc(n);
}

/* Out of memory while copying any string of the configuration: no sink
 * (a lost username or password would talk to the server without them). */
static void test_new_fails_when_a_copy_fails(void **state) {
    fx_t *f = *state;
    rm_os_config_t cfg = {.url = f->url,
                          .index_prefix = "x-",
                          .ca_file = "/ca.pem",
                          .cert_file = "/c.pem",
                          .key_file = "/k.pem",
                          .username = "reader",
                          .password = "s3cret",
                          .aws_region = "eu-west-1",
                          .aws_key = "AKID",
                          .aws_secret = "secret",
                          .aws_token = "token"};
    int copies = 0;
    for (;; copies++) {
        fail_strdup_at = copies;
        rm_os_sink_t *s = rm_os_sink_new(&cfg);
        bool failed = fail_strdup_at < 0; /* the counter ran out: a copy failed */
        fail_strdup_at = -1;
        if (!failed) {
            assert_non_null(s);
            rm_os_sink_free(s);
            break;
        }
        assert_null(s);
    }
    assert_int_equal(copies, 11);

    /* The names of the current generation are copies too: never RM_ERR_OK
     * without them. (libcurl's own strdup calls count here too: those it
     * absorbs or reports as an I/O error.) */
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    int nomem = 0;
    for (int i = 0;; i++) {
        char *docs = (char *)"x", *st = (char *)"x";
        long gen = -2;
        fail_strdup_at = i;
        rm_err_t e = rm_os_current(f->s, &docs, &st, &gen);
        bool failed = fail_strdup_at < 0;
        fail_strdup_at = -1;
        if (e == RM_ERR_OK) {
            assert_non_null(docs);
            assert_non_null(st);
            assert_int_equal(gen, 1);
        } else {
            assert_null(docs);
            assert_null(st);
        }
        nomem += e == RM_ERR_NOMEM;
        free(docs);
        free(st);
        if (!failed)
            break;
    }
    assert_true(nomem >= 2); /* the two names (and libcurl's handle) */
}

/* Out of memory inside jansson while a load builds its request or reads
 * the answer: an error (RM_ERR_NOMEM when nothing was sent), never a crash. */
static void test_load_out_of_memory(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    batch_t b;
    batch_init(&b, 2, 100);
    assert_int_equal(rm_os_sink_flush(f->s, b.items, 2, 3), RM_ERR_OK);
    rm_avail_t st[2];
    rm_profile_t prof[2];
    memset(prof, 0, sizeof(prof));
    json_set_alloc_funcs(json_alloc, free);
    int k = 0;
    for (;; k++) {
        rm_avail_init(&st[0]);
        rm_avail_init(&st[1]);
        rm_sink_item_t l[2] = {{.pid = "p-0", .pid_len = 3, .st = &st[0], .profile = &prof[0]},
                               {.pid = "p-1", .pid_len = 3, .st = &st[1], .profile = &prof[1]}};
        long mgets = os_server_requests(f->srv, "mget");
        fail_json_at = k;
        rm_err_t e = rm_os_sink_load(f->s, l, 2);
        bool failed = fail_json_at < 0;
        fail_json_at = -1;
        rm_avail_free(&st[0]);
        rm_avail_free(&st[1]);
        rm_profile_free(&prof[0]);
        rm_profile_free(&prof[1]);
        memset(prof, 0, sizeof(prof));
        if (!failed) {
            assert_int_equal(e, RM_ERR_OK);
            break;
        }
        if (os_server_requests(f->srv, "mget") == mgets) {
            assert_int_equal(e, RM_ERR_NOMEM); /* failed before sending */
        } else if (e == RM_ERR_OK) {           /* jansson absorbed it while parsing */
            assert_int_equal(l[0].fence, 100);
            assert_int_equal(l[1].fence, 101);
        }
    }
    json_set_alloc_funcs(malloc, free);
    assert_true(k > 3);
    batch_free(&b, 2);
}

/* TLS: the server's certificate is verified against --opensearch-ca-file,
 * refused without it, and a client certificate and key are loaded. The
 * certificates are made here with the openssl command. */
static void test_tls(void **state) {
    (void)state;
    char dir[] = "/tmp/rm-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[2048];
    snprintf(
        cmd, sizeof(cmd),
        "cd %s && exec >/dev/null 2>&1 && "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
        "-subj /CN=rm-test-ca && "
        "openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=localhost && "
        "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && "
        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem "
        "-days 2 -extfile san.ext && "
        "openssl req -newkey rsa:2048 -nodes -keyout cli.key -out cli.csr -subj /CN=readmodel && "
        "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cli.pem "
        "-days 2",
        dir);
    assert_int_equal(system(cmd), 0);
    char ca[256], srv_cert[256], srv_key[256], cli_cert[256], cli_key[256];
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(srv_cert, sizeof(srv_cert), "%s/srv.pem", dir);
    snprintf(srv_key, sizeof(srv_key), "%s/srv.key", dir);
    snprintf(cli_cert, sizeof(cli_cert), "%s/cli.pem", dir);
    snprintf(cli_key, sizeof(cli_key), "%s/cli.key", dir);
    os_server_t *srv = os_server_start_tls(0, srv_cert, srv_key);
    assert_non_null(srv);
    char url[64];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", os_server_port(srv));

    rm_os_config_t good = {.url = url, .ca_file = ca};
    rm_os_sink_t *s = rm_os_sink_new(&good);
    assert_int_equal(rm_os_sink_ping(s), RM_ERR_OK);
    assert_int_equal(rm_os_sink_ensure(s, NULL, 0), RM_ERR_OK);
    rm_os_sink_free(s);

    rm_os_config_t untrusted = {.url = url};
    s = rm_os_sink_new(&untrusted);
    assert_int_equal(rm_os_sink_ping(s), RM_ERR_IO);
    /* the class, not libcurl's words (they differ with the machine's CA setup) */
    assert_non_null(strstr(rm_os_sink_last_error(s), "TLS: "));
    rm_os_sink_free(s);

    rm_os_config_t client = {.url = url, .ca_file = ca, .cert_file = cli_cert, .key_file = cli_key};
    s = rm_os_sink_new(&client);
    assert_int_equal(rm_os_sink_ping(s), RM_ERR_OK);
    rm_os_sink_free(s);
    rm_os_config_t mismatch = {
        .url = url, .ca_file = ca, .cert_file = cli_cert, .key_file = srv_key};
    s = rm_os_sink_new(&mismatch);
    assert_int_equal(rm_os_sink_ping(s), RM_ERR_IO);
    assert_non_null(strstr(rm_os_sink_last_error(s), "TLS: "));
    rm_os_sink_free(s);

    os_server_stop(srv);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The test server refuses what OpenSearch refuses. */
static long raw(fx_t *f, const char *method, const char *path, const char *ctype, const char *body,
                char *out, size_t cap) {
    CURL *c = curl_easy_init();
    char u[256];
    snprintf(u, sizeof(u), "%s%s", f->url, path);
    struct curl_slist *h = NULL;
    char ct[128];
    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
    h = curl_slist_append(h, ct);
    FILE *m = fmemopen(out, cap, "w");
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, m);
    long st = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    fclose(m);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return st;
}

/* ---- the per-day state form: write cost, crash convergence, old form ---- */

#define D0 9823 /* 2026-11-23 */

/* Base64 of the sink (opensearch_sink.c), to store a state as an earlier
 * release did. */
char *rm_os_b64_encode(const char *in, size_t len);

static void apply(rm_avail_t *st, rm_event_type_t t, const char *id, uint16_t day, uint16_t start,
                  uint16_t n) {
    rm_event_t e;
    memset(&e, 0, sizeof(e));
    e.type = t;
    e.slots = (rm_slots_t){day, start, n};
    e.booking_id = (rm_span_t){id, strlen(id)};
    rm_avail_apply(st, &e);
}

/* Loads pid through a new sink (as a restarted process would) into *st
 * (initialised here); returns the stored fence. */
static int64_t load_fresh(fx_t *f, const char *pid, rm_avail_t *st, rm_err_t want) {
    rm_os_config_t cfg = {.url = f->url, .timeout_ms = 5000};
    rm_os_sink_t *s = rm_os_sink_new(&cfg);
    rm_profile_t prof = {0};
    assert_int_equal(rm_avail_init(st), 0);
    rm_sink_item_t it = {.pid = pid, .pid_len = strlen(pid), .st = st, .profile = &prof};
    assert_int_equal(rm_os_sink_load(s, &it, 1), want);
    rm_profile_free(&prof);
    rm_os_sink_free(s);
    return it.fence;
}

#define BIG_BOOKINGS 200000
#define PER_DAY      48 /* 6-slot bookings filling each published day */

/* Flushes the one item, clears its dirty days and moves its fence on;
 * returns the bytes of the _bulk bodies the server received for it. */
static long flush_measured(fx_t *f, rm_sink_item_t *it) {
    long before = os_server_requests(f->srv, "bulk_bytes");
    assert_int_equal(rm_os_sink_flush(f->s, it, 1, 3), RM_ERR_OK);
    assert_true(it->written);
    rm_avail_clear_dirty(it->st);
    it->expect_partition = it->partition;
    it->expect_fence = it->fence++;
    return os_server_requests(f->srv, "bulk_bytes") - before;
}

/* The OpenSearch counterpart of test_redis_sink's
 * test_write_cost_bounded_by_change: after 200,000 bookings on one
 * practitioner (4,167 days), a cancellation on its first day, a booking on
 * a new day and a reschedule each send a few KB of _bulk bodies (the
 * document, one or two day slots and the head); the whole state in one
 * document cost about 4 MB each. What is stored loads back the same. */
static void test_write_cost_bounded_by_change(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    rm_avail_t st;
    rm_profile_t prof = {0};
    rm_avail_init(&st);
    char id[32];
    uint16_t last = D0;
    for (int b = 0; b < BIG_BOOKINGS; b++) {
        last = (uint16_t)(D0 + b / PER_DAY);
        if (b % PER_DAY == 0)
            apply(&st, RM_EV_SLOTS_PUBLISHED, "", last, 0, 288);
        snprintf(id, sizeof(id), "b-%06d", b);
        apply(&st, RM_EV_BOOKING_CREATED, id, last, (uint16_t)(b % PER_DAY * 6), 6);
    }
    rm_sink_item_t it = {.pid = "big",
                         .pid_len = 3,
                         .st = &st,
                         .profile = &prof,
                         .partition = 0,
                         .fence = 1,
                         .expect_partition = -1,
                         .expect_fence = -1};
    long first = flush_measured(f, &it);
    apply(&st, RM_EV_BOOKING_CANCELLED, "b-000003", 0, 0, 0);
    long one = flush_measured(f, &it);
    apply(&st, RM_EV_BOOKING_CREATED, "new-1", (uint16_t)(last + 1), 0, 2);
    long two = flush_measured(f, &it);
    apply(&st, RM_EV_BOOKING_RESCHEDULED, "b-100000", (uint16_t)(last + 2), 4, 2);
    long three = flush_measured(f, &it);
    print_message("state of %d bookings: first write %ld B of _bulk bodies; one event after it: "
                  "%ld, %ld, %ld B\n",
                  BIG_BOOKINGS, first, one, two, three);
    json_t *head = os_server_get(f->srv, "practitioners-state", "p:big");
    char *htext = json_dumps(head, JSON_COMPACT);
    print_message("head after them: %zu B (fences field %zu B)\n", strlen(htext),
                  strlen(json_string_value(json_object_get(head, "fences"))));
    assert_true(strlen(htext) < 2048);
    free(htext);
    json_decref(head);
    assert_true(first > 2000000); /* the measurement sees a large write */
    assert_true(one < 4096);
    assert_true(two < 4096);
    assert_true(three < 4096);

    rm_avail_t back;
    assert_int_equal(load_fresh(f, "big", &back, RM_ERR_OK), it.fence - 1);
    assert_same_state(&st, &back);
    rm_avail_free(&back);
    rm_avail_free(&st);
}

/* A flush whose head write fails after its day slots were written (the
 * head item refused) leaves the stored state at the previous commit: a
 * restarted writer loads it, replays the event and converges to the
 * reference. A stale writer (lower fence) writes only slot documents of its
 * own (garbage), never a head. */
static void test_head_failure_converges(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    rm_avail_t st, ref;
    rm_profile_t prof = {0};
    rm_avail_init(&st);
    rm_avail_init(&ref);
    for (int d = 0; d < 4; d++) {
        apply(&st, RM_EV_SLOTS_PUBLISHED, "", (uint16_t)(D0 + d), 0, 100);
        apply(&ref, RM_EV_SLOTS_PUBLISHED, "", (uint16_t)(D0 + d), 0, 100);
    }
    rm_sink_item_t it = {.pid = "cc",
                         .pid_len = 2,
                         .st = &st,
                         .profile = &prof,
                         .partition = 0,
                         .fence = 10,
                         .expect_partition = -1,
                         .expect_fence = -1};
    assert_int_equal(rm_os_sink_flush(f->s, &it, 1, 3), RM_ERR_OK);
    rm_avail_clear_dirty(&st);
    it.expect_partition = 0;
    it.expect_fence = 10;
    /* Event at 11 changes days 0 and 1; its head write is refused. */
    apply(&st, RM_EV_BOOKING_CREATED, "b1", D0, 0, 4);
    apply(&st, RM_EV_SLOTS_PUBLISHED, "", D0 + 1, 100, 10);
    it.fence = 11;
    long bulks = os_server_requests(f->srv, "bulk");
    os_fault_reject_id(f->srv, "p:cc");
    assert_int_equal(rm_os_sink_flush(f->s, &it, 1, 3), RM_ERR_REPLY);
    assert_int_equal(os_server_requests(f->srv, "bulk") - bulks, 3); /* doc, slots, head */
    os_fault_accept_id(f->srv, "p:cc");
    rm_avail_free(&st);

    /* Restart: the state of fence 10, whatever the slots now hold. */
    rm_avail_t back;
    assert_int_equal(load_fresh(f, "cc", &back, RM_ERR_OK), 10);
    assert_same_state(&ref, &back);
    apply(&ref, RM_EV_BOOKING_CREATED, "b1", D0, 0, 4);
    apply(&ref, RM_EV_SLOTS_PUBLISHED, "", D0 + 1, 100, 10);
    apply(&back, RM_EV_BOOKING_CREATED, "b1", D0, 0, 4); /* the replay */
    apply(&back, RM_EV_SLOTS_PUBLISHED, "", D0 + 1, 100, 10);
    it.st = &back;
    it.fence = 11;
    assert_int_equal(rm_os_sink_flush(f->s, &it, 1, 3), RM_ERR_OK);
    assert_true(it.written);
    rm_avail_free(&back);
    assert_int_equal(load_fresh(f, "cc", &back, RM_ERR_OK), 11);
    assert_same_state(&ref, &back);
    rm_avail_free(&back);

    /* A stale writer at fence 5 whose document gets through (it was
     * deleted): every slot it addresses, committed ones included, is
     * newer, so it is told stale and writes no head. */
    char out[512];
    assert_int_equal(
        raw(f, "DELETE", "/practitioners/_doc/cc", "application/json", NULL, out, sizeof(out)),
        200);
    rm_avail_t old;
    rm_avail_init(&old);
    for (int d = 0; d < 4; d++)
        apply(&old, RM_EV_SLOTS_PUBLISHED, "", (uint16_t)(D0 + d), 0, 7);
    rm_sink_item_t z = {.pid = "cc",
                        .pid_len = 2,
                        .st = &old,
                        .profile = &prof,
                        .partition = 0,
                        .fence = 5,
                        .expect_partition = -1,
                        .expect_fence = -1};
    assert_int_equal(rm_os_sink_flush(f->s, &z, 1, 3), RM_ERR_OK);
    assert_true(z.stale);
    assert_false(z.written);
    assert_int_equal(load_fresh(f, "cc", &back, RM_ERR_OK), 11);
    assert_same_state(&ref, &back);
    rm_avail_free(&back);
    /* A slot its head names that is missing: corrupt. */
    assert_int_equal(raw(f, "DELETE", "/practitioners-state/_doc/p:cc:2026-11-23@11",
                         "application/json", NULL, out, sizeof(out)),
                     200);
    load_fresh(f, "cc", &back, RM_ERR_CORRUPT);
    rm_avail_free(&back);
    rm_avail_free(&old);
    rm_avail_free(&ref);
    rm_profile_free(&prof);
}

/* Slot documents of the practitioner pid in the state index. */
static int count_slots(fx_t *f, const char *pid) {
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "p:%s:", pid);
    json_t *ids = os_server_ids(f->srv, "practitioners-state");
    int n = 0;
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) n += !strncmp(json_string_value(v), prefix, strlen(prefix));
    json_decref(ids);
    return n;
}

/* The livelock of fixed slot ids: writer W writes a practitioner's changed
 * days at fence 20, its head is refused (or W dies). The next owner resumes
 * from the committed head (fence 10) and its batch ends at 15, below W's
 * fence: its slot documents carry their own fence, so nothing of W's stands
 * in its way; it commits and converges to the reference. Each commit
 * deletes the slots it superseded; W's stay as garbage. */
/* A head and its slots are read in two requests. Another writer that
 * commits a newer head and deletes the slots the old one named in between
 * makes the first read look corrupt; the load reads again and gets the new
 * head with its slots (reported corrupt, it would quarantine a sound
 * practitioner). */
static void test_commit_between_head_and_slot_reads(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    rm_avail_t st, ref;
    rm_profile_t prof = {0};
    rm_avail_init(&st);
    rm_avail_init(&ref);
    for (int d = 0; d < 3; d++) {
        apply(&st, RM_EV_SLOTS_PUBLISHED, "", (uint16_t)(D0 + d), 0, 100);
        apply(&ref, RM_EV_SLOTS_PUBLISHED, "", (uint16_t)(D0 + d), 0, 100);
    }
    rm_sink_item_t it = {.pid = "rc",
                         .pid_len = 2,
                         .st = &st,
                         .profile = &prof,
                         .partition = 0,
                         .fence = 10,
                         .expect_partition = -1,
                         .expect_fence = -1};
    assert_int_equal(rm_os_sink_flush(f->s, &it, 1, 3), RM_ERR_OK);
    const char *idx = "practitioners-state";
    os_server_copy(f->srv, idx, "p:rc", "saved-10");
    /* the other writer: day 0 changes at 20, its @10 slot is deleted */
    rm_avail_clear_dirty(&st);
    apply(&st, RM_EV_BOOKING_CREATED, "b1", D0, 0, 4);
    apply(&ref, RM_EV_BOOKING_CREATED, "b1", D0, 0, 4);
    it.expect_partition = 0;
    it.expect_fence = 10;
    it.fence = 20;
    assert_int_equal(rm_os_sink_flush(f->s, &it, 1, 3), RM_ERR_OK);
    assert_null(os_server_get(f->srv, idx, "p:rc:2026-11-23@10"));
    /* the reader sees the head of 10, then (after its head _mget) the 20 */
    os_server_copy(f->srv, idx, "p:rc", "saved-20");
    os_server_copy(f->srv, idx, "saved-10", "p:rc");
    os_fault_copy_after_mget(f->srv, idx, "saved-20", "p:rc");
    rm_avail_t got;
    assert_int_equal(load_fresh(f, "rc", &got, RM_ERR_OK), 20);
    assert_same_state(&ref, &got);
    rm_avail_free(&got);
    /* a head that names a missing slot every time is corrupt */
    os_server_copy(f->srv, idx, "saved-10", "p:rc");
    assert_int_equal(load_fresh(f, "rc", &got, RM_ERR_CORRUPT), -1);
    rm_avail_free(&got);
    rm_avail_free(&st);
    rm_avail_free(&ref);
    rm_profile_free(&prof);
}

static void test_smaller_fence_after_failed_head(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    rm_avail_t st, ref;
    rm_profile_t prof = {0};
    rm_avail_init(&st);
    rm_avail_init(&ref);
    for (int d = 0; d < 4; d++) {
        apply(&st, RM_EV_SLOTS_PUBLISHED, "", (uint16_t)(D0 + d), 0, 100);
        apply(&ref, RM_EV_SLOTS_PUBLISHED, "", (uint16_t)(D0 + d), 0, 100);
    }
    rm_sink_item_t it = {.pid = "lv",
                         .pid_len = 2,
                         .st = &st,
                         .profile = &prof,
                         .partition = 0,
                         .fence = 10,
                         .expect_partition = -1,
                         .expect_fence = -1};
    assert_int_equal(rm_os_sink_flush(f->s, &it, 1, 3), RM_ERR_OK);
    assert_int_equal(count_slots(f, "lv"), 4);
    rm_avail_clear_dirty(&st);
    /* W: events up to 20 change days 0 and 1; its head is refused. */
    apply(&st, RM_EV_BOOKING_CREATED, "b1", D0, 0, 4);
    apply(&st, RM_EV_SLOTS_PUBLISHED, "", D0 + 1, 100, 10);
    apply(&st, RM_EV_BOOKING_CREATED, "b2", D0 + 1, 20, 4);
    it.expect_partition = 0;
    it.expect_fence = 10;
    it.fence = 20;
    os_fault_reject_id(f->srv, "p:lv");
    assert_int_equal(rm_os_sink_flush(f->s, &it, 1, 3), RM_ERR_REPLY);
    os_fault_accept_id(f->srv, "p:lv");
    rm_avail_free(&st);

    /* The next owner: state of fence 10, then its batch up to 15. */
    rm_avail_t back;
    assert_int_equal(load_fresh(f, "lv", &back, RM_ERR_OK), 10);
    apply(&back, RM_EV_BOOKING_CREATED, "b1", D0, 0, 4);
    apply(&back, RM_EV_SLOTS_PUBLISHED, "", D0 + 1, 100, 10);
    apply(&ref, RM_EV_BOOKING_CREATED, "b1", D0, 0, 4);
    apply(&ref, RM_EV_SLOTS_PUBLISHED, "", D0 + 1, 100, 10);
    rm_os_config_t cfg = {.url = f->url, .timeout_ms = 5000};
    rm_os_sink_t *next = rm_os_sink_new(&cfg);
    rm_sink_item_t n2 = it;
    n2.st = &back;
    n2.fence = 15;
    assert_int_equal(rm_os_sink_flush(next, &n2, 1, 3), RM_ERR_OK);
    assert_true(n2.written);
    assert_false(n2.stale);
    rm_avail_t got;
    assert_int_equal(load_fresh(f, "lv", &got, RM_ERR_OK), 15);
    assert_same_state(&ref, &got);
    rm_avail_free(&got);
    /* Days 0 and 1 @10 deleted; @15 and W's @20 there. */
    assert_null(os_server_get(f->srv, "practitioners-state", "p:lv:2026-11-23@10"));
    json_t *w = os_server_get(f->srv, "practitioners-state", "p:lv:2026-11-23@20");
    assert_non_null(w);
    json_decref(w);
    assert_int_equal(count_slots(f, "lv"), 6);
    /* It goes on up to 20 and past: W's garbage at 20 is overwritten. */
    rm_avail_clear_dirty(&back);
    apply(&back, RM_EV_BOOKING_CREATED, "b2", D0 + 1, 20, 4);
    apply(&ref, RM_EV_BOOKING_CREATED, "b2", D0 + 1, 20, 4);
    n2.expect_fence = 15;
    n2.fence = 20;
    assert_int_equal(rm_os_sink_flush(next, &n2, 1, 3), RM_ERR_OK);
    assert_true(n2.written);
    assert_int_equal(load_fresh(f, "lv", &got, RM_ERR_OK), 20);
    assert_same_state(&ref, &got);
    rm_avail_free(&got);
    assert_int_equal(rm_os_sink_counters(next)->slot_delete_failures, 0);
    rm_os_sink_free(next);
    rm_avail_free(&back);
    rm_avail_free(&ref);
    rm_profile_free(&prof);
}

/* A head of the first per-day form (two fixed slots a day, "slot1" instead
 * of "fences"), made here from one of the current form: it loads, and the
 * next write stores the practitioner whole with write-once slots. */
static void test_two_slot_form_migrates(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    rm_avail_t st;
    rm_profile_t prof = {0};
    rm_avail_init(&st);
    for (int d = 0; d < 3; d++)
        apply(&st, RM_EV_SLOTS_PUBLISHED, "", (uint16_t)(D0 + d), 0, 30);
    rm_sink_item_t it = {.pid = "tw",
                         .pid_len = 2,
                         .st = &st,
                         .profile = &prof,
                         .partition = 0,
                         .fence = 10,
                         .expect_partition = -1,
                         .expect_fence = -1};
    assert_int_equal(rm_os_sink_flush(f->s, &it, 1, 3), RM_ERR_OK);
    char out[1024], path[160];
    for (int d = 0; d < 3; d++) { /* day d in slot d % 2 */
        char id[64];
        snprintf(id, sizeof(id), "p:tw:2026-11-%02d@10", 23 + d);
        json_t *slot = os_server_get(f->srv, "practitioners-state", id);
        assert_non_null(slot);
        char *body = json_dumps(slot, JSON_COMPACT);
        snprintf(path, sizeof(path), "/practitioners-state/_doc/p:tw:2026-11-%02d:%d", 23 + d,
                 d % 2);
        assert_int_equal(raw(f, "PUT", path, "application/json", body, out, sizeof(out)), 201);
        free(body);
        json_decref(slot);
        snprintf(path, sizeof(path), "/practitioners-state/_doc/%s", id);
        assert_int_equal(raw(f, "DELETE", path, "application/json", NULL, out, sizeof(out)), 200);
    }
    json_t *head = os_server_get(f->srv, "practitioners-state", "p:tw");
    json_object_del(head, "fences");
    json_object_set_new(head, "slot1", json_string("Ag==")); /* bits 010 */
    char *body = json_dumps(head, JSON_COMPACT);
    json_decref(head);
    assert_int_equal(
        raw(f, "PUT", "/practitioners-state/_doc/p:tw", "application/json", body, out, sizeof(out)),
        200);
    free(body);
    rm_avail_t back;
    assert_int_equal(load_fresh(f, "tw", &back, RM_ERR_OK), 10);
    assert_same_state(&st, &back);
    assert_true(back.rewrite);
    rm_avail_free(&back);
    /* Loaded by the writer, changed on one day: written whole. */
    rm_avail_init(&back);
    rm_sink_item_t it2 = {.pid = "tw", .pid_len = 2, .st = &back, .profile = &prof};
    assert_int_equal(rm_os_sink_load(f->s, &it2, 1), RM_ERR_OK);
    apply(&back, RM_EV_BOOKING_CREATED, "b1", D0 + 2, 0, 3);
    apply(&st, RM_EV_BOOKING_CREATED, "b1", D0 + 2, 0, 3);
    it2.expect_partition = 0;
    it2.expect_fence = 10;
    it2.fence = 11;
    assert_int_equal(rm_os_sink_flush(f->s, &it2, 1, 3), RM_ERR_OK);
    assert_true(it2.written);
    for (int d = 0; d < 3; d++) {
        char id[64];
        snprintf(id, sizeof(id), "p:tw:2026-11-%02d@11", 23 + d);
        json_t *slot = os_server_get(f->srv, "practitioners-state", id);
        assert_non_null(slot);
        json_decref(slot);
    }
    rm_avail_free(&back);
    assert_int_equal(load_fresh(f, "tw", &back, RM_ERR_OK), 11);
    assert_same_state(&st, &back);
    assert_false(back.rewrite);
    rm_avail_free(&back);
    rm_avail_free(&st);
    rm_profile_free(&prof);
}

typedef struct {
    rm_os_sink_t *s;
    rm_sink_item_t *it;
    rm_err_t rc;
} flush_job_t;

static void *flush_thread(void *arg) {
    flush_job_t *j = arg;
    j->rc = rm_os_sink_flush(j->s, j->it, 1, 8);
    return NULL;
}

/* The state of "mv" after events 1..fence: days 0..2 published (1..5),
 * a booking on day 0 (6..10), one on day 1 (11). */
static void mv_state(rm_avail_t *st, int fence) {
    rm_avail_init(st);
    for (int d = 0; d < 3; d++)
        apply(st, RM_EV_SLOTS_PUBLISHED, "", (uint16_t)(D0 + d), 0, 50);
    if (fence >= 10)
        apply(st, RM_EV_BOOKING_CREATED, "b1", D0, 0, 4);
    if (fence >= 11)
        apply(st, RM_EV_BOOKING_CREATED, "b2", D0 + 1, 8, 4);
}

/* A live flush whose head write is retried (429) across a rebuild's alias
 * move: its state goes to the generation it was loaded from, so the new
 * generation (whose rebuild stopped at fence 5) is not given a per-day head
 * naming slots it does not hold; it loads as the rebuild wrote it, and a
 * writer resuming from it converges. */
static void test_flush_across_alias_move(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    rm_profile_t prof = {0};
    rm_avail_t st, a5, ref;
    mv_state(&st, 10);
    rm_sink_item_t it = {.pid = "mv",
                         .pid_len = 2,
                         .st = &st,
                         .profile = &prof,
                         .partition = 0,
                         .fence = 10,
                         .expect_partition = -1,
                         .expect_fence = -1};
    assert_int_equal(rm_os_sink_flush(f->s, &it, 1, 3), RM_ERR_OK);
    rm_avail_free(&st);
    /* The live writer loads it (generation 1) and applies event 11. */
    rm_avail_init(&st);
    rm_sink_item_t lv = {.pid = "mv", .pid_len = 2, .st = &st, .profile = &prof};
    assert_int_equal(rm_os_sink_load(f->s, &lv, 1), RM_ERR_OK);
    apply(&st, RM_EV_BOOKING_CREATED, "b2", D0 + 1, 8, 4);
    lv.expect_partition = 0;
    lv.expect_fence = 10;
    lv.fence = 11;
    /* A rebuild's generation 2 holds it at fence 5, not yet active. */
    rm_os_config_t cfg = {.url = f->url, .timeout_ms = 5000};
    rm_os_sink_t *rb = rm_os_sink_new(&cfg);
    mv_state(&a5, 5);
    rm_sink_item_t ri = {.pid = "mv",
                         .pid_len = 2,
                         .st = &a5,
                         .profile = &prof,
                         .partition = 0,
                         .fence = 5,
                         .expect_partition = -1,
                         .expect_fence = -1,
                         .force = true};
    assert_int_equal(rm_os_generation_create(rb, 2), RM_ERR_OK);
    assert_int_equal(rm_os_generation_load(rb, 2, &ri, 1, 3), RM_ERR_OK);
    assert_int_equal(rm_os_generation_finish(rb, 2), RM_ERR_OK);
    /* The head is refused (429) three times; the aliases move while the
     * writer backs off. */
    os_fault_busy_id(f->srv, "p:mv", 3);
    long bulks = os_server_requests(f->srv, "bulk");
    flush_job_t job = {f->s, &lv, RM_ERR_OK};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flush_thread, &job), 0);
    for (int i = 0; i < 10000 && os_server_requests(f->srv, "bulk") < bulks + 3; i++)
        usleep(1000); /* docs, slots, the first refused head */
    assert_int_equal(rm_os_generation_activate(rb, 2), RM_ERR_OK);
    pthread_join(th, NULL);
    assert_int_equal(job.rc, RM_ERR_OK);
    /* The new generation: as the rebuild wrote it. */
    rm_avail_t got;
    assert_int_equal(load_fresh(f, "mv", &got, RM_ERR_OK), 5);
    assert_same_state(&a5, &got);
    /* A writer resuming from it (events 6..11) converges. */
    rm_os_sink_t *next = rm_os_sink_new(&cfg);
    rm_avail_free(&got);
    rm_avail_init(&got);
    rm_sink_item_t nx = {.pid = "mv", .pid_len = 2, .st = &got, .profile = &prof};
    assert_int_equal(rm_os_sink_load(next, &nx, 1), RM_ERR_OK);
    apply(&got, RM_EV_BOOKING_CREATED, "b1", D0, 0, 4);
    apply(&got, RM_EV_BOOKING_CREATED, "b2", D0 + 1, 8, 4);
    nx.expect_partition = 0;
    nx.expect_fence = 5;
    nx.fence = 11;
    assert_int_equal(rm_os_sink_flush(next, &nx, 1, 3), RM_ERR_OK);
    assert_true(nx.written);
    rm_avail_free(&got);
    mv_state(&ref, 11);
    assert_int_equal(load_fresh(f, "mv", &got, RM_ERR_OK), 11);
    assert_same_state(&ref, &got);
    rm_avail_free(&got);
    rm_os_sink_free(next);
    rm_os_sink_free(rb);
    rm_avail_free(&ref);
    rm_avail_free(&a5);
    rm_avail_free(&st);
    rm_profile_free(&prof);
}

/* A superseded slot document whose delete is refused stays as garbage:
 * the flush is still done, the failure counted, the state loads. */
static void test_refused_delete_leaves_garbage(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    rm_avail_t st;
    rm_profile_t prof = {0};
    rm_avail_init(&st);
    apply(&st, RM_EV_SLOTS_PUBLISHED, "", D0, 0, 20);
    rm_sink_item_t it = {.pid = "dl",
                         .pid_len = 2,
                         .st = &st,
                         .profile = &prof,
                         .partition = 0,
                         .fence = 10,
                         .expect_partition = -1,
                         .expect_fence = -1};
    assert_int_equal(rm_os_sink_flush(f->s, &it, 1, 3), RM_ERR_OK);
    rm_avail_clear_dirty(&st);
    apply(&st, RM_EV_BOOKING_CREATED, "b1", D0, 0, 2);
    it.expect_partition = 0;
    it.expect_fence = 10;
    it.fence = 11;
    os_fault_reject_id(f->srv, "p:dl:2026-11-23@10");
    assert_int_equal(rm_os_sink_flush(f->s, &it, 1, 3), RM_ERR_OK);
    assert_true(it.written);
    assert_int_equal(rm_os_sink_counters(f->s)->slot_delete_failures, 1);
    assert_int_equal(count_slots(f, "dl"), 2);
    rm_avail_t back;
    assert_int_equal(load_fresh(f, "dl", &back, RM_ERR_OK), 11);
    assert_same_state(&st, &back);
    rm_avail_free(&back);
    os_fault_accept_id(f->srv, "p:dl:2026-11-23@10");
    /* The next change of the day deletes only what its head superseded. */
    rm_avail_clear_dirty(&st);
    apply(&st, RM_EV_BOOKING_CREATED, "b2", D0, 4, 2);
    it.expect_fence = 11;
    it.fence = 12;
    assert_int_equal(rm_os_sink_flush(f->s, &it, 1, 3), RM_ERR_OK);
    assert_int_equal(count_slots(f, "dl"), 2); /* @10 (garbage) and @12 */
    assert_int_equal(rm_os_sink_counters(f->s)->slot_delete_failures, 1);
    rm_avail_free(&st);
    rm_profile_free(&prof);
}

/* The model dropped and re-created by another writer between two flushes
 * of this one: its next flush finds no head where it wrote one, and writes
 * the practitioner whole instead of a head that names slots the new index
 * does not hold. */
static void test_recreated_index_written_whole(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    rm_avail_t st;
    rm_profile_t prof = {0};
    rm_avail_init(&st);
    for (int d = 0; d < 3; d++)
        apply(&st, RM_EV_SLOTS_PUBLISHED, "", (uint16_t)(D0 + d), 0, 50);
    rm_sink_item_t it = {.pid = "rc",
                         .pid_len = 2,
                         .st = &st,
                         .profile = &prof,
                         .partition = 0,
                         .fence = 10,
                         .expect_partition = -1,
                         .expect_fence = -1};
    assert_int_equal(rm_os_sink_flush(f->s, &it, 1, 3), RM_ERR_OK);
    rm_avail_clear_dirty(&st);
    it.expect_partition = 0;
    it.expect_fence = 10;
    drop_model(f, true);
    rm_os_config_t cfg = {.url = f->url, .timeout_ms = 5000};
    rm_os_sink_t *other = rm_os_sink_new(&cfg);
    assert_int_equal(rm_os_sink_ensure(other, NULL, 0), RM_ERR_OK);
    rm_os_sink_free(other);
    apply(&st, RM_EV_BOOKING_CREATED, "b1", D0 + 1, 0, 2);
    it.fence = 11;
    assert_int_equal(rm_os_sink_flush(f->s, &it, 1, 3), RM_ERR_OK);
    assert_true(it.written);
    rm_avail_t back;
    assert_int_equal(load_fresh(f, "rc", &back, RM_ERR_OK), 11);
    assert_same_state(&st, &back);
    rm_avail_free(&back);
    rm_avail_free(&st);
}

/* A state stored by an earlier release (the whole state in field `avail`
 * of p:<pid>) loads, is marked for a whole rewrite, and the next write
 * stores it per day: a head without `avail` and one slot document a day. */
static void test_old_state_format_migrates(void **state) {
    fx_t *f = *state;
    assert_int_equal(rm_os_sink_ensure(f->s, NULL, 0), RM_ERR_OK);
    rm_avail_t st;
    rm_avail_init(&st);
    apply(&st, RM_EV_SLOTS_PUBLISHED, "", D0, 0, 20);
    apply(&st, RM_EV_BOOKING_CREATED, "b1", D0, 2, 3);
    apply(&st, RM_EV_SLOTS_PUBLISHED, "", D0 + 3, 5, 5);
    char *blob;
    size_t len;
    assert_int_equal(rm_avail_encode(&st, &blob, &len), 0);
    char *a = rm_os_b64_encode(blob, len);
    free(blob);
    rm_profile_t op = {.set = RM_PROFILE_NAME, .name = strdup("\"Dr O\"")};
    json_t *doc = json_pack("{s:i,s:i,s:s,s:o}", "partition", 1, "fence", 10, "avail", a, "profile",
                            rm_profile_to_json(&op));
    char *body = json_dumps(doc, JSON_COMPACT), out[1024];
    json_decref(doc);
    rm_profile_free(&op);
    free(a);
    assert_int_equal(raw(f, "PUT",
                         "/practitioners-state/_doc/p:old?version=11&version_type=external_gte",
                         "application/json", body, out, sizeof(out)),
                     201);
    free(body);

    rm_avail_t back;
    rm_profile_t prof = {0};
    rm_avail_init(&back);
    rm_sink_item_t it = {.pid = "old", .pid_len = 3, .st = &back, .profile = &prof};
    assert_int_equal(rm_os_sink_load(f->s, &it, 1), RM_ERR_OK);
    assert_int_equal(it.partition, 1);
    assert_int_equal(it.fence, 10);
    assert_string_equal(prof.name, "\"Dr O\"");
    assert_same_state(&st, &back);
    assert_true(back.rewrite);
    apply(&back, RM_EV_SLOTS_PUBLISHED, "", D0 + 1, 0, 1);
    apply(&st, RM_EV_SLOTS_PUBLISHED, "", D0 + 1, 0, 1);
    it.fence = 11;
    assert_int_equal(rm_os_sink_flush(f->s, &it, 1, 3), RM_ERR_OK);
    assert_true(it.written);
    json_t *head = os_server_get(f->srv, "practitioners-state", "p:old");
    assert_non_null(head);
    assert_null(json_object_get(head, "avail"));
    assert_non_null(json_object_get(head, "days"));
    json_decref(head);
    json_t *ids = os_server_ids(f->srv, "practitioners-state");
    int slots = 0;
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) slots += !strncmp(json_string_value(v), "p:old:", 6);
    json_decref(ids);
    assert_int_equal(slots, 3); /* days 0, 1 and 3, each in one slot */
    rm_avail_free(&back);
    rm_profile_free(&prof);
    assert_int_equal(load_fresh(f, "old", &back, RM_ERR_OK), 11);
    assert_same_state(&st, &back);
    assert_false(back.rewrite);
    rm_avail_free(&back);
    rm_avail_free(&st);
}

static void test_server_contract(void **state) {
    fx_t *f = *state;
    char out[2048];
    const char *nd = "application/x-ndjson";
    assert_int_equal(
        raw(f, "POST", "/_bulk", nd, "{\"index\":{\"_index\":\"x\"}}\n{}", out, sizeof(out)), 400);
    assert_non_null(strstr(out, "must be terminated by a newline"));
    assert_int_equal(raw(f, "POST", "/_bulk", nd, "\"oops\"\n", out, sizeof(out)), 400);
    assert_non_null(strstr(out, "Malformed action/metadata line [1]"));
    assert_int_equal(raw(f, "POST", "/_bulk", "text/plain", "{}\n", out, sizeof(out)), 406);
    assert_int_equal(raw(f, "GET", "/nope/_doc/1", "application/json", NULL, out, sizeof(out)),
                     404);
    assert_non_null(strstr(out, "index_not_found_exception"));
    /* Per-item errors come inside an HTTP 200. */
    assert_int_equal(raw(f, "PUT", "/a", "application/json",
                         "{\"mappings\":{\"properties\":{\"d\":{\"type\":\"date\"}}}}", out,
                         sizeof(out)),
                     200);
    assert_int_equal(raw(f, "POST", "/_bulk", nd,
                         "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"d\":\"2026-11-23\"}\n"
                         "{\"index\":{\"_index\":\"a\",\"_id\":\"2\"}}\n{\"d\":\"tomorrow\"}\n",
                         out, sizeof(out)),
                     200);
    assert_non_null(strstr(out, "\"errors\":true"));
    assert_non_null(strstr(out, "mapper_parsing_exception"));
    /* _aliases is all or nothing. */
    assert_int_equal(raw(f, "POST", "/_aliases", "application/json",
                         "{\"actions\":[{\"add\":{\"index\":\"a\",\"alias\":\"al\"}},"
                         "{\"add\":{\"index\":\"missing\",\"alias\":\"al\"}}]}",
                         out, sizeof(out)),
                     404);
    assert_int_equal(raw(f, "GET", "/_alias/al", "application/json", NULL, out, sizeof(out)), 404);
    /* Search sees only refreshed documents when refresh is off. */
    assert_int_equal(raw(f, "PUT", "/b", "application/json",
                         "{\"settings\":{\"index\":{\"refresh_interval\":\"-1\"}}}", out,
                         sizeof(out)),
                     200);
    assert_int_equal(raw(f, "PUT", "/b/_doc/1", "application/json", "{\"x\":1}", out, sizeof(out)),
                     201);
    assert_int_equal(raw(f, "GET", "/b/_count", "application/json", NULL, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"count\":0"));
    assert_int_equal(raw(f, "POST", "/b/_refresh", "application/json", NULL, out, sizeof(out)),
                     200);
    assert_int_equal(raw(f, "GET", "/b/_count", "application/json", NULL, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"count\":1"));
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ensure_and_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ensure_upgrades_keywords, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_load_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_index_recreated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_index_checkpoint_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_cas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generation_swap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_fails_when_a_copy_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_out_of_memory, setup, teardown),
        cmocka_unit_test(test_tls),
        cmocka_unit_test_setup_teardown(test_server_contract, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_cost_bounded_by_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_failure_converges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_state_format_migrates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recreated_index_written_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smaller_fence_after_failed_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_between_head_and_slot_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_slot_form_migrates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_across_alias_move, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_delete_leaves_garbage, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
