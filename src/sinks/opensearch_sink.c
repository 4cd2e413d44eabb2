/*
 * OpenSearch sink: transport (one libcurl handle, so its connection is
 * reused; TLS, basic auth and AWS SigV4 set once), the index layout, and the
 * pipeline's writes: documents, then states, then checkpoints, each in
 * _bulk requests whose per-item results are read one by one.
 *
 * The bulk retry policy lives here because it is per item: an HTTP 200 with
 * "errors": true may hold a mix of written items, items to retry (429, 5xx)
 * and items rejected for good (other 4xx). Only the items that still need
 * it are sent again, after a capped exponential backoff with full jitter.
 */
#include "opensearch_internal.h"
#include "opensearch_state.h"
#include "readmodel/clock.h"

#include "readmodel/log.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

rm_os_sink_t *rm_os_sink_new(const rm_os_config_t *cfg) {
    rm_os_sink_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->cfg.url = dup_or_null(cfg->url);
    s->cfg.index_prefix = dup_or_null(cfg->index_prefix ? cfg->index_prefix : "");
    s->cfg.ca_file = dup_or_null(cfg->ca_file);
    s->cfg.cert_file = dup_or_null(cfg->cert_file);
    s->cfg.key_file = dup_or_null(cfg->key_file);
    s->cfg.username = dup_or_null(cfg->username);
    s->cfg.password = dup_or_null(cfg->password);
    s->cfg.aws_region = dup_or_null(cfg->aws_region);
    s->cfg.aws_key = dup_or_null(cfg->aws_key);
    s->cfg.aws_secret = dup_or_null(cfg->aws_secret);
    s->cfg.aws_token = dup_or_null(cfg->aws_token);
    if (!s->cfg.bulk_docs)
        s->cfg.bulk_docs = 1000;
    if (!s->cfg.bulk_bytes)
        s->cfg.bulk_bytes = 5u << 20;
    if (!s->cfg.timeout_ms)
        s->cfg.timeout_ms = 30000;
    snprintf(s->alias, sizeof(s->alias), "%spractitioners", s->cfg.index_prefix);
    snprintf(s->state_alias, sizeof(s->state_alias), "%spractitioners-state", s->cfg.index_prefix);
    snprintf(s->meta, sizeof(s->meta), "%sreadmodel-meta", s->cfg.index_prefix);
    s->cp_versions = json_object();
    s->rng = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)s;
    /* Every copy or none: a lost username, password or key would talk to
     * the server without it. */
    bool lost = !s->cfg.index_prefix || (cfg->ca_file && !s->cfg.ca_file) ||
                (cfg->cert_file && !s->cfg.cert_file) || (cfg->key_file && !s->cfg.key_file) ||
                (cfg->username && !s->cfg.username) || (cfg->password && !s->cfg.password) ||
                (cfg->aws_region && !s->cfg.aws_region) || (cfg->aws_key && !s->cfg.aws_key) ||
                (cfg->aws_secret && !s->cfg.aws_secret) || (cfg->aws_token && !s->cfg.aws_token);
    if (!s->cfg.url || lost || !s->cp_versions) {
        rm_os_sink_free(s);
        return NULL;
    }
    return s;
}

/* TLS failures, named as one class whatever libcurl's text for the TLS
 * library and the CA setup of the machine (a CA bundle that is not there
 * reads differently from a certificate that is not trusted). */
static bool tls_failure(CURLcode rc) {
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
        return true;
    default:
        return false;
    }
}

/* The configuration's strings are this sink's own copies (rm_os_sink_new)
 * held in the const fields of the shared config type. */
static void free_copy(const char *p) {
    free((void *)(uintptr_t)p);
}

void rm_os_sink_free(rm_os_sink_t *s) {
    if (!s)
        return;
    if (s->curl)
        curl_easy_cleanup(s->curl);
    free_copy(s->cfg.url);
    free_copy(s->cfg.index_prefix);
    free_copy(s->cfg.ca_file);
    free_copy(s->cfg.cert_file);
    free_copy(s->cfg.key_file);
    free_copy(s->cfg.username);
    free_copy(s->cfg.password);
    free_copy(s->cfg.aws_region);
    free_copy(s->cfg.aws_key);
    free_copy(s->cfg.aws_secret);
    free_copy(s->cfg.aws_token);
    json_decref(s->cp_versions);
    json_decref(s->lease_version);
    free(s);
}

const char *rm_os_sink_last_error(const rm_os_sink_t *s) {
    return s->err;
}
const char *rm_os_alias(const rm_os_sink_t *s) {
    return s->alias;
}
const rm_os_counters_t *rm_os_sink_counters(const rm_os_sink_t *s) {
    return &s->counters;
}

/* ---- transport ---- */

typedef struct {
    char *buf;
    size_t len;
} grow_t;

static size_t on_body(char *p, size_t size, size_t n, void *arg) {
    grow_t *g = arg;
    size_t add = size * n;
    char *nb = realloc(g->buf, g->len + add + 1);
    if (!nb)
        return 0;
    memcpy(nb + g->len, p, add);
    g->buf = nb;
    g->len += add;
    g->buf[g->len] = '\0';
    return add;
}

static CURL *handle(rm_os_sink_t *s) {
    if (s->curl)
        return s->curl;
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->cfg.timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     s->cfg.timeout_ms < 10000 ? s->cfg.timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    if (s->cfg.ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, s->cfg.ca_file);
    if (s->cfg.cert_file) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, s->cfg.cert_file);
        curl_easy_setopt(c, CURLOPT_SSLKEY, s->cfg.key_file);
    }
    if (s->cfg.aws_region) {
        char provider[128];
        snprintf(provider, sizeof(provider), "aws:amz:%s:es", s->cfg.aws_region);
        curl_easy_setopt(c, CURLOPT_AWS_SIGV4, provider);
        curl_easy_setopt(c, CURLOPT_USERNAME, s->cfg.aws_key);
        curl_easy_setopt(c, CURLOPT_PASSWORD, s->cfg.aws_secret);
    } else if (s->cfg.username) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, s->cfg.username);
        curl_easy_setopt(c, CURLOPT_PASSWORD, s->cfg.password ? s->cfg.password : "");
    }
    s->curl = c;
    return c;
}

rm_err_t rm_os_reply_error(rm_os_sink_t *s, const char *what, long status, json_t *resp) {
    json_t *e = json_object_get(resp, "error");
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *reason = json_string_value(json_object_get(e, "reason"));
    if (!reason && json_is_string(e))
        reason = json_string_value(e);
    if (!reason)
        reason = json_string_value(json_object_get(resp, "message"));
    snprintf(s->err, sizeof(s->err), "%s: HTTP %ld%s%s%s%s", what, status, type ? " " : "",
             type ? type : "", reason ? ": " : "", reason ? reason : "");
    return RM_ERR_REPLY;
}

/* Appends a header line; false (and *h unchanged) when out of memory. */
static bool add_header(struct curl_slist **h, const char *line) {
    struct curl_slist *n = curl_slist_append(*h, line);
    if (n)
        *h = n;
    return n != NULL;
}

rm_err_t rm_os_request(rm_os_sink_t *s, const char *method, const char *path, const char *body,
                       size_t len, const char *content_type, long *status, json_t **resp) {
    *resp = NULL;
    *status = 0;
    CURL *c = handle(s);
    if (!c) {
        snprintf(s->err, sizeof(s->err), "cannot create an HTTP handle");
        return RM_ERR_NOMEM;
    }
    size_t ulen = strlen(s->cfg.url);
    char *url = malloc(ulen + strlen(path) + 2);
    if (!url)
        return RM_ERR_NOMEM;
    sprintf(url, "%s%s%s", s->cfg.url, ulen && s->cfg.url[ulen - 1] == '/' ? "" : "/",
            path[0] == '/' ? path + 1 : path);
    struct curl_slist *h = NULL;
    char ct[96];
    snprintf(ct, sizeof(ct), "Content-Type: %s", content_type ? content_type : "application/json");
    bool nomem = !add_header(&h, ct) || !add_header(&h, "Accept: application/json");
    if (!nomem && s->cfg.aws_region && s->cfg.aws_token) {
        char tok[2048];
        snprintf(tok, sizeof(tok), "x-amz-security-token: %s", s->cfg.aws_token);
        nomem = !add_header(&h, tok);
    }
    if (nomem) { /* never a request without its headers (the token) */
        curl_slist_free_all(h);
        free(url);
        snprintf(s->err, sizeof(s->err), "%s %s: out of memory", method, path);
        return RM_ERR_NOMEM;
    }
    grow_t g = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &g);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
    if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(method, "GET") && !body) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
        if (strcmp(method, "POST"))
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    free(url);
    if (rc != CURLE_OK) {
        snprintf(s->err, sizeof(s->err), "%s %s: %s%s", method, path,
                 tls_failure(rc) ? "TLS: the server's certificate or ours was refused: " : "",
                 curl_easy_strerror(rc));
        free(g.buf);
        /* A broken connection is not reused. */
        curl_easy_cleanup(s->curl);
        s->curl = NULL;
        s->counters.http_errors++;
        return RM_ERR_IO;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (g.len)
        *resp = json_loadb(g.buf, g.len, 0, NULL);
    free(g.buf);
    if (*status == 429 || *status >= 500 || *status == 401 || *status == 403) {
        rm_os_reply_error(s, path, *status, *resp);
        json_decref(*resp);
        *resp = NULL;
        s->counters.http_errors++;
        /* 401/403: the credentials or their permissions, not a passing state */
        return *status == 401 || *status == 403 ? RM_ERR_CONFIG : RM_ERR_IO;
    }
    return RM_ERR_OK;
}

rm_err_t rm_os_sink_ping(rm_os_sink_t *s) {
    long st = 0;
    json_t *r = NULL;
    rm_err_t e = rm_os_request(s, "GET", "/", NULL, 0, NULL, &st, &r);
    if (e)
        return e;
    if (st != 200 || !json_is_object(json_object_get(r, "version"))) {
        e = rm_os_reply_error(s, "GET / (is this OpenSearch?)", st, r);
        json_decref(r);
        return e;
    }
    json_decref(r);
    return RM_ERR_OK;
}

/* ---- layout ---- */

/* Lucene refuses a term longer than 32,766 bytes, and OpenSearch then
 * rejects the whole document (400 illegal_argument_exception, "immense
 * term"). The spec bounds no profile string, so every keyword field of free
 * text carries ignore_above: a longer value stays in _source but is not
 * indexed. A character is at most 4 bytes of UTF-8, so 8,191 characters
 * (however counted) stay under the limit. */
#define KEYWORD_MAX_CHARS 8191

json_t *rm_os_index_body(bool loading) {
    json_t *props = json_pack(
        "{s:{s:s},s:{s:s,s:{s:{s:s,s:i}}},s:{s:s,s:i},s:{s:s,s:i},s:{s:s},s:{s:s,s:i},s:{s:s},"
        "s:{s:s},s:{s:s,s:s},s:{s:s}}",
        "practitioner_id", "type", "keyword", "name", "type", "text", "fields", "keyword", "type",
        "keyword", "ignore_above", 256, "specialties", "type", "keyword", "ignore_above",
        KEYWORD_MAX_CHARS, "city", "type", "keyword", "ignore_above", KEYWORD_MAX_CHARS, "location",
        "type", "geo_point", "languages", "type", "keyword", "ignore_above", KEYWORD_MAX_CHARS,
        "accepts_new_patients", "type", "boolean", "active", "type", "boolean", "free_dates",
        "type", "date", "format", "yyyy-MM-dd", "free_slots_total", "type", "integer");
    return json_pack("{s:{s:{s:i,s:i,s:s}},s:{s:s,s:o}}", "settings", "index", "number_of_shards",
                     1, "number_of_replicas", loading ? 0 : 1, "refresh_interval",
                     loading ? "-1" : "1s", "mappings", "dynamic", "strict", "properties", props);
}

json_t *rm_os_state_body(bool loading) {
    return json_pack("{s:{s:{s:i,s:i,s:s}},s:{s:b}}", "settings", "index", "number_of_shards", 1,
                     "number_of_replicas", loading ? 0 : 1, "refresh_interval",
                     loading ? "-1" : "1s", "mappings", "dynamic", 0);
}

void rm_os_gen_names(const rm_os_sink_t *s, long gen, char *docs, char *state, size_t cap) {
    snprintf(docs, cap, "%s-%06ld", s->alias, gen);
    snprintf(state, cap, "%s-%06ld", s->state_alias, gen);
}

long rm_os_index_gen(const char *alias, const char *index) {
    size_t n = strlen(alias);
    if (!index || strncmp(index, alias, n) || index[n] != '-' || !index[n + 1])
        return 0;
    long gen = 0;
    for (const char *p = index + n + 1; *p; p++) {
        if (*p < '0' || *p > '9' || gen > 100000000)
            return 0;
        gen = gen * 10 + (*p - '0');
    }
    return gen;
}

static rm_err_t put_json(rm_os_sink_t *s, const char *path, json_t *body, long *status,
                         json_t **resp) {
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text)
        return RM_ERR_NOMEM;
    rm_err_t e = rm_os_request(s, "PUT", path, text, strlen(text), NULL, status, resp);
    free(text);
    return e;
}

static rm_err_t create_index(rm_os_sink_t *s, const char *name, json_t *body) {
    char path[300];
    snprintf(path, sizeof(path), "/%s", name);
    long st = 0;
    json_t *r = NULL;
    rm_err_t e = put_json(s, path, body, &st, &r);
    json_decref(body);
    if (e)
        return e;
    const char *type = json_string_value(json_object_get(json_object_get(r, "error"), "type"));
    if (st != 200 && !(type && !strcmp(type, "resource_already_exists_exception")))
        e = rm_os_reply_error(s, path, st, r);
    json_decref(r);
    return e;
}

/* Differences between the live mapping and the expected properties. */
static void mapping_diff(json_t *live, char *diff, size_t cap) {
    json_t *body = rm_os_index_body(false);
    json_t *want = json_object_get(json_object_get(body, "mappings"), "properties");
    size_t o = 0;
    diff[0] = '\0';
    const char *index;
    json_t *one;
    json_object_foreach(live, index, one) {
        json_t *have = json_object_get(json_object_get(one, "mappings"), "properties");
        const char *f;
        json_t *w;
        json_object_foreach(want, f, w) {
            const char *wt = json_string_value(json_object_get(w, "type"));
            const char *ht = json_string_value(json_object_get(json_object_get(have, f), "type"));
            if ((!ht || strcmp(wt, ht)) && o < cap)
                o += (size_t)snprintf(diff + o, cap - o, "%s%s %s: %s expected, %s found",
                                      o ? "; " : "", index, f, wt, ht ? ht : "nothing");
        }
    }
    json_decref(body);
}

/* Indices made before their free-text keyword fields carried ignore_above
 * get it in place: ignore_above is one of the mapping parameters OpenSearch
 * updates on a live index (PUT _mapping). A field of another type is left
 * to mapping_diff's report; a refused update is logged and tried again at
 * the next start (a rebuild makes the index with it anyway). */
static void upgrade_keywords(rm_os_sink_t *s, json_t *live) {
    static const char *const fields[] = {"specialties", "city", "languages"};
    const char *index;
    json_t *one;
    json_object_foreach(live, index, one) {
        json_t *have = json_object_get(json_object_get(one, "mappings"), "properties");
        json_t *add = json_object();
        for (size_t i = 0; add && i < sizeof(fields) / sizeof(fields[0]); i++) {
            json_t *m = json_object_get(have, fields[i]);
            const char *type = json_string_value(json_object_get(m, "type"));
            if (type && !strcmp(type, "keyword") &&
                json_integer_value(json_object_get(m, "ignore_above")) != KEYWORD_MAX_CHARS)
                json_object_set_new(
                    add, fields[i],
                    json_pack("{s:s,s:i}", "type", "keyword", "ignore_above", KEYWORD_MAX_CHARS));
        }
        json_t *body = add && json_object_size(add) ? json_pack("{s:O}", "properties", add) : NULL;
        json_decref(add);
        if (!body)
            continue;
        char path[300];
        snprintf(path, sizeof(path), "/%s/_mapping", index);
        long st = 0;
        json_t *r = NULL;
        rm_err_t e = put_json(s, path, body, &st, &r);
        json_decref(body);
        if (!e && st == 200)
            rm_info("OpenSearch: %s: keyword fields of free text now ignore values over %d "
                    "characters (ignore_above)",
                    index, KEYWORD_MAX_CHARS);
        else if (!e)
            rm_warn("OpenSearch: %s: setting ignore_above refused: HTTP %ld %s", index, st,
                    json_string_value(json_object_get(json_object_get(r, "error"), "reason")));
        else
            rm_warn("OpenSearch: %s: setting ignore_above failed: %s", index, s->err);
        json_decref(r);
    }
}

rm_err_t rm_os_sink_ensure(rm_os_sink_t *s, char *diff, size_t cap) {
    if (diff && cap)
        diff[0] = '\0';
    char path[300];
    long st = 0;
    json_t *r = NULL;
    rm_err_t e = create_index(s, s->meta,
                              json_pack("{s:{s:{s:i}},s:{s:b}}", "settings", "index",
                                        "number_of_shards", 1, "mappings", "dynamic", 0));
    if (e)
        return e;
    snprintf(path, sizeof(path), "/_alias/%s", s->alias);
    if ((e = rm_os_request(s, "GET", path, NULL, 0, NULL, &st, &r)))
        return e;
    json_decref(r);
    if (st == 404) {
        /* No model at all: generation 1, both aliases in the creation. */
        char docs[256], state[256];
        rm_os_gen_names(s, 1, docs, state, sizeof(docs));
        json_t *db = rm_os_index_body(false), *sb = rm_os_state_body(false);
        if (json_object_set_new(db, "aliases", json_pack("{s:{}}", s->alias)) ||
            json_object_set_new(sb, "aliases", json_pack("{s:{}}", s->state_alias))) {
            json_decref(db); /* never an index without its alias */
            json_decref(sb);
            snprintf(s->err, sizeof(s->err), "out of memory building the index settings");
            return RM_ERR_NOMEM;
        }
        if ((e = create_index(s, state, sb)) || (e = create_index(s, docs, db))) {
            return e;
        }
        rm_info("OpenSearch: created %s (alias %s) and %s: the index is built from the log", docs,
                s->alias, state);
        json_object_clear(s->cp_versions);
        if ((e = rm_os_generation_record(s, docs, state)))
            return e;
    } else if (st != 200) {
        return rm_os_reply_error(s, path, st, NULL);
    }
    snprintf(path, sizeof(path), "/%s/_mapping", s->alias);
    if ((e = rm_os_request(s, "GET", path, NULL, 0, NULL, &st, &r)))
        return e;
    if (st != 200) {
        e = rm_os_reply_error(s, path, st, r);
        json_decref(r);
        return e;
    }
    if (diff)
        mapping_diff(r, diff, cap);
    upgrade_keywords(s, r);
    json_decref(r);
    return RM_ERR_OK;
}

/* rm_os_sink_ensure() for a live writer that found an alias gone. The
 * documents' alias may exist while the state alias does not (the state index
 * alone was dropped). The documents then carry versions a replay into an
 * empty state index could not overwrite, so serve cannot repair this by
 * itself: it is reported as a sink error (serve retries with backoff, and
 * readmodel_sink_up{target="opensearch"} is 0) until `readmodel rebuild
 * --target opensearch` builds a new generation. */
static rm_err_t ensure_for_writer(rm_os_sink_t *s) {
    rm_err_t e = rm_os_sink_ensure(s, NULL, 0);
    if (e)
        return e;
    char path[300];
    long st = 0;
    json_t *r = NULL;
    snprintf(path, sizeof(path), "/_alias/%s", s->state_alias);
    e = rm_os_request(s, "GET", path, NULL, 0, NULL, &st, &r);
    json_decref(r);
    if (e || st == 200)
        return e;
    if (st != 404)
        return rm_os_reply_error(s, path, st, NULL);
    snprintf(s->err, sizeof(s->err),
             "alias %.150s exists but %.150s does not (its index was dropped): run `readmodel "
             "rebuild --target opensearch` to build both again",
             s->alias, s->state_alias);
    return RM_ERR_REPLY;
}

/* ---- flush ---- */

/* ST_CREATED: a head written where none existed (see write_states). */
typedef enum {
    ST_PENDING,
    ST_DONE,
    ST_CREATED,
    ST_RETRY,
    ST_STALE,
    ST_REJECTED,
    ST_MISSING
} item_state_t;

typedef struct {
    char *buf;
    size_t len, cap;
} text_t;

static int append(text_t *t, const char *p, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 65536;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *nb = realloc(t->buf, cap);
        if (!nb)
            return -1;
        t->buf = nb;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, p, n);
    t->len += n;
    t->buf[t->len] = '\0';
    return 0;
}

/* Which documents a bulk pass writes. */
typedef enum { K_DOCS, K_SLOTS, K_HEADS } kind_t;

/* One index action and its source. */
static int action(text_t *t, const char *index, const char *id, int64_t fence, const char *src,
                  size_t len) {
    char meta[1024];
    int ml = snprintf(meta, sizeof(meta),
                      "{\"index\":{\"_index\":\"%s\",\"_id\":\"%s\",\"version\":%lld,"
                      "\"version_type\":\"external_gte\"}}\n",
                      index, id, (long long)fence + 1);
    if (ml < 0 || (size_t)ml >= sizeof(meta))
        return -1;
    return append(t, meta, (size_t)ml) || append(t, src, len) || append(t, "\n", 1) ? -1 : 0;
}

/* The slot documents of the days plan p writes, each under a new id that
 * carries this write's fence. */
static int slot_lines(const rm_sink_item_t *it, const rm_os_plan_t *p, const char *index, text_t *t,
                      size_t *nact) {
    char *buf;
    rm_day_bytes_t *days;
    size_t n;
    if (rm_avail_encode_days(it->st, p->written, &buf, &days, &n))
        return -1;
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        char id[128];
        rm_os_slot_id(id, sizeof(id), it->pid, it->pid_len, days[k].day, it->fence);
        char *src = rm_os_slot_source(&days[k]);
        rc = src ? action(t, index, id, it->fence, src, strlen(src)) : -1;
        free(src);
        (*nact)++;
    }
    free(buf);
    free(days);
    return rc;
}

/* The actions of one item for one kind: its document, the slot documents of
 * its changed days, or its head; *nact is how many. */
/* Where an item's state goes: the concrete state index of its generation
 * when this flush writes states so (s->state_concrete), else index. */
static const char *state_target(const rm_os_sink_t *s, const rm_sink_item_t *it, const char *index,
                                char *buf, size_t cap) {
    if (!s->state_concrete || it->st->os_gen <= 0)
        return index;
    snprintf(buf, cap, "%s-%06ld", s->state_alias, (long)it->st->os_gen);
    return buf;
}

static int item_lines(const rm_os_sink_t *s, const rm_sink_item_t *it, const rm_os_plan_t *p,
                      kind_t kind, const char *index, text_t *t, size_t *nact) {
    *nact = 0;
    char target[300];
    if (kind != K_DOCS)
        index = state_target(s, it, index, target, sizeof(target));
    if (kind == K_SLOTS)
        return slot_lines(it, p, index, t, nact);
    char id[80];
    char *src = NULL;
    size_t len = 0;
    if (kind == K_DOCS) {
        snprintf(id, sizeof(id), "%.*s", (int)it->pid_len, it->pid);
        if (rm_doc_render(it->pid, it->pid_len, it->profile, it->st, &src, &len))
            return -1;
    } else {
        rm_os_head_id(id, sizeof(id), it->pid, it->pid_len);
        if (!(src = rm_os_head_source(it, p)))
            return -1;
        len = strlen(src);
    }
    *nact = 1;
    int rc = action(t, index, id, it->fence, src, len);
    free(src);
    return rc;
}

/* Remembers the concrete state index an answer came from; sets s->moved
 * when it is not the one seen before. */
static void saw_state_index(rm_os_sink_t *s, json_t *answer) {
    const char *idx = json_string_value(json_object_get(answer, "_index"));
    if (!idx)
        return;
    if (s->state_index[0] && strcmp(s->state_index, idx) != 0)
        s->moved = true;
    snprintf(s->state_index, sizeof(s->state_index), "%s", idx);
}

/* Whether an error answer (a reply, or a _bulk item) says the index (or alias) does not exist. */
static bool index_missing(json_t *answer) {
    const char *type = json_string_value(json_object_get(json_object_get(answer, "error"), "type"));
    return type && !strcmp(type, "index_not_found_exception");
}

/* The outcome of one _bulk answer item (the value of its "index" key). */
static item_state_t item_outcome(rm_os_sink_t *s, kind_t kind, bool require_alias,
                                 const rm_sink_item_t *it, json_t *item) {
    long code = (long)json_integer_value(json_object_get(item, "status"));
    if (code >= 200 && code < 300) {
        if (kind != K_DOCS && require_alias && !s->state_concrete) /* through the alias */
            saw_state_index(s, item);
        const char *idx = json_string_value(json_object_get(item, "_index"));
        if (kind == K_DOCS && require_alias && it->st->os_gen > 0 &&
            rm_os_index_gen(s->alias, idx) != it->st->os_gen)
            s->moved = true; /* the documents' alias moved since the state was loaded */
        if (kind == K_HEADS && require_alias && it->st->os_gen <= 0)
            it->st->os_gen = (int32_t)rm_os_index_gen(s->state_alias, idx);
        const char *result = json_string_value(json_object_get(item, "result"));
        return kind == K_HEADS && result && !strcmp(result, "created") ? ST_CREATED : ST_DONE;
    }
    if (code == 409)
        return ST_STALE;
    if (code == 429 || code >= 500)
        return ST_RETRY;
    if (code == 404 && index_missing(item))
        return ST_MISSING;
    json_t *err = json_object_get(item, "error");
    const char *type = json_string_value(json_object_get(err, "type"));
    const char *reason = json_string_value(json_object_get(err, "reason"));
    rm_log_ctx_t ctx = {"opensearch", it->partition, it->fence};
    char pid[128]; /* ids are at most 64 bytes (events.md) */
    snprintf(pid, sizeof(pid), "%.*s", (int)it->pid_len, it->pid);
    rm_log_fields(RM_LOG_ERROR, &ctx,
                  kind != K_DOCS ? "practitioner state rejected for good"
                                 : "document rejected for good",
                  RM_LOG_S("practitioner", pid), RM_LOG_I("http_status", code),
                  RM_LOG_S("error_type", type), RM_LOG_S("reason", reason));
    return ST_REJECTED;
}

/* Sends the items in `todo` (indices into items) as bulk requests and sets
 * each one's state: the worst outcome of its actions (ST_DONE < ST_RETRY <
 * ST_STALE < ST_REJECTED < ST_MISSING; an item without actions is done).
 * Returns RM_ERR_OK, or the error of a request that could not be sent at all
 * (its items are left ST_RETRY). nact has room for nt counts. */
static rm_err_t bulk_pass(rm_os_sink_t *s, const char *index, kind_t kind, bool require_alias,
                          const rm_sink_item_t *items, const rm_os_plan_t *plans, size_t *todo,
                          size_t nt, item_state_t *states, size_t *nact) {
    rm_err_t last = RM_ERR_OK;
    size_t i = 0;
    while (i < nt) {
        text_t t = {0};
        size_t first = i, acts = 0;
        while (i < nt && i - first < s->cfg.bulk_docs &&
               (t.len == 0 || t.len < s->cfg.bulk_bytes)) {
            const rm_os_plan_t *p = plans ? &plans[todo[i]] : NULL;
            if (item_lines(s, &items[todo[i]], p, kind, index, &t, &nact[i]) < 0) {
                free(t.buf);
                return RM_ERR_NOMEM;
            }
            acts += nact[i++];
        }
        char path[64];
        bool via_alias = require_alias && !(kind != K_DOCS && s->state_concrete);
        snprintf(path, sizeof(path), "/_bulk%s", via_alias ? "?require_alias=true" : "");
        long st = 0;
        json_t *r = NULL;
        rm_err_t e = RM_ERR_OK;
        if (acts) {
            s->counters.bulk_requests++;
            e = rm_os_request(s, "POST", path, t.buf, t.len, "application/x-ndjson", &st, &r);
        }
        free(t.buf);
        json_t *res = json_object_get(r, "items");
        if (acts && !e && (st != 200 || json_array_size(res) != acts)) {
            e = rm_os_reply_error(s, "_bulk", st, r);
            json_decref(r);
            return e; /* a malformed request is not retried */
        }
        for (size_t k = first, at = 0; k < i; k++) {
            item_state_t worst = ST_DONE;
            for (size_t a = 0; a < nact[k]; a++, at++) {
                item_state_t one =
                    e ? ST_RETRY
                      : item_outcome(s, kind, require_alias, &items[todo[k]],
                                     json_object_get(json_array_get(res, at), "index"));
                worst = one > worst ? one : worst;
            }
            states[todo[k]] = worst;
        }
        json_decref(r);
        if (e)
            last = e;
    }
    return last;
}

/* Writes the documents, slots or heads of the items marked ST_PENDING,
 * retrying per item. On return no item is ST_PENDING; RM_ERR_IO when some
 * are ST_RETRY. */
static rm_err_t bulk_items(rm_os_sink_t *s, const char *index, kind_t kind, bool require_alias,
                           const rm_sink_item_t *items, const rm_os_plan_t *plans, size_t n,
                           item_state_t *states, int attempts) {
    size_t *todo = malloc((n ? n : 1) * sizeof(*todo));
    size_t *nact = malloc((n ? n : 1) * sizeof(*nact));
    if (!todo || !nact) {
        free(todo);
        free(nact);
        return RM_ERR_NOMEM;
    }
    long backoff = RETRY_MIN_MS;
    rm_err_t e = RM_ERR_OK;
    for (int attempt = 0;; attempt++) {
        size_t nt = 0;
        for (size_t i = 0; i < n; i++)
            if (states[i] == ST_PENDING || states[i] == ST_RETRY)
                todo[nt++] = i;
        if (nt == 0) {
            e = RM_ERR_OK;
            break;
        }
        if (attempt > 0) {
            s->counters.item_retries += nt;
            if (attempt >= attempts) {
                if (e == RM_ERR_OK)
                    snprintf(s->err, sizeof(s->err),
                             "%zu %s still refused (429/5xx) after %d attempts", nt,
                             kind != K_DOCS ? "states" : "documents", attempts);
                e = RM_ERR_IO;
                break;
            }
            /* Full jitter: a random sleep in [backoff/2, backoff]. */
            s->rng = s->rng * 1103515245u + 12345u;
            rm_sleep_ms((int)(backoff / 2 + (long)((s->rng >> 8) % (unsigned)(backoff / 2 + 1))));
            backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
        }
        e = bulk_pass(s, index, kind, require_alias, items, plans, todo, nt, states, nact);
        if (e == RM_ERR_REPLY || e == RM_ERR_NOMEM)
            break;
    }
    free(todo);
    free(nact);
    return e;
}

/* The slot documents, then the heads, of the items marked ST_PENDING
 * (the others are left as they are): slots first, then, for the items
 * whose slots were all written, their heads: the commit point. When the
 * slots' answers show a rebuild moved the alias (s->moved), no head is
 * written: the caller reports every item stale. */
static rm_err_t slots_then_heads(rm_os_sink_t *s, const char *index, bool require_alias,
                                 rm_sink_item_t *items, rm_os_plan_t *plans, size_t n,
                                 item_state_t *states, int attempts) {
    bool *active = malloc((n ? n : 1) * sizeof(*active));
    if (!active)
        return RM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        active[i] = states[i] == ST_PENDING;
    rm_err_t e = bulk_items(s, index, K_SLOTS, require_alias, items, plans, n, states, attempts);
    if (!e && !(require_alias && s->moved)) {
        for (size_t i = 0; i < n; i++)
            if (active[i] && states[i] == ST_DONE)
                states[i] = ST_PENDING;
        e = bulk_items(s, index, K_HEADS, require_alias, items, plans, n, states, attempts);
    }
    free(active);
    return e;
}

/* Collects the delete actions of superseded slot documents into a text. */
typedef struct {
    text_t t;
    const rm_os_sink_t *s;
    const char *index;
    const rm_sink_item_t *it;
    size_t nact;
} deletes_t;

static int delete_line(void *arg, uint16_t day, int64_t fence) {
    deletes_t *d = arg;
    char id[128], meta[512], target[300];
    rm_os_slot_id(id, sizeof(id), d->it->pid, d->it->pid_len, day, fence);
    snprintf(meta, sizeof(meta), "{\"delete\":{\"_index\":\"%s\",\"_id\":\"%s\"}}\n",
             state_target(d->s, d->it, d->index, target, sizeof(target)), id);
    d->nact++;
    return append(&d->t, meta, strlen(meta));
}

/* Sends the collected deletes; counts and logs the ones that failed. */
static void delete_send(rm_os_sink_t *s, bool require_alias, deletes_t *d) {
    long st = 0;
    json_t *r = NULL;
    size_t failed = d->nact;
    rm_err_t e = RM_ERR_OK;
    if (d->nact) {
        s->counters.bulk_requests++;
        e = rm_os_request(
            s, "POST", require_alias && !s->state_concrete ? "/_bulk?require_alias=true" : "/_bulk",
            d->t.buf, d->t.len, "application/x-ndjson", &st, &r);
    }
    json_t *res = json_object_get(r, "items");
    if (!e && st == 200 && json_array_size(res) == d->nact) {
        failed = 0;
        size_t k;
        json_t *one;
        json_array_foreach(res, k, one) {
            long code =
                (long)json_integer_value(json_object_get(json_object_get(one, "delete"), "status"));
            failed += !(code >= 200 && code < 300) && code != 404;
        }
    }
    if (failed) {
        s->counters.slot_delete_failures += failed;
        rm_warn("OpenSearch: %zu superseded state slot documents not deleted (%s); they stay "
                "as garbage until a rebuild",
                failed, e ? s->err : "refused");
    }
    json_decref(r);
    free(d->t.buf);
    memset(&d->t, 0, sizeof(d->t));
    d->nact = 0;
}

/* After the heads: deletes, best effort, the slot documents the written
 * heads superseded (see opensearch_state.h). Only a writer whose head was
 * written deletes, and only slots its own loaded or written head named:
 * docs/architecture.md argues no committed head names them any more. */
static void delete_superseded(rm_os_sink_t *s, const char *index, bool require_alias,
                              const rm_sink_item_t *items, const rm_os_plan_t *plans, size_t n,
                              const item_state_t *states) {
    deletes_t d = {.s = s, .index = index};
    for (size_t i = 0; i < n; i++) {
        if (states[i] != ST_DONE || !items[i].st->os_n)
            continue;
        d.it = &items[i];
        if (rm_os_plan_superseded(items[i].st, &plans[i], delete_line, &d)) {
            s->counters.slot_delete_failures += d.nact;
            rm_warn("OpenSearch: out of memory listing superseded state slot documents");
            free(d.t.buf);
            return;
        }
        if (d.nact >= s->cfg.bulk_docs || d.t.len >= s->cfg.bulk_bytes)
            delete_send(s, require_alias, &d);
    }
    delete_send(s, require_alias, &d);
}

/* The states of the items marked ST_PENDING (see opensearch_state.h): the
 * slot documents of their changed days (every stored day for a rebuild's
 * fresh generation, a forced write, or a state read in the old form), then
 * their heads. A live head written where none existed although this writer
 * read or wrote one before (expect_fence), or although the write left some
 * stored day out, may name slots the index does not hold: the index was
 * dropped and re-created (by another writer) since, perhaps between this
 * flush's slot and head requests. Such an item is written again whole, at
 * the same version, so its head names only slots the new index holds. A
 * written head's slots become the committed ones in memory. */
static rm_err_t write_states(rm_os_sink_t *s, const char *index, bool require_alias,
                             rm_sink_item_t *items, rm_os_plan_t *plans, size_t n,
                             item_state_t *states, int attempts) {
    for (size_t i = 0; i < n; i++) {
        bool whole = items[i].force || items[i].st->rewrite || !require_alias;
        if (states[i] == ST_PENDING && rm_os_plan(items[i].st, whole, items[i].fence, &plans[i]))
            return RM_ERR_NOMEM;
    }
    rm_err_t e = slots_then_heads(s, index, require_alias, items, plans, n, states, attempts);
    if (e || (require_alias && s->moved)) /* nothing of it is committed in memory */
        return e;
    bool again = false;
    for (size_t i = 0; i < n; i++) {
        if (states[i] != ST_CREATED)
            continue;
        states[i] = ST_DONE;
        if (!require_alias ||
            (items[i].expect_fence < 0 && roaring_bitmap_equals(plans[i].written, plans[i].stored)))
            continue;
        rm_os_plan_free(&plans[i]);
        if (rm_os_plan(items[i].st, true, items[i].fence, &plans[i]))
            return RM_ERR_NOMEM;
        states[i] = ST_PENDING;
        again = true;
    }
    if (again &&
        ((e = slots_then_heads(s, index, require_alias, items, plans, n, states, attempts)) ||
         (require_alias && s->moved)))
        return e;
    for (size_t i = 0; i < n; i++)
        if (states[i] == ST_CREATED)
            states[i] = ST_DONE;
    delete_superseded(s, index, require_alias, items, plans, n, states);
    for (size_t i = 0; i < n; i++)
        if (states[i] == ST_DONE)
            rm_os_plan_commit(items[i].st, &plans[i]);
    return e;
}

/* Before a live flush writes states to their concrete indices: the state
 * alias must still point to the generation of every item (else s->moved),
 * and exist (else *missing: OpenSearch would create a concrete index that
 * is gone on the first write to it, without its alias or mapping). */
static rm_err_t check_generation(rm_os_sink_t *s, const rm_sink_item_t *items, size_t n,
                                 bool *missing) {
    char path[300];
    snprintf(path, sizeof(path), "/_alias/%s", s->state_alias);
    long st = 0;
    json_t *r = NULL;
    rm_err_t e = rm_os_request(s, "GET", path, NULL, 0, NULL, &st, &r);
    if (e)
        return e;
    void *one = json_object_iter(r);
    if (st == 404) {
        *missing = true;
    } else if (st != 200 || !one || json_object_iter_next(r, one)) {
        e = rm_os_reply_error(s, path, st, r);
    } else {
        long gen = rm_os_index_gen(s->state_alias, json_object_iter_key(one));
        for (size_t i = 0; i < n; i++)
            s->moved = s->moved || items[i].st->os_gen != gen;
    }
    json_decref(r);
    return e;
}

rm_err_t rm_os_write(rm_os_sink_t *s, const char *docs_index, const char *state_index,
                     bool require_alias, rm_sink_item_t *items, size_t n, int attempts,
                     bool *missing) {
    *missing = false;
    item_state_t *docs = calloc(n ? n : 1, sizeof(*docs));
    item_state_t *states = calloc(n ? n : 1, sizeof(*states));
    rm_os_plan_t *plans = calloc(n ? n : 1, sizeof(*plans));
    if (!docs || !states || !plans) {
        free(docs);
        free(states);
        free(plans);
        return RM_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        items[i].written = items[i].stale = items[i].rejected = false;
    rm_err_t e = bulk_items(s, docs_index, K_DOCS, require_alias, items, NULL, n, docs, attempts);
    for (size_t i = 0; !e && i < n; i++) {
        *missing |= docs[i] == ST_MISSING;
        /* A stale document's state is written all the same: the head alone
         * decides (a head refused after its document was written leaves the
         * document ahead of the state; a writer that resumes from the state
         * below that fence must be able to commit, see docs/architecture.md). */
        states[i] = ST_PENDING;
    }
    /* A live flush writes each state to the state index it was loaded from
     * (its generation), never through the alias: an alias moved by a
     * rebuild between two of its requests (or their retries) must not get
     * a per-day write on top of the new generation's head. A move seen in
     * the documents' answers stops it before any state is written. */
    s->state_concrete = require_alias && n > 0;
    for (size_t i = 0; i < n; i++)
        s->state_concrete = s->state_concrete && items[i].st->os_gen > 0;
    if (!e && !*missing && s->state_concrete)
        e = check_generation(s, items, n, missing);
    if (!e && !*missing && !(require_alias && s->moved))
        e = write_states(s, state_index, require_alias, items, plans, n, states, attempts);
    s->state_concrete = false;
    for (size_t i = 0; !e && !*missing && i < n; i++) {
        *missing |= states[i] == ST_MISSING;
        if (states[i] == ST_REJECTED) {
            snprintf(s->err, sizeof(s->err), "state of %.*s rejected by the state index",
                     (int)items[i].pid_len, items[i].pid);
            e = RM_ERR_REPLY;
        }
    }
    for (size_t i = 0; !e && !*missing && i < n; i++) {
        items[i].stale = states[i] == ST_STALE;
        items[i].written = states[i] == ST_DONE;
        items[i].rejected = docs[i] == ST_REJECTED;
        if (items[i].rejected)
            s->counters.rejected++;
    }
    for (size_t i = 0; i < n; i++)
        rm_os_plan_free(&plans[i]);
    free(docs);
    free(states);
    free(plans);
    return e;
}

rm_err_t rm_os_sink_flush(rm_os_sink_t *s, rm_sink_item_t *items, size_t n, int attempts) {
    bool missing = false;
    s->moved = false;
    rm_err_t e = rm_os_write(s, s->alias, s->state_alias, true, items, n, attempts, &missing);
    if (!e && s->moved) {
        /* A rebuild moved the aliases since this writer last looked: what
         * it wrote went to the new generation with versions that keep it
         * monotonic, but its memory and checkpoints belong to the old one. */
        s->moved = false;
        for (size_t i = 0; i < n; i++) {
            items[i].written = false;
            items[i].stale = true;
        }
        return RM_ERR_OK;
    }
    if (e || !missing)
        return e;
    /* The alias is gone (index dropped): start a new empty model and let the
     * caller replay from the (now absent) checkpoints. */
    rm_warn("OpenSearch: a write found alias %s or %s gone (index dropped); re-creating the "
            "model empty where the log can be replayed into it",
            s->alias, s->state_alias);
    if ((e = ensure_for_writer(s)))
        return e;
    for (size_t i = 0; i < n; i++) {
        items[i].written = false;
        items[i].stale = true;
    }
    return RM_ERR_OK;
}

/* ---- checkpoints ---- */

static void cp_id(char *out, size_t cap, const char *topic, int32_t partition) {
    snprintf(out, cap, "cp:%s:%d", topic, (int)partition);
}

rm_err_t rm_os_checkpoint_get(rm_os_sink_t *s, const char *topic, int32_t partition,
                              int64_t *next) {
    char id[300], path[600];
    cp_id(id, sizeof(id), topic, partition);
    snprintf(path, sizeof(path), "/%s/_doc/%s", s->state_alias, id);
    long st = 0;
    json_t *r = NULL;
    rm_err_t e = rm_os_request(s, "GET", path, NULL, 0, NULL, &st, &r);
    if (e)
        return e;
    *next = -1;
    if (st == 200 || st == 404) {
        saw_state_index(s, r);
        s->moved = false; /* a read learns the current generation */
    }
    if (st == 200 && json_is_integer(json_object_get(json_object_get(r, "_source"), "next"))) {
        *next = json_integer_value(json_object_get(json_object_get(r, "_source"), "next"));
        json_object_set_new(
            s->cp_versions, id,
            json_pack("[O,O]", json_object_get(r, "_seq_no"), json_object_get(r, "_primary_term")));
    } else if (st == 404 && json_is_false(json_object_get(r, "found"))) {
        json_object_del(s->cp_versions, id);
    } else {
        e = rm_os_reply_error(s, path, st, r);
    }
    json_decref(r);
    return e;
}

rm_err_t rm_os_checkpoint_cas(rm_os_sink_t *s, const char *topic, int32_t partition,
                              int64_t expected, int64_t next, bool *ok, int64_t *current) {
    char id[300], path[700];
    cp_id(id, sizeof(id), topic, partition);
    json_t *v = json_object_get(s->cp_versions, id);
    *ok = false;
    if (expected >= 0 && !v) { /* never read: learn the version first */
        int64_t cur;
        rm_err_t e = rm_os_checkpoint_get(s, topic, partition, &cur);
        if (e)
            return e;
        if (cur != expected) {
            *current = cur;
            return RM_ERR_OK;
        }
        v = json_object_get(s->cp_versions, id);
    }
    if (expected < 0)
        snprintf(path, sizeof(path), "/%s/_create/%s?require_alias=true", s->state_alias, id);
    else
        snprintf(path, sizeof(path),
                 "/%s/_doc/%s?require_alias=true&if_seq_no=%lld&if_primary_term=%lld",
                 s->state_alias, id, (long long)json_integer_value(json_array_get(v, 0)),
                 (long long)json_integer_value(json_array_get(v, 1)));
    char body[64];
    snprintf(body, sizeof(body), "{\"next\":%lld}", (long long)next);
    long st = 0;
    json_t *r = NULL;
    rm_err_t e = rm_os_request(s, "PUT", path, body, strlen(body), NULL, &st, &r);
    if (e)
        return e;
    if (st == 200 || st == 201) {
        *ok = true;
        json_object_set_new(
            s->cp_versions, id,
            json_pack("[O,O]", json_object_get(r, "_seq_no"), json_object_get(r, "_primary_term")));
        s->moved = false;
        saw_state_index(s, r);
        if (s->moved) { /* written into a generation this writer never read */
            *ok = false;
            e = rm_os_checkpoint_get(s, topic, partition, current);
        }
    } else if (st == 409) {
        e = rm_os_checkpoint_get(s, topic, partition, current);
    } else if (st == 404 && index_missing(r)) {
        /* The state index was dropped: the checkpoints went with it. Start
         * an empty model (as a flush that finds the alias gone does) and
         * tell the caller the stored checkpoint is now "none". */
        rm_warn("OpenSearch: a checkpoint write found alias %s gone (index dropped); re-creating "
                "the model empty where the log can be replayed into it",
                s->state_alias);
        json_object_del(s->cp_versions, id);
        if (!(e = ensure_for_writer(s)))
            *current = -1;
    } else {
        e = rm_os_reply_error(s, path, st, r);
    }
    json_decref(r);
    return e;
}

/* ---- lease ---- */

/* One _mget of the lease and of the generation the aliases point to (so a
 * writer learns of a finished rebuild before it writes anything). holder is
 * empty when the lease is absent or expired; *exists tells whether its
 * document is there, whose version renew and release compare with. */
static rm_err_t lease_read(rm_os_sink_t *s, char *holder, size_t cap, long long *ttl_ms,
                           bool *exists) {
    char path[300];
    snprintf(path, sizeof(path), "/%s/_mget", s->meta);
    const char *body = "{\"ids\":[\"lease:opensearch\",\"generation\"]}";
    long st = 0;
    json_t *r = NULL;
    rm_err_t e = rm_os_request(s, "POST", path, body, strlen(body), NULL, &st, &r);
    if (e)
        return e;
    json_t *docs = json_object_get(r, "docs");
    if (st != 200 || json_array_size(docs) != 2) {
        e = rm_os_reply_error(s, path, st, r);
        json_decref(r);
        return e;
    }
    holder[0] = '\0';
    *ttl_ms = -1;
    json_t *lease = json_array_get(docs, 0), *gen = json_array_get(docs, 1);
    *exists = json_is_true(json_object_get(lease, "found"));
    if (*exists) {
        json_decref(s->lease_version);
        s->lease_version = json_pack("[O,O]", json_object_get(lease, "_seq_no"),
                                     json_object_get(lease, "_primary_term"));
        json_t *src = json_object_get(lease, "_source");
        /* The expiry is wall time: see docs/architecture.md ("Clocks and leases"). */
        long long left = json_integer_value(json_object_get(src, "expires_ms")) - rm_wall_ms();
        if (left > 0) {
            const char *h = json_string_value(json_object_get(src, "holder"));
            snprintf(holder, cap, "%s", h ? h : "?");
            *ttl_ms = left;
        }
    }
    const char *idx =
        json_string_value(json_object_get(json_object_get(gen, "_source"), "state_index"));
    if (idx && s->state_index[0] && strcmp(idx, s->state_index) != 0)
        s->moved = true;
    json_decref(r);
    return RM_ERR_OK;
}

rm_err_t rm_os_lease_get(rm_os_sink_t *s, char *holder, size_t cap, long long *ttl_ms) {
    bool exists;
    return lease_read(s, holder, cap, ttl_ms, &exists);
}

bool rm_os_sink_take_moved(rm_os_sink_t *s) {
    bool m = s->moved;
    s->moved = false;
    return m;
}

rm_err_t rm_os_generation_record(rm_os_sink_t *s, const char *docs_index, const char *state_index) {
    char path[300];
    snprintf(path, sizeof(path), "/%s/_doc/generation", s->meta);
    json_t *body = json_pack("{s:s,s:s}", "docs_index", docs_index, "state_index", state_index);
    long st = 0;
    json_t *r = NULL;
    rm_err_t e = put_json(s, path, body, &st, &r);
    json_decref(body);
    if (!e && st != 200 && st != 201)
        e = rm_os_reply_error(s, path, st, r);
    json_decref(r);
    return e;
}

static rm_err_t lease_write(rm_os_sink_t *s, const char *holder, int ttl_ms, bool create,
                            bool *ok) {
    char path[400];
    if (create)
        snprintf(path, sizeof(path), "/%s/_create/lease:opensearch", s->meta);
    else
        snprintf(path, sizeof(path),
                 "/%s/_doc/lease:opensearch?if_seq_no=%lld&if_primary_term=%lld", s->meta,
                 (long long)json_integer_value(json_array_get(s->lease_version, 0)),
                 (long long)json_integer_value(json_array_get(s->lease_version, 1)));
    json_t *body =
        json_pack("{s:s,s:I}", "holder", holder, "expires_ms", (json_int_t)(rm_wall_ms() + ttl_ms));
    long st = 0;
    json_t *r = NULL;
    rm_err_t e = put_json(s, path, body, &st, &r);
    json_decref(body);
    if (e)
        return e;
    *ok = st == 200 || st == 201;
    if (*ok) {
        json_decref(s->lease_version);
        s->lease_version =
            json_pack("[O,O]", json_object_get(r, "_seq_no"), json_object_get(r, "_primary_term"));
    } else if (st != 409) {
        e = rm_os_reply_error(s, path, st, r);
    }
    json_decref(r);
    return e;
}

rm_err_t rm_os_lease_acquire(rm_os_sink_t *s, const char *holder, int ttl_ms, bool *got,
                             char *holder_out, size_t cap) {
    char cur[256];
    long long ttl;
    bool exists = false; /* set by lease_read whenever it succeeds */
    *got = false;
    rm_err_t e = lease_read(s, cur, sizeof(cur), &ttl, &exists);
    if (e)
        return e;
    if (cur[0]) {
        if (holder_out)
            snprintf(holder_out, cap, "%s", cur);
        return RM_ERR_OK;
    }
    e = lease_write(s, holder, ttl_ms, !exists, got);
    if (!e && !*got && holder_out)
        snprintf(holder_out, cap, "another rebuild (it took the lease first)");
    return e;
}

rm_err_t rm_os_lease_renew(rm_os_sink_t *s, const char *holder, int ttl_ms, bool *ok) {
    return lease_write(s, holder, ttl_ms, false, ok);
}

rm_err_t rm_os_lease_release(rm_os_sink_t *s, const char *holder) {
    (void)holder;
    char path[400];
    snprintf(path, sizeof(path), "/%s/_doc/lease:opensearch?if_seq_no=%lld&if_primary_term=%lld",
             s->meta, (long long)json_integer_value(json_array_get(s->lease_version, 0)),
             (long long)json_integer_value(json_array_get(s->lease_version, 1)));
    long st = 0;
    json_t *r = NULL;
    rm_err_t e = rm_os_request(s, "DELETE", path, NULL, 0, NULL, &st, &r);
    if (!e && st != 200 && st != 404 && st != 409)
        e = rm_os_reply_error(s, path, st, r);
    json_decref(r);
    return e;
}
