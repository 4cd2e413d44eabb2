/*
 * Loading stored states from the OpenSearch state index: one _mget of the
 * heads, then _mget requests of their committed slot documents (the form is
 * in opensearch_state.h and opensearch_state.c).
 */
#include "opensearch_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Slot documents asked for in one _mget (a practitioner's are never split). */
#define SLOT_MGET_IDS 1000

/* POST <state alias>/_mget of ids. On RM_ERR_OK *r is the answer (caller
 * decrefs) and *docs its array of as many documents (borrowed from *r). */
static rm_err_t mget(rm_os_sink_t *s, json_t *ids, json_t **r, json_t **docs) {
    *r = NULL;
    json_t *body = ids ? json_pack("{s:O}", "ids", ids) : NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        snprintf(s->err, sizeof(s->err), "out of memory building a _mget request");
        return RM_ERR_NOMEM;
    }
    char path[300];
    snprintf(path, sizeof(path), "/%s/_mget", s->state_alias);
    long st = 0;
    rm_err_t e = rm_os_request(s, "POST", path, text, strlen(text), NULL, &st, r);
    free(text);
    if (e)
        return e;
    *docs = json_object_get(*r, "docs");
    bool bad = st != 200 || json_array_size(*docs) != json_array_size(ids);
    json_t *why = *r;
    size_t i;
    json_t *d;
    json_array_foreach(*docs, i, d) if (!bad && json_object_get(d, "error")) {
        bad = true;
        why = d;
    }
    if (bad) {
        e = rm_os_reply_error(s, path, st, why);
        json_decref(*r);
        *r = NULL;
    }
    return e;
}

static rm_err_t corrupt(rm_os_sink_t *s, rm_sink_item_t *it, const char *why) {
    it->corrupt = true;
    it->partition = -1;
    it->fence = -1;
    snprintf(s->err, sizeof(s->err), "stored state of %.*s does not decode%s", (int)it->pid_len,
             it->pid, why);
    return RM_ERR_CORRUPT;
}

/* Reads the committed slot documents of the pending heads, in _mget
 * requests of about SLOT_MGET_IDS ids, and decodes each state. */
static rm_err_t load_slots(rm_os_sink_t *s, rm_sink_item_t *items, rm_os_head_t *hs, size_t n,
                           rm_err_t *result) {
    char id[128];
    for (size_t i = 0; i < n;) {
        json_t *ids = json_array(), *r = NULL, *docs = NULL;
        size_t first = i;
        for (; ids && i < n && json_array_size(ids) < SLOT_MGET_IDS; i++)
            for (size_t k = 0; hs[i].pending && k < hs[i].n; k++) {
                rm_os_slot_id(id, sizeof(id), items[i].pid, items[i].pid_len, hs[i].days[k],
                              hs[i].slot[k]);
                if (json_array_append_new(ids, json_string(id))) {
                    json_decref(ids);
                    ids = NULL;
                    break;
                }
            }
        rm_err_t e = !ids                   ? RM_ERR_NOMEM
                     : json_array_size(ids) ? mget(s, ids, &r, &docs)
                                            : RM_ERR_OK;
        json_decref(ids);
        if (e)
            return e;
        for (size_t k = first, at = 0; k < i; k++) {
            if (!hs[k].pending)
                continue;
            if (rm_os_head_finish(&items[k], &hs[k], docs, at) < 0)
                *result = corrupt(s, &items[k],
                                  " (a committed slot document is missing, newer than its head or "
                                  "not readable)");
            at += hs[k].n;
        }
        json_decref(r);
    }
    return RM_ERR_OK;
}

rm_err_t rm_os_sink_load(rm_os_sink_t *s, rm_sink_item_t *items, size_t n) {
    if (!n)
        return RM_ERR_OK;
    rm_os_head_t *hs = calloc(n, sizeof(*hs));
    json_t *ids = hs ? json_array() : NULL;
    bool nomem = !ids;
    for (size_t i = 0; i < n; i++) {
        char id[80];
        rm_os_head_id(id, sizeof(id), items[i].pid, items[i].pid_len);
        nomem = nomem || json_array_append_new(ids, json_string(id)) != 0;
        items[i].partition = -1;
        items[i].fence = -1;
        items[i].corrupt = false;
    }
    json_t *r = NULL, *docs = NULL;
    rm_err_t e = mget(s, nomem ? NULL : ids, &r, &docs), result = RM_ERR_OK;
    json_decref(ids);
    for (size_t i = 0; !e && i < n; i++) {
        json_t *d = json_array_get(docs, i);
        if (json_is_true(json_object_get(d, "found")) &&
            rm_os_head_read(d, &items[i], &hs[i]) < 0) {
            rm_os_head_free(&hs[i]);
            result = corrupt(s, &items[i], "");
        }
    }
    json_decref(r);
    if (!e)
        e = load_slots(s, items, hs, n, &result);
    for (size_t i = 0; hs && i < n; i++)
        rm_os_head_free(&hs[i]);
    free(hs);
    return e ? e : result;
}
