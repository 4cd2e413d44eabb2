/*
 * Redis URL parsing on top of libcurl's URL API, with the checks that make
 * a bad --redis value fail at startup with a message naming what is wrong.
 */
#include "readmodel/redis_url.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_int(const char *s, int min, int max, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

static int parse_unix(const char *url, rm_redis_url_t *out, char *err, size_t errlen) {
    const char *path = url + strlen("unix://");
    if (path[0] != '/') {
        snprintf(err, errlen, "unix socket URL needs an absolute path (unix:///path/to.sock)");
        return -1;
    }
    const char *q = strchr(path, '?');
    size_t n = q ? (size_t)(q - path) : strlen(path);
    if (q) {
        if (strncmp(q, "?db=", 4) != 0 || parse_int(q + 4, 0, 1 << 20, &out->db) < 0) {
            snprintf(err, errlen, "unix socket URL accepts only ?db=N");
            return -1;
        }
    }
    out->socket_path = strndup(path, n);
    return out->socket_path ? 0 : -1;
}

int rm_redis_url_parse(const char *url, rm_redis_url_t *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (strncmp(url, "unix://", 7) == 0)
        return parse_unix(url, out, err, errlen);
    out->tls = strncmp(url, "rediss://", 9) == 0;
    if (!out->tls && strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "must start with redis://, rediss:// or unix://");
        return -1;
    }
    CURLU *u = curl_url();
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = -1;
    char *host = NULL, *port = NULL, *user = NULL, *pass = NULL, *path = NULL, *query = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
        snprintf(err, errlen,
                 "not a valid URL (expected redis[s]://[[user]:password@]host[:port][/db])");
        goto done;
    }
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    curl_url_get(u, CURLUPART_USER, &user, CURLU_URLDECODE);
    curl_url_get(u, CURLUPART_PASSWORD, &pass, CURLU_URLDECODE);
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    if (!host || !*host) {
        snprintf(err, errlen, "missing host");
        goto done;
    }
    if (query) {
        snprintf(err, errlen, "query parameters are not supported");
        goto done;
    }
    if (port && parse_int(port, 1, 65535, &out->port) < 0) {
        snprintf(err, errlen, "port must be 1..65535");
        goto done;
    }
    if (path && strcmp(path, "/") != 0 && strcmp(path, "") != 0 &&
        parse_int(path + 1, 0, 1 << 20, &out->db) < 0) {
        snprintf(err, errlen, "database must be a number (redis[s]://host:port/N)");
        goto done;
    }
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']')
        out->host = strndup(host + 1, hl - 2); /* IPv6 literal */
    else
        out->host = strdup(host);
    out->user = user && *user ? strdup(user) : NULL;
    out->password = dup_or_null(pass);
    rc = out->host ? 0 : -1;
done:
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_free(pass);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    if (rc < 0)
        rm_redis_url_free(out);
    return rc;
}

int rm_redis_url_set_tls(rm_redis_url_t *u, const char *ca_file, const char *cert_file,
                         const char *key_file, const char *server_name) {
    char *ca = dup_or_null(ca_file), *cert = dup_or_null(cert_file), *key = dup_or_null(key_file),
         *name = dup_or_null(server_name);
    if ((ca_file && !ca) || (cert_file && !cert) || (key_file && !key) || (server_name && !name)) {
        free(ca);
        free(cert);
        free(key);
        free(name);
        return -1;
    }
    free(u->tls_ca_file);
    free(u->tls_cert_file);
    free(u->tls_key_file);
    free(u->tls_server_name);
    u->tls_ca_file = ca;
    u->tls_cert_file = cert;
    u->tls_key_file = key;
    u->tls_server_name = name;
    return 0;
}

int rm_redis_url_copy(rm_redis_url_t *dst, const rm_redis_url_t *src) {
    *dst = *src;
    dst->host = dup_or_null(src->host);
    dst->socket_path = dup_or_null(src->socket_path);
    dst->user = dup_or_null(src->user);
    dst->password = dup_or_null(src->password);
    dst->tls_ca_file = dst->tls_cert_file = dst->tls_key_file = dst->tls_server_name = NULL;
    if ((src->host && !dst->host) || (src->socket_path && !dst->socket_path) ||
        (src->user && !dst->user) || (src->password && !dst->password) ||
        rm_redis_url_set_tls(dst, src->tls_ca_file, src->tls_cert_file, src->tls_key_file,
                             src->tls_server_name) < 0) {
        rm_redis_url_free(dst);
        return -1;
    }
    return 0;
}

void rm_redis_url_free(rm_redis_url_t *u) {
    free(u->tls_ca_file);
    free(u->tls_cert_file);
    free(u->tls_key_file);
    free(u->tls_server_name);
    free(u->host);
    free(u->socket_path);
    free(u->user);
    free(u->password);
    memset(u, 0, sizeof(*u));
}

void rm_redis_url_redacted(const rm_redis_url_t *u, char *out, size_t cap) {
    if (u->socket_path) {
        if (u->db)
            snprintf(out, cap, "unix://%s?db=%d", u->socket_path, u->db);
        else
            snprintf(out, cap, "unix://%s", u->socket_path);
        return;
    }
    char auth[160] = "";
    if (u->password)
        snprintf(auth, sizeof(auth), "%s:***@", u->user ? u->user : "");
    else if (u->user)
        snprintf(auth, sizeof(auth), "%s@", u->user);
    int v6 = u->host && strchr(u->host, ':') != NULL;
    snprintf(out, cap, "%s://%s%s%s%s:%d/%d", u->tls ? "rediss" : "redis", auth, v6 ? "[" : "",
             u->host ? u->host : "", v6 ? "]" : "", u->port, u->db);
}
