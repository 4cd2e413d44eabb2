/* Internals shared by opensearch_sink.c and opensearch_admin.c. */
#ifndef READMODEL_OPENSEARCH_INTERNAL_H
#define READMODEL_OPENSEARCH_INTERNAL_H

#include "readmodel/opensearch_sink.h"

#include <curl/curl.h>

struct rm_os_sink {
    rm_os_config_t cfg; /* strings owned (copied) */
    CURL *curl;         /* one handle: its connection is reused */
    char err[512];
    char alias[200], state_alias[220], meta[220];
    json_t *cp_versions; /* "topic/partition" -> [seq_no, primary_term] */
    json_t *lease_version;
    rm_os_counters_t counters;
    unsigned rng;
    /* The concrete state index the alias pointed to when last read or
     * written: a different one in an answer means a rebuild moved the
     * aliases, and everything this writer holds belongs to the old model. */
    char state_index[256];
    bool moved;
    /* This flush writes each state to the concrete state index of its
     * item's generation (rm_avail_t.os_gen), not through the alias. */
    bool state_concrete;
};

/* One request: path is appended to the base URL; body may be NULL. On
 * RM_ERR_OK *status is the HTTP status (any) and *resp the parsed body (NULL
 * when empty or not JSON; caller decrefs). RM_ERR_IO for transport errors,
 * 429 and 5xx (reason in last_error). */
rm_err_t rm_os_request(rm_os_sink_t *s, const char *method, const char *path, const char *body,
                       size_t len, const char *content_type, long *status, json_t **resp);
/* Formats the error of an answer into s->err and returns RM_ERR_REPLY. */
rm_err_t rm_os_reply_error(rm_os_sink_t *s, const char *what, long status, json_t *resp);
/* Settings and mapping of a state index (not indexed: dynamic false);
 * `loading`: refresh off and no replicas. New reference. */
json_t *rm_os_state_body(bool loading);
/* Bulk-writes items into the given index names (aliases when require_alias). */
rm_err_t rm_os_write(rm_os_sink_t *s, const char *docs_index, const char *state_index,
                     bool require_alias, rm_sink_item_t *items, size_t n, int attempts,
                     bool *missing);
/* The generation N of index "<alias>-<N>" (six digits or more), or 0. */
long rm_os_index_gen(const char *alias, const char *index);
/* Base64 (RFC 4648) for the binary availability state. */
char *rm_os_b64_encode(const char *in, size_t len);
char *rm_os_b64_decode(const char *in, size_t *len);

#endif
