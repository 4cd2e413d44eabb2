/* os_server.h's start, inspection and stop over the real OpenSearch node:
 * see opensearch_real.h. */
#include "opensearch_real.h"
#include "os_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct os_server {
    os_real_t *node;
};

static struct os_server the;

os_real_t *os_server_real_node(void) {
    return the.node;
}

void os_server_real_shutdown(void) {
    os_real_stop(the.node);
    the.node = NULL;
}

os_server_t *os_server_start(int port) {
    (void)port;
    if (!the.node) {
        if (!(the.node = os_real_start()))
            return NULL;
        fprintf(stderr, "opensearch_real: OpenSearch %s up on port %d in %.1f s, RSS %ld MiB\n",
                os_real_version(the.node), os_real_port(the.node), os_real_start_seconds(the.node),
                os_real_rss_kib(the.node) / 1024);
    } else if (os_real_wipe(the.node) != 0) {
        return NULL;
    }
    return &the;
}

int os_server_port(const os_server_t *s) {
    return os_real_port(s->node);
}

void os_server_stop(os_server_t *s) {
    (void)s; /* the node serves the program's next case */
}

json_t *os_server_get(os_server_t *s, const char *index, const char *id) {
    char path[512];
    snprintf(path, sizeof(path), "/%s/_doc/%s", index, id);
    long st;
    json_t *r = os_real_http(s->node, "GET", path, NULL, &st);
    json_t *src = st == 200 ? json_incref(json_object_get(r, "_source")) : NULL;
    json_decref(r);
    return src;
}

json_t *os_server_ids(os_server_t *s, const char *index) {
    char path[512];
    long st;
    snprintf(path, sizeof(path), "/%s/_refresh", index);
    json_decref(os_real_http(s->node, "POST", path, NULL, &st));
    snprintf(path, sizeof(path), "/%s/_search", index);
    json_t *r =
        os_real_http(s->node, "POST", path,
                     "{\"size\":10000,\"_source\":false,\"query\":{\"match_all\":{}}}", &st);
    json_t *ids = json_array();
    size_t i;
    json_t *hit;
    json_array_foreach(json_object_get(json_object_get(r, "hits"), "hits"), i, hit)
        json_array_append(ids, json_object_get(hit, "_id"));
    json_decref(r);
    return ids;
}

json_t *os_server_indices(os_server_t *s) {
    long st;
    json_t *r = os_real_http(s->node, "GET",
                             "/_cat/indices?format=json&h=index&expand_wildcards=all", NULL, &st);
    json_t *names = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(r, i, row) json_array_append(names, json_object_get(row, "index"));
    json_decref(r);
    return names;
}

long os_server_requests(os_server_t *s, const char *kind) {
    if (strcmp(kind, "bulk") != 0)
        return -1;
    long st;
    json_t *r = os_real_http(s->node, "GET", "/_nodes/stats/indices/indexing", NULL, &st);
    long total = 0;
    const char *id;
    json_t *node;
    json_object_foreach(json_object_get(r, "nodes"), id, node) total +=
        (long)json_integer_value(json_object_get(
            json_object_get(json_object_get(node, "indices"), "indexing"), "index_total"));
    json_decref(r);
    return total;
}
