/*
 * OpenSearch administration for rebuild and verify: generations of the
 * practitioner and state indices, the atomic alias move, and a scan of every
 * document behind the alias.
 *
 * A rebuild creates generation N+1 with refresh off and no replicas (the
 * load is faster and nothing reads it yet), bulk-loads it, restores the
 * settings, refreshes it, and only then moves both aliases in one _aliases
 * call: readers of `practitioners` see the old index until the instant the
 * complete new one replaces it.
 */
#include "opensearch_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rm_err_t simple(rm_os_sink_t *s, const char *method, const char *path, json_t *body,
                       json_t **out) {
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body && !text)
        return RM_ERR_NOMEM;
    long st = 0;
    json_t *r = NULL;
    rm_err_t e = rm_os_request(s, method, path, text, text ? strlen(text) : 0, NULL, &st, &r);
    free(text);
    if (e)
        return e;
    if (st < 200 || st >= 300) {
        e = rm_os_reply_error(s, path, st, r);
        json_decref(r);
        return e;
    }
    if (out)
        *out = r;
    else
        json_decref(r);
    return RM_ERR_OK;
}

/* The generation number at the end of a concrete index name, or -1. */
static long gen_of(const char *index, const char *alias) {
    size_t n = strlen(alias);
    if (strncmp(index, alias, n) || index[n] != '-')
        return -1;
    char *end;
    long g = strtol(index + n + 1, &end, 10);
    return *end || g <= 0 ? -1 : g;
}

rm_err_t rm_os_current(rm_os_sink_t *s, char **docs_index, char **state_index, long *gen) {
    *docs_index = *state_index = NULL;
    *gen = 0;
    char path[300];
    snprintf(path, sizeof(path), "/_alias/%s", s->alias);
    long st = 0;
    json_t *r = NULL;
    rm_err_t e = rm_os_request(s, "GET", path, NULL, 0, NULL, &st, &r);
    if (e)
        return e;
    if (st == 404) {
        json_decref(r);
        return RM_ERR_OK;
    }
    if (st != 200 || json_object_size(r) != 1) {
        e = rm_os_reply_error(s, path, st, r);
        if (st == 200)
            snprintf(s->err, sizeof(s->err), "alias %s points to %zu indices; expected one",
                     s->alias, json_object_size(r));
        json_decref(r);
        return RM_ERR_REPLY;
    }
    const char *name = json_object_iter_key(json_object_iter(r));
    *docs_index = strdup(name);
    *gen = gen_of(name, s->alias);
    json_decref(r);
    if (!*docs_index)
        return RM_ERR_NOMEM;
    snprintf(path, sizeof(path), "/_alias/%s", s->state_alias);
    if ((e = rm_os_request(s, "GET", path, NULL, 0, NULL, &st, &r))) {
        free(*docs_index);
        *docs_index = NULL;
        return e;
    }
    if (st == 200 && json_object_size(r) == 1 &&
        !(*state_index = strdup(json_object_iter_key(json_object_iter(r))))) {
        e = RM_ERR_NOMEM;
        free(*docs_index);
        *docs_index = NULL;
    }
    json_decref(r);
    return e;
}

rm_err_t rm_os_generation_create(rm_os_sink_t *s, long gen) {
    char docs[256], state[256], path[300];
    rm_os_gen_names(s, gen, docs, state, sizeof(docs));
    /* Leftovers of a rebuild that died before its alias move. */
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "/%s", i ? state : docs);
        long st = 0;
        json_t *r = NULL;
        rm_err_t e = rm_os_request(s, "DELETE", path, NULL, 0, NULL, &st, &r);
        json_decref(r);
        if (e)
            return e;
    }
    json_t *db = rm_os_index_body(true);
    json_t *sb = rm_os_state_body(true);
    snprintf(path, sizeof(path), "/%s", docs);
    rm_err_t e = simple(s, "PUT", path, db, NULL);
    json_decref(db);
    if (!e) {
        snprintf(path, sizeof(path), "/%s", state);
        e = simple(s, "PUT", path, sb, NULL);
    }
    json_decref(sb);
    return e;
}

rm_err_t rm_os_generation_load(rm_os_sink_t *s, long gen, rm_sink_item_t *items, size_t n,
                               int attempts) {
    char docs[256], state[256];
    rm_os_gen_names(s, gen, docs, state, sizeof(docs));
    bool missing;
    rm_err_t e = rm_os_write(s, docs, state, false, items, n, attempts, &missing);
    for (size_t i = 0; !e && i < n; i++)
        if (items[i].stale) {
            snprintf(s->err, sizeof(s->err), "%s: %.*s was written by someone else", docs,
                     (int)items[i].pid_len, items[i].pid);
            return RM_ERR_REPLY;
        }
    return e;
}

rm_err_t rm_os_generation_checkpoint(rm_os_sink_t *s, long gen, const char *topic,
                                     int32_t partition, int64_t next) {
    char docs[256], state[256], path[600];
    rm_os_gen_names(s, gen, docs, state, sizeof(docs));
    snprintf(path, sizeof(path), "/%s/_doc/cp:%s:%d", state, topic, (int)partition);
    json_t *body = json_pack("{s:I}", "next", (json_int_t)next);
    rm_err_t e = simple(s, "PUT", path, body, NULL);
    json_decref(body);
    return e;
}

rm_err_t rm_os_generation_finish(rm_os_sink_t *s, long gen) {
    char docs[256], state[256], path[300];
    rm_os_gen_names(s, gen, docs, state, sizeof(docs));
    json_t *settings =
        json_pack("{s:{s:i,s:s}}", "index", "number_of_replicas", 1, "refresh_interval", "1s");
    rm_err_t e = RM_ERR_OK;
    for (int i = 0; !e && i < 2; i++) {
        snprintf(path, sizeof(path), "/%s/_settings", i ? state : docs);
        if (!(e = simple(s, "PUT", path, settings, NULL))) {
            snprintf(path, sizeof(path), "/%s/_refresh", i ? state : docs);
            e = simple(s, "POST", path, NULL, NULL);
        }
    }
    json_decref(settings);
    return e;
}

rm_err_t rm_os_generation_activate(rm_os_sink_t *s, long gen) {
    char docs[256], state[256];
    rm_os_gen_names(s, gen, docs, state, sizeof(docs));
    char *old_docs, *old_state;
    long old_gen;
    rm_err_t e = rm_os_current(s, &old_docs, &old_state, &old_gen);
    if (e)
        return e;
    json_t *actions = json_array();
    if (old_docs)
        json_array_append_new(
            actions, json_pack("{s:{s:s,s:s}}", "remove", "index", old_docs, "alias", s->alias));
    if (old_state)
        json_array_append_new(actions, json_pack("{s:{s:s,s:s}}", "remove", "index", old_state,
                                                 "alias", s->state_alias));
    json_array_append_new(actions,
                          json_pack("{s:{s:s,s:s}}", "add", "index", docs, "alias", s->alias));
    json_array_append_new(
        actions, json_pack("{s:{s:s,s:s}}", "add", "index", state, "alias", s->state_alias));
    json_t *body = json_pack("{s:o}", "actions", actions);
    e = simple(s, "POST", "/_aliases", body, NULL);
    json_decref(body);
    if (!e) /* live writers compare it with what they last wrote to */
        e = rm_os_generation_record(s, docs, state);
    free(old_docs);
    free(old_state);
    json_object_clear(s->cp_versions);
    return e;
}

rm_err_t rm_os_index_delete(rm_os_sink_t *s, const char *index) {
    char path[300];
    snprintf(path, sizeof(path), "/%s", index);
    long st = 0;
    json_t *r = NULL;
    rm_err_t e = rm_os_request(s, "DELETE", path, NULL, 0, NULL, &st, &r);
    if (!e && st != 200 && st != 404)
        e = rm_os_reply_error(s, path, st, r);
    json_decref(r);
    return e;
}

rm_err_t rm_os_scan(rm_os_sink_t *s,
                    void (*fn)(const char *id, json_t *src, long long version, void *arg),
                    void *arg) {
    char path[300];
    snprintf(path, sizeof(path), "/%s/_search", s->alias);
    json_t *after = NULL;
    for (;;) {
        json_t *body = json_pack("{s:i,s:b,s:{s:{}},s:[{s:s}]}", "size", 1000, "version", 1,
                                 "query", "match_all", "sort", "practitioner_id", "asc");
        if (after)
            json_object_set_new(body, "search_after", after);
        json_t *r = NULL;
        rm_err_t e = simple(s, "POST", path, body, &r);
        json_decref(body);
        if (e)
            return e;
        json_t *hits = json_object_get(json_object_get(r, "hits"), "hits");
        size_t i;
        json_t *h;
        json_array_foreach(hits, i, h)
            fn(json_string_value(json_object_get(h, "_id")), json_object_get(h, "_source"),
               (long long)json_integer_value(json_object_get(h, "_version")), arg);
        after = json_array_size(hits)
                    ? json_deep_copy(
                          json_object_get(json_array_get(hits, json_array_size(hits) - 1), "sort"))
                    : NULL;
        json_decref(r);
        if (!after)
            return RM_ERR_OK;
    }
}

rm_err_t rm_os_record_set(rm_os_sink_t *s, const char *name, json_t *record) {
    char path[400];
    snprintf(path, sizeof(path), "/%s/_doc/%s", s->meta, name);
    return simple(s, "PUT", path, record, NULL);
}

rm_err_t rm_os_record_get(rm_os_sink_t *s, const char *name, json_t **record) {
    char path[400];
    snprintf(path, sizeof(path), "/%s/_doc/%s", s->meta, name);
    long st = 0;
    json_t *r = NULL;
    *record = NULL;
    rm_err_t e = rm_os_request(s, "GET", path, NULL, 0, NULL, &st, &r);
    if (e)
        return e;
    if (st == 200)
        *record = json_incref(json_object_get(r, "_source"));
    else if (st != 404)
        e = rm_os_reply_error(s, path, st, r);
    json_decref(r);
    return e;
}
