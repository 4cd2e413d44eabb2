/*
 * The /metrics render: which series each kind of process shows (serve's
 * pipeline, or a rebuild's or verify's progress), the values derived from
 * the counters, and the real promtool accepting both.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "promtool.h"
#include "readmodel/clock.h"
#include "readmodel/metrics.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_serve_shows_pipeline_not_job_progress(void **state) {
    (void)state;
    rm_stats_t *st = calloc(1, sizeof(*st));
    atomic_store(&st->parts[1].owner, 1);
    atomic_store(&st->parts[1].end, 100);
    atomic_store(&st->parts[1].checkpoint, 60);
    atomic_store(&st->sink_ping_ok, 1);
    atomic_store(&st->sink_write_ok, 1);
    char *m = rm_metrics_render(st, "booking.events", "redis");
    assert_non_null(m);
    assert_non_null(strstr(m, "readmodel_consumer_lag_messages{target=\"redis\",topic=\"booking."
                              "events\",partition=\"1\"} 40\n"));
    assert_non_null(strstr(m, "readmodel_sink_up{target=\"redis\"} 1\n"));
    assert_null(strstr(m, "readmodel_rebuild_phase"));
    assert_null(strstr(m, "readmodel_rebuild_in_progress"));
    assert_promtool_accepts(m);
    free(m);
    free(st);
}

static void test_job_shows_progress_not_pipeline(void **state) {
    (void)state;
    rm_stats_t *st = calloc(1, sizeof(*st));
    rm_job_stats_t job = {.command = "rebuild"};
    st->job = &job;
    atomic_store(&job.phase, RM_PHASE_WRITE);
    atomic_store(&job.total, 8);
    atomic_store(&job.done, 2);
    atomic_store(&job.rate, 12345);
    char *m = rm_metrics_render(st, "booking.events", "redis");
    assert_non_null(m);
    assert_non_null(
        strstr(m, "readmodel_rebuild_in_progress{target=\"redis\",command=\"rebuild\"} 1\n"));
    assert_non_null(strstr(
        m, "readmodel_rebuild_phase{target=\"redis\",command=\"rebuild\",phase=\"write\"} 1\n"));
    assert_non_null(strstr(
        m, "readmodel_rebuild_phase{target=\"redis\",command=\"rebuild\",phase=\"replay\"} 0\n"));
    assert_non_null(strstr(
        m, "readmodel_rebuild_progress_ratio{target=\"redis\",command=\"rebuild\"} 0.2500\n"));
    assert_non_null(strstr(
        m, "readmodel_rebuild_events_per_second{target=\"redis\",command=\"rebuild\"} 12345\n"));
    /* serve's series would page someone: a Job has no pipeline */
    assert_null(strstr(m, "readmodel_sink_up"));
    assert_null(strstr(m, "readmodel_consumer_lag"));
    assert_null(strstr(m, "readmodel_events_total"));
    assert_non_null(strstr(m, "process_cpu_seconds_total "));
    assert_promtool_accepts(m);
    free(m);

    /* finished: no longer in progress; verify is labelled as such */
    job.command = "verify";
    atomic_store(&job.phase, RM_PHASE_DONE);
    m = rm_metrics_render(st, "booking.events", "redis");
    assert_non_null(
        strstr(m, "readmodel_rebuild_in_progress{target=\"redis\",command=\"verify\"} 0\n"));
    assert_non_null(strstr(
        m, "readmodel_rebuild_phase{target=\"redis\",command=\"verify\",phase=\"done\"} 1\n"));
    char why[64];
    assert_true(rm_metrics_ready(st, why, sizeof(why)));
    assert_string_equal(why, "verify: done");
    free(m);
    free(st);
}

/* Appends every "# TYPE name" of a render to names (space separated). */
static void collect_names(bool job, char *names, size_t cap) {
    rm_stats_t *st = calloc(1, sizeof(*st));
    rm_job_stats_t js = {.command = "rebuild"};
    st->job = job ? &js : NULL;
    char *m = rm_metrics_render(st, "t", "redis");
    for (const char *l = m; (l = strstr(l, "# TYPE ")); l++) {
        char name[128];
        assert_int_equal(sscanf(l, "# TYPE %127s", name), 1);
        size_t n = strlen(names);
        snprintf(names + n, cap - n, " %s ", name);
    }
    free(m);
    free(st);
}

static bool exported(const char *names, const char *metric) {
    char key[160];
    snprintf(key, sizeof(key), " %s ", metric);
    if (strstr(names, key))
        return true;
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"}; /* histogram series */
    size_t n = strlen(metric);
    for (size_t i = 0; i < 3; i++) {
        size_t k = strlen(suffixes[i]);
        if (n > k && strcmp(metric + n - k, suffixes[i]) == 0) {
            snprintf(key, sizeof(key), " %.*s ", (int)(n - k), metric);
            if (strstr(names, key))
                return true;
        }
    }
    return false;
}

/* deploy/grafana/readmodel-dashboard.json: valid JSON, every query valid
 * PromQL for the real promtool, and every metric it names exported by
 * serve or by a rebuild/verify Job (so no panel stays empty by a typo). */
/* serve with OpenSearch: one family header, a series per target. */
static void test_two_pipelines(void **state) {
    (void)state;
    rm_stats_t *st = calloc(1, sizeof(*st)), *os = calloc(1, sizeof(*os));
    st->target = "redis";
    os->target = "opensearch";
    st->next = os;
    atomic_store(&st->events[RM_RESULT_APPLIED], 7);
    atomic_store(&os->events[RM_RESULT_APPLIED], 5);
    atomic_store(&os->rejected, 2);
    atomic_store(&os->corrupt_states, 3);
    atomic_store(&os->sink_ping_ok, 1);
    atomic_store(&os->sink_write_ok, 0);
    char *m = rm_metrics_render(st, "booking.events", "redis");
    assert_non_null(strstr(m, "readmodel_events_total{target=\"redis\",result=\"applied\"} 7\n"));
    assert_non_null(
        strstr(m, "readmodel_events_total{target=\"opensearch\",result=\"applied\"} 5\n"));
    assert_non_null(strstr(m, "readmodel_documents_rejected_total{target=\"opensearch\"} 2\n"));
    assert_non_null(strstr(m, "readmodel_corrupt_states_total{target=\"opensearch\"} 3\n"));
    assert_non_null(strstr(m, "readmodel_corrupt_states_total{target=\"redis\"} 0\n"));
    assert_non_null(strstr(m, "readmodel_sink_up{target=\"opensearch\"} 0\n"));
    const char *first = strstr(m, "# TYPE readmodel_events_total");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE readmodel_events_total"));
    first = strstr(m, "\nprocess_cpu_seconds_total ");
    assert_non_null(first);
    assert_null(strstr(first + 1, "\nprocess_cpu_seconds_total "));
    assert_promtool_accepts(m);
    free(m);
    free(st);
    free(os);
}

/* One readmodel_sink_node_up series per node the refresher reported, the
 * name escaped as a label value; /readyz names the nodes that are down. */
static void test_sink_node_up_per_node(void **state) {
    (void)state;
    rm_stats_t *st = calloc(1, sizeof(*st));
    atomic_store(&st->sink_write_ok, 1);
    char *m = rm_metrics_render(st, "booking.events", "redis");
    assert_non_null(strstr(m, "# TYPE readmodel_sink_node_up gauge\n"));
    assert_null(strstr(m, "readmodel_sink_node_up{")); /* no ping yet: no series */
    free(m);
    rm_sink_node_t nodes[3] = {
        {"127.0.0.1:7001", true}, {"[::1]:7002", false}, {"/run/a \"b\"\\c\nd.sock", true}};
    rm_stats_set_nodes(st, nodes, 3);
    m = rm_metrics_render(st, "booking.events", "redis");
    assert_non_null(
        strstr(m, "readmodel_sink_node_up{target=\"redis\",node=\"127.0.0.1:7001\"} 1\n"));
    assert_non_null(strstr(m, "readmodel_sink_node_up{target=\"redis\",node=\"[::1]:7002\"} 0\n"));
    assert_non_null(strstr(
        m, "readmodel_sink_node_up{target=\"redis\",node=\"/run/a \\\"b\\\"\\\\c\\nd.sock\"} 1\n"));
    assert_promtool_accepts(m);
    free(m);
    char why[256];
    assert_false(rm_metrics_ready(st, why, sizeof(why)));
    assert_string_equal(why, "sink unreachable: node down: [::1]:7002");
    /* fewer nodes after a failover: the old series is gone */
    rm_stats_set_nodes(st, nodes, 1);
    m = rm_metrics_render(st, "booking.events", "redis");
    assert_null(strstr(m, "[::1]:7002"));
    free(m);
    free(st);
}

static void test_dashboard_queries_name_real_metrics(void **state) {
    (void)state;
    char names[16384] = "";
    collect_names(false, names, sizeof(names));
    collect_names(true, names, sizeof(names));
    json_error_t jerr;
    json_t *d = json_load_file(RM_SOURCE_DIR "/deploy/grafana/readmodel-dashboard.json", 0, &jerr);
    if (!d)
        fail_msg("dashboard: %s at line %d", jerr.text, jerr.line);
    char rules[] = "/tmp/rm-dashboard-rules-XXXXXX";
    FILE *f = fdopen(mkstemp(rules), "w");
    assert_non_null(f);
    fprintf(f, "groups:\n  - name: dashboard\n    rules:\n");
    size_t i, j, queries = 0;
    json_t *panel, *target;
    json_array_foreach(json_object_get(d, "panels"), i, panel) {
        json_array_foreach(json_object_get(panel, "targets"), j, target) {
            const char *expr = json_string_value(json_object_get(target, "expr"));
            assert_non_null(expr);
            queries++;
            /* as a recording rule, so promtool parses the expression */
            json_t *quoted = json_string(expr);
            char *q = json_dumps(quoted, JSON_ENCODE_ANY);
            fprintf(f, "      - record: dashboard:q%zu\n        expr: %s\n", queries, q);
            free(q);
            json_decref(quoted);
            for (const char *p = expr; *p; p++) {
                if ((strncmp(p, "readmodel_", 10) && strncmp(p, "process_", 8)) ||
                    (p > expr && (isalnum((unsigned char)p[-1]) || p[-1] == '_')))
                    continue;
                char metric[128];
                size_t n = 0;
                while ((isalnum((unsigned char)p[n]) || p[n] == '_') && n < sizeof(metric) - 1)
                    n++;
                snprintf(metric, sizeof(metric), "%.*s", (int)n, p);
                if (!exported(names, metric))
                    fail_msg("dashboard panel '%s' names %s, which no command exports",
                             json_string_value(json_object_get(panel, "title")), metric);
                p += n - 1;
            }
        }
    }
    fclose(f);
    json_decref(d);
    assert_true(queries >= 20);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "promtool check rules %s >/dev/null", rules);
    int rc = system(cmd);
    unlink(rules);
    assert_int_equal(rc, 0);
}

/* A pipeline that owns no partition is ready while a rebalance may still
 * be under way, and not ready once that has lasted longer than one can. */
static void test_ready_needs_partitions_after_grace(void **state) {
    (void)state;
    rm_stats_t *st = calloc(1, sizeof(*st));
    atomic_store(&st->sink_ping_ok, 1);
    atomic_store(&st->sink_write_ok, 1);
    char why[256];
    atomic_store(&st->unowned_since_ms, rm_mono_ms() - 1000);
    assert_true(rm_metrics_ready(st, why, sizeof(why)));
    atomic_store(&st->unowned_since_ms, rm_mono_ms() - RM_UNOWNED_GRACE_MS - 5000);
    assert_false(rm_metrics_ready(st, why, sizeof(why)));
    assert_non_null(strstr(why, "no partition assigned for 35 s"));
    atomic_store(&st->unowned_since_ms, 0); /* owns partitions again */
    assert_true(rm_metrics_ready(st, why, sizeof(why)));
    assert_string_equal(why, "ok");
    free(st);
}

/* No broker answering: ready through a short blip, not ready after
 * RM_KAFKA_DOWN_GRACE_MS, ready again once a broker answers. */
static void test_ready_needs_kafka(void **state) {
    (void)state;
    rm_stats_t *st = calloc(1, sizeof(*st));
    atomic_store(&st->sink_ping_ok, 1);
    atomic_store(&st->sink_write_ok, 1);
    char why[256];
    atomic_store(&st->kafka_down_since_ms, rm_mono_ms() - 1000);
    assert_true(rm_metrics_ready(st, why, sizeof(why)));
    atomic_store(&st->kafka_down_since_ms, rm_mono_ms() - RM_KAFKA_DOWN_GRACE_MS - 3000);
    assert_false(rm_metrics_ready(st, why, sizeof(why)));
    assert_non_null(strstr(why, "Kafka unreachable"));
    atomic_store(&st->kafka_down_since_ms, 0);
    assert_true(rm_metrics_ready(st, why, sizeof(why)));
    free(st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_needs_kafka),
        cmocka_unit_test(test_serve_shows_pipeline_not_job_progress),
        cmocka_unit_test(test_job_shows_progress_not_pipeline),
        cmocka_unit_test(test_two_pipelines),
        cmocka_unit_test(test_sink_node_up_per_node),
        cmocka_unit_test(test_ready_needs_partitions_after_grace),
        cmocka_unit_test(test_dashboard_queries_name_real_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
