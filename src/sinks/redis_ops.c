/*
 * The Redis availability model as a sink (readmodel/sink.h): thin adapters
 * from the interface to redis_sink.c and redis_admin.c, the handle opened
 * from the configuration, and the rebuild/verify records read for /metrics.
 */
#include "readmodel/redis_sink.h"
#include "readmodel/sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool configured(const rm_config_t *cfg) {
    return cfg->redis_url != NULL;
}

rm_redis_sink_t *rm_redis_sink_open(const rm_config_t *cfg, char *err, size_t errlen) {
    rm_redis_url_t url;
    char why[256];
    if (rm_redis_url_parse(cfg->redis_url, &url, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "--redis: %s", why);
        return NULL;
    }
    rm_redis_sink_t *s = NULL;
    if (rm_redis_url_set_tls(&url, cfg->redis_ca_file, cfg->redis_cert_file, cfg->redis_key_file,
                             cfg->redis_tls_server_name) == 0)
        s = rm_redis_sink_new(&url, cfg->redis_prefix);
    rm_redis_url_free(&url);
    if (!s)
        snprintf(err, errlen, "redis sink: out of memory");
    return s;
}

static void *open_redis(const rm_config_t *cfg, char *err, size_t errlen) {
    return rm_redis_sink_open(cfg, err, errlen);
}

static void free_redis(void *s) {
    rm_redis_sink_free(s);
}

static const char *last_error(const void *s) {
    return rm_redis_sink_last_error(s);
}

static rm_err_t ping(void *s) {
    return rm_redis_sink_ping(s);
}

static int nodes(void *s, rm_sink_node_t *out, int cap) {
    return rm_redis_sink_nodes(s, out, cap);
}

static rm_err_t load(void *s, rm_sink_item_t *items, size_t n) {
    return rm_redis_sink_load(s, items, n);
}

static rm_err_t flush(void *s, rm_sink_item_t *items, size_t n) {
    return rm_redis_sink_flush(s, items, n);
}

static rm_err_t cp_get(void *s, const char *topic, int32_t partition, int64_t *next) {
    return rm_redis_sink_checkpoint_get(s, topic, partition, next);
}

static rm_err_t cp_cas(void *s, const char *topic, int32_t partition, int64_t expected,
                       int64_t next, bool *ok, int64_t *current) {
    return rm_redis_sink_checkpoint_cas(s, topic, partition, expected, next, ok, current);
}

static rm_err_t lease_get(void *s, char *holder, size_t cap, long long *ttl_ms) {
    return rm_redis_lease_get(s, holder, cap, ttl_ms);
}

/* Value of `field` in "k=v" lines, or NULL. */
static const char *record_field(const char *rec, const char *field, char *out, size_t cap) {
    size_t n = strlen(field);
    for (const char *l = rec; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, field, n) == 0 && l[n] == '=') {
            const char *end = strchr(l, '\n');
            snprintf(out, cap, "%.*s", (int)(end ? end - l - (long)n - 1 : (long)strlen(l + n + 1)),
                     l + n + 1);
            return out;
        }
    return NULL;
}

static rm_err_t last_runs(void *s, rm_sink_runs_t *out) {
    char rec[1024], v[64];
    memset(out, 0, sizeof(*out));
    rm_err_t e = rm_redis_record_get(s, "rebuild:last:redis", rec, sizeof(rec));
    if (e == RM_ERR_OK && record_field(rec, "finished_at", v, sizeof(v))) {
        out->rebuild_finished_s = atoll(v);
        out->rebuild_ok = record_field(rec, "result", v, sizeof(v)) && strcmp(v, "ok") == 0;
        if (record_field(rec, "duration_s", v, sizeof(v)))
            out->rebuild_duration_ms = (long long)(atof(v) * 1000);
    }
    if (e == RM_ERR_OK)
        e = rm_redis_record_get(s, "verify:last:redis", rec, sizeof(rec));
    if (e == RM_ERR_OK && record_field(rec, "finished_at", v, sizeof(v))) {
        out->verify_finished_s = atoll(v);
        if (record_field(rec, "drift", v, sizeof(v)))
            out->verify_drift = atoll(v);
    }
    return e;
}

const rm_sink_ops_t rm_redis_sink_ops = {
    .name = "redis",
    .title = "Redis",
    .profiles = false,
    .configured = configured,
    .open = open_redis,
    .free = free_redis,
    .last_error = last_error,
    .ping = ping,
    .ensure = NULL,
    .load = load,
    .flush = flush,
    .checkpoint_get = cp_get,
    .checkpoint_cas = cp_cas,
    .lease_get = lease_get,
    .take_moved = NULL,
    .last_runs = last_runs,
    .nodes = nodes,
};
