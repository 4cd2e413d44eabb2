/*
 * OpenSearch test server: the REST subset readmodel uses, modelled on the
 * OpenSearch API reference (see tests/opensearch/README.md for the mapping
 * from behaviour to documentation), plus fault injection.
 *
 * State is a set of indices (settings, mappings, documents with _version,
 * _seq_no and _primary_term, and the refreshed view that search sees) and a
 * set of aliases, all under one lock. Every request is parsed and checked as
 * OpenSearch does: malformed JSON or NDJSON is a 400 with the same error
 * types, a missing index is a 404 index_not_found_exception, a version
 * conflict is a 409 version_conflict_engine_exception, and _bulk reports
 * per-item results inside an HTTP 200 with "errors": true.
 */
#include "os_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct os_server {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    json_t *indices; /* name -> {settings, mappings, docs, visible, seq} */
    json_t *aliases; /* alias -> [index names] */
    json_t *counts;  /* endpoint kind -> requests */
    char *user, *password;
    bool sigv4;
    int bulk_429, item_429, f503, drop, delay_ms;
    json_t *reject_ids;
    char *tls_cert, *tls_key; /* PEM; NULL: plain HTTP */
    json_t *copy_after_mget;  /* [index, from, to] applied after the next _mget, or NULL */
};

typedef struct {
    char *body;
    size_t len;
} upload_t;

typedef struct {
    int status;
    json_t *body; /* NULL: empty body (HEAD) */
    const char *www_auth;
} reply_t;

/* ---- errors, as OpenSearch formats them ---- */

static reply_t os_error(int status, const char *type, const char *reason, const char *index) {
    json_t *cause = json_pack("{s:s,s:s}", "type", type, "reason", reason);
    if (index)
        json_object_set_new(cause, "index", json_string(index));
    json_t *err = json_deep_copy(cause);
    json_object_set_new(err, "root_cause", json_pack("[o]", cause));
    return (reply_t){status, json_pack("{s:o,s:i}", "error", err, "status", status), NULL};
}

static reply_t not_found_index(const char *name) {
    char reason[512];
    snprintf(reason, sizeof(reason), "no such index [%s]", name);
    return os_error(404, "index_not_found_exception", reason, name);
}

static reply_t ok(json_t *body) {
    return (reply_t){200, body, NULL};
}

static reply_t acknowledged(void) {
    return ok(json_pack("{s:b}", "acknowledged", 1));
}

/* ---- index and alias resolution ---- */

static json_t *index_get(os_server_t *s, const char *name) {
    return json_object_get(s->indices, name);
}

/* The concrete indices a name stands for: itself, or an alias's indices.
 * New reference (array), NULL when unknown (index_not_found_exception). */
static json_t *resolve(os_server_t *s, const char *name) {
    if (index_get(s, name))
        return json_pack("[s]", name);
    json_t *a = json_object_get(s->aliases, name);
    return a && json_array_size(a) ? json_deep_copy(a) : NULL;
}

/* The single index a write through `name` goes to, or NULL (alias with
 * several indices, or unknown). */
static const char *write_index(os_server_t *s, const char *name) {
    if (index_get(s, name))
        return json_string_value(json_object_get(index_get(s, name), "name"));
    json_t *a = json_object_get(s->aliases, name);
    if (a && json_array_size(a) == 1)
        return json_string_value(json_array_get(a, 0));
    return NULL;
}

static bool valid_index_name(const char *n) {
    if (!*n || *n == '_' || *n == '-' || *n == '+' || strlen(n) > 255)
        return false;
    for (const char *c = n; *c; c++)
        if ((*c >= 'A' && *c <= 'Z') || strchr("\\/*?\"<>| ,#:", *c))
            return false;
    return true;
}

/* Settings as OpenSearch accepts them, nested ({"index": {"x": 1}}) or flat
 * ("index.x", "x"), into flat "index.x" keys with string values. */
static json_t *flatten_settings(json_t *settings) {
    json_t *flat = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(settings, k, v) {
        if (json_is_object(v)) {
            const char *k2;
            json_t *v2;
            json_object_foreach(v, k2, v2) {
                char key[256];
                snprintf(key, sizeof(key), "%s.%s", k, k2);
                json_object_set(flat, key, v2);
            }
        } else {
            char key[256];
            snprintf(key, sizeof(key), "%s%s", strncmp(k, "index.", 6) ? "index." : "", k);
            json_object_set(flat, key, v);
        }
    }
    json_object_foreach(flat, k, v) {
        char buf[64] = "";
        if (json_is_integer(v))
            snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        else if (json_is_null(v))
            snprintf(buf, sizeof(buf), "null");
        if (!json_is_string(v))
            json_object_set_new(flat, k, json_string(buf));
    }
    return flat;
}

static json_t *index_new(const char *name, json_t *settings, json_t *mappings) {
    json_t *st = json_pack("{s:s,s:s,s:s}", "index.number_of_shards", "1",
                           "index.number_of_replicas", "1", "index.refresh_interval", "1s");
    json_t *flat = flatten_settings(settings);
    json_object_update(st, flat);
    json_decref(flat);
    /* The engine keeps "dynamic" as a string: GET _mapping shows "false"
     * for a false given at creation (as the real node does). */
    json_t *dyn = mappings ? json_object_get(mappings, "dynamic") : NULL;
    if (json_is_boolean(dyn))
        json_object_set_new(mappings, "dynamic", json_string(json_is_true(dyn) ? "true" : "false"));
    return json_pack("{s:s,s:o,s:o,s:o,s:o,s:i}", "name", name, "settings", st, "mappings",
                     mappings ? mappings : json_object(), "docs", json_object(), "visible",
                     json_object(), "seq", 0);
}

static bool refresh_disabled(json_t *idx) {
    const char *ri = json_string_value(
        json_object_get(json_object_get(idx, "settings"), "index.refresh_interval"));
    return ri && strcmp(ri, "-1") == 0;
}

static void refresh(json_t *idx) {
    json_t *vis = json_object();
    const char *id;
    json_t *doc;
    json_object_foreach(json_object_get(idx, "docs"), id, doc)
        json_object_set(vis, id, json_object_get(doc, "_source"));
    json_object_set_new(idx, "visible", vis);
}

/* What search sees: the refreshed view. With a refresh interval set, the
 * periodic refresh is modelled as having run before every search. */
static json_t *searchable(json_t *idx) {
    if (!refresh_disabled(idx))
        refresh(idx);
    return json_object_get(idx, "visible");
}

/* ---- mapping checks on indexing (mapper_parsing_exception) ---- */

static bool date_ok(const char *v) {
    int y, m, d;
    char tail;
    return sscanf(v, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 && strlen(v) == 10 && m >= 1 &&
           m <= 12 && d >= 1 && d <= 31;
}

static bool value_ok(const char *type, json_t *v) {
    if (json_is_null(v))
        return true;
    if (json_is_array(v) && strcmp(type, "geo_point") != 0) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) if (!value_ok(type, e)) return false;
        return true;
    }
    if (!strcmp(type, "keyword") || !strcmp(type, "text"))
        return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
    if (!strcmp(type, "date"))
        return json_is_string(v) && date_ok(json_string_value(v));
    if (!strcmp(type, "boolean"))
        return json_is_boolean(v) ||
               (json_is_string(v) &&
                (!strcmp(json_string_value(v), "true") || !strcmp(json_string_value(v), "false")));
    if (!strcmp(type, "integer") || !strcmp(type, "long"))
        return json_is_integer(v);
    if (!strcmp(type, "geo_point")) {
        json_t *lat = json_object_get(v, "lat"), *lon = json_object_get(v, "lon");
        return json_is_object(v) && json_is_number(lat) && json_is_number(lon) &&
               json_number_value(lat) >= -90 && json_number_value(lat) <= 90 &&
               json_number_value(lon) >= -180 && json_number_value(lon) <= 180;
    }
    return true; /* types this server does not model are accepted */
}

/* Lucene's limit on one term, in bytes of UTF-8. */
#define MAX_TERM_BYTES 32766

/* Whether a keyword value would be an "immense term": longer than Lucene
 * takes and not skipped by the field's ignore_above (which counts UTF-16
 * units, as Java's String.length does). */
static bool immense_term(json_t *mapping, json_t *v) {
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) if (immense_term(mapping, e)) return true;
        return false;
    }
    if (!json_is_string(v) || json_string_length(v) <= MAX_TERM_BYTES)
        return false;
    json_t *above = json_object_get(mapping, "ignore_above");
    if (!json_is_integer(above))
        return true;
    const unsigned char *p = (const unsigned char *)json_string_value(v);
    size_t units = 0;
    for (size_t i = 0; i < json_string_length(v); i++)
        units += (p[i] & 0xC0) != 0x80 ? 1 + (p[i] >= 0xF0) : 0;
    return (json_int_t)units <= json_integer_value(above);
}

/* NULL when the source fits the mapping, else the reason (and *type the
 * error type: an unknown field under dynamic strict is the engine's own
 * strict_dynamic_mapping_exception, a value the field refuses a
 * mapper_parsing_exception; both per item, status 400). */
static const char *check_source(json_t *idx, json_t *src, char *why, size_t cap,
                                const char **type_out) {
    *type_out = "mapper_parsing_exception";
    json_t *props = json_object_get(json_object_get(idx, "mappings"), "properties");
    const char *dyn =
        json_string_value(json_object_get(json_object_get(idx, "mappings"), "dynamic"));
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v) {
        json_t *m = json_object_get(props, k);
        if (!m) {
            if (dyn && !strcmp(dyn, "strict")) {
                snprintf(why, cap,
                         "mapping set to strict, dynamic introduction of [%s] within [_doc] is "
                         "not allowed",
                         k);
                *type_out = "strict_dynamic_mapping_exception";
                return why;
            }
            continue;
        }
        const char *type = json_string_value(json_object_get(m, "type"));
        if (json_is_false(json_object_get(m, "enabled")) || !type)
            continue;
        if (!value_ok(type, v)) {
            snprintf(why, cap, "failed to parse field [%s] of type [%s]", k, type);
            return why;
        }
        if (!strcmp(type, "keyword") && immense_term(m, v)) {
            snprintf(why, cap,
                     "Document contains at least one immense term in field=\"%s\" (whose UTF8 "
                     "encoding is longer than the max length %d), all of which were skipped.",
                     k, MAX_TERM_BYTES);
            *type_out = "illegal_argument_exception";
            return why;
        }
    }
    return NULL;
}

/* ---- documents ---- */

typedef struct {
    const char *op; /* index | create | delete */
    long long version;
    bool external, gte;                   /* version_type external or external_gte */
    long long if_seq_no, if_primary_term; /* -1: not given */
} write_opts_t;

/* One write into a concrete index; returns the item result object (with
 * "status") as _bulk and the document APIs report it. */
static json_t *doc_write(json_t *idx, const char *id, json_t *src, const write_opts_t *o) {
    const char *iname = json_string_value(json_object_get(idx, "name"));
    json_t *docs = json_object_get(idx, "docs");
    json_t *cur = json_object_get(docs, id);
    char reason[512];
    long long cur_version = cur ? json_integer_value(json_object_get(cur, "_version")) : 0;
    const char *type = "version_conflict_engine_exception";
    int status = 0;
    if (!strcmp(o->op, "create") && cur) {
        snprintf(reason, sizeof(reason),
                 "[%s]: version conflict, document already exists "
                 "(current version [%lld])",
                 id, cur_version);
        status = 409;
    } else if (o->if_seq_no >= 0 &&
               (!cur || json_integer_value(json_object_get(cur, "_seq_no")) != o->if_seq_no ||
                json_integer_value(json_object_get(cur, "_primary_term")) != o->if_primary_term)) {
        if (cur)
            snprintf(reason, sizeof(reason),
                     "[%s]: version conflict, required seqNo [%lld], primary term [%lld]. current "
                     "document has seqNo [%lld] and primary term [%lld]",
                     id, o->if_seq_no, o->if_primary_term,
                     (long long)json_integer_value(json_object_get(cur, "_seq_no")),
                     (long long)json_integer_value(json_object_get(cur, "_primary_term")));
        else
            snprintf(reason, sizeof(reason),
                     "[%s]: version conflict, required seqNo [%lld], primary term [%lld]. but no "
                     "document was found",
                     id, o->if_seq_no, o->if_primary_term);
        status = 409;
    } else if (o->external && cur &&
               (o->gte ? o->version < cur_version : o->version <= cur_version)) {
        snprintf(reason, sizeof(reason),
                 "[%s]: version conflict, current version [%lld] is higher or equal to the one "
                 "provided [%lld]",
                 id, cur_version, o->version);
        status = 409;
    } else if (!strcmp(o->op, "delete") && !cur) {
        json_t *r = json_pack("{s:s,s:s,s:i,s:s,s:i}", "_index", iname, "_id", id, "_version", 1,
                              "result", "not_found", "status", 404);
        return r;
    } else if (src && check_source(idx, src, reason, sizeof(reason), &type)) {
        status = 400;
    }
    if (status) {
        json_t *err = json_pack("{s:s,s:s,s:s}", "type", type, "reason", reason, "index", iname);
        return json_pack("{s:s,s:s,s:i,s:o}", "_index", iname, "_id", id, "status", status, "error",
                         err);
    }
    long long seq = json_integer_value(json_object_get(idx, "seq"));
    json_object_set_new(idx, "seq", json_integer(seq + 1));
    long long version = o->external ? o->version : cur_version + 1;
    const char *result;
    int st;
    if (!strcmp(o->op, "delete")) {
        json_object_del(docs, id);
        result = "deleted";
        st = 200;
    } else {
        json_object_set_new(docs, id,
                            json_pack("{s:O,s:I,s:I,s:i}", "_source", src, "_version",
                                      (json_int_t)version, "_seq_no", (json_int_t)seq,
                                      "_primary_term", 1));
        result = cur ? "updated" : "created";
        st = cur ? 200 : 201;
    }
    json_t *shards = json_pack("{s:i,s:i,s:i}", "total", 1, "successful", 1, "failed", 0);
    return json_pack("{s:s,s:s,s:I,s:s,s:o,s:I,s:i,s:i}", "_index", iname, "_id", id, "_version",
                     (json_int_t)version, "result", result, "_shards", shards, "_seq_no",
                     (json_int_t)seq, "_primary_term", 1, "status", st);
}

/* ---- request parameters ---- */

typedef struct {
    struct MHD_Connection *c;
} req_t;

static const char *arg(struct MHD_Connection *c, const char *name) {
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

static bool arg_true(struct MHD_Connection *c, const char *name) {
    const char *v = arg(c, name);
    return v && (!*v || !strcmp(v, "true"));
}

static reply_t bad_json(const char *what) {
    char reason[256];
    snprintf(reason, sizeof(reason), "Failed to parse content to map: %s", what);
    return os_error(400, "parse_exception", reason, NULL);
}

/* Parses the body as a JSON object; an empty body gives an empty object. */
static json_t *body_object(const upload_t *u, reply_t *err) {
    if (!u->len)
        return json_object();
    json_error_t je;
    json_t *j = json_loadb(u->body, u->len, 0, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        *err = bad_json(je.text);
        return NULL;
    }
    return j;
}

/* ---- endpoints ---- */

static void count_kind(os_server_t *s, const char *kind) {
    json_object_set_new(s->counts, kind,
                        json_integer(json_integer_value(json_object_get(s->counts, kind)) + 1));
}

/* Adds n to the counter `kind` (bytes of _bulk bodies: "bulk_bytes"). */
static void count_add(os_server_t *s, const char *kind, size_t n) {
    json_object_set_new(
        s->counts, kind,
        json_integer(json_integer_value(json_object_get(s->counts, kind)) + (json_int_t)n));
}

static reply_t create_index(os_server_t *s, const char *name, const upload_t *u) {
    if (!valid_index_name(name)) {
        char reason[512];
        snprintf(reason, sizeof(reason), "Invalid index name [%s]", name);
        return os_error(400, "invalid_index_name_exception", reason, name);
    }
    if (index_get(s, name) || json_object_get(s->aliases, name)) {
        char reason[512];
        snprintf(reason, sizeof(reason), "index [%s/uuid] already exists", name);
        return os_error(400, "resource_already_exists_exception", reason, name);
    }
    reply_t err;
    json_t *b = body_object(u, &err);
    if (!b)
        return err;
    json_t *aliases = json_object_get(b, "aliases");
    const char *alias;
    json_t *v;
    json_object_foreach(aliases, alias, v) if (index_get(s, alias)) {
        json_decref(b);
        char reason[512];
        snprintf(reason, sizeof(reason),
                 "an index or data stream exists with the same name as "
                 "the alias [%s]",
                 alias);
        return os_error(400, "invalid_alias_name_exception", reason, alias);
    }
    json_object_set_new(s->indices, name,
                        index_new(name, json_object_get(b, "settings"),
                                  json_incref(json_object_get(b, "mappings"))));
    json_object_foreach(aliases, alias, v) {
        json_t *a = json_object_get(s->aliases, alias);
        if (!a)
            json_object_set_new(s->aliases, alias, a = json_array());
        json_array_append_new(a, json_string(name));
    }
    json_decref(b);
    return ok(
        json_pack("{s:b,s:b,s:s}", "acknowledged", 1, "shards_acknowledged", 1, "index", name));
}

static void alias_remove_index(os_server_t *s, const char *index) {
    const char *alias;
    json_t *a;
    void *tmp;
    json_object_foreach_safe(s->aliases, tmp, alias, a) {
        for (size_t i = json_array_size(a); i-- > 0;)
            if (!strcmp(json_string_value(json_array_get(a, i)), index))
                json_array_remove(a, i);
        if (json_array_size(a) == 0)
            json_object_del(s->aliases, alias);
    }
}

static reply_t delete_index(os_server_t *s, const char *name) {
    if (!index_get(s, name)) {
        if (json_object_get(s->aliases, name)) {
            char reason[512];
            snprintf(reason, sizeof(reason),
                     "The provided expression [%s] matches an alias, specify the corresponding "
                     "concrete indices instead.",
                     name);
            return os_error(400, "illegal_argument_exception", reason, NULL);
        }
        return not_found_index(name);
    }
    json_object_del(s->indices, name);
    alias_remove_index(s, name);
    return acknowledged();
}

static json_t *aliases_of(os_server_t *s, const char *index) {
    json_t *out = json_object();
    const char *alias;
    json_t *a;
    json_object_foreach(s->aliases, alias, a) {
        size_t i;
        json_t *e;
        json_array_foreach(a, i, e) if (!strcmp(json_string_value(e), index))
            json_object_set_new(out, alias, json_object());
    }
    return out;
}

/* GET /<index>, /<index>/_mapping, /<index>/_settings: per concrete index. */
static reply_t get_index(os_server_t *s, const char *name, const char *part) {
    json_t *names = resolve(s, name);
    if (!names)
        return not_found_index(name);
    json_t *out = json_object();
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n) {
        json_t *idx = index_get(s, json_string_value(n));
        json_t *one = json_object();
        if (!part || !strcmp(part, "_alias"))
            json_object_set_new(one, "aliases", aliases_of(s, json_string_value(n)));
        if (!part || !strcmp(part, "_mapping"))
            json_object_set(one, "mappings", json_object_get(idx, "mappings"));
        if (!part || !strcmp(part, "_settings")) {
            /* Returned nested, as OpenSearch does: {"index": {"refresh_interval": ...}} */
            json_t *nested = json_object();
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(idx, "settings"), k, v)
                json_object_set(nested, k + 6, v);
            json_object_set_new(one, "settings", json_pack("{s:o}", "index", nested));
        }
        json_object_set_new(out, json_string_value(n), one);
    }
    json_decref(names);
    return ok(out);
}

static reply_t put_settings(os_server_t *s, const char *name, const upload_t *u) {
    reply_t err;
    json_t *b = body_object(u, &err);
    if (!b)
        return err;
    json_t *names = resolve(s, name);
    if (!names) {
        json_decref(b);
        return not_found_index(name);
    }
    size_t i;
    json_t *n;
    json_t *flat = flatten_settings(b);
    json_array_foreach(names, i, n) {
        json_t *st = json_object_get(index_get(s, json_string_value(n)), "settings");
        const char *k;
        json_t *v;
        json_object_foreach(flat, k, v) {
            if (!strcmp(json_string_value(v), "null")) /* null restores the default */
                json_object_set_new(st, k,
                                    json_string(!strcmp(k, "index.refresh_interval")     ? "1s"
                                                : !strcmp(k, "index.number_of_replicas") ? "1"
                                                                                         : ""));
            else
                json_object_set(st, k, v);
        }
    }
    json_decref(flat);
    json_decref(names);
    json_decref(b);
    return acknowledged();
}

/* PUT /<index>/_mapping {"properties": ...}: new fields are added and a
 * known field's parameters (ignore_above, ...) updated; a field whose type
 * would change is refused whole (400 illegal_argument_exception). */
static reply_t put_mapping(os_server_t *s, const char *name, const upload_t *u) {
    reply_t err;
    json_t *b = body_object(u, &err);
    if (!b)
        return err;
    json_t *names = resolve(s, name);
    if (!names) {
        json_decref(b);
        return not_found_index(name);
    }
    json_t *want = json_object_get(b, "properties");
    size_t i;
    json_t *n;
    const char *f;
    json_t *m;
    json_array_foreach(names, i, n) {
        json_t *props = json_object_get(
            json_object_get(index_get(s, json_string_value(n)), "mappings"), "properties");
        json_object_foreach(want, f, m) {
            const char *had = json_string_value(json_object_get(json_object_get(props, f), "type"));
            const char *to = json_string_value(json_object_get(m, "type"));
            if (had && to && strcmp(had, to)) {
                char reason[256];
                snprintf(reason, sizeof(reason),
                         "mapper [%s] cannot be changed from type [%s] to [%s]", f, had, to);
                json_decref(names);
                json_decref(b);
                return os_error(400, "illegal_argument_exception", reason, NULL);
            }
        }
    }
    json_array_foreach(names, i, n) {
        json_t *mp = json_object_get(index_get(s, json_string_value(n)), "mappings");
        if (!json_object_get(mp, "properties"))
            json_object_set_new(mp, "properties", json_object());
        json_t *props = json_object_get(mp, "properties");
        json_object_foreach(want, f, m) {
            json_t *have = json_object_get(props, f);
            if (have)
                json_object_update(have, m);
            else
                json_object_set(props, f, m);
        }
    }
    json_decref(names);
    json_decref(b);
    return acknowledged();
}

static reply_t post_aliases(os_server_t *s, const upload_t *u) {
    reply_t err;
    json_t *b = body_object(u, &err);
    if (!b)
        return err;
    json_t *actions = json_object_get(b, "actions");
    if (!json_is_array(actions) || !json_array_size(actions)) {
        json_decref(b);
        return os_error(400, "action_request_validation_exception",
                        "Validation Failed: 1: no alias actions;", NULL);
    }
    /* Validate every action first: the call is atomic. */
    size_t i;
    json_t *act;
    json_array_foreach(actions, i, act) {
        const char *kind = json_object_iter_key(json_object_iter(act));
        json_t *a = json_object_iter_value(json_object_iter(act));
        const char *index = json_string_value(json_object_get(a, "index"));
        const char *alias = json_string_value(json_object_get(a, "alias"));
        if (!kind || !index || (strcmp(kind, "remove_index") && !alias) ||
            (strcmp(kind, "add") && strcmp(kind, "remove") && strcmp(kind, "remove_index"))) {
            json_decref(b);
            return os_error(400, "illegal_argument_exception",
                            "[aliases] unknown or incomplete action", NULL);
        }
        if (!index_get(s, index)) {
            reply_t r = not_found_index(index);
            json_decref(b);
            return r;
        }
        if (!strcmp(kind, "add") && index_get(s, alias)) {
            json_decref(b);
            char reason[512];
            snprintf(reason, sizeof(reason),
                     "an index or data stream exists with the same name "
                     "as the alias [%s]",
                     alias);
            return os_error(400, "invalid_alias_name_exception", reason, alias);
        }
        if (!strcmp(kind, "remove")) {
            json_t *aa = json_object_get(s->aliases, alias);
            bool found = false;
            size_t j;
            json_t *e;
            json_array_foreach(aa, j, e) found |= !strcmp(json_string_value(e), index);
            if (!found) {
                json_decref(b);
                char reason[512];
                snprintf(reason, sizeof(reason), "aliases [%s] missing", alias);
                return os_error(404, "aliases_not_found_exception", reason, NULL);
            }
        }
    }
    json_array_foreach(actions, i, act) {
        const char *kind = json_object_iter_key(json_object_iter(act));
        json_t *a = json_object_iter_value(json_object_iter(act));
        const char *index = json_string_value(json_object_get(a, "index"));
        const char *alias = json_string_value(json_object_get(a, "alias"));
        if (!strcmp(kind, "remove_index")) {
            json_object_del(s->indices, index);
            alias_remove_index(s, index);
            continue;
        }
        json_t *aa = json_object_get(s->aliases, alias);
        if (!strcmp(kind, "add")) {
            if (!aa)
                json_object_set_new(s->aliases, alias, aa = json_array());
            bool present = false;
            size_t j;
            json_t *e;
            json_array_foreach(aa, j, e) present |= !strcmp(json_string_value(e), index);
            if (!present)
                json_array_append_new(aa, json_string(index));
        } else {
            for (size_t j = json_array_size(aa); j-- > 0;)
                if (!strcmp(json_string_value(json_array_get(aa, j)), index))
                    json_array_remove(aa, j);
            if (!json_array_size(aa))
                json_object_del(s->aliases, alias);
        }
    }
    json_decref(b);
    return acknowledged();
}

static reply_t get_alias(os_server_t *s, const char *alias) {
    json_t *a = json_object_get(s->aliases, alias);
    if (!a) {
        char msg[512];
        snprintf(msg, sizeof(msg), "alias [%s] missing", alias);
        return (reply_t){404, json_pack("{s:s,s:i}", "error", msg, "status", 404), NULL};
    }
    json_t *out = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e)
        json_object_set_new(out, json_string_value(e), json_pack("{s:{s:{}}}", "aliases", alias));
    return ok(out);
}

/* Reads write options from a bulk action's metadata or the query string. */
static int opts_from(json_t *meta, struct MHD_Connection *c, write_opts_t *o, char *why,
                     size_t cap) {
    o->version = -1;
    o->if_seq_no = o->if_primary_term = -1;
    o->external = false;
    json_t *vt = meta ? json_object_get(meta, "version_type") : NULL;
    const char *vts = vt ? json_string_value(vt) : c ? arg(c, "version_type") : NULL;
    json_t *vj = meta ? json_object_get(meta, "version") : NULL;
    const char *vs = c && !meta ? arg(c, "version") : NULL;
    if (vj || vs)
        o->version = vj ? json_integer_value(vj) : atoll(vs);
    if (vts && (!strcmp(vts, "external") || !strcmp(vts, "external_gte"))) {
        o->gte = !strcmp(vts, "external_gte");
        if (o->version < 0) {
            snprintf(why, cap, "Validation Failed: 1: an external version is required;");
            return -1;
        }
        o->external = true;
    } else if (vts && strcmp(vts, "internal")) {
        snprintf(why, cap, "No version type match [%s]", vts);
        return -1;
    }
    json_t *sq = meta ? json_object_get(meta, "if_seq_no") : NULL;
    json_t *pt = meta ? json_object_get(meta, "if_primary_term") : NULL;
    const char *sqs = c && !meta ? arg(c, "if_seq_no") : NULL;
    const char *pts = c && !meta ? arg(c, "if_primary_term") : NULL;
    if (sq || sqs) {
        o->if_seq_no = sq ? json_integer_value(sq) : atoll(sqs);
        o->if_primary_term = pt ? json_integer_value(pt) : pts ? atoll(pts) : 0;
    }
    if (o->if_seq_no >= 0 && o->external) {
        snprintf(why, cap,
                 "Validation Failed: 1: compare and write operations can not be used "
                 "with version type [%s];",
                 o->gte ? "EXTERNAL_GTE" : "EXTERNAL");
        return -1;
    }
    return 0;
}

static json_t *item_error(const char *index, const char *id, int status, const char *type,
                          const char *reason) {
    json_t *err = json_pack("{s:s,s:s}", "type", type, "reason", reason);
    if (index)
        json_object_set_new(err, "index", json_string(index));
    return json_pack("{s:s?,s:s?,s:i,s:o}", "_index", index, "_id", id, "status", status, "error",
                     err);
}

static reply_t bulk(os_server_t *s, struct MHD_Connection *c, const char *path_index,
                    const upload_t *u) {
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (!ct || (strncmp(ct, "application/x-ndjson", 20) && strncmp(ct, "application/json", 16)))
        return (reply_t){406,
                         json_pack("{s:s,s:i}", "error",
                                   "Content-Type header [text/plain] is not supported", "status",
                                   406),
                         NULL};
    if (!u->len)
        return os_error(400, "action_request_validation_exception",
                        "Validation Failed: 1: no requests added;", NULL);
    if (u->body[u->len - 1] != '\n')
        return os_error(400, "illegal_argument_exception",
                        "The bulk request must be terminated by a newline [\\n]", NULL);
    bool require_alias = arg_true(c, "require_alias");
    json_t *items = json_array();
    bool errors = false;
    size_t line = 0;
    const char *p = u->body, *end = u->body + u->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *action_start = p;
        line++;
        if (nl == p) { /* blank lines are skipped */
            p++;
            continue;
        }
        json_error_t je;
        json_t *act = json_loadb(p, (size_t)(nl - p), 0, &je);
        p = nl + 1;
        if (!act || !json_is_object(act) || json_object_size(act) != 1) {
            json_decref(act);
            json_decref(items);
            char reason[256];
            snprintf(reason, sizeof(reason),
                     "Malformed action/metadata line [%zu], expected START_OBJECT or END_OBJECT "
                     "but found [VALUE_STRING]",
                     line);
            return os_error(400, "illegal_argument_exception", reason, NULL);
        }
        const char *op = json_object_iter_key(json_object_iter(act));
        json_t *meta = json_object_iter_value(json_object_iter(act));
        if (strcmp(op, "index") && strcmp(op, "create") && strcmp(op, "delete")) {
            json_decref(act);
            json_decref(items);
            char reason[256];
            snprintf(reason, sizeof(reason),
                     "Malformed action/metadata line [%zu], expected field [create], [delete], "
                     "[index] or [update] but found [%s]",
                     line, op);
            return os_error(400, "illegal_argument_exception", reason, NULL);
        }
        json_t *src = NULL;
        if (strcmp(op, "delete")) {
            if (p >= end) {
                json_decref(act);
                json_decref(items);
                return os_error(400, "action_request_validation_exception",
                                "Validation Failed: 1: source is missing;", NULL);
            }
            nl = memchr(p, '\n', (size_t)(end - p));
            line++;
            src = json_loadb(p, (size_t)(nl - p), 0, &je);
            p = nl + 1;
            if (!src || !json_is_object(src)) {
                /* A document that does not parse is a per-item 400. */
                json_decref(src);
                src = NULL;
            }
        }
        const char *iname = json_string_value(json_object_get(meta, "_index"));
        if (!iname)
            iname = path_index;
        char bytes_kind[300]; /* the bytes of this action and its source, per index name */
        snprintf(bytes_kind, sizeof(bytes_kind), "bulk_bytes:%s", iname ? iname : "");
        count_add(s, bytes_kind, (size_t)(p - action_start));
        const char *id = json_string_value(json_object_get(meta, "_id"));
        json_t *item;
        char why[512];
        write_opts_t o = {.op = op};
        count_kind(s, "bulk_items");
        if (!iname) {
            item = item_error(NULL, id, 400, "action_request_validation_exception",
                              "Validation Failed: 1: index is missing;");
        } else if (!id && strcmp(op, "index")) {
            item = item_error(iname, NULL, 400, "action_request_validation_exception",
                              "Validation Failed: 1: id is missing;");
        } else if (opts_from(meta, NULL, &o, why, sizeof(why)) < 0) {
            item = item_error(iname, id, 400, "action_request_validation_exception", why);
        } else if (strcmp(op, "delete") && !src) {
            item = item_error(iname, id, 400, "mapper_parsing_exception",
                              "failed to parse: document is not a JSON object");
        } else if (s->item_429 > 0) {
            s->item_429--;
            item = item_error(iname, id, 429, "es_rejected_execution_exception",
                              "rejected execution of coordinating operation [write queue full]");
        } else if (id && json_integer_value(json_object_get(s->reject_ids, id)) > 0) {
            json_t *left = json_object_get(s->reject_ids, id); /* os_fault_busy_id */
            json_integer_set(left, json_integer_value(left) - 1);
            item = item_error(iname, id, 429, "es_rejected_execution_exception",
                              "rejected execution of coordinating operation [write queue full]");
        } else if (id && json_is_true(json_object_get(s->reject_ids, id))) {
            item = item_error(iname, id, 400, "mapper_parsing_exception",
                              "failed to parse field [name] of type [text] (injected)");
        } else {
            const char *target = write_index(s, iname);
            if (!target && json_object_get(s->aliases, iname)) {
                snprintf(why, sizeof(why),
                         "no write index is defined for alias [%s]. The write index may be "
                         "explicitly disabled using is_write_index=false or the alias points to "
                         "multiple indices without one being designated as a write index",
                         iname);
                item = item_error(iname, id, 400, "illegal_argument_exception", why);
            } else if (!target && require_alias) {
                snprintf(why, sizeof(why),
                         "no such index [%s] and [require_alias] request flag is [true] and [%s] "
                         "is not an alias",
                         iname, iname);
                item = item_error(iname, id, 404, "index_not_found_exception", why);
            } else if (require_alias && index_get(s, iname)) {
                snprintf(why, sizeof(why),
                         "[require_alias] request flag is [true] and [%s] is not an alias", iname);
                item = item_error(iname, id, 404, "index_not_found_exception", why);
            } else {
                if (!target) { /* automatic index creation, dynamic mapping */
                    json_object_set_new(s->indices, iname, index_new(iname, NULL, NULL));
                    target = iname;
                }
                char auto_id[32];
                if (!id) {
                    snprintf(auto_id, sizeof(auto_id), "auto%lld",
                             (long long)json_integer_value(
                                 json_object_get(index_get(s, target), "seq")));
                    id = auto_id;
                }
                item = doc_write(index_get(s, target), id, src, &o);
            }
        }
        if (json_integer_value(json_object_get(item, "status")) >= 300)
            errors = true;
        json_array_append_new(items, json_pack("{s:o}", op, item));
        json_decref(src);
        json_decref(act);
    }
    if (arg(c, "refresh") && strcmp(arg(c, "refresh"), "false")) {
        const char *k;
        json_t *idx;
        json_object_foreach(s->indices, k, idx) refresh(idx);
    }
    return ok(json_pack("{s:i,s:b,s:o}", "took", 1, "errors", errors, "items", items));
}

static reply_t get_doc(os_server_t *s, const char *name, const char *id) {
    json_t *names = resolve(s, name);
    if (!names)
        return not_found_index(name);
    if (json_array_size(names) > 1) {
        json_decref(names);
        return os_error(400, "illegal_argument_exception",
                        "alias has more than one index associated with it, can't execute a single "
                        "index op",
                        NULL);
    }
    const char *iname = json_string_value(json_array_get(names, 0));
    json_t *doc = json_object_get(json_object_get(index_get(s, iname), "docs"), id);
    json_t *out = json_pack("{s:s,s:s,s:b}", "_index", iname, "_id", id, "found", doc != NULL);
    json_decref(names);
    if (!doc)
        return (reply_t){404, out, NULL};
    json_object_set(out, "_version", json_object_get(doc, "_version"));
    json_object_set(out, "_seq_no", json_object_get(doc, "_seq_no"));
    json_object_set(out, "_primary_term", json_object_get(doc, "_primary_term"));
    json_object_set(out, "_source", json_object_get(doc, "_source"));
    return ok(out);
}

static reply_t put_doc(os_server_t *s, struct MHD_Connection *c, const char *name, const char *id,
                       const char *op, const upload_t *u) {
    json_t *src = NULL;
    if (strcmp(op, "delete")) {
        reply_t err;
        if (!(src = body_object(u, &err)))
            return err;
    }
    write_opts_t o = {.op = op};
    char why[512];
    if (arg(c, "op_type") && !strcmp(arg(c, "op_type"), "create"))
        o.op = "create";
    if (opts_from(NULL, c, &o, why, sizeof(why)) < 0) {
        json_decref(src);
        return os_error(400, "action_request_validation_exception", why, NULL);
    }
    const char *target = write_index(s, name);
    if (arg_true(c, "require_alias") && (!target || index_get(s, name))) {
        json_decref(src);
        if (target || index_get(s, name))
            snprintf(why, sizeof(why),
                     "[require_alias] request flag is [true] and [%s] is not an alias", name);
        else
            snprintf(why, sizeof(why),
                     "no such index [%s] and [require_alias] request flag is [true] and [%s] is "
                     "not an alias",
                     name, name);
        return os_error(404, "index_not_found_exception", why, name);
    }
    if (!target) {
        if (!strcmp(op, "delete") || json_object_get(s->aliases, name)) {
            json_decref(src);
            return not_found_index(name);
        }
        json_object_set_new(s->indices, name, index_new(name, NULL, NULL));
        target = name;
    }
    json_t *item = doc_write(index_get(s, target), id, src, &o);
    json_decref(src);
    int status = (int)json_integer_value(json_object_get(item, "status"));
    json_object_del(item, "status");
    if (json_object_get(item, "error")) {
        json_t *e = json_incref(json_object_get(item, "error"));
        json_decref(item);
        reply_t r = os_error(status, json_string_value(json_object_get(e, "type")),
                             json_string_value(json_object_get(e, "reason")), target);
        json_decref(e);
        return r;
    }
    if (arg(c, "refresh") && strcmp(arg(c, "refresh"), "false"))
        refresh(index_get(s, target));
    return (reply_t){status, item, NULL};
}

static reply_t mget(os_server_t *s, const char *name, const upload_t *u) {
    reply_t err;
    json_t *b = body_object(u, &err);
    if (!b)
        return err;
    json_t *ids = json_object_get(b, "ids");
    if (!json_is_array(ids)) {
        json_decref(b);
        return os_error(400, "action_request_validation_exception",
                        "Validation Failed: 1: no documents to get;", NULL);
    }
    json_t *docs = json_array();
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id) {
        reply_t r = get_doc(s, name, json_string_value(id) ? json_string_value(id) : "");
        if (r.status == 404 && !json_object_get(r.body, "found")) { /* missing index */
            json_t *e = json_object_get(r.body, "error");
            json_array_append_new(
                docs, json_pack("{s:s,s:O,s:O}", "_index", name, "_id", id, "error", e));
            json_decref(r.body);
            continue;
        }
        json_array_append_new(docs, r.body);
    }
    json_decref(b);
    return ok(json_pack("{s:o}", "docs", docs));
}

static int cmp_sort(json_t *a, json_t *b) {
    if (json_is_string(a) && json_is_string(b))
        return strcmp(json_string_value(a), json_string_value(b));
    return (json_number_value(a) > json_number_value(b)) -
           (json_number_value(a) < json_number_value(b));
}

static bool matches(json_t *query, const char *id, json_t *src) {
    if (!query || json_object_get(query, "match_all"))
        return true;
    json_t *ids = json_object_get(json_object_get(query, "ids"), "values");
    if (ids) {
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v) if (!strcmp(json_string_value(v), id)) return true;
        return false;
    }
    json_t *term = json_object_get(query, "term");
    if (term) {
        const char *f = json_object_iter_key(json_object_iter(term));
        json_t *want = json_object_iter_value(json_object_iter(term));
        if (json_is_object(want))
            want = json_object_get(want, "value");
        json_t *have = json_object_get(src, f);
        if (json_is_array(have)) {
            size_t i;
            json_t *v;
            json_array_foreach(have, i, v) if (json_equal(v, want)) return true;
            return false;
        }
        return have && json_equal(have, want);
    }
    return true;
}

typedef struct {
    const char *id;
    const char *index;
    json_t *src;
    json_t *key;
} hit_t;

static const char *sort_field;
static int hit_cmp(const void *a, const void *b) {
    const hit_t *x = a, *y = b;
    if (!sort_field)
        return strcmp(x->id, y->id);
    int c = cmp_sort(x->key, y->key);
    return c ? c : strcmp(x->id, y->id);
}

/* _search and _count over the refreshed view: match_all, ids, term; sort on
 * one field ascending; from/size; search_after. */
static reply_t search(os_server_t *s, const char *name, const upload_t *u, bool count) {
    reply_t err;
    json_t *b = body_object(u, &err);
    if (!b)
        return err;
    json_t *names = resolve(s, name);
    if (!names) {
        json_decref(b);
        return not_found_index(name);
    }
    json_t *query = json_object_get(b, "query");
    size_t n = 0, cap = 64;
    hit_t *hits = malloc(cap * sizeof(*hits));
    size_t i;
    json_t *iname;
    json_t *sort = json_object_get(b, "sort");
    const char *sf = NULL;
    if (json_is_array(sort) && json_array_size(sort)) {
        json_t *s0 = json_array_get(sort, 0);
        sf =
            json_is_string(s0) ? json_string_value(s0) : json_object_iter_key(json_object_iter(s0));
    }
    json_array_foreach(names, i, iname) {
        json_t *vis = searchable(index_get(s, json_string_value(iname)));
        const char *id;
        json_t *src;
        json_object_foreach(vis, id, src) {
            if (!matches(query, id, src))
                continue;
            if (n == cap)
                hits = realloc(hits, (cap *= 2) * sizeof(*hits));
            hits[n++] =
                (hit_t){id, json_string_value(iname), src, sf ? json_object_get(src, sf) : NULL};
        }
    }
    if (count) {
        json_decref(b);
        free(hits);
        json_decref(names);
        return ok(json_pack("{s:I,s:{s:i,s:i,s:i,s:i}}", "count", (json_int_t)n, "_shards", "total",
                            1, "successful", 1, "skipped", 0, "failed", 0));
    }
    sort_field = sf;
    qsort(hits, n, sizeof(*hits), hit_cmp);
    json_t *size_j = json_object_get(b, "size");
    json_t *from_j = json_object_get(b, "from");
    size_t size = size_j ? (size_t)json_integer_value(size_j) : 10;
    size_t from = from_j ? (size_t)json_integer_value(from_j) : 0;
    json_t *after = json_array_get(json_object_get(b, "search_after"), 0);
    if (after && !sf) {
        free(hits);
        json_decref(b);
        json_decref(names);
        return os_error(400, "illegal_argument_exception", "Sort must contain at least one field.",
                        NULL);
    }
    if (from + size > 10000) {
        free(hits);
        json_decref(b);
        json_decref(names);
        return os_error(400, "illegal_argument_exception",
                        "Result window is too large, from + size must be less than or equal to: "
                        "[10000]",
                        NULL);
    }
    json_t *out = json_array();
    size_t skipped = 0;
    for (size_t k = 0; k < n && json_array_size(out) < size; k++) {
        if (after && cmp_sort(hits[k].key, after) <= 0)
            continue;
        if (skipped++ < from)
            continue;
        json_t *h = json_pack("{s:s,s:s,s:n,s:O}", "_index", hits[k].index, "_id", hits[k].id,
                              "_score", "_source", hits[k].src);
        if (json_is_true(json_object_get(b, "version"))) {
            json_t *doc =
                json_object_get(json_object_get(index_get(s, hits[k].index), "docs"), hits[k].id);
            json_object_set(h, "_version", json_object_get(doc, "_version"));
        }
        if (sf)
            json_object_set_new(h, "sort",
                                json_pack("[O]", hits[k].key ? hits[k].key : json_null()));
        json_array_append_new(out, h);
    }
    json_t *res =
        json_pack("{s:i,s:b,s:{s:i,s:i,s:i,s:i},s:{s:{s:I,s:s},s:n,s:o}}", "took", 1, "timed_out",
                  0, "_shards", "total", 1, "successful", 1, "skipped", 0, "failed", 0, "hits",
                  "total", "value", (json_int_t)n, "relation", "eq", "max_score", "hits", out);
    free(hits);
    json_decref(b);
    json_decref(names);
    return ok(res);
}

static reply_t do_refresh(os_server_t *s, const char *name) {
    json_t *names = resolve(s, name);
    if (!names)
        return not_found_index(name);
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n) refresh(index_get(s, json_string_value(n)));
    json_decref(names);
    return ok(json_pack("{s:{s:i,s:i,s:i}}", "_shards", "total", 1, "successful", 1, "failed", 0));
}

/* Routes one request (lock held). parts: the path split on '/'. */
/* Document `to` of the index behind `index` becomes a copy of `from`
 * (source, version, seq_no); a missing `from` deletes `to`. Under s->mu. */
static void copy_doc(os_server_t *s, const char *index, const char *from, const char *to) {
    const char *w = write_index(s, index);
    json_t *docs = w ? json_object_get(index_get(s, w), "docs") : NULL;
    json_t *d = docs ? json_object_get(docs, from) : NULL;
    if (d)
        json_object_set_new(docs, to, json_deep_copy(d));
    else if (docs)
        json_object_del(docs, to);
}

static reply_t route(os_server_t *s, struct MHD_Connection *c, const char *method, char **parts,
                     int np, const upload_t *u) {
    bool get = !strcmp(method, "GET"), head = !strcmp(method, "HEAD"), put = !strcmp(method, "PUT"),
         post = !strcmp(method, "POST"), del = !strcmp(method, "DELETE");
    if (np == 0 && (get || head)) {
        count_kind(s, "info");
        return ok(json_pack("{s:s,s:s,s:{s:s,s:s},s:s}", "name", "os-test", "cluster_name",
                            "readmodel-test", "version", "distribution", "opensearch", "number",
                            "2.19.6", "tagline",
                            "The OpenSearch Project: https://opensearch.org/"));
    }
    const char *a = parts[0];
    if (np == 1 && !strcmp(a, "_bulk") && (post || put)) {
        count_kind(s, "bulk");
        count_add(s, "bulk_bytes", u->len);
        return bulk(s, c, NULL, u);
    }
    if (np == 1 && !strcmp(a, "_aliases") && post) {
        count_kind(s, "aliases");
        return post_aliases(s, u);
    }
    if (np == 2 && !strcmp(a, "_alias") && (get || head)) {
        count_kind(s, "alias");
        return get_alias(s, parts[1]);
    }
    if (a[0] == '_')
        return os_error(400, "illegal_argument_exception", "endpoint not modelled by this server",
                        NULL);
    if (np == 1) {
        count_kind(s, "index");
        if (put)
            return create_index(s, a, u);
        if (del)
            return delete_index(s, a);
        if (get || head)
            return get_index(s, a, NULL);
    }
    const char *b = parts[1];
    if (np == 2 && !strcmp(b, "_bulk") && (post || put)) {
        count_kind(s, "bulk");
        count_add(s, "bulk_bytes", u->len);
        return bulk(s, c, a, u);
    }
    if (np == 2 && !strcmp(b, "_refresh") && (post || get)) {
        count_kind(s, "refresh");
        return do_refresh(s, a);
    }
    if (np == 2 && (!strcmp(b, "_mapping") || !strcmp(b, "_settings") || !strcmp(b, "_alias")) &&
        get) {
        count_kind(s, "index");
        return get_index(s, a, b);
    }
    if (np == 2 && !strcmp(b, "_settings") && put) {
        count_kind(s, "settings");
        return put_settings(s, a, u);
    }
    if (np == 2 && !strcmp(b, "_mapping") && (put || post)) {
        count_kind(s, "mapping");
        return put_mapping(s, a, u);
    }
    if (np == 2 && !strcmp(b, "_mget") && (get || post)) {
        count_kind(s, "mget");
        reply_t r = mget(s, a, u);
        json_t *cp = s->copy_after_mget; /* os_fault_copy_after_mget */
        if (cp) {
            s->copy_after_mget = NULL;
            copy_doc(s, json_string_value(json_array_get(cp, 0)),
                     json_string_value(json_array_get(cp, 1)),
                     json_string_value(json_array_get(cp, 2)));
            json_decref(cp);
        }
        return r;
    }
    if (np == 2 && (!strcmp(b, "_search") || !strcmp(b, "_count")) && (get || post)) {
        count_kind(s, b + 1);
        return search(s, a, u, !strcmp(b, "_count"));
    }
    if (np == 3 && !strcmp(b, "_doc")) {
        count_kind(s, "doc");
        if (get || head)
            return get_doc(s, a, parts[2]);
        if (put || post)
            return put_doc(s, c, a, parts[2], "index", u);
        if (del)
            return put_doc(s, c, a, parts[2], "delete", u);
    }
    if (np == 3 && !strcmp(b, "_create") && (put || post)) {
        count_kind(s, "doc");
        return put_doc(s, c, a, parts[2], "create", u);
    }
    return os_error(405, "method_not_allowed",
                    "Incorrect HTTP method for uri, or endpoint not modelled by this server", NULL);
}

/* ---- authentication ---- */

static bool sigv4_ok(struct MHD_Connection *c) {
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *date = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-amz-date");
    return auth && date && !strncmp(auth, "AWS4-HMAC-SHA256 Credential=", 28) &&
           strstr(auth, "/es/aws4_request") && strstr(auth, "SignedHeaders=") &&
           strstr(auth, "host") && strstr(auth, "x-amz-date") && strstr(auth, "Signature=");
}

static reply_t auth_check(os_server_t *s, struct MHD_Connection *c, bool *passed) {
    *passed = true;
    if (s->user) {
        char *pass = NULL;
        char *user = MHD_basic_auth_get_username_password(c, &pass);
        bool good = user && pass && !strcmp(user, s->user) && !strcmp(pass, s->password);
        MHD_free(user);
        MHD_free(pass);
        if (!good) {
            *passed = false;
            reply_t r = os_error(401, "security_exception",
                                 "missing authentication credentials for REST request", NULL);
            r.www_auth = "Basic realm=\"OpenSearch Security\"";
            return r;
        }
    }
    if (s->sigv4 && !sigv4_ok(c)) {
        *passed = false;
        return (reply_t){403,
                         json_pack("{s:s}", "message",
                                   "The request signature we calculated does not match the "
                                   "signature you provided."),
                         NULL};
    }
    return (reply_t){0, NULL, NULL};
}

/* ---- libmicrohttpd glue ---- */

static enum MHD_Result send_reply(struct MHD_Connection *c, reply_t r, bool head) {
    char *text = r.body ? json_dumps(r.body, JSON_COMPACT) : NULL;
    json_decref(r.body);
    size_t len = text ? strlen(text) : 0;
    struct MHD_Response *resp =
        head ? MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT)
             : MHD_create_response_from_buffer(len, text ? text : (void *)"",
                                               text ? MHD_RESPMEM_MUST_FREE
                                                    : MHD_RESPMEM_PERSISTENT);
    if (head)
        free(text);
    MHD_add_response_header(resp, "Content-Type", "application/json; charset=UTF-8");
    if (r.www_auth)
        MHD_add_response_header(resp, "WWW-Authenticate", r.www_auth);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)r.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *data_size, void **con_cls) {
    (void)version;
    os_server_t *s = cls;
    upload_t *u = *con_cls;
    if (!u) {
        *con_cls = calloc(1, sizeof(upload_t));
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*data_size) {
        char *nb = realloc(u->body, u->len + *data_size + 1);
        if (!nb)
            return MHD_NO;
        u->body = nb;
        memcpy(u->body + u->len, data, *data_size);
        u->len += *data_size;
        u->body[u->len] = '\0';
        *data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&s->mu);
    int delay = s->delay_ms;
    bool drop = s->drop > 0 && s->drop--;
    bool f503 = !drop && s->f503 > 0 && s->f503--;
    bool is_bulk = strstr(url, "_bulk") != NULL;
    bool b429 = !drop && !f503 && is_bulk && s->bulk_429 > 0 && s->bulk_429--;
    pthread_mutex_unlock(&s->mu);
    if (delay)
        usleep((useconds_t)delay * 1000);
    if (drop)
        return MHD_NO; /* closes the connection without a response */
    if (f503)
        return send_reply(c,
                          os_error(503, "cluster_block_exception",
                                   "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / "
                                   "initialized];",
                                   NULL),
                          false);
    if (b429)
        return send_reply(c,
                          os_error(429, "es_rejected_execution_exception",
                                   "rejected execution of coordinating operation", NULL),
                          false);
    char path[2048];
    snprintf(path, sizeof(path), "%s", url);
    char *parts[8];
    int np = 0;
    for (char *tok = strtok(path, "/"); tok && np < 8; tok = strtok(NULL, "/"))
        parts[np++] = tok;
    pthread_mutex_lock(&s->mu);
    bool passed;
    reply_t r = auth_check(s, c, &passed);
    if (passed)
        r = route(s, c, method, parts, np, u);
    pthread_mutex_unlock(&s->mu);
    return send_reply(c, r, !strcmp(method, "HEAD"));
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)c, (void)toe;
    upload_t *u = *con_cls;
    if (u) {
        free(u->body);
        free(u);
    }
    *con_cls = NULL;
}

static int listen_on(os_server_t *s, int port) {
    /* Loopback only: a test server must not be reachable from elsewhere. */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (s->tls_cert)
        s->d = MHD_start_daemon(flags | MHD_USE_TLS, (uint16_t)port, NULL, NULL, handler, s,
                                MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED, completed,
                                s, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U,
                                MHD_OPTION_CONNECTION_TIMEOUT, 30U, MHD_OPTION_HTTPS_MEM_KEY,
                                s->tls_key, MHD_OPTION_HTTPS_MEM_CERT, s->tls_cert, MHD_OPTION_END);
    else
        s->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR,
                                &sa, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                                MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U,
                                MHD_OPTION_CONNECTION_TIMEOUT, 30U, MHD_OPTION_END);
    if (!s->d)
        return -1;
    s->port = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return 0;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
    fclose(f);
    if (buf && n == 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

os_server_t *os_server_start_tls(int port, const char *cert_file, const char *key_file) {
    char *cert = slurp(cert_file), *key = slurp(key_file);
    if (!cert || !key || MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        free(cert);
        free(key);
        return NULL;
    }
    os_server_t *s = os_server_start(-1);
    if (!s) {
        free(cert);
        free(key);
        return NULL;
    }
    s->tls_cert = cert;
    s->tls_key = key;
    if (listen_on(s, port) < 0) {
        os_server_stop(s);
        return NULL;
    }
    return s;
}

os_server_t *os_server_start(int port) {
    os_server_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->indices = json_object();
    s->aliases = json_object();
    s->counts = json_object();
    s->reject_ids = json_object();
    if (port >= 0 && listen_on(s, port) < 0) {
        os_server_stop(s);
        return NULL;
    }
    return s;
}

int os_server_port(const os_server_t *s) {
    return s->port;
}

void os_server_down(os_server_t *s) {
    if (s->d) {
        MHD_stop_daemon(s->d);
        s->d = NULL;
    }
}

int os_server_up(os_server_t *s) {
    return s->d ? 0 : listen_on(s, s->port);
}

void os_server_stop(os_server_t *s) {
    if (!s)
        return;
    os_server_down(s);
    json_decref(s->indices);
    json_decref(s->aliases);
    json_decref(s->counts);
    json_decref(s->reject_ids);
    json_decref(s->copy_after_mget);
    free(s->user);
    free(s->password);
    free(s->tls_cert);
    free(s->tls_key);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void os_server_require_auth(os_server_t *s, const char *user, const char *password) {
    pthread_mutex_lock(&s->mu);
    free(s->user);
    free(s->password);
    s->user = user ? strdup(user) : NULL;
    s->password = password ? strdup(password) : NULL;
    pthread_mutex_unlock(&s->mu);
}

void os_server_require_sigv4(os_server_t *s, bool on) {
    pthread_mutex_lock(&s->mu);
    s->sigv4 = on;
    pthread_mutex_unlock(&s->mu);
}

#define SETTER(fn, field)                                                                          \
    void fn(os_server_t *s, int n) {                                                               \
        pthread_mutex_lock(&s->mu);                                                                \
        s->field = n;                                                                              \
        pthread_mutex_unlock(&s->mu);                                                              \
    }
SETTER(os_fault_bulk_429, bulk_429)
SETTER(os_fault_item_429, item_429)
SETTER(os_fault_503, f503)
SETTER(os_fault_drop, drop)
SETTER(os_fault_delay_ms, delay_ms)
#undef SETTER

void os_fault_reject_id(os_server_t *s, const char *id) {
    pthread_mutex_lock(&s->mu);
    json_object_set_new(s->reject_ids, id, json_true());
    pthread_mutex_unlock(&s->mu);
}

void os_fault_accept_id(os_server_t *s, const char *id) {
    pthread_mutex_lock(&s->mu);
    json_object_del(s->reject_ids, id);
    pthread_mutex_unlock(&s->mu);
}

void os_fault_busy_id(os_server_t *s, const char *id, int n) {
    pthread_mutex_lock(&s->mu);
    json_object_set_new(s->reject_ids, id, json_integer(n));
    pthread_mutex_unlock(&s->mu);
}

void os_server_copy(os_server_t *s, const char *index, const char *from, const char *to) {
    pthread_mutex_lock(&s->mu);
    copy_doc(s, index, from, to);
    pthread_mutex_unlock(&s->mu);
}

void os_fault_copy_after_mget(os_server_t *s, const char *index, const char *from, const char *to) {
    pthread_mutex_lock(&s->mu);
    json_decref(s->copy_after_mget);
    s->copy_after_mget = json_pack("[sss]", index, from, to);
    pthread_mutex_unlock(&s->mu);
}

json_t *os_server_get(os_server_t *s, const char *index, const char *id) {
    pthread_mutex_lock(&s->mu);
    const char *w = write_index(s, index);
    json_t *doc = w ? json_object_get(json_object_get(index_get(s, w), "docs"), id) : NULL;
    json_t *src = doc ? json_deep_copy(json_object_get(doc, "_source")) : NULL;
    pthread_mutex_unlock(&s->mu);
    return src;
}

json_t *os_server_ids(os_server_t *s, const char *index) {
    pthread_mutex_lock(&s->mu);
    json_t *out = json_array();
    const char *w = write_index(s, index);
    const char *id;
    json_t *doc;
    if (w)
        json_object_foreach(json_object_get(index_get(s, w), "docs"), id, doc)
            json_array_append_new(out, json_string(id));
    pthread_mutex_unlock(&s->mu);
    return out;
}

json_t *os_server_indices(os_server_t *s) {
    pthread_mutex_lock(&s->mu);
    json_t *out = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(s->indices, k, v) json_array_append_new(out, json_string(k));
    pthread_mutex_unlock(&s->mu);
    return out;
}

int os_faults_pending(os_server_t *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->bulk_429 + s->item_429 + s->f503 + s->drop;
    pthread_mutex_unlock(&s->mu);
    return n;
}

long os_server_requests(os_server_t *s, const char *kind) {
    pthread_mutex_lock(&s->mu);
    long n = (long)json_integer_value(json_object_get(s->counts, kind));
    pthread_mutex_unlock(&s->mu);
    return n;
}
