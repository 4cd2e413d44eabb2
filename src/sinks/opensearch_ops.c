/*
 * The OpenSearch practitioner index as a sink (readmodel/sink.h): adapters
 * to opensearch_sink.c and opensearch_admin.c, the sink configuration taken
 * from the command's configuration, and the rebuild/verify records.
 */
#include "readmodel/opensearch_sink.h"
#include "readmodel/sink.h"

#include <stdio.h>
#include <string.h>

/* Attempts of a _bulk item answered 429 or 5xx within one flush. */
#define FLUSH_ATTEMPTS 5

static rm_os_config_t rm_os_config_of(const rm_config_t *cfg) {
    return (rm_os_config_t){
        .url = cfg->opensearch_url,
        .index_prefix = cfg->opensearch_prefix,
        .ca_file = cfg->opensearch_ca_file,
        .cert_file = cfg->opensearch_cert_file,
        .key_file = cfg->opensearch_key_file,
        .username = cfg->opensearch_username,
        .password = cfg->opensearch_password,
        .aws_region = cfg->opensearch_aws_region,
        .aws_key = cfg->aws_key,
        .aws_secret = cfg->aws_secret,
        .aws_token = cfg->aws_token,
        .bulk_docs = cfg->opensearch_bulk_docs,
        .bulk_bytes = cfg->opensearch_bulk_bytes,
    };
}

static bool configured(const rm_config_t *cfg) {
    return cfg->opensearch_url != NULL;
}

static void *open_os(const rm_config_t *cfg, char *err, size_t errlen) {
    if (!cfg->opensearch_url) {
        snprintf(err, errlen, "--opensearch is required for the OpenSearch target");
        return NULL;
    }
    rm_os_config_t oc = rm_os_config_of(cfg);
    rm_os_sink_t *s = rm_os_sink_new(&oc);
    if (!s)
        snprintf(err, errlen, "opensearch sink: out of memory");
    return s;
}

static void free_os(void *s) {
    rm_os_sink_free(s);
}

static const char *last_error(const void *s) {
    return rm_os_sink_last_error(s);
}

static rm_err_t ping(void *s) {
    return rm_os_sink_ping(s);
}

static rm_err_t ensure(void *s, char *diff, size_t cap) {
    return rm_os_sink_ensure(s, diff, cap);
}

static rm_err_t load(void *s, rm_sink_item_t *items, size_t n) {
    return rm_os_sink_load(s, items, n);
}

static rm_err_t flush(void *s, rm_sink_item_t *items, size_t n) {
    return rm_os_sink_flush(s, items, n, FLUSH_ATTEMPTS);
}

static rm_err_t cp_get(void *s, const char *topic, int32_t partition, int64_t *next) {
    return rm_os_checkpoint_get(s, topic, partition, next);
}

static rm_err_t cp_cas(void *s, const char *topic, int32_t partition, int64_t expected,
                       int64_t next, bool *ok, int64_t *current) {
    return rm_os_checkpoint_cas(s, topic, partition, expected, next, ok, current);
}

static rm_err_t lease_get(void *s, char *holder, size_t cap, long long *ttl_ms) {
    return rm_os_lease_get(s, holder, cap, ttl_ms);
}

static bool take_moved(void *s) {
    return rm_os_sink_take_moved(s);
}

static long long int_of(json_t *rec, const char *field) {
    json_t *v = json_object_get(rec, field);
    return json_is_integer(v) ? (long long)json_integer_value(v)
           : json_is_real(v)  ? (long long)json_real_value(v)
                              : 0;
}

static rm_err_t last_runs(void *s, rm_sink_runs_t *out) {
    memset(out, 0, sizeof(*out));
    json_t *rec = NULL;
    rm_err_t e = rm_os_record_get(s, "rebuild:last:opensearch", &rec);
    if (e == RM_ERR_OK && rec) {
        out->rebuild_finished_s = int_of(rec, "finished_at");
        const char *result = json_string_value(json_object_get(rec, "result"));
        out->rebuild_ok = result && strcmp(result, "ok") == 0;
        json_t *d = json_object_get(rec, "duration_s");
        out->rebuild_duration_ms = json_is_number(d) ? (long long)(json_number_value(d) * 1000) : 0;
    }
    json_decref(rec);
    rec = NULL;
    if (e == RM_ERR_OK)
        e = rm_os_record_get(s, "verify:last:opensearch", &rec);
    if (e == RM_ERR_OK && rec) {
        out->verify_finished_s = int_of(rec, "finished_at");
        out->verify_drift = int_of(rec, "drift");
    }
    json_decref(rec);
    return e;
}

const rm_sink_ops_t rm_os_sink_ops = {
    .name = "opensearch",
    .title = "OpenSearch",
    .profiles = true,
    .configured = configured,
    .open = open_os,
    .free = free_os,
    .last_error = last_error,
    .ping = ping,
    .ensure = ensure,
    .load = load,
    .flush = flush,
    .checkpoint_get = cp_get,
    .checkpoint_cas = cp_cas,
    .lease_get = lease_get,
    .take_moved = take_moved,
    .last_runs = last_runs,
    .nodes = NULL,
};
